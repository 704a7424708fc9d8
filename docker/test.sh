#!/usr/bin/env bash
# Acceptance test of the container images and the two-AS compose lab (issue 9):
#   1. builds the base images (debootstrap + docker import, builder with the host's Rust)
#      and the router image from scratch (docker/build-base.sh --force, docker/build.sh
#      with --no-cache);
#   2. brings docker/labs/msx-two-as up (project lisp-msx-two-as-test);
#   3. waits (polling, generous timeouts) for r1–r2 BGP Established, the CPNP agreements on
#      both sides and every container healthy;
#   4. asserts that xtr1 (AS65001) resolves 203.0.113.70 through its own Map-Resolver (r1)
#      to etr2's registration in AS65002: `lispctl lig 203.0.113.70 json`;
#   5. stops the lab (every container must exit 0: clean SIGTERM shutdown), `down -v`, and
#      checks that no container, network or volume of the project is left (also on failure);
#   6. the same for docker/labs/sync-two-itr (project lisp-msx-sync-two-itr-test): two ITRs
#      behind FRR vrrpd sharing their map-caches; waits for i1 VRRP Master of group 5, warms
#      up (the users ping every destination until answered), checks that i2 holds every
#      mapping learned by synchronization alone and that both members are "synced", then
#      fails i1 (its LAN interface down), waits for i2 Master of group 5 and checks that
#      every destination answers at once with no miss on i2; then tears it down as in 5.
# Skips (exit 0, with the reason) when no Docker engine or compose tool is reachable.
#
# Environment: FRESH=0 reuses the base images and Docker's layer cache (warm run);
#   KEEP=1 leaves the labs running (no teardown); TIMEOUT (per wait, default 180 s);
#   LABS (default "msx-two-as sync-two-itr"): which labs to run, in that order.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LABS=${LABS:-msx-two-as sync-two-itr}
# The lab being run (set by use_lab): its folder, compose project, FRR nodes (logs on failure).
LAB= PROJECT= FRR_NODES=
FRESH=${FRESH:-1}
TIMEOUT=${TIMEOUT:-180}
export IMAGE=${IMAGE:-lisp-msx/router:latest}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

skip() { echo "== docker test SKIPPED: $*"; exit 0; }
command -v docker >/dev/null || skip "no docker command"
docker info >/dev/null 2>&1 || skip "no Docker engine reachable ($(docker info 2>&1 | grep -m1 -i error || echo 'docker info failed'))"
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  skip "neither \`docker compose\` nor docker-compose is installed"
fi
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap of the base image)"
command -v python3 >/dev/null || { echo "docker/test.sh: needs python3 (reads lispctl/vtysh JSON)" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
declare -a TIMES=()
mark() { TIMES+=("$(printf '%-50s %7s %s' "$1" "$2" "${3:-s}")"); echo "== $1: $2 ${3:-s}"; }  # LABEL VALUE [UNIT]

dc() { (cd "$LAB" && COMPOSE_PROJECT_NAME=$PROJECT LISP_MSX_IMAGE=$IMAGE "${COMPOSE[@]}" "$@"); }
# `lispctl ARGS json` in a service (an unresolved lig exits 1 with its JSON on stderr).
ctl() { local svc=$1; shift; dc exec -T "$svc" lispctl "$@" json 2>&1 || true; }
vtysh_json() { dc exec -T "$1" vtysh -c "$2" 2>/dev/null || true; }
py() { python3 -c "$1" "${@:2}"; }

leftovers() {
  local c n v
  c=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  n=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  v=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  echo "$c containers, $n networks, $v volumes"
  [ "$c$n$v" = 000 ]
}

summary() {
  echo "== timings"
  printf '   %s\n' "${TIMES[@]}"
  printf '   %-50s %7s s\n' "total" "$(since "$T0")"
  if [ "$1" = 0 ]; then echo "== docker test passed"; else echo "== docker test FAILED"; fi
}
use_lab() { # NAME: the lab the functions below work on
  LAB=$here/labs/$1
  PROJECT=lisp-msx-$1-test
  case $1 in
    msx-two-as) FRR_NODES="r1 r2" ;;
    sync-two-itr) FRR_NODES="i1 i2 rs" ;;
    *) echo "docker/test.sh: unknown lab $1 (LABS)" >&2; exit 2 ;;
  esac
  [ -f "$LAB/compose.yaml" ] || { echo "docker/test.sh: no $LAB/compose.yaml" >&2; exit 2; }
}

lab_up=0
lab_down() { # RC: stops the current lab (every container must exit 0 when RC is 0), down -v,
  # checks nothing is left; sets rc to the resulting status. KEEP=1: leaves it up.
  rc=$1
  local t
  if [ $rc != 0 ]; then
    echo "== FAILED (status $rc); the lab's state and logs:"
    dc ps || true
    dc logs --no-color --tail=60 || true
    for s in $FRR_NODES; do
      echo "-- $s: /var/log/frr/frr.log (tail)"; dc exec -T "$s" tail -n 20 /var/log/frr/frr.log 2>/dev/null || true
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "== KEEP=1: the lab stays up; stop it with: cd $LAB && COMPOSE_PROJECT_NAME=$PROJECT ${COMPOSE[*]} down -v"
    lab_up=0
    return 0
  fi
  t=$(now)
  if [ $rc = 0 ]; then
    # Clean shutdown on SIGTERM: ours stop, then FRR, and the entrypoint exits 0.
    dc stop -t 20 >/dev/null 2>&1
    local bad="" id st
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
      st=$(docker inspect -f '{{ index .Config.Labels "com.docker.compose.service" }}={{ .State.ExitCode }}' "$id")
      [ "${st#*=}" = 0 ] || bad="$bad $st"
    done
    if [ -n "$bad" ]; then
      echo "== FAILED: containers did not stop cleanly on SIGTERM (service=exit status):$bad"
      dc logs --no-color --tail=20 || true
      rc=1
    else
      echo "== every container exited 0 on SIGTERM"
    fi
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  lab_up=0
  if leftovers >/dev/null; then
    echo "== torn down: $(leftovers)"
  else
    echo "== FAILED: left over after down -v: $(leftovers)"
    rc=1
  fi
  mark "${LAB##*/}: teardown (stop, down -v, check)" "$(since "$t")"
}
teardown() {
  rc=$?
  [ -z "$WATCH_DIR" ] || rm -rf "$WATCH_DIR"
  [ $lab_up = 1 ] && lab_down $rc
  summary $rc
  exit $rc
}
trap teardown EXIT

wait_for() { # DESCRIPTION CHECK-FUNCTION [INTERVAL]: polls CHECK every INTERVAL (1 s) until it
  # succeeds or TIMEOUT
  local what=$1 check=$2 every=${3:-1} t out
  t=$(now)
  while :; do
    if out=$($check 2>&1); then
      mark "$what" "$(since "$t")"
      [ -n "$out" ] && echo "   $out"
      return 0
    fi
    if [ "$(awk -v a="$t" -v b="$(now)" -v m="$TIMEOUT" 'BEGIN { print (b - a > m) }')" = 1 ]; then
      echo "== FAILED: $what: not within ${TIMEOUT}s; last check said: $out"
      return 1
    fi
    sleep "$every"
  done
}

# ---------------------------------------------------------------- 1. images
if [ "$FRESH" = 1 ]; then
  echo "== building from scratch (FRESH=0 reuses the layer cache)"
  # Intermediate stage images of earlier builds are useless with --no-cache.
  docker image prune -f --filter label=org.lisp-msx.build >/dev/null || true
  t=$(now); "$here/build-base.sh" --force --no-builder; mark "base image (debootstrap + import)" "$(since "$t")"
  t=$(now); "$here/build-base.sh" --force --builder-only
  mark "builder image (host Rust toolchain)" "$(since "$t")"
  t=$(now); "$here/build.sh" --no-base -- --no-cache >/tmp/lisp-msx-docker-build.log 2>&1 ||
    { tail -n 40 /tmp/lisp-msx-docker-build.log; echo "== FAILED: router image build (log: /tmp/lisp-msx-docker-build.log)"; exit 1; }
else
  t=$(now); "$here/build-base.sh"; mark "base images (reused when present)" "$(since "$t")"
  t=$(now); "$here/build.sh" --no-base >/tmp/lisp-msx-docker-build.log 2>&1 ||
    { tail -n 40 /tmp/lisp-msx-docker-build.log; echo "== FAILED: router image build (log: /tmp/lisp-msx-docker-build.log)"; exit 1; }
fi
grep -E '^== (build context|lisp-msx/router)' /tmp/lisp-msx-docker-build.log || true
mark "router image (docker/build.sh)" "$(since "$t")"
size=$(docker image inspect -f '{{ .Size }}' "$IMAGE")
echo "== $IMAGE: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"
[ "$size" -lt 200000000 ] || { echo "== FAILED: $IMAGE is not under 200 MB"; exit 1; }

# ---------------------------------------------------------------- 2. bringing a lab up
lab_start() { # SUBNET...: the lab's address blocks must be free; then compose up -d
  leftovers >/dev/null || { echo "== a previous run left something: removing it"; dc down -v --remove-orphans >/dev/null 2>&1 || true; }
  # The lab's addresses must be free: not on a host interface (other than this project's
  # bridges) nor in another Docker network (e.g. the lab started by hand).
  local clash
  clash=$( { ip -o -4 addr show | awk '{ print "interface " $2, $4 }'
             for id in $(docker network ls -q); do
               docker network inspect -f '{{ index .Labels "com.docker.compose.project" }} network {{ .Name }} {{ range .IPAM.Config }}{{ .Subnet }} {{ end }}' "$id"
             done | awk -v p="$PROJECT" '$1 != p { $1 = ""; print }'
           } | python3 -c 'import ipaddress, sys
labs = [ipaddress.ip_network(a) for a in sys.argv[1:]]
for line in sys.stdin:
    words = line.split()
    for w in words[2:]:
        try: net = ipaddress.ip_interface(w).network
        except ValueError: continue
        if net.version == 4 and any(net.overlaps(lab) for lab in labs): print(" ".join(words[:2]), w)' "$@")
  if [ -n "$clash" ]; then
    echo "== FAILED: the lab's addresses ($*) are in use here: $clash"
    echo "   (the ${LAB##*/} lab started by hand? stop it: cd $LAB && docker compose down -v)"
    exit 1
  fi
  lab_up=1
  dc up -d
}

all_healthy() { # the lab's every container healthy (or running, for those without a check)
  local id st svc bad="" ok=""
  for id in $(dc ps -q); do
    svc=$(docker inspect -f '{{ index .Config.Labels "com.docker.compose.service" }}' "$id")
    st=$(docker inspect -f '{{ if .State.Health }}{{ .State.Health.Status }}{{ else }}{{ .State.Status }}{{ end }}' "$id" 2>/dev/null || echo missing)
    if [ "$st" = healthy ]; then ok="$ok $svc"; else bad="$bad $svc=$st"; fi
  done
  [ -n "$ok" ] && [ -z "$bad" ] || { echo "not healthy:$bad"; return 1; }
  echo "healthy:$ok"
}

# ---------------------------------------------------------------- 3. msx-two-as
run_msx_two_as() {
local t
t=$(now)
lab_start 198.51.100.0/26
mark "lab up (compose up -d, incl. r1/r2 healthy)" "$(since "$t")"
T_UP=$(now)

bgp_established() {
  local a b
  a=$(vtysh_json r1 'show bgp neighbors 198.51.100.2 json')
  b=$(vtysh_json r2 'show bgp neighbors 198.51.100.1 json')
  py 'import json,sys
a, b = json.loads(sys.argv[1] or "{}"), json.loads(sys.argv[2] or "{}")
sa = a.get("198.51.100.2", {}).get("bgpState"); sb = b.get("198.51.100.1", {}).get("bgpState")
print(f"r1->r2 {sa}, r2->r1 {sb}")
sys.exit(0 if sa == sb == "Established" else 1)' "$a" "$b"
}
wait_for "eBGP r1-r2 Established" bgp_established

agreements() {
  local a b
  a=$(ctl r1 show lisp msx agreements)
  b=$(ctl r2 show lisp msx agreements)
  py 'import json,sys
def ags(s):
    try: return json.loads(s).get("agreements", [])
    except Exception: return []
r1, r2 = ags(sys.argv[1]), ags(sys.argv[2])
def find(l, role, peer): return next((x for x in l if x.get("role") == role and x.get("peer") == peer), None)
ids = lambda x: (x.get("customer_agreement_id"), x.get("provider_agreement_id"))
c1, s2, c2, s1 = find(r1, "client", "198.51.100.34"), find(r2, "server", "198.51.100.33"), find(r2, "client", "198.51.100.33"), find(r1, "server", "198.51.100.34")
if not (c1 and s2 and c2 and s1 and ids(c1) == ids(s2) and ids(c2) == ids(s1)):
    print(f"r1: {r1} r2: {r2}"); sys.exit(1)
print("r1 client of r2 %s/%s, r2 client of r1 %s/%s; r1 gets %s" % (ids(c1) + ids(c2) + (c1.get("eid_prefixes"),)))' "$a" "$b"
}
wait_for "CPNP agreements on both sides (r1, r2)" agreements

wait_for "every container healthy" all_healthy

# resolution across the ASes
lig_resolved() {
  local out
  out=$(ctl xtr1 lig 203.0.113.70)
  py 'import json,sys
try: v = json.loads(sys.argv[1])
except Exception: print(sys.argv[1]); sys.exit(1)
if v.get("resolved") is not True: print(v); sys.exit(1)
print(json.dumps(v))' "$out"
}
wait_for "lig 203.0.113.70 on xtr1 resolved" lig_resolved
LIG=$(ctl xtr1 lig 203.0.113.70)
py 'import json,sys
v = json.loads(sys.argv[1])
m = v.get("mapping") or {}
locs = [l.get("address") for l in m.get("locators", [])]
checks = [("resolved", v.get("resolved"), True), ("map_resolver", v.get("map_resolver"), "198.51.100.33"),
          ("mapping.eid_prefix", m.get("eid_prefix"), "203.0.113.64/26"), ("locators", locs, ["198.51.100.18"])]
bad = [f"{k} = {got!r}, expected {want!r}" for k, got, want in checks if got != want]
if bad: print("== FAILED: lig 203.0.113.70 on xtr1:", "; ".join(bad), "\n  ", json.dumps(v)); sys.exit(1)
print("== lig 203.0.113.70 on xtr1 (AS65001): %s -> RLOC %s (etr2, AS65002), answered by MR %s, rtt %s us"
      % (m.get("eid_prefix"), locs[0], v.get("map_resolver"), v.get("rtt_us")))' "$LIG"
mark "lab up -> resolution across the ASes" "$(since "$T_UP")"

echo "== r1: show bgp ipv4 unicast 203.0.113.0/24"
dc exec -T r1 vtysh -c 'show bgp ipv4 unicast 203.0.113.0/24' | sed 's/^/   /'
echo "== r1: lispctl show lisp map-resolver (served by)"
dc exec -T r1 lispctl show lisp map-resolver | sed 's/^/   /' | head -n 20
echo "== msx-two-as: checks passed"
}

# ---------------------------------------------------------------- 4. sync-two-itr
# rs owns 203.0.113.(128 + 8k + 1), one per registered /29: u1 pings k = 0..4, u2 k = 5..7.
SYNC_U1="203.0.113.129 203.0.113.137 203.0.113.145 203.0.113.153 203.0.113.161"
SYNC_U2="203.0.113.169 203.0.113.177 203.0.113.185"
SYNC_PREFIXES=$(for a in $SYNC_U1 $SYNC_U2; do echo "${a%.*}.$((${a##*.} - 1))/29"; done | tr '\n' ' ')

# USER DEST...: one echo request to each (in parallel, 1 s timeout); prints the unanswered.
pings() {
  local user=$1; shift
  dc exec -T "$user" sh -c 'for d; do (ping -n -q -c 1 -W 1 "$d" >/dev/null 2>&1 || echo "$d") & done; wait' sh "$@"
}
ping_all() { # every user to each of its destinations; prints "user:dest" of the unanswered
  { pings u1 $SYNC_U1 | sed 's/^/u1:/'; pings u2 $SYNC_U2 | sed 's/^/u2:/'; } 2>&1
}
vrrp_status() { # NODE VRID: Master / Backup / Initialize ("" if vrrpd does not answer)
  py 'import json,sys
try: print(json.loads(sys.argv[1])[0]["v4"]["status"])
except Exception: print("")' "$(vtysh_json "$1" "show vrrp $2 json")"
}
dp_counter() { # NODE FIELD: a counter of `show lisp data-plane statistics json`
  py 'import json,sys
try: print(int(json.loads(sys.argv[1]).get(sys.argv[2], 0)))
except Exception: print("?")' "$(ctl "$1" show lisp data-plane statistics)" "$2"
}

# Watchers run inside a container (a check every 10-20 ms plus the lispctl/vtysh call; no
# `docker exec` per check, ~0.7 s here) and print the time (the host's clock, which the
# containers share) when their condition holds.
WATCH_DIR=
watch_start() { # NAME NODE SCRIPT [ARGS...]: starts the watcher, returns once it runs
  local name=$1 node=$2 script=$3; shift 3
  [ -n "$WATCH_DIR" ] || WATCH_DIR=$(mktemp -d /tmp/lisp-msx-docker-test.XXXXXX)
  dc exec -T "$node" timeout "$TIMEOUT" sh -c "echo watching; $script; date +%s.%N" sh "$@" >"$WATCH_DIR/$name" 2>&1 &
  eval "WATCH_PID_$name=\$!"
  watching() { grep -q '^watching' "$WATCH_DIR/$name" 2>/dev/null; }
  wait_for_quiet watching
}
watch_wait() { # NAME: waits for the watcher to end (not in a subshell: it is our child)
  local pid
  eval "pid=\$WATCH_PID_$1"
  wait "$pid" || true
}
watch_out() { sed '1d' "$WATCH_DIR/$1"; }  # NAME: its output (the time it ended last)
watch_time() { tail -n 1 | grep -E '^[0-9]+\.[0-9]+$' || true; }  # the time a watcher ended
wait_for_quiet() { # CHECK: polls CHECK every 0.1 s (at most 30 s)
  local i
  for i in $(seq 300); do $1 && return 0; sleep 0.1; done
  echo "== FAILED: a watcher did not start"; return 1
}
# until the map-cache holds every prefix (ARGS): "PREFIX TIME" when each is first seen
RECORD_TIMES='seen=" "; n=0
while [ $n -lt $# ]; do
  if c=$(lispctl show lisp map-cache json 2>/dev/null); then
    t=$(date +%s.%N)
    for p; do
      case $seen in *" $p "*) continue ;; esac
      case $c in *"\"$p\""*) seen="$seen$p "; n=$((n + 1)); echo "$p $t" ;; esac
    done
  fi
  sleep 0.01
done'
# VRRP group 5 Master here
IS_MASTER5='until vtysh -c "show vrrp 5 json" 2>/dev/null | grep -q "\"status\":\"Master\""; do sleep 0.02; done'
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "?"; else printf "%.0f", (b - a) * 1000 }'; }

run_sync_two_itr() {
local t
t=$(now)
lab_start 198.51.100.64/26 203.0.113.0/26
mark "sync lab up (compose up -d, incl. i1/i2 healthy)" "$(since "$t")"
T_UP=$(now)

i1_master() {
  local a b
  a=$(vrrp_status i1 5); b=$(vrrp_status i2 5)
  echo "group 5: i1 $a, i2 $b; group 6: i1 $(vrrp_status i1 6), i2 $(vrrp_status i2 6)"
  [ "$a" = Master ] && [ "$b" = Backup ]
}
wait_for "sync: VRRP group 5 Master on i1" i1_master
wait_for "sync: every container healthy" all_healthy

registered() { # e1's /26 and rs's eight /29s at ms
  py 'import json,sys
try: v = json.loads(sys.argv[1])
except Exception: print(sys.argv[1]); sys.exit(1)
got = sorted(p.get("eid_prefix", "?") for s in v.get("sites", []) for p in s.get("prefixes", []) if p.get("registrations"))
want = sys.argv[2].split()
missing = [p for p in want if p not in got]
print(f"{len(got)} prefixes registered at ms" + (f", missing {missing}" if missing else ""))
sys.exit(1 if missing else 0)' "$(ctl ms show lisp site)" "203.0.113.0/26 $SYNC_PREFIXES"
}
wait_for "sync: 9 registrations at ms" registered

# Warm-up: the first packet to each destination misses at i1 (dropped while i1 resolves it),
# the first answer misses at rs. Watchers note when i1, then i2, holds every mapping.
watch_start i1all i1 "$RECORD_TIMES" $SYNC_PREFIXES
watch_start i2all i2 "$RECORD_TIMES" $SYNC_PREFIXES
answered() {
  local lost
  lost=$(ping_all)
  [ -z "$lost" ] || { echo "unanswered: $lost"; return 1; }
  echo "u1 -> $SYNC_U1; u2 -> $SYNC_U2: answered"
}
wait_for "sync: warm-up, every destination answered" answered
watch_wait i1all; watch_wait i2all
w1=$(watch_out i1all); w2=$(watch_out i2all)
t1=$(watch_time <<<"$w1"); t2=$(watch_time <<<"$w2")
[ -n "$t1" ] && [ -n "$t2" ] || { echo "== FAILED: a map-cache watcher failed: i1: $w1; i2: $w2"; exit 1; }
# per record: when i2 had it after i1 had it (each side polled every ~10 ms + a lispctl call)
delays=$(awk 'NR == FNR { if (NF == 2) a[$1] = $2; next } NF == 2 && ($1 in a) { printf "%.0f\n", ($2 - a[$1]) * 1000 }' \
  <(echo "$w1") <(echo "$w2") | sort -n | tr '\n' ' ')
echo "== every record at i2 after i1 (ms, sorted): $delays(i1 all at $t1, i2 at $t2: $(ms_between "$t1" "$t2") ms)"
mark "sync convergence (a record at i1 -> at i2, max)" "$(tr ' ' '\n' <<<"$delays" | grep . | tail -n 1)" ms

# i2 holds every mapping although no user sent through it: learned by synchronization.
i2_synced() {
  py 'import json,sys
def entries(s):
    try: return {e["mapping"]["eid_prefix"]: e.get("source") for e in json.loads(s).get("entries", []) if e.get("mapping")}
    except Exception: return {}
i1, i2 = entries(sys.argv[1]), entries(sys.argv[2])
want = sys.argv[3].split()
bad = [f"{p}: i2 {i2.get(p)}" for p in want if i2.get(p) != "sync"] + [f"{p}: i1 missing" for p in want if p not in i1]
if bad: print("; ".join(bad)); sys.exit(1)
print(f"i2 holds all {len(want)} destination prefixes, source \"sync\" (i1: {sorted(set(i1[p] for p in want))})")' \
    "$(ctl i1 show lisp map-cache)" "$(ctl i2 show lisp map-cache)" "$SYNC_PREFIXES"
}
wait_for "sync: i2 holds every mapping (source sync)" i2_synced
members_synced() {
  py 'import json,sys
out, ok = [], True
for node, peer, s in (("i1", "203.0.113.4", sys.argv[1]), ("i2", "203.0.113.3", sys.argv[2])):
    try: v = json.loads(s)
    except Exception: print(f"{node}: {s}"); sys.exit(1)
    m = next((m for m in v.get("members", []) if m.get("peer", "").split(":")[0] == peer), {})
    mode, state = v.get("mode"), m.get("state")
    ok = ok and mode == "smart" and state == "synced"
    out.append("%s: %s, %s %s (records sent %s, received %s)" % (node, mode, peer, state, m.get("records_sent"), m.get("records_received")))
print("; ".join(out)); sys.exit(0 if ok else 1)' "$(ctl i1 show lisp sync)" "$(ctl i2 show lisp sync)"
}
wait_for "sync: both members synced" members_synced
enc0=$(dp_counter i2 encapsulated)
[ "$enc0" = 0 ] || { echo "== FAILED: i2 encapsulated $enc0 packets before the failover (no user sends through it)"; exit 1; }

# i1 fails: its LAN interface goes down; VRRP moves group 5 to i2.
misses0=$(dp_counter i2 misses)
watch_start master i2 "$IS_MASTER5"
T_FAIL=$(now)
t_down=$(dc exec -T i1 sh -c 'date +%s.%N; ip link set lan down')
i2_master() {
  local s
  s=$(vrrp_status i2 5)
  echo "i2 group 5: $s"
  [ "$s" = Master ]
}
wait_for "sync: i2 Master of group 5 (polled from outside)" i2_master 0.2
watch_wait master
t_master=$(watch_out master | watch_time)
echo "== i1's LAN down at $t_down, i2 Master of group 5 at $t_master: $(ms_between "$t_down" "$t_master") ms"
mark "switchover (i1 LAN down -> i2 Master of group 5)" "$(ms_between "$t_down" "$t_master")" ms
t=$(now)
lost=$(ping_all)
mark "sync: one ping per destination after switchover" "$(since "$t")"
mark "sync: i1 down -> every destination answered" "$(since "$T_FAIL")"
misses1=$(dp_counter i2 misses)
enc1=$(dp_counter i2 encapsulated)
echo "== after the switchover: unanswered: ${lost:-none}; i2 misses $misses0 -> $misses1, encapsulated $enc0 -> $enc1"
[ -z "$lost" ] || { echo "== FAILED: destinations unanswered after the switchover: $lost"; exit 1; }
[ "$misses1" = "$misses0" ] || { echo "== FAILED: i2 missed $((misses1 - misses0)) time(s) after the switchover"; exit 1; }
[ "$enc1" -gt "$enc0" ] || { echo "== FAILED: i2 encapsulated nothing: the pings did not go through it"; exit 1; }
mark "sync lab up -> every check passed" "$(since "$T_UP")"

echo "== i2: lispctl show lisp sync"
dc exec -T i2 lispctl show lisp sync | sed 's/^/   /'
echo "== i2: lispctl show lisp map-cache"
dc exec -T i2 lispctl show lisp map-cache | sed 's/^/   /' | head -n 20
echo "== sync-two-itr: checks passed"
}

# ---------------------------------------------------------------- 5. run them
for name in $LABS; do
  use_lab "$name"
  case $name in
    msx-two-as) run_msx_two_as ;;
    sync-two-itr) run_sync_two_itr ;;
  esac
  lab_down 0
  [ "$rc" = 0 ] || exit "$rc"
done
echo "== checks passed"
