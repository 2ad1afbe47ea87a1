#!/usr/bin/env bash
# Run a command with a private, throw-away Redis server on loopback, e.g.
#   bash scripts/with-redis.sh .venv/bin/python -m pytest tests/integration/test_celery_jobs.py
# The command sees CSSS_TEST_REDIS_URL (redis://127.0.0.1:<port>/0). The server keeps its
# data in memory only, listens only on 127.0.0.1 on a free port, and is stopped when the
# command ends. Redis comes from Debian's packages (installed with apt-get when missing and
# running as root).
set -euo pipefail

if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Redis is not installed: apt-get install redis-server (as root)" >&2
    exit 1
  fi
  echo "installing Redis from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

WORK=$(mktemp -d /tmp/csss-redis.XXXXXX)
chmod 700 "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A test server: no persistence (the data is thrown away), no Unix socket, loopback only.
redis-server --bind 127.0.0.1 --port "$PORT" --dir "$WORK" --save "" --appendonly no \
  --protected-mode yes --daemonize no --logfile "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
    break
  fi
  sleep 0.1
done
redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 || { cat "$WORK/server.log" >&2; exit 1; }
echo "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$PORT" >&2

export CSSS_TEST_REDIS_URL="redis://127.0.0.1:$PORT/0"
set +e
"$@"
status=$?
set -e
exit $status
