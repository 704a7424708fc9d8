//! proptest strategies for every LISP and MSX message, shared by the
//! round-trip tests and the tshark cross-check.
#![allow(dead_code)]

pub mod pcap;

use std::net::IpAddr;

use lisp_msx_proto::lisp::*;
use lisp_msx_proto::msx::*;
use lisp_msx_proto::{Addr, EidPrefix, InstanceId, LispAddr};
use proptest::collection::vec;
use proptest::prelude::*;

pub fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        any::<u32>().prop_map(Addr::V4),
        any::<u128>().prop_map(Addr::V6),
    ]
}

pub fn addr_or_none() -> impl Strategy<Value = Addr> {
    prop_oneof![1 => Just(Addr::None), 6 => addr()]
}

pub fn lisp_addr(inner: impl Strategy<Value = Addr>) -> impl Strategy<Value = LispAddr> {
    (
        inner,
        proptest::option::of(
            (any::<u32>(), 0u8..=32).prop_map(|(id, mask_len)| InstanceId { id, mask_len }),
        ),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(addr, iid, asn)| LispAddr { iid, asn, addr })
}

pub fn eid_prefix() -> impl Strategy<Value = EidPrefix> {
    lisp_addr(addr())
        .prop_flat_map(|a| (Just(a), 0..=a.addr.max_len()))
        .prop_map(|(addr, len)| EidPrefix { addr, len })
}

pub fn locator() -> impl Strategy<Value = Locator> {
    (any::<[u8; 4]>(), any::<[bool; 3]>(), addr()).prop_map(|(p, f, addr)| Locator {
        priority: p[0],
        weight: p[1],
        m_priority: p[2],
        m_weight: p[3],
        local: f[0],
        probed: f[1],
        reachable: f[2],
        addr,
    })
}

pub fn record() -> impl Strategy<Value = EidRecord> {
    (
        any::<u32>(),
        eid_prefix(),
        0u8..8,
        any::<bool>(),
        0u16..0x1000,
        vec(locator(), 0..5),
    )
        .prop_map(|(ttl, eid, act, a, mv, locators)| EidRecord {
            ttl,
            eid,
            action: Action(act),
            authoritative: a,
            map_version: mv,
            locators,
        })
}

pub fn xtr() -> impl Strategy<Value = Option<XtrSiteId>> {
    proptest::option::of(
        (any::<u128>(), any::<u64>()).prop_map(|(xtr_id, site_id)| XtrSiteId { xtr_id, site_id }),
    )
}

pub fn map_request() -> impl Strategy<Value = MapRequest> {
    (
        any::<[bool; 7]>(),
        any::<u64>(),
        lisp_addr(addr_or_none()),
        vec(addr_or_none(), 1..=32),
        vec((any::<bool>(), eid_prefix()), 0..4),
        proptest::option::of(record()),
        xtr(),
    )
        .prop_map(
            |(f, nonce, source_eid, rlocs, recs, map_data, xtr_site)| MapRequest {
                flags: MapRequestFlags {
                    authoritative: f[0],
                    probe: f[1],
                    smr: f[2],
                    pitr: f[3],
                    smr_invoked: f[4],
                    local_xtr: f[5],
                    dont_reply: f[6],
                },
                nonce,
                source_eid,
                itr_rlocs: rlocs.into_iter().collect(),
                records: recs
                    .into_iter()
                    .map(|(notify, eid)| RequestRecord { notify, eid })
                    .collect(),
                map_data,
                xtr_site,
            },
        )
}

pub fn map_reply() -> impl Strategy<Value = MapReply> {
    (any::<[bool; 2]>(), any::<u64>(), vec(record(), 0..4)).prop_map(|(f, nonce, records)| {
        MapReply {
            probe: f[0],
            echo_nonce: f[1],
            security: false,
            nonce,
            records,
            security_data: Vec::new(),
        }
    })
}

pub fn auth_body() -> impl Strategy<Value = AuthenticatedBody> {
    (
        any::<u64>(),
        any::<u8>(),
        0u8..4,
        vec(any::<u8>(), 0..40),
        vec(record(), 0..4),
        xtr(),
    )
        .prop_map(
            |(nonce, key_id, alg, auth_data, records, xtr_site)| AuthenticatedBody {
                nonce,
                key_id,
                alg: auth::AuthAlg(alg),
                auth_data,
                records,
                xtr_site,
            },
        )
}

pub fn map_register() -> impl Strategy<Value = MapRegister> {
    (any::<[bool; 6]>(), auth_body()).prop_map(|(f, body)| MapRegister {
        flags: RegisterFlags {
            proxy_reply: f[0],
            security: f[1],
            eid_notify: f[2],
            use_ttl: f[3],
            merge: f[4],
            want_map_notify: f[5],
        },
        body,
    })
}

pub fn referral() -> impl Strategy<Value = MapReferral> {
    let sig = (
        any::<[u32; 3]>(),
        any::<u16>(),
        any::<u8>(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(t, key_tag, algorithm, signature)| ReferralSignature {
            original_ttl: t[0],
            expiration: t[1],
            inception: t[2],
            key_tag,
            algorithm,
            signature,
        });
    let rec = (
        any::<u32>(),
        eid_prefix(),
        0u8..8,
        any::<[bool; 2]>(),
        0u16..0x1000,
        vec(locator(), 0..4),
        vec(sig, 0..3),
    )
        .prop_map(
            |(ttl, eid, act, f, map_version, referrals, signatures)| ReferralRecord {
                ttl,
                eid,
                action: ReferralAction(act),
                authoritative: f[0],
                incomplete: f[1],
                map_version,
                referrals,
                signatures,
            },
        );
    (any::<u64>(), vec(rec, 0..4)).prop_map(|(nonce, records)| MapReferral { nonce, records })
}

pub fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (IpAddr::V4(a.into()), IpAddr::V4(b.into()))),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (IpAddr::V6(a.into()), IpAddr::V6(b.into()))),
    ]
}

pub fn ecm() -> impl Strategy<Value = Ecm> {
    (
        any::<[bool; 4]>(),
        ip_pair(),
        any::<[u16; 3]>(),
        any::<[u8; 2]>(),
        any::<bool>(),
        0u32..0x10_0000,
        map_request(),
    )
        .prop_map(|(f, (src, dst), ports, tt, df, flow, req)| {
            let v4 = src.is_ipv4();
            Ecm {
                header: EcmHeader {
                    security: f[0],
                    ddt: f[1],
                    to_etr: f[2],
                    to_ms: f[3],
                    inner: InnerHeader {
                        src,
                        dst,
                        src_port: ports[0],
                        dst_port: ports[1],
                        ttl: tt[0],
                        tos: tt[1],
                        ident: if v4 { ports[2] } else { 0 },
                        dont_fragment: v4 && df,
                        flow_label: if v4 { 0 } else { flow },
                    },
                },
                message: Box::new(LispMessage::MapRequest(req)),
            }
        })
}

pub fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::Any),
        eid_prefix().prop_map(|mut p| {
            // Filters carry no AS LCAF; instance ids are written "[iid]".
            p.addr.asn = None;
            p.addr.iid = p.addr.iid.map(|i| InstanceId::new(i.id));
            Filter::Prefix(p)
        }),
        any::<u32>().prop_map(Filter::As),
        "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,3}".prop_map(Filter::Name),
    ]
}

pub fn subscribe() -> impl Strategy<Value = MapSubscribe> {
    (
        any::<[bool; 4]>(),
        0u8..8,
        any::<(u32, u64, u8)>(),
        0u8..4,
        vec(any::<u8>(), 0..40),
        any::<u32>(),
        vec(filter(), 0..6),
        proptest::option::of(addr()),
    )
        .prop_map(
            |(f, result, (itr_id, nonce, key_id), alg, auth_data, expiry, filters, redirect)| {
                let ack = f[0];
                MapSubscribe {
                    ack,
                    unsolicited: f[1],
                    bulk: f[2],
                    immediate: f[3],
                    result: SubscribeResult(if ack { result } else { 0 }),
                    itr_id,
                    nonce,
                    key_id,
                    alg: auth::AuthAlg(alg),
                    auth_data,
                    expiry,
                    filters,
                    redirect: if ack { redirect } else { None },
                }
            },
        )
}

pub fn bulk_request() -> impl Strategy<Value = MapBulkRequest> {
    (any::<u32>(), vec(filter(), 0..6)).prop_map(|(transaction_id, filters)| MapBulkRequest {
        transaction_id,
        filters,
    })
}

pub fn bulk_reply() -> impl Strategy<Value = MapBulkReply> {
    (
        any::<bool>(),
        0u8..16,
        any::<u32>(),
        vec((0u8..4, filter()), 0..4),
        vec(record(), 0..5),
    )
        .prop_map(
            |(more, result, transaction_id, failed, records)| MapBulkReply {
                more,
                result: BulkResult(result),
                transaction_id,
                failed_filters: failed
                    .into_iter()
                    .map(|(c, filter)| FailedFilter {
                        code: FilterCode(c),
                        filter,
                    })
                    .collect(),
                records,
            },
        )
}

pub fn solicit() -> impl Strategy<Value = MapSolicit> {
    (
        any::<[bool; 3]>(),
        any::<(u32, u64, u8, u32, u32)>(),
        0u8..4,
        vec(any::<u8>(), 0..40),
        0u8..3,
        vec(addr(), 0..5),
    )
        .prop_map(
            |(f, (itr_id, nonce, key_id, sync_set, record_count), alg, auth_data, mode, rlocs)| {
                MapSolicit {
                    response: f[0],
                    bulk: f[1],
                    subscribe: f[2],
                    itr_id,
                    nonce,
                    key_id,
                    alg: auth::AuthAlg(alg),
                    auth_data,
                    sync_set,
                    sync_mode: SyncMode(mode),
                    record_count,
                    rlocs,
                }
            },
        )
}

pub fn message() -> impl Strategy<Value = LispMessage> {
    prop_oneof![
        map_request().prop_map(LispMessage::MapRequest),
        map_reply().prop_map(LispMessage::MapReply),
        map_register().prop_map(LispMessage::MapRegister),
        auth_body().prop_map(|body| LispMessage::MapNotify(MapNotify { body })),
        auth_body().prop_map(|body| LispMessage::MapNotifyAck(MapNotify { body })),
        referral().prop_map(LispMessage::MapReferral),
        ecm().prop_map(LispMessage::Ecm),
        subscribe().prop_map(|m| LispMessage::Extension(ExtMessage::Subscribe(m))),
        bulk_request().prop_map(|m| LispMessage::Extension(ExtMessage::BulkRequest(m))),
        bulk_reply().prop_map(|m| LispMessage::Extension(ExtMessage::BulkReply(m))),
        solicit().prop_map(|m| LispMessage::Extension(ExtMessage::Solicit(m))),
    ]
}
