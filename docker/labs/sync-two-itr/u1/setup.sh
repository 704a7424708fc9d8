#!/bin/sh
# A user host of the site: its gateway is VRRP group 5's virtual address, 203.0.113.1
# (i1 while it is Master, i2 after a failover). `ip route replace default via 203.0.113.2`
# moves it to group 6 (i2 Master).
ip route replace default via 203.0.113.1
