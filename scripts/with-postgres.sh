#!/usr/bin/env bash
# Run a command with a private, throw-away PostgreSQL server on loopback, e.g.
#   bash scripts/with-postgres.sh .venv/bin/python -m pytest tests/integration
# The command sees CSSS_TEST_DATABASE_URL (a superuser URL of the new server). The server
# lives in a temporary directory, listens only on 127.0.0.1 on a free port, needs a password,
# and is stopped and deleted when the command ends. PostgreSQL comes from Debian's packages
# (installed with apt-get when missing and running as root).
set -euo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN=$(find_bin)
if [ -z "$BIN" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL is not installed: apt-get install postgresql (as root)" >&2
    exit 1
  fi
  echo "installing PostgreSQL from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  BIN=$(find_bin)
fi

WORK=$(mktemp -d /tmp/csss-pg.XXXXXX)
chmod 700 "$WORK"
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"

PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner sh -c "umask 077; printf '%s\n' '$PASSWORD' > '$WORK/pwfile'"

cleanup() {
  as_owner "$BIN/pg_ctl" -D "$WORK/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

as_owner "$BIN/initdb" -D "$WORK/data" -U csss --pwfile="$WORK/pwfile" \
  --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
# A test server: durability off (fsync, synchronous_commit) because the data is thrown away.
as_owner "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$WORK \
   -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
echo "PostgreSQL $("$BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PORT" >&2

export CSSS_TEST_DATABASE_URL="postgresql+psycopg://csss:$PASSWORD@127.0.0.1:$PORT/postgres"
set +e
"$@"
status=$?
set -e
exit $status
