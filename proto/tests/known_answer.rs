//! Known-answer tests: byte vectors built by hand from the RFC/draft layouts,
//! and authentication checked against an independent HMAC computation.

use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use lisp_msx_proto::lisp::auth::{AuthAlg, AuthError};
use lisp_msx_proto::lisp::map_register::verify_packet;
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::msx::*;
use lisp_msx_proto::{Addr, DecodeError, EidPrefix, LispAddr};
use sha2::Sha256;

fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
    Addr::v4(Ipv4Addr::new(a, b, c, d))
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

#[test]
fn map_request_layout() {
    // Type 1, S and s bits, IRC 0, 1 record; nonce; source EID AFI 0;
    // ITR-RLOC 192.0.2.1; record: rsvd 0, mask-len 24, AFI 1, 203.0.113.0.
    let bytes = h("11400001 0102030405060708 0000 0001c0000201 00 18 0001 cb007100");
    let m = MapRequest::decode(&bytes).unwrap();
    assert!(m.flags.smr && m.flags.smr_invoked && !m.flags.probe);
    assert_eq!(m.nonce, 0x0102030405060708);
    assert_eq!(m.source_eid, LispAddr::plain(Addr::None));
    assert_eq!(m.itr_rlocs.as_slice(), &[v4(192, 0, 2, 1)]);
    assert_eq!(m.records[0].eid, EidPrefix::new(v4(203, 0, 113, 0), 24));

    let mut built = MapRequest::new(
        0x0102030405060708,
        EidPrefix::new(v4(203, 0, 113, 0), 24),
        v4(192, 0, 2, 1),
    );
    built.flags.smr = true;
    built.flags.smr_invoked = true;
    let mut out = Vec::new();
    built.encode(&mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn map_request_pubsub_bits() {
    // I bit (bit 11) with xTR-ID/Site-ID, N bit on the record (RFC 9437).
    let mut m = MapRequest::new(7, EidPrefix::new(v4(203, 0, 113, 0), 24), v4(192, 0, 2, 1));
    m.records[0].notify = true;
    m.xtr_site = Some(XtrSiteId {
        xtr_id: 0xAA,
        site_id: 0xBB,
    });
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    assert_eq!(&out[..4], &h("10100001")[..]);
    assert_eq!(out[20], 0x80, "N bit is the record's most significant bit");
    assert_eq!(
        &out[out.len() - 24..],
        &h("000000000000000000000000000000AA 00000000000000BB")[..]
    );
}

#[test]
fn map_reply_one_record_four_locators() {
    let mut rec = EidRecord::new(EidPrefix::new(v4(203, 0, 113, 0), 26), 1440, vec![]);
    rec.authoritative = true;
    for i in 1..=4 {
        rec.locators.push(Locator::new(v4(198, 51, 100, i), i, 25));
    }
    let msg = MapReply::new(0xDEADBEEF00000001, vec![rec]);
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    let expected = h(concat!(
        "20000001 DEADBEEF00000001",
        "000005A0 04 1A 1000 0000 0001 CB007100",
        "01 19 FF 00 0001 0001 C6336401",
        "02 19 FF 00 0001 0001 C6336402",
        "03 19 FF 00 0001 0001 C6336403",
        "04 19 FF 00 0001 0001 C6336404",
    ));
    assert_eq!(out, expected);
    assert_eq!(
        LispMessage::decode(&expected).unwrap(),
        LispMessage::MapReply(msg)
    );
}

#[test]
fn negative_map_reply_carries_action() {
    let rec = EidRecord::negative(
        EidPrefix::new(v4(192, 0, 2, 0), 24),
        15,
        Action::NATIVELY_FORWARD,
    );
    let mut out = Vec::new();
    MapReply::new(1, vec![rec]).encode(&mut out).unwrap();
    // TTL 15, 0 locators, mask-len 24, ACT=1 in the top 3 bits.
    assert_eq!(&out[12..20], &h("0000000F 00 18 2000")[..]);
}

fn sample_register(alg: AuthAlg) -> MapRegister {
    let rec = EidRecord::new(
        EidPrefix::new(v4(192, 0, 2, 0), 26),
        1440,
        vec![Locator::new(v4(198, 51, 100, 10), 1, 100)],
    );
    MapRegister {
        flags: RegisterFlags {
            proxy_reply: true,
            want_map_notify: true,
            ..Default::default()
        },
        body: AuthenticatedBody {
            nonce: 0x1122334455667788,
            key_id: 1,
            alg,
            auth_data: vec![],
            records: vec![rec],
            xtr_site: Some(XtrSiteId {
                xtr_id: 1,
                site_id: 2,
            }),
        },
    }
}

#[test]
fn map_register_hmac_sha256_matches_independent_computation() {
    let key = b"lab-secret-key";
    let reg = sample_register(AuthAlg::HMAC_SHA256_128);
    let signed = reg.encode_signed(key).unwrap();
    // Header: Type 3, P, I (xTR-ID present), M; key id 1, alg 2, 32 bytes of auth data.
    assert_eq!(&signed[..4], &h("3A000101")[..]);
    assert_eq!(&signed[12..16], &h("0102 0020")[..]);

    // Independent: HMAC-SHA-256 over the message with the 32 auth bytes zeroed.
    let mut zeroed = signed.clone();
    zeroed[16..48].fill(0);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(&zeroed);
    let expected = mac.finalize().into_bytes();
    assert_eq!(&signed[16..48], &expected[..]);

    verify_packet(&signed, key).unwrap();
    assert_eq!(
        verify_packet(&signed, b"wrong key").unwrap_err(),
        AuthError::Mismatch
    );

    // Tampering with any covered byte, the xTR-ID trailer included, fails.
    for pos in [5, 60, signed.len() - 1] {
        let mut tampered = signed.clone();
        tampered[pos] ^= 0x01;
        assert_eq!(
            verify_packet(&tampered, key).unwrap_err(),
            AuthError::Mismatch,
            "byte {pos}"
        );
    }

    // A sender that truncates to 128 bits (RFC 4868) is accepted; shorter is refused.
    let with_auth_len = |n: usize| {
        let mut p = signed[..16].to_vec();
        p[14..16].copy_from_slice(&(n as u16).to_be_bytes());
        p.extend(std::iter::repeat_n(0, n));
        p.extend_from_slice(&signed[48..]);
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(&p);
        let d = mac.finalize().into_bytes();
        p[16..16 + n].copy_from_slice(&d[..n]);
        p
    };
    verify_packet(&with_auth_len(16), key).unwrap();
    let short = with_auth_len(8);
    assert!(matches!(
        verify_packet(&short, key),
        Err(AuthError::TooShort { .. })
    ));

    // The decoded message is the original with its auth data filled in.
    let LispMessage::MapRegister(back) = LispMessage::decode(&signed).unwrap() else {
        panic!("not a register")
    };
    assert_eq!(back.body.records, reg.body.records);
    assert_eq!(back.body.auth_data, &expected[..]);
}

#[test]
fn map_register_hmac_sha1_and_hkdf_variants() {
    let key = b"k";
    let signed = sample_register(AuthAlg::HMAC_SHA1_96)
        .encode_signed(key)
        .unwrap();
    let mut zeroed = signed.clone();
    zeroed[16..36].fill(0);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(&zeroed);
    assert_eq!(&signed[16..36], &mac.finalize().into_bytes()[..]);
    verify_packet(&signed, key).unwrap();

    // Algorithm 3: per-msg-key = HKDF-SHA256(salt "Map-Register Authentication", nonce ‖ PSK).
    let signed = sample_register(AuthAlg::HMAC_SHA256_128_HKDF)
        .encode_signed(key)
        .unwrap();
    let mut ikm = 0x1122334455667788u64.to_be_bytes().to_vec();
    ikm.extend_from_slice(key);
    let mut pmk = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(b"Map-Register Authentication"), &ikm)
        .expand(&[], &mut pmk)
        .unwrap();
    let mut zeroed = signed.clone();
    zeroed[16..48].fill(0);
    let mut mac = Hmac::<Sha256>::new_from_slice(&pmk).unwrap();
    mac.update(&zeroed);
    assert_eq!(&signed[16..48], &mac.finalize().into_bytes()[..]);
    verify_packet(&signed, key).unwrap();
}

#[test]
fn map_notify_uses_its_own_salt() {
    let reg = sample_register(AuthAlg::HMAC_SHA256_128_HKDF);
    let notify = MapNotify::acknowledging(&reg);
    let n = notify.encode_signed(false, b"k").unwrap();
    let ack = notify.encode_signed(true, b"k").unwrap();
    assert_eq!(n[0] >> 4, 4);
    assert_eq!(ack[0] >> 4, 5);
    assert_ne!(
        n[16..48],
        ack[16..48],
        "different salts give different MACs"
    );
    verify_packet(&n, b"k").unwrap();
    verify_packet(&ack, b"k").unwrap();
}

#[test]
fn map_referral_layout() {
    let rec = ReferralRecord {
        ttl: 1440,
        eid: EidPrefix::new(v4(203, 0, 113, 0), 24),
        action: ReferralAction::MS_REFERRAL,
        authoritative: true,
        incomplete: false,
        map_version: 0,
        referrals: vec![Locator::new(v4(198, 51, 100, 7), 0, 0)],
        signatures: vec![],
    };
    let mut out = Vec::new();
    MapReferral {
        nonce: 9,
        records: vec![rec],
    }
    .encode(&mut out)
    .unwrap();
    let expected = h(
        "60000001 0000000000000009 000005A0 01 18 3000 0000 0001 CB007100 00 00 FF 00 0001 0001 C6336407",
    );
    assert_eq!(out, expected);
}

#[test]
fn ecm_inner_headers_are_valid_ip_and_udp() {
    let req = MapRequest::new(5, EidPrefix::host(v4(203, 0, 113, 9)), v4(192, 0, 2, 1));
    let inner = InnerHeader::new(
        "192.0.2.1".parse().unwrap(),
        "203.0.113.9".parse().unwrap(),
        40000,
        4342,
    );
    let ecm = Ecm::new(inner, LispMessage::MapRequest(req.clone()));
    let mut out = Vec::new();
    ecm.encode(&mut out).unwrap();
    assert_eq!(&out[..4], &h("80000000")[..]);
    let ip = &out[4..24];
    assert_eq!(ip[0], 0x45);
    // The IPv4 header checksum verifies (sum of all 16-bit words = 0xFFFF).
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let folded = (sum & 0xFFFF) + (sum >> 16);
    assert_eq!(folded, 0xFFFF);
    assert_eq!(u16::from_be_bytes([out[26], out[27]]), 4342);
    let (hdr, payload) = Ecm::decode_headers(&out).unwrap();
    assert_eq!(hdr.inner, inner);
    assert_eq!(MapRequest::decode(payload).unwrap(), req);

    // A corrupted inner header checksum is refused with a named field.
    let mut bad = out.clone();
    bad[14] ^= 0xFF;
    let err = LispMessage::decode(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Invalid {
                field: "ECM inner IPv4 checksum",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn subscribe_ack_layout() {
    let ack = MapSubscribe {
        ack: true,
        unsolicited: true,
        bulk: true,
        immediate: false,
        result: SubscribeResult::PARTIAL_BAD,
        itr_id: 0x01020304,
        nonce: 0x0A,
        key_id: 0,
        alg: AuthAlg::NONE,
        auth_data: vec![],
        expiry: 3600,
        filters: vec![Filter::parse("203.0.113.0/24").unwrap()],
        redirect: Some(v4(198, 51, 100, 1)),
    };
    let mut out = Vec::new();
    ack.encode(&mut out, 1024).unwrap();
    let mut expected = h("F400 EA01 01020304 000000000000000A 0000 0000 00000E10");
    let text = b"::ffff:203.0.113.0/120";
    expected.push(text.len() as u8);
    expected.extend_from_slice(text);
    expected.extend_from_slice(&h("00000000000000000000FFFFC6336401"));
    assert_eq!(out, expected);
    assert_eq!(
        LispMessage::decode(&out).unwrap(),
        LispMessage::Extension(ExtMessage::Subscribe(ack))
    );
}

#[test]
fn subscribe_signed_and_verified() {
    let sub = MapSubscribe {
        immediate: true,
        itr_id: 1,
        nonce: 2,
        key_id: 3,
        alg: AuthAlg::HMAC_SHA256_128,
        expiry: 600,
        filters: vec![Filter::As(65002)],
        ..Default::default()
    };
    let bytes = sub.encode_signed(1024, b"psk").unwrap();
    let LispMessage::Extension(ExtMessage::Subscribe(back)) = LispMessage::decode(&bytes).unwrap()
    else {
        panic!()
    };
    back.verify(&bytes, b"psk").unwrap();
    assert_eq!(
        back.verify(&bytes, b"other").unwrap_err(),
        AuthError::Mismatch
    );
}

#[test]
fn bulk_reply_layout_and_paging_bit() {
    let reply = MapBulkReply {
        more: true,
        result: BulkResult::SUCCESS,
        transaction_id: 77,
        failed_filters: vec![FailedFilter {
            code: FilterCode::BAD,
            filter: Filter::As(1),
        }],
        records: vec![EidRecord::new(
            EidPrefix::new(v4(203, 0, 113, 0), 26),
            60,
            vec![],
        )],
    };
    let mut out = Vec::new();
    reply.encode(&mut out, 1025).unwrap();
    // R=1, M=1, Records Count 1 (bits 20-27), Result 0.
    assert_eq!(&out[..4], &h("F401 C010")[..]);
    assert_eq!(&out[4..12], &h("0000004D 01000000")[..]);
    assert_eq!(&out[12..16], &[1, 3, b'A', b'S'][..]);
    assert_eq!(
        LispMessage::decode(&out).unwrap(),
        LispMessage::Extension(ExtMessage::BulkReply(reply))
    );
}

#[test]
fn framing_splits_a_stream() {
    let mut stream = Vec::new();
    frame::put_frame(&mut stream, b"abc").unwrap();
    frame::frame_with(&mut stream, |b| {
        b.extend_from_slice(b"defg");
        Ok(())
    })
    .unwrap();
    let (m1, used) = frame::next_frame(&stream).unwrap().unwrap();
    assert_eq!(m1, b"abc");
    let (m2, _) = frame::next_frame(&stream[used..]).unwrap().unwrap();
    assert_eq!(m2, b"defg");
    assert_eq!(frame::next_frame(&stream[..4]).unwrap(), None);
    assert!(frame::next_frame(&[0, 0]).is_err());
}

#[test]
fn codepoints_are_configurable() {
    let cp = ExtCodepoints {
        subscribe: 2000,
        bulk: 2001,
        solicit: 2002,
        sync: 2003,
    };
    cp.validate().unwrap();
    let msg = LispMessage::Extension(ExtMessage::BulkRequest(MapBulkRequest {
        transaction_id: 1,
        filters: vec![Filter::Any],
    }));
    let mut out = Vec::new();
    msg.encode_with(&mut out, &cp).unwrap();
    assert_eq!(u16::from_be_bytes([out[0], out[1]]) & 0x0FFF, 2001);
    assert_eq!(LispMessage::decode_with(&out, &cp).unwrap(), msg);
    assert_eq!(
        LispMessage::decode(&out).unwrap_err(),
        DecodeError::UnknownSubtype(2001)
    );
    assert!(
        ExtCodepoints {
            subscribe: 1,
            bulk: 1,
            solicit: 2,
            sync: 3
        }
        .validate()
        .is_err()
    );
    // Map-Sync (1027 by default) may not share Map-Solicit's sub-type.
    assert!(
        ExtCodepoints {
            sync: 1026,
            ..ExtCodepoints::default()
        }
        .validate()
        .is_err()
    );
    // Configurations written before Map-Sync existed still parse.
    let old: ExtCodepoints =
        serde_json::from_str(r#"{"subscribe":1024,"bulk":1025,"solicit":1026}"#).unwrap();
    assert_eq!(old.sync, 1027);
}

#[test]
fn hostile_counts_do_not_allocate() {
    // Map-Reply announcing 255 records in a 12-byte packet: an error, quickly.
    let err = LispMessage::decode(&h("200000FF 0000000000000001")).unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }));
    // A record announcing 255 locators with none present.
    let err = LispMessage::decode(&h(
        "20000001 0000000000000001 0000000A FF 18 0000 0000 0001 CB007100",
    ))
    .unwrap_err();
    assert!(
        matches!(err, DecodeError::Truncated { field, .. } if field.starts_with("locator")),
        "{err}"
    );
}

#[test]
fn unknown_afi_and_type_are_named() {
    let err = LispMessage::decode(&h(
        "10000001 0000000000000001 0000 0007 00 00 18 0001 cb007100",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownAfi {
            field: "ITR-RLOC",
            afi: 7
        }
    );
    assert_eq!(
        LispMessage::decode(&h("70000000")).unwrap_err(),
        DecodeError::UnknownType(7)
    );
}
