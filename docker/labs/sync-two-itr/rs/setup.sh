#!/bin/sh
# rs: the remote site's xTR. It owns one address in each of its eight registered /29s
# (203.0.113.128/29 ... 203.0.113.184/29, lisp-agent.toml): 203.0.113.(128 + 8k + 1).
# u1 pings the first five, u2 the last three.
for k in 0 1 2 3 4 5 6 7; do
  ip address replace "203.0.113.$((128 + 8 * k + 1))/32" dev lo
done
# RLOCs through r1 (instead of the default route Docker sets, via the host's bridge).
ip route replace default via 198.51.100.97
