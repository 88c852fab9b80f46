#!/usr/bin/env bash
# The operator console in a real browser (tests/browser/console_check.mjs): Debian's
# headless Chromium, driven by playwright-core (which downloads no browser), against
# the built server on both backends: the embedded store with admin credentials
# required, and PostgreSQL (TEST_DATABASE_URL or DATABASE_URL, a fresh database made
# with psql) with /admin open on loopback. A second server, on the embedded store,
# is the loopback upstream MCP server the console imports from.
#
# Usage: scripts/test/console-check.sh [BINARY]   (default target/debug/tool-registry)
# Screenshots go to CONSOLE_ARTIFACTS (default: a new temporary directory), printed
# at the start and the end. CONSOLE_BENCH_TOOLS=10000 also times the catalogue over
# that many more tools.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
BINARY="${1:-${CARGO_TARGET_DIR:-target}/debug/tool-registry}"
[[ -x $BINARY ]] || cargo build --quiet
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x $CHROMIUM ]] || {
	echo "console-check: no Chromium at $CHROMIUM (apt-get install chromium)" >&2
	exit 1
}
export CHROMIUM

ARTIFACTS="${CONSOLE_ARTIFACTS:-$(mktemp -d)/console-screenshots}"
mkdir -p "$ARTIFACTS"
echo "console-check: screenshots in $ARTIFACTS" >&2
WORK="$(mktemp -d)"
PIDS=()
DATABASE=""
PG_URL="${TEST_DATABASE_URL:-${DATABASE_URL:-}}"

# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			wait "$pid" || true
		fi
	done
	if [[ -n $DATABASE ]]; then
		psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME PORT [VAR=value...]: the server on 127.0.0.1:PORT with its own data dir.
start() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$WORK/$name"
	env -u DATABASE_URL -u ADMIN_API_KEYS HOST=127.0.0.1 PORT="$port" REGISTRY_DATA_DIR="$WORK/$name" \
		EMBEDDING_PROVIDER=hash LOG_FORMAT=json RUST_LOG=warn "$@" \
		"$BINARY" serve >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	local pid=$!
	for _ in $(seq 1 300); do
		if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "console-check: $name exited during start-up:" >&2
			cat "$WORK/$name.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "console-check: $name is not ready" >&2
	return 1
}

[[ -d tests/browser/node_modules ]] || (cd tests/browser && npm ci --no-audit --no-fund)

UPSTREAM_PORT="$(free_port)"
start upstream "$UPSTREAM_PORT"
UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT/mcp"

FAILED=0
run() {
	local name=$1 key=$2
	shift 2
	local port
	port="$(free_port)"
	start "$name" "$port" ALLOW_PRIVATE_TOOL_URLS=true "$@"
	echo "console-check: $name backend at http://127.0.0.1:$port" >&2
	node tests/browser/console_check.mjs "http://127.0.0.1:$port" "$UPSTREAM" "$ARTIFACTS/$name" $key || {
		echo "console-check: $name FAILED; its server log:" >&2
		tail -n 40 "$WORK/$name.log" >&2
		FAILED=1
	}
}

ADMIN_KEY="console-check-$(date +%s)-$RANDOM"
run embedded "$ADMIN_KEY" ADMIN_API_KEYS="$ADMIN_KEY"

if [[ -n $PG_URL ]]; then
	DATABASE="console_check_$(date +%s)_$RANDOM"
	psql -q "$PG_URL" -c "CREATE DATABASE $DATABASE" >/dev/null
	run postgres "" DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$DATABASE")"
else
	echo "console-check: no TEST_DATABASE_URL or DATABASE_URL: the PostgreSQL run is skipped" >&2
fi

echo "console-check: screenshots in $ARTIFACTS" >&2
exit "$FAILED"
