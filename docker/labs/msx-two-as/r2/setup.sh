#!/bin/sh
# Run by the entrypoint before FRR starts.
# r2's loopback: its BGP router id, its Map-Server's contact (announced to the other AS) and
# bgpd's update-source towards frr-bgp-plugin (a non-127 address on lo).
ip address replace 198.51.100.34/32 dev lo
# Docker gives even an internal network's containers a default route via the host's bridge:
# a router's routes come from BGP only.
ip route del default 2>/dev/null || true
