#!/usr/bin/env bash
# Check the registry's MCP endpoint with the official MCP Python SDK (`mcp`),
# in two pinned versions, each in its own venv under target/mcp-python/.
#
#   scripts/test/mcp-python-check.sh BASE_URL [extra args for the check script]
#   scripts/test/mcp-python-check.sh --venv   only set up the newest SDK's venv and print
#                                        its python (the stdio upstream tests use it)
#
# e.g. scripts/test/mcp-python-check.sh http://127.0.0.1:8080
#      scripts/test/mcp-python-check.sh http://127.0.0.1:8080 --mode legacy
#
# BASE_URL defaults to $BASE_URL, then http://127.0.0.1:8080; the endpoint is
# BASE_URL/mcp. The server must already be running. Runs
# tests/python/mcp_client_check.py once per SDK version (both always run) and
# exits non-zero if either run failed. Needs python3 (3.10+) with venv, and
# access to the Python package index on first use (venvs are reused after).
# Environment: PYTHON (default python3), MCP_CHECK_TIMEOUT (seconds per step).
set -euo pipefail

# Newest release: its streamable HTTP client first probes `server/discover` at
# protocol 2026-07-28 (stateless era, no initialize, no session) and falls back
# to `initialize` offering 2025-11-25 when the server rejects the probe.
MCP_SDK_LATEST=2.3.0
# Newest 1.x release (the last before 2.0): initialize-handshake era only; it
# offers 2025-11-25 in `initialize` and knows nothing of 2026-07-28 or
# `server/discover`, so it covers every client still on the 1.x line.
MCP_SDK_HANDSHAKE=1.30.0

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    --venv) VENV_ONLY=1 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHECK="$ROOT/tests/python/mcp_client_check.py"
VENVS="$ROOT/target/mcp-python"
PYTHON="${PYTHON:-python3}"

# Sets VENV_PY to the venv's python for `mcp==$1`, creating or repairing the venv as needed.
venv_for() {
    local version="$1"
    local venv="$VENVS/venv-$version"
    local py="$venv/bin/python"
    if [[ -x "$py" ]] && [[ "$("$py" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true)" == "$version" ]]; then
        VENV_PY="$py"
        return
    fi
    echo "== setting up $venv (mcp==$version)" >&2
    rm -rf "$venv"
    mkdir -p "$VENVS"
    "$PYTHON" -m venv "$venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "mcp==$version" >&2
    VENV_PY="$py"
}

if [[ ${VENV_ONLY:-0} == 1 ]]; then
    venv_for "$MCP_SDK_LATEST"
    echo "$VENV_PY"
    exit 0
fi

BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8080}}"
[[ $# -gt 0 ]] && shift
case "$BASE_URL" in
    http://*|https://*) ;;
    *) echo "error: BASE_URL must start with http:// or https://, got '$BASE_URL'" >&2; usage >&2; exit 2 ;;
esac

status=0
results=()
for version in "$MCP_SDK_LATEST" "$MCP_SDK_HANDSHAKE"; do
    venv_for "$version"
    echo
    echo "================ mcp $version ================"
    if "$VENV_PY" "$CHECK" "$BASE_URL" "$@"; then
        results+=("mcp $version: PASS")
    else
        results+=("mcp $version: FAIL")
        status=1
    fi
done

echo
printf '%s\n' "${results[@]}"
exit "$status"
