#!/bin/bash
# The image's HEALTHCHECK (/usr/local/sbin/lisp-msx-healthcheck). Healthy when
#   - lisp-agent is configured: lispctl gets an answer on the agent's API socket
#     (api_socket of lisp-agent.toml, default /run/lisp-msx/agent.sock);
#   - bgpd is enabled in /etc/frr/daemons: HEALTH_BGP (default "any") of its sessions
#     are Established: "any" = at least one, "all" = every configured one, "none" = not checked.
# Prints what failed; exit 0 healthy, 1 not.
set -u
CONF=${LISP_MSX_CONF:-/etc/lisp-msx}
HEALTH_BGP=${HEALTH_BGP:-any}
ok=0
msg=()

if [ -f "$CONF/lisp-agent.toml" ]; then
  sock=$(sed -n 's/^[[:space:]]*api_socket[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONF/lisp-agent.toml" | head -n1)
  sock=${sock:-/run/lisp-msx/agent.sock}
  if timeout 4 lispctl -s "$sock" show lisp statistics json >/dev/null 2>&1; then
    msg+=("lisp-agent answers")
  else
    msg+=("lisp-agent does not answer on $sock")
    ok=1
  fi
fi

if [ "$HEALTH_BGP" != none ] && grep -qE '^bgpd=yes' /etc/frr/daemons 2>/dev/null; then
  summary=$(timeout 4 vtysh -c 'show bgp summary json' 2>/dev/null | tr -d ' \n')
  total=$(grep -o '"state":"[A-Za-z]*"' <<<"$summary" | wc -l)
  up=$(grep -o '"state":"Established"' <<<"$summary" | wc -l)
  if [ "$up" -gt 0 ] && { [ "$HEALTH_BGP" = any ] || [ "$up" = "$total" ]; }; then
    msg+=("BGP $up/$total Established")
  else
    msg+=("BGP $up/$total Established (want $HEALTH_BGP)")
    ok=1
  fi
fi

echo "${msg[*]:-nothing to check}" | sed 's/ \(lisp-agent\|BGP\)/; \1/g'
exit $ok
