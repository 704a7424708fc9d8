//! End-to-end control-plane tests: several real lisp-agent processes on
//! distinct loopback addresses (each test its own 127.N.0.0/24), no mocks.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Agent, locators, registered, site_prefix, wait_for};

const LONG: Duration = Duration::from_secs(30);

fn ms_mr(site_key: &str, extra: &str) -> String {
    format!(
        r#"
[map_server]
[[map_server.site]]
name = "site-a"
keys = [{{ id = 1, key = "{site_key}" }}]
eid_prefixes = [{{ prefix = "192.0.2.0/24", accept_more_specifics = true }}]
[map_resolver]
{extra}
"#
    )
}

fn etr(ms: &str, key: &str, prefix: &str, locator: &str, extra: &str) -> String {
    format!(
        r#"
[xtr]
itr = false
register_interval_secs = 2
{extra}
[[xtr.map_server]]
address = "{ms}"
key_id = 1
key = "{key}"
[[xtr.database_mapping]]
eid_prefix = "{prefix}"
locators = [{{ address = "{locator}" }}]
"#
    )
}

fn itr(mr: &str, extra: &str) -> String {
    format!(
        r#"
[xtr]
etr = false
map_resolvers = ["{mr}"]
request_timeout_ms = 300
{extra}
"#
    )
}

#[test]
fn registration_authentication_resolution_negatives_and_expiry() {
    let ms = Agent::start("ms", "127.11.0.10", &ms_mr("good-key", ""));
    let _etr1 = Agent::start(
        "etr1",
        "127.11.0.11",
        &etr("127.11.0.10", "good-key", "192.0.2.0/26", "127.11.0.11", ""),
    );
    let _etr2 = Agent::start(
        "etr2",
        "127.11.0.12",
        &etr(
            "127.11.0.10",
            "WRONG-key",
            "192.0.2.64/26",
            "127.11.0.12",
            "",
        ),
    );
    let itr = Agent::start(
        "itr",
        "127.11.0.13",
        &itr("127.11.0.10", "max_ttl_secs = 3"),
    );

    wait_for("etr1 registered", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
    // The ETR with the wrong key is refused, counted, and not registered.
    wait_for("auth failure counted", LONG, || {
        (ms.counter("auth.failure") >= 1).then_some(())
    });
    let sites = ms.json("show lisp site");
    assert!(
        site_prefix(&sites, "192.0.2.64/26").is_none(),
        "wrong-key ETR must not be registered: {sites:#}"
    );
    assert!(sites["sites"][0]["auth_failures"].as_u64().unwrap() >= 1);
    assert!(
        ms.log().contains("Map-Register refused"),
        "refusal is logged"
    );
    // Keys are never shown, key ids are.
    let (_, human) = ms.ctl("show lisp site detail");
    assert!(!human.contains("good-key") && !sites.to_string().contains("good-key"));

    // Resolution through the Map-Server (proxy-reply).
    let lig = itr.json("lig 192.0.2.5");
    assert_eq!(lig["resolved"], true, "{lig:#}");
    assert_eq!(lig["mapping"]["eid_prefix"], "192.0.2.0/26");
    assert_eq!(locators(&lig["mapping"]), vec!["127.11.0.11"]);
    assert!(lig["rtt_us"].as_u64().unwrap() > 0);
    let cache = itr.json("show lisp map-cache");
    let entry = &cache["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mapping"]["eid_prefix"] == "192.0.2.0/26")
        .expect("cached")["source"];
    assert_eq!(entry, "map-reply");
    let mr_view = ms.json("show lisp map-resolver");
    assert!(ms.counter("map-reply.tx") >= 1, "{mr_view:#}");

    // Configured but unregistered: negative, 1 minute, the configured prefix.
    let neg = itr.json("lig 192.0.2.70");
    assert_eq!(neg["resolved"], false);
    assert_eq!(neg["mapping"]["eid_prefix"], "192.0.2.0/24");
    assert_eq!(neg["mapping"]["ttl_minutes"], 1);
    assert_eq!(neg["mapping"]["action"], "natively-forward");
    // A hole: negative, 15 minutes, a prefix that does not cover the site.
    let hole = itr.json("lig 203.0.113.1");
    assert_eq!(hole["mapping"]["ttl_minutes"], 15);
    let hp: lisp_msx_proto::EidPrefix = hole["mapping"]["eid_prefix"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !hp.contains(&"192.0.2.0/24".parse().unwrap()),
        "hole {hp} must not cover the site"
    );
    assert!(hp.contains(&"203.0.113.1/32".parse().unwrap()));

    // TTL expiry (capped to 3 s on this ITR).
    wait_for("cache entry expired", LONG, || {
        let c = itr.json("show lisp map-cache");
        c["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["mapping"]["eid_prefix"] != "192.0.2.0/26")
            .then_some(())
    });
    assert!(itr.counter("map-cache.expired") >= 1);
}

#[test]
fn reregistration_after_map_server_restart() {
    let mut ms = Agent::start("ms", "127.12.0.10", &ms_mr("k", ""));
    let _etr = Agent::start(
        "etr",
        "127.12.0.11",
        &etr("127.12.0.10", "k", "192.0.2.0/26", "127.12.0.11", ""),
    );
    wait_for("registered", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
    ms.restart();
    assert!(
        !registered(&ms, "192.0.2.0/26"),
        "a restarted Map-Server starts empty"
    );
    wait_for("registered again after restart", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
}

#[test]
fn resolution_through_ddt() {
    let root = Agent::start(
        "ddt-root",
        "127.13.0.20",
        r#"
[ddt]
authoritative_prefixes = ["0.0.0.0/0"]
[[ddt.delegation]]
prefix = "198.51.100.0/24"
kind = "map-server"
referrals = ["127.13.0.21"]
"#,
    );
    let ddt_ms = Agent::start(
        "ddt-ms",
        "127.13.0.21",
        r#"
[map_server]
ddt = true
[[map_server.site]]
name = "remote"
keys = [{ id = 1, key = "k2" }]
eid_prefixes = [{ prefix = "198.51.100.0/24", accept_more_specifics = true }]
"#,
    );
    let _etr = Agent::start(
        "etr",
        "127.13.0.22",
        &etr("127.13.0.21", "k2", "198.51.100.0/26", "127.13.0.22", ""),
    );
    let mr = Agent::start(
        "mr",
        "127.13.0.23",
        "[map_resolver]\nddt_roots = [\"127.13.0.20\"]\nddt_timeout_ms = 500\n",
    );
    let itr = Agent::start("itr", "127.13.0.24", &itr("127.13.0.23", ""));
    wait_for("registered at the DDT Map-Server", LONG, || {
        registered(&ddt_ms, "198.51.100.0/26").then_some(())
    });

    let lig = itr.json("lig 198.51.100.5");
    assert_eq!(lig["resolved"], true, "{lig:#}");
    assert_eq!(locators(&lig["mapping"]), vec!["127.13.0.22"]);
    // The referral from the root is cached; the MR counted a DDT resolution.
    let refs = mr.json("show lisp referral-cache");
    let r = refs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eid_prefix"] == "198.51.100.0/24")
        .expect("referral cached");
    assert_eq!(r["action"], "ms-referral");
    assert_eq!(r["referrals"][0], "127.13.0.21");
    wait_for("MS-ACK counted", LONG, || {
        (mr.json("show lisp map-resolver")["served_by"]["ddt"].as_u64() >= Some(1)).then_some(())
    });
    // Warm: the cached referrals (the root's, then the MS-ACK naming the DDT
    // Map-Server) send the next request straight to the Map-Server.
    let root_tx = root.counter("map-referral.tx");
    let ddt_served = mr.json("show lisp map-resolver")["served_by"]["ddt"].as_u64();
    itr.ctl("clear lisp map-cache");
    let again = itr.json("lig 198.51.100.6");
    wait_for("second DDT resolution counted", LONG, || {
        (mr.json("show lisp map-resolver")["served_by"]["ddt"].as_u64() > ddt_served).then_some(())
    });
    assert_eq!(again["resolved"], true, "{again:#}");
    assert_eq!(
        root.counter("map-referral.tx"),
        root_tx,
        "the root was not asked again"
    );

    // Registered space at the DDT MS but not registered: MS-NOT-REGISTERED → negative, 1 minute.
    let nr = itr.json("lig 198.51.100.200");
    assert_eq!(nr["resolved"], false);
    assert_eq!(nr["mapping"]["eid_prefix"], "198.51.100.0/24");
    assert_eq!(nr["mapping"]["ttl_minutes"], 1);
    // Outside every delegation: DELEGATION-HOLE from the root → negative, 15 minutes.
    let hole = itr.json("lig 203.0.113.9");
    assert_eq!(hole["resolved"], false);
    assert_eq!(hole["mapping"]["ttl_minutes"], 15);
    assert!(ddt_ms.counter("map-referral.tx") >= 2);
}

#[test]
fn smr_triggers_a_refresh() {
    let ms = Agent::start("ms", "127.14.0.10", &ms_mr("k", ""));
    let mut etr_a = Agent::start(
        "etr",
        "127.14.0.11",
        &etr("127.14.0.10", "k", "192.0.2.0/26", "127.14.0.11", "")
            .replace("key = \"k\"", "key = \"k\"\nproxy_reply = false"),
    );
    let itr = Agent::start("itr", "127.14.0.12", &itr("127.14.0.10", ""));
    wait_for("registered", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
    // Not proxy-replying: the Map-Server forwards to the ETR, which answers and remembers the ITR.
    let lig = itr.json("lig 192.0.2.5");
    assert_eq!(locators(&lig["mapping"]), vec!["127.14.0.11"]);
    assert_eq!(
        lig["mapping"]["authoritative"], true,
        "answered by the ETR itself"
    );

    // The ETR's mapping changes; on reload it sends an SMR and the ITR refreshes.
    etr_a.reload(
        &etr("127.14.0.10", "k", "192.0.2.0/26", "198.51.100.77", "")
            .replace("key = \"k\"", "key = \"k\"\nproxy_reply = false"),
    );
    wait_for("ITR refreshed after the SMR", LONG, || {
        let c = itr.json("show lisp map-cache");
        let e = c["entries"]
            .as_array()?
            .iter()
            .find(|e| e["mapping"]["eid_prefix"] == "192.0.2.0/26")?
            .clone();
        (locators(&e["mapping"]) == vec!["198.51.100.77"]).then_some(())
    });
    assert!(itr.counter("smr.rx") >= 1);
    assert!(itr.counter("smr-invoked.tx") >= 1);
}

#[test]
fn bad_input_is_counted_and_floods_are_limited() {
    // A low per-source limit, so the check does not depend on how fast this
    // machine drains a socket under load. Busy polling on: timers, API calls
    // and registrations must still be served while it spins.
    let ms = Agent::start_with(
        "ms",
        "127.15.0.10",
        "map_request_rate_limit = 100\nbusy_poll_us = 2000",
        &ms_mr("k", ""),
    );
    let sock = UdpSocket::bind("127.15.0.50:0").unwrap();
    let dest = "127.15.0.10:4342";
    // Garbage of several shapes: empty type, truncated request, unknown type.
    for pkt in [
        &[0x10u8, 0, 0, 1][..],
        &[0x70, 0, 0, 0][..],
        &[0xF4, 0x05, 0, 0, 1, 2, 3][..],
        &[0x80, 0, 0, 0, 0x45][..],
    ] {
        sock.send_to(pkt, dest).unwrap();
    }
    wait_for("malformed counted", LONG, || {
        (ms.counter("malformed") + ms.counter("malformed.unknown-type") >= 4).then_some(())
    });
    // Still serving.
    assert_eq!(ms.ctl("show lisp site").0, 0);

    // A flood of Map-Requests from one source above the per-source limit
    // (bounded: 3,000 packets) is limited; an ETR still registers meanwhile.
    let etr_agent = Agent::start(
        "etr",
        "127.15.0.11",
        &etr("127.15.0.10", "k", "192.0.2.0/26", "127.15.0.11", ""),
    );
    let mut req = Vec::new();
    lisp_msx_proto::lisp::MapRequest::new(
        1,
        "192.0.2.9/32".parse().unwrap(),
        "127.15.0.50".parse().unwrap(),
    )
    .encode(&mut req)
    .unwrap();
    for _ in 0..3_000 {
        let _ = sock.send_to(&req, dest);
    }
    wait_for("flood rate-limited", LONG, || {
        (ms.counter("map-request.rate-limited") > 0).then_some(())
    });
    wait_for("registration despite the flood", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
    drop(etr_agent);
}

#[test]
fn configuration_errors_name_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.toml",
            "[agent]\nlisten = [\"127.16.0.1\"]\nbogus = 1\n[map_resolver]\n",
            "bogus",
        ),
        (
            "dup.toml",
            "[map_server]\n[[map_server.site]]\nname = \"a\"\nkeys = [{ id = 1, key = \"k\" }]\neid_prefixes = [{ prefix = \"192.0.2.0/24\" }]\n[[map_server.site]]\nname = \"a\"\nkeys = [{ id = 1, key = \"k\" }]\neid_prefixes = [{ prefix = \"192.0.2.0/24\" }]\n",
            "map_server.site[1].name",
        ),
        (
            "prefix.toml",
            "[xtr]\n[[xtr.database_mapping]]\neid_prefix = \"192.0.2.0/33\"\nlocators = [{ address = \"192.0.2.1\" }]\n",
            "bad prefix length",
        ),
        (
            "norole.toml",
            "[agent]\nname = \"x\"\n",
            "no role configured",
        ),
        (
            "alg.toml",
            "[xtr]\n[[xtr.map_server]]\naddress = \"192.0.2.1\"\nkey_id = 1\nkey = \"k\"\nalgorithm = \"md5\"\n",
            "unknown authentication algorithm",
        ),
        (
            "busy.toml",
            "[agent]\nbusy_poll_us = 5000000\n[map_server]\n",
            "agent.busy_poll_us: at most 1000000",
        ),
    ];
    for (file, text, expect) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lisp-agent"))
            .arg("--check")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(file), "{file}: error names the file: {err}");
        assert!(err.contains(expect), "{file}: error says '{expect}': {err}");
    }
}

#[test]
fn documented_example_configurations_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_lisp-agent"))
                .arg("--check")
                .arg("-f")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 5, "every role has an example");
}

#[test]
fn load_generator_measures_the_map_server_and_the_reflector_floor() {
    use lisp_agent::bench::{BenchConfig, reflect, run};
    let ms = Agent::start_with(
        "ms",
        "127.17.0.10",
        "map_request_rate_limit = 0\nbusy_poll_us = 200",
        &ms_mr("k", ""),
    );
    let _etr = Agent::start(
        "etr",
        "127.17.0.11",
        &etr("127.17.0.10", "k", "192.0.2.0/26", "127.17.0.11", ""),
    );
    wait_for("registered", LONG, || {
        registered(&ms, "192.0.2.0/26").then_some(())
    });
    let paced = |target: &str| BenchConfig {
        target: target.parse().unwrap(),
        source: "127.17.0.50".parse().unwrap(),
        eids: "192.0.2.0/26".parse().unwrap(),
        duration: Duration::from_secs(3),
        window: 64,
        rate: 2_000,
        max_requests: 1_000,
        dump: None,
    };
    // Paced and bounded: 1,000 requests at 2,000/s, every one answered and
    // matched to its request by nonce.
    let r = run(&paced("127.17.0.10")).expect("bench against the Map-Server");
    assert_eq!(r.sent, 1_000, "{r:?}");
    assert_eq!(r.answered, r.sent, "{r:?}");
    assert!(
        r.p50_us > 0 && r.p50_us <= r.p99_us && r.p99_us <= r.max_us,
        "{r:?}"
    );
    assert!(ms.counter("map-request.rx") >= 1_000);

    // The reflector answers the same requests with a fixed Map-Reply.
    let floor = std::thread::spawn(|| {
        reflect(
            "127.17.0.30".parse().unwrap(),
            Duration::from_secs(8),
            Duration::ZERO,
        )
    });
    // It binds in its own thread: the first run may find the port closed.
    let r = wait_for("reflector answers", LONG, || {
        run(&paced("127.17.0.30"))
            .ok()
            .filter(|rep| rep.answered == 1_000)
    });
    assert_eq!(r.lost, 0, "{r:?}");
    assert!(floor.join().unwrap().unwrap() >= 1_000);

    // Outside loopback and the documentation ranges: refused.
    let mut off_lab = paced("127.17.0.10");
    off_lab.target = "8.8.8.8".parse().unwrap();
    off_lab.source = "10.0.0.1".parse().unwrap();
    assert!(run(&off_lab).is_err());
    assert!(reflect("10.0.0.1".parse().unwrap(), Duration::ZERO, Duration::ZERO).is_err());
}
