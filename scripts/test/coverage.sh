#!/usr/bin/env bash
# Line coverage of src/ by the test suite, measured with cargo-llvm-cov
# (source-based coverage: rustc's -C instrument-coverage, read back with LLVM's
# llvm-profdata and llvm-cov). Only this crate is instrumented; dependencies are not.
#
# Usage:
#   eval "$(scripts/test/coverage.sh env)"   # exports LLVM_COV and LLVM_PROFDATA; exit 1 without the tools
#   scripts/test/coverage.sh clean           # forget earlier profiles; also removes this crate's own
#                                       # build outputs in target/, so they are built instrumented
#   scripts/test/coverage.sh with CMD...     # run CMD with builds instrumented and profiles collected
#                                       # (cargo nextest run, scripts/test/live-checks.sh, ...)
#   scripts/test/coverage.sh report          # lines, functions and regions per file of src/ and the total
#                                       # (also in target/coverage/report.txt and total.txt), lcov at
#                                       # target/coverage/lcov.info; fails below COVERAGE_MIN
#
# `with` uses the normal target directory: the crate's own code is compiled instrumented
# (a rustc wrapper adds the flags to it alone), and every process of it writes its profile
# under target/, so the live server's requests count as much as the tests'.
#
# The tools: `cargo install cargo-llvm-cov --locked`, and llvm-cov with llvm-profdata of
# LLVM 19 or newer (they read the profiles of rustc's LLVM 22): the rustup component
# llvm-tools, or Debian's llvm-19 package (/usr/lib/llvm-19/bin), or LLVM_COV and
# LLVM_PROFDATA pointing at them.
set -euo pipefail
shopt -s inherit_errexit

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"

# The floor the report enforces, in percent of src/'s lines.
COVERAGE_MIN="${COVERAGE_MIN:-90}"
# Files outside src/ that the instrumented build also sees.
readonly NOT_SRC='(^|/)(tests|examples|fuzz|benches)/'

die() {
	printf 'coverage.sh: %s\n' "$*" >&2
	exit 1
}

# Prints the directory holding both llvm-cov and llvm-profdata, newest LLVM first.
find_llvm_bin() {
	if [[ -n ${LLVM_COV:-} && -n ${LLVM_PROFDATA:-} ]]; then
		dirname "$LLVM_COV"
		return
	fi
	local sysroot dir
	sysroot="$(rustc --print sysroot)"
	for dir in "$sysroot"/lib/rustlib/*/bin /usr/lib/llvm-{25,24,23,22,21,20,19}/bin; do
		if [[ -x $dir/llvm-cov && -x $dir/llvm-profdata ]]; then
			printf '%s\n' "$dir"
			return
		fi
	done
	return 1
}

cmd_env() {
	cargo llvm-cov --version >/dev/null 2>&1 ||
		die "cargo-llvm-cov is not installed (cargo install cargo-llvm-cov --locked)"
	local bin
	bin="$(find_llvm_bin)" ||
		die "no llvm-cov/llvm-profdata of LLVM 19+ (rustup component add llvm-tools, or apt-get install llvm-19)"
	printf 'export LLVM_COV=%q\n' "${LLVM_COV:-$bin/llvm-cov}"
	printf 'export LLVM_PROFDATA=%q\n' "${LLVM_PROFDATA:-$bin/llvm-profdata}"
}

# The instrumented build's environment: the normal target directory, the crate's
# own code compiled with -C instrument-coverage, profiles written under target/.
instrumented_env() {
	local tools
	tools="$(cmd_env)"
	eval "$tools"
	printf '%s\n' "$tools"
	cargo llvm-cov show-env --sh 2>/dev/null
}

cmd_clean() {
	eval "$(instrumented_env)"
	cargo llvm-cov clean --workspace
}

cmd_with() {
	eval "$(instrumented_env)"
	exec "$@"
}

cmd_report() {
	eval "$(instrumented_env)"
	mkdir -p target/coverage
	cargo llvm-cov report --ignore-filename-regex "$NOT_SRC" --lcov --output-path target/coverage/lcov.info
	local rc=0
	cargo llvm-cov report --ignore-filename-regex "$NOT_SRC" --fail-under-lines "$COVERAGE_MIN" |
		tee target/coverage/report.txt || rc=$?
	# One line for the test script's summary.
	awk -v min="$COVERAGE_MIN" '$1 == "TOTAL" {
		printf "%s of lines in src/ (functions %s, regions %s; minimum %s%%)\n", $10, $7, $4, min
	}' target/coverage/report.txt >target/coverage/total.txt
	cat target/coverage/total.txt
	return "$rc"
}

case "${1:-}" in
env) cmd_env ;;
clean) cmd_clean ;;
with)
	shift
	[[ $# -gt 0 ]] || die "usage: scripts/test/coverage.sh with CMD [ARGS...]"
	cmd_with "$@"
	;;
report) cmd_report ;;
*) die "usage: scripts/test/coverage.sh env|clean|with CMD [ARGS...]|report" ;;
esac
