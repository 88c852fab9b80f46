#!/usr/bin/env bash
# Checks against a live server: starts the built binary on a free loopback port
# with a throwaway embedded store, waits until it is ready, runs every client
# check against it, and stops it again (also on failure).
#
# Usage: scripts/live-checks.sh [BINARY]   (default target/debug/tool-registry)
#
# Checks: the official MCP Python SDK in two versions (scripts/mcp-python-check.sh).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
BINARY="${1:-target/debug/tool-registry}"
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

env -u DATABASE_URL HOST=127.0.0.1 PORT="$PORT" REGISTRY_DATA_DIR="$DATA_DIR" \
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

bash scripts/mcp-python-check.sh "$BASE_URL"
