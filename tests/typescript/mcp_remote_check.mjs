// Live check of mcp-remote, the stdio bridge that desktop clients (Claude Desktop) run to
// reach a remote MCP server, configured as the README (and docs/mcp.md) shows:
// `mcp-remote URL --header "Authorization: Bearer ${REGISTRY_KEY}"` with REGISTRY_KEY in its
// environment. The official TypeScript SDK drives it over stdio, as a desktop client does.
//
//   node tests/typescript/mcp_remote_check.mjs KEYED_BASE_URL KEY
//
// KEYED_BASE_URL must require keys and accept KEY. With KEY the bridge connects, lists, finds
// and calls; with a wrong key it gives up (it tries OAuth first) and what it prints must carry
// the registry's message that a static key is expected. Exits 0 when every check passed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [base, key] = process.argv.slice(2);
if (!base || !key) {
  process.stderr.write("usage: mcp_remote_check.mjs KEYED_BASE_URL KEY\n");
  process.exit(2);
}
const url = base.replace(/\/$/, "").endsWith("/mcp") ? base : `${base.replace(/\/$/, "")}/mcp`;
const bridge = join(dirname(fileURLToPath(import.meta.url)), "node_modules", ".bin", "mcp-remote");
// mcp-remote keeps OAuth state under this folder: a fresh one per run, removed after.
const configDir = mkdtempSync(join(tmpdir(), "mcp-remote-check-"));
const failures = [];

function check(cond, message) {
  process.stdout.write(`    ${cond ? "ok" : "FAIL"}: ${message}\n`);
  if (!cond) failures.push(message);
}

async function viaBridge(registryKey) {
  const transport = new StdioClientTransport({
    command: bridge,
    args: [url, "--header", "Authorization: Bearer ${REGISTRY_KEY}"],
    env: { ...process.env, REGISTRY_KEY: registryKey, MCP_REMOTE_CONFIG_DIR: configDir },
    stderr: "pipe",
  });
  let printed = "";
  transport.stderr?.on("data", (chunk) => (printed += chunk));
  const client = new Client({ name: "mcp-remote-check", version: "1.0.0" });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    const found = await client.callTool({ name: "find_tool", arguments: { query: "multiply two numbers" } });
    const called = await client.callTool({
      name: "call_tool",
      arguments: { name: "calculator", arguments: { expression: "6*7" } },
    });
    return { tools: tools.map((t) => t.name), found: found.structuredContent, called: called.structuredContent };
  } catch (err) {
    return { error: `${err?.message ?? err}`, printed };
  } finally {
    await client.close().catch(() => {});
  }
}

const timeout = (ms) => new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms));
try {
  process.stdout.write(`mcp-remote against ${url}\n[with the key]\n`);
  const good = await Promise.race([viaBridge(key), timeout(30_000)]);
  check(!good.error, `connected${good.error ? `: ${good.error} ${good.printed}` : ""}`);
  if (!good.error) {
    check(["find_tool", "call_tool", "list_tools"].every((n) => good.tools.includes(n)), `tools/list: ${good.tools}`);
    check(good.found?.tools?.[0]?.name === "calculator", `find_tool ranks ${good.found?.tools?.[0]?.name} first`);
    check(good.called?.result === 42, `call_tool calculator 6*7: ${JSON.stringify(good.called)}`);
  }
  process.stdout.write("[with a wrong key]\n");
  const wrong = await Promise.race([viaBridge("not-the-key"), timeout(30_000)]);
  const fatal = (wrong.printed ?? "").split("\n").find((line) => /Fatal error/.test(line)) ?? "";
  process.stdout.write(`    mcp-remote printed: ${fatal.trim() || "(no fatal error line)"}\n`);
  check(Boolean(wrong.error), "the bridge did not connect");
  check(/static API key/.test(wrong.printed ?? ""), "what it printed says a static API key is expected");
} catch (err) {
  check(false, `${err?.message ?? err}`);
} finally {
  rmSync(configDir, { recursive: true, force: true });
}
process.stdout.write(`\nmcp-remote: ${failures.length ? "FAIL" : "PASS"}\n`);
process.exit(failures.length ? 1 : 0);
