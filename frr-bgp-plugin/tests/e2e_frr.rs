//! End to end on real FRR 8.4 (zebra, staticd, bgpd) in network namespaces,
//! with real lisp-agents and the real plugin binary. Needs root; run with
//! `cargo build -p lisp-agent && cargo test -p frr-bgp-plugin --test e2e_frr -- --nocapture`
//! (`cargo test --workspace` builds lisp-agent too).
//!
//! AS65001 (r1) and AS65002 (r2) peer over eBGP (IPv4 and IPv6 sessions on
//! link ab). r2 hosts a mapping system: a lisp-agent Map-Server whose contact
//! is r2's address on link c, a site for the EID prefix, and an ETR (another
//! agent in r2) registering it. r1 runs a Map-Resolver agent and an ITR agent.
//! Each router runs frr-bgp-plugin peering with its bgpd; the bgpd/staticd
//! lines for it come from `frr-bgp-plugin print-frr-config`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use common::*;
use lisp_msx_proto::bgp::{MsTarget, MsTargetCodepoint};

/// One lab at a time: two cores, and the timings mean more alone.
static SERIAL: Mutex<()> = Mutex::new(());

struct Scenario {
    name: &'static str,
    /// Address family words for vtysh ("ipv4"/"ipv6").
    afi: &'static str,
    contact: &'static str,
    ms_id: u16,
    eid_prefix: &'static str,
    eid_probe: &'static str,
    ms_listen: &'static str,
    etr_rloc: &'static str,
    mr_listen: &'static str,
    itr_listen: &'static str,
    /// r1's eBGP neighbor (r2) carrying this family.
    r1_ebgp_peer: &'static str,
    r2_ebgp_peer: &'static str,
    /// The extendedCommunity string bgpd shows for the tagged prefix.
    unk: &'static str,
    /// Also restart bgpd and zebra on r1 (done once, in the IPv4 run).
    restarts: bool,
}

const V4: Scenario = Scenario {
    name: "fbp_v4",
    afi: "ipv4",
    contact: "198.51.100.6",
    ms_id: 1,
    eid_prefix: "203.0.113.0/24",
    eid_probe: "203.0.113.10",
    ms_listen: "198.51.100.6",
    etr_rloc: "192.0.2.2",
    mr_listen: "198.51.100.1",
    itr_listen: "192.0.2.1",
    r1_ebgp_peer: "198.51.100.2",
    r2_ebgp_peer: "198.51.100.1",
    unk: "UNK:1, 176",
    restarts: true,
};

const V6: Scenario = Scenario {
    name: "fbp_v6",
    afi: "ipv6",
    contact: "2001:db8:b::2",
    ms_id: 6,
    eid_prefix: "2001:db8:e::/48",
    eid_probe: "2001:db8:e::10",
    ms_listen: "2001:db8:b::2",
    etr_rloc: "2001:db8:ffff::2",
    mr_listen: "2001:db8:a::1",
    itr_listen: "2001:db8:ffff::1",
    r1_ebgp_peer: "2001:db8:a::2",
    r2_ebgp_peer: "2001:db8:a::1",
    // The split form (four communities of type 0x83 in attribute 16): FRR
    // 8.4.4 does not pass on the draft's attribute 25 (README).
    unk: "UNK:131, 176 UNK:131, 176 UNK:131, 176 UNK:131, 176",
    restarts: false,
};

/// A lisp-agent spawned inside a lab node.
struct Agent {
    name: &'static str,
    cfg: PathBuf,
    socket: PathBuf,
    pid: u32,
}

impl Agent {
    fn start(
        lab: &lab::Lab,
        dir: &Path,
        node: &'static str,
        name: &'static str,
        listen: &str,
        body: &str,
    ) -> Agent {
        let socket = dir.join(format!("{name}.sock"));
        let cfg = dir.join(format!("{name}.toml"));
        write_agent_config(&cfg, name, listen, &socket, body);
        let bin = workspace_bin("lisp-agent");
        let s = lab
            .spawn(
                node,
                name,
                &[
                    "env",
                    "LISP_AGENT_LOG=info",
                    bin.to_str().unwrap(),
                    "-f",
                    cfg.to_str().unwrap(),
                ],
            )
            .expect("spawn lisp-agent");
        lab::wait_until(
            &format!("{name} answering on {}", socket.display()),
            T,
            || {
                let (code, out) = lispctl(&socket, "show lisp statistics");
                if code == 0 { Ok(()) } else { Err(out) }
            },
        )
        .unwrap();
        Agent {
            name,
            cfg,
            socket,
            pid: s.pid.pid,
        }
    }

    /// Rewrites the roles and sends SIGHUP.
    fn reload(&self, listen: &str, body: &str) {
        write_agent_config(&self.cfg, self.name, listen, &self.socket, body);
        kill("HUP", self.pid);
    }
}

fn write_agent_config(cfg: &Path, name: &str, listen: &str, socket: &Path, body: &str) {
    let text = format!(
        "[agent]\nname = \"{name}\"\nlisten = [\"{listen}\"]\napi_socket = \"{}\"\n{body}\n",
        socket.display()
    );
    std::fs::write(cfg, text).expect("write agent config");
}

fn ms_body(sc: &Scenario, with_site: bool) -> String {
    let mut b = format!(
        "[map_server]\ncontact = \"{}\"\nms_id = {}\n",
        sc.contact, sc.ms_id
    );
    if with_site {
        b += &format!(
            "[[map_server.site]]\nname = \"site-a\"\nkeys = [{{ id = 1, key = \"secret-a\" }}]\neid_prefixes = [{{ prefix = \"{}\", accept_more_specifics = true }}]\n",
            sc.eid_prefix
        );
    }
    b
}

fn plugin_config(
    dir: &Path,
    lab_name: &str,
    node: &str,
    asn: u32,
    bgpd: &str,
    originates: bool,
    agent_socket: &Path,
) -> PathBuf {
    let mut text = format!(
        "agent_socket = \"{}\"\nname = \"frr-bgp-plugin\"\n[bgp]\nlocal_as = {asn}\nbgpd_address = \"{bgpd}\"\nhold_time_secs = 3\nconnect_retry_secs = 1\n",
        agent_socket.display()
    );
    if originates {
        text += "next_hop_v4 = \"192.0.2.254\"\nnext_hop_v6 = \"2001:db8:ffff::fe\"\n";
    }
    text += &format!(
        "[zebra]\nsocket = \"/var/run/frr/lmsx-{lab_name}-{node}/zserv.api\"\nreconnect_max_secs = 1\n"
    );
    let p = dir.join(format!("plugin-{node}.toml"));
    std::fs::write(&p, text).expect("write plugin config");
    p
}

/// vtysh JSON of the tagged prefix on `node` (None: not in the table).
fn bgp_prefix(lab: &lab::Lab, node: &str, sc: &Scenario) -> Option<serde_json::Value> {
    let v = lab
        .vtysh_json(
            node,
            &format!("show bgp {} unicast {} json", sc.afi, sc.eid_prefix),
        )
        .ok()?;
    v["paths"].as_array().filter(|p| !p.is_empty())?;
    Some(v)
}

fn system_for<'a>(
    systems: &'a [serde_json::Value],
    sc: &Scenario,
) -> Option<&'a serde_json::Value> {
    systems
        .iter()
        .find(|s| s["contact"] == sc.contact && s["eid_prefixes"][0] == sc.eid_prefix)
}

fn tshark(lab: &lab::Lab, node: &str, name: &str, ifname: &str, pcap: &Path) {
    lab.spawn(
        node,
        name,
        &[
            "tshark",
            "-n",
            "-i",
            ifname,
            "-f",
            "tcp port 179",
            "-w",
            pcap.to_str().unwrap(),
        ],
    )
    .expect("spawn tshark");
    let log = lab.log_dir().join(node).join(format!("{name}.log"));
    lab::wait_until(&format!("tshark capturing on {node} {ifname}"), T, || {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        if l.contains("Capturing on") {
            Ok(())
        } else {
            Err(l)
        }
    })
    .unwrap();
}

fn run(sc: &Scenario) {
    let dir = tempdir();
    let d = dir.path();
    if std::env::var_os("FBP_KEEP_DIR").is_some() {
        println!(
            "[{}] keeping configs and captures in {}",
            sc.name,
            d.display()
        );
    }
    let cp = MsTargetCodepoint::default();
    let contact: std::net::IpAddr = sc.contact.parse().unwrap();

    // Configurations first: the bgpd/staticd lines come from print-frr-config.
    let r1_agent_sock = d.join("mr1.sock");
    let r2_agent_sock = d.join("ms2.sock");
    let p1 = plugin_config(d, sc.name, "r1", 65001, "192.0.2.1", false, &r1_agent_sock);
    let p2 = plugin_config(d, sc.name, "r2", 65002, "192.0.2.2", true, &r2_agent_sock);
    let (s1, b1) = frr_snippet(
        &p1,
        &[
            "--ebgp-neighbor",
            "198.51.100.2",
            "--ebgp-neighbor",
            "2001:db8:a::2",
        ],
    );
    let (s2, b2) = frr_snippet(
        &p2,
        &[
            "--ebgp-neighbor",
            "198.51.100.1",
            "--ebgp-neighbor",
            "2001:db8:a::1",
        ],
    );
    assert!(s2.contains("ip route 192.0.2.254/32 Null0"), "{s2}");
    let topo_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topologies/msx_ebgp.toml");
    let text = std::fs::read_to_string(&topo_path)
        .unwrap()
        .replace("@@R1_STATICD@@", &s1)
        .replace("@@R2_STATICD@@", &s2)
        .replace("@@R1_BGPD@@", &b1)
        .replace("@@R2_BGPD@@", &b2);
    let topo = lab::Topology::parse_with(&text, topo_path.parent().unwrap(), None)
        .unwrap()
        .with_name(sc.name)
        .unwrap();
    let lab = lab::Lab::up(topo).expect("lab up");
    assert_eq!(lab.netns("r2").unwrap(), format!("lmsx-{}-r2", sc.name));
    lab.wait_bgp_established("r1", sc.r1_ebgp_peer, T).unwrap();
    lab.wait_bgp_established("r2", sc.r2_ebgp_peer, T).unwrap();
    for n in ["r1", "r2"] {
        let failed = log_lines(&lab.log_dir().join(n).join("bgpd.log"), "Config Failed");
        assert!(
            failed.is_empty(),
            "bgpd on {n} refused lines of the snippet: {failed:#?}"
        );
    }

    // Agents: r2 Map-Server and ETR; r1 Map-Resolver and ITR.
    let ms = Agent::start(&lab, d, "r2", "ms2", sc.ms_listen, &ms_body(sc, true));
    let _etr = Agent::start(
        &lab,
        d,
        "r2",
        "etr2",
        sc.etr_rloc,
        &format!(
            "[xtr]\nitr = false\netr = true\nregister_interval_secs = 5\n[[xtr.map_server]]\naddress = \"{}\"\nkey_id = 1\nkey = \"secret-a\"\nproxy_reply = true\nwant_map_notify = true\n[[xtr.database_mapping]]\neid_prefix = \"{}\"\nlocators = [{{ address = \"{}\", priority = 1, weight = 100 }}]\n",
            sc.ms_listen, sc.eid_prefix, sc.etr_rloc
        ),
    );
    let mr = Agent::start(&lab, d, "r1", "mr1", sc.mr_listen, "[map_resolver]\n");
    let itr = Agent::start(
        &lab,
        d,
        "r1",
        "itr1",
        sc.itr_listen,
        &format!(
            "[xtr]\nitr = true\netr = false\nmap_resolvers = [\"{}\"]\nitr_rlocs = [\"{}\"]\n",
            sc.mr_listen, sc.itr_listen
        ),
    );
    assert_eq!(ms.socket, r2_agent_sock);
    assert_eq!(mr.socket, r1_agent_sock);
    lab::wait_until("the ETR's registration at the Map-Server", T, || {
        let v = lispctl_json(&ms.socket, "show lisp site")?;
        let ok = v["sites"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["prefixes"].as_array().into_iter().flatten())
            .any(|p| p["eid_prefix"] == sc.eid_prefix && p["registered"] == true);
        if ok { Ok(()) } else { Err(v.to_string()) }
    })
    .unwrap();

    // r1's plugin first; captures on the eBGP link and on r2's loopback.
    let plugin = plugin_bin();
    let envv = "FRR_BGP_PLUGIN_LOG=info,frr_bgp_plugin=debug";
    let pl1 = lab
        .spawn(
            "r1",
            "plugin",
            &[
                "env",
                envv,
                plugin.to_str().unwrap(),
                "-f",
                p1.to_str().unwrap(),
            ],
        )
        .unwrap();
    lab.wait_bgp_established("r1", "127.0.0.2", T).unwrap();
    let pcap_ebgp = d.join("ebgp.pcap");
    let pcap_lo = d.join("r2-lo.pcap");
    tshark(&lab, "r1", "tshark-ab", "eth-ab", &pcap_ebgp);
    tshark(&lab, "r2", "tshark-lo", "lo", &pcap_lo);

    // (f) From r2's plugin start to r1's agent knowing the mapping system.
    let t0 = Instant::now();
    let pl2 = lab
        .spawn(
            "r2",
            "plugin",
            &[
                "env",
                envv,
                plugin.to_str().unwrap(),
                "-f",
                p2.to_str().unwrap(),
            ],
        )
        .unwrap();
    let (mut at_r2_bgpd, mut at_r1_bgpd) = (None, None);
    let sys = lab::wait_until("r1's agent to know r2's mapping system", T, || {
        if at_r2_bgpd.is_none() && bgp_prefix(&lab, "r2", sc).is_some() {
            at_r2_bgpd = Some(t0.elapsed());
        }
        if at_r1_bgpd.is_none() && bgp_prefix(&lab, "r1", sc).is_some() {
            at_r1_bgpd = Some(t0.elapsed());
        }
        let systems = bgp_systems(&mr.socket)?;
        system_for(&systems, sc)
            .cloned()
            .ok_or(format!("{systems:?}"))
    })
    .unwrap();
    let total = t0.elapsed();
    let originated = log_lines(&pl2.log, "originating")
        .first()
        .and_then(|l| log_time(l));
    let learned = log_lines(&pl1.log, "learned")
        .first()
        .and_then(|l| log_time(l));
    println!(
        "[{}] (f) plugin start on r2 -> r1's agent knows the mapping system: {} ms (polled; r2 bgpd has the prefix after {:?}, r1 bgpd after {:?}); plugin logs: r2 originated -> r1 plugin learned {} ms",
        sc.name,
        total.as_millis(),
        at_r2_bgpd.map(|d| d.as_millis()),
        at_r1_bgpd.map(|d| d.as_millis()),
        match (originated, learned) {
            (Some(a), Some(b)) => format!("{:.0}", (b - a) * 1000.0),
            _ => "?".into(),
        }
    );

    // (b) What r1's agent learned.
    assert_eq!(sys["kind"], "mapping-system");
    assert_eq!(sys["ms_id"], sc.ms_id);
    assert_eq!(sys["origin_as"], 65002);
    assert_eq!(sys["as_path"], serde_json::json!([65002]));
    assert_eq!(sys["reachable"], true);
    assert!(
        sys["advertiser"].as_str().is_some_and(|a| !a.is_empty()),
        "{sys}"
    );

    // (a) r1's bgpd holds the prefix with the community, valid and best.
    let v = bgp_prefix(&lab, "r1", sc).expect("prefix on r1");
    let path = &v["paths"][0];
    assert_eq!(path["extendedCommunity"]["string"], sc.unk, "{v}");
    assert_eq!(path["aspath"]["string"], "65002");
    assert_eq!(path["valid"], true);
    assert_eq!(path["bestpath"]["overall"], true);
    // ... and r2's bgpd accepted the plugin's route (discard next hop, README).
    let v2 = bgp_prefix(&lab, "r2", sc).expect("prefix on r2");
    let p2path = &v2["paths"][0];
    assert_eq!(p2path["valid"], true, "{v2}");
    assert_eq!(p2path["peer"]["peerId"], "127.0.0.2", "{v2}");

    // (a) The community on the wire: tshark on the eBGP link and on r2's lo.
    // Wait until the captures hold the UPDATEs (dumpcap writes with a delay)
    // before stopping tshark.
    let target = MsTarget::new(contact, sc.ms_id);
    let attr = |typ: u8, value: &[u8]| {
        let mut a = vec![0xC0, typ, value.len() as u8];
        a.extend_from_slice(value);
        a
    };
    let lo_want = if contact.is_ipv4() {
        attr(16, &target.to_bytes(&cp))
    } else {
        attr(25, &target.to_bytes(&cp))
    };
    lab::wait_until("the captures to hold the UPDATEs", T, || {
        let lo = pcap_update_attributes(&pcap_lo).contains(&lo_want);
        let ebgp = pcap_update_attributes(&pcap_ebgp)
            .iter()
            .any(|a| a.len() > 3 && a[1] == 16);
        if lo && ebgp {
            Ok(())
        } else {
            Err(format!("r2 lo: {lo}, eBGP link: {ebgp}"))
        }
    })
    .unwrap();
    lab.stop("r1", "tshark-ab").unwrap();
    lab.stop("r2", "tshark-lo").unwrap();
    let ebgp_attrs = pcap_update_attributes(&pcap_ebgp);
    let lo_attrs = pcap_update_attributes(&pcap_lo);
    if contact.is_ipv4() {
        let want = attr(16, &target.to_bytes(&cp));
        assert!(
            ebgp_attrs.contains(&want),
            "no UPDATE r2 -> r1 carries {}: {:?}",
            hex(&want),
            ebgp_attrs.iter().map(|a| hex(a)).collect::<Vec<_>>()
        );
        assert!(
            lo_attrs.contains(&want),
            "the plugin -> bgpd UPDATE lacks {}",
            hex(&want)
        );
        println!(
            "[{}] (a) tshark: extended communities attribute {} on the r2 -> r1 link, as encoded",
            sc.name,
            hex(&want)
        );
    } else {
        // The draft's form (attribute 25) goes into bgpd ...
        let want25 = attr(25, &target.to_bytes(&cp));
        assert!(
            lo_attrs.contains(&want25),
            "the plugin -> bgpd UPDATE lacks attribute 25 {}",
            hex(&want25)
        );
        // ... the split form crosses eBGP (bgpd may reorder communities).
        let split = frr_bgp_plugin::compat::encode_split(&[target], 0x83, cp.subtype);
        let found = ebgp_attrs
            .iter()
            .find(|a| a.len() > 3 && a[1] == 16)
            .expect("an extended communities attribute on the eBGP link");
        let (back, problems) = frr_bgp_plugin::compat::decode_split(&found[3..], 0x83, cp.subtype);
        assert_eq!(back, vec![target], "{problems:?}");
        let mut got: Vec<&[u8]> = found[3..].chunks(8).collect();
        let mut want: Vec<&[u8]> = split.chunks(8).collect();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "the split communities on the wire are the ones encoded"
        );
        let crossed = ebgp_attrs.iter().any(|a| a.len() > 1 && a[1] == 25);
        println!(
            "[{}] (e) tshark: attribute 25 {} into r2's bgpd; split form {} on the r2 -> r1 link; attribute 25 crossed bgpd: {crossed} (FRR 8.4.4: false)",
            sc.name,
            hex(&want25),
            hex(&found[3..])
        );
    }

    // (b) r1's Map-Resolver resolves an EID of the prefix by asking r2's MS.
    let lig = lab::wait_until("lig through r1's Map-Resolver", T, || {
        let v = lispctl_json(&itr.socket, &format!("lig {}", sc.eid_probe))?;
        if v["resolved"] == true {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .unwrap();
    assert_eq!(lig["mapping"]["eid_prefix"], sc.eid_prefix, "{lig}");
    assert!(
        lig["mapping"]["locators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["address"] == sc.etr_rloc),
        "{lig}"
    );
    let mrv = lispctl_json(&mr.socket, "show lisp map-resolver").unwrap();
    assert!(mrv["served_by"]["ms"].as_u64().unwrap_or(0) >= 1, "{mrv}");
    let route = mrv["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eid_prefix"] == sc.eid_prefix)
        .expect("MR route")
        .clone();
    assert_eq!(route["source"], "bgp");
    assert_eq!(route["map_servers"], serde_json::json!([sc.contact]));
    println!(
        "[{}] (b) lig {}: {} via {} in {} us",
        sc.name, sc.eid_probe, lig["mapping"]["eid_prefix"], lig["map_resolver"], lig["rtt_us"]
    );

    // (c) zebra nexthop tracking: the contact is registered in r1's zebra ...
    let nht_cmd = if contact.is_ipv4() {
        "show ip nht"
    } else {
        "show ipv6 nht"
    };
    let nht = lab.vtysh("r1", nht_cmd).unwrap();
    assert!(nht.contains(sc.contact) && nht.contains("system("), "{nht}");
    // ... and taking the contact link down marks the system unreachable.
    lab.exec_ok("r1", &["ip", "link", "set", "eth-c", "down"])
        .unwrap();
    lab::wait_until("the contact to be marked unreachable", T, || {
        let s = bgp_systems(&mr.socket)?;
        let s = system_for(&s, sc).ok_or("gone")?;
        if s["reachable"] == false && s["status"] == "unreachable" {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .unwrap();
    let mrv = lispctl_json(&mr.socket, "show lisp map-resolver").unwrap();
    let route = mrv["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eid_prefix"] == sc.eid_prefix)
        .unwrap()
        .clone();
    assert_eq!(route["reachable"], false, "{route}");
    lab.exec_ok("r1", &["ip", "link", "set", "eth-c", "up"])
        .unwrap();
    lab::wait_until("the contact to be reachable again", T, || {
        let s = bgp_systems(&mr.socket)?;
        let s = system_for(&s, sc).ok_or("gone")?;
        if s["reachable"] == true {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .unwrap();
    println!(
        "[{}] (c) contact link down -> unreachable, up -> reachable (zebra NHT)",
        sc.name
    );

    if sc.restarts {
        // (c) bgpd on r1 stops: the session ends, the plugin forgets; bgpd
        // starts: the same plugin process reconnects and learns again.
        lab.stop_daemon("r1", "bgpd").unwrap();
        lab::wait_until("r1's agent to forget while bgpd is down", T, || {
            let s = bgp_systems(&mr.socket)?;
            if s.is_empty() {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        })
        .unwrap();
        let t = Instant::now();
        lab.start_daemon("r1", "bgpd").unwrap();
        lab::wait_until("r1's agent to learn again after bgpd restarted", T, || {
            let s = bgp_systems(&mr.socket)?;
            system_for(&s, sc).map(|_| ()).ok_or(format!("{s:?}"))
        })
        .unwrap();
        assert!(
            lab.alive("r1", "plugin"),
            "the plugin must survive bgpd's restart"
        );
        let ups = log_lines(&pl1.log, "session with bgpd Established").len();
        assert!(ups >= 2, "the plugin's session came up {ups} times");
        println!(
            "[{}] (c) bgpd restart on r1: re-learned {} ms after bgpd started, same plugin pid {}",
            sc.name,
            t.elapsed().as_millis(),
            pl1.pid.pid
        );

        // zebra restarts: the plugin reconnects and registers the contact again.
        lab.stop_daemon("r1", "zebra").unwrap();
        lab.start_daemon("r1", "zebra").unwrap();
        lab::wait_until("the contact registered in the new zebra", T, || {
            let nht = lab.vtysh("r1", nht_cmd).map_err(|e| e.to_string())?;
            if nht.contains(sc.contact) && nht.contains("system(") {
                Ok(())
            } else {
                Err(nht)
            }
        })
        .unwrap();
        assert!(log_lines(&pl1.log, "zebra session up").len() >= 2);
        println!(
            "[{}] (c) zebra restart on r1: nexthop registration restored",
            sc.name
        );
    }

    // (c) The site goes away on r2 (config change + SIGHUP): withdrawn everywhere.
    ms.reload(sc.ms_listen, &ms_body(sc, false));
    lab::wait_until(
        "the prefix to leave r2's bgpd, r1's bgpd and r1's agent",
        T,
        || {
            let r2 = bgp_prefix(&lab, "r2", sc).is_some();
            let r1 = bgp_prefix(&lab, "r1", sc).is_some();
            let s = bgp_systems(&mr.socket)?;
            let agent = system_for(&s, sc).is_some();
            if !r2 && !r1 && !agent {
                Ok(())
            } else {
                Err(format!("r2 bgpd {r2}, r1 bgpd {r1}, r1 agent {agent}"))
            }
        },
    )
    .unwrap();
    assert!(!log_lines(&pl2.log, "withdrawing").is_empty());
    println!(
        "[{}] (c) site removed on r2: withdrawn from both bgpds and r1's agent",
        sc.name
    );

    for (n, p) in [("r1", &pl1), ("r2", &pl2)] {
        let errors = log_lines(&p.log, " ERROR ");
        assert!(errors.is_empty(), "{n} plugin errors: {errors:#?}");
    }
    let name = sc.name.to_string();
    lab.down().expect("lab down");
    if std::env::var_os("FBP_KEEP_DIR").is_some() {
        let _ = dir.keep();
    }
    let left = lab::leftovers(&name);
    assert!(left.is_empty(), "lab {name} left: {left:?}");
}

#[test]
fn ipv4_eids_and_contact_through_real_frr() {
    if !can_run_lab("ipv4_eids_and_contact_through_real_frr") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(&V4);
}

#[test]
fn ipv6_eids_and_contact_through_real_frr() {
    if !can_run_lab("ipv6_eids_and_contact_through_real_frr") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(&V6);
}
