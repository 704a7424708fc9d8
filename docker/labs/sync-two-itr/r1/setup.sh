#!/bin/sh
# r1: the core, plain forwarding between its five links (ip_forward, compose sysctls); every
# RLOC is on one of them, so no routing protocol is needed. Docker's default route (via the
# host's bridge) goes: nothing is routed off the host.
ip route del default 2>/dev/null || true
