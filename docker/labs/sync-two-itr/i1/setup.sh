#!/bin/sh
# Run by the entrypoint before FRR and lisp-agent.
# The site LAN interface (the one holding 203.0.113.3; Docker names interfaces in attach order)
# is renamed "lan": frr.conf's vrrpd configuration names it, and failing this ITR is
# `ip link set lan down`.
dev=$(ip -o -4 address show | awk '$4 ~ /^203\.0\.113\.3\// { sub(/@.*/, "", $2); print $2; exit }')
[ -n "$dev" ] || { echo "no interface holds 203.0.113.3"; exit 1; }
if [ "$dev" != lan ]; then
  ip link set dev "$dev" down
  ip link set dev "$dev" name lan
  ip link set dev lan up
fi
# One macvlan per VRRP group on the LAN, with the group's virtual MAC
# 00:00:5e:00:01:<VRID> and its virtual address: vrrpd finds them by that MAC and keeps the
# Backup's down (protodown). arp_ignore/arp_announce (compose sysctls): "lan" does not
# answer ARP for the virtual addresses. The virtual addresses are /32s: a /26 on the macvlan
# would add a second LAN route, preferred once "lan" has flapped, and this ITR would then
# ARP for the other from the virtual address, which the other holds too: no answer.
for g in 5:203.0.113.1 6:203.0.113.2; do
  vrid=${g%%:*} vip=${g#*:}
  ip link del "vrrp$vrid-lan" 2>/dev/null || true
  ip link add "vrrp$vrid-lan" link lan type macvlan mode bridge
  ip link set "vrrp$vrid-lan" address "00:00:5e:00:01:0$vrid"
  ip address add "$vip/32" dev "vrrp$vrid-lan"
  ip link set "vrrp$vrid-lan" up
done
# RLOCs through r1 (instead of the default route Docker sets, via the host's bridge); the
# remote EIDs go into lisp0 (staticd, frr.conf).
ip route del default 2>/dev/null || true
ip route add default via 198.51.100.65
