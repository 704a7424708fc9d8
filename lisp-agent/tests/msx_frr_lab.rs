//! Issue 6 acceptance, end to end on real FRR 8.4 (zebra, staticd, bgpd) in
//! network namespaces: `lab/topologies/msx-two-as.toml`. Two ASes; in each, a
//! border router runs bgpd, frr-bgp-plugin and a lisp-agent (Map-Server,
//! Map-Resolver, LISP-MSX). h1 is an xTR of AS65001 asking only its own
//! Map-Resolver (r1); h2 an ETR of AS65002 registering with r2. Nothing
//! configures the other AS's mapping system: the plugins learn it from BGP.
//!
//! 1. cold start → both systems discovered over BGP → CPNP agreements on both sides;
//! 2. AS65002's registration in AS65001's copy (Map-Bulk); h1 resolves an EID of
//!    AS65002 and r1's Map-Resolver answers it from the copy;
//! 3. a new registration in AS65002 reaches AS65001's copy through the
//!    subscription within 30 s;
//! 4. restarting AS65002's and then AS65001's lisp-agent keeps the agreements (same
//!    identifiers, no CPNP message), resolution and the copy; a registration made
//!    after AS65002's restart must still reach AS65001's copy within 30 s;
//! 5. (second lab) r1 denies AS65002 by policy: no agreement, and h1's resolution
//!    falls back as configured. Chosen fallback: r1 has `require_agreement = true`
//!    and no DDT roots, so its Map-Resolver does not use the BGP-discovered system
//!    and answers a negative Map-Reply (served by "negative").
//!
//! Needs root, FRR and the debug binaries of lisp-agent and frr-bgp-plugin
//! (`cargo build -p lisp-agent -p frr-bgp-plugin`; `cargo test --workspace` builds
//! both); without root or FRR the tests print SKIPPED and pass. The times:
//! `cargo test -p lisp-agent --test msx_frr_lab -- --nocapture`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::frr_lab::{bin_dir, inline_config, lispctl};
use lab::{Lab, Topology};
use serde_json::Value;

/// Generous: two cores, other builds running.
const LONG: Duration = Duration::from_secs(60);
/// What a change may take to reach the other system's copy through the subscription.
const VIA_SUBSCRIPTION: Duration = Duration::from_secs(30);

/// One lab at a time: the timings mean more alone, and two cores are few.
static SERIAL: Mutex<()> = Mutex::new(());

/// AS65001's mapping system contact (r1's loopback) and EID space.
const R1: &str = "192.0.2.1";
const AS1_SPACE: &str = "198.51.100.128/25";
/// h1's own EID prefix, registered with r1.
const XTR_PREFIX: &str = "198.51.100.192/26";
/// AS65002's mapping system contact (r2's loopback) and EID space.
const R2: &str = "192.0.2.2";
const AS2_SPACE: &str = "203.0.113.0/24";
/// h2's registration (topology) and the one added in step 3 (a second ETR on h2).
const ETR_PREFIX: &str = "203.0.113.64/26";
const ETR_RLOC: &str = "198.51.100.18";
const ETR_EID: &str = "203.0.113.70";
const NEW_PREFIX: &str = "203.0.113.128/26";
const NEW_RLOC: &str = "198.51.100.19";
const NEW_EID: &str = "203.0.113.130";
/// Registered after AS65002's Map-Server restarted (step 4).
const THIRD_PREFIX: &str = "203.0.113.192/26";
const THIRD_RLOC: &str = "198.51.100.20";

fn can_run(test: &str) -> bool {
    common::frr_lab::can_run(test, &["zebra", "staticd", "bgpd"])
}

/// A sibling binary of another workspace crate.
fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build -p frr-bgp-plugin` (or `cargo build --workspace`) first",
        p.display()
    );
    p
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The topology with this run's binaries, state folder and lab name.
fn topology(name: &str, state: &Path, deny: bool) -> Topology {
    common::frr_lab::topology(
        "msx-two-as.toml",
        "/run/lisp-msx-two-as/",
        "lmsx-msx2as-",
        name,
        state,
        |text| {
            if !deny {
                return text;
            }
            let line = "\ndeny_as = []\n";
            assert_eq!(text.matches(line).count(), 1, "r1's policy line");
            text.replace(line, "\ndeny_as = [65002]\n")
        },
    )
}

/// The routers' bgpd/staticd configuration holds every line that
/// `frr-bgp-plugin print-frr-config` prints for their plugin configuration.
fn check_plugin_snippets(topo: &Topology, dir: &Path) {
    for (node, peer) in [("r1", "198.51.100.2"), ("r2", "198.51.100.1")] {
        let cfg = dir.join(format!("plugin-{node}.toml"));
        std::fs::write(&cfg, inline_config(topo, node, "plugin")).unwrap();
        let out = Command::new(bin("frr-bgp-plugin"))
            .arg("-f")
            .arg(&cfg)
            .args(["print-frr-config", "--ebgp-neighbor", peer])
            .output()
            .expect("print-frr-config runs");
        assert!(
            out.status.success(),
            "print-frr-config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = topo.node(node).unwrap();
        let have: HashSet<&str> = n
            .daemons
            .iter()
            .flat_map(|d| d.config.lines())
            .map(str::trim)
            .collect();
        let printed = String::from_utf8(out.stdout).unwrap();
        let missing: Vec<&str> = printed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('!') && !have.contains(l))
            .collect();
        assert!(
            missing.is_empty(),
            "{node}: the topology lacks lines of print-frr-config: {missing:#?}"
        );
    }
}

/// A running lab and its state folder (sockets, agreements).
struct Run {
    // Dropped first: the lab stops every process before the folder goes.
    lab: Lab,
    topo: Topology,
    state: tempfile::TempDir,
    t0: Instant,
}

impl Run {
    fn up(name: &str, deny: bool) -> Run {
        let state = tempfile::Builder::new()
            .prefix("msx2as-")
            .tempdir()
            .expect("temp dir");
        let topo = topology(name, state.path(), deny);
        check_plugin_snippets(&topo, state.path());
        let t0 = Instant::now();
        let lab = Lab::up(topo.clone()).expect("lab up");
        println!(
            "[{name}] lab up (namespaces, FRR, agents, plugins started): {}",
            secs(t0.elapsed())
        );
        Run {
            lab,
            topo,
            state,
            t0,
        }
    }

    fn name(&self) -> String {
        self.lab.name().to_string()
    }

    fn since_start(&self) -> String {
        secs(self.t0.elapsed())
    }

    fn wait_frr(&self) {
        for (node, peer) in [
            ("r1", "198.51.100.2"),
            ("r2", "198.51.100.1"),
            ("r1", "127.0.0.2"),
            ("r2", "127.0.0.2"),
        ] {
            self.lab.wait_bgp_established(node, peer, LONG).unwrap();
        }
        println!(
            "[{}] eBGP r1–r2 and both plugin sessions Established: {}",
            self.name(),
            self.since_start()
        );
        for node in ["r1", "r2"] {
            let log = std::fs::read_to_string(self.lab.log_dir().join(node).join("bgpd.log"))
                .unwrap_or_default();
            let failed: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("Config Failed"))
                .collect();
            assert!(failed.is_empty(), "bgpd on {node} refused: {failed:#?}");
        }
    }

    fn sock(&self, node: &str) -> PathBuf {
        self.state.path().join(node).join("agent.sock")
    }

    /// `lispctl CMD json` against `node`'s agent.
    fn ctl(&self, node: &str, cmd: &str) -> Result<Value, String> {
        lispctl(&self.sock(node), cmd)
    }

    fn json(&self, node: &str, cmd: &str) -> Value {
        self.ctl(node, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    fn list(&self, node: &str, cmd: &str, field: &str) -> Vec<Value> {
        self.ctl(node, cmd)
            .ok()
            .and_then(|v| v[field].as_array().cloned())
            .unwrap_or_default()
    }

    fn agreements(&self, node: &str) -> Vec<Value> {
        self.list(node, "show lisp msx agreements", "agreements")
    }

    fn peer(&self, node: &str, contact: &str) -> Option<Value> {
        self.list(node, "show lisp msx peers", "peers")
            .into_iter()
            .find(|p| p["contact"] == contact)
    }

    fn peer_state(&self, node: &str, contact: &str) -> String {
        self.peer(node, contact)
            .and_then(|p| p["state"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// (role, peer, customer id/provider id) of every agreement, sorted.
    fn agreement_keys(&self, node: &str) -> Vec<(String, String, String)> {
        let mut k: Vec<_> = self
            .agreements(node)
            .iter()
            .map(|a| {
                (
                    a["role"].as_str().unwrap_or("").to_string(),
                    a["peer"].as_str().unwrap_or("").to_string(),
                    format!(
                        "{}/{}",
                        a["customer_agreement_id"].as_str().unwrap_or(""),
                        a["provider_agreement_id"].as_str().unwrap_or("")
                    ),
                )
            })
            .collect();
        k.sort();
        k
    }

    /// The mapping system `node`'s agent learned over BGP with this contact and prefix.
    fn bgp_system(&self, node: &str, contact: &str, prefix: &str) -> Option<Value> {
        self.list(node, "show lisp discovery", "entries")
            .into_iter()
            .filter(|e| e["source"] == "bgp")
            .map(|e| e["system"].clone())
            .find(|s| {
                s["contact"] == contact
                    && s["eid_prefixes"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x == prefix))
            })
    }

    /// `node`'s Map-Resolver copy of other systems' tables: (EID prefix, from, RLOCs).
    fn copied(&self, node: &str) -> Result<Vec<(String, String, Vec<String>)>, String> {
        let v = self.ctl(node, "show lisp map-resolver")?;
        let Some(c) = v.get("copied").and_then(Value::as_array) else {
            return Err(format!(
                "no `copied` in `show lisp map-resolver json` (does this lisp-agent show its copy?): {v}"
            ));
        };
        Ok(c.iter()
            .map(|e| {
                (
                    e["eid_prefix"].as_str().unwrap_or("").to_string(),
                    e["from"].as_str().unwrap_or("").to_string(),
                    e["rlocs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect(),
                )
            })
            .collect())
    }

    /// Ok(RLOCs) when `prefix` from `from` is in `node`'s copy.
    fn in_copy(&self, node: &str, prefix: &str, from: &str) -> Result<Vec<String>, String> {
        let c = self.copied(node)?;
        c.iter()
            .find(|(p, f, _)| p == prefix && f == from)
            .map(|(_, _, r)| r.clone())
            .ok_or_else(|| format!("{node}'s copy: {c:?}"))
    }

    fn served(&self, node: &str) -> BTreeMap<String, u64> {
        self.json(node, "show lisp map-resolver")["served_by"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Map-Resolver paths whose counters grew since `before`.
    fn paths_since(&self, node: &str, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.served(node)
            .into_iter()
            .filter_map(|(k, v)| {
                let d = v.saturating_sub(before.get(&k).copied().unwrap_or(0));
                (d > 0).then_some((k, d))
            })
            .collect()
    }

    fn counter(&self, node: &str, name: &str) -> u64 {
        self.json(node, "show lisp statistics")["counters"][name]
            .as_u64()
            .unwrap_or(0)
    }

    fn cpnp(&self, node: &str) -> (u64, u64) {
        (self.counter(node, "cpnp.rx"), self.counter(node, "cpnp.tx"))
    }

    fn registered(&self, node: &str, prefix: &str) -> bool {
        self.ctl(node, "show lisp site")
            .ok()
            .and_then(|v| v["sites"].as_array().cloned())
            .into_iter()
            .flatten()
            .flat_map(|s| s["prefixes"].as_array().cloned().unwrap_or_default())
            .any(|p| p["eid_prefix"] == prefix && p["registered"] == true)
    }

    /// A `lig` on h1 through its Map-Resolver (r1): the reply and the paths r1 used.
    fn lig(&self, eid: &str) -> (Value, BTreeMap<String, u64>) {
        let before = self.served("r1");
        let v = self.json("h1", &format!("lig {eid}"));
        (v, self.paths_since("r1", &before))
    }

    /// Waits until h1 resolves `eid` (any path).
    fn wait_resolved(&self, eid: &str) -> Value {
        lab::wait_until(&format!("h1 resolves {eid}"), LONG, || {
            let v = self.ctl("h1", &format!("lig {eid}"))?;
            if v["resolved"] == true {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .unwrap()
    }

    /// Restarts `node`'s lisp-agent (SIGTERM, the same command again).
    fn restart_agent(&self, node: &str) {
        let rec = self
            .lab
            .state()
            .processes
            .into_iter()
            .find(|p| p.node == node && p.name == "agent")
            .expect("the agent's process record");
        self.lab.stop(node, "agent").unwrap();
        // The new process writes a new log at the same path: keep the old one.
        let _ = std::fs::copy(&rec.log, rec.log.with_extension("log.1"));
        self.lab.spawn(node, "agent", &rec.argv).unwrap();
        lab::wait_until(&format!("{node}'s agent answering"), LONG, || {
            self.ctl(node, "show lisp statistics")
        })
        .unwrap();
    }

    /// Restarts `node`'s agent and waits until it holds the same agreements
    /// as before and still sees the peer `contact` (serving `space`) over BGP
    /// as "agreed". Returns how long after the stop the agreements were back.
    fn restart_keeping_agreements(&self, node: &str, contact: &str, space: &str) -> Duration {
        let keys = self.agreement_keys(node);
        let t = Instant::now();
        self.restart_agent(node);
        lab::wait_until(
            &format!("{node}'s agreements after its restart"),
            LONG,
            || {
                let k = self.agreement_keys(node);
                if k == keys {
                    Ok(())
                } else {
                    Err(format!("{k:?}"))
                }
            },
        )
        .unwrap();
        let reloaded = t.elapsed();
        lab::wait_until(
            &format!("{node} to learn {contact} again and keep the agreement"),
            LONG,
            || {
                let s = self.peer_state(node, contact);
                if self.bgp_system(node, contact, space).is_some() && s == "agreed" {
                    Ok(())
                } else {
                    Err(s)
                }
            },
        )
        .unwrap();
        reloaded
    }

    /// Starts another ETR of AS65002 on h2, registering `prefix` with r2.
    fn spawn_etr(&self, name: &str, rloc: &str, prefix: &str) {
        let dir = self.state.path().join("h2");
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                r#"[agent]
name = "as65002-{name}"
listen = ["{rloc}"]
api_socket = "{}"
state_dir = "{}"
[xtr]
itr = false
etr = true
register_interval_secs = 2
[[xtr.map_server]]
address = "{R2}"
key_id = 1
key = "as65002-site-key"
[[xtr.database_mapping]]
eid_prefix = "{prefix}"
locators = [{{ address = "{rloc}", priority = 1, weight = 100 }}]
"#,
                dir.join(format!("{name}.sock")).display(),
                dir.join(name).display()
            ),
        )
        .unwrap();
        self.lab
            .spawn(
                "h2",
                name,
                &[
                    env!("CARGO_BIN_EXE_lisp-agent"),
                    "-f",
                    cfg.to_str().unwrap(),
                ],
            )
            .unwrap();
    }

    fn agent_log(&self, node: &str) -> String {
        std::fs::read_to_string(self.lab.log_dir().join(node).join("agent.log")).unwrap_or_default()
    }

    fn down(self) {
        let name = self.name();
        let Run { lab, state, .. } = self;
        lab.down().expect("lab down");
        drop(state);
        let left = lab::leftovers(&name);
        assert!(left.is_empty(), "lab {name} left: {left:?}");
    }
}

fn locators(mapping: &Value) -> Vec<String> {
    mapping["locators"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["address"].as_str().map(str::to_string))
        .collect()
}

/// Step 1a: from cold start, each agent learns the other system from BGP.
fn wait_discovery(r: &Run) {
    let name = r.name();
    let (mut d1, mut d2) = (None, None);
    lab::wait_until("both systems to discover each other over BGP", LONG, || {
        if d1.is_none() && r.bgp_system("r1", R2, AS2_SPACE).is_some() {
            d1 = Some(r.t0.elapsed());
        }
        if d2.is_none() && r.bgp_system("r2", R1, AS1_SPACE).is_some() {
            d2 = Some(r.t0.elapsed());
        }
        if d1.is_some() && d2.is_some() {
            Ok(())
        } else {
            Err(format!(
                "r1 knows AS65002: {}, r2 knows AS65001: {}",
                d1.is_some(),
                d2.is_some()
            ))
        }
    })
    .unwrap();
    let s = r.bgp_system("r1", R2, AS2_SPACE).unwrap();
    assert_eq!(s["kind"], "mapping-system", "{s}");
    assert_eq!(s["origin_as"], 65002, "{s}");
    assert_eq!(s["as_path"], serde_json::json!([65002]), "{s}");
    assert_eq!(s["ms_id"], 2, "{s}");
    assert_eq!(s["reachable"], true, "{s}");
    let s = r.bgp_system("r2", R1, AS1_SPACE).unwrap();
    assert_eq!(s["origin_as"], 65001, "{s}");
    assert_eq!(s["ms_id"], 1, "{s}");
    // What it came from: r1's bgpd holds AS65002's EID space, tagged, from AS65002.
    let v = r
        .lab
        .vtysh_json("r1", &format!("show bgp ipv4 unicast {AS2_SPACE} json"))
        .unwrap();
    let path = &v["paths"][0];
    assert_eq!(path["extendedCommunity"]["string"], "UNK:1, 176", "{v}");
    assert_eq!(path["aspath"]["string"], "65002", "{v}");
    assert_eq!(path["bestpath"]["overall"], true, "{v}");
    println!(
        "[{name}] cold start → discovered over BGP: r1 knows AS65002's system after {}, r2 knows AS65001's after {}",
        secs(d1.unwrap()),
        secs(d2.unwrap())
    );
}

/// Step 1b: both CPNP agreements (each system is client of the other), the
/// same identifiers on both sides.
fn wait_agreements(r: &Run) {
    let find = |node: &str, role: &str, peer: &str| {
        r.agreements(node)
            .into_iter()
            .find(|a| a["role"] == role && a["peer"] == peer)
    };
    let same = |a: &Value, b: &Value| {
        a["customer_agreement_id"] == b["customer_agreement_id"]
            && a["provider_agreement_id"] == b["provider_agreement_id"]
    };
    let (c1, c2) = lab::wait_until("CPNP agreements on both sides", LONG, || {
        let c1 = find("r1", "client", R2);
        let s2 = find("r2", "server", R1);
        let c2 = find("r2", "client", R1);
        let s1 = find("r1", "server", R2);
        match (c1, s2, c2, s1) {
            (Some(c1), Some(s2), Some(c2), Some(s1)) if same(&c1, &s2) && same(&c2, &s1) => {
                Ok((c1, c2))
            }
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap();
    println!(
        "[{}] cold start → CPNP agreements on both sides: {} (AS65001 client {}/{}, AS65002 client {}/{})",
        r.name(),
        r.since_start(),
        c1["customer_agreement_id"].as_str().unwrap_or(""),
        c1["provider_agreement_id"].as_str().unwrap_or(""),
        c2["customer_agreement_id"].as_str().unwrap_or(""),
        c2["provider_agreement_id"].as_str().unwrap_or(""),
    );
    for (a, space) in [(&c1, AS2_SPACE), (&c2, AS1_SPACE)] {
        assert_eq!(a["eid_prefixes"], serde_json::json!([space]), "{a}");
        assert_eq!(a["bulk"], true, "{a}");
        assert_eq!(a["subscribe"], true, "{a}");
        assert_eq!(a["direct_requests"], true, "{a}");
    }
    assert_eq!(r.peer_state("r1", R2), "agreed");
    assert_eq!(r.peer_state("r2", R1), "agreed");
}

#[test]
fn two_mapping_systems_interconnect_over_real_frr() {
    if !can_run("two_mapping_systems_interconnect_over_real_frr") {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Run::up("msx2as_ok", false);
    let name = r.name();
    // Nothing in AS65001 names AS65002's mapping system, its AS or its EIDs.
    for (node, process) in [("r1", "agent"), ("r1", "plugin"), ("h1", "agent")] {
        let text = inline_config(&r.topo, node, process);
        let named: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
            .filter(|t| *t == R2 || *t == "65002" || t.starts_with("203.0.113."))
            .collect();
        assert!(named.is_empty(), "{node}/{process} configures {named:?}");
    }
    r.wait_frr();

    // 1. Discovery over BGP and CPNP agreements, from cold start.
    wait_discovery(&r);
    wait_agreements(&r);
    let agreed = r.t0.elapsed();

    // 2. The bulk copy of AS65002's registrations at AS65001's MR (and back).
    let rlocs = lab::wait_until("h2's registration in AS65001's copy", LONG, || {
        r.in_copy("r1", ETR_PREFIX, R2)
    })
    .unwrap();
    let copied = r.t0.elapsed();
    assert_eq!(rlocs, vec![ETR_RLOC]);
    lab::wait_until("h1's registration in AS65002's copy", LONG, || {
        r.in_copy("r2", XTR_PREFIX, R1)
    })
    .unwrap();
    let log = r.agent_log("r1");
    assert!(
        log.lines()
            .any(|l| l.contains("Map-Bulk: copied the peer's table") && l.contains(R2)),
        "r1's log shows no Map-Bulk copy from {R2}"
    );
    // h1 resolves an EID of AS65002 through r1, which answers from the copy.
    let (lig, paths) = r.lig(ETR_EID);
    let answered = r.t0.elapsed();
    assert_eq!(lig["resolved"], true, "{lig}");
    assert_eq!(lig["map_resolver"], R1, "{lig}");
    assert_eq!(lig["mapping"]["eid_prefix"], ETR_PREFIX, "{lig}");
    assert_eq!(locators(&lig["mapping"]), vec![ETR_RLOC], "{lig}");
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        vec!["msx-copy"],
        "r1's Map-Resolver paths used: {paths:?}"
    );
    let route = r.json("r1", "show lisp map-resolver")["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["eid_prefix"] == AS2_SPACE)
        .cloned()
        .expect("r1's MR route for AS65002's space");
    assert_eq!(route["source"], "msx-agreement", "{route}");
    assert_eq!(route["map_servers"], serde_json::json!([R2]), "{route}");
    println!(
        "[{name}] cold start → agreement {} → {ETR_PREFIX} in AS65001's copy {} → lig {ETR_EID} on h1 answered {} (path msx-copy, rtt {} us)",
        secs(agreed),
        secs(copied),
        secs(answered),
        lig["rtt_us"]
    );

    // 3. A new registration in AS65002 reaches AS65001's copy through the subscription.
    // Checked softly so that step 4 still runs; the test fails at the end if it did not.
    let mut failures: Vec<String> = Vec::new();
    match lab::wait_until(
        "r1's subscription to AS65002's system to be active",
        VIA_SUBSCRIPTION,
        || {
            let subs = r.list("r1", "show lisp msx subscriptions", "subscriptions");
            subs.iter()
                .find(|s| s["role"] == "subscriber" && s["peer"] == R2 && s["state"] == "active")
                .cloned()
                .ok_or(format!("{subs:?}"))
        },
    ) {
        Ok(s) => println!(
            "[{name}] AS65001 subscribed to AS65002: {} ({})",
            r.since_start(),
            s
        ),
        Err(e) => failures.push(format!("step 3: {e}")),
    }
    let started = Instant::now();
    r.spawn_etr("etr-b", NEW_RLOC, NEW_PREFIX);
    lab::wait_for("the new registration at AS65002's Map-Server", LONG, || {
        r.registered("r2", NEW_PREFIX)
    })
    .unwrap();
    let registered = started.elapsed();
    let since = Instant::now();
    match lab::wait_until(
        "the new registration in AS65001's copy",
        VIA_SUBSCRIPTION,
        || r.in_copy("r1", NEW_PREFIX, R2),
    ) {
        Ok(rlocs) => {
            let took = since.elapsed();
            assert_eq!(rlocs, vec![NEW_RLOC]);
            let subs = r.list("r1", "show lisp msx subscriptions", "subscriptions");
            let (lig, paths) = r.lig(NEW_EID);
            assert_eq!(lig["mapping"]["eid_prefix"], NEW_PREFIX, "{lig}");
            assert_eq!(
                paths.keys().collect::<Vec<_>>(),
                vec!["msx-copy"],
                "{paths:?}"
            );
            println!(
                "[{name}] new registration {NEW_PREFIX}: second ETR start → registered at r2 {}; registered → in AS65001's copy {:.0} ms (subscription); lig {NEW_EID} answered from the copy. r1's subscriptions: {}",
                secs(registered),
                took.as_secs_f64() * 1000.0,
                Value::from(subs)
            );
        }
        Err(e) => {
            println!("[{name}] step 3 FAILED: {e}");
            failures.push(format!("step 3: {e}"));
        }
    }

    // 4a. Restart AS65002's Map-Server (lisp-agent on r2): agreements kept.
    let keys1 = r.agreement_keys("r1");
    let keys2 = r.agreement_keys("r2");
    assert_eq!(keys1.len(), 2);
    assert_eq!(keys2.len(), 2);
    assert!(
        r.state.path().join("r2/state/agreements.json").exists(),
        "r2's agreements file"
    );
    let cpnp1 = r.cpnp("r1");
    let t = Instant::now();
    let reloaded = r.restart_keeping_agreements("r2", R1, AS1_SPACE);
    assert_eq!(r.agreement_keys("r2"), keys2);
    let v1 = r.wait_resolved(ETR_EID);
    let v2 = r.wait_resolved(NEW_EID);
    assert_eq!(locators(&v1["mapping"]), vec![ETR_RLOC]);
    assert_eq!(locators(&v2["mapping"]), vec![NEW_RLOC]);
    let resolved_again = t.elapsed();
    assert_eq!(
        r.cpnp("r2"),
        (0, 0),
        "r2 negotiated again after its restart"
    );
    assert_eq!(r.cpnp("r1"), cpnp1, "CPNP messages while r2 restarted");
    assert!(!r.agent_log("r2").contains("agreement established"));
    assert_eq!(r.agreement_keys("r1"), keys1);
    let copy_back = lab::wait_until("AS65001's copy to hold h2's mapping again", LONG, || {
        r.in_copy("r1", ETR_PREFIX, R2)
    })
    .map(|_| t.elapsed());
    println!(
        "[{name}] r2's lisp-agent restarted: same agreements {} after the stop, no CPNP message; h1 resolves both AS65002 EIDs {} after; AS65001's copy holds {ETR_PREFIX}: {:?}",
        secs(reloaded),
        secs(resolved_again),
        copy_back.as_ref().map(|d| secs(*d))
    );
    copy_back.unwrap();
    // ... and the subscription still carries changes: a third registration in AS65002.
    let started = Instant::now();
    r.spawn_etr("etr-c", THIRD_RLOC, THIRD_PREFIX);
    lab::wait_for(
        "the third registration at AS65002's Map-Server",
        LONG,
        || r.registered("r2", THIRD_PREFIX),
    )
    .unwrap();
    let registered = started.elapsed();
    let since = Instant::now();
    match lab::wait_until(
        "a registration made after r2's restart in AS65001's copy",
        VIA_SUBSCRIPTION,
        || r.in_copy("r1", THIRD_PREFIX, R2),
    ) {
        Ok(_) => println!(
            "[{name}] after r2's restart, new registration {THIRD_PREFIX}: registered {} after its ETR started; in AS65001's copy {:.0} ms later (subscription)",
            secs(registered),
            since.elapsed().as_secs_f64() * 1000.0
        ),
        Err(e) => {
            let subs = |n| r.list(n, "show lisp msx subscriptions", "subscriptions");
            let e = format!(
                "{e}; r1's subscriptions: {}; r2's (restarted) subscriptions: {}",
                Value::from(subs("r1")),
                Value::from(subs("r2"))
            );
            println!("[{name}] step 4 (subscription after r2's restart) FAILED: {e}");
            failures.push(format!("step 4, subscription after r2's restart: {e}"));
        }
    }

    // 4b. Restart AS65001's Map-Server/Map-Resolver (r1): agreements kept, copy rebuilt.
    let keys1 = r.agreement_keys("r1");
    let cpnp2 = r.cpnp("r2");
    let t = Instant::now();
    let reloaded = r.restart_keeping_agreements("r1", R2, AS2_SPACE);
    assert_eq!(r.agreement_keys("r1"), keys1);
    lab::wait_until("AS65001's copy rebuilt after r1's restart", LONG, || {
        r.in_copy("r1", ETR_PREFIX, R2)
    })
    .unwrap();
    let rebuilt = t.elapsed();
    let (lig, paths) = r.lig(ETR_EID);
    assert_eq!(lig["resolved"], true, "{lig}");
    assert_eq!(locators(&lig["mapping"]), vec![ETR_RLOC], "{lig}");
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        vec!["msx-copy"],
        "{paths:?}"
    );
    assert_eq!(
        r.cpnp("r1"),
        (0, 0),
        "r1 negotiated again after its restart"
    );
    assert_eq!(r.cpnp("r2"), cpnp2, "CPNP messages while r1 restarted");
    assert!(!r.agent_log("r1").contains("agreement established"));
    assert_eq!(r.agreement_keys("r2"), keys2);
    println!(
        "[{name}] r1's lisp-agent restarted: same agreements {} after the stop, no CPNP message; copy rebuilt {} after; lig {ETR_EID} from the copy",
        secs(reloaded),
        secs(rebuilt)
    );

    assert!(
        failures.is_empty(),
        "failed (every other check passed): {failures:#?}"
    );
    r.down();
}

#[test]
fn deny_policy_prevents_the_agreement_and_resolution_falls_back() {
    if !can_run("deny_policy_prevents_the_agreement_and_resolution_falls_back") {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The same topology with `[msx.policy] deny_as = [65002]` on r1 (fresh state).
    let r = Run::up("msx2as_deny", true);
    let name = r.name();
    r.wait_frr();
    wait_discovery(&r);
    let denied = lab::wait_until("r1 to refuse AS65002 by policy", LONG, || {
        let s = r.peer_state("r1", R2);
        if s.starts_with("denied-by-policy") {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .unwrap();
    println!(
        "[{name}] cold start → r1 refuses AS65002: {} ({denied})",
        r.since_start()
    );
    // r2 asks too (it discovered r1) and is refused by r1 (CPNP FAIL).
    let refused = lab::wait_until("r2's order to be refused", LONG, || {
        let s = r.peer_state("r2", R1);
        if s.starts_with("declined") || s.starts_with("denied") {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .unwrap();
    println!("[{name}] r2's view of AS65001: {refused}");
    assert!(r.agent_log("r1").contains("AS65002 is denied"));
    assert!(r.agreements("r1").is_empty(), "{:?}", r.agreements("r1"));
    assert!(r.agreements("r2").is_empty(), "{:?}", r.agreements("r2"));
    // No agreement: no route to AS65002's Map-Server, no copy.
    let mr = r.json("r1", "show lisp map-resolver");
    let routes = mr["routes"].as_array().cloned().unwrap_or_default();
    assert!(
        routes.iter().all(|x| x["eid_prefix"] != AS2_SPACE),
        "r1's MR must not use AS65002 without an agreement: {routes:?}"
    );
    assert!(r.copied("r1").unwrap_or_default().is_empty(), "{mr}");
    // The fallback as configured: a negative Map-Reply from r1's Map-Resolver.
    let (lig, paths) = r.lig(ETR_EID);
    assert_eq!(lig["resolved"], false, "{lig}");
    assert_eq!(lig["map_resolver"], R1, "{lig}");
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        vec!["negative"],
        "r1's Map-Resolver paths used: {paths:?}"
    );
    println!(
        "[{name}] lig {ETR_EID} on h1 without an agreement: negative Map-Reply from r1 ({} action {:?}, rtt {} us)",
        lig["mapping"]["eid_prefix"], lig["mapping"]["action"], lig["rtt_us"]
    );
    // Still no agreement after all that.
    assert!(r.agreements("r1").is_empty() && r.agreements("r2").is_empty());
    r.down();
}
