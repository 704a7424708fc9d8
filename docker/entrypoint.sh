#!/bin/bash
# lisp-msx router entrypoint (the image's /usr/local/sbin/lisp-msx-entrypoint).
#
# Configuration, all mounted (read-only is fine) under $LISP_MSX_CONF (/etc/lisp-msx):
#   frr/daemons, frr/frr.conf, frr/vtysh.conf   copied to /etc/frr (owned by frr) at start;
#                                              alternatively mount /etc/frr itself
#   lisp-agent.toml       -> lisp-agent -f ...      (each of ours runs only if its file exists)
#   frr-bgp-plugin.toml   -> frr-bgp-plugin -f ...
#   ospf-msfd.toml        -> ospf-msfd -f ...
#   setup.sh              run first (bash -e), e.g. `ip address add ... dev lo`, routes
# FRR runs (/usr/lib/frr/frrinit.sh: watchfrr and the daemons /etc/frr/daemons enables)
# when $LISP_MSX_CONF/frr exists or /etc/frr is a mount; FRR=yes|no overrides.
#
# Ours start after FRR, are restarted when they die (1 s, doubling up to 30 s; not after
# exit status 2, a configuration error) and get SIGHUP (reload) when the container does.
# SIGTERM/SIGINT: ours stop first (SIGTERM, then SIGKILL after $STOP_TIMEOUT s), then FRR.
# Their output goes to the container's log, each line prefixed with the daemon's name;
# FRR's log file (/var/log/frr/frr.log, if frr.conf says `log file` there) is followed too.
# Any other command line is run instead (`docker run IMAGE lispctl ...`).
set -u
CONF=${LISP_MSX_CONF:-/etc/lisp-msx}
STOP_TIMEOUT=${STOP_TIMEOUT:-5}
FRR=${FRR:-auto}

if [ $# -gt 0 ]; then
  exec "$@"
fi

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) entrypoint: $*"; }

# name -> config file, in start order (stopped in reverse)
ORDER=(lisp-agent frr-bgp-plugin ospf-msfd)
declare -A PID=() BACKOFF=() NEXT=() STARTED=()
stopping=0
frr_running=0
tail_pid=

start_one() {
  local name=$1 cfg="$CONF/$1.toml"
  "/usr/local/bin/$name" -f "$cfg" > >(exec sed -u "s/^/[$name] /") 2>&1 &
  PID[$name]=$!
  STARTED[$name]=$SECONDS
  log "started $name (pid ${PID[$name]}, $cfg)"
}

stop_ours() {
  local i name pid deadline
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    name=${ORDER[$i]}
    pid=${PID[$name]:-}
    [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null
      deadline=$((SECONDS + STOP_TIMEOUT))
      while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
      fi
      wait "$pid" 2>/dev/null
    fi
    PID[$name]=
  done
}

shutdown() {
  [ $stopping = 1 ] && return
  stopping=1
  log "$1: shutting down"
  stop_ours
  if [ $frr_running = 1 ]; then
    log "stopping FRR"
    /usr/lib/frr/frrinit.sh stop 2>&1 | sed -u 's/^/[frr] /'
  fi
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  log "stopped"
  exit 0
}

reload() {
  local name
  for name in "${ORDER[@]}"; do
    [ -n "${PID[$name]:-}" ] && kill -HUP "${PID[$name]}" 2>/dev/null && log "SIGHUP -> $name"
  done
}

trap 'shutdown SIGTERM' TERM
trap 'shutdown SIGINT' INT
trap 'reload' HUP

# ---- the node's own preparation (addresses on lo, routes, sysctls...)
if [ -f "$CONF/setup.sh" ]; then
  log "running $CONF/setup.sh"
  bash -e "$CONF/setup.sh" 2>&1 | sed -u 's/^/[setup] /'
  if [ "${PIPESTATUS[0]}" != 0 ]; then
    log "$CONF/setup.sh failed"
    exit 1
  fi
fi

# ---- FRR
if [ "$FRR" = auto ]; then
  if [ -d "$CONF/frr" ] || mountpoint -q /etc/frr; then FRR=yes; else FRR=no; fi
fi
if [ "$FRR" = yes ]; then
  if [ -d "$CONF/frr" ]; then
    cp -a "$CONF"/frr/. /etc/frr/
  fi
  [ -f /etc/frr/vtysh.conf ] || echo 'service integrated-vtysh-config' >/etc/frr/vtysh.conf
  if ! mountpoint -q /etc/frr; then
    chown -R frr:frr /etc/frr
    chmod 0640 /etc/frr/*.conf 2>/dev/null
    chown frr:frrvty /etc/frr/vtysh.conf
    chmod 0644 /etc/frr/vtysh.conf
  fi
  mkdir -p /var/log/frr /var/run/frr
  chown frr:frr /var/log/frr /var/run/frr
  touch /var/log/frr/frr.log && chown frr:frr /var/log/frr/frr.log
  tail -n +1 -F /var/log/frr/frr.log 2>/dev/null | sed -u 's/^/[frr] /' &
  tail_pid=$!
  log "starting FRR: $(grep -E '^[a-z0-9]+d=yes' /etc/frr/daemons | cut -d= -f1 | tr '\n' ' ')"
  /usr/lib/frr/frrinit.sh start 2>&1 | sed -u 's/^/[frr] /'
  if [ "${PIPESTATUS[0]}" = 0 ]; then
    frr_running=1
  else
    log "FRR did not start"
    exit 1
  fi
fi

# ---- ours
found=0
for name in "${ORDER[@]}"; do
  if [ -f "$CONF/$name.toml" ]; then
    found=1
    BACKOFF[$name]=1
    start_one "$name"
  fi
done
[ $found = 1 ] || log "no lisp-agent.toml, frr-bgp-plugin.toml or ospf-msfd.toml in $CONF: only FRR runs"

# ---- supervise (polled, so that signals are handled within 0.5 s)
while :; do
  sleep 0.5 &
  wait $! 2>/dev/null
  [ $stopping = 1 ] && continue
  for name in "${ORDER[@]}"; do
    pid=${PID[$name]:-}
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      rc=$?
      PID[$name]=
      if [ $rc = 2 ]; then
        log "$name exited with status 2 (configuration error): not restarting it; fix $CONF/$name.toml and restart the container"
      else
        # a daemon that ran for a minute starts over with a short delay
        [ $((SECONDS - STARTED[$name])) -ge 60 ] && BACKOFF[$name]=1
        log "$name exited with status $rc: restarting in ${BACKOFF[$name]}s"
        NEXT[$name]=$((SECONDS + BACKOFF[$name]))
        BACKOFF[$name]=$((BACKOFF[$name] * 2 > 30 ? 30 : BACKOFF[$name] * 2))
      fi
    elif [ -z "$pid" ] && [ -n "${NEXT[$name]:-}" ] && [ $SECONDS -ge "${NEXT[$name]}" ]; then
      NEXT[$name]=
      start_one "$name"
    fi
  done
done
