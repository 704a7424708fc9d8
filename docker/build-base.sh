#!/usr/bin/env bash
# Builds the base images locally, for machines with no image registry (ours):
#
#   lisp-msx/debian:bookworm   a minimal Debian 12 (debootstrap --variant=minbase from the
#                              Debian mirror the host's apt uses), slimmed like
#                              debian:bookworm-slim, then `docker import`ed
#   lisp-msx/rust:bookworm     FROM the above: build-essential, pkg-config, protobuf-compiler
#                              and the host's Rust toolchain (rustc/cargo/std copied from
#                              `rustc --print sysroot`, no rustup, no docs)
#
# Both are reused when present (the builder is rebuilt when the host's rustc or the base changes);
# --force rebuilds them; --no-builder / --builder-only restrict to one of them.
# Run as root (debootstrap). Environment:
#   BASE_IMAGE, BUILDER_IMAGE   tags (defaults above)
#   DEBIAN_MIRROR               default: the host's bookworm mirror, else http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR      default: the host's bookworm-security mirror, else ...debian-security
#   RUST_SYSROOT                toolchain to copy (default: `rustc --print sysroot`)
#   WORK_DIR                    scratch space for the rootfs (default /var/tmp)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-lisp-msx/debian:bookworm}
BUILDER_IMAGE=${BUILDER_IMAGE:-lisp-msx/rust:bookworm}
SUITE=bookworm
FORCE=0
BUILD_BUILDER=1
BUILD_BASE=1
for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    --no-builder) BUILD_BUILDER=0 ;;
    --builder-only) BUILD_BASE=0 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "build-base.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}   # the engine here has no buildx; plain builder works everywhere
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The first URI of a deb822 stanza or one-line entry serving exactly SUITE.
host_mirror() {
  local suite=$1
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '
        /^[ \t]*$/ { if (ok && uri != "" && deb) print uri; ok = 0; uri = ""; deb = 0; next }
        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
        tolower($1) == "uris:" { uri = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
        END { if (ok && uri != "" && deb) print uri }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == s) print $i }' "$f"
    done
  } 2>/dev/null | grep -E '^https?://' | head -n1
}

build_base() {
  local t0 rootfs mirror secmirror
  t0=$(now)
  command -v debootstrap >/dev/null || {
    echo "== installing debootstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
  }
  mirror=${DEBIAN_MIRROR:-$(host_mirror "$SUITE")}
  mirror=${mirror:-http://deb.debian.org/debian}
  secmirror=${DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
  secmirror=${secmirror:-http://deb.debian.org/debian-security}
  rootfs=$(mktemp -d "${WORK_DIR:-/var/tmp}/lisp-msx-rootfs.XXXXXX")
  # debootstrap mounts proc/sys inside the target; undo whatever is left on any exit.
  trap 'for m in proc sys dev/pts dev; do mountpoint -q "'"$rootfs"'/$m" && umount -l "'"$rootfs"'/$m"; done; rm -rf "'"$rootfs"'"' EXIT
  echo "== debootstrap --variant=minbase $SUITE from $mirror"
  debootstrap --variant=minbase --arch=amd64 --components=main "$SUITE" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"

  echo "== slimming the rootfs (as debian:bookworm-slim)"
  # Sources: the host's mirrors, deb822 as in Debian's own images.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $secmirror
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # A snapshot mirror (as the host's may be) serves Release files past their Valid-Until:
  # keep the host's choice.
  if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
      >"$rootfs/etc/apt/apt.conf.d/10lisp-msx-snapshot"
  fi
  # What debuerreotype does for the -slim images.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "${rootfs:?}"/usr/share/{man,groff,info,lintian,linda}/* "${rootfs:?}"/var/cache/apt/* \
    "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/log/* "${rootfs:?}"/tmp/* "${rootfs:?}"/var/tmp/* \
    "${rootfs:?}"/dev/* "${rootfs:?}"/run/* "${rootfs:?}"/var/cache/debconf/*-old "${rootfs:?}"/var/lib/dpkg/*-old
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : >"$rootfs/etc/machine-id"
  : >"$rootfs/etc/resolv.conf"
  echo localhost >"$rootfs/etc/hostname"

  echo "== docker import -> $BASE_IMAGE"
  tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.title=lisp-msx-debian-$SUITE" \
    --change "LABEL org.lisp-msx.build=base" \
    --change "LABEL org.lisp-msx.debootstrap-mirror=$mirror" \
    --change "LABEL org.lisp-msx.built=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    - "$BASE_IMAGE" >/dev/null
  for m in proc sys dev/pts dev; do mountpoint -q "$rootfs/$m" && umount -l "$rootfs/$m"; done
  rm -rf "$rootfs"
  trap - EXIT
  echo "== $BASE_IMAGE: $(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'), built in $(secs "$t0") s"
}

build_builder() {
  local t0 sysroot ver ctx have base_id
  t0=$(now)
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  sysroot=${RUST_SYSROOT:-$(rustc --print sysroot)}
  ver=$("$sysroot/bin/rustc" -V)
  base_id=$(docker image inspect -f '{{ .Id }}' "$BASE_IMAGE")
  have=$(docker image inspect -f '{{ index .Config.Labels "org.lisp-msx.rustc" }} {{ index .Config.Labels "org.lisp-msx.base" }}' "$BUILDER_IMAGE" 2>/dev/null || true)
  if [ "$FORCE" = 0 ] && [ "$have" = "$ver $base_id" ]; then
    echo "== $BUILDER_IMAGE present ($ver)"
    return
  fi
  echo "== $BUILDER_IMAGE: $ver from $sysroot, on $BASE_IMAGE"
  ctx=$(mktemp -d "${WORK_DIR:-/var/tmp}/lisp-msx-builder.XXXXXX")
  trap 'rm -rf "'"$ctx"'"' EXIT
  # The compiler, cargo and the host target's std: no docs (800 MB), no rust-src, no rustup.
  mkdir -p "$ctx/rust/bin" "$ctx/rust/lib/rustlib"
  cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$sysroot/bin/rustdoc" "$ctx/rust/bin/"
  cp -a "$sysroot"/lib/*.so* "$ctx/rust/lib/"
  cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu" "$ctx/rust/lib/rustlib/"
  cp -a "$here/builder.Dockerfile" "$ctx/Dockerfile"
  docker build --force-rm --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg RUSTC_VERSION="$ver" \
    --label org.lisp-msx.base="$base_id" \
    -t "$BUILDER_IMAGE" "$ctx" >"$ctx.log" 2>&1 || { tail -n 30 "$ctx.log" >&2; rm -f "$ctx.log"; exit 1; }
  rm -f "$ctx.log"
  rm -rf "$ctx"
  trap - EXIT
  echo "== $BUILDER_IMAGE: $(docker image inspect -f '{{.Size}}' "$BUILDER_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'), built in $(secs "$t0") s"
}

[ "$(id -u)" = 0 ] || { echo "build-base.sh: run as root (debootstrap, docker)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build-base.sh: no Docker engine reachable" >&2; exit 1; }
if [ "$BUILD_BASE" = 0 ] && image_exists "$BASE_IMAGE"; then
  :
elif [ "$FORCE" = 1 ] || ! image_exists "$BASE_IMAGE"; then
  build_base
else
  echo "== $BASE_IMAGE present"
fi
[ "$BUILD_BUILDER" = 1 ] && build_builder
exit 0
