#!/usr/bin/env bash
# The main demo: three FRR routers in network namespaces (lab/topologies/msx-demo.toml).
# r3 advertises its Map-Server/Map-Resolver in OSPF (MSFD TLV, ospf-msfd); r1, an
# xTR with no Map-Resolver configured, discovers it, registers, and resolves an
# EID of another site. Prints what happened, then tears the lab down (KEEP=1 keeps it).
#   ./scripts/demo.sh fig6 [-n N]   instead runs the LISP-MSX vs. DDT experiment (scenarios/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
if [ "${1:-}" = fig6 ]; then
  shift
  exec ./scripts/fig6.sh "$@"
fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "== building (release)"
cargo build -q --release -p lisp-agent -p ospf-msfd -p lab
B=$PWD/target/release
mkdir -p /run/lisp-msx-demo
ctl() { "$B/lispctl" -s "/run/lisp-msx-demo/$1.sock" "${@:2}"; }
down() { "$B/lab" down msxdemo >/dev/null 2>&1 || true; }
if [ -z "${KEEP:-}" ]; then trap down EXIT INT TERM; fi

echo "== lab up: r1 -- r2 -- r3, OSPF area 0 (FRR $(dpkg-query -W -f='${Version}' frr))"
"$B/lab" up lab/topologies/msx-demo.toml
t0=$(date +%s.%N)
echo "== waiting for r1 to discover r3's mapping functions through OSPF"
for _ in $(seq 600); do
  ctl r1 lig 203.0.113.70 json 2>/dev/null | grep -q '"resolved": true' && break
  sleep 0.1
done
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "   first resolution on r1 %.1f s after the lab came up\n\n", b - a }'

echo "== r2: r3's Router Information LSA (instance 1) with the MSFD TLV"
"$B/lab" vtysh -l msxdemo r2 show ip ospf database opaque-area | grep -E "Link State ID|Advertising Router|Opaque-Type|Opaque-ID" || true
echo
echo "== r1# show lisp discovery"
ctl r1 show lisp discovery
echo
echo "== r3# show lisp site"
ctl r3 show lisp site
echo
echo "== r1# lig 203.0.113.70"
ctl r1 lig 203.0.113.70
echo
echo "== r1# show lisp map-cache"
ctl r1 show lisp map-cache
if [ -n "${KEEP:-}" ]; then
  cat <<MSG

The lab stays up. Explore:
  $B/lispctl -s /run/lisp-msx-demo/r1.sock        (interactive; try: show lisp ?)
  $B/lab vtysh -l msxdemo r3 show ip ospf database opaque-area
  $B/lab status msxdemo
Stop it: $B/lab down msxdemo
MSG
fi
