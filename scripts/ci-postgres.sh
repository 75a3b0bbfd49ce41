#!/usr/bin/env bash
# Make a PostgreSQL server available to the tests: on 127.0.0.1:5432, user postgres, no
# password (the default of CONVOSTORE_TEST_PG). Called by .ci/run before the tests.
#
# * A server that already answers there is used as it is: nothing else happens.
# * Otherwise PostgreSQL is installed from Debian's packages if it is missing, and a
#   throwaway cluster (trust auth, fsync off: it holds test data only) is created in
#   $CONVOSTORE_CI_PGDATA (default /tmp/convostore-ci-pg) and started. A cluster the
#   package installation itself started is stopped first if it will not let the tests in.
#
# Idempotent (a second run finds the server up) and quiet unless something fails.
# CONVOSTORE_CI_PG_PORT changes the port, to try the script beside a running server.
set -euo pipefail

HOST=127.0.0.1
PORT="${CONVOSTORE_CI_PG_PORT:-5432}"
DATA="${CONVOSTORE_CI_PGDATA:-/tmp/convostore-ci-pg}"

say() { echo "ci-postgres: $*" >&2; }

usable() {
    # A server that takes the tests' connection: user postgres, no password.
    command -v psql >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=3 psql -w -q -X -h "$HOST" -p "$PORT" -U postgres -d postgres \
        -Atc 'SELECT 1' >/dev/null 2>&1
}

listening() {
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$HOST" -p "$PORT" -t 3
}

bindir() {
    # The newest installed server version.
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

usable && exit 0

installed_now=0
if [ -z "$(bindir)" ]; then
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed and installing it needs root"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    installed_now=1
    usable && exit 0
fi
BIN=$(bindir) || { say "no initdb found under /usr/lib/postgresql"; exit 1; }

if listening; then
    # Something answers on the port but refuses the tests. If it is the cluster the package
    # installation just started, stop it; otherwise it is not ours to touch.
    if [ "$installed_now" = 1 ] && command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h | while read -r version name port status _; do
            if [ "$port" = "$PORT" ] && [ "$status" = online ]; then
                pg_ctlcluster --skip-systemctl-redirect "$version" "$name" stop >/dev/null 2>&1 || true
            fi
        done
    fi
    if listening; then
        say "a server on $HOST:$PORT refuses user postgres without a password;"
        say "stop it, allow trust auth for it, or point CONVOSTORE_TEST_PG at a usable one"
        exit 1
    fi
fi

# initdb and the server refuse to run as root: run them as the postgres user then.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DATA" postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 || useradd --system postgres; chown postgres "$DATA"; }
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >"$DATA.initdb.log" 2>&1 \
        || { cat "$DATA.initdb.log" >&2; exit 1; }
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
    -o "-c listen_addresses=$HOST -p $PORT -k $DATA -c fsync=off -c max_connections=200" >/dev/null; then
    say "the throwaway cluster in $DATA did not start:"
    tail -n 30 "$DATA/server.log" >&2 || true
    exit 1
fi

usable || { say "started a cluster in $DATA but cannot connect to it"; exit 1; }
