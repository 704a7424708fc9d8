//! Property tests for the discovery and interconnection codecs: the BGP
//! MS-target community, CPNP messages and frames, the OSPF MSFD TLV, opaque
//! LSAs and FRR's OSPF API. Encode→decode is the identity, decode→encode
//! reproduces encoder-produced bytes, and random input never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lisp_msx_proto::bgp::{self, MsTarget, MsTargetCodepoint};
use lisp_msx_proto::cpnp::{self, *};
use lisp_msx_proto::ospf::api::{self, *};
use lisp_msx_proto::ospf::lsa::{self, Lsa, LsaHeader, OpaqueLsa};
use lisp_msx_proto::ospf::msfd::{self, MsStatus, MsfStatus, MsfType, Msfd};
use lisp_msx_proto::ospf::ri::{self, Tlv};
use lisp_msx_proto::{Addr, EidPrefix, LispAddr};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ---------------------------------------------------------------- strategies

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        ipv4().prop_map(IpAddr::V4),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn ms_target() -> impl Strategy<Value = MsTarget> {
    (ip(), any::<u16>()).prop_map(|(contact, ms_id)| MsTarget { contact, ms_id })
}

fn codepoint() -> impl Strategy<Value = MsTargetCodepoint> {
    (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(v4_type, v6_type, subtype)| {
        MsTargetCodepoint {
            v4_type,
            v6_type,
            subtype,
        }
    })
}

fn eid_prefix() -> impl Strategy<Value = EidPrefix> {
    (ip(), option::of(any::<u32>()), any::<u8>()).prop_map(|(ip, iid, len)| {
        let addr = Addr::from(ip);
        let len = len % (addr.max_len() + 1);
        let la = match iid {
            Some(id) => LispAddr::with_iid(addr, id),
            None => LispAddr::plain(addr),
        };
        EidPrefix::new(la, len)
    })
}

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,40}"
}

/// RFC 3339 date-times in every shape the validator accepts.
fn date() -> impl Strategy<Value = Rfc3339> {
    (
        1u32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..=60,
        option::of("[0-9]{1,9}"),
        prop_oneof![
            Just(None),
            (0u32..24, 0u32..60, any::<bool>()).prop_map(Some)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if let Some(f) = frac {
                t.push('.');
                t.push_str(&f);
            }
            match off {
                None => t.push('Z'),
                Some((oh, om, neg)) => {
                    t.push_str(&format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }))
                }
            }
            Rfc3339::new(t).expect("generated dates are valid")
        })
}

fn service() -> impl Strategy<Value = MsxService> {
    (
        ip(),
        any::<u16>(),
        any::<u32>(),
        any::<[bool; 3]>(),
        vec(eid_prefix(), 0..6),
        (
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
        ),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(
                contact,
                ms_id,
                asn,
                [bulk, subscribe, direct],
                prefixes,
                (mrps, bph, subs),
                validity,
            )| {
                MsxService {
                    mapping_system_contact: contact,
                    ms_identifier: ms_id,
                    as_number: asn,
                    services: MsxServices {
                        bulk,
                        subscribe,
                        direct_map_request: direct,
                    },
                    eid_prefixes: prefixes,
                    rate_limits: RateLimits {
                        map_requests_per_second: mrps,
                        bulk_requests_per_hour: bph,
                        max_subscriptions: subs,
                    },
                    validity_seconds: validity,
                }
            },
        )
}

fn cpd_any() -> impl Strategy<Value = Cpd> {
    prop_oneof![
        1 => Just(Cpd::empty()),
        3 => (prop_oneof![Just(CpdForm::Requested), Just(CpdForm::Offered), Just(CpdForm::Agreed)], service())
            .prop_map(|(f, s)| Cpd::new(f, s)),
    ]
}

fn party() -> impl Strategy<Value = PartyDescription> {
    (
        option::of("\\PC{0,20}"),
        option::of("[a-z]{1,8}@example\\.net"),
        option::of("\\PC{0,30}"),
        vec("\\+[0-9]{6,12}", 0..3),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(name, email_address, postal_address, telephone_number, as_number)| PartyDescription {
                name,
                email_address,
                postal_address,
                telephone_number,
                as_number,
            },
        )
}

fn activation_schedule() -> impl Strategy<Value = ActivationSchedule> {
    prop_oneof![
        Just(ActivationSchedule::Deactivate),
        date().prop_map(ActivationSchedule::At)
    ]
}

/// A valid message of every method: the generic attributes at random, then
/// what the method requires filled in and what it forbids removed.
fn cpnp_message() -> impl Strategy<Value = CpnpMessage> {
    let head = (
        prop::sample::select(MethodCode::ALL),
        any::<u32>(),
        any::<u32>(),
        ident(),
        option::of(ident()),
        option::of(any::<u64>()),
    );
    let times = (option::of(date()), option::of(date()), option::of(date()));
    let extras = (
        option::of(cpd_any()),
        prop::sample::select(FailStatus::ALL),
        option::of(prop::sample::select(ProcessingSubcode::ALL)),
        vec(prop::sample::select(DeclineReason::ALL), 0..3),
        option::of(prop_oneof![
            Just(ActivationType::Permanent),
            Just(ActivationType::Scheduled)
        ]),
        option::of(activation_schedule()),
        (option::of(party()), option::of(party())),
    );
    let required = (
        service(),
        ident(),
        any::<u64>(),
        date(),
        activation_schedule(),
    );
    (head, times, extras, required).prop_map(
        |(
            (method, seq, tid, cust, prov, nonce),
            (ert, eot, vot),
            (cpd, status, sub, reason, atype, sched, (customer, provider)),
            (svc, prov_req, nonce_req, date_req, sched_req),
        )| {
            use MethodCode::*;
            let mut m = CpnpMessage::new(method, seq, tid, cust);
            m.provider_agreement_identifier = prov;
            m.nonce = nonce;
            m.expected_response_time = ert;
            m.expected_offer_time = eot;
            m.validity_offer_time = vot;
            m.cpd = cpd;
            m.activation_type = atype;
            m.activation_schedule = sched;
            m.customer = customer;
            m.provider = provider;
            if !matches!(method, Quotation | Cancel) && m.provider_agreement_identifier.is_none() {
                m.provider_agreement_identifier = Some(prov_req);
            }
            if matches!(
                method,
                Offer | Accept | Decline | Withdraw | Update | Activate
            ) && m.nonce.is_none()
            {
                m.nonce = Some(nonce_req);
            }
            if method == Fail {
                m.status_code = Some(status);
            }
            if method == Processing {
                m.processing_subcode = sub;
            }
            if method == Decline {
                m.reason = reason;
            }
            let form = match method {
                Quotation | Update => Some(CpdForm::Requested),
                Offer => Some(CpdForm::Offered),
                Accept => Some(CpdForm::Agreed),
                _ => None,
            };
            if let Some(form) = form {
                m.cpd = Some(Cpd::new(form, svc));
            }
            if method == Offer && m.validity_offer_time.is_none() {
                m.validity_offer_time = Some(date_req.clone());
            }
            if method == Update && m.expected_response_time.is_none() {
                m.expected_response_time = Some(date_req);
            }
            if method == Activate && m.activation_schedule.is_none() {
                m.activation_schedule = Some(sched_req);
            }
            m
        },
    )
}

fn unknown_sub_tlv() -> impl Strategy<Value = Tlv> {
    (11u16..=u16::MAX, vec(any::<u8>(), 0..12)).prop_map(|(typ, value)| Tlv { typ, value })
}

fn msfd() -> impl Strategy<Value = Msfd> {
    (
        prop_oneof![
            Just(MsfType::MapServer),
            Just(MsfType::MapResolver),
            Just(MsfType::Both)
        ],
        vec(ip(), 1..4),
        option::of("\\PC{0,24}"),
        (
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
        ),
        any::<bool>(),
        option::of(prop_oneof![
            Just(MsStatus::Reset),
            Just(MsStatus::Partial),
            Just(MsStatus::Synchronized)
        ]),
        option::of(prop_oneof![
            Just(MsfStatus::Enabled),
            Just(MsfStatus::Disabled)
        ]),
        option::of(any::<u32>()),
        vec(unknown_sub_tlv(), 0..3),
    )
        .prop_map(
            |(
                function,
                locators,
                description,
                (epoch, unavail, reboot),
                diagnosis,
                ms_status,
                msf_status,
                capabilities,
                unknown,
            )| {
                Msfd {
                    function,
                    locators,
                    description,
                    epoch,
                    unavailability_timer: unavail,
                    reboot_timer: reboot,
                    diagnosis,
                    ms_status,
                    msf_status,
                    capabilities,
                    unknown,
                }
            },
        )
}

fn lsa_header(types: impl Strategy<Value = u8>) -> impl Strategy<Value = LsaHeader> {
    (
        any::<u16>(),
        any::<u8>(),
        types,
        any::<u32>(),
        ipv4(),
        any::<u32>(),
        any::<u16>(),
    )
        .prop_map(
            |(age, options, lsa_type, ls_id, adv_router, seq, checksum)| LsaHeader {
                age,
                options,
                lsa_type,
                ls_id,
                adv_router,
                seq,
                checksum,
                length: 0,
            },
        )
}

fn any_lsa() -> impl Strategy<Value = Lsa> {
    (lsa_header(any::<u8>()), vec(any::<u8>(), 0..96)).prop_map(|(h, body)| Lsa::new(h, body))
}

fn opaque_lsa() -> impl Strategy<Value = OpaqueLsa> {
    (lsa_header(9u8..=11), vec(any::<u8>(), 0..96)).prop_map(|(h, body)| {
        let l = Lsa::new(h, body);
        OpaqueLsa {
            header: l.header,
            body: l.body,
        }
    })
}

/// What ORIGINATE_REQUEST accepts: lengths a multiple of 4.
fn aligned_opaque_lsa() -> impl Strategy<Value = OpaqueLsa> {
    opaque_lsa().prop_map(|mut l| {
        l.body.truncate(l.body.len() & !3);
        l.header.length = (lsa::LSA_HEADER_LEN + l.body.len()) as u16;
        l
    })
}

fn filter() -> impl Strategy<Value = LsaFilter> {
    (
        any::<u16>(),
        prop_oneof![
            Just(FilterOrigin::NonSelf),
            Just(FilterOrigin::SelfOriginated),
            Just(FilterOrigin::Any)
        ],
        vec(ipv4(), 0..6),
    )
        .prop_map(|(typemask, origin, areas)| LsaFilter {
            typemask,
            origin,
            areas,
        })
}

fn lsa_change() -> impl Strategy<Value = LsaChangeNotify> {
    (ipv4(), ipv4(), any::<bool>(), any_lsa()).prop_map(|(ifaddr, area_id, is_self, lsa)| {
        LsaChangeNotify {
            ifaddr,
            area_id,
            is_self,
            lsa,
        }
    })
}

fn api_body() -> impl Strategy<Value = ApiBody> {
    prop_oneof![
        (any::<u8>(), any::<u8>()).prop_map(|(lsa_type, opaque_type)| {
            ApiBody::RegisterOpaqueType {
                lsa_type,
                opaque_type,
            }
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(lsa_type, opaque_type)| {
            ApiBody::UnregisterOpaqueType {
                lsa_type,
                opaque_type,
            }
        }),
        filter().prop_map(ApiBody::RegisterEvent),
        filter().prop_map(ApiBody::SyncLsdb),
        (ipv4(), ipv4(), aligned_opaque_lsa()).prop_map(|(ifaddr, area_id, lsa)| {
            ApiBody::OriginateRequest {
                ifaddr,
                area_id,
                lsa,
            }
        }),
        (
            ipv4(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u32..=0xFF_FFFF
        )
            .prop_map(|(addr, lsa_type, opaque_type, flags, opaque_id)| {
                ApiBody::DeleteRequest {
                    addr,
                    lsa_type,
                    opaque_type,
                    flags,
                    opaque_id,
                }
            }),
        Just(ApiBody::SyncReachable),
        Just(ApiBody::SyncIsm),
        Just(ApiBody::SyncNsm),
        Just(ApiBody::SyncRouterId),
        any::<i8>().prop_map(|c| ApiBody::Reply {
            errcode: ApiErrorCode::from_code(c)
        }),
        (any::<u8>(), any::<u8>(), ipv4()).prop_map(|(lsa_type, opaque_type, addr)| {
            ApiBody::ReadyNotify {
                lsa_type,
                opaque_type,
                addr,
            }
        }),
        lsa_change().prop_map(ApiBody::LsaUpdateNotify),
        lsa_change().prop_map(ApiBody::LsaDeleteNotify),
        (ipv4(), ipv4()).prop_map(|(ifaddr, area_id)| ApiBody::NewIf { ifaddr, area_id }),
        ipv4().prop_map(|ifaddr| ApiBody::DelIf { ifaddr }),
        (ipv4(), ipv4(), any::<u8>()).prop_map(|(ifaddr, area_id, s)| ApiBody::IsmChange {
            ifaddr,
            area_id,
            status: IsmState(s)
        }),
        (ipv4(), ipv4(), ipv4(), any::<u8>()).prop_map(|(ifaddr, nbr_addr, router_id, s)| {
            ApiBody::NsmChange {
                ifaddr,
                nbr_addr,
                router_id,
                status: NsmState(s),
            }
        }),
        (vec(ipv4(), 0..6), vec(ipv4(), 0..6))
            .prop_map(|(added, removed)| ApiBody::ReachableChange { added, removed }),
        ipv4().prop_map(|router_id| ApiBody::RouterIdChange { router_id }),
        (prop_oneof![Just(0u8), 21u8..=255], vec(any::<u8>(), 0..40))
            .prop_map(|(msg_type, body)| ApiBody::Unknown { msg_type, body }),
    ]
}

fn api_message() -> impl Strategy<Value = ApiMessage> {
    (any::<u32>(), api_body()).prop_map(|(seq, body)| ApiMessage { seq, body })
}

/// A sub-TLV stream with the MSFD types, well-formed as TLVs but with values
/// of any length, to drive random input past the TLV parser.
fn msfd_like_value() -> impl Strategy<Value = Vec<u8>> {
    vec((0u16..=12, vec(any::<u8>(), 0..20)), 0..8).prop_map(|subs| {
        let mut v = Vec::new();
        for (typ, value) in subs {
            Tlv { typ, value }.encode(&mut v).unwrap();
        }
        v
    })
}

// -------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn ms_target_round_trip(t in ms_target(), cp in codepoint()) {
        let mut bytes = Vec::new();
        t.encode_with(&mut bytes, &cp).unwrap();
        prop_assert_eq!(bytes.len(), t.wire_len());
        let back = MsTarget::decode_with(&bytes, &cp).unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(back.to_bytes(&cp), bytes);
        prop_assert_eq!(MsTarget::from_raw_hex(&t.to_raw_hex(&cp), &cp).unwrap(), t);
    }

    #[test]
    fn ms_target_attribute_scan(targets in vec(ms_target(), 0..6), others in vec(any::<[u8; 20]>(), 0..4)) {
        let cp = MsTargetCodepoint::default();
        let (mut v4, mut v6) = bgp::encode_ms_targets(&targets, &cp);
        // Interleave communities of another type: they must be skipped.
        for o in &others {
            let mut ec = *o;
            ec[0] = 0x02;
            v4.extend_from_slice(&ec[..8]);
            v6.extend_from_slice(&ec);
        }
        let mut found = bgp::ms_targets_in_ext_communities(&v4, &cp).unwrap();
        found.extend(bgp::ms_targets_in_ipv6_ext_communities(&v6, &cp).unwrap());
        let mut want: Vec<MsTarget> = targets.iter().filter(|t| t.contact.is_ipv4()).copied().collect();
        want.extend(targets.iter().filter(|t| t.contact.is_ipv6()).copied());
        prop_assert_eq!(found, want);
        // A length that is not a whole number of communities is an error.
        if !v4.is_empty() {
            prop_assert!(bgp::ms_targets_in_ext_communities(&v4[..v4.len() - 1], &cp).is_err());
        }
        if !v6.is_empty() {
            prop_assert!(bgp::ms_targets_in_ipv6_ext_communities(&v6[..v6.len() - 1], &cp).is_err());
        }
    }

    #[test]
    fn cpnp_round_trip(m in cpnp_message()) {
        let json = m.to_json().map_err(|e| TestCaseError::fail(format!("{e} on {}", m.method_code)))?;
        let back = CpnpMessage::decode(&json).map_err(|e| TestCaseError::fail(format!("{e} on {}", String::from_utf8_lossy(&json))))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_json().unwrap(), json);
    }

    #[test]
    fn cpnp_frame_round_trip(m in cpnp_message(), key in option::of(vec(any::<u8>(), 0..40)), tail in vec(any::<u8>(), 0..8)) {
        let psk = key.as_deref();
        let mut stream = cpnp::encode_frame(&m, psk).unwrap();
        let n = stream.len();
        stream.extend_from_slice(&tail);
        let (back, used) = cpnp::decode_frame(&stream, psk).unwrap().unwrap();
        prop_assert_eq!(back, m);
        prop_assert_eq!(used, n);
        for cut in [0, 1, 3, 4, n / 2, n - 1] {
            prop_assert_eq!(cpnp::decode_frame(&stream[..cut], psk).unwrap(), None);
        }
    }

    #[test]
    fn cpnp_frame_tamper_is_refused(m in cpnp_message(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = b"k";
        let mut f = cpnp::encode_frame(&m, Some(key)).unwrap();
        // Flip a bit after the length prefix (a flipped length is a framing
        // error or a wait for more bytes, not an authentication question).
        let i = 4 + pos.index(f.len() - 4);
        f[i] ^= 1 << bit;
        prop_assert_eq!(cpnp::decode_frame(&f, Some(key)), Err(CpnpError::BadMac));
    }

    #[test]
    fn msfd_round_trip(m in msfd(), tlv_type in any::<u16>()) {
        let mut bytes = Vec::new();
        m.encode_with(tlv_type, &mut bytes).unwrap();
        prop_assert_eq!(bytes.len() % 4, 0);
        let back = Msfd::decode_with(&bytes, tlv_type).unwrap();
        prop_assert_eq!(&back, &m);
        let mut again = Vec::new();
        back.encode_with(tlv_type, &mut again).unwrap();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn msfd_found_in_ri_lsa(ms in vec(msfd(), 0..4), others in vec((1u16..32768, vec(any::<u8>(), 0..10)), 0..4)) {
        let mut tlvs: Vec<Tlv> = others.into_iter().map(|(typ, value)| Tlv { typ, value }).collect();
        for m in &ms {
            tlvs.push(m.to_tlv(msfd::DEFAULT_MSFD_TLV_TYPE).unwrap());
        }
        let mut body = Vec::new();
        ri::encode_tlvs(&tlvs, &mut body).unwrap();
        prop_assert_eq!(ri::decode_tlvs(&body).unwrap(), tlvs);
        prop_assert_eq!(msfd::find_msfd(&body, msfd::DEFAULT_MSFD_TLV_TYPE).unwrap(), ms);
    }

    #[test]
    fn opaque_lsa_round_trip(l in opaque_lsa()) {
        let bytes = l.to_bytes().unwrap();
        let back = OpaqueLsa::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &l);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn lsa_checksum_property(l in any_lsa(), age in any::<u16>()) {
        let mut l = l;
        l.compute_checksum().unwrap();
        prop_assert!(l.checksum_ok());
        let mut bytes = l.to_bytes().unwrap();
        prop_assert!(lsa::verify_checksum(&bytes));
        // Both Fletcher sums over bytes 2.. vanish, whatever the age.
        bytes[..2].copy_from_slice(&age.to_be_bytes());
        let (mut c0, mut c1) = (0u32, 0u32);
        for &b in &bytes[2..] {
            c0 = (c0 + u32::from(b)) % 255;
            c1 = (c1 + c0) % 255;
        }
        prop_assert_eq!((c0, c1), (0, 0));
    }

    #[test]
    fn api_round_trip(m in api_message()) {
        let bytes = m.to_bytes().map_err(|e| TestCaseError::fail(format!("{e} on {}", m.body.name())))?;
        let back = ApiMessage::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e} on {}", m.body.name())))?;
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes.clone());
        let (s, used) = api::next_message(&bytes).unwrap().unwrap();
        prop_assert_eq!(s, m);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn api_stream_waits_for_whole_messages(ms in vec(api_message(), 1..5), cut in any::<prop::sample::Index>()) {
        let mut stream = Vec::new();
        for m in &ms {
            m.encode(&mut stream).unwrap();
        }
        // Any prefix decodes to whole messages and then asks for more.
        let n = cut.index(stream.len());
        let mut off = 0;
        let mut got = Vec::new();
        while let Some((m, used)) = api::next_message(&stream[off..n]).unwrap() {
            got.push(m);
            off += used;
        }
        prop_assert_eq!(&got[..], &ms[..got.len()]);
        // The whole stream decodes to the messages.
        let mut off = 0;
        let mut all = Vec::new();
        while let Some((m, used)) = api::next_message(&stream[off..]).unwrap() {
            all.push(m);
            off += used;
        }
        prop_assert_eq!(all, ms);
    }

    #[test]
    fn truncated_encodings_are_errors(m in api_message(), l in msfd(), cut in any::<prop::sample::Index>()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert!(ApiMessage::decode(&bytes[..cut.index(bytes.len())]).is_err());
        let mut t = Vec::new();
        l.encode(&mut t).unwrap();
        let _ = Msfd::decode(&t[..cut.index(t.len())]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_in_no_panic(bytes in vec(any::<u8>(), 0..400), t in any::<u8>(), cp in codepoint()) {
        let _ = MsTarget::decode(&bytes);
        let _ = MsTarget::decode_with(&bytes, &cp);
        let _ = bgp::ms_targets_in_ext_communities(&bytes, &cp);
        let _ = bgp::ms_targets_in_ipv6_ext_communities(&bytes, &cp);
        let _ = CpnpMessage::decode(&bytes);
        let _ = cpnp::decode_frame(&bytes, None);
        let _ = cpnp::decode_frame(&bytes, Some(b"k"));
        let _ = LsaHeader::decode(&bytes);
        let _ = Lsa::decode(&bytes);
        let _ = OpaqueLsa::decode(&bytes);
        let _ = lsa::lsa_checksum(&bytes);
        let _ = lsa::verify_checksum(&bytes);
        let _ = ri::decode_tlvs(&bytes);
        let _ = Msfd::decode(&bytes);
        let _ = Msfd::decode_value(&bytes);
        let _ = msfd::find_msfd(&bytes, msfd::DEFAULT_MSFD_TLV_TYPE);
        let _ = ApiMessage::decode(&bytes);
        let _ = ApiBody::decode(t, &bytes);
        let _ = api::next_message(&bytes);
        let _ = api::peek_header(&bytes);
    }

    #[test]
    fn garbage_strings_no_panic(s in "\\PC{0,48}", cp in codepoint()) {
        let _ = MsTarget::from_raw_hex(&s, &cp);
        let _ = Rfc3339::new(s.clone());
        let _ = CpnpMessage::decode(s.as_bytes());
    }

    #[test]
    fn steered_garbage_no_panic(t in any::<u8>(), seq in any::<u32>(), body in vec(any::<u8>(), 0..120), sub in msfd_like_value()) {
        // A valid API header in front of a random body reaches every body decoder.
        let mut m = vec![1, t];
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&body);
        let _ = api::next_message(&m);
        let _ = ApiMessage::decode(&m);
        // Well-formed sub-TLVs with random values reach every MSFD value check.
        let _ = Msfd::decode_value(&sub);
        let mut tlv = Vec::new();
        Tlv { typ: msfd::DEFAULT_MSFD_TLV_TYPE, value: sub }.encode(&mut tlv).unwrap();
        let _ = msfd::find_msfd(&tlv, msfd::DEFAULT_MSFD_TLV_TYPE);
    }

    #[test]
    fn bit_flips_never_panic(m in api_message(), c in cpnp_message(), l in msfd(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut a = m.to_bytes().unwrap();
        let i = pos.index(a.len());
        a[i] ^= 1 << bit;
        let _ = api::next_message(&a);
        let mut j = c.to_json().unwrap();
        let i = pos.index(j.len());
        j[i] ^= 1 << bit;
        let _ = CpnpMessage::decode(&j);
        let mut f = cpnp::encode_frame(&c, None).unwrap();
        let i = pos.index(f.len());
        f[i] ^= 1 << bit;
        let _ = cpnp::decode_frame(&f, None);
        let mut t = Vec::new();
        l.encode(&mut t).unwrap();
        let i = pos.index(t.len());
        t[i] ^= 1 << bit;
        let _ = Msfd::decode(&t);
    }
}
