//! Codec self-check: builds one of every LISP/MSX message, round-trips it,
//! and, when tshark is installed, has tshark dissect the lot.
//! Run: cargo run -p lisp-msx-proto --example selfcheck

use std::net::Ipv4Addr;
use std::process::Command;

use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::msx::*;
use lisp_msx_proto::pcap::Pcap;
use lisp_msx_proto::{Addr, EidPrefix, LispMessage};

fn a(s: &str) -> Addr {
    s.parse().expect("literal address")
}

fn samples() -> Vec<LispMessage> {
    let eid = EidPrefix::new(a("203.0.113.0"), 26);
    let rec = EidRecord::new(
        eid,
        1440,
        vec![
            Locator::new(a("198.51.100.10"), 1, 50),
            Locator::new(a("2001:db8::10"), 2, 50),
        ],
    );
    let req = MapRequest::new(1, EidPrefix::host(a("203.0.113.9")), a("192.0.2.1"));
    let body = AuthenticatedBody {
        nonce: 2,
        key_id: 1,
        alg: AuthAlg::HMAC_SHA256_128,
        auth_data: vec![0; 32],
        records: vec![rec.clone()],
        xtr_site: Some(XtrSiteId {
            xtr_id: 1,
            site_id: 1,
        }),
    };
    vec![
        LispMessage::MapRequest(req.clone()),
        LispMessage::MapReply(MapReply::new(1, vec![rec.clone()])),
        LispMessage::MapRegister(MapRegister {
            flags: RegisterFlags {
                proxy_reply: true,
                want_map_notify: true,
                ..Default::default()
            },
            body: body.clone(),
        }),
        LispMessage::MapNotify(MapNotify { body: body.clone() }),
        LispMessage::MapNotifyAck(MapNotify { body }),
        LispMessage::MapReferral(MapReferral {
            nonce: 3,
            records: vec![ReferralRecord {
                ttl: 1440,
                eid: EidPrefix::new(a("203.0.113.0"), 24),
                action: ReferralAction::MS_REFERRAL,
                referrals: vec![Locator::new(a("198.51.100.20"), 0, 0)],
                ..Default::default()
            }],
        }),
        LispMessage::Ecm(Ecm::new(
            InnerHeader::new(
                "192.0.2.1".parse().unwrap(),
                "203.0.113.9".parse().unwrap(),
                40000,
                CONTROL_PORT,
            ),
            LispMessage::MapRequest(req),
        )),
        LispMessage::Extension(ExtMessage::Subscribe(MapSubscribe {
            immediate: true,
            itr_id: 7,
            nonce: 4,
            expiry: 600,
            filters: vec![Filter::parse("203.0.113.0/24").unwrap(), Filter::As(65002)],
            ..Default::default()
        })),
        LispMessage::Extension(ExtMessage::BulkRequest(MapBulkRequest {
            transaction_id: 5,
            filters: vec![Filter::Any],
        })),
        LispMessage::Extension(ExtMessage::BulkReply(MapBulkReply {
            transaction_id: 5,
            records: vec![rec],
            ..Default::default()
        })),
        LispMessage::Extension(ExtMessage::Solicit(MapSolicit {
            itr_id: 1,
            nonce: 6,
            sync_set: 1,
            sync_mode: SyncMode::SMART,
            rlocs: vec![a("192.0.2.1")],
            ..Default::default()
        })),
    ]
}

fn main() {
    println!("lisp-msx codec self-check");
    println!(
        "{:<22} {:>6}  {:<10} first bytes",
        "message", "bytes", "round-trip"
    );
    let mut pcap = Pcap::new();
    let mut failures = 0;
    for msg in samples() {
        let bytes = msg.to_bytes().expect("sample encodes");
        let ok = LispMessage::decode(&bytes).as_ref() == Ok(&msg);
        failures += usize::from(!ok);
        let head: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
        println!(
            "{:<22} {:>6}  {:<10} {head}",
            msg.name(),
            bytes.len(),
            if ok { "ok" } else { "FAILED" }
        );
        pcap.udp(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 1),
            40000,
            CONTROL_PORT,
            &bytes,
        );
    }
    let path = std::env::temp_dir().join("lisp-msx-selfcheck.pcap");
    std::fs::write(&path, pcap.as_bytes()).expect("temp dir is writable");
    match Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .output()
    {
        Ok(out) if out.status.success() => {
            println!("\ntshark's view of the same packets ({}):", path.display());
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        _ => println!("\n(tshark not installed: skipping the independent decoder view)"),
    }
    if failures > 0 {
        eprintln!("{failures} message(s) failed the round trip");
        std::process::exit(1);
    }
}
