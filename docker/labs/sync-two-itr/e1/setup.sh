#!/bin/sh
# Run by the entrypoint before lisp-agent: RLOCs through r1 (instead of the default route
# Docker sets, via the host's bridge). Decapsulated packets go out on the LAN (connected).
ip route replace default via 198.51.100.81
