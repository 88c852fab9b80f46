#!/usr/bin/env bash
# Restore a backup made by deploy/scripts/backup.sh into the database at
# DATABASE_URL. Objects in the archive are dropped and recreated
# (pg_restore --clean --if-exists --no-owner); other objects in the database
# are left alone.
#
# Usage:
#   DATABASE_URL=postgres://... deploy/scripts/restore.sh BACKUP_FILE
#
# Environment:
#   DATABASE_URL     the database to restore into (required)
#   RESTORE_CONFIRM  set to `yes` to skip the question; required when stdin
#                    is not a terminal (CI, cron, kubectl exec without -t)
#   RESTORE_JOBS     parallel pg_restore jobs (default: 1)
#
# Stop the API (or scale it to 0) first, so nothing writes during the restore;
# after it, start the API again: it checks the schema version and the
# embedding model at start-up. pg_restore must be at least as new as the
# server that wrote the dump.
set -euo pipefail
shopt -s inherit_errexit

log() { printf 'restore: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ $# -eq 1 ]] || die "usage: deploy/scripts/restore.sh BACKUP_FILE"
file=$1
[[ -f $file && -r $file ]] || die "cannot read $file"
[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL is not set"
RESTORE_JOBS="${RESTORE_JOBS:-1}"
[[ $RESTORE_JOBS =~ ^[1-9][0-9]*$ ]] || die "RESTORE_JOBS must be a positive number"
command -v pg_restore >/dev/null 2>&1 || die "pg_restore not found on PATH"

pg_restore --list "$file" >/dev/null 2>&1 || die "$file is not a pg_dump custom-format archive"

# The target without its password, for the question and the log.
target="$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"

if [[ ${RESTORE_CONFIRM:-} != yes ]]; then
	if [[ -t 0 ]]; then
		printf 'restore: replace the objects in %s with the contents of %s? Type yes: ' "$target" "$file" >&2
		read -r answer
		[[ $answer == yes ]] || die "not confirmed; nothing changed"
	else
		die "stdin is not a terminal: set RESTORE_CONFIRM=yes to restore into $target"
	fi
fi

log "$(pg_restore --version)"
log "restoring $file into $target"
args=(--dbname="$DATABASE_URL" --clean --if-exists --no-owner --no-privileges --exit-on-error)
if [[ $RESTORE_JOBS -eq 1 ]]; then
	# All or nothing: on any error the database is left as it was.
	args+=(--single-transaction)
else
	args+=(--jobs="$RESTORE_JOBS")
fi
pg_restore "${args[@]}" "$file" || die "pg_restore failed (see above)"
log "done"
