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
#      MCP authorization discovery with the Python SDK's OAuth client against a second
#      server and an authorization server on loopback (tests/python/oauth_check.py);
#      mcp-remote (the stdio bridge of desktop clients, tests/typescript), fastmcp and the
#      OpenAI Agents SDK against a third server that requires a key
#      (tests/python/agent_frameworks_check.py, pinned, in target/mcp-python/);
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
SERVER_PIDS=()

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
	for pid in "${SERVER_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			wait "$pid" || true
		fi
	done
	rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# A free port nobody listens on: outbound requests fail at once, on loopback.
DEAD_PROXY="http://127.0.0.1:$(free_port)"

# start_server NAME PORT [VAR=value ...]: the binary with its own store under $DATA_DIR/NAME,
# started and waited for until ready.
start_server() {
	local name="$1" port="$2"
	shift 2
	mkdir -p "$DATA_DIR/$name"
	env -u DATABASE_URL HOST=127.0.0.1 PORT="$port" REGISTRY_DATA_DIR="$DATA_DIR/$name" \
		TOOL_PROXY_URL="$DEAD_PROXY" LOG_FORMAT=json RUST_LOG=warn "$@" "$BINARY" serve \
		>"$DATA_DIR/$name.log" 2>&1 &
	local pid=$!
	SERVER_PIDS+=("$pid")
	for _ in $(seq 1 300); do
		if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
			echo "live-checks: $name server ready at http://127.0.0.1:$port (pid $pid)" >&2
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "live-checks: the $name server exited during start-up:" >&2
			cat "$DATA_DIR/$name.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "live-checks: the $name server was not ready in 30 s" >&2
	exit 1
}

PORT="$(free_port)"
BASE_URL="http://127.0.0.1:$PORT"
start_server open "$PORT"

bash scripts/test/mcp-python-check.sh "$BASE_URL"
echo "live-checks: the official TypeScript SDK (tests/typescript)" >&2
[[ -x tests/typescript/node_modules/.bin/mcp-remote ]] || (cd tests/typescript && npm ci --no-audit --no-fund)
# A server that requires a key, for the checks of refused credentials (and the frameworks below).
KEYED_PORT="$(free_port)"
KEYED_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
start_server keyed "$KEYED_PORT" MCP_API_KEYS="$KEYED_KEY"
node tests/typescript/mcp_client_check.mjs "$BASE_URL" "http://127.0.0.1:$KEYED_PORT"
echo "live-checks: mcp-remote, the desktop clients' stdio bridge (tests/typescript/mcp_remote_check.mjs)" >&2
node tests/typescript/mcp_remote_check.mjs "http://127.0.0.1:$KEYED_PORT" "$KEYED_KEY"

echo "live-checks: OAuth discovery with the Python SDK's OAuth client (tests/python/oauth_check.py)" >&2
# A second server that names an authorization server, which the check itself runs on
# AUTH_PORT: the SDK must find it from the 401 alone and come back with a token for /mcp.
AUTH_PORT="$(free_port)"
OAUTH_PORT="$(free_port)"
OAUTH_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
start_server oauth "$OAUTH_PORT" MCP_AUTHORIZATION_SERVERS="http://127.0.0.1:$AUTH_PORT" \
	JWT_SECRET="$OAUTH_SECRET" JWT_ISSUER="http://127.0.0.1:$AUTH_PORT" \
	JWT_AUDIENCE="http://127.0.0.1:$OAUTH_PORT/mcp" MCP_RESOURCE_URL="http://127.0.0.1:$OAUTH_PORT/mcp"
# The two SDK versions (and venvs) that scripts/mcp-python-check.sh set up.
for version in $(sed -n 's/^MCP_SDK_[A-Z]*=//p' scripts/mcp-python-check.sh); do
	target/mcp-python/venv-$version/bin/python tests/python/oauth_check.py "http://127.0.0.1:$OAUTH_PORT" \
		--issuer "http://127.0.0.1:$AUTH_PORT" --secret "$OAUTH_SECRET"
done

echo "live-checks: agent frameworks' MCP clients (tests/python/agent_frameworks_check.py)" >&2
# fastmcp and the OpenAI Agents SDK, pinned, in their own venv (both need mcp 2.x), against a
# server that requires a key: with it they list, find and call; without it, or with a wrong
# one, the server's message must reach them.
FRAMEWORKS_VENV=target/mcp-python/venv-frameworks
FRAMEWORKS="fastmcp==4.2.3 openai-agents==0.24.0"
if [[ "$(cat "$FRAMEWORKS_VENV/pinned" 2>/dev/null)" != "$FRAMEWORKS" ]]; then
	rm -rf "$FRAMEWORKS_VENV"
	python3 -m venv "$FRAMEWORKS_VENV"
	# shellcheck disable=SC2086 # one word per requirement
	"$FRAMEWORKS_VENV/bin/pip" install --quiet --disable-pip-version-check $FRAMEWORKS
	echo "$FRAMEWORKS" >"$FRAMEWORKS_VENV/pinned"
fi
"$FRAMEWORKS_VENV/bin/python" tests/python/agent_frameworks_check.py "http://127.0.0.1:$KEYED_PORT" --key "$KEYED_KEY"

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
