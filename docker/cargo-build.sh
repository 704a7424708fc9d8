#!/bin/sh
# Run by docker/Dockerfile's build stage (in /src).
#   cargo-build.sh deps       build the dependencies (the source is cargo-skeleton.sh's stubs)
#   cargo-build.sh bins DIR   build the real binaries and copy them to DIR
# Crates come from .cargo-vendor.tar when the context has it (docker/build.sh puts
# `cargo vendor` output there: no network needed), unpacked once to /vendor; else from
# crates.io.
set -eu
BINS="lisp-agent lispctl ospf-msfd frr-bgp-plugin"
mode=${1:-}
src=""
if [ -f .cargo-vendor.tar ]; then
  sum=$(sha256sum .cargo-vendor.tar | cut -d' ' -f1)
  if [ "$(cat /vendor/.tar-sha256 2>/dev/null)" != "$sum" ]; then
    rm -rf /vendor && mkdir -p /vendor
    tar -xf .cargo-vendor.tar -C /vendor --strip-components=1
    echo "$sum" >/vendor/.tar-sha256
  fi
  cfg=${CARGO_HOME:-$HOME/.cargo}/config.toml
  mkdir -p "$(dirname "$cfg")"
  printf '[source.crates-io]\nreplace-with = "lisp-msx-vendor"\n[source.lisp-msx-vendor]\ndirectory = "/vendor"\n' >"$cfg"
  src=--offline
fi
bin_args=""
for b in $BINS; do bin_args="$bin_args --bin $b"; done
case $mode in
  deps)
    # shellcheck disable=SC2086
    cargo build --release --locked $src $bin_args
    ;;
  bins)
    out=$2
    # The stubs' artifacts are newer than the real sources' mtimes: make cargo see the change.
    find . -type f -exec touch {} +
    # shellcheck disable=SC2086
    cargo build --release --locked $src $bin_args
    mkdir -p "$out"
    for b in $BINS; do cp "$CARGO_TARGET_DIR/release/$b" "$out/"; done
    ls -l "$out"
    ;;
  *) echo "cargo-build.sh: deps | bins DIR" >&2; exit 2 ;;
esac
