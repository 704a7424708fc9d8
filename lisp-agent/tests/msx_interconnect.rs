//! LISP-MSX interconnection between two real agents: CPNP negotiation over
//! TCP (PSK-authenticated), agreements persisted across restarts, direct
//! invocation of the peer Map-Server, policy refusal with fallback, wrong key.
//! Discovery is fed through the agent API exactly as frr-bgp-plugin does.

mod common;

use std::time::Duration;

use common::{Agent, locators, registered, wait_for};
use lisp_msx_proto::api;

const LONG: Duration = Duration::from_secs(30);

fn mapping_system(
    contact: &str,
    ms_id: u16,
    asn: u32,
    prefix: &str,
    psk: &str,
    policy: &str,
) -> String {
    format!(
        r#"
[map_server]
contact = "{contact}"
ms_id = {ms_id}
[[map_server.site]]
name = "site"
keys = [{{ id = 1, key = "k" }}]
eid_prefixes = [{{ prefix = "{prefix}", accept_more_specifics = true }}]
[map_resolver]
[msx]
as_number = {asn}
psk = "{psk}"
{policy}
"#
    )
}

/// Tells `agent` (as frr-bgp-plugin would) that `contact` serves `prefix` from AS `asn`.
fn announce(agent: &Agent, contact: &str, ms_id: u32, asn: u32, prefix: &str) {
    let sock = agent.socket();
    let (contact, prefix) = (contact.to_string(), prefix.to_string());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut c = lisp_msx_proto::grpc::connect(&sock).await.unwrap();
            c.update_discovery(api::DiscoveryUpdate {
                source: "bgp".into(),
                adapter: "test".into(),
                full_set: true,
                systems: vec![api::DiscoveredSystem {
                    key: format!("bgp {prefix} {contact}:{ms_id}"),
                    kind: "mapping-system".into(),
                    eid_prefixes: vec![prefix],
                    contact,
                    ms_id,
                    as_path: vec![asn],
                    origin_as: asn,
                    reachable: true,
                    status: "enabled".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        });
}

fn agreements(a: &Agent) -> Vec<serde_json::Value> {
    a.json("show lisp msx agreements")["agreements"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn etr(ms: &str, prefix: &str, locator: &str) -> String {
    format!(
        r#"
[xtr]
itr = false
register_interval_secs = 2
[[xtr.map_server]]
address = "{ms}"
key_id = 1
key = "k"
[[xtr.database_mapping]]
eid_prefix = "{prefix}"
locators = [{{ address = "{locator}" }}]
"#
    )
}

#[test]
fn negotiate_persist_and_resolve_directly() {
    let mut as1 = Agent::start(
        "as65001",
        "127.21.0.10",
        &mapping_system("127.21.0.10", 1, 65001, "192.0.2.0/24", "lab-psk", ""),
    );
    let as2 = Agent::start(
        "as65002",
        "127.21.0.20",
        &mapping_system("127.21.0.20", 2, 65002, "203.0.113.0/24", "lab-psk", ""),
    );
    let _etr = Agent::start(
        "etr2",
        "127.21.0.21",
        &etr("127.21.0.20", "203.0.113.64/26", "127.21.0.21"),
    );
    let itr = Agent::start(
        "itr1",
        "127.21.0.11",
        "[xtr]\netr = false\nmap_resolvers = [\"127.21.0.10\"]\nrequest_timeout_ms = 300\n",
    );
    wait_for("ETR registered in AS65002", LONG, || {
        registered(&as2, "203.0.113.64/26").then_some(())
    });

    // Before any agreement the MR knows nothing of AS65002: negative.
    assert_eq!(itr.json("lig 203.0.113.70")["resolved"], false);

    announce(&as1, "127.21.0.20", 2, 65002, "203.0.113.0/24");
    let a1 = wait_for("agreement on AS65001's side", LONG, || {
        agreements(&as1).into_iter().find(|a| a["role"] == "client")
    });
    let a2 = wait_for("agreement on AS65002's side", LONG, || {
        agreements(&as2).into_iter().find(|a| a["role"] == "server")
    });
    assert_eq!(a1["customer_agreement_id"], a2["customer_agreement_id"]);
    assert_eq!(a1["provider_agreement_id"], a2["provider_agreement_id"]);
    assert_eq!(a1["eid_prefixes"], serde_json::json!(["203.0.113.0/24"]));
    assert_eq!(a1["direct_requests"], true);
    assert_eq!(
        as1.json("show lisp msx peers")["peers"][0]["state"],
        "agreed"
    );

    // The ITR's MR resolves AS65002's EID by asking AS65002's MS directly.
    let lig = wait_for("resolution across the interconnection", LONG, || {
        let v = itr.json("lig 203.0.113.70");
        (v["resolved"] == true).then_some(v)
    });
    assert_eq!(locators(&lig["mapping"]), vec!["127.21.0.21"]);
    // Map-Bulk: AS65001's Map-Resolver copies AS65002's table and answers from it.
    wait_for("answers from the bulk copy", LONG, || {
        let v = itr.json("lig 203.0.113.72");
        let copy = as1.json("show lisp map-resolver")["served_by"]["msx-copy"]
            .as_u64()
            .unwrap_or(0);
        (v["resolved"] == true && copy >= 1).then_some(())
    });
    assert!(as1.log().contains("Map-Bulk: copied the peer's table"));
    assert!(as2.log().contains("Map-Bulk: table sent"));

    // A restart keeps the agreement (persisted atomically): same identifiers, no new negotiation.
    let tx_before = as2.counter("cpnp.rx");
    as1.restart();
    let after = wait_for("agreement reloaded", LONG, || {
        agreements(&as1).into_iter().find(|a| a["role"] == "client")
    });
    assert_eq!(after["customer_agreement_id"], a1["customer_agreement_id"]);
    let v = wait_for("resolution after the restart", LONG, || {
        let v = itr.json("lig 203.0.113.71");
        (v["resolved"] == true).then_some(v)
    });
    assert_eq!(locators(&v["mapping"]), vec!["127.21.0.21"]);
    announce(&as1, "127.21.0.20", 2, 65002, "203.0.113.0/24");
    assert_eq!(
        as2.counter("cpnp.rx"),
        tx_before,
        "no renegotiation after the restart"
    );
}

#[test]
fn deny_policy_and_wrong_key_prevent_agreements() {
    // AS65002 denies AS65001: FAIL, no agreement; AS65001's MR falls back (no DDT here: negative).
    let as1 = Agent::start(
        "as65001",
        "127.22.0.10",
        &mapping_system("127.22.0.10", 1, 65001, "192.0.2.0/24", "lab-psk", ""),
    );
    let as2 = Agent::start(
        "as65002",
        "127.22.0.20",
        &mapping_system(
            "127.22.0.20",
            2,
            65002,
            "203.0.113.0/24",
            "lab-psk",
            "[msx.policy]\ndeny_as = [65001]\n",
        ),
    );
    announce(&as1, "127.22.0.20", 2, 65002, "203.0.113.0/24");
    wait_for("refusal seen by AS65001", LONG, || {
        let s = as1.json("show lisp msx peers")["peers"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        s.contains("declined").then_some(())
    });
    assert!(agreements(&as1).is_empty() && agreements(&as2).is_empty());
    assert!(as2.log().contains("AS65001 is denied"));
    let itr = Agent::start(
        "itr1",
        "127.22.0.11",
        "[xtr]\netr = false\nmap_resolvers = [\"127.22.0.10\"]\nrequest_timeout_ms = 300\n",
    );
    let neg = itr.json("lig 203.0.113.9");
    assert_eq!(
        neg["resolved"], false,
        "no agreement: the MR falls back to a negative reply"
    );

    // Map-Bulk without an agreement: BULK-PROHIBITED.
    {
        use lisp_msx_proto::msx::{BulkResult, ExtMessage, MapBulkRequest, frame};
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.22.0.20", 4342)).unwrap();
        let mut out = Vec::new();
        frame::frame_with(&mut out, |b| {
            MapBulkRequest {
                transaction_id: 9,
                filters: vec![],
            }
            .encode(b, 1025)
        })
        .unwrap();
        s.write_all(&out).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let (msg, _) = frame::next_frame(&buf[..n]).unwrap().unwrap();
        match lisp_msx_proto::LispMessage::decode(msg).unwrap() {
            lisp_msx_proto::LispMessage::Extension(ExtMessage::BulkReply(r)) => {
                assert_eq!(r.result, BulkResult::PROHIBITED);
                assert_eq!(r.transaction_id, 9);
                assert!(r.records.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    // Wrong key: the frames are refused and counted; no agreement.
    let as3 = Agent::start(
        "as65003",
        "127.22.0.30",
        &mapping_system("127.22.0.30", 3, 65003, "198.51.100.0/24", "other-psk", ""),
    );
    announce(&as3, "127.22.0.20", 2, 65002, "203.0.113.0/24");
    wait_for("bad key refused", LONG, || {
        (as2.counter("cpnp.refused") >= 1).then_some(())
    });
    assert!(as2.log().contains("authentication failed"));
    assert!(agreements(&as3).is_empty() && agreements(&as2).is_empty());
}

#[test]
fn direct_invocation_without_bulk() {
    // AS65001 asks for direct Map-Requests only: no copy, every resolution
    // goes straight to AS65002's Map-Server.
    let direct_only = "[msx.request]\nbulk = false\nsubscribe = false\ndirect_map_request = true\n";
    let as1 = Agent::start(
        "as65001",
        "127.23.0.10",
        &mapping_system(
            "127.23.0.10",
            1,
            65001,
            "192.0.2.0/24",
            "lab-psk",
            direct_only,
        ),
    );
    let as2 = Agent::start(
        "as65002",
        "127.23.0.20",
        &mapping_system("127.23.0.20", 2, 65002, "203.0.113.0/24", "lab-psk", ""),
    );
    let _etr = Agent::start(
        "etr2",
        "127.23.0.21",
        &etr("127.23.0.20", "203.0.113.64/26", "127.23.0.21"),
    );
    let itr = Agent::start(
        "itr1",
        "127.23.0.11",
        "[xtr]\netr = false\nmap_resolvers = [\"127.23.0.10\"]\nrequest_timeout_ms = 300\n",
    );
    wait_for("ETR registered in AS65002", LONG, || {
        registered(&as2, "203.0.113.64/26").then_some(())
    });
    announce(&as1, "127.23.0.20", 2, 65002, "203.0.113.0/24");
    let a = wait_for("agreement", LONG, || {
        agreements(&as1).into_iter().find(|a| a["role"] == "client")
    });
    assert_eq!(a["bulk"], false);
    assert_eq!(a["direct_requests"], true);
    let v = wait_for("direct resolution", LONG, || {
        let v = itr.json("lig 203.0.113.70");
        (v["resolved"] == true).then_some(v)
    });
    assert_eq!(locators(&v["mapping"]), vec!["127.23.0.21"]);
    let served = as1.json("show lisp map-resolver")["served_by"].clone();
    assert!(served["msx-direct"].as_u64().unwrap() >= 1, "{served}");
    assert_eq!(served["msx-copy"], 0, "{served}");
}

fn subscriptions(a: &Agent, role: &str) -> Vec<serde_json::Value> {
    a.json("show lisp msx subscriptions")["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["role"] == role)
        .collect()
}

fn copied(a: &Agent, prefix: &str) -> Option<Vec<String>> {
    a.json("show lisp map-resolver")["copied"]
        .as_array()?
        .iter()
        .find(|c| c["eid_prefix"] == prefix)
        .map(|c| {
            c["rlocs"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
}

#[test]
fn subscription_pushes_new_changed_and_withdrawn_mappings() {
    // The default expiry (600 s, renewed every 200 s): nothing below may
    // wait for a renewal.
    let sub_cfg = "[msx.subscription]\nexpiry_secs = 600\n";
    let mut as1 = Agent::start(
        "sub65001",
        "127.21.2.10",
        &(mapping_system("127.21.2.10", 1, 65001, "192.0.2.0/24", "lab-psk", "") + sub_cfg),
    );
    let mut as2 = Agent::start(
        "sub65002",
        "127.21.2.20",
        // Short registration TTL: a stopped ETR's mapping is withdrawn soon.
        &(mapping_system("127.21.2.20", 2, 65002, "203.0.113.0/24", "lab-psk", "")
            .replace("ms_id = 2\n", "ms_id = 2\nregistration_ttl_secs = 6\n")
            + sub_cfg),
    );
    let _etr = Agent::start(
        "subetr2",
        "127.21.2.21",
        &etr("127.21.2.20", "203.0.113.0/26", "127.21.2.21"),
    );
    wait_for("first ETR registered", LONG, || {
        registered(&as2, "203.0.113.0/26").then_some(())
    });
    announce(&as1, "127.21.2.20", 2, 65002, "203.0.113.0/24");
    let sub = wait_for("subscription active at the subscriber", LONG, || {
        subscriptions(&as1, "subscriber")
            .into_iter()
            .find(|s| s["state"] == "active")
    });
    assert_eq!(
        sub["filters"],
        serde_json::json!(["::ffff:203.0.113.0/120"])
    );
    let prov = wait_for("subscription held by the provider", LONG, || {
        subscriptions(&as2, "provider").into_iter().next()
    });
    assert_eq!(prov["agreement_id"], sub["agreement_id"]);
    // The copy starts from Map-Bulk once the subscription runs.
    wait_for("bulk copy of the first prefix", LONG, || {
        copied(&as1, "203.0.113.0/26")
    });

    // New: a second ETR registers; the publication reaches AS65001's copy.
    let started = std::time::Instant::now();
    let mut etr2b = Agent::start(
        "subetr2b",
        "127.21.2.22",
        &etr("127.21.2.20", "203.0.113.128/26", "127.21.2.22"),
    );
    let rlocs = wait_for("new registration published", LONG, || {
        copied(&as1, "203.0.113.128/26")
    });
    eprintln!(
        "new registration reached the copy in {:.0} ms (incl. the ETR's start)",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(rlocs, vec!["127.21.2.22"]);
    assert!(as1.counter("msx.publication.rx") >= 2, "hello + update");

    // Changed: the ETR now registers another locator.
    etr2b.reload(&etr("127.21.2.20", "203.0.113.128/26", "127.21.2.23"));
    wait_for("changed locators published", LONG, || {
        (copied(&as1, "203.0.113.128/26")? == vec!["127.21.2.23".to_string()]).then_some(())
    });

    // Withdrawn: the ETR stops; at registration expiry the mapping goes.
    etr2b.stop();
    wait_for("withdrawal published", Duration::from_secs(60), || {
        copied(&as1, "203.0.113.128/26").is_none().then_some(())
    });
    assert!(copied(&as1, "203.0.113.0/26").is_some(), "the rest stays");

    // The provider restarts and forgets the subscription: the subscriber
    // notices (epoch) at the next publication or renewal and resynchronizes.
    as2.restart();
    let _etr2c = Agent::start(
        "subetr2c",
        "127.21.2.24",
        &etr("127.21.2.20", "203.0.113.192/26", "127.21.2.24"),
    );
    wait_for("resynchronized after the provider restart", LONG, || {
        copied(&as1, "203.0.113.192/26")
    });
    assert!(
        as2.log().contains("subscriptions restored"),
        "the provider kept its subscriber across the restart"
    );

    // The subscriber restarts (new ITR identifier): its old subscription at
    // the provider is replaced, not kept beside the new one.
    as1.restart();
    wait_for(
        "one provider-side subscription after the subscriber restart",
        LONG,
        || {
            let subs = subscriptions(&as2, "provider");
            (subs.len() == 1 && copied(&as1, "203.0.113.192/26").is_some()).then_some(())
        },
    );
    as1.stop();
}

#[test]
fn subscription_with_wrong_key_or_without_agreement_is_refused() {
    // A subscriber with a key the provider does not share is refused and
    // logged; without an agreement, FILTERS-PROHIBITED.
    use lisp_msx_proto::lisp::auth::AuthAlg;
    use lisp_msx_proto::msx::{ExtCodepoints, Filter, MapSubscribe, SubscribeResult};
    let as2 = Agent::start(
        "subno65002",
        "127.21.3.20",
        &mapping_system("127.21.3.20", 2, 65002, "203.0.113.0/24", "lab-psk", ""),
    );
    let sock = std::net::UdpSocket::bind("127.21.3.30:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let cp = ExtCodepoints::default();
    let req = |psk: &str, nonce: u64| {
        MapSubscribe {
            itr_id: 7,
            nonce,
            key_id: 1,
            alg: AuthAlg::HMAC_SHA256_128,
            expiry: 60,
            filters: vec![Filter::Any],
            ..Default::default()
        }
        .encode_signed(cp.subscribe, psk.as_bytes())
        .unwrap()
    };
    // Wrong key: no answer, counted as an authentication failure.
    let before = as2.counter("auth.failure");
    sock.send_to(&req("not-the-key", 1), "127.21.3.20:4342")
        .unwrap();
    wait_for("wrong key refused", LONG, || {
        (as2.counter("auth.failure") > before).then_some(())
    });
    assert!(
        as2.log()
            .contains("Map-Subscribe refused: authentication failed")
    );
    // Right key, no agreement: an Ack with FILTERS-PROHIBITED.
    let ack = wait_for("prohibited ack", LONG, || {
        sock.send_to(&req("lab-psk", 2), "127.21.3.20:4342").ok()?;
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).ok()?;
        match lisp_msx_proto::LispMessage::decode_with(&buf[..n], &cp).ok()? {
            lisp_msx_proto::LispMessage::Extension(lisp_msx_proto::msx::ExtMessage::Subscribe(
                m,
            )) => Some(m),
            _ => None,
        }
    });
    assert!(ack.ack);
    assert_eq!(ack.result, SubscribeResult::PROHIBITED);
    assert_eq!(ack.nonce, 2);
    assert!(ack.filters.is_empty());
    assert!(subscriptions(&as2, "provider").is_empty());
}

/// PEM files of a CA and of certificates naming `ips`, in `dir`.
fn tls_files(dir: &std::path::Path, tag: &str, ips: &[&str]) {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join(format!("{tag}-ca.pem")), ca.pem()).unwrap();
    for ip in ips {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![ip.to_string()]).unwrap();
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{tag}-{ip}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{tag}-{ip}.key")), key.serialize_pem()).unwrap();
    }
}

fn tls_section(dir: &std::path::Path, tag: &str, ip: &str, ca_tag: &str) -> String {
    format!(
        "[msx.tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        dir.join(format!("{tag}-{ip}.pem")).display(),
        dir.join(format!("{tag}-{ip}.key")).display(),
        dir.join(format!("{ca_tag}-ca.pem")).display()
    )
}

#[test]
fn negotiation_over_tls_with_client_certificates() {
    let pki = tempfile::tempdir().unwrap();
    tls_files(pki.path(), "good", &["127.21.4.10", "127.21.4.20"]);
    tls_files(pki.path(), "rogue", &["127.21.4.30"]);
    let d = pki.path();
    let as1 = Agent::start(
        "tls65001",
        "127.21.4.10",
        &(mapping_system("127.21.4.10", 1, 65001, "192.0.2.0/24", "lab-psk", "")
            + &tls_section(d, "good", "127.21.4.10", "good")),
    );
    let as2 = Agent::start(
        "tls65002",
        "127.21.4.20",
        &(mapping_system("127.21.4.20", 2, 65002, "203.0.113.0/24", "lab-psk", "")
            + &tls_section(d, "good", "127.21.4.20", "good")),
    );
    announce(&as1, "127.21.4.20", 2, 65002, "203.0.113.0/24");
    wait_for("agreement over TLS (client side)", LONG, || {
        agreements(&as1).into_iter().find(|a| a["role"] == "client")
    });
    wait_for("agreement over TLS (server side)", LONG, || {
        agreements(&as2).into_iter().find(|a| a["role"] == "server")
    });
    assert!(as1.log().contains("tls=true"), "{}", as1.log());

    // A system whose certificate another CA signed (same PSK) is refused by
    // both sides' verification: no agreement, counted, logged.
    let rogue = Agent::start(
        "tlsrogue",
        "127.21.4.30",
        &(mapping_system("127.21.4.30", 3, 65003, "198.51.100.0/24", "lab-psk", "")
            + &tls_section(d, "rogue", "127.21.4.30", "rogue")),
    );
    let before = as2.counter("auth.failure");
    announce(&rogue, "127.21.4.20", 2, 65002, "203.0.113.0/24");
    wait_for("rogue certificate refused", LONG, || {
        (as2.counter("auth.failure") > before).then_some(())
    });
    assert!(as2.log().contains("TLS handshake failed"), "{}", as2.log());
    assert!(
        !agreements(&rogue).iter().any(|a| a["role"] == "client"),
        "no agreement for the rogue system"
    );

    // A missing key file is a configuration error naming the field.
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        mapping_system("127.21.4.40", 4, 65004, "198.51.100.0/24", "lab-psk", "")
            + "[msx.tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\nca = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lisp-agent"))
        .args(["--check", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("msx.tls.cert"),
        "{err}"
    );
}
