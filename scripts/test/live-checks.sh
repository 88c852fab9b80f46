#!/usr/bin/env bash
# Checks against a live server: starts the built binary on a free loopback port
# with a throwaway embedded store, waits until it is ready, runs every client
# check against it, and stops it again (also on failure).
#
# Usage: scripts/test/live-checks.sh [BINARY]   (default target/debug/tool-registry)
#
# Checks, in order:
#   1. the official MCP Python SDK in two versions (scripts/test/mcp-python-check.sh)
#      and the official TypeScript SDK (tests/typescript, npm ci on first use);
#   2. examples/register_tools.rs registers the 172 real MCP server tools of
#      ../shared/data/mcp_servers/tools.jsonl over the admin API (or, without
#      that folder, the sample examples/data/tools.jsonl);
#   3. examples/search_tools.rs ranks them for two tasks in each search mode;
#   4. examples/mcp_api_examples.sh calls every REST route and one MCP JSON-RPC
#      exchange with curl (registering and deleting its own tools);
#   5. scripts/test/api-fuzz.sh fuzzes every documented route with schemathesis.
#
# The server's tool calls go to TOOL_PROXY_URL, a closed loopback port: the HTTP tools
# and upstream MCP servers that the checks (and the fuzzer) register are never contacted
# and no name is looked up, so the checks send nothing beyond loopback.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
BINARY="${1:-${CARGO_TARGET_DIR:-target}/debug/tool-registry}"
[[ -x $BINARY ]] || cargo build --quiet

DATA_DIR="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE_URL="http://127.0.0.1:$PORT"
SERVER_PID=""

# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID"
		wait "$SERVER_PID" || true
	fi
	rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# A free port nobody listens on: outbound requests fail at once, on loopback.
DEAD_PROXY="http://127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env -u DATABASE_URL HOST=127.0.0.1 PORT="$PORT" REGISTRY_DATA_DIR="$DATA_DIR" TOOL_PROXY_URL="$DEAD_PROXY" \
	LOG_FORMAT=json RUST_LOG=warn "$BINARY" serve >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do
	if curl -fsS "$BASE_URL/health/ready" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		echo "live-checks: the server exited during start-up:" >&2
		cat "$DATA_DIR/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
curl -fsS "$BASE_URL/health/ready" >/dev/null
echo "live-checks: server ready at $BASE_URL (pid $SERVER_PID)" >&2

bash scripts/test/mcp-python-check.sh "$BASE_URL"
echo "live-checks: the official TypeScript SDK (tests/typescript)" >&2
[[ -d tests/typescript/node_modules ]] || (cd tests/typescript && npm ci --no-audit --no-fund)
node tests/typescript/mcp_client_check.mjs "$BASE_URL"

echo "live-checks: registering the MCP server tools (examples/register_tools.rs)" >&2
# The 172 tools of 21 public MCP servers when the shared data sits beside the
# repository; otherwise the project's own small sample in the same format.
TOOLS_FILE="$REPO_ROOT/../shared/data/mcp_servers/tools.jsonl"
[[ -f $TOOLS_FILE ]] || TOOLS_FILE="$REPO_ROOT/examples/data/tools.jsonl"
cargo run --quiet --example register_tools -- --base-url "$BASE_URL" "$TOOLS_FILE"
echo "live-checks: searching them (examples/search_tools.rs)" >&2
cargo run --quiet --example search_tools -- --base-url "$BASE_URL" "create a github issue" "read a file from disk"
echo "live-checks: every REST route with curl (examples/mcp_api_examples.sh)" >&2
BASE_URL="$BASE_URL" bash examples/mcp_api_examples.sh
echo "live-checks: fuzzing the REST API from its OpenAPI document (scripts/test/api-fuzz.sh)" >&2
bash scripts/test/api-fuzz.sh "$BASE_URL"
echo "live-checks: all checks passed" >&2
