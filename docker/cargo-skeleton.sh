#!/bin/sh
# Run by docker/Dockerfile's planner stage: copies the workspace's manifests, Cargo.lock and
# the vendored crates' tarball (if any) to DEST, and puts `fn main() {}` in place of every target
# source (lib.rs, main.rs, build.rs, tests, benches, examples). Building that skeleton
# compiles exactly the dependencies of the real build, in a layer that stays cached until
# a manifest, the lock file or the vendored crates change (the cargo-chef idea, in sh).
set -eu
dest=$1
root=$(pwd)
mkdir -p "$dest"
meta=$(cargo metadata --no-deps --format-version 1 --offline)
cp Cargo.toml Cargo.lock "$dest/"
echo "$meta" | grep -o '"manifest_path":"[^"]*"' | sed 's/^"manifest_path":"//; s/"$//' | sort -u |
  while read -r m; do
    rel=${m#"$root"/}
    mkdir -p "$dest/$(dirname "$rel")"
    cp "$m" "$dest/$rel"
  done
echo "$meta" | grep -o '"src_path":"[^"]*"' | sed 's/^"src_path":"//; s/"$//' | sort -u |
  while read -r s; do
    rel=${s#"$root"/}
    mkdir -p "$dest/$(dirname "$rel")"
    echo 'fn main() {}' >"$dest/$rel"
  done
if [ -f .cargo-vendor.tar ]; then
  cp .cargo-vendor.tar "$dest/"
fi
