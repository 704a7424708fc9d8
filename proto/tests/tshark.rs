//! Independent decoder check: our packets, written to a pcap, dissected by
//! tshark (Debian package), which must report what we encoded.

mod common;

use std::net::Ipv4Addr;

use common::pcap::{Pcap, all, dissect, first};
use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix, LispAddr};

const ITR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn v4(s: &str) -> Addr {
    s.parse::<Addr>().unwrap()
}

fn locators() -> Vec<Locator> {
    vec![
        Locator::new(v4("198.51.100.10"), 1, 50),
        Locator::new("2001:db8::10".parse::<Addr>().unwrap(), 2, 50),
    ]
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("lisp-msx-{}-{name}.pcap", std::process::id()))
}

#[test]
fn tshark_decodes_our_lisp_control_messages() {
    let mut pcap = Pcap::new();
    let mut buf = Vec::new();

    // 1: Map-Request
    let mut req = MapRequest::new(
        0x1111_2222_3333_4444,
        EidPrefix::new(v4("203.0.113.0"), 26),
        v4("192.0.2.1"),
    );
    req.source_eid = LispAddr::plain(v4("192.0.2.10"));
    req.flags.smr = true;
    req.encode(&mut buf).unwrap();
    pcap.udp(ITR, MR, 40000, 4342, &buf);

    // 2: Map-Reply, 1 record, 2 locators (IPv4 and IPv6)
    buf.clear();
    let rec = EidRecord::new(EidPrefix::new(v4("203.0.113.0"), 26), 1440, locators());
    MapReply::new(0x1111_2222_3333_4444, vec![rec.clone()])
        .encode(&mut buf)
        .unwrap();
    pcap.udp(MR, ITR, 4342, 40000, &buf);

    // 3: Map-Register (HMAC-SHA-256-128, xTR-ID), 2 records incl. an IPv6 EID with instance id
    let rec6 = EidRecord::new(
        EidPrefix::new(
            LispAddr::with_iid("2001:db8:100::".parse::<Addr>().unwrap(), 7),
            48,
        ),
        1440,
        locators(),
    );
    let reg = MapRegister {
        flags: RegisterFlags {
            proxy_reply: true,
            want_map_notify: true,
            ..Default::default()
        },
        body: AuthenticatedBody {
            nonce: 0xAAAA_0000_0000_0001,
            key_id: 0,
            alg: AuthAlg::HMAC_SHA256_128,
            auth_data: vec![],
            records: vec![rec.clone(), rec6],
            xtr_site: Some(XtrSiteId {
                xtr_id: 0x42,
                site_id: 0x43,
            }),
        },
    };
    let signed = reg.encode_signed(b"key").unwrap();
    pcap.udp(ITR, MR, 40001, 4342, &signed);

    // 4: Map-Notify acknowledging it
    let notify = MapNotify::acknowledging(&reg)
        .encode_signed(false, b"key")
        .unwrap();
    pcap.udp(MR, ITR, 4342, 40001, &notify);

    // 5: Map-Referral (MS-REFERRAL with one referral)
    buf.clear();
    MapReferral {
        nonce: 0xBBBB_0000_0000_0002,
        records: vec![ReferralRecord {
            ttl: 1440,
            eid: EidPrefix::new(v4("203.0.113.0"), 24),
            action: ReferralAction::MS_REFERRAL,
            authoritative: true,
            incomplete: false,
            map_version: 0,
            referrals: vec![Locator::new(v4("198.51.100.20"), 0, 0)],
            signatures: vec![],
        }],
    }
    .encode(&mut buf)
    .unwrap();
    pcap.udp(MR, ITR, 4342, 40002, &buf);

    // 6: ECM carrying a Map-Request
    buf.clear();
    let inner = InnerHeader::new(
        "192.0.2.10".parse().unwrap(),
        "203.0.113.5".parse().unwrap(),
        40003,
        4342,
    );
    let inner_req = MapRequest::new(
        0xCCCC_0000_0000_0003,
        EidPrefix::host(v4("203.0.113.5")),
        v4("192.0.2.1"),
    );
    Ecm::new(inner, LispMessage::MapRequest(inner_req))
        .encode(&mut buf)
        .unwrap();
    pcap.udp(ITR, MR, 40003, 4342, &buf);

    let path = tmp("control");
    std::fs::write(&path, pcap.as_bytes()).unwrap();
    let pkts = dissect(&path, &[]);
    if std::env::var_os("KEEP_PCAP").is_none() {
        std::fs::remove_file(&path).ok();
    }
    assert_eq!(pkts.len(), 6);

    // Map-Request
    let p = &pkts[0];
    assert_eq!(first(p, "lisp.type"), "1");
    assert_eq!(first(p, "lisp.nonce"), "0x1111222233334444");
    assert_eq!(first(p, "lisp.records"), "1");
    assert_eq!(first(p, "lisp.mreq.flags.smr"), "1");
    assert_eq!(first(p, "lisp.mreq.srceid.ipv4"), "192.0.2.10");
    assert_eq!(first(p, "lisp.mreq.itr_rloc_ipv4"), "192.0.2.1");
    assert_eq!(first(p, "lisp.mreq.record.prefix.ipv4"), "203.0.113.0");
    assert_eq!(first(p, "lisp.mreq.record.prefix.length"), "26");

    // Map-Reply
    let p = &pkts[1];
    assert_eq!(first(p, "lisp.type"), "2");
    assert_eq!(first(p, "lisp.nonce"), "0x1111222233334444");
    assert_eq!(first(p, "lisp.records"), "1");
    assert_eq!(first(p, "lisp.mapping.eid.ipv4"), "203.0.113.0");
    assert_eq!(first(p, "lisp.mapping.eid.masklen"), "26");
    assert_eq!(first(p, "lisp.mapping.ttl"), "1440");
    assert_eq!(first(p, "lisp.mapping.loccnt"), "2");
    assert_eq!(
        all(p, "lisp.loc.locator"),
        vec!["198.51.100.10", "2001:db8::10"]
    );
    assert_eq!(all(p, "lisp.loc.priority"), vec!["1", "2"]);

    // Map-Register: tshark reads Key ID as the older 16-bit field (0x0002 = key 0, alg 2).
    let p = &pkts[2];
    assert_eq!(first(p, "lisp.type"), "3");
    assert_eq!(first(p, "lisp.nonce"), "0xaaaa000000000001");
    assert_eq!(first(p, "lisp.records"), "2");
    assert_eq!(first(p, "lisp.mreg.flags.pmr"), "1");
    assert_eq!(first(p, "lisp.mreg.flags.wmn"), "1");
    assert_eq!(first(p, "lisp.mreg.flags.xtrid"), "1");
    assert_eq!(
        u16::from_str_radix(first(p, "lisp.keyid").trim_start_matches("0x"), 16).unwrap(),
        2
    );
    assert_eq!(first(p, "lisp.authlen"), "32");
    assert_eq!(first(p, "lisp.mapping.eid.ipv4"), "203.0.113.0");
    assert_eq!(first(p, "lisp.lcaf.iid"), "7");
    assert_eq!(first(p, "lisp.lcaf.iid.ipv6"), "2001:db8:100::");
    assert_eq!(all(p, "lisp.loc.locator").len(), 4);
    assert_eq!(
        first(p, "lisp.xtrid").replace(':', ""),
        format!("{:032x}", 0x42)
    );

    // Map-Notify
    let p = &pkts[3];
    assert_eq!(first(p, "lisp.type"), "4");
    assert_eq!(first(p, "lisp.nonce"), "0xaaaa000000000001");
    assert_eq!(first(p, "lisp.records"), "2");

    // Map-Referral
    let p = &pkts[4];
    assert_eq!(first(p, "lisp.type"), "6");
    assert_eq!(first(p, "lisp.nonce"), "0xbbbb000000000002");
    assert_eq!(first(p, "lisp.mapping.eid.ipv4"), "203.0.113.0");
    assert_eq!(first(p, "lisp.mapping.eid.masklen"), "24");
    assert_eq!(first(p, "lisp.loc.locator"), "198.51.100.20");
    // tshark names referral action 1 "Map-Server Referral".
    assert_eq!(first(p, "lisp.mapping.act"), "1");
    assert_eq!(first(p, "lisp.mapping.auth"), "1");

    // ECM: outer type 8, and tshark follows the inner IP/UDP into the Map-Request.
    let p = &pkts[5];
    assert_eq!(all(p, "lisp.type"), vec!["8", "1"]);
    assert_eq!(first(p, "lisp.nonce"), "0xcccc000000000003");
    assert!(
        all(p, "ip.dst").contains(&"203.0.113.5".to_string()),
        "inner IP header decoded"
    );
    assert_eq!(first(p, "lisp.mreq.record.prefix.ipv4"), "203.0.113.5");
    assert_eq!(first(p, "lisp.mreq.record.prefix.length"), "32");
}

/// A BGP UPDATE announcing `nlri` (IPv4) with the given path attributes.
fn bgp_update(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    let len = 19 + 2 + 2 + attrs.len() + nlri.len();
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2); // UPDATE
    m.extend_from_slice(&0u16.to_be_bytes()); // no withdrawn routes
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags | 0x10, code]; // extended length, always
    a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    a.extend_from_slice(value);
    a
}

#[test]
fn tshark_decodes_our_bgp_community_and_ospf_ri_lsa() {
    use lisp_msx_proto::bgp::{MsTarget, MsTargetCodepoint};
    use lisp_msx_proto::ospf::lsa::OpaqueLsa;
    use lisp_msx_proto::ospf::msfd::{DEFAULT_MSFD_TLV_TYPE, MsStatus, MsfStatus, MsfType, Msfd};

    let cp = MsTargetCodepoint::default();
    let v4 = MsTarget::new("198.51.100.2".parse::<std::net::IpAddr>().unwrap(), 1);
    let v6 = MsTarget::new("2001:db8::2".parse::<std::net::IpAddr>().unwrap(), 7);
    let ec4 = v4.to_bytes(&cp);
    let ec6 = v6.to_bytes(&cp);
    assert_eq!(ec4.len(), 8);
    assert_eq!(ec6.len(), 20);

    let mut attrs = Vec::new();
    attrs.extend(attr(0x40, 1, &[0])); // ORIGIN IGP
    attrs.extend(attr(0x40, 2, &[2, 1, 0, 0, 0xFE, 0x0A])); // AS_PATH: AS_SEQUENCE [65034]
    attrs.extend(attr(0x40, 3, &[198, 51, 100, 2])); // NEXT_HOP
    attrs.extend(attr(0xC0, 16, &ec4)); // EXTENDED COMMUNITIES (optional transitive)
    attrs.extend(attr(0xC0, 25, &ec6)); // IPv6 ADDRESS SPECIFIC EXTENDED COMMUNITY
    let update = bgp_update(&attrs, &[26, 203, 0, 113, 0]);

    let msfd = Msfd {
        function: MsfType::Both,
        locators: vec!["192.0.2.3".parse().unwrap(), "2001:db8::3".parse().unwrap()],
        description: Some("r3 MS/MR".into()),
        epoch: Some(1),
        msf_status: Some(MsfStatus::Enabled),
        ms_status: Some(MsStatus::Synchronized),
        capabilities: Some(0xE000_0000),
        ..Default::default()
    };
    let tlv = msfd.to_tlv(DEFAULT_MSFD_TLV_TYPE).unwrap();
    let mut body = Vec::new();
    tlv.encode(&mut body).unwrap();
    let tlv_len = u16::from_be_bytes([body[2], body[3]]);
    let mut lsa = OpaqueLsa::new(10, 4, 1, "192.0.2.3".parse().unwrap(), body);
    lsa.header.seq = 0x8000_0001;
    lsa.header.age = 1;
    lsa.compute_checksum().unwrap();
    let lsa_bytes = lsa.to_bytes().unwrap();
    // OSPFv2 LS Update: header (24 bytes, null auth), #LSAs, the LSA.
    let mut ospf = vec![
        2, 4, 0, 0, 192, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    ospf.extend_from_slice(&1u32.to_be_bytes());
    ospf.extend_from_slice(&lsa_bytes);
    let ospf_len = ospf.len() as u16;
    ospf[2..4].copy_from_slice(&ospf_len.to_be_bytes());
    let sum: u32 = ospf
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    let c = !(((sum & 0xFFFF) + (sum >> 16)) as u16);
    ospf[12..14].copy_from_slice(&c.to_be_bytes());

    let mut pcap = Pcap::new();
    pcap.tcp(
        Ipv4Addr::new(198, 51, 100, 2),
        Ipv4Addr::new(198, 51, 100, 1),
        179,
        40000,
        &update,
    );
    pcap.ipv4(
        Ipv4Addr::new(198, 51, 100, 3),
        Ipv4Addr::new(224, 0, 0, 5),
        89,
        &ospf,
    );
    let path = tmp("bgp-ospf");
    std::fs::write(&path, pcap.as_bytes()).unwrap();
    let pkts = dissect(&path, &[]);
    if std::env::var_os("KEEP_PCAP").is_none() {
        std::fs::remove_file(&path).ok();
    }
    assert_eq!(pkts.len(), 2);

    // BGP: tshark decodes the IPv4-address-specific community field by field.
    let p = &pkts[0];
    assert_eq!(first(p, "bgp.type"), "2");
    assert_eq!(first(p, "bgp.nlri_prefix"), "203.0.113.0");
    assert_eq!(first(p, "bgp.prefix_length"), "26");
    assert_eq!(first(p, "bgp.ext_com.type"), "0x01");
    assert_eq!(first(p, "bgp.ext_com.stype_tr_IP4"), "0xb0");
    assert_eq!(first(p, "bgp.ext_com.value_IP4"), "198.51.100.2");
    assert_eq!(first(p, "bgp.ext_com.value_an2"), "1");
    // Attribute 25 (RFC 5701) is not dissected by tshark 4.0: only its code and length show.
    let codes = all(p, "bgp.update.path_attribute.type_code");
    let lens = all(p, "bgp.update.path_attribute.length");
    let i = codes
        .iter()
        .position(|c| c == "25")
        .expect("attribute 25 present");
    assert_eq!(lens[i], "20");

    // OSPF: the LS Update carries our area-scoped RI LSA, instance 1, with the
    // MSFD TLV (type 32768) whose raw value is exactly what we encoded.
    let p = &pkts[1];
    assert_eq!(first(p, "ospf.lsa"), "10");
    assert_eq!(first(p, "ospf.lsid_opaque_type"), "4");
    assert_eq!(first(p, "ospf.lsid.opaque_id"), "1");
    assert_eq!(first(p, "ospf.advrouter"), "192.0.2.3");
    assert_eq!(first(p, "ospf.lsa.length"), lsa_bytes.len().to_string());
    assert_eq!(
        first(p, "ospf.lsa.chksum"),
        format!("0x{:04x}", lsa.header.checksum)
    );
    assert_eq!(first(p, "ospf.tlv_type.opaque"), "32768");
    assert_eq!(first(p, "ospf.tlv_length"), tlv_len.to_string());
    let raw: Vec<u8> = first(p, "ospf.tlv.unknown")
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    assert_eq!(raw, lsa.body[4..4 + usize::from(tlv_len)]);
    assert_eq!(Msfd::decode_value(&raw).unwrap(), msfd);
}
