#!/usr/bin/env bash
# Back up the tool-registry PostgreSQL database (tools, embeddings,
# executions) with pg_dump in custom format, into a timestamped file, and
# keep only the newest BACKUP_KEEP backups.
#
# Usage:
#   DATABASE_URL=postgres://... deploy/scripts/backup.sh
#
# Environment:
#   DATABASE_URL   the database to back up (required)
#   BACKUP_DIR     where backups go (default: ./backups)
#   BACKUP_KEEP    how many of the newest backups to keep (default: 7; 0 keeps all)
#   BACKUP_PREFIX  file name prefix (default: tool-registry)
#
# Prints the path of the new backup on stdout; progress goes to stderr.
# pg_dump must be at least as new as the server (major version); restore with
# deploy/scripts/restore.sh. The dump includes `CREATE EXTENSION vector`, so the
# target server needs pgvector installed, not yet enabled.
set -euo pipefail
shopt -s inherit_errexit

log() { printf 'backup: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL is not set"
BACKUP_DIR="${BACKUP_DIR:-./backups}"
BACKUP_KEEP="${BACKUP_KEEP:-7}"
BACKUP_PREFIX="${BACKUP_PREFIX:-tool-registry}"
[[ $BACKUP_KEEP =~ ^[0-9]+$ ]] || die "BACKUP_KEEP must be a whole number (got '$BACKUP_KEEP')"
[[ $BACKUP_PREFIX =~ ^[A-Za-z0-9._-]+$ ]] || die "BACKUP_PREFIX may use letters, digits, '.', '_' and '-' only"
command -v pg_dump >/dev/null 2>&1 || die "pg_dump not found on PATH"

mkdir -p "$BACKUP_DIR"
umask 077 # backups hold the whole catalogue: owner-only files

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
file="$BACKUP_DIR/$BACKUP_PREFIX-$stamp.dump"
n=1
while [[ -e $file ]]; do # two backups within one second
	file="$BACKUP_DIR/$BACKUP_PREFIX-$stamp-$n.dump"
	n=$((n + 1))
done
partial="$file.partial"

# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() { rm -f "$partial"; }
trap cleanup EXIT

log "$(pg_dump --version)"
log "dumping into $file"
# --no-owner / --no-privileges: restorable into a database owned by another role.
pg_dump --dbname="$DATABASE_URL" --format=custom --compress=6 \
	--no-owner --no-privileges --file="$partial" ||
	die "pg_dump failed"
# A readable table of contents proves the archive is complete.
pg_restore --list "$partial" >/dev/null 2>&1 || die "the new archive cannot be read back"
mv "$partial" "$file"
log "done: $(du -h "$file" | cut -f1) in $file"

# Retention: the newest BACKUP_KEEP files with this prefix stay. The
# timestamped names sort by age.
if [[ $BACKUP_KEEP -gt 0 ]]; then
	mapfile -t all < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$BACKUP_PREFIX-*.dump" -printf '%f\n' | sort -r)
	if [[ ${#all[@]} -gt $BACKUP_KEEP ]]; then
		for old in "${all[@]:BACKUP_KEEP}"; do
			log "retention: removing $old"
			rm -f -- "${BACKUP_DIR:?}/$old"
		done
	fi
	log "retention: keeping the newest $BACKUP_KEEP"
fi

printf '%s\n' "$file"
