#!/usr/bin/env bash
# Runs hookrelay on this machine: starts a local redis-server (with AOF, data in ./.data) when
# none answers at HOOKRELAY_REDIS_URL, builds the release binary, and runs `hookrelay serve`.
# Without HOOKRELAY_API_TOKEN, a token is generated once and kept in .data/api-token
# (readable by you only); it is never printed.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${HOOKRELAY_REDIS_URL:-redis://127.0.0.1:6379}"
hostport="${url#redis://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=6379
if ! redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "no Redis at $url and redis-server is not installed (Debian: apt-get install redis-server)" >&2
    exit 1
  fi
  mkdir -p .data
  echo "starting redis-server on $host:$port (AOF on, data in .data/)"
  redis-server --bind "$host" --port "$port" --dir "$PWD/.data" --appendonly yes \
    --appendfsync everysec --daemonize yes --logfile "$PWD/.data/redis.log"
  for _ in $(seq 50); do redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if [ -z "${HOOKRELAY_API_TOKEN:-}" ]; then
  mkdir -p .data
  if [ ! -s .data/api-token ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > .data/api-token)
  fi
  HOOKRELAY_API_TOKEN="$(cat .data/api-token)"
  export HOOKRELAY_API_TOKEN
  echo "HOOKRELAY_API_TOKEN was not set; using the token in .data/api-token"
fi

cargo build --release --bin hookrelay
exec target/release/hookrelay serve
