#!/usr/bin/env bash
# Start a throwaway PostGIS cluster for tests/test_db.py and print the line to export.
#
#   eval "$(bash .ci/start-postgis.sh)"     # sets KNOCKIN_TEST_DB
#
# - Installs Debian's `postgresql` and `postgresql-<major>-postgis-3` with apt-get when missing
#   (needs root; Debian 12 ships PostgreSQL 15 and PostGIS 3.3).
# - Creates (once) a cluster in $KNOCKIN_PG_DIR (default /tmp/knockin-postgis) owned by the
#   `postgres` user when run as root (initdb refuses root), trust auth, listening on 127.0.0.1
#   only, on $KNOCKIN_PG_PORT (default 54329, or the next free port), no fsync (throwaway).
# - Starts it if it is not running, creates the database `knockin_test` with PostGIS.
# - Prints `export KNOCKIN_TEST_DB=postgresql+psycopg://postgres@127.0.0.1:<port>/knockin_test`
#   on stdout (and writes it to $KNOCKIN_PG_DIR/env); everything else goes to stderr.
# Idempotent: a second run reuses the running cluster and prints the same line.
# Stop it with: pg_ctl -D /tmp/knockin-postgis/data stop  (as postgres when root)
set -euo pipefail

PGDIR="${KNOCKIN_PG_DIR:-/tmp/knockin-postgis}"
PORT="${KNOCKIN_PG_PORT:-54329}"
DB=knockin_test
log() { echo "start-postgis: $*" >&2; }

# --- PostgreSQL major version: the installed one, else the distribution's default -------------
pg_major() {
  local d
  for d in /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$d" ] && basename "$(dirname "$(dirname "$d")")"
  done | sort -n | tail -1
}
MAJOR="$(pg_major || true)"
if [ -z "$MAJOR" ] || [ ! -f "/usr/share/postgresql/$MAJOR/extension/postgis.control" ]; then
  if [ "$(id -u)" != "0" ]; then
    log "PostgreSQL/PostGIS missing and not root: install postgresql and postgresql-15-postgis-3"
    exit 1
  fi
  if [ -z "$MAJOR" ]; then
    MAJOR="$(apt-cache show postgresql 2>/dev/null | sed -n 's/^Depends: .*postgresql-\([0-9][0-9]*\).*/\1/p' | head -1)"
    if [ -z "$MAJOR" ]; then
      apt-get update -qq
      MAJOR="$(apt-cache show postgresql | sed -n 's/^Depends: .*postgresql-\([0-9][0-9]*\).*/\1/p' | head -1)"
    fi
  fi
  log "installing postgresql $MAJOR + postgis 3 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends postgresql "postgresql-$MAJOR-postgis-3" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql "postgresql-$MAJOR-postgis-3" >/dev/null
  fi
fi
BIN="/usr/lib/postgresql/$MAJOR/bin"

# --- Run cluster commands as `postgres` when root ----------------------------------------------
if [ "$(id -u)" = "0" ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
DATA="$PGDIR/data"
mkdir -p "$PGDIR"
if [ "$(id -u)" = "0" ]; then chown postgres:postgres "$PGDIR"; fi
chmod 700 "$PGDIR"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  PORT="$(cat "$PGDIR/port" 2>/dev/null || echo "$PORT")"
  log "cluster already running in $DATA on port $PORT"
else
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    rm -rf "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale --no-sync >/dev/null
    # initdb -A trust writes local, 127.0.0.1/32 and ::1/128 entries only: loopback only.
    cat >>"$DATA/postgresql.conf" <<EOF
# knockin_geo test cluster (throwaway)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  while port_busy "$PORT"; do
    log "port $PORT busy, trying $((PORT + 1))"
    PORT=$((PORT + 1))
  done
  echo "$PORT" >"$PGDIR/port"
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$PGDIR/server.log" -o "-p $PORT" -w -t 60 start >/dev/null \
    || { tail -20 "$PGDIR/server.log" >&2; exit 1; }
fi

psql_() { as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  psql_ -d postgres -c "CREATE DATABASE $DB" >&2
fi
psql_ -d "$DB" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis" >&2
log "PostGIS $(psql_ -d "$DB" -tAc 'SELECT postgis_lib_version()') ready"

LINE="export KNOCKIN_TEST_DB=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
echo "$LINE" >"$PGDIR/env"
echo "$LINE"
