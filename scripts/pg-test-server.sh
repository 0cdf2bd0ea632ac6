#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 server for the tests: a temporary data directory,
# a free loopback port, trust authentication for the `postgres` role on loopback only.
#
#   eval "$(scripts/pg-test-server.sh start)"   # sets ANXIN_TEST_POSTGRES, PG_TEST_PID, PG_TEST_DIR
#   scripts/pg-test-server.sh stop "$PG_TEST_DIR"
#
# As root, initdb and the server run as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  start)
    dir=$(mktemp -d -t anxin-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_pg "'$PG_BIN/initdb' -D '$dir/data' -A trust -U postgres --no-sync -E UTF8 >'$dir/initdb.log' 2>&1" \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # Tests create a database each; a few hundred connections across parallel tests.
    # fsync off: a test server's durability is not what the tests measure.
    for _ in 1 2 3; do
      port=$(free_port)
      if as_pg "'$PG_BIN/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 30 \
          -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=500 \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start" >/dev/null; then
        pid=$(head -1 "$dir/data/postmaster.pid")
        echo "export ANXIN_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port"
        echo "export PG_TEST_PID=$pid"
        echo "export PG_TEST_DIR=$dir"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
  stop)
    dir=${2:?data directory}
    as_pg "'$PG_BIN/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
