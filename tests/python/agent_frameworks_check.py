#!/usr/bin/env python3
"""The registry's MCP endpoint through two agent frameworks' own MCP clients: fastmcp's
`Client` and the OpenAI Agents SDK's `MCPServerStreamableHttp` (no model is called).

    python tests/python/agent_frameworks_check.py BASE_URL --key KEY

The server at BASE_URL must require keys (MCP_API_KEYS) and accept KEY. With KEY each
framework connects, lists the meta tools, finds the calculator and calls it; without a key
and with a wrong one, the error it raises must carry the server's message (which key to
send), not only an HTTP status. Prints what each framework showed; exits 0 when every check
passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import sys
from collections.abc import Awaitable, Callable
from typing import Any

MESSAGES = {
    "missing": "this route needs credentials",
    "wrong": "the API key is not valid",
}
STATIC_KEY_HINT = "this server takes a static API key, not OAuth"


def flat(exc: BaseException) -> str:
    """An exception's message, out of any exception groups around it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(flat(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def with_fastmcp(url: str, headers: dict[str, str]) -> tuple[list[str], Any, Any]:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    async with Client(StreamableHttpTransport(url, headers=headers)) as client:
        tools = await client.list_tools()
        found = await client.call_tool("find_tool", {"query": "multiply two numbers"})
        called = await client.call_tool(
            "call_tool", {"name": "calculator", "arguments": {"expression": "6*7"}}
        )
        return [t.name for t in tools], found.structured_content, called.structured_content


async def with_openai_agents(url: str, headers: dict[str, str]) -> tuple[list[str], Any, Any]:
    from agents.mcp import MCPServerStreamableHttp

    async with MCPServerStreamableHttp(params={"url": url, "headers": headers}) as server:
        tools = await server.list_tools()
        found = await server.call_tool("find_tool", {"query": "multiply two numbers"})
        called = await server.call_tool(
            "call_tool", {"name": "calculator", "arguments": {"expression": "6*7"}}
        )
        dump = lambda result: result.model_dump(by_alias=True)["structuredContent"]  # noqa: E731
        return [t.name for t in tools], dump(found), dump(called)


FRAMEWORKS: dict[str, tuple[str, Callable[[str, dict[str, str]], Awaitable[Any]]]] = {
    "fastmcp": ("fastmcp", with_fastmcp),
    "openai-agents": ("openai-agents", with_openai_agents),
}


async def run(url: str, key: str) -> int:
    failures: list[str] = []

    def check(condition: bool, message: str) -> None:
        print(f"    {'ok' if condition else 'FAIL'}: {message}", flush=True)
        if not condition:
            failures.append(message)

    for name, (package, session) in FRAMEWORKS.items():
        print(f"\n{name} {importlib.metadata.version(package)}", flush=True)
        try:
            names, found, called = await asyncio.wait_for(
                session(url, {"Authorization": f"Bearer {key}"}), 30
            )
            check({"find_tool", "call_tool", "list_tools"} <= set(names), f"tools/list: {names}")
            first = (found or {}).get("tools", [{}])[0].get("name")
            check(first == "calculator", f"find_tool 'multiply two numbers' ranks {first} first")
            check(called == {"result": 42}, f"call_tool calculator 6*7: {called}")
        except Exception as exc:  # noqa: BLE001 - report and go on
            check(False, f"with the key: {flat(exc)}")
        for case, headers in (("missing", {}), ("wrong", {"Authorization": "Bearer not-the-key"})):
            try:
                await asyncio.wait_for(session(url, headers), 30)
            except Exception as exc:  # noqa: BLE001 - the refusal is what is checked
                shown = flat(exc)
                check(MESSAGES[case] in shown and STATIC_KEY_HINT in shown,
                      f"{case} key: the server's message reaches the caller: {shown}")
            else:
                check(False, f"{case} key: connected without a valid key")
    print(f"\nagent frameworks: {'FAIL' if failures else 'PASS'}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--key", required=True, help="a key the server accepts (MCP_API_KEYS)")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    url = base if base.endswith("/mcp") else base + "/mcp"
    return asyncio.run(run(url, args.key))


if __name__ == "__main__":
    sys.exit(main())
