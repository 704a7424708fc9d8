#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/property/known-answer tests,
# the tshark cross-checks, and the fuzz targets (a short run of each when a
# nightly toolchain is present). Run as root: lab tests make namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --workspace --all-features
echo "== benchmarks compile"
cargo bench --workspace --no-run -q

if cargo +nightly --version >/dev/null 2>&1 && command -v cargo-fuzz >/dev/null 2>&1; then
  secs=${FUZZ_SECONDS:-20}
  echo "== fuzz targets, ${secs}s each"
  (cd proto && for t in $(cargo +nightly fuzz list); do
     cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -max_len=4096 2>&1 | grep -E "^(Done|==|SUMMARY)|panicked" || true
     test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz target $t failed"; exit 1; }
   done)
else
  echo "== fuzz targets: skipped (needs a nightly toolchain and cargo-fuzz); proptest garbage-in tests ran instead"
fi
echo "== docker: images from scratch and the two-AS compose lab (skipped without an engine)"
./docker/test.sh
echo "== all tests passed"
