#!/usr/bin/env bash
# The project's test command: formatting, lints, then the whole test suite
# against PostgreSQL with pgvector.
#
# Usage:
#   scripts/test.sh [ARGS...]        ARGS go to the test runner, e.g.
#   scripts/test.sh store::          only the tests whose name matches store::
#   SKIP_LINT=1 scripts/test.sh      skip cargo fmt and cargo clippy
#
# Database: the tests read TEST_DATABASE_URL, an admin URL of a server with
# pgvector where they may CREATE DATABASE. If TEST_DATABASE_URL or DATABASE_URL
# is set, that server is used; otherwise a throwaway server is started with
# scripts/dev/dev-postgres.sh and stopped again when this script exits (also on
# failure or Ctrl-C). DATABASE_URL is unset before cargo runs, so the
# application's own default settings are what the tests see.
#
# Tests run with `cargo nextest run --no-fail-fast` when cargo-nextest is
# installed, else with `cargo test --no-fail-fast`. Then scripts/test/live-checks.sh
# starts the server and runs real clients against it (the official MCP Python
# SDK, the examples, a schemathesis fuzz of the API), and scripts/test/fuzz.sh fuzzes
# the built-in tools for 10 s per target (SKIP_FUZZ=1 skips it; the first build
# of the fuzz targets takes a while), unless test-runner ARGS were given. With
# cargo-llvm-cov and LLVM's tools installed, the tests and the live checks run
# instrumented and the line coverage of src/ is printed and checked
# (scripts/test/coverage.sh; COVERAGE_MIN, default 90).
set -euo pipefail
shopt -s inherit_errexit

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

log() { printf '\n==> %s\n' "$*" >&2; }

PG_STARTED=0
FAILED=0
SUMMARY=()

# shellcheck disable=SC2329 # called from on_exit
print_summary() {
	local line
	{
		printf '\n==> summary\n'
		if [[ ${#SUMMARY[@]} -eq 0 ]]; then
			printf '  (no step ran)\n'
		fi
		for line in "${SUMMARY[@]}"; do
			printf '  %s\n' "$line"
		done
	} >&2
}

# shellcheck disable=SC2329 # called by the EXIT trap
on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ $PG_STARTED -eq 1 && -n ${PG_DATA_DIR:-} ]]; then
		bash "$REPO_ROOT/scripts/dev/dev-postgres.sh" stop || true
	fi
	print_summary
	if [[ $rc -eq 0 ]]; then
		printf 'scripts/test.sh: all steps succeeded\n' >&2
	else
		printf 'scripts/test.sh: FAILED (exit %s)\n' "$rc" >&2
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Run one step, record its outcome and duration, and carry on either way.
step() {
	local name=$1
	shift
	log "$name: $*"
	local t0=$SECONDS rc=0
	"$@" || rc=$?
	local took=$((SECONDS - t0))
	if [[ $rc -eq 0 ]]; then
		SUMMARY+=("$(printf '%-8s ok      %4ss  %s' "$name" "$took" "$*")")
	else
		SUMMARY+=("$(printf '%-8s FAILED  %4ss  %s  (exit %s)' "$name" "$took" "$*" "$rc")")
		FAILED=1
	fi
}

if [[ ${CI:-} == true ]]; then
	cargo --version >&2
	rustc --version >&2
fi

if [[ ${SKIP_LINT:-0} == 1 ]]; then
	SUMMARY+=("$(printf '%-8s skipped (SKIP_LINT=1)' lint)")
else
	step fmt cargo fmt --all -- --check
	step clippy cargo clippy --all-targets -- -D warnings
	step deploy bash scripts/test/validate-deploy.sh
fi

# The shared-cache tests start their own Redis servers.
if ! command -v "${REDIS_SERVER:-redis-server}" >/dev/null 2>&1; then
	log "redis-server not found: install the redis-server package (or set REDIS_SERVER)"
	exit 1
fi

# The database the tests use.
if [[ -n ${TEST_DATABASE_URL:-} ]]; then
	log "database: using TEST_DATABASE_URL from the environment"
elif [[ -n ${DATABASE_URL:-} ]]; then
	log "database: using DATABASE_URL from the environment as TEST_DATABASE_URL"
	TEST_DATABASE_URL="$DATABASE_URL"
else
	log "database: starting a throwaway PostgreSQL + pgvector server"
	t0=$SECONDS
	unset PG_DATA_DIR PG_PID
	PG_STARTED=1 # stop it on exit even if the start below is interrupted
	pg_env="$(bash "$REPO_ROOT/scripts/dev/dev-postgres.sh" start)" || {
		PG_STARTED=0
		SUMMARY+=("$(printf '%-8s FAILED  %4ss  scripts/dev/dev-postgres.sh start' postgres "$((SECONDS - t0))")")
		exit 1
	}
	eval "$pg_env"
	# pg_dump, pg_restore and psql matching the server: PG_BIN_DIR, first on PATH.
	pg_bin_env="$(bash "$REPO_ROOT/scripts/dev/dev-postgres.sh" env)"
	eval "$pg_bin_env"
	TEST_DATABASE_URL="$DATABASE_URL"
	SUMMARY+=("$(printf '%-8s ok      %4ss  scripts/dev/dev-postgres.sh start (pid %s)' postgres "$((SECONDS - t0))" "$PG_PID")")
fi
export TEST_DATABASE_URL
unset DATABASE_URL

# The offline embedding model, for the tests that prove it matches its reference.
step model bash scripts/fetch-model.sh

# The stdio upstream tests (tests/api/stdio.rs) start real MCP servers: one on the official
# Python SDK, run by the venv of scripts/test/mcp-python-check.sh (MCP_TEST_PYTHON), and the npm
# "everything" server from tests/typescript. Under CI=true they fail without them.
# shellcheck disable=SC2329 # called by step
stdio_servers() {
	MCP_TEST_PYTHON="$(bash "$REPO_ROOT/scripts/test/mcp-python-check.sh" --venv)" || return 1
	export MCP_TEST_PYTHON
	if [[ ! -f tests/typescript/node_modules/@modelcontextprotocol/server-everything/package.json ]]; then
		(cd tests/typescript && npm ci --no-audit --no-fund)
	fi
}
step servers stdio_servers

# Line coverage (scripts/test/coverage.sh) when cargo-llvm-cov and LLVM's llvm-cov and
# llvm-profdata are there and the whole suite runs: the tests and the live checks run
# instrumented, then the report of src/ fails below COVERAGE_MIN percent of lines.
COVERAGE=0
if [[ $# -eq 0 ]]; then
	if bash "$REPO_ROOT/scripts/test/coverage.sh" env >/dev/null; then
		COVERAGE=1
		bash "$REPO_ROOT/scripts/test/coverage.sh" clean
	else
		SUMMARY+=("$(printf '%-8s skipped (no cargo-llvm-cov or LLVM tools; see scripts/test/coverage.sh)' coverage)")
	fi
fi
measured() {
	if [[ $COVERAGE -eq 1 ]]; then
		bash "$REPO_ROOT/scripts/test/coverage.sh" with "$@"
	else
		"$@"
	fi
}

if cargo nextest --version >/dev/null 2>&1; then
	step tests measured cargo nextest run --no-fail-fast "$@"
else
	step tests measured cargo test --no-fail-fast "$@"
fi

# Real clients against a live server, then a short fuzz of the built-in tools'
# parsers with a fixed seed so runs repeat (both skipped when only some tests were
# asked for; scripts/test/fuzz.sh 600 fuzzes longer by hand, with fresh seeds).
if [[ $# -eq 0 ]]; then
	step clients measured bash scripts/test/live-checks.sh
	step console measured bash scripts/test/console-check.sh
	if [[ $COVERAGE -eq 1 ]]; then
		step coverage bash scripts/test/coverage.sh report
		if [[ -s target/coverage/total.txt ]]; then
			SUMMARY+=("$(printf '%-8s %s' covered "$(cat target/coverage/total.txt)")")
		fi
	fi
	if [[ ${SKIP_FUZZ:-0} == 1 ]]; then
		SUMMARY+=("$(printf '%-8s skipped (SKIP_FUZZ=1)' fuzz)")
	else
		step fuzz env FUZZ_ARGS="${FUZZ_ARGS:--seed=20261125}" bash scripts/test/fuzz.sh 10
	fi
fi

exit "$FAILED"
