#!/usr/bin/env bash
# Local PostgreSQL 15 + pg_cron + wal2json for chirpbase: install, init, start, stop.
#
# The cluster lives under .local/pg in the repo, listens on 127.0.0.1:${CHIRPBASE_PG_PORT:-54329}
# and on a socket in the same folder, and runs as the OS user "postgres" (initdb refuses root).
# Its bootstrap superuser is `supabase_admin`, as on a Supabase project; migrations run as the
# non-superuser `postgres` role (see scripts/bootstrap.sql).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
PGHOME="${CHIRPBASE_PG_HOME:-$ROOT/.local/pg}"
PGDATA="$PGHOME/data"
PGSOCK="$PGHOME/run"
PGPORT="${CHIRPBASE_PG_PORT:-54329}"
OSUSER="postgres"

log() { printf '[pg] %s\n' "$*" >&2; }

as_os_user() {
  if [ "$(id -u)" = "0" ]; then runuser -u "$OSUSER" -- "$@"; else "$@"; fi
}

install() {
  local missing=()
  [ -x "$PGBIN/postgres" ] || missing+=(postgresql-15)
  [ -f /usr/share/postgresql/15/extension/pg_cron.control ] || missing+=(postgresql-15-cron)
  [ -f /usr/lib/postgresql/15/lib/wal2json.so ] || missing+=(postgresql-15-wal2json)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} with apt"
    if [ "$(id -u)" != "0" ]; then log "need root to apt-get install ${missing[*]}"; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" postgresql-contrib >/dev/null
    # The Debian package starts its own cluster on 5432; chirpbase does not use it.
    pg_ctlcluster 15 main stop 2>/dev/null || true
  fi
}

init() {
  install
  if [ -f "$PGDATA/PG_VERSION" ]; then return; fi
  log "initialising cluster in $PGDATA"
  mkdir -p "$PGDATA" "$PGSOCK"
  if [ "$(id -u)" = "0" ]; then chown -R "$OSUSER:$OSUSER" "$PGHOME"; fi
  # Every ancestor must be traversable by the postgres OS user.
  local d="$PGHOME"; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
  as_os_user "$PGBIN/initdb" -D "$PGDATA" -U supabase_admin --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDATA/postgresql.conf" <<CONF
# chirpbase local stack
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGSOCK'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.timezone = 'UTC'
timezone = 'UTC'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 300
shared_buffers = 256MB
fsync = off
synchronous_commit = on
full_page_writes = off
log_min_messages = warning
CONF
}

running() { as_os_user "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start() {
  init
  if running; then log "already running on port $PGPORT"; else
    log "starting on 127.0.0.1:$PGPORT"
    as_os_user "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGHOME/server.log" -w -t 60 start >/dev/null
  fi
  # Logical decoding (the Realtime stand-in) only sees flushed WAL: commit synchronously
  # (cheap with fsync off) so changes reach it at once. Applied to clusters made before too.
  "$PGBIN/psql" -q -h "$PGSOCK" -p "$PGPORT" -U supabase_admin -d postgres \
    -c "alter system set synchronous_commit = on" -c "select pg_reload_conf()" >/dev/null
  "$PGBIN/psql" -q -h "$PGSOCK" -p "$PGPORT" -U supabase_admin -d postgres \
    -v ON_ERROR_STOP=1 -f "$ROOT/scripts/bootstrap.sql" >/dev/null
}

stop() {
  if [ -f "$PGDATA/PG_VERSION" ] && running; then
    log "stopping"
    as_os_user "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running; then echo "running on port $PGPORT"; else echo "stopped"; exit 1; fi ;;
  destroy) stop; rm -rf "$PGHOME" ;;
  url) echo "postgresql://postgres:postgres@127.0.0.1:$PGPORT/postgres" ;;
  *) echo "usage: $0 install|start|stop|restart|status|destroy|url" >&2; exit 2 ;;
esac
