#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time each and exits non-zero when any of them
# finds a crash (a panic, a failed check, a sanitizer report, a timeout or running out of
# memory).
#
#   scripts/fuzz.sh [seconds-per-target]     (default 30)
#
# Installs cargo-fuzz from crates.io when it is missing. cargo fuzz passes nightly-only
# compiler flags (-Zsanitizer=address, sanitizer coverage); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, so no nightly toolchain is needed. New corpus entries go to
# fuzz/corpus/<target> (not committed); the committed seeds in fuzz/seeds/<target> are read
# but never written. A crash leaves its input in fuzz/artifacts/<target>/.
#
# FUZZ_SANITIZER=none runs without AddressSanitizer: about ten times the executions per
# second on allocation-heavy targets such as formats_render, for hunting panics, at the cost
# of not seeing memory errors in the unsafe code of dependencies. Default: address.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target]  (a whole number of seconds, at least 1)" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed; installing it from crates.io"
  cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"

# Build every target first, so that the time limit below is fuzzing time only.
cargo fuzz build --sanitizer "$sanitizer"

mapfile -t targets < <(cargo fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found in fuzz/" >&2
  exit 1
fi

failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  seeds="fuzz/seeds/$target"
  mkdir -p "$corpus"
  dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  flags=(-max_total_time="$seconds" -timeout=20 -print_final_stats=1)
  [ -f "fuzz/dicts/$target.dict" ] && flags+=(-dict="fuzz/dicts/$target.dict")

  echo "=== $target: ${seconds} s"
  if cargo fuzz run --sanitizer "$sanitizer" "$target" "${dirs[@]}" -- "${flags[@]}"; then
    echo "=== $target: no crash"
  else
    echo "=== $target: CRASH (inputs in fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "crashes found in: ${failed[*]}"
  echo "reproduce one with: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>"
  exit 1
fi
echo
echo "all ${#targets[@]} targets ran ${seconds} s each without a crash"
