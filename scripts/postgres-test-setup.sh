#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the server's PostgreSQL tests and print
# its URL on stdout (everything else goes to stderr):
#
#   export SESSIONRANK_TEST_POSTGRES_URL="$(scripts/postgres-test-setup.sh)"
#   cargo test --release -p sessionrank-server
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root or
# sudo). Idempotent: a cluster already running in the directory is reused.
# Environment: SESSIONRANK_PG_PORT (default 54329), SESSIONRANK_PG_DIR (default
# ${TMPDIR:-/tmp}/sessionrank-pg). Stop it with: pg_ctl -D "$SESSIONRANK_PG_DIR/data" stop
set -euo pipefail

PORT="${SESSIONRANK_PG_PORT:-54329}"
DIR="${SESSIONRANK_PG_DIR:-${TMPDIR:-/tmp}/sessionrank-pg}"
DB=sessionrank_test
log() { echo "postgres-test-setup: $*" >&2; }

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "installing postgresql (apt-get)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi
[ -x "$BIN/initdb" ] || { log "no initdb found under /usr/lib/postgresql"; exit 1; }

# initdb and the server refuse to run as root: use the package's `postgres` user then.
AS=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" postgres
    AS=(runuser -u postgres --)
fi

mkdir -p "$DIR/sock"
if [ "$(id -u)" = 0 ]; then chown -R postgres "$DIR"; fi

if [ ! -f "$DIR/data/PG_VERSION" ]; then
    log "initialising a cluster in $DIR/data"
    "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 >&2
fi
if ! "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR/sock -c max_connections=300" start >&2
fi
exists="SELECT 1 FROM pg_database WHERE datname = '$DB'"
if ! "${AS[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "$exists" postgres | grep -q 1; then
    "${AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
fi
echo "postgres://postgres@127.0.0.1:$PORT/$DB"
