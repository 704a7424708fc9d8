//! Issue "ospf-msfd" acceptance, on real FRR in the lab (no mock ospfd):
//! r1–r2–r3 in area 0; a Map-Server+Map-Resolver on r3; an xTR on r1 with no
//! configured Map-Resolver or Map-Server; an ETR of another site on r2.
//! Needs root (namespaces); run by scripts/test.sh.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::{Lab, Topology};
use lisp_msx_proto::ospf::msfd::{MsfType, Msfd};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn bin(name: &str) -> PathBuf {
    // Sibling binaries of this test's crate live in the same target directory.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first (scripts/test.sh does)",
        p.display()
    );
    p
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

struct Node<'a> {
    lab: &'a Lab,
    name: &'static str,
    dir: PathBuf,
    agent: std::cell::Cell<Option<u32>>,
}

impl<'a> Node<'a> {
    fn new(lab: &'a Lab, name: &'static str) -> Self {
        let dir = lab.log_dir().join(name).join("msx");
        std::fs::create_dir_all(&dir).unwrap();
        Node {
            lab,
            name,
            dir,
            agent: std::cell::Cell::new(None),
        }
    }

    fn sock(&self) -> String {
        self.dir.join("agent.sock").display().to_string()
    }

    fn write_agent(&self, body: &str, addr: &str) -> PathBuf {
        let p = self.dir.join("agent.toml");
        std::fs::write(
            &p,
            format!(
                "[agent]\nname = \"{}\"\nlisten = [\"{addr}\"]\napi_socket = \"{}\"\n{body}",
                self.name,
                self.sock()
            ),
        )
        .unwrap();
        p
    }

    fn start_agent(&self, body: &str, addr: &str) {
        let cfg = self.write_agent(body, addr);
        let p = self
            .lab
            .spawn(
                self.name,
                "lisp-agent",
                &[
                    bin("lisp-agent").display().to_string(),
                    "-f".into(),
                    cfg.display().to_string(),
                ],
            )
            .unwrap();
        self.agent.set(Some(p.pid.pid));
        let sock = self.sock();
        lab::wait_until(&format!("{} agent API", self.name), LONG, || {
            Path::new(&sock).exists().then_some(())
        })
        .unwrap();
    }

    fn start_msfd(&self) {
        let cfg = self.dir.join("ospf-msfd.toml");
        std::fs::write(
            &cfg,
            format!(
                "agent_socket = \"{}\"\nname = \"ospf-msfd@{}\"\n",
                self.sock(),
                self.name
            ),
        )
        .unwrap();
        self.lab
            .spawn(
                self.name,
                "ospf-msfd",
                &[
                    bin("ospf-msfd").display().to_string(),
                    "-f".into(),
                    cfg.display().to_string(),
                ],
            )
            .unwrap();
    }

    /// Rewrites the agent's configuration and reloads it (SIGHUP to that agent only:
    /// namespaces do not separate process ids, so no pkill).
    fn reload_agent(&self, body: &str, addr: &str) {
        self.write_agent(body, addr);
        let pid = self.agent.get().expect("agent started");
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "SIGHUP to {}'s agent", self.name);
    }

    fn ctl(&self, cmd: &str) -> (bool, String) {
        let mut argv = vec![
            bin("lispctl").display().to_string(),
            "-s".into(),
            self.sock(),
        ];
        argv.extend(cmd.split_whitespace().map(String::from));
        let out = self.lab.exec(self.name, &argv).unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    fn json(&self, cmd: &str) -> Value {
        let (_, t) = self.ctl(&format!("{cmd} json"));
        serde_json::from_str(&t).unwrap_or(Value::Null)
    }
}

fn discovered(n: &Node<'_>) -> Vec<Value> {
    n.json("show lisp discovery")["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// r3's RI LSA (instance 1) in a node's LSDB: (sequence number, age).
fn ri_lsa(lab: &Lab, node: &str) -> Option<(String, u64)> {
    let db = lab
        .vtysh_json(node, "show ip ospf database opaque-area json")
        .ok()?;
    let text = db.to_string();
    if !text.contains("4.0.0.1") {
        return None;
    }
    // Walk to the entry of 4.0.0.1 advertised by r3 (layouts differ between FRR versions).
    fn find(v: &Value) -> Option<(String, u64)> {
        match v {
            Value::Object(m) => {
                let id = m
                    .get("linkStateId")
                    .or_else(|| m.get("lsId"))
                    .and_then(Value::as_str);
                let adv = m.get("advertisingRouter").and_then(Value::as_str);
                if id == Some("4.0.0.1") && adv == Some("192.0.2.3") {
                    let seq = m
                        .get("lsaSeqNumber")
                        .or_else(|| m.get("sequenceNumber"))
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    let age = m
                        .get("lsaAge")
                        .or_else(|| m.get("age"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    return Some((seq, age));
                }
                m.values().find_map(find)
            }
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    find(&db)
}

#[test]
fn msfd_discovery_on_real_ospfd() {
    lab::ensure_root().expect("the lab needs root");
    let topo = Topology::from_file(workspace().join("lab/topologies/ospf3.toml"))
        .unwrap()
        .with_name("msfd")
        .unwrap();
    let lab = Lab::up(topo).expect("lab up");
    lab.wait_ospf_full("r2", 2usize, LONG).unwrap();
    lab.wait_route("r1", "192.0.2.3/32", LONG).unwrap();

    let r1 = Node::new(&lab, "r1");
    let r2 = Node::new(&lab, "r2");
    let r3 = Node::new(&lab, "r3");
    let ms_body = |status: &str, description: &str| {
        format!(
            r#"[agent.advertise]
status = "{status}"
description = "{description}"
[map_server]
[[map_server.site]]
name = "sites"
keys = [{{ id = 1, key = "domain-key" }}]
eid_prefixes = [{{ prefix = "203.0.113.0/24", accept_more_specifics = true }}]
[map_resolver]
"#
        )
    };
    r3.start_agent(&ms_body("enabled", "r3 MS/MR"), "192.0.2.3");
    // Another site's ETR (on r2) registers with r3's Map-Server, configured statically.
    r2.start_agent(
        r#"[xtr]
itr = false
register_interval_secs = 2
[[xtr.map_server]]
address = "192.0.2.3"
key_id = 1
key = "domain-key"
[[xtr.database_mapping]]
eid_prefix = "203.0.113.64/26"
locators = [{ address = "192.0.2.2" }]
"#,
        "192.0.2.2",
    );
    // r1: an xTR with no Map-Resolver or Map-Server configured.
    r1.start_agent(
        r#"[xtr]
register_interval_secs = 2
request_timeout_ms = 300
discovered_ms_key = { id = 1, key = "domain-key" }
[[xtr.database_mapping]]
eid_prefix = "203.0.113.0/26"
locators = [{ address = "192.0.2.1" }]
"#,
        "192.0.2.1",
    );
    r1.start_msfd();
    let (ok, _) = r1.ctl("lig 203.0.113.70");
    assert!(!ok, "nothing discovered yet: r1 has no Map-Resolver");

    // ospf-msfd on r3 starts: time until r1 resolves through what it discovered.
    let t0 = Instant::now();
    r3.start_msfd();
    lab::wait_until(
        "r1 resolves through the discovered Map-Resolver",
        LONG,
        || {
            let v = r1.json("lig 203.0.113.70");
            (v["resolved"] == true).then_some(())
        },
    )
    .unwrap();
    println!(
        "ospf-msfd start on r3 → first resolution on r1: {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let lig = r1.json("lig 203.0.113.70");
    assert_eq!(lig["mapping"]["eid_prefix"], "203.0.113.64/26");
    assert_eq!(lig["map_resolver"], "192.0.2.3");
    // r1 registered its own prefix with the discovered Map-Server.
    lab::wait_until("r1 registered with the discovered MS", LONG, || {
        r3.json("show lisp site")
            .to_string()
            .contains("203.0.113.0/26")
            .then_some(())
    })
    .unwrap();
    let d = discovered(&r1);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["source"], "ospf");
    assert_eq!(d[0]["system"]["advertiser"], "192.0.2.3");
    assert_eq!(d[0]["system"]["kind"], "ms+mr");
    assert_eq!(d[0]["in_use"], true);

    // r2's LSDB holds r3's RI LSA with instance 1.
    let on_r2 = lab
        .vtysh(r2.name, "show ip ospf database opaque-area")
        .unwrap();
    assert!(
        on_r2.contains("Link State ID: 4.0.0.1") && on_r2.contains("Advertising Router: 192.0.2.3"),
        "{on_r2}"
    );
    assert!(ri_lsa(&lab, "r2").is_some(), "json view lists it too");

    // tshark on the r2–r3 link decodes the LS Update carrying it.
    let pcap = lab.log_dir().join("r2-ospf.pcap");
    let cap = lab
        .spawn(
            "r2",
            "tshark",
            &[
                "tshark",
                "-q",
                "-i",
                "eth-r3",
                "-f",
                "ip proto 89",
                "-w",
                &pcap.display().to_string(),
            ],
        )
        .unwrap();
    lab::wait_until("tshark capturing", LONG, || {
        std::fs::read_to_string(&cap.log)
            .ok()
            .filter(|l| l.contains("Capturing on"))
            .map(|_| ())
    })
    .unwrap();
    r3.reload_agent(&ms_body("enabled", "r3 MS/MR rev2"), "192.0.2.3");
    let seen = std::cell::RefCell::new(String::new());
    let found = lab::wait_until("LS Update with the new description captured", LONG, || {
        let out = std::process::Command::new("tshark")
            .args([
                "-n",
                "-r",
                &pcap.display().to_string(),
                "-Y",
                "ospf.tlv_type.opaque == 32768",
                "-T",
                "fields",
                "-e",
                "ospf.tlv_type.opaque",
                "-e",
                "ospf.tlv_length",
                "-e",
                "ospf.tlv.unknown",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        *seen.borrow_mut() = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        // Every LS Update carrying the TLV; the one after the reload has the new description.
        text.lines().find_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            // `-T fields` prints bytes as bare hex (no colons).
            let hex: String = f.get(2)?.chars().filter(char::is_ascii_hexdigit).collect();
            let raw: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect();
            let m = Msfd::decode_value(&raw).ok()?;
            (m.description.as_deref() == Some("r3 MS/MR rev2")).then(|| {
                assert_eq!(f[0], "32768");
                assert_eq!(
                    f[1].parse::<usize>().unwrap(),
                    raw.len(),
                    "TLV length covers the value"
                );
                assert_eq!(m.function, MsfType::Both);
                assert_eq!(
                    m.locators,
                    vec!["192.0.2.3".parse::<std::net::IpAddr>().unwrap()]
                );
            })
        })
    });
    if found.is_err() {
        let all = std::process::Command::new("tshark")
            .args(["-n", "-r", &pcap.display().to_string()])
            .output()
            .unwrap();
        panic!(
            "no LS Update with the new description: {found:?}\nfiltered view:\n{}\nall packets:\n{}\nr3 ospf-msfd log:\n{}",
            seen.borrow(),
            String::from_utf8_lossy(&all.stdout),
            std::fs::read_to_string(lab.log_dir().join("r3").join("ospf-msfd.log"))
                .unwrap_or_default()
        );
    }
    drop(cap);
    lab.stop("r2", "tshark").ok();

    // Disabled on r3: r1 stops using it within 2 s of the LSA arriving.
    let before = ri_lsa(&lab, "r1").expect("r3's LSA on r1").0;
    r3.reload_agent(&ms_body("disabled", "r3 MS/MR rev2"), "192.0.2.3");
    lab::wait_until("the new LSA on r1", LONG, || {
        ri_lsa(&lab, "r1").filter(|(s, _)| *s != before).map(|_| ())
    })
    .unwrap();
    let arrived = Instant::now();
    lab::wait_until("r1 stopped using r3", Duration::from_secs(10), || {
        let mr = r1.json("show lisp map-resolver");
        let d = discovered(&r1);
        (mr["map_resolvers_in_use"]
            .as_array()
            .is_none_or(|a| a.is_empty())
            && d.first()
                .is_some_and(|e| e["system"]["status"] == "disabled"))
        .then_some(())
    })
    .unwrap();
    let took = arrived.elapsed();
    println!(
        "Disabled: r1 stopped using r3 {:.0} ms after the LSA arrived",
        took.as_secs_f64() * 1000.0
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // Enabled again, then ospfd stops on r3: r1 drops it when the LSA is flushed.
    r3.reload_agent(&ms_body("enabled", "r3 MS/MR rev2"), "192.0.2.3");
    lab::wait_until("r1 uses r3 again", LONG, || {
        (discovered(&r1).first().is_some_and(|e| e["in_use"] == true)).then_some(())
    })
    .unwrap();
    lab.stop_daemon("r3", "ospfd").unwrap();
    lab::wait_until("r1 dropped r3 after the flush", LONG, || {
        discovered(&r1).is_empty().then_some(())
    })
    .unwrap();
    lab.start_daemon("r3", "ospfd").unwrap();
    lab::wait_until("r3 rediscovered after its ospfd restart", LONG, || {
        (discovered(&r1).len() == 1).then_some(())
    })
    .unwrap();

    // ospfd restarts on r1: ospf-msfd reconnects and resumes without a restart of its own.
    lab.stop_daemon("r1", "ospfd").unwrap();
    lab.start_daemon("r1", "ospfd").unwrap();
    lab.wait_ospf_full("r2", 2usize, LONG).unwrap();
    assert!(
        lab.alive("r1", "ospf-msfd"),
        "ospf-msfd survived its ospfd's restart"
    );
    lab::wait_until(
        "r1 rediscovers r3 after its own ospfd restart",
        LONG,
        || {
            (discovered(&r1).first().is_some_and(|e| e["in_use"] == true)
                && r1.json("lig 203.0.113.70")["resolved"] == true)
                .then_some(())
        },
    )
    .unwrap();

    // A malformed MSFD TLV (MSF-TYPE without any locator), originated through r2's API: reported, ignored.
    let out = lab
        .exec(
            "r2",
            &[
                bin("ospf-msfd").display().to_string(),
                "originate-raw".into(),
                "--opaque-id".into(),
                "3".into(),
                "--body-hex".into(),
                "8000000800010004000000ff".into(),
                "--hold-secs".into(),
                "3".into(),
            ],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(lab.log_dir().join("r1").join("ospf-msfd.log")).unwrap();
    assert!(
        log.contains("malformed MSFD TLV") && log.contains("adv=192.0.2.2"),
        "reported: {log}"
    );
    assert!(
        lab.alive("r1", "ospf-msfd") && lab.alive("r1", "lisp-agent"),
        "nothing crashed"
    );
    assert_eq!(discovered(&r1).len(), 1, "the malformed one is ignored");

    let name = lab.name().to_string();
    lab.down().unwrap();
    assert!(
        lab::leftovers(&name).is_empty(),
        "leftovers: {:?}",
        lab::leftovers(&name)
    );
}
