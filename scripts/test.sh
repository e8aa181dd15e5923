#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit, queue, API, worker,
# end-to-end and fault-injection), each against real redis-server processes it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2
  exit 1
fi
# The official UbiOps and Standard Webhooks clients, for the compatibility tests, and
# schemathesis, which checks the API against its OpenAPI description. Where the system Python
# refuses packages (Debian's "externally managed" one), use a venv instead.
if [ -x tests/.venv/bin/st ]; then
  export PATH="$PWD/tests/.venv/bin:$PATH"
fi
export PATH="$PATH:$(python3 -m site --user-base)/bin"
if ! python3 -c 'import ubiops, standardwebhooks, requests' >/dev/null 2>&1 || ! command -v st >/dev/null 2>&1; then
  if ! python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt; then
    python3 -m venv tests/.venv
    tests/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    export PATH="$PWD/tests/.venv/bin:$PATH"
  fi
fi

# The console's browser test drives Debian's chromium with playwright-core from npm.
if [ ! -d tests/browser/node_modules/playwright-core ] && command -v npm >/dev/null 2>&1; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

cargo fmt --all -- --check
# The declared minimum Rust version against what the dependencies declare.
python3 scripts/check-rust-version.py
cargo clippy --workspace --all-targets -- -D warnings
# Dependency audit (deny.toml lists each accepted advisory and why). Licences, bans and
# sources need nothing but Cargo.lock; advisories need the RustSec database from GitHub, so
# where it cannot be fetched that check is left out, with a line saying so.
if command -v cargo-deny >/dev/null 2>&1; then
  if cargo deny fetch db >/dev/null 2>&1; then
    cargo deny --log-level error check advisories licenses bans sources
  else
    echo "cargo deny: the advisory database cannot be fetched (no network?); advisories NOT checked" >&2
    cargo deny --offline --log-level error check licenses bans sources
  fi
else
  echo "cargo-deny is not installed (cargo install cargo-deny --locked); dependency audit NOT run" >&2
fi
cargo build --release --bin hookrelay
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# The end-to-end, isolation and fault tests again on a local Redis Cluster (three masters,
# eight partitions); the few that kill or restart Redis say they are skipped there.
HOOKRELAY_TEST_REDIS=cluster cargo test -p hookrelay-tests --test e2e --test isolation --test faults 2>&1 | tee -a "$log"
# The fuzz targets' checks over their committed seeds (no fuzzing; scripts/fuzz.sh fuzzes).
(cd fuzz && cargo test --quiet) 2>&1 | tee -a "$log"
# One closing line for the whole run.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
