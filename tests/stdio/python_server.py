"""A small MCP server that speaks stdio, written with the official Python SDK (`mcp`).

The stdio upstream tests (tests/api/stdio.rs) start it through the registry: they import
its tools, call them, make one fail, kill it in the middle of a slow call and check its
environment is only what the registry was told to give it.
"""

import asyncio
import os
import signal
import sys
import time

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError

from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("stdio-check")


class Sum(BaseModel):
    sum: float


@server.tool(
    title="Add two numbers",
    annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True),
)
def add(a: float, b: float) -> Sum:
    """Adds two numbers and returns their sum."""
    return Sum(sum=a + b)


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the given reason."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
async def sleep(seconds: float, started_file: str = "") -> str:
    """Waits the given number of seconds, then answers. Creates started_file, if given,
    once the wait has begun."""
    if started_file:
        with open(started_file, "w") as started:
            started.write(str(os.getpid()))
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


@server.tool()
def environment() -> dict[str, str]:
    """The server's process id, working directory and environment variables."""
    print("environment asked for", file=sys.stderr, flush=True)
    return {"pid": str(os.getpid()), "cwd": os.getcwd(), **os.environ}


if __name__ == "__main__":
    # STUBBORN=1: a server that ignores SIGTERM and lingers after its stdin closes, which
    # only SIGKILL ends.
    stubborn = os.environ.get("STUBBORN") == "1"
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("stdio-check server starting", file=sys.stderr, flush=True)
    server.run("stdio")
    while stubborn:
        time.sleep(1)
