#!/usr/bin/env python3
"""End-to-end check of the tool registry's MCP endpoint, driven by the official
MCP Python SDK (PyPI package `mcp`).

    python tests/python/mcp_client_check.py [BASE_URL] [--mode auto|legacy|2026-07-28]

BASE_URL defaults to $BASE_URL, then http://127.0.0.1:8080; the MCP endpoint
is BASE_URL + "/mcp" (a URL that already ends in /mcp is used as is).

Works with both SDK lines, by feature detection rather than version numbers:

* 1.x (e.g. 1.30.0): `streamable_http_client` (or the older, now deprecated
  `streamablehttp_client`) yields (read, write, get_session_id); errors are
  `McpError`; only the `initialize` handshake exists, so --mode is ignored.
* 2.x (e.g. 2.3.0): `streamable_http_client` yields (read, write); errors are
  `MCPError`; the session can also do the stateless 2026-07-28 era
  (`server/discover`, no session, per-request `_meta` + headers).
  --mode auto (default, same policy as the SDK's high-level `Client`): probe
  `server/discover` at 2026-07-28 and fall back to `initialize` on any
  JSON-RPC error. --mode legacy: `initialize` only. --mode 2026-07-28:
  `server/discover` only, no fallback.

Results are read through `model_dump(by_alias=True)`, i.e. in wire spelling
(`isError`, `structuredContent`, `inputSchema`), because 1.x models use camelCase
attributes and 2.x models snake_case.

Prints a short transcript; exits 0 when every check passed, 1 when any failed,
2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import re
import sys
import traceback
from typing import Any

import anyio

try:
    import mcp.client.streamable_http as _shttp
    import mcp.types as mcp_types
    from mcp import ClientSession
    from mcp.shared import exceptions as _mcp_exceptions
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"FATAL: the MCP Python SDK is not importable ({exc}); pip install mcp", file=sys.stderr)
    sys.exit(2)

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
META_TOOLS = {
    # tool name -> properties its input schema must declare
    "find_tool": ("query", "limit", "category"),
    "call_tool": ("name", "arguments"),
    "list_tools": ("category", "limit", "offset"),
}
INVALID_PARAMS = -32602
MODERN_VERSION = "2026-07-28"

# --- SDK feature detection -------------------------------------------------

SDK_VERSION = importlib.metadata.version("mcp")

if hasattr(_shttp, "streamable_http_client"):  # 1.2x+ and 2.x
    _CONNECT = _shttp.streamable_http_client
elif hasattr(_shttp, "streamablehttp_client"):  # older 1.x
    _CONNECT = _shttp.streamablehttp_client
else:  # pragma: no cover
    print("FATAL: mcp.client.streamable_http has neither streamable_http_client "
          "nor streamablehttp_client", file=sys.stderr)
    sys.exit(2)
CONNECT_NAME = _CONNECT.__name__

# 2.x: MCPError; 1.x: McpError. Both carry `.error` (ErrorData: code, message, data).
MCP_ERRORS: tuple[type[BaseException], ...] = tuple(
    e for e in (getattr(_mcp_exceptions, "MCPError", None), getattr(_mcp_exceptions, "McpError", None)) if e
)

HAS_DISCOVER = hasattr(ClientSession, "discover")  # 2.x: 2026-07-28 era support


try:  # builtin from Python 3.11; anyio depends on the backport before that
    _ExceptionGroup: Any = BaseExceptionGroup
except NameError:  # pragma: no cover - Python 3.10
    from exceptiongroup import BaseExceptionGroup as _ExceptionGroup


class CheckFailed(Exception):
    pass


# --- small helpers ---------------------------------------------------------


def say(line: str = "") -> None:
    print(line, flush=True)


def wire(model: Any) -> Any:
    """A pydantic result in wire spelling (camelCase keys), or the value as is."""
    if hasattr(model, "model_dump"):
        return model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return model


def error_code(exc: BaseException) -> int | None:
    err = getattr(exc, "error", None)
    return getattr(err, "code", None) if err is not None else getattr(exc, "code", None)


def describe(exc: BaseException) -> str:
    """One line for an exception; unwraps (nested) exception groups."""
    while isinstance(exc, _ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, _ExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    code = error_code(exc) if isinstance(exc, MCP_ERRORS) else None
    if code is not None:
        return f"{type(exc).__name__} {code}: {exc.error.message}"  # type: ignore[attr-defined]
    errors = getattr(exc, "errors", None)
    if callable(errors) and hasattr(exc, "title"):  # pydantic: the server's answer did not fit the SDK's model
        try:
            fields = "; ".join(
                f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in errors()[:8]
            )
            return f"{type(exc).__name__}: the SDK rejected the server's {exc.title}: {fields}"
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def text_blocks(result: dict[str, Any]) -> list[str]:
    return [c.get("text", "") for c in result.get("content") or [] if c.get("type") == "text"]


def contains_42(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value == 42
    if isinstance(value, dict):
        return any(contains_42(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_42(v) for v in value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return re.search(r"(?<![\d.])42(\.0+)?(?![\d.])", value) is not None
        return contains_42(parsed) if not isinstance(parsed, str) else False
    return False


def require(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


# --- the checks --------------------------------------------------------------


class Checker:
    def __init__(self, session: Any, timeout: float) -> None:
        self.session = session
        self.timeout = timeout
        self.passed: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.current = ""

    async def step(self, title: str, fn: Any) -> bool:
        say(f"\n[{len(self.passed) + len(self.failed) + 1}] {title}")
        self.current = title
        try:
            with anyio.fail_after(self.timeout):
                await fn()
        except CheckFailed as exc:
            self.failed.append((title, str(exc)))
            say(f"    FAIL: {exc}")
            return False
        except TimeoutError:
            self.failed.append((title, f"no answer within {self.timeout:g}s"))
            say(f"    FAIL: no answer within {self.timeout:g}s")
            return False
        except Exception as exc:  # noqa: BLE001 - report, keep going
            self.failed.append((title, describe(exc)))
            say(f"    FAIL: unexpected {describe(exc)}")
            return False
        self.passed.append(title)
        say("    ok")
        return True

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        say(f"    -> tools/call {name} {short(arguments)}")
        try:
            result = await self.session.call_tool(name, arguments)
        except RuntimeError as exc:
            # The SDK re-validates structuredContent against the tool's outputSchema.
            raise CheckFailed(f"client-side result check failed: {exc}") from exc
        return wire(result)

    # tools/list: the three meta tools, each with an object input schema
    async def list_tools(self) -> None:
        tools: list[dict[str, Any]] = []
        cursor = None
        for _ in range(50):
            say("    -> tools/list" + (f" cursor={cursor}" if cursor else ""))
            if cursor is None:
                page = wire(await self.session.list_tools())
            else:
                page = wire(await self.session.list_tools(params=mcp_types.PaginatedRequestParams(cursor=cursor)))
            tools.extend(page.get("tools") or [])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        by_name = {t["name"]: t for t in tools}
        say(f"    <- {len(tools)} tools: {', '.join(sorted(by_name))}")
        missing = [n for n in META_TOOLS if n not in by_name]
        require(not missing, f"meta tools missing from tools/list: {missing}")
        for name, props in META_TOOLS.items():
            schema = by_name[name].get("inputSchema")
            require(isinstance(schema, dict), f"{name}: no inputSchema")
            require(schema.get("type") == "object", f"{name}: inputSchema.type is {schema.get('type')!r}, not 'object'")
            declared = schema.get("properties") or {}
            absent = [p for p in props if p not in declared]
            require(not absent, f"{name}: inputSchema lacks properties {absent} (has {sorted(declared)})")
            extra = " outputSchema" if by_name[name].get("outputSchema") else ""
            say(f"       {name:<10} inputSchema properties: {', '.join(declared)}; required: "
                f"{schema.get('required', [])}{extra and ';' + extra}")

    async def find_tool(self) -> None:
        result = await self.call("find_tool", {"query": "multiply two numbers"})
        require(not result.get("isError"), f"find_tool returned isError: {short(text_blocks(result))}")
        sc = result.get("structuredContent")
        require(isinstance(sc, dict), f"find_tool result has no structuredContent object (text: {short(text_blocks(result))})")
        hits = sc.get("tools")
        require(isinstance(hits, list), f"structuredContent.tools is not a list: {short(sc)}")
        for hit in hits[:5]:
            score = hit.get("score")
            score_s = f"{score:.3f}" if isinstance(score, (int, float)) else repr(score)
            say(f"    <- {hit.get('name')!s:<20} score={score_s}  {short(hit.get('description', ''), 60)}")
        if len(hits) > 5:
            say(f"    <- ... {len(hits) - 5} more")
        names = [h.get("name") for h in hits]
        require("calculator" in names, f"'calculator' not among find_tool results {names}")
        calc = hits[names.index("calculator")]
        require(isinstance(calc.get("score"), (int, float)), f"calculator hit has no numeric score: {short(calc)}")
        require(isinstance(calc.get("input_schema"), dict), f"calculator hit has no input_schema object: {short(calc)}")
        require(bool(text_blocks(result)), "find_tool result has no text content block")

    async def list_tools_meta(self) -> None:
        result = await self.call("list_tools", {})
        require(not result.get("isError"), f"list_tools returned isError: {short(text_blocks(result))}")
        sc = result.get("structuredContent")
        require(isinstance(sc, dict) and isinstance(sc.get("tools"), list),
                f"list_tools structuredContent has no tools list: {short(sc)}")
        require(len(sc["tools"]) > 0, "list_tools returned an empty tools list")
        names = [t.get("name") for t in sc["tools"]]
        say(f"    <- {len(names)} registered tools: {short(', '.join(map(str, names)), 120)}")

    async def call_calculator(self) -> None:
        result = await self.call("call_tool", {"name": "calculator", "arguments": {"expression": "6*7"}})
        say(f"    <- isError={result.get('isError', False)} structuredContent={short(result.get('structuredContent'))}")
        require(not result.get("isError"), f"calculator failed: {short(text_blocks(result))}")
        found = contains_42(result.get("structuredContent")) or any(contains_42(t) for t in text_blocks(result))
        require(found, f"42 not found in the result: {short(result)}")

    async def call_calculator_bad_args(self) -> None:
        result = await self.call("call_tool", {"name": "calculator", "arguments": {"expr": 1}})
        say(f"    <- isError={result.get('isError', False)} text={short(text_blocks(result), 120)}")
        require(result.get("isError") is True, f"expected isError: true for bad arguments, got {short(result)}")

    async def unknown_tool(self) -> None:
        say("    -> tools/call no_such_tool {}")
        try:
            result = await self.session.call_tool("no_such_tool", {})
        except MCP_ERRORS as exc:
            code = error_code(exc)
            say(f"    <- SDK raised {type(exc).__name__}: JSON-RPC error {code} {exc.error.message!r}")  # type: ignore[attr-defined]
            require(code == INVALID_PARAMS, f"expected JSON-RPC error {INVALID_PARAMS}, got {code}")
            return
        except RuntimeError as exc:
            raise CheckFailed(f"client-side result check failed: {exc}") from exc
        result = wire(result)
        say(f"    <- no exception: an error result, isError={result.get('isError', False)} "
            f"text={short(text_blocks(result), 120)}")
        require(result.get("isError") is True, f"unknown tool gave a non-error result: {short(result)}")


# --- connection / negotiation ----------------------------------------------


async def negotiate(session: Any, mode: str) -> str:
    """Run the handshake for `mode`, print what was negotiated, return the protocol version."""
    if not HAS_DISCOVER:
        if mode != "legacy":
            say(f"    (mcp {SDK_VERSION} has no 2026-07-28 support: --mode {mode} means initialize)")
        say("    -> initialize")
        info = wire(await session.initialize())
        say(f"    <- initialize: protocolVersion={info.get('protocolVersion')} "
            f"server={short(info.get('serverInfo'), 100)}")
        return str(info.get("protocolVersion"))

    if mode == "legacy":
        say("    -> initialize")
        await session.initialize()
    elif mode == MODERN_VERSION:
        say(f"    -> server/discover @{MODERN_VERSION} (no fallback)")
        await session.discover()
    else:
        # Show the probes that the SDK's own auto policy makes.
        real_send_discover = session.send_discover

        async def recording_send_discover(version: str) -> Any:
            say(f"    -> server/discover @{version}")
            try:
                return await real_send_discover(version)
            except MCP_ERRORS as exc:  # the SDK falls back on any JSON-RPC error (one -32022 case aside)
                say(f"    <- rejected ({describe(exc)}); falling back to initialize")
                raise

        session.send_discover = recording_send_discover
        try:
            try:
                from mcp.client._probe import negotiate_auto  # the policy behind Client(mode="auto")
            except ImportError:
                negotiate_auto = None
            if negotiate_auto is not None:
                await negotiate_auto(session)
            else:  # the same policy, by hand
                try:
                    await session.discover()
                except (*MCP_ERRORS, RuntimeError):
                    say("    -> initialize")
                    await session.initialize()
        finally:
            del session.send_discover

    if session.discover_result is not None:
        d = wire(session.discover_result)
        server = session.server_info
        say(f"    <- server/discover: supportedVersions={d.get('supportedVersions')} "
            f"server={short(wire(server), 100) if server else '(not stamped)'}")
        say("       stateless 2026-07-28 era: no initialize, no session id; every request carries "
            "_meta protocolVersion/clientInfo/clientCapabilities and Mcp-Protocol-Version/Mcp-Method headers")
    else:
        info = wire(session.initialize_result)
        say(f"    <- initialize: protocolVersion={info.get('protocolVersion')} "
            f"server={short(info.get('serverInfo'), 100)}")
    return str(session.protocol_version)


class SdkWarnings(logging.Handler):
    """Collects what the SDK logs at WARNING and above (e.g. "Session termination failed")."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


async def run(url: str, mode: str, timeout: float) -> int:
    say(f"MCP client check: mcp {SDK_VERSION} ({CONNECT_NAME}), mode={mode if HAS_DISCOVER else 'legacy'}")
    say(f"endpoint: {url}")
    checker: Checker | None = None
    sdk_warnings = SdkWarnings()
    logging.getLogger().addHandler(sdk_warnings)
    try:
        async with _CONNECT(url) as streams:
            read_stream, write_stream = streams[0], streams[1]
            get_session_id = streams[2] if len(streams) > 2 else None  # 1.x only
            async with ClientSession(read_stream, write_stream) as session:
                checker = Checker(session, timeout)

                async def connect() -> None:
                    version = await negotiate(session, mode)
                    if get_session_id is not None:
                        say(f"    Mcp-Session-Id: {get_session_id() or '(none: server is stateless)'}")
                    say(f"    negotiated protocol version: {version}")

                if not await checker.step("connect and negotiate", connect):
                    return finish(checker)
                await checker.step("tools/list has find_tool, call_tool, list_tools with input schemas",
                                   checker.list_tools)
                await checker.step("find_tool 'multiply two numbers' finds calculator", checker.find_tool)
                await checker.step("list_tools meta tool returns structuredContent.tools", checker.list_tools_meta)
                await checker.step("call_tool calculator 6*7 gives 42", checker.call_calculator)
                await checker.step("call_tool calculator with bad arguments gives isError",
                                   checker.call_calculator_bad_args)
                await checker.step("tools/call no_such_tool is an error", checker.unknown_tool)
    except Exception as exc:  # noqa: BLE001 - connection-level failure
        why = " ".join(describe(exc).split())
        if "HTTPStatusError" in why and not HAS_DISCOVER:
            why += (" (mcp 1.x ends the whole connection when a request gets a non-2xx HTTP status:"
                    " JSON-RPC errors must come back with HTTP 200)")
        say(f"\nFAIL: connection to {url} failed: {why}")
        if os.environ.get("MCP_CHECK_DEBUG"):
            traceback.print_exc()
        if checker is None:
            return 1
        checker.failed.append((f"connection (during: {checker.current})", why))
    if checker is None:  # pragma: no cover
        return 1
    # Closing a session-era connection sends DELETE /mcp; the SDK warns unless it gets 200/204.
    title = "the connection closes without SDK warnings (DELETE /mcp answers 204)"
    say(f"\n[{len(checker.passed) + len(checker.failed) + 1}] {title}")
    if sdk_warnings.messages:
        checker.failed.append((title, "; ".join(sdk_warnings.messages)))
    else:
        checker.passed.append(title)
    return finish(checker)


def finish(checker: Checker) -> int:
    say("")
    for title, why in checker.failed:
        say(f"FAILED: {title}: {why}")
    say(f"mcp-{SDK_VERSION}: {len(checker.passed)} passed, {len(checker.failed)} failed")
    return 1 if checker.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", nargs="?", default=os.environ.get("BASE_URL") or DEFAULT_BASE_URL,
                        help="server base URL (default: $BASE_URL or %(default)s); /mcp is appended")
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy", MODERN_VERSION],
                        help="2.x SDKs only: how to connect (default: auto = discover, then initialize)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("MCP_CHECK_TIMEOUT", "30")),
                        help="seconds allowed per step (default: 30)")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    if not re.match(r"^https?://", base):
        parser.error(f"BASE_URL must start with http:// or https://, got {args.base_url!r}")
    url = base if base.endswith("/mcp") else base + "/mcp"
    return anyio.run(run, url, args.mode, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
