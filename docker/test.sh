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
#      checks that no container, network or volume of the project is left (also on failure).
# Skips (exit 0, with the reason) when no Docker engine or compose tool is reachable.
#
# Environment: FRESH=0 reuses the base images and Docker's layer cache (warm run);
#   KEEP=1 leaves the lab running (no teardown); TIMEOUT (per wait, default 180 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LAB=$here/labs/msx-two-as
PROJECT=lisp-msx-two-as-test
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
mark() { TIMES+=("$(printf '%-44s %7s s' "$1" "$2")"); echo "== $1: $2 s"; }

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
  printf '   %-44s %7s s\n' "total" "$(since "$T0")"
  if [ "$1" = 0 ]; then echo "== docker test passed"; else echo "== docker test FAILED"; fi
}
lab_up=0
teardown() {
  local rc=$? t
  [ $lab_up = 1 ] || { summary $rc; exit $rc; }
  if [ $rc != 0 ]; then
    echo "== FAILED (status $rc); the lab's state and logs:"
    dc ps || true
    dc logs --no-color --tail=60 || true
    for s in r1 r2; do
      echo "-- $s: /var/log/frr/frr.log (tail)"; dc exec -T "$s" tail -n 20 /var/log/frr/frr.log 2>/dev/null || true
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "== KEEP=1: the lab stays up; stop it with: cd $LAB && COMPOSE_PROJECT_NAME=$PROJECT ${COMPOSE[*]} down -v"
    summary $rc
    exit $rc
  fi
  t=$(now)
  if [ $rc = 0 ]; then
    # Clean shutdown on SIGTERM: ours stop, then FRR, and the entrypoint exits 0.
    dc stop -t 20 >/dev/null 2>&1
    local bad=""
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
      local st
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
  if leftovers >/dev/null; then
    echo "== torn down: $(leftovers)"
  else
    echo "== FAILED: left over after down -v: $(leftovers)"
    rc=1
  fi
  mark "teardown (stop, down -v, check)" "$(since "$t")"
  summary $rc
  exit $rc
}
trap teardown EXIT

wait_for() { # DESCRIPTION CHECK-FUNCTION: polls CHECK every second until it succeeds or TIMEOUT
  local what=$1 check=$2 t out
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
    sleep 1
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

# ---------------------------------------------------------------- 2. the lab
leftovers >/dev/null || { echo "== a previous run left something: removing it"; dc down -v --remove-orphans >/dev/null 2>&1 || true; }
# The lab's addresses (198.51.100.0/26) must be free: not on a host interface (other than
# this project's bridges) nor in another Docker network (e.g. the lab started by hand).
clash=$( { ip -o -4 addr show | awk '{ print "interface " $2, $4 }'
           for id in $(docker network ls -q); do
             docker network inspect -f '{{ index .Labels "com.docker.compose.project" }} network {{ .Name }} {{ range .IPAM.Config }}{{ .Subnet }} {{ end }}' "$id"
           done | awk -v p="$PROJECT" '$1 != p { $1 = ""; print }'
         } | python3 -c 'import ipaddress, sys
lab = ipaddress.ip_network("198.51.100.0/26")
for line in sys.stdin:
    words = line.split()
    for w in words[2:]:
        try: net = ipaddress.ip_interface(w).network
        except ValueError: continue
        if net.version == 4 and net.overlaps(lab): print(" ".join(words[:2]), w)')
if [ -n "$clash" ]; then
  echo "== FAILED: the lab's addresses (198.51.100.0/26) are in use here: $clash"
  echo "   (the msx-two-as lab started by hand? stop it: cd $LAB && docker compose down -v)"
  exit 1
fi
t=$(now)
lab_up=1
dc up -d
mark "lab up (compose up -d, incl. r1/r2 healthy for xtr1/etr2)" "$(since "$t")"
T_UP=$(now)

# ---------------------------------------------------------------- 3. convergence
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

all_healthy() {
  local s st bad=""
  for s in r1 r2 xtr1 etr2; do
    st=$(docker inspect -f '{{ .State.Health.Status }}' "$(dc ps -q "$s")" 2>/dev/null || echo missing)
    [ "$st" = healthy ] || bad="$bad $s=$st"
  done
  [ -z "$bad" ] || { echo "not healthy:$bad"; return 1; }
  echo "r1 r2 xtr1 etr2 healthy"
}
wait_for "every container healthy" all_healthy

# ---------------------------------------------------------------- 4. resolution across the ASes
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

echo "== checks passed"
