#!/usr/bin/env bash
# Fuzzes the built-in tools' parsers (the calculator's expressions and
# operations, csv_to_json, json_to_csv, flatten_json, unflatten_json) with
# cargo-fuzz and libFuzzer, on the stable toolchain.
#
# Usage:
#   scripts/test/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   scripts/test/fuzz.sh                  every target for 20 seconds
#   scripts/test/fuzz.sh 600              every target for 10 minutes
#   scripts/test/fuzz.sh 60 csv_to_json   one target for a minute
#
# The targets are in fuzz/fuzz_targets/, a crate of its own (fuzz/Cargo.toml,
# its own workspace and Cargo.lock) that is not part of the main build. Each
# one checks properties of a tool, not only that it does not panic; see the
# comment at the top of each target.
#
# cargo-fuzz (pinned below) is installed with `cargo install --locked` into
# $CARGO_FUZZ_ROOT (default target/tools at the repository root) when it is
# missing. Builds go to $FUZZ_TARGET_DIR (default fuzz/target), never to the
# main target/ directory.
#
# Stable toolchain: the targets are built with `--sanitizer none`, which
# needs no nightly-only flag (the coverage instrumentation that libFuzzer uses
# is stable); libfuzzer-sys compiles libFuzzer itself with the system C++
# compiler. FUZZ_SANITIZER=address builds with AddressSanitizer instead, which
# on a stable toolchain needs RUSTC_BOOTSTRAP=1: this script sets it for that
# case only.
#
# Corpora grow in fuzz/corpus/TARGET/ (seeded on first use) and crashing
# inputs are saved in fuzz/artifacts/TARGET/; both are git-ignored. The
# fuzzer's output for each target goes to $FUZZ_TARGET_DIR/logs/TARGET.log.
# Every target runs even when one fails; the script then exits non-zero,
# after printing each failure's message, where its input was saved and how to
# replay it (running the target's binary with the saved file as argument).
#
# Environment:
#   FUZZ_SANITIZER   none (default) or address
#   FUZZ_TIMEOUT     seconds one input may take before it counts as a hang (default 10)
#   FUZZ_ARGS        extra libFuzzer flags, e.g. FUZZ_ARGS='-max_len=16384'
#   FUZZ_TARGET_DIR  build directory (default fuzz/target)
#   CARGO_FUZZ_ROOT  where cargo-fuzz is installed (default target/tools)
set -euo pipefail
shopt -s inherit_errexit

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"

CARGO_FUZZ_VERSION=0.13.2

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

SECONDS_PER_TARGET="${1:-20}"
if [[ $# -gt 0 ]]; then
	shift
fi
[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] ||
	die "SECONDS_PER_TARGET must be a positive whole number, got '$SECONDS_PER_TARGET' (usage: scripts/test/fuzz.sh [SECONDS_PER_TARGET] [TARGET...])"

SANITIZER="${FUZZ_SANITIZER:-none}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
CARGO_FUZZ_ROOT="${CARGO_FUZZ_ROOT:-$REPO_ROOT/target/tools}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$REPO_ROOT/fuzz/target}"
LOG_DIR="$CARGO_TARGET_DIR/logs"

case "$SANITIZER" in
none) ;;
address)
	# -Zsanitizer is nightly-only; RUSTC_BOOTSTRAP=1 lets stable rustc accept it.
	export RUSTC_BOOTSTRAP=1
	;;
*) die "FUZZ_SANITIZER must be none or address, got '$SANITIZER'" ;;
esac

# cargo-fuzz, pinned, in a project-local root.
if [[ "$("$CARGO_FUZZ_ROOT/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
	log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $CARGO_FUZZ_ROOT"
	# Without CARGO_TARGET_DIR, cargo install builds in a throwaway directory.
	env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
		--locked --root "$CARGO_FUZZ_ROOT" >&2
fi
export PATH="$CARGO_FUZZ_ROOT/bin:$PATH"

if [[ ${CI:-} == true ]]; then
	cargo --version >&2
	rustc --version >&2
	cargo fuzz --version >&2
fi

mapfile -t ALL_TARGETS < <(cargo fuzz list)
[[ ${#ALL_TARGETS[@]} -gt 0 ]] || die "cargo fuzz list found no targets in fuzz/"
if [[ $# -gt 0 ]]; then
	TARGETS=("$@")
	for target in "${TARGETS[@]}"; do
		printf '%s\n' "${ALL_TARGETS[@]}" | grep -qxF -- "$target" ||
			die "no fuzz target '$target'; the targets are: ${ALL_TARGETS[*]}"
	done
else
	TARGETS=("${ALL_TARGETS[@]}")
fi

TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BUILD_ARGS=(--sanitizer "$SANITIZER" --target "$TRIPLE")
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"
if [[ $SANITIZER == address ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
fi

log "building ${#TARGETS[@]} fuzz target(s) (sanitizer: $SANITIZER) in $CARGO_TARGET_DIR"
t0=$SECONDS
if [[ $# -gt 0 ]]; then
	for target in "${TARGETS[@]}"; do
		cargo fuzz build "${BUILD_ARGS[@]}" "$target" >&2
	done
else
	cargo fuzz build "${BUILD_ARGS[@]}" >&2
fi
log "built in $((SECONDS - t0))s"

# Writes the seed inputs of a target whose corpus is still empty.
seed_corpus() {
	local target=$1 dir="fuzz/corpus/$1" i=0 seed
	local -a seeds=()
	mkdir -p "$dir"
	if [[ -n "$(ls -A "$dir")" ]]; then
		return 0
	fi
	case "$target" in
	calculator_raw)
		seeds=('(2+3)*4^2' '7/2' '2^3^2' '-2^2' '1 - -1' '10 % 4' '1e-3 * 2' '.5 + 5.'
			'2E2 + 1' '1e+2' '2^53 + 2' '1/(1/0)' '0^-1' '2^1024' '((1))' '(-8)^(1/3)')
		;;
	csv_to_json)
		# First byte: 0x80 = infer types; low bits pick the delimiter (0 = none, 2 = ';').
		seeds=('\x00a,b\n1,2\n3,4' '\x80a,b,c,d,e,f\n1,-2.5,true,,false,x\n'
			'\x00a,b\r\n"x,y","say ""hi"""\r\n"two\nlines",\r\n' '\x02a;b\n1,5;2\n'
			'\x80a,b,c,d\n9223372036854775807,18446744073709551615,99999999999999999999,1e999\n'
			'\x00a,b\n1,2\n3\n' '\x00a,a\n1,2\n')
		;;
	*) ;; # structured targets start from the empty input
	esac
	for seed in "${seeds[@]}"; do
		i=$((i + 1))
		printf '%b' "$seed" >"$dir/seed-$i"
	done
}

mkdir -p "$LOG_DIR"
FAILED=()
SUMMARY=()
for target in "${TARGETS[@]}"; do
	seed_corpus "$target"
	logfile="$LOG_DIR/$target.log"
	log "$target: fuzzing for ${SECONDS_PER_TARGET}s (output: $logfile)"
	t0=$SECONDS
	rc=0
	mkdir -p "fuzz/artifacts/$target"
	# The binaries built above, run directly: `cargo fuzz run` would rebuild
	# them first whenever src/ changed in the meantime.
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
	"$BIN_DIR/$target" -artifact_prefix="$REPO_ROOT/fuzz/artifacts/$target/" \
		-max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -print_final_stats=1 \
		${FUZZ_ARGS:-} "$REPO_ROOT/fuzz/corpus/$target" >"$logfile" 2>&1 || rc=$?
	took=$((SECONDS - t0))
	if [[ $rc -eq 0 ]]; then
		runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)"
		done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logfile" | tail -n 1 || true)"
		cov="$(sed -E -n 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")"
		corpus="$(sed -E -n 's/.* corp: ([0-9]+).*/\1/p' <<<"$done_line")"
		SUMMARY+=("$(printf '%-22s ok      %4ss  %s runs, coverage %s, corpus %s' \
			"$target" "$took" "${runs:-?}" "${cov:-?}" "${corpus:-?}")")
		continue
	fi
	FAILED+=("$target")
	SUMMARY+=("$(printf '%-22s FAILED  %4ss  (exit %s)' "$target" "$took" "$rc")")
	log "$target: FAILED (exit $rc)"
	if grep -q 'panicked at' "$logfile"; then
		# The panic and its message, without the backtrace.
		sed -n '/panicked at/,/^stack backtrace:\|^note: /p' "$logfile" | head -n 40 >&2
	else
		tail -n 40 "$logfile" >&2
	fi
	artifacts="$(sed -n 's/.*Test unit written to //p' "$logfile")"
	if [[ -n $artifacts ]]; then
		while IFS= read -r artifact; do
			log "$target: the failing input was saved to $artifact"
			log "$target: replay it with: $BIN_DIR/$target $artifact"
		done <<<"$artifacts"
	else
		log "$target: no input was saved (a build or setup failure?); see $logfile"
	fi
done

{
	printf '\nfuzz: summary (%ss per target)\n' "$SECONDS_PER_TARGET"
	for line in "${SUMMARY[@]}"; do
		printf '  %s\n' "$line"
	done
} >&2
if [[ ${#FAILED[@]} -gt 0 ]]; then
	log "FAILED: ${FAILED[*]}"
	exit 1
fi
log "all ${#TARGETS[@]} target(s) ran ${SECONDS_PER_TARGET}s without a failure"
