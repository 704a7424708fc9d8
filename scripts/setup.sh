#!/usr/bin/env bash
# Installs what lisp-msx needs on Debian 12 (idempotent; root or sudo).
# Debian packages: FRR 8.4 (the routers of the lab), tshark (our independent
# decoder), iperf3 (data-plane throughput), iproute2 (namespaces), protoc (API codegen), a C toolchain.
# Rust: the stable toolchain via rustup when cargo is missing or too old.
set -euo pipefail

need_pkgs=()
for pkg in frr tshark iperf3 iproute2 iputils-ping protobuf-compiler build-essential pkg-config ca-certificates curl procps; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the default (no) is fine.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# The lab runs its own FRR instances per namespace; the packaged service stays off.
if command -v systemctl >/dev/null && systemctl is-active --quiet frr 2>/dev/null; then
  systemctl stop frr || true
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
rust_ok() {
  command -v cargo >/dev/null || return 1
  local v; v=$(rustc --version | awk '{print $2}')
  [ "$(printf '%s\n1.88.0\n' "$v" | sort -V | head -1)" = "1.88.0" ]
}
if ! rust_ok; then
  echo "setup: installing the Rust stable toolchain (rustup)"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  . "$HOME/.cargo/env"
fi
echo "setup: ok ($(rustc --version), FRR $(dpkg-query -W -f='${Version}' frr), $(tshark --version | head -1))"
