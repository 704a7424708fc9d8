//! Property tests for Map-Sync (the ITR cache synchronization channel):
//! encode→decode is the identity, the streaming writers produce the same
//! bytes as the message encoder, frames survive a byte stream cut anywhere,
//! and random input never panics.

mod common;

use lisp_msx_proto::lisp::EidRecord;
use lisp_msx_proto::msx::SyncMode;
use lisp_msx_proto::msx::sync::*;
use lisp_msx_proto::{EidPrefix, LispAddr};
use proptest::collection::vec;
use proptest::prelude::*;

const ST: u16 = DEFAULT_SUBTYPE;

/// Records as the sync channel carries them: the instance id is a field of
/// its own, so the EID itself is plain.
fn record() -> impl Strategy<Value = EidRecord> {
    common::record().prop_map(|mut r| {
        r.eid.addr.iid = None;
        r
    })
}

fn upsert(timed: bool) -> impl Strategy<Value = SyncUpsert> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        record(),
    )
        .prop_map(move |(iid, origin, version, expiry, record)| SyncUpsert {
            iid,
            origin: if timed { origin } else { 0 },
            version: if timed { version } else { 0 },
            expiry_unix_ms: if timed { expiry } else { 0 },
            record,
        })
}

fn withdraw() -> impl Strategy<Value = SyncWithdraw> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        common::eid_prefix(),
    )
        .prop_map(|(iid, origin, version, until_unix_ms, eid)| SyncWithdraw {
            iid,
            origin,
            version,
            until_unix_ms,
            eid,
        })
}

fn changes() -> impl Strategy<Value = SyncChanges> {
    (vec(upsert(true), 0..6), vec(withdraw(), 0..6)).prop_map(|(upserts, withdrawals)| {
        SyncChanges {
            upserts,
            withdrawals,
        }
    })
}

fn full() -> impl Strategy<Value = SyncFull> {
    any::<bool>().prop_flat_map(|timed| {
        (
            any::<u32>(),
            any::<u16>(),
            any::<[bool; 2]>(),
            vec(upsert(timed), 0..6),
        )
            .prop_map(
                move |(transfer_id, page, [more, replace], entries)| SyncFull {
                    transfer_id,
                    page,
                    more,
                    replace,
                    timed,
                    entries,
                },
            )
    })
}

fn message() -> impl Strategy<Value = MapSync> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>()
        )
            .prop_map(|(member_id, set_id, mode, epoch, unix_ms, record_count)| {
                MapSync::Hello(SyncHello {
                    member_id,
                    set_id,
                    mode: SyncMode(mode),
                    epoch,
                    unix_ms,
                    record_count,
                })
            }),
        changes().prop_map(MapSync::Delta),
        full().prop_map(MapSync::Full),
        (
            any::<bool>(),
            any::<u64>(),
            any::<u32>(),
            vec(any::<u64>(), 0..300)
        )
            .prop_flat_map(|(query, cutoff_unix_ms, record_count, buckets)| {
                let n = buckets.len().div_ceil(8);
                vec(any::<u8>(), n..=n).prop_map(move |unsettled| {
                    MapSync::Digest(SyncDigest {
                        query,
                        cutoff_unix_ms,
                        record_count,
                        buckets: buckets.clone(),
                        unsettled,
                    })
                })
            }),
        vec(any::<u16>(), 0..300).prop_map(MapSync::DigestRequest),
        (any::<bool>(), changes())
            .prop_map(|(more, changes)| MapSync::DigestReply { more, changes }),
        any::<u32>().prop_map(|transfer_id| MapSync::BulkPull { transfer_id }),
    ]
}

proptest! {
    #[test]
    fn encode_decode_is_identity(m in message(), subtype in 0u16..0x1000) {
        let bytes = m.to_bytes(subtype).unwrap();
        prop_assert_eq!(MapSync::decode(&bytes, subtype).unwrap(), m.clone());
        // Decoding then encoding reproduces the bytes.
        prop_assert_eq!(MapSync::decode(&bytes, subtype).unwrap().to_bytes(subtype).unwrap(), bytes.clone());
        // Every strict prefix is an error, never a panic or a shorter message.
        for cut in 0..bytes.len() {
            prop_assert!(MapSync::decode(&bytes[..cut], subtype).is_err());
        }
    }

    #[test]
    fn writers_match_the_encoder(c in changes(), more in any::<bool>()) {
        let mut w = ChangesWriter::digest_reply(ST);
        for u in &c.upserts {
            w.push_upsert(u.as_ref()).unwrap();
        }
        for d in &c.withdrawals {
            w.push_withdraw(d).unwrap();
        }
        let len = w.wire_len();
        let bytes = w.finish(more);
        prop_assert_eq!(bytes.len(), len);
        let expect: usize = 8
            + c.upserts.iter().map(|u| upsert_wire_len(&u.record, true)).sum::<usize>()
            + c.withdrawals.iter().map(withdraw_wire_len).sum::<usize>();
        prop_assert_eq!(bytes.len(), expect);
        prop_assert_eq!(bytes, MapSync::DigestReply { more, changes: c }.to_bytes(ST).unwrap());
    }

    #[test]
    fn frames_survive_any_cut(msgs in vec(message(), 1..5), key in proptest::option::of(vec(any::<u8>(), 0..40)), cut in any::<prop::sample::Index>()) {
        // The sender's and the receiver's view of one keyed connection.
        let (a, b) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let mut tx = key.as_deref().map(|k| FrameMac::pair(k, &a, &b).0);
        let mut rx = key.as_deref().map(|k| FrameMac::pair(k, &b, &a).1);
        let mut stream = Vec::new();
        for m in &msgs {
            put_frame(&mut stream, &m.to_bytes(ST).unwrap(), tx.as_mut()).unwrap();
        }
        // Fed in two pieces, the reader yields every message exactly once.
        let cut = cut.index(stream.len() + 1);
        let mut buf = stream[..cut].to_vec();
        let mut got = Vec::new();
        for piece in [&stream[cut..], &[][..]] {
            while let Some((msg, used)) = next_frame(&buf, rx.as_mut()).unwrap() {
                got.push(MapSync::decode(msg, ST).unwrap());
                buf.drain(..used);
            }
            buf.extend_from_slice(piece);
        }
        while let Some((msg, used)) = next_frame(&buf, rx.as_mut()).unwrap() {
            got.push(MapSync::decode(msg, ST).unwrap());
            buf.drain(..used);
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..2048)) {
        fuzz_stream(&data, ST);
        let mut hdr = vec![0xF4, 0x03];
        hdr.extend_from_slice(&data);
        fuzz_stream(&hdr, ST);
    }
}

#[test]
fn withdrawal_of_an_instance_prefix_round_trips() {
    let w = SyncWithdraw {
        iid: 7,
        origin: 2,
        version: 3,
        until_unix_ms: 4,
        eid: EidPrefix::new(LispAddr::with_iid("2001:db8::".parse().unwrap(), 9), 32),
    };
    let m = MapSync::Delta(SyncChanges {
        upserts: vec![],
        withdrawals: vec![w],
    });
    let b = m.to_bytes(ST).unwrap();
    assert_eq!(MapSync::decode(&b, ST).unwrap(), m);
}
