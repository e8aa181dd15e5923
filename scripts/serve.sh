#!/usr/bin/env bash
# Runs hookrelay on this machine: uses the Redis at HOOKRELAY_REDIS_URL when one answers there
# (saying so, and warning when its persistence is off), or starts a local redis-server with
# AOF (data in ./.data); builds the release binary and runs `hookrelay serve`.
# Without HOOKRELAY_API_TOKEN, a token is generated once and kept in .data/api-token
# (readable by you only); it is never printed.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${HOOKRELAY_REDIS_URL:-redis://127.0.0.1:6379}"
# The URL as shown: without a password.
shown="$(printf '%s' "$url" | sed -E 's#(rediss?://)[^@/]*@#\1***@#')"
hostport="${url#redis://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=6379

if redis-cli -u "$url" ping >/dev/null 2>&1; then
  echo "using the Redis that answers at $shown (started elsewhere, not by this script)"
  aof="$(redis-cli -u "$url" config get appendonly 2>/dev/null | sed -n 2p || true)"
  save="$(redis-cli -u "$url" config get save 2>/dev/null | sed -n 2p || true)"
  if [ -z "$aof" ]; then
    echo "warning: cannot read this Redis's persistence settings (CONFIG GET refused); make sure it runs with appendonly yes" >&2
  elif [ "$aof" != "yes" ] && [ -z "$save" ]; then
    echo "warning: this Redis has persistence OFF (appendonly no, no snapshots): a Redis restart loses every queued delivery." >&2
    echo "         Run it with --appendonly yes, or stop it and let this script start one (HOOKRELAY_REDIS_URL on a free port)." >&2
  elif [ "$aof" != "yes" ]; then
    echo "warning: this Redis only takes snapshots (appendonly no, save \"$save\"): a crash loses what came after the last one." >&2
    echo "         Run it with --appendonly yes for hookrelay's guarantees." >&2
  fi
else
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "no Redis at $shown and redis-server is not installed (Debian: apt-get install redis-server)" >&2
    exit 1
  fi
  mkdir -p .data
  echo "no Redis answers at $shown: starting redis-server on $host:$port (AOF on, data in .data/, log in .data/redis.log)"
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

cargo build --release --locked --bin hookrelay
exec target/release/hookrelay serve
