//! Issue 7 acceptance: the xTR data plane between two LISP sites over a real
//! FRR core (three ospfd routers), `lab/topologies/dataplane.toml`.
//!
//! 1. H1 pings H2 (IPv4 EIDs over IPv4 RLOCs): the first echo is lost on a
//!    map-cache miss at xa (counted), the reply of the second on one at xb;
//!    after that every ping is answered. tshark on the r1–r2 core link decodes
//!    UDP 4341 packets with the LISP header (N bit, nonce) and the inner ICMP.
//! 2. The same for IPv6 EIDs over the IPv4 RLOCs.
//! 3. Mapping-system assist on (xa and xb restarted with `assist`, so their
//!    caches are empty: every EID is never-seen again): the first ping is
//!    answered; the misses are counted, the packets went through the
//!    Map-Server (`assisted`, `assist-forwarded`).
//!    Pre-provisioning (restarted again, no assist): each xTR copies the
//!    other site's mappings with Map-Bulk; the first pings find them (0 misses).
//! 4. RLOC failover: xb's priority-1 RLOC loses its link while H1 pings at
//!    50 Hz; xa's RLOC probes stop being answered, the locator goes down and
//!    traffic moves to the priority-2 RLOC. The outage is printed.
//!
//! Needs root, FRR and tshark (`scripts/setup.sh`) and the debug binaries
//! (`cargo test --workspace` builds them); otherwise it prints SKIPPED and
//! passes. Figures: `cargo test -p lisp-agent --test dataplane_lab -- --nocapture`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::frr_lab::{inline_config, lispctl, spawn_agent};
use lab::{Lab, Topology, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);
const H2_V4: &str = "203.0.113.10";
const H2_V6: &str = "2001:db8:b::10";
const MS: &str = "198.51.100.42";

fn can_run(test: &str) -> bool {
    if !common::frr_lab::can_run(test, &["zebra", "staticd", "ospfd"]) {
        return false;
    }
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIPPED {test}: tshark is not installed (scripts/setup.sh)");
        return false;
    }
    true
}

struct Run {
    lab: Lab,
    topo: Topology,
    state: tempfile::TempDir,
}

impl Run {
    fn sock(&self, node: &str) -> PathBuf {
        self.state.path().join(node).join("agent.sock")
    }

    fn ctl(&self, node: &str, cmd: &str) -> Result<Value, String> {
        lispctl(&self.sock(node), cmd)
    }

    fn json(&self, node: &str, cmd: &str) -> Value {
        self.ctl(node, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    fn dp(&self, node: &str) -> Value {
        self.json(node, "show lisp data-plane statistics")
    }

    /// The Map-Server holds a registration of exactly `prefix`.
    fn registered(&self, prefix: &str) -> Result<(), String> {
        let v = self.ctl("ms", "show lisp site")?;
        let found = common::site_prefix(&v, prefix)
            .is_some_and(|p| p["registrations"].as_array().is_some_and(|r| !r.is_empty()));
        if found {
            Ok(())
        } else {
            Err(format!("{prefix} not registered"))
        }
    }

    /// Everything the data plane needs: OSPF converged, the xTRs' TUN routes
    /// installed by staticd, the RLOCs reachable, both sites registered.
    fn wait_ready(&self) {
        for r in ["r1", "r2", "r3"] {
            self.lab.wait_ospf_full(r, 2usize, LONG).expect("OSPF Full");
        }
        for (node, remote) in [("xa", "203.0.113.0/26"), ("xb", "192.0.2.0/26")] {
            self.lab
                .wait_route(node, remote, LONG)
                .expect("EID route into lisp0");
        }
        for rloc in ["198.51.100.26", "198.51.100.34", MS] {
            wait_until(&format!("xa reaches {rloc}"), LONG, || {
                match self.lab.ping("xa", rloc, 1, Duration::from_millis(10)) {
                    Ok(p) if p.received == 1 => Ok(()),
                    Ok(_) => Err("no reply".to_string()),
                    Err(e) => Err(format!("{e:#}")),
                }
            })
            .unwrap();
        }
        for p in [
            "192.0.2.0/26",
            "203.0.113.0/26",
            "2001:db8:a::/48",
            "2001:db8:b::/48",
        ] {
            wait_until(&format!("{p} registered"), LONG, || self.registered(p)).unwrap();
        }
    }

    /// Restarts `node`'s agent with `extra` appended to its `[data_plane]`.
    fn restart_agent_with(&self, node: &str, extra: &str) {
        let text = inline_config(&self.topo, node, "agent");
        let last_section = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['));
        assert_eq!(
            last_section,
            Some("[data_plane]"),
            "{node}: the appended keys must land in [data_plane]"
        );
        self.lab.stop(node, "agent").expect("stop agent");
        spawn_agent(
            &self.lab,
            node,
            "agent",
            self.state.path(),
            &format!("{text}{extra}\n"),
        );
        wait_until(&format!("{node}'s agent answers"), LONG, || {
            self.ctl(node, "show lisp data-plane statistics")
                .map(|_| ())
        })
        .unwrap();
    }
}

fn counter(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[k]).as_u64().unwrap_or(0)
}

/// Pings and prints; returns the statistics.
fn ping(run: &Run, dst: &str, count: u32, interval_ms: u64) -> lab::PingStats {
    let p = run
        .lab
        .ping("h1", dst, count, Duration::from_millis(interval_ms))
        .unwrap();
    println!(
        "  h1 -> {dst}: {} sent, {} received, lost seq {:?}",
        p.sent, p.received, p.lost
    );
    p
}

/// Captures `count` UDP 4341 packets on r1's core link while `traffic` runs,
/// and returns tshark's decoding of them (one line per packet).
fn capture_core(run: &Run, count: u32, traffic: impl FnOnce()) -> Vec<String> {
    let pcap = run.state.path().join("core.pcap");
    let argv = [
        "tshark".to_string(),
        "-i".into(),
        "eth-r2".into(),
        "-f".into(),
        "udp port 4341".into(),
        "-c".into(),
        count.to_string(),
        "-a".into(),
        "duration:30".into(),
        "-w".into(),
        pcap.display().to_string(),
    ];
    run.lab.spawn("r1", "tshark", &argv).unwrap();
    let log = run.lab.log_dir().join("r1").join("tshark.log");
    wait_until("tshark capturing", LONG, || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("Capturing on") {
            Ok(())
        } else {
            Err(t)
        }
    })
    .unwrap();
    traffic();
    wait_until("tshark done", LONG, || {
        if run.lab.alive("r1", "tshark") {
            Err("capturing")
        } else {
            Ok(())
        }
    })
    .unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-E", "separator=|"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "udp.dstport"])
        .args(["-e", "lisp-data.flags.nonce", "-e", "lisp-data.nonce"])
        .args(["-e", "icmp.type"])
        .output()
        .expect("tshark -r");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn two_sites_over_an_frr_core() {
    if !can_run("two_sites_over_an_frr_core") {
        return;
    }
    lab::ensure_root().unwrap();
    let state = tempfile::Builder::new().prefix("dp-").tempdir().unwrap();
    let topo = common::frr_lab::topology(
        "dataplane.toml",
        "/run/lisp-msx-dp/",
        "lmsx-dp-",
        "dpt",
        state.path(),
        |t| t,
    );
    let t0 = Instant::now();
    let lab = Lab::up(topo.clone()).expect("lab up");
    let run = Run { lab, topo, state };
    run.wait_ready();
    println!(
        "lab ready (OSPF Full, routes, registrations): {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 1. IPv4: a miss at each xTR, then every ping answered.
    println!("IPv4 EIDs, no first-packet remedy:");
    let p = ping(&run, H2_V4, 5, 200);
    assert!(
        p.lost.contains(&1),
        "the first echo is lost on xa's miss: {p:?}"
    );
    assert_eq!(
        &p.lost[..],
        &[1, 2][..p.lost.len()],
        "only the first two are lost: {p:?}"
    );
    let xa = run.dp("xa");
    assert!(
        counter(&xa, &["misses"]) >= 1 && counter(&xa, &["drops", "miss"]) >= 1,
        "{xa}"
    );
    let xb = run.dp("xb");
    assert!(
        counter(&xb, &["drops", "miss"]) >= 1,
        "xb missed H1's mapping: {xb}"
    );
    let decoded = capture_core(&run, 4, || {
        let p = ping(&run, H2_V4, 4, 100);
        assert!(p.lost.is_empty(), "resolved: every ping answered: {p:?}");
    });
    println!("  tshark on r1 eth-r2 (src|dst|port|N|nonce|icmp type):");
    for l in &decoded {
        println!("    {l}");
    }
    let request = decoded
        .iter()
        .find(|l| l.starts_with("198.51.100.18,192.0.2.10|198.51.100.26,203.0.113.10|4341|1|"))
        .unwrap_or_else(|| panic!("no encapsulated echo request xa -> xb: {decoded:?}"));
    assert!(
        request.ends_with("|8"),
        "inner ICMP echo request: {request}"
    );
    let xa = run.json("xa", &format!("show lisp map-cache {H2_V4}"));
    let entry = &xa["entries"][0];
    assert_eq!(entry["mapping"]["eid_prefix"], "203.0.113.0/26", "{xa}");
    assert!(
        entry["packets"].as_u64().unwrap() >= 4,
        "per-entry packet counter: {entry}"
    );
    assert!(!entry["never_used"].as_bool().unwrap(), "{entry}");

    // MTU: the TUN device takes the encapsulation overhead off the underlay
    // MTU, so a packet too big to encapsulate is refused with ICMP, not lost.
    let ping_df = |size: &str| {
        let o = run
            .lab
            .exec(
                "h1",
                &[
                    "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", size, H2_V4,
                ],
            )
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let fits = ping_df("1436");
    assert!(fits.contains("1 received"), "1464-byte packet fits: {fits}");
    let too_big = ping_df("1437");
    assert!(
        too_big.contains("mtu = 1464"),
        "ICMP fragmentation needed: {too_big}"
    );
    println!("  MTU: 1464-byte DF packet delivered; 1465 answered with 'Frag needed (mtu = 1464)'");

    // 2. IPv6 EIDs over IPv4 RLOCs.
    println!("IPv6 EIDs over IPv4 RLOCs:");
    let p = ping(&run, H2_V6, 5, 200);
    assert!(p.lost.contains(&1) && p.received >= 3, "{p:?}");
    let p = ping(&run, H2_V6, 3, 100);
    assert!(p.lost.is_empty(), "{p:?}");

    // 3. Mapping-system assist: restarted xTRs have empty caches.
    println!("mapping-system assist (xa, xb restarted with assist = [ms]):");
    let ms_before = counter(&run.dp("ms"), &["drops", "not-our-eid"]);
    for node in ["xa", "xb"] {
        run.restart_agent_with(node, &format!("assist = [\"{MS}\"]"));
    }
    run.lab.wait_route("xa", "203.0.113.0/26", LONG).unwrap();
    run.lab.wait_route("xb", "192.0.2.0/26", LONG).unwrap();
    let p = ping(&run, H2_V4, 3, 200);
    assert!(
        p.lost.is_empty(),
        "with assist the first ping is answered: {p:?}"
    );
    let p6 = ping(&run, H2_V6, 3, 200);
    assert!(p6.lost.is_empty(), "IPv6 too: {p6:?}");
    let xa = run.dp("xa");
    assert!(counter(&xa, &["misses"]) >= 2, "the misses happened: {xa}");
    assert!(counter(&xa, &["encapsulated"]) >= 4, "{xa}");
    let ms = run.dp("ms");
    println!(
        "  xa: misses {}, handed to the Map-Server {}; Map-Server forwarded {}",
        counter(&xa, &["misses"]),
        counter(&xa, &["counters", "assisted"]),
        counter(&ms, &["counters", "assist-forwarded"])
    );
    assert!(counter(&xa, &["counters", "assisted"]) >= 2, "{xa}");
    assert!(
        counter(&ms, &["counters", "assist-forwarded"]) >= 2,
        "the Map-Server forwarded: {ms}"
    );
    assert_eq!(counter(&ms, &["drops", "not-our-eid"]), ms_before, "{ms}");

    // 3b. Pre-provisioning: restarted again (empty caches, no assist), each
    // xTR copies the other site's mappings with Map-Bulk before any packet.
    println!("pre-provisioning (xa, xb restarted with [data_plane.preprovision]):");
    for (node, filters) in [
        ("xa", r#"["203.0.113.0/24", "2001:db8:b::/48"]"#),
        ("xb", r#"["192.0.2.0/24", "2001:db8:a::/48"]"#),
    ] {
        run.restart_agent_with(
            node,
            &format!("preprovision = {{ map_server = \"{MS}\", filters = {filters} }}"),
        );
    }
    for (node, prefix) in [("xa", "203.0.113.0/26"), ("xb", "192.0.2.0/26")] {
        wait_until(
            &format!("{node} pre-provisioned with {prefix}"),
            LONG,
            || {
                let v = run.ctl(node, "show lisp map-cache")?;
                let found = v["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["mapping"]["eid_prefix"] == prefix && e["source"] == "bulk");
                if found { Ok(()) } else { Err(format!("{v}")) }
            },
        )
        .unwrap();
    }
    run.lab.wait_route("xa", "203.0.113.0/26", LONG).unwrap();
    run.lab.wait_route("xb", "192.0.2.0/26", LONG).unwrap();
    let p = ping(&run, H2_V4, 3, 200);
    assert!(
        p.lost.is_empty(),
        "pre-provisioned: the first ping is answered: {p:?}"
    );
    let p6 = ping(&run, H2_V6, 3, 200);
    assert!(p6.lost.is_empty(), "IPv6 too: {p6:?}");
    let xa = run.dp("xa");
    assert_eq!(counter(&xa, &["misses"]), 0, "no miss at all: {xa}");
    println!(
        "  xa: {} packets encapsulated, 0 misses",
        counter(&xa, &["encapsulated"])
    );

    // 4. RLOC failover: xb's priority-1 RLOC (198.51.100.26, link to r2) goes down.
    println!("RLOC failover:");
    wait_until("both of xb's locators up at xa", LONG, || {
        let v = run.ctl("xa", &format!("show lisp map-cache {H2_V4}"))?;
        let states: Vec<String> = v["entries"][0]["mapping"]["locators"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["state"].as_str().unwrap_or("").to_string())
            .collect();
        if states == ["up", "up"] {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .unwrap();
    let interval = Duration::from_millis(20);
    let count = 400u32;
    let enc0 = counter(&run.dp("xa"), &["encapsulated"]);
    let cut = std::thread::scope(|s| {
        let pinger = s.spawn(|| run.lab.ping("h1", H2_V4, count, interval).unwrap());
        // Cut once traffic flows (50 pings through xa), not after a fixed time.
        wait_until("pings flowing", LONG, || {
            let n = counter(&run.dp("xa"), &["encapsulated"]) - enc0;
            if n >= 50 { Ok(()) } else { Err(n) }
        })
        .unwrap();
        run.lab
            .exec_ok("xb", &["ip", "link", "set", "eth-r2", "down"])
            .unwrap();
        let cut_at = Instant::now();
        (pinger.join().unwrap(), cut_at)
    });
    let (p, _) = cut;
    let outage = interval * p.lost.len() as u32;
    println!(
        "  {} pings at 50 Hz: {} lost (seq {:?}..{:?}): outage about {} ms",
        p.sent,
        p.lost.len(),
        p.lost.first(),
        p.lost.last(),
        outage.as_millis()
    );
    assert!(!p.lost.is_empty(), "the cut interrupted traffic");
    let last_lost = *p.lost.last().unwrap();
    assert!(
        last_lost + 50 <= count,
        "traffic moved to the backup RLOC well before the end: {p:?}"
    );
    let v = run.json("xa", &format!("show lisp map-cache {H2_V4}"));
    let locs = &v["entries"][0]["mapping"]["locators"];
    assert_eq!(locs[0]["address"], "198.51.100.26", "{v}");
    assert_eq!(locs[0]["state"], "down", "{v}");
    assert_eq!(locs[1]["state"], "up", "{v}");
    run.lab.down().unwrap();
}
