#!/usr/bin/env bash
# `make test-postgres`: the data chain against a real PostgreSQL, through docker/dagster.yaml.
#
# Starts a private PostgreSQL cluster on 127.0.0.1 (a free port, a socket in a temporary folder, password
# authentication), creates a database, exports the DAGSTER_POSTGRES_* variables that docker/dagster.yaml
# reads, runs the `postgres` tests (tests/test_postgres.py), and stops the server and removes its files on
# the way out, whatever happened. Debian's postgresql is installed first when no server binaries are found
# (as root, which CI is). Set PG_BIN to use other binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_BIN="${PYTHON_BIN:-.venv/bin/python}"

find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        echo "$PG_BIN"
        return
    fi
    # The newest of Debian's /usr/lib/postgresql/<major>/bin that has both initdb and pg_ctl.
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -t/ -k5 -n -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    done
}

PG_BIN="$(find_pg_bin)"
if [[ -z "$PG_BIN" ]]; then
    if [[ "$(id -u)" != 0 ]]; then
        echo "test-postgres: no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin;" \
            "install Debian's postgresql package as root, or set PG_BIN to a folder that has them." >&2
        exit 1
    fi
    echo "test-postgres: installing Debian's postgresql (initdb and pg_ctl were not found)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql > /dev/null
    PG_BIN="$(find_pg_bin)"
    [[ -n "$PG_BIN" ]] || { echo "test-postgres: postgresql installed but no initdb/pg_ctl found" >&2; exit 1; }
fi
echo "test-postgres: PostgreSQL binaries in $PG_BIN ($("$PG_BIN/postgres" --version))"

WORK="$(mktemp -d /tmp/s2i-postgres.XXXXXX)"  # in /tmp: the postgres user must be able to reach it
PGDATA="$WORK/pgdata"
SOCKET_DIR="$WORK/socket"
mkdir -p "$SOCKET_DIR"

# initdb and postgres refuse to run as root: as root, the cluster belongs to the `postgres` user that
# Debian's package creates.
as_owner=()
if [[ "$(id -u)" == 0 ]]; then
    id postgres > /dev/null 2>&1 || { echo "test-postgres: running as root needs a 'postgres' user" >&2; exit 1; }
    as_owner=(runuser -u postgres --)
    chown -R postgres "$WORK"
    chmod 755 "$WORK"
fi

STARTED=0
cleanup() {
    local status=$?
    if [[ "$STARTED" == 1 ]]; then
        STARTED=0
        "${as_owner[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop > /dev/null || true
        echo "test-postgres: server stopped"
    fi
    if [[ "$status" != 0 && -f "$WORK/server.log" ]]; then
        echo "test-postgres: last lines of the server log:" >&2
        tail -n 20 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM

PORT="$("$PYTHON_BIN" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DAGSTER_POSTGRES_HOST=127.0.0.1
export DAGSTER_POSTGRES_PORT="$PORT"
export DAGSTER_POSTGRES_USER=s2i
export DAGSTER_POSTGRES_PASSWORD="s2i-test-$RANDOM$RANDOM"
export DAGSTER_POSTGRES_DB=s2i_dagster

printf '%s\n' "$DAGSTER_POSTGRES_PASSWORD" > "$WORK/pwfile"
if [[ "$(id -u)" == 0 ]]; then chown postgres "$WORK/pwfile"; fi
"${as_owner[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U "$DAGSTER_POSTGRES_USER" --pwfile="$WORK/pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --no-locale > "$WORK/initdb.log"
rm "$WORK/pwfile"

STARTED=1
"${as_owner[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/server.log" -w -t 60 \
    -o "-k $SOCKET_DIR -h 127.0.0.1 -p $PORT" start > /dev/null
echo "test-postgres: server on 127.0.0.1:$PORT"

export PGPASSWORD="$DAGSTER_POSTGRES_PASSWORD"
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$DAGSTER_POSTGRES_USER" "$DAGSTER_POSTGRES_DB"
unset PGPASSWORD

export S2I_POSTGRES_URL="postgresql://$DAGSTER_POSTGRES_USER:$DAGSTER_POSTGRES_PASSWORD@127.0.0.1:$PORT/$DAGSTER_POSTGRES_DB"
# Here a skipped test is a failed one: the server is up, so nothing may be left out.
export S2I_POSTGRES_REQUIRED=1
"$PYTHON_BIN" -m pytest -m postgres tests/test_postgres.py -p no:cacheprovider "$@"
