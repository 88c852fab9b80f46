// Live check of the registry's MCP endpoint with the official TypeScript SDK.
//
//   node tests/typescript/mcp_client_check.mjs BASE_URL [KEYED_BASE_URL]
//
// KEYED_BASE_URL: a server that requires keys, for the refused-credential check (without it,
// that check runs against BASE_URL and is skipped when BASE_URL takes no keys).
//
// SDK 1.32 speaks the session era only: it connects with `initialize` at 2025-11-25 and
// again at 2025-03-26, lists, finds and calls tools, checks that a refused credential's
// message reaches the client (when the server requires keys), and ends each session with
// DELETE /mcp without warnings. Exits 0 when every check passed, 1 otherwise.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const base = (process.argv[2] ?? process.env.BASE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const mcpUrl = (root) => new URL(root.endsWith("/mcp") ? root : `${root}/mcp`);
const url = mcpUrl(base);
const keyedUrl = process.argv[3] ? mcpUrl(process.argv[3].replace(/\/$/, "")) : url;
const failures = [];
const warnings = [];
for (const level of ["warn", "error"]) {
  const original = console[level];
  console[level] = (...args) => {
    warnings.push(args.map(String).join(" "));
    original(...args);
  };
}

async function step(title, fn) {
  process.stdout.write(`\n[${title}]\n`);
  try {
    await fn();
    process.stdout.write("    ok\n");
  } catch (err) {
    failures.push(`${title}: ${err?.message ?? err}`);
    process.stdout.write(`    FAIL: ${err?.message ?? err}\n`);
  }
}

function require(cond, message) {
  if (!cond) throw new Error(message);
}

async function connect(protocolVersion, headers = {}, target = url) {
  const client = new Client({ name: "ts-sdk-check", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(target, { requestInit: { headers } });
  if (protocolVersion) {
    // The SDK offers its latest version; an older client is simulated by offering another.
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      if (message.method === "initialize") message.params.protocolVersion = protocolVersion;
      return send(message, options);
    };
  }
  await client.connect(transport);
  return { client, transport };
}

async function session(protocolVersion) {
  const { client, transport } = await connect(protocolVersion);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  process.stdout.write(`    negotiated ${client.getServerVersion()?.name} ${transport.protocolVersion ?? ""}; ${names.length} tools\n`);
  require(names.includes("find_tool") && names.includes("call_tool"), `tools/list: ${names}`);
  const find = tools.find((t) => t.name === "find_tool");
  require(find.annotations?.readOnlyHint === true, "find_tool has readOnlyHint");
  require(find.inputSchema.properties.threshold, "find_tool declares threshold");

  const found = await client.callTool({ name: "find_tool", arguments: { query: "multiply two numbers" } });
  require(!found.isError, `find_tool: ${JSON.stringify(found)}`);
  require(found.structuredContent.tools[0].name === "calculator", JSON.stringify(found.structuredContent));
  process.stdout.write(`    find_tool -> ${found.structuredContent.tools.map((t) => t.name).join(", ")}\n`);

  const called = await client.callTool({
    name: "call_tool",
    arguments: { name: "calculator", arguments: { expression: "6*7" } },
  });
  require(called.structuredContent.result === 42, `call_tool: ${JSON.stringify(called)}`);
  const bad = await client.callTool({
    name: "call_tool",
    arguments: { name: "calculator", arguments: { expr: 1 } },
  });
  require(bad.isError === true && bad.structuredContent.code === "invalid_arguments", JSON.stringify(bad));
  await transport.terminateSession();
  await client.close();
}

await step("session at 2025-11-25: list, find, call, close with DELETE", () => session(null));
await step("session at 2025-03-26: list, find, call, close with DELETE", () => session("2025-03-26"));

await step("a refused credential's message reaches the client", async () => {
  try {
    const { client } = await connect(null, { Authorization: "Bearer not-a-key" }, keyedUrl);
    require(keyedUrl === url, `${keyedUrl} accepted a wrong key`);
    // A server without keys accepts anyone: nothing to refuse.
    process.stdout.write("    (the server takes no keys: skipped)\n");
    await client.close();
  } catch (err) {
    process.stdout.write(`    SDK error: ${err.message}\n`);
    require(/key|credential|token/i.test(err.message), `the message names the key: ${err.message}`);
  }
});

const leftovers = warnings.filter((w) => /session|terminat|DELETE/i.test(w));
await step("no SDK warnings", async () => require(leftovers.length === 0, leftovers.join("; ")));

process.stdout.write(`\nTypeScript SDK: ${failures.length ? "FAIL" : "PASS"}\n`);
for (const failure of failures) process.stdout.write(`FAILED: ${failure}\n`);
process.exit(failures.length ? 1 : 0);
