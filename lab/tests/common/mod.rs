//! Shared helpers of the lab's integration tests (they need root: namespaces,
//! TAP devices, FRR; run them with scripts/test.sh or `sudo cargo test -p lab`).
#![allow(dead_code)]

use std::time::Duration;

use lab::procs::ProcId;

/// Generous: the CI machine has 2 cores and may be busy.
pub const T: Duration = Duration::from_secs(60);

/// True when the tests can run; otherwise says why they are skipped.
pub fn can_run(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED {test}: needs root (network namespaces); run scripts/test.sh as root");
    }
    root
}

/// Asserts that nothing of lab `name` is left: no namespace or FRR pathspace
/// with its prefix, no process naming them, no run state, and none of `pids`
/// alive.
pub fn assert_gone(name: &str, pids: &[ProcId]) {
    let left = lab::leftovers(name);
    assert!(left.is_empty(), "lab {name} left: {left:?}");
    let alive: Vec<u32> = pids.iter().filter(|p| p.alive()).map(|p| p.pid).collect();
    assert!(
        alive.is_empty(),
        "lab {name}: processes still alive: {alive:?}"
    );
    assert!(
        !lab::state::run_dir(name).exists(),
        "lab {name}: run dir still there"
    );
    assert!(
        !lab::state::lock_path(name).exists(),
        "lab {name}: lock file still there"
    );
}

/// Every pid the lab knows: FRR daemons, spawned processes, wire processes.
pub fn all_pids(st: &lab::RunState) -> Vec<ProcId> {
    let mut v: Vec<ProcId> = st
        .nodes
        .iter()
        .flat_map(|n| n.daemons.iter().filter_map(|d| d.pid))
        .collect();
    v.extend(st.processes.iter().map(|p| p.pid));
    v.extend(st.links.iter().filter_map(|l| l.wire.as_ref()?.process));
    v
}

/// Two routers on one veth link with OSPF (point-to-point, hello 1, dead 4)
/// and optionally eBGP, loopbacks 192.0.2.1 and 192.0.2.2.
pub fn two_routers(name: &str, ospf: bool, bgp: bool) -> lab::Topology {
    let mut t = format!("name = \"{name}\"\n");
    for (i, peer) in [(1, 2), (2, 1)] {
        t += &format!("[nodes.r{i}]\nloopback = [\"192.0.2.{i}/32\", \"2001:db8::{i}/128\"]\n");
        if ospf {
            t += &format!(
                r#"[nodes.r{i}.frr.ospfd]
config = """
interface eth-r{peer}
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ip ospf retransmit-interval 1
router ospf
 ospf router-id 192.0.2.{i}
 capability opaque
 timers throttle lsa all 100
 timers lsa min-arrival 0
 timers throttle spf 0 50 1000
 network 192.0.2.{i}/32 area 0
 network 198.51.100.0/30 area 0
"""
"#
            );
        }
        if bgp {
            t += &format!(
                r#"[nodes.r{i}.frr.bgpd]
config = """
router bgp 6500{i}
 bgp router-id 192.0.2.{i}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 1 3
 neighbor 198.51.100.{peer} remote-as 6500{peer}
 neighbor 198.51.100.{peer} timers connect 1
 address-family ipv4 unicast
  network 192.0.2.{i}/32
 exit-address-family
"""
"#
            );
        }
    }
    t += r#"
[[links]]
a = { node = "r1", addrs = ["198.51.100.1/30", "2001:db8:12::1/64"] }
b = { node = "r2", addrs = ["198.51.100.2/30", "2001:db8:12::2/64"] }
"#;
    lab::Topology::parse(&t).unwrap_or_else(|e| panic!("{e}\n{t}"))
}
