//! Map-Sync: the map-cache synchronization channel between the redundant ITRs
//! of one site (ours; no draft defines it). Members of a synchronization set
//! hold one TCP connection each way pair; every message is a Shared Extension
//! message (type 15) with sub-type 1027 (configurable, `ExtCodepoints::sync`),
//! framed as `Length(16) | message | HMAC-SHA-256(K, Seq(64) | Length | message)`
//! (the trailer is left out only when the channel runs inside TLS without a key).
//!
//! With a key, each side first sends a preamble, `"LMSY" | Version=1 | Rsvd(24)
//! | Nonce(128)`, with a fresh random nonce. Each direction then has its own
//! key, `K = HMAC-SHA-256(PSK, "lisp-msx map-sync v1" | sender nonce |
//! receiver nonce)`, and Seq counts that direction's frames from 0 (it is not
//! sent). A frame recorded on another connection, replayed, reordered or
//! reflected back to its sender fails authentication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Type=15|   Sub-type=1027       |   Kind (8)    |M|R|T|Q| Rsvd  |
//!
//! Kind 1 Hello          | Member ID | Sync-Set ID | Mode(8) Rsvd(24) |
//!                       | Epoch (64) | Sender time, unix ms (64) | Record Count |
//! Kind 2 Delta          | Upsert Count(16) | Withdrawal Count(16) |
//! Kind 6 DigestReply    ~ upserts ~ withdrawals ~          (M: more pages follow)
//!        upsert:        | IID | Origin | Version (64) | Expiry, unix ms (64) | EID-record |
//!        withdrawal:    | IID | Origin | Version (64) | Until, unix ms (64) | Mask-Len(8) | EID |
//! Kind 3 Full           | Transfer ID | Page(16) | Entry Count(16) | ~ entries ~
//!                       M: more pages; R: replace the whole cache (naive);
//!                       T: timed entries (upsert layout), else | IID | EID-record |
//! Kind 4 Digest         | Cutoff, unix ms (64) | Record Count | Bucket Count(16) Rsvd(16) |
//!                       | Bucket hash (64) x Bucket Count |   (Q: answer with yours)
//!                       | Unsettled bitmap: Bucket Count bits, padded to bytes |
//! Kind 5 DigestRequest  | Bucket Count(16) | Rsvd(16) | Bucket(16) x Count |
//! Kind 7 BulkPull       | Transfer ID |
//! ```
//!
//! EID-records are RFC 9301 §5.4 records; their EID carries no instance id
//! (the IID field does, 4 bytes instead of an 12-byte LCAF). Expiry times are
//! absolute so every member expires a record at the same instant; Version and
//! Origin order concurrent writes of one key (higher version wins, then higher
//! origin member id). Flags a kind does not define are sent as 0 and ignored.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::addr::{EidPrefix, LispAddr};
use crate::error::{DecodeError, EncodeError};
use crate::lisp::TYPE_SHARED_EXTENSION;
use crate::lisp::record::EidRecord;
use crate::msx::solicit::SyncMode;
use crate::msx::word0;
use crate::wire::{Reader, bounded_capacity};

/// Default Shared Extension sub-type of Map-Sync.
pub const DEFAULT_SUBTYPE: u16 = 1027;
/// Digest buckets (records are spread by a hash of their key).
pub const BUCKETS: usize = 256;
/// Largest message a frame carries (u16 length).
pub const MAX_MESSAGE: usize = u16::MAX as usize;
pub const FRAME_HEADER_LEN: usize = 2;
/// The HMAC-SHA-256 trailer.
pub const MAC_LEN: usize = 32;
/// Random bytes each side contributes to a keyed connection.
pub const NONCE_LEN: usize = 16;
/// `"LMSY" | Version | Rsvd(24) | Nonce`.
pub const PREAMBLE_LEN: usize = 8 + NONCE_LEN;
const PREAMBLE_MAGIC: [u8; 4] = *b"LMSY";
const PREAMBLE_VERSION: u8 = 1;
const KEY_LABEL: &[u8] = b"lisp-msx map-sync v1";

const KIND_HELLO: u8 = 1;
const KIND_DELTA: u8 = 2;
const KIND_FULL: u8 = 3;
const KIND_DIGEST: u8 = 4;
const KIND_DIGEST_REQUEST: u8 = 5;
const KIND_DIGEST_REPLY: u8 = 6;
const KIND_BULK_PULL: u8 = 7;

const FLAG_M: u8 = 0x80;
const FLAG_R: u8 = 0x40;
const FLAG_T: u8 = 0x20;
const FLAG_Q: u8 = 0x10;

/// IID, origin, version and expiry in front of a timed record.
const TIMED_HEADER: usize = 24;
const MIN_UPSERT: usize = TIMED_HEADER + EidRecord::MIN_WIRE_LEN;
const MIN_WITHDRAWAL: usize = TIMED_HEADER + 1 + 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncHello {
    pub member_id: u32,
    pub set_id: u32,
    pub mode: SyncMode,
    /// Changes when the member restarts (its cache started empty).
    pub epoch: u64,
    /// The sender's clock, to detect skew (expiry times are absolute).
    pub unix_ms: u64,
    /// Records the sender holds (a restarted member pulls from the fullest).
    pub record_count: u32,
}

/// A record as the set shares it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncUpsert {
    pub iid: u32,
    /// Member whose ITR learned (or refreshed) the record.
    pub origin: u32,
    pub version: u64,
    /// When every member drops the record (u64::MAX: never).
    pub expiry_unix_ms: u64,
    pub record: EidRecord,
}

impl SyncUpsert {
    pub fn as_ref(&self) -> UpsertRef<'_> {
        UpsertRef {
            iid: self.iid,
            origin: self.origin,
            version: self.version,
            expiry_unix_ms: self.expiry_unix_ms,
            record: &self.record,
        }
    }
}

/// A borrowed [`SyncUpsert`], for encoding straight from a table.
#[derive(Clone, Copy, Debug)]
pub struct UpsertRef<'a> {
    pub iid: u32,
    pub origin: u32,
    pub version: u64,
    pub expiry_unix_ms: u64,
    pub record: &'a EidRecord,
}

/// A record removed from the set (kept as a tombstone until `until_unix_ms`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncWithdraw {
    pub iid: u32,
    pub origin: u32,
    pub version: u64,
    pub until_unix_ms: u64,
    pub eid: EidPrefix,
}

/// Body of Delta and DigestReply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncChanges {
    pub upserts: Vec<SyncUpsert>,
    pub withdrawals: Vec<SyncWithdraw>,
}

/// One page of a whole-cache transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFull {
    pub transfer_id: u32,
    pub page: u16,
    /// M: more pages follow.
    pub more: bool,
    /// R: the pages together replace the receiver's whole cache.
    pub replace: bool,
    /// T: entries carry origin, version and expiry; without it only the IID
    /// and the record are sent and those fields decode as 0.
    pub timed: bool,
    pub entries: Vec<SyncUpsert>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDigest {
    /// Q: the receiver answers with its own digest.
    pub query: bool,
    /// The digest covers records written at or before this instant.
    pub cutoff_unix_ms: u64,
    /// Records covered.
    pub record_count: u32,
    pub buckets: Vec<u64>,
    /// Bit i (most significant first): the sender does not know bucket i's
    /// state as of the cutoff (a key changed twice since), so the bucket
    /// is not compared. Exactly `ceil(buckets / 8)` bytes.
    pub unsettled: Vec<u8>,
}

impl SyncDigest {
    pub fn is_unsettled(&self, bucket: usize) -> bool {
        self.unsettled
            .get(bucket / 8)
            .is_some_and(|b| b & (0x80 >> (bucket % 8)) != 0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapSync {
    Hello(SyncHello),
    Delta(SyncChanges),
    Full(SyncFull),
    Digest(SyncDigest),
    /// The buckets whose records the sender wants.
    DigestRequest(Vec<u16>),
    /// Records and tombstones of requested buckets; `more`: pages follow.
    DigestReply {
        more: bool,
        changes: SyncChanges,
    },
    /// Send me your whole cache as Full pages of this transfer.
    BulkPull {
        transfer_id: u32,
    },
}

impl MapSync {
    pub fn name(&self) -> &'static str {
        match self {
            MapSync::Hello(_) => "hello",
            MapSync::Delta(_) => "delta",
            MapSync::Full(_) => "full",
            MapSync::Digest(_) => "digest",
            MapSync::DigestRequest(_) => "digest-request",
            MapSync::DigestReply { .. } => "digest-reply",
            MapSync::BulkPull { .. } => "bulk-pull",
        }
    }

    /// Appends the message; fails if a value does not fit its field or the
    /// message would exceed [`MAX_MESSAGE`].
    pub fn encode(&self, buf: &mut Vec<u8>, subtype: u16) -> Result<(), EncodeError> {
        let start = buf.len();
        match self {
            MapSync::Hello(h) => {
                put_header(buf, subtype, KIND_HELLO, 0);
                buf.extend_from_slice(&h.member_id.to_be_bytes());
                buf.extend_from_slice(&h.set_id.to_be_bytes());
                buf.extend_from_slice(&(u32::from(h.mode.0) << 24).to_be_bytes());
                buf.extend_from_slice(&h.epoch.to_be_bytes());
                buf.extend_from_slice(&h.unix_ms.to_be_bytes());
                buf.extend_from_slice(&h.record_count.to_be_bytes());
            }
            MapSync::Delta(c) => buf.extend_from_slice(&changes_bytes(c, subtype, false, false)?),
            MapSync::DigestReply { more, changes } => {
                buf.extend_from_slice(&changes_bytes(changes, subtype, true, *more)?)
            }
            MapSync::Full(f) => {
                let mut w = FullWriter::new(subtype, f.transfer_id, f.page, f.replace, f.timed);
                for e in &f.entries {
                    w.push(e.as_ref())?;
                }
                buf.extend_from_slice(&w.finish(f.more));
            }
            MapSync::Digest(d) => {
                check_len("digest buckets", d.buckets.len(), usize::from(u16::MAX))?;
                if d.unsettled.len() != d.buckets.len().div_ceil(8) {
                    return Err(EncodeError::Invalid {
                        field: "digest unsettled bitmap",
                        reason: "must hold one bit per bucket",
                    });
                }
                put_header(buf, subtype, KIND_DIGEST, if d.query { FLAG_Q } else { 0 });
                buf.extend_from_slice(&d.cutoff_unix_ms.to_be_bytes());
                buf.extend_from_slice(&d.record_count.to_be_bytes());
                buf.extend_from_slice(&((d.buckets.len() as u32) << 16).to_be_bytes());
                for h in &d.buckets {
                    buf.extend_from_slice(&h.to_be_bytes());
                }
                buf.extend_from_slice(&d.unsettled);
            }
            MapSync::DigestRequest(b) => {
                check_len("requested buckets", b.len(), usize::from(u16::MAX))?;
                put_header(buf, subtype, KIND_DIGEST_REQUEST, 0);
                buf.extend_from_slice(&((b.len() as u32) << 16).to_be_bytes());
                for i in b {
                    buf.extend_from_slice(&i.to_be_bytes());
                }
            }
            MapSync::BulkPull { transfer_id } => {
                put_header(buf, subtype, KIND_BULK_PULL, 0);
                buf.extend_from_slice(&transfer_id.to_be_bytes());
            }
        }
        if buf.len() - start > MAX_MESSAGE {
            buf.truncate(start);
            return Err(EncodeError::Invalid {
                field: "map-sync message",
                reason: "longer than 65535 bytes",
            });
        }
        Ok(())
    }

    pub fn to_bytes(&self, subtype: u16) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v, subtype)?;
        Ok(v)
    }

    /// Decodes one message (every byte must belong to it). Never panics;
    /// allocations are bounded by the bytes present.
    pub fn decode(buf: &[u8], subtype: u16) -> Result<MapSync, DecodeError> {
        let mut r = Reader::new(buf);
        let w = r.u32("header")?;
        let t = (w >> 28) as u8;
        if t != TYPE_SHARED_EXTENSION {
            return Err(DecodeError::UnknownType(t));
        }
        let st = ((w >> 16) & 0xFFF) as u16;
        if st != subtype {
            return Err(DecodeError::UnknownSubtype(st));
        }
        let kind = (w >> 8) as u8;
        let flags = w as u8;
        let msg = match kind {
            KIND_HELLO => MapSync::Hello(SyncHello {
                member_id: r.u32("member id")?,
                set_id: r.u32("sync-set identifier")?,
                mode: SyncMode((r.u32("sync mode")? >> 24) as u8),
                epoch: r.u64("epoch")?,
                unix_ms: r.u64("sender time")?,
                record_count: r.u32("record count")?,
            }),
            KIND_DELTA => MapSync::Delta(decode_changes(&mut r)?),
            KIND_DIGEST_REPLY => MapSync::DigestReply {
                more: flags & FLAG_M != 0,
                changes: decode_changes(&mut r)?,
            },
            KIND_FULL => {
                let transfer_id = r.u32("transfer id")?;
                let page = r.u16("page")?;
                let count = usize::from(r.u16("entry count")?);
                let timed = flags & FLAG_T != 0;
                let min = if timed {
                    MIN_UPSERT
                } else {
                    4 + EidRecord::MIN_WIRE_LEN
                };
                let mut entries = Vec::with_capacity(bounded_capacity(count, r.remaining(), min));
                for _ in 0..count {
                    entries.push(decode_upsert(&mut r, timed)?);
                }
                MapSync::Full(SyncFull {
                    transfer_id,
                    page,
                    more: flags & FLAG_M != 0,
                    replace: flags & FLAG_R != 0,
                    timed,
                    entries,
                })
            }
            KIND_DIGEST => {
                let cutoff_unix_ms = r.u64("digest cutoff")?;
                let record_count = r.u32("record count")?;
                let n = (r.u32("bucket count")? >> 16) as usize;
                let mut buckets = Vec::with_capacity(bounded_capacity(n, r.remaining(), 8));
                for _ in 0..n {
                    buckets.push(r.u64("bucket hash")?);
                }
                let unsettled = r.take(n.div_ceil(8), "unsettled bitmap")?.to_vec();
                MapSync::Digest(SyncDigest {
                    query: flags & FLAG_Q != 0,
                    cutoff_unix_ms,
                    record_count,
                    buckets,
                    unsettled,
                })
            }
            KIND_DIGEST_REQUEST => {
                let n = (r.u32("bucket count")? >> 16) as usize;
                let mut b = Vec::with_capacity(bounded_capacity(n, r.remaining(), 2));
                for _ in 0..n {
                    b.push(r.u16("bucket")?);
                }
                MapSync::DigestRequest(b)
            }
            KIND_BULK_PULL => MapSync::BulkPull {
                transfer_id: r.u32("transfer id")?,
            },
            other => {
                return Err(DecodeError::BadValue {
                    field: "map-sync kind",
                    value: other.into(),
                    reason: "is not a known kind",
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

fn put_header(buf: &mut Vec<u8>, subtype: u16, kind: u8, flags: u8) {
    buf.extend_from_slice(&word0(subtype, (u16::from(kind) << 8) | u16::from(flags)).to_be_bytes());
}

fn check_len(field: &'static str, count: usize, limit: usize) -> Result<(), EncodeError> {
    super::check_count(field, count, limit)
}

fn changes_bytes(
    c: &SyncChanges,
    subtype: u16,
    reply: bool,
    more: bool,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = if reply {
        ChangesWriter::digest_reply(subtype)
    } else {
        ChangesWriter::delta(subtype)
    };
    for u in &c.upserts {
        w.push_upsert(u.as_ref())?;
    }
    for d in &c.withdrawals {
        w.push_withdraw(d)?;
    }
    Ok(w.finish(more))
}

fn decode_changes(r: &mut Reader<'_>) -> Result<SyncChanges, DecodeError> {
    let w = r.u32("change counts")?;
    let (nu, nw) = ((w >> 16) as usize, (w & 0xFFFF) as usize);
    let mut upserts = Vec::with_capacity(bounded_capacity(nu, r.remaining(), MIN_UPSERT));
    for _ in 0..nu {
        upserts.push(decode_upsert(r, true)?);
    }
    let mut withdrawals = Vec::with_capacity(bounded_capacity(nw, r.remaining(), MIN_WITHDRAWAL));
    for _ in 0..nw {
        let iid = r.u32("withdrawal IID")?;
        let origin = r.u32("withdrawal origin")?;
        let version = r.u64("withdrawal version")?;
        let until_unix_ms = r.u64("withdrawal until")?;
        let len = r.u8("withdrawal mask-len")?;
        let eid = EidPrefix {
            addr: LispAddr::decode(r, "withdrawn EID")?,
            len,
        };
        eid.check("withdrawal mask-len")?;
        withdrawals.push(SyncWithdraw {
            iid,
            origin,
            version,
            until_unix_ms,
            eid,
        });
    }
    Ok(SyncChanges {
        upserts,
        withdrawals,
    })
}

fn decode_upsert(r: &mut Reader<'_>, timed: bool) -> Result<SyncUpsert, DecodeError> {
    let iid = r.u32("record IID")?;
    let (origin, version, expiry_unix_ms) = if timed {
        (
            r.u32("record origin")?,
            r.u64("record version")?,
            r.u64("record expiry")?,
        )
    } else {
        (0, 0, 0)
    };
    Ok(SyncUpsert {
        iid,
        origin,
        version,
        expiry_unix_ms,
        record: EidRecord::decode(r)?,
    })
}

/// Bytes an entry takes in a Delta, DigestReply or (`timed`) Full page.
pub fn upsert_wire_len(rec: &EidRecord, timed: bool) -> usize {
    rec.wire_len() + if timed { TIMED_HEADER } else { 4 }
}

pub fn withdraw_wire_len(w: &SyncWithdraw) -> usize {
    TIMED_HEADER + 1 + w.eid.addr.wire_len()
}

fn put_upsert(buf: &mut Vec<u8>, u: UpsertRef<'_>, timed: bool) -> Result<(), EncodeError> {
    u.record.check()?;
    buf.extend_from_slice(&u.iid.to_be_bytes());
    if timed {
        buf.extend_from_slice(&u.origin.to_be_bytes());
        buf.extend_from_slice(&u.version.to_be_bytes());
        buf.extend_from_slice(&u.expiry_unix_ms.to_be_bytes());
    }
    u.record.encode(buf);
    Ok(())
}

/// Builds a Delta or a DigestReply entry by entry, straight from the
/// caller's table (no copy of the records).
#[derive(Debug)]
pub struct ChangesWriter {
    header: u32,
    upserts: Vec<u8>,
    withdrawals: Vec<u8>,
    n_upserts: usize,
    n_withdrawals: usize,
}

impl ChangesWriter {
    pub fn delta(subtype: u16) -> Self {
        Self::new(subtype, KIND_DELTA)
    }

    pub fn digest_reply(subtype: u16) -> Self {
        Self::new(subtype, KIND_DIGEST_REPLY)
    }

    fn new(subtype: u16, kind: u8) -> Self {
        ChangesWriter {
            header: word0(subtype, u16::from(kind) << 8),
            upserts: Vec::new(),
            withdrawals: Vec::new(),
            n_upserts: 0,
            n_withdrawals: 0,
        }
    }

    pub fn push_upsert(&mut self, u: UpsertRef<'_>) -> Result<(), EncodeError> {
        check_len("upserts", self.n_upserts + 1, usize::from(u16::MAX))?;
        put_upsert(&mut self.upserts, u, true)?;
        self.n_upserts += 1;
        Ok(())
    }

    pub fn push_withdraw(&mut self, w: &SyncWithdraw) -> Result<(), EncodeError> {
        check_len("withdrawals", self.n_withdrawals + 1, usize::from(u16::MAX))?;
        if w.eid.len > w.eid.addr.addr.max_len() {
            return Err(EncodeError::Invalid {
                field: "withdrawal mask-len",
                reason: "exceeds the address family's length",
            });
        }
        let b = &mut self.withdrawals;
        b.extend_from_slice(&w.iid.to_be_bytes());
        b.extend_from_slice(&w.origin.to_be_bytes());
        b.extend_from_slice(&w.version.to_be_bytes());
        b.extend_from_slice(&w.until_unix_ms.to_be_bytes());
        b.push(w.eid.len);
        w.eid.addr.encode(b);
        self.n_withdrawals += 1;
        Ok(())
    }

    /// Entries so far.
    pub fn count(&self) -> usize {
        self.n_upserts + self.n_withdrawals
    }

    /// The message length so far.
    pub fn wire_len(&self) -> usize {
        8 + self.upserts.len() + self.withdrawals.len()
    }

    /// The message; `more` sets M (meaningful in a DigestReply).
    pub fn finish(self, more: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        let flags = if more { u32::from(FLAG_M) } else { 0 };
        out.extend_from_slice(&(self.header | flags).to_be_bytes());
        out.extend_from_slice(
            &(((self.n_upserts as u32) << 16) | self.n_withdrawals as u32).to_be_bytes(),
        );
        out.extend_from_slice(&self.upserts);
        out.extend_from_slice(&self.withdrawals);
        out
    }
}

/// Builds one Full page entry by entry.
#[derive(Debug)]
pub struct FullWriter {
    buf: Vec<u8>,
    timed: bool,
    count: usize,
}

impl FullWriter {
    pub fn new(subtype: u16, transfer_id: u32, page: u16, replace: bool, timed: bool) -> Self {
        let mut buf = Vec::with_capacity(4096);
        let flags = if replace { FLAG_R } else { 0 } | if timed { FLAG_T } else { 0 };
        put_header(&mut buf, subtype, KIND_FULL, flags);
        buf.extend_from_slice(&transfer_id.to_be_bytes());
        buf.extend_from_slice(&page.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        FullWriter {
            buf,
            timed,
            count: 0,
        }
    }

    /// Without T only the IID and the record are written.
    pub fn push(&mut self, u: UpsertRef<'_>) -> Result<(), EncodeError> {
        check_len("entries", self.count + 1, usize::from(u16::MAX))?;
        put_upsert(&mut self.buf, u, self.timed)?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn wire_len(&self) -> usize {
        self.buf.len()
    }

    pub fn finish(mut self, more: bool) -> Vec<u8> {
        if more {
            self.buf[3] |= FLAG_M;
        }
        self.buf[10..12].copy_from_slice(&(self.count as u16).to_be_bytes());
        self.buf
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("empty Map-Sync frame")]
    Empty,
    #[error("Map-Sync frame authentication failed")]
    BadMac,
    #[error("not a Map-Sync preamble (or another version)")]
    BadPreamble,
}

impl FrameError {
    /// A short stable label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Empty => "empty",
            FrameError::BadMac => "bad_mac",
            FrameError::BadPreamble => "bad_preamble",
        }
    }
}

/// Bytes a frame adds to its message.
pub fn frame_overhead(authenticated: bool) -> usize {
    FRAME_HEADER_LEN + if authenticated { MAC_LEN } else { 0 }
}

/// What a keyed connection's side sends first.
pub fn preamble(nonce: &[u8; NONCE_LEN]) -> [u8; PREAMBLE_LEN] {
    let mut p = [0u8; PREAMBLE_LEN];
    p[..4].copy_from_slice(&PREAMBLE_MAGIC);
    p[4] = PREAMBLE_VERSION;
    p[8..].copy_from_slice(nonce);
    p
}

/// The peer's nonce from its preamble (`buf` holds exactly [`PREAMBLE_LEN`] bytes).
pub fn parse_preamble(buf: &[u8; PREAMBLE_LEN]) -> Result<[u8; NONCE_LEN], FrameError> {
    if buf[..4] != PREAMBLE_MAGIC || buf[4] != PREAMBLE_VERSION {
        return Err(FrameError::BadPreamble);
    }
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&buf[8..]);
    Ok(n)
}

/// The authentication state of one direction of one connection: its key
/// and the sequence number of its next frame.
#[derive(Clone)]
pub struct FrameMac {
    keyed: Hmac<Sha256>,
    seq: u64,
}

impl FrameMac {
    /// The (sending, receiving) states of a connection on which we sent
    /// `ours` and the peer sent `theirs`.
    pub fn pair(
        psk: &[u8],
        ours: &[u8; NONCE_LEN],
        theirs: &[u8; NONCE_LEN],
    ) -> (FrameMac, FrameMac) {
        (
            FrameMac::direction(psk, ours, theirs),
            FrameMac::direction(psk, theirs, ours),
        )
    }

    fn direction(psk: &[u8], from: &[u8; NONCE_LEN], to: &[u8; NONCE_LEN]) -> FrameMac {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(psk).expect("HMAC takes keys of any length");
        m.update(KEY_LABEL);
        m.update(from);
        m.update(to);
        let key = m.finalize().into_bytes();
        FrameMac {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("32-byte key"),
            seq: 0,
        }
    }

    /// Frames this direction has authenticated so far.
    pub fn frames(&self) -> u64 {
        self.seq
    }

    fn start(&self, head: &[u8; FRAME_HEADER_LEN]) -> Hmac<Sha256> {
        // Cloning the keyed state skips the key schedule on every frame.
        let mut m = self.keyed.clone();
        m.update(&self.seq.to_be_bytes());
        m.update(head);
        m
    }
}

/// The length prefix and (with a key) the trailer of `msg`'s frame, so a
/// writer can send one shared message to many peers without copying it;
/// the trailer is per connection (`mac` advances).
pub fn frame_parts(
    msg: &[u8],
    mac: Option<&mut FrameMac>,
) -> Result<([u8; FRAME_HEADER_LEN], Option<[u8; MAC_LEN]>), EncodeError> {
    if msg.is_empty() || msg.len() > MAX_MESSAGE {
        return Err(EncodeError::Invalid {
            field: "map-sync frame",
            reason: "message empty or longer than 65535 bytes",
        });
    }
    let head = (msg.len() as u16).to_be_bytes();
    let tag = mac.map(|k| {
        let mut m = k.start(&head);
        m.update(msg);
        k.seq += 1;
        m.finalize().into_bytes().into()
    });
    Ok((head, tag))
}

/// Appends `msg` as one frame.
pub fn put_frame(
    out: &mut Vec<u8>,
    msg: &[u8],
    mac: Option<&mut FrameMac>,
) -> Result<(), EncodeError> {
    let (head, tag) = frame_parts(msg, mac)?;
    out.extend_from_slice(&head);
    out.extend_from_slice(msg);
    if let Some(t) = tag {
        out.extend_from_slice(&t);
    }
    Ok(())
}

/// Takes the next frame off the front of a byte stream: `Ok(Some((message,
/// used)))`, `Ok(None)` when more bytes are needed. With a key the trailer
/// is checked (constant time) before the message is handed out, and `mac`
/// advances only past a frame that passed.
pub fn next_frame<'a>(
    buf: &'a [u8],
    mac: Option<&mut FrameMac>,
) -> Result<Option<(&'a [u8], usize)>, FrameError> {
    let Some(head) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes(*head));
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let end = FRAME_HEADER_LEN + len;
    let total = end + if mac.is_some() { MAC_LEN } else { 0 };
    if buf.len() < total {
        return Ok(None);
    }
    if let Some(k) = mac {
        let mut m = k.start(head);
        m.update(&buf[FRAME_HEADER_LEN..end]);
        m.verify_slice(&buf[end..total])
            .map_err(|_| FrameError::BadMac)?;
        k.seq += 1;
    }
    Ok(Some((&buf[FRAME_HEADER_LEN..end], total)))
}

/// Fuzzing entry: decodes a byte stream of frames (with and without a key)
/// and every message in it; never panics.
pub fn fuzz_stream(data: &[u8], subtype: u16) {
    let _ = MapSync::decode(data, subtype);
    if let Some(p) = data.first_chunk::<PREAMBLE_LEN>() {
        let _ = parse_preamble(p);
    }
    let keyed = FrameMac::pair(b"psk", &[1; NONCE_LEN], &[2; NONCE_LEN]).1;
    for mut mac in [None, Some(keyed)] {
        let mut rest = data;
        while let Ok(Some((msg, used))) = next_frame(rest, mac.as_mut()) {
            let _ = MapSync::decode(msg, subtype);
            rest = &rest[used..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::lisp::record::Locator;

    fn rec(i: u32) -> EidRecord {
        EidRecord::new(
            EidPrefix::new(Addr::V4(0x0A00_0000 | (i << 8)), 24),
            1440,
            vec![Locator::new(Addr::V4(0xC000_0201), 1, 100)],
        )
    }

    #[test]
    fn hello_layout_is_fixed() {
        let m = MapSync::Hello(SyncHello {
            member_id: 7,
            set_id: 9,
            mode: SyncMode::SMART,
            epoch: 1,
            unix_ms: 2,
            record_count: 3,
        });
        let b = m.to_bytes(DEFAULT_SUBTYPE).unwrap();
        assert_eq!(b.len(), 36);
        assert_eq!(&b[..4], &[0xF4, 0x03, KIND_HELLO, 0]);
        assert_eq!(MapSync::decode(&b, DEFAULT_SUBTYPE).unwrap(), m);
        assert_eq!(
            MapSync::decode(&b, 1026).unwrap_err(),
            DecodeError::UnknownSubtype(1027)
        );
    }

    #[test]
    fn upsert_costs_24_bytes_over_the_record() {
        let r = rec(1);
        let mut w = ChangesWriter::delta(DEFAULT_SUBTYPE);
        w.push_upsert(UpsertRef {
            iid: 0,
            origin: 1,
            version: 2,
            expiry_unix_ms: 3,
            record: &r,
        })
        .unwrap();
        let b = w.finish(false);
        assert_eq!(b.len(), 8 + 24 + 28);
        assert_eq!(upsert_wire_len(&r, true), 24 + 28);
        let MapSync::Delta(c) = MapSync::decode(&b, DEFAULT_SUBTYPE).unwrap() else {
            panic!("not a delta")
        };
        assert_eq!(c.upserts[0].record, r);
        assert_eq!(c.upserts[0].expiry_unix_ms, 3);
    }

    #[test]
    fn untimed_full_pages_carry_only_iid_and_record() {
        let full = SyncFull {
            transfer_id: 5,
            page: 1,
            more: true,
            replace: true,
            timed: false,
            entries: (0..3)
                .map(|i| SyncUpsert {
                    iid: i,
                    origin: 0,
                    version: 0,
                    expiry_unix_ms: 0,
                    record: rec(i),
                })
                .collect(),
        };
        let m = MapSync::Full(full.clone());
        let b = m.to_bytes(DEFAULT_SUBTYPE).unwrap();
        let rl: usize = full.entries.iter().map(|e| 4 + e.record.wire_len()).sum();
        assert_eq!(b.len(), 12 + rl);
        assert_eq!(MapSync::decode(&b, DEFAULT_SUBTYPE).unwrap(), m);
    }

    #[test]
    fn frames_are_authenticated_per_connection_and_in_order() {
        let msg = MapSync::BulkPull { transfer_id: 1 }
            .to_bytes(DEFAULT_SUBTYPE)
            .unwrap();
        let (a, b) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let (mut a_tx, mut a_rx) = FrameMac::pair(b"k", &a, &b);
        let (_, mut b_rx) = FrameMac::pair(b"k", &b, &a);
        let mut f = Vec::new();
        put_frame(&mut f, &msg, Some(&mut a_tx)).unwrap();
        put_frame(&mut f, &msg, Some(&mut a_tx)).unwrap();
        let one = msg.len() + frame_overhead(true);
        assert_eq!(f.len(), 2 * one);
        // An incomplete frame waits and does not advance the sequence.
        assert_eq!(
            next_frame(&f[..one - 1], Some(&mut b_rx.clone())).unwrap(),
            None
        );
        // Another key, another connection's nonces, or our own frames
        // reflected back: all refused.
        let (_, mut wrong_key) = FrameMac::pair(b"other", &b, &a);
        let (_, mut other_conn) = FrameMac::pair(b"k", &b, &[3; NONCE_LEN]);
        for k in [&mut wrong_key, &mut other_conn, &mut a_rx] {
            assert_eq!(next_frame(&f, Some(k)).unwrap_err(), FrameError::BadMac);
        }
        // In order: both pass; the first one again (a replay) does not.
        let mut rx = b_rx.clone();
        assert_eq!(
            next_frame(&f, Some(&mut rx)).unwrap(),
            Some((&msg[..], one))
        );
        assert_eq!(
            next_frame(&f[one..], Some(&mut rx)).unwrap(),
            Some((&msg[..], one))
        );
        assert_eq!(
            next_frame(&f, Some(&mut rx)).unwrap_err(),
            FrameError::BadMac
        );
        assert_eq!(rx.frames(), 2);
        // Out of order: the second frame first is refused.
        assert_eq!(
            next_frame(&f[one..], Some(&mut b_rx)).unwrap_err(),
            FrameError::BadMac
        );
        let mut g = f.clone();
        g[3] ^= 1;
        assert_eq!(
            next_frame(&g, Some(&mut FrameMac::pair(b"k", &b, &a).1)).unwrap_err(),
            FrameError::BadMac
        );
        assert_eq!(next_frame(&[0, 0], None).unwrap_err(), FrameError::Empty);
    }

    #[test]
    fn preambles_carry_the_nonce_and_refuse_anything_else() {
        let n = [7u8; NONCE_LEN];
        let p = preamble(&n);
        assert_eq!(&p[..5], b"LMSY\x01");
        assert_eq!(parse_preamble(&p).unwrap(), n);
        let mut q = p;
        q[4] = 2;
        assert_eq!(parse_preamble(&q).unwrap_err(), FrameError::BadPreamble);
        let mut q = p;
        q[0] = b'X';
        assert_eq!(parse_preamble(&q).unwrap_err(), FrameError::BadPreamble);
    }

    #[test]
    fn hostile_counts_are_errors_not_allocations() {
        // A Delta announcing 65535 upserts and withdrawals in 8 bytes.
        let b = [0xF4, 0x03, KIND_DELTA, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            MapSync::decode(&b, DEFAULT_SUBTYPE),
            Err(DecodeError::Truncated { .. })
        ));
        let b = [0xF4, 0x03, 99, 0];
        assert!(MapSync::decode(&b, DEFAULT_SUBTYPE).is_err());
    }
}
