#!/usr/bin/env bash
# Local PostgreSQL 15 + pg_cron + wal2json (+ plpgsql_check for the linter) for chirpbase:
# install, init, start, stop.
#
# The cluster lives under .local/pg in the repo, listens on 127.0.0.1:${CHIRPBASE_PG_PORT:-54329}
# and on a socket in the same folder, and runs as the OS user "postgres" (initdb refuses root).
# Its bootstrap superuser is `supabase_admin`, as on a Supabase project; migrations run as the
# non-superuser `postgres` role (see scripts/bootstrap.sql).
#
# The port is read at every start, so `CHIRPBASE_PG_PORT=54339 make db-up` moves a stopped
# cluster; a port already taken (another PostgreSQL, another checkout) is reported as such.
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
  [ -f /usr/share/postgresql/15/extension/plpgsql_check.control ] || missing+=(postgresql-15-plpgsql-check)
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

# The port the running cluster listens on (line 4 of postmaster.pid).
running_port() { sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Any TCP socket on that local port (listening or connected), or a listener when ss is missing.
port_busy() {
  if command -v ss >/dev/null; then [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; else listening "$1"; fi
}

# A nearby port nothing uses, to suggest.
free_port_near() {
  local p
  for p in $(seq $(($1 + 10)) 10 $(($1 + 200))); do
    if ! port_busy "$p"; then echo "$p"; return; fi
  done
  echo "$(($1 + 10))"
}

port_in_use() {
  local who=""
  if command -v ss >/dev/null; then
    who="$(ss -Hltnp "sport = :$PGPORT" 2>/dev/null \
      | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | sed -n 1p || true)"
  fi
  log "port $PGPORT on 127.0.0.1 is already in use${who:+ (by $who)}: another PostgreSQL listens"
  log "there, perhaps another chirpbase checkout's. Choose another port for this checkout:"
  log "  export CHIRPBASE_PG_PORT=$(free_port_near "$PGPORT")"
  log "then run make db-up again (make test, make demo and scripts/pg.sh use the same variable)."
  exit 1
}

start() {
  install
  if [ -f "$PGDATA/PG_VERSION" ] && running; then
    local actual
    actual="$(running_port)"
    if [ -n "$actual" ] && [ "$actual" != "$PGPORT" ]; then
      log "already running on port $actual, but CHIRPBASE_PG_PORT is $PGPORT:"
      log "  make db-down, then make db-up again to move it"
      exit 1
    fi
    log "already running on port $PGPORT"
  else
    if listening "$PGPORT"; then port_in_use; fi
    init
    log "starting on 127.0.0.1:$PGPORT"
    local out
    if ! out="$(as_os_user "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGHOME/server.log" -w -t 60 \
      -o "-p $PGPORT" start 2>&1)"; then
      # Lost a race for the port, or it is bound without listening: the log says which.
      if tail -n 20 "$PGHOME/server.log" | grep "Address already in use" >/dev/null; then
        port_in_use
      fi
      printf '%s\n' "$out" >&2
      tail -n 20 "$PGHOME/server.log" >&2
      log "PostgreSQL did not start (log: $PGHOME/server.log)"
      exit 1
    fi
  fi
  # Logical decoding (the Realtime stand-in) only sees flushed WAL: commit synchronously
  # (cheap with fsync off) so changes reach it at once. Applied to clusters made before too.
  "$PGBIN/psql" -q -h "$PGSOCK" -p "$PGPORT" -U supabase_admin -d postgres \
    -c "alter system set synchronous_commit = on" -c "select pg_reload_conf()" >/dev/null
  "$PGBIN/psql" -q -h "$PGSOCK" -p "$PGPORT" -U supabase_admin -d postgres \
    -v ON_ERROR_STOP=1 -f "$ROOT/scripts/bootstrap.sql" >/dev/null
}

LINT_DB="${CHIRPBASE_LINT_DB:-postgres}"

admin_psql() {
  PGOPTIONS="-c client_min_messages=warning" \
    "$PGBIN/psql" -q -X -h "$PGSOCK" -p "$PGPORT" -U supabase_admin -d "$LINT_DB" -v ON_ERROR_STOP=1 "$@"
}

# `supabase db lint` runs plpgsql_check, which only a superuser may create here (on a Supabase
# project: Database > Extensions in the dashboard). The lint runs in `postgres` (CHIRPBASE_LINT_DB),
# the database pg_cron lives in, so that functions calling cron.* resolve.
lint_setup() {
  admin_psql -c "create extension if not exists plpgsql_check with schema extensions"
}

# `supabase db lint` skips trigger functions (plpgsql_check needs the table a trigger is on):
# check each one against its table, with the same defaults, and fail on any finding. A trigger
# that reads transition tables (`referencing new table as ...`) is checked with their names.
lint_triggers() {
  local findings
  findings="$(admin_psql -At -F ' | ' -c "
    select distinct t.tgrelid::regclass, p.oid::regprocedure, r.level, r.lineno, r.message
    from pg_trigger t
    join pg_proc p on p.oid = t.tgfoid
    join pg_language l on l.oid = p.prolang and l.lanname = 'plpgsql'
    join pg_class c on c.oid = t.tgrelid and c.relnamespace = 'public'::regnamespace
    cross join lateral extensions.plpgsql_check_function_tb(p.oid, t.tgrelid,
      oldtable => t.tgoldtable, newtable => t.tgnewtable) r
    where not t.tgisinternal
    order by 1, 2")"
  if [ -n "$findings" ]; then
    log "plpgsql_check findings in trigger functions (table | function | level | line | message):"
    printf '%s\n' "$findings" >&2
    exit 1
  fi
  log "trigger functions: $(admin_psql -At -c "select count(distinct tgfoid) from pg_trigger t
    join pg_class c on c.oid = t.tgrelid and c.relnamespace = 'public'::regnamespace
    where not t.tgisinternal") checked, no findings"
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
  # sslmode=disable: the local server has no TLS, and the Supabase CLI insists on it otherwise.
  url) echo "postgresql://postgres:postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable" ;;
  lint-setup) lint_setup ;;
  lint-triggers) lint_triggers ;;
  *) echo "usage: $0 install|start|stop|restart|status|destroy|url|lint-setup|lint-triggers" >&2; exit 2 ;;
esac
