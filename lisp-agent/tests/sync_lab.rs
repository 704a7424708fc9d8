//! Issue 8 acceptance: the reference experiment of ITR map-cache
//! synchronization, on `lab/topologies/sync.toml`: two ITRs of one site
//! behind real FRR vrrpd, two users pinging 20 and 10 remote EIDs (record TTL
//! 10 minutes), ITR1 failing by interface shutdown.
//!
//! - Test 1: both users through ITR1 (VRRP group 5). Test 2: USR1 through
//!   ITR1, USR2 through ITR2 (group 6).
//! - Each without synchronization, with naive and with smart synchronization.
//! - After warming up (every destination answered), the table of the
//!   reference is taken (map-cache records of ITR1 and ITR2: total / pulled
//!   by USR1 / by USR2), ITR1's LAN interface is shut, the test waits until
//!   ITR2 is VRRP Master of group 5, then every user pings each of its
//!   destinations: ITR2's misses and the lost pings are counted.
//! - Asserted: without synchronization ITR2 misses (and pings are lost); with
//!   it, 0 misses and 0 lost pings.
//! - In smart mode a member killed with SIGKILL and restarted gets back every
//!   record the other holds before it forwards.
//!
//! Needs root and FRR (vrrpd, staticd); otherwise prints SKIPPED and passes.
//! The table: `cargo test -p lisp-agent --test sync_lab -- --nocapture`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::frr_lab::{inline_config, lispctl, spawn_agent};
use lab::{Lab, Topology, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);
static SERIAL: Mutex<()> = Mutex::new(());

/// USR1's 20 destinations and USR2's 10: one address in each registered /29.
fn destinations(user: &str) -> Vec<String> {
    let ks = if user == "u1" { 0..20 } else { 20..30 };
    ks.map(|k| format!("203.0.113.{}", 8 * k + 1)).collect()
}

/// Which user's destination a cached prefix serves.
fn user_of(prefix: &str) -> Option<&'static str> {
    let third = prefix.strip_prefix("203.0.113.")?.split('/').next()?;
    let k = third.parse::<u32>().ok()? / 8;
    match k {
        0..20 => Some("u1"),
        20..30 => Some("u2"),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sync {
    None,
    Naive,
    Smart,
}

impl Sync {
    fn name(self) -> &'static str {
        match self {
            Sync::None => "none",
            Sync::Naive => "naive",
            Sync::Smart => "smart",
        }
    }

    fn section(self, me: &str, peer: &str) -> String {
        match self {
            Sync::None => String::new(),
            m => format!(
                "[sync]\nset_id = 1\nmode = \"{}\"\nkey = \"sync-lab-set-key\"\nlisten = \"{me}\"\npeers = [\"{peer}\"]\n",
                m.name()
            ),
        }
    }
}

fn topology(name: &str, state: &Path, sync: Sync) -> Topology {
    common::frr_lab::topology(
        "sync.toml",
        "/run/lisp-msx-sync/",
        "lmsx-sync-",
        name,
        state,
        |mut text| {
            for (node, me, peer) in [
                ("i1", "192.0.2.3", "192.0.2.4"),
                ("i2", "192.0.2.4", "192.0.2.3"),
            ] {
                let marker = format!("# sync: {node} (the test inserts the [sync] section here)\n");
                assert_eq!(text.matches(&marker).count(), 1, "{marker}");
                text = text.replace(&marker, &sync.section(me, peer));
            }
            text
        },
    )
}

struct Run {
    lab: Lab,
    topo: Topology,
    state: tempfile::TempDir,
}

impl Run {
    fn ctl(&self, node: &str, cmd: &str) -> Result<Value, String> {
        lispctl(&self.state.path().join(node).join("agent.sock"), cmd)
    }

    fn json(&self, node: &str, cmd: &str) -> Value {
        self.ctl(node, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Cached remote prefixes of an ITR.
    fn cached(&self, node: &str) -> Vec<String> {
        self.json(node, "show lisp map-cache")["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["source"] != "negative")
            .filter_map(|e| e["mapping"]["eid_prefix"].as_str().map(str::to_string))
            .filter(|p| user_of(p).is_some())
            .collect()
    }

    fn misses(&self, node: &str) -> u64 {
        self.json(node, "show lisp data-plane statistics")["misses"]
            .as_u64()
            .unwrap_or(0)
    }

    fn vrrp_state(&self, node: &str, vrid: u8) -> String {
        self.lab
            .vtysh_json(node, &format!("show vrrp {vrid} json"))
            .ok()
            .and_then(|v| v[0]["v4"]["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn registered_count(&self) -> usize {
        self.ctl("ms", "show lisp site")
            .ok()
            .map(|v| {
                v["sites"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["prefixes"].as_array().into_iter().flatten())
                    .filter(|p| p["registrations"].as_array().is_some_and(|r| !r.is_empty()))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Pings every destination of both users once each (in parallel);
    /// returns the destinations that got no answer.
    fn ping_all(&self, count: u32) -> Vec<String> {
        let lost = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for user in ["u1", "u2"] {
                for dst in destinations(user) {
                    let lost = &lost;
                    s.spawn(move || {
                        let p = self
                            .lab
                            .ping(user, &dst, count, Duration::from_millis(100))
                            .unwrap();
                        for _ in &p.lost {
                            lost.lock().unwrap().push(dst.clone());
                        }
                    });
                }
            }
        });
        lost.into_inner().unwrap()
    }
}

/// Record counts: (total, pulled by USR1, pulled by USR2).
fn split(cached: &[String]) -> (usize, usize, usize) {
    let u1 = cached.iter().filter(|p| user_of(p) == Some("u1")).count();
    let u2 = cached.iter().filter(|p| user_of(p) == Some("u2")).count();
    (cached.len(), u1, u2)
}

struct Row {
    test: u8,
    sync: Sync,
    itr1: (usize, usize, usize),
    itr2: (usize, usize, usize),
    misses: u64,
    lost: usize,
}

fn experiment(test: u8, sync: Sync) -> Row {
    let name = format!("sy{test}{}", &sync.name()[..2]);
    let state = tempfile::Builder::new().prefix("sync-").tempdir().unwrap();
    let topo = topology(&name, state.path(), sync);
    let t0 = Instant::now();
    let lab = Lab::up(topo.clone()).expect("lab up");
    let run = Run { lab, topo, state };
    wait_until("i1 Master of group 5, i2 of group 6", LONG, || {
        let s = (run.vrrp_state("i1", 5), run.vrrp_state("i2", 6));
        if s.0 == "Master" && s.1 == "Master" {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .unwrap();
    for (node, p) in [
        ("i1", "203.0.113.0/24"),
        ("i2", "203.0.113.0/24"),
        ("rs", "192.0.2.0/26"),
    ] {
        run.lab.wait_route(node, p, LONG).unwrap();
    }
    wait_until("31 registrations", LONG, || {
        let n = run.registered_count();
        if n >= 31 { Ok(()) } else { Err(n) }
    })
    .unwrap();
    if test == 2 {
        run.lab
            .exec_ok(
                "u2",
                &["ip", "route", "replace", "default", "via", "192.0.2.2"],
            )
            .unwrap();
    }
    // Warm-up: every destination answered (the first pings miss).
    wait_until("every destination answers", LONG, || {
        let lost = run.ping_all(3);
        let again = run.ping_all(1);
        if again.is_empty() {
            Ok(())
        } else {
            Err(format!("{} lost, then {again:?}", lost.len()))
        }
    })
    .unwrap();
    if sync != Sync::None {
        // The caches converge (nothing is asserted about how fast here).
        wait_until("ITR2 holds ITR1's records", LONG, || {
            let (a, b) = (run.cached("i1").len(), run.cached("i2").len());
            if b >= 30 && a >= 30 {
                Ok(())
            } else {
                Err(format!("i1 {a}, i2 {b}"))
            }
        })
        .unwrap();
    }
    if sync == Sync::Smart && test == 1 {
        // ITR2 holds only what it learned from ITR1: killed and restarted,
        // it must get all of it back before the failover relies on it.
        kill_and_restart(&run, "i2");
    }
    let itr1 = split(&run.cached("i1"));
    let itr2 = split(&run.cached("i2"));

    // ITR1 fails; VRRP moves group 5 to ITR2.
    let misses0 = run.misses("i2");
    run.lab
        .exec_ok("i1", &["ip", "link", "set", "lan", "down"])
        .unwrap();
    wait_until("i2 Master of group 5", LONG, || {
        let s = run.vrrp_state("i2", 5);
        if s == "Master" { Ok(()) } else { Err(s) }
    })
    .unwrap();
    let lost = run.ping_all(1);
    let misses = run.misses("i2") - misses0;
    println!(
        "[test {test}, sync {}] lab up to failover {:.1} s; lost after the switchover: {lost:?}",
        sync.name(),
        t0.elapsed().as_secs_f64()
    );

    run.lab.down().unwrap();
    Row {
        test,
        sync,
        itr1,
        itr2,
        misses,
        lost: lost.len(),
    }
}

/// SIGKILL a member, restart it: it pulls what the other still holds.
fn kill_and_restart(run: &Run, node: &str) {
    let held = run.cached("i1");
    let pid = run.lab.pid(node, "agent").expect("agent pid");
    let text = inline_config(&run.topo, node, "agent");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let _ = run.lab.stop(node, "agent");
    wait_until("the killed member's sync port is free", LONG, || {
        let t = run
            .lab
            .exec_ok(node, &["ss", "-Htanp", "sport = :4344"])
            .unwrap_or_default();
        if t.contains("LISTEN") { Err(t) } else { Ok(()) }
    })
    .unwrap();
    let t0 = Instant::now();
    spawn_agent(&run.lab, node, "agent-restarted", run.state.path(), &text);
    wait_until(
        &format!("{node} holds the {} records again", held.len()),
        LONG,
        || match run.ctl(node, "show lisp map-cache") {
            Ok(_) => {
                let have = run.cached(node);
                if held.iter().all(|p| have.contains(p)) {
                    Ok(())
                } else {
                    Err(format!("{} of {}", have.len(), held.len()))
                }
            }
            Err(e) => Err(e),
        },
    )
    .unwrap();
    println!(
        "[smart] {node} killed (SIGKILL) and restarted: all {} records back in {:.2} s",
        held.len(),
        t0.elapsed().as_secs_f64()
    );
    let sync = run.json(node, "show lisp sync");
    println!("  show lisp sync on {node}: {sync}");
}

/// All three modes; `SYNC_LAB_MODES=smart` runs only smart (when iterating).
fn order() -> Vec<Sync> {
    match std::env::var("SYNC_LAB_MODES").as_deref() {
        Ok("smart") => vec![Sync::Smart],
        _ => vec![Sync::None, Sync::Naive, Sync::Smart],
    }
}

#[test]
fn reference_experiment_with_vrrp() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::frr_lab::can_run(
        "reference_experiment_with_vrrp",
        &["zebra", "staticd", "vrrpd"],
    ) {
        return;
    }
    lab::ensure_root().unwrap();
    let mut rows = Vec::new();
    for test in [1u8, 2] {
        for sync in order() {
            rows.push(experiment(test, sync));
        }
    }
    println!();
    println!(
        "| test | sync | ITR1 records (total/USR1/USR2) | ITR2 records (total/USR1/USR2) | ITR2 misses after switchover | lost pings |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {}/{}/{} | {}/{}/{} | {} | {} |",
            r.test,
            r.sync.name(),
            r.itr1.0,
            r.itr1.1,
            r.itr1.2,
            r.itr2.0,
            r.itr2.1,
            r.itr2.2,
            r.misses,
            r.lost
        );
    }
    for r in &rows {
        if order().len() == 1 {
            break;
        }
        if r.sync == Sync::None {
            assert!(
                r.misses > 0 && r.lost > 0,
                "without synchronization ITR2 misses: test {}",
                r.test
            );
        } else {
            assert_eq!(
                (r.misses, r.lost),
                (0, 0),
                "test {} with {} synchronization",
                r.test,
                r.sync.name()
            );
        }
    }
}
