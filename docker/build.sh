#!/usr/bin/env bash
# Builds the router image (docker/Dockerfile) from this checkout on a machine with no image
# registry:
#   1. docker/build-base.sh: the local base images (skipped with --no-base or when present);
#   2. a clean build context in a scratch folder: the workspace's files (git's tracked and
#      untracked-but-not-ignored files of the members, the manifests, the docker/ files the
#      Dockerfile uses; no target/, no .git) plus `cargo vendor` output as
#      .cargo-vendor.tar, so the build needs no network (containers here cannot reach
#      crates.io; see docker/README.md);
#   3. docker build with BUILDER_IMAGE / RUNTIME_IMAGE pointing at the local images.
#
# Usage: docker/build.sh [--no-base] [--force-base] [-- extra docker build args]
# Environment: IMAGE (lisp-msx/router:latest), BASE_IMAGE, BUILDER_IMAGE (as build-base.sh),
#   VENDOR=0 to let the build fetch crates itself, WORK_DIR (/var/tmp), KEEP_CONTEXT=1,
#   PRUNE=0 (see the end), CACHE_TAG (lisp-msx/router-build-cache:latest).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
IMAGE=${IMAGE:-lisp-msx/router:latest}
CACHE_TAG=${CACHE_TAG:-${IMAGE%:*}-build-cache:latest}
export BASE_IMAGE=${BASE_IMAGE:-lisp-msx/debian:bookworm}
export BUILDER_IMAGE=${BUILDER_IMAGE:-lisp-msx/rust:bookworm}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
VENDOR=${VENDOR:-1}
base=1
base_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-base) base=0 ;;
    --force-base) base_args+=(--force) ;;
    --) shift; break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

t_all=$(now)
if [ "$base" = 1 ]; then
  "$here/build-base.sh" "${base_args[@]}"
fi

t=$(now)
ctx=$(mktemp -d "${WORK_DIR:-/var/tmp}/lisp-msx-context.XXXXXX")
[ "${KEEP_CONTEXT:-0}" = 1 ] || trap 'rm -rf "'"$ctx"'"' EXIT
# Only what the image is built from, so that nothing else (docs, labs, scripts) invalidates
# Docker's cache of the build: the workspace manifests and lock file, the members' folders,
# and the docker/ files the Dockerfile uses.
members=$(cd "$repo" && cargo metadata --no-deps --format-version 1 --offline |
  grep -o '"manifest_path":"[^"]*"' | sed 's/^"manifest_path":"//; s/"$//' |
  while read -r m; do d=$(dirname "$m"); echo "${d#"$repo"/}/"; done | grep -v '^/' | sort -u)
wanted() { # PATH (relative): part of the build context?
  case $1 in
    Cargo.toml|Cargo.lock|rust-toolchain|rust-toolchain.toml|.cargo/*) return 0 ;;
    docker/Dockerfile|docker/Dockerfile.dockerignore|docker/cargo-skeleton.sh|docker/cargo-build.sh|docker/entrypoint.sh|docker/healthcheck.sh) return 0 ;;
  esac
  local m
  for m in $members; do case $1 in "$m"*) return 0 ;; esac; done
  return 1
}
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  list() { git ls-files -z -co --exclude-standard; }   # tracked + untracked, not ignored
else
  list() { find . \( -name target -o -name .git \) -prune -o -type f -printf '%P\0'; }
fi
(cd "$repo" && list | while IFS= read -r -d '' f; do
   if [ -e "$f" ] && wanted "$f"; then printf '%s\0' "$f"; fi
 done | tar --null -T - -cf -) | tar -xf - -C "$ctx"
if [ "$VENDOR" = 1 ]; then
  vend=$(mktemp -d "${WORK_DIR:-/var/tmp}/lisp-msx-vendor.XXXXXX")
  (cd "$repo" && cargo vendor --locked -q "$vend/vendor" >/dev/null) || { rm -rf "$vend"; exit 1; }
  # The Windows import libraries (~160 MB of .a/.lib files) are never used on Linux: drop them
  # and their entries in .cargo-checksum.json (cargo checks only the files listed there).
  if command -v python3 >/dev/null; then
    python3 - "$vend/vendor" <<'PY'
import json, os, re, sys
root = sys.argv[1]
for name in os.listdir(root):
    if not re.match(r"^(winapi-(i686|x86_64)-pc-windows-gnu|windows_[a-z0-9_]+)(-[0-9][0-9.]*)?$", name):
        continue
    d = os.path.join(root, name)
    ck = os.path.join(d, ".cargo-checksum.json")
    data = json.load(open(ck))
    for rel in [f for f in data["files"] if f.startswith("lib/")]:
        os.remove(os.path.join(d, rel))
        del data["files"][rel]
    json.dump(data, open(ck, "w"), sort_keys=True)
PY
  fi
  # One file rather than ~13,000: every COPY of the context is much cheaper (fuse-overlayfs).
  # Reproducible (sorted, fixed mtime/owner): same crates, same bytes, Docker's cache holds.
  tar -C "$vend" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$ctx/.cargo-vendor.tar" vendor
  rm -rf "$vend"
fi
echo "== build context $ctx: $(du -sh "$ctx" | cut -f1) (vendored crates: $([ -f "$ctx/.cargo-vendor.tar" ] && du -sh "$ctx/.cargo-vendor.tar" | cut -f1 || echo none)), staged in $(secs "$t") s"

t=$(now)
echo "== docker build -> $IMAGE (builder $BUILDER_IMAGE, runtime $BASE_IMAGE)"
# (each line stamped with the time, to see where the time goes)
docker build --force-rm -f "$ctx/docker/Dockerfile" \
  --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
  -t "$IMAGE" "$@" "$ctx" 2>&1 | awk '{ gsub(/\033\[[0-9;]*m/, ""); print strftime("%H:%M:%S"), $0; fflush() }'
[ "${PIPESTATUS[0]}" = 0 ] || { echo "== docker build failed" >&2; exit 1; }
echo "== $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.1f MB", $1 / 1e6 }'), docker build $(secs "$t") s"

# Docker's cache of the build stage is its last image, which nothing references: tag it
# (all cached, a few seconds), then drop our older, now dangling, build images (each holds a
# whole target/ folder, ~1.5 GB). PRUNE=0 keeps them.
if [ "${PRUNE:-1}" = 1 ]; then
  t=$(now)
  again=()
  for a in "$@"; do [ "$a" = --no-cache ] || again+=("$a"); done   # now it must hit the cache
  docker build --force-rm -q -f "$ctx/docker/Dockerfile" --target build \
    --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
    -t "$CACHE_TAG" "${again[@]}" "$ctx" >/dev/null
  docker image prune -f --filter label=org.lisp-msx.build | grep -E '^Total' | sed "s/^/== pruned old build images: /" || true
  echo "== build stage kept as $CACHE_TAG (the cache), $(secs "$t") s"
fi
echo "== all $(secs "$t_all") s"
