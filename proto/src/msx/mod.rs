//! LISP-MSX extension messages on the Shared Extension type 15 (RFC 9304):
//! Map-Subscribe/Ack, Map-Bulk-Request/Reply, our Map-Solicit and Map-Sync,
//! plus the TCP framing used by bulk transfers.

pub mod bulk;
pub mod filter;
pub mod frame;
pub mod solicit;
pub mod subscribe;
pub mod sync;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::lisp::TYPE_SHARED_EXTENSION;
use crate::lisp::auth::{self, AuthAlg, AuthField};
use crate::wire::Reader;

pub use bulk::{BulkResult, FailedFilter, FilterCode, MapBulkReply, MapBulkRequest};
pub use filter::Filter;
pub use solicit::{MapSolicit, SyncMode};
pub use subscribe::{MapSubscribe, SubscribeResult};
pub use sync::MapSync;

/// Shared Extension sub-types. None is assigned by IANA, so all are
/// configurable; the defaults are the drafts' requests (1024, 1025) and ours
/// (1026, 1027). Map-Sync travels only on the sync channel, so it is not an
/// [`ExtMessage`]: see [`sync::MapSync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtCodepoints {
    pub subscribe: u16,
    pub bulk: u16,
    pub solicit: u16,
    pub sync: u16,
}

impl Default for ExtCodepoints {
    fn default() -> Self {
        ExtCodepoints {
            subscribe: 1024,
            bulk: 1025,
            solicit: 1026,
            sync: sync::DEFAULT_SUBTYPE,
        }
    }
}

impl ExtCodepoints {
    /// Sub-types are 12 bits and must be distinct.
    pub fn validate(&self) -> Result<(), &'static str> {
        let all = [self.subscribe, self.bulk, self.solicit, self.sync];
        if all.iter().any(|s| *s > 0xFFF) {
            return Err("a shared-extension sub-type must be below 4096");
        }
        if all
            .iter()
            .enumerate()
            .any(|(i, a)| all[i + 1..].contains(a))
        {
            return Err("shared-extension sub-types must be distinct");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtMessage {
    /// Map-Subscribe, or Map-Subscribe-Ack when `ack` is set.
    Subscribe(MapSubscribe),
    BulkRequest(MapBulkRequest),
    BulkReply(MapBulkReply),
    /// Map-Solicit-Request, or Map-Solicit-Response when `response` is set.
    Solicit(MapSolicit),
}

pub(crate) fn word0(subtype: u16, low16: u16) -> u32 {
    (u32::from(TYPE_SHARED_EXTENSION) << 28) | (u32::from(subtype & 0xFFF) << 16) | u32::from(low16)
}

impl ExtMessage {
    pub fn name(&self) -> &'static str {
        match self {
            ExtMessage::Subscribe(s) if s.ack => "map-subscribe-ack",
            ExtMessage::Subscribe(_) => "map-subscribe",
            ExtMessage::BulkRequest(_) => "map-bulk-request",
            ExtMessage::BulkReply(_) => "map-bulk-reply",
            ExtMessage::Solicit(s) if s.response => "map-solicit-response",
            ExtMessage::Solicit(_) => "map-solicit-request",
        }
    }

    pub fn encode(&self, buf: &mut Vec<u8>, cp: &ExtCodepoints) -> Result<(), EncodeError> {
        match self {
            ExtMessage::Subscribe(m) => m.encode(buf, cp.subscribe),
            ExtMessage::BulkRequest(m) => m.encode(buf, cp.bulk),
            ExtMessage::BulkReply(m) => m.encode(buf, cp.bulk),
            ExtMessage::Solicit(m) => m.encode(buf, cp.solicit),
        }
    }

    pub(crate) fn decode_body(
        w: u32,
        r: &mut Reader<'_>,
        cp: &ExtCodepoints,
    ) -> Result<ExtMessage, DecodeError> {
        let subtype = ((w >> 16) & 0xFFF) as u16;
        let msg = if subtype == cp.subscribe {
            ExtMessage::Subscribe(MapSubscribe::decode_body(w, r)?)
        } else if subtype == cp.bulk {
            if w & 0x8000 != 0 {
                ExtMessage::BulkReply(MapBulkReply::decode_body(w, r)?)
            } else {
                ExtMessage::BulkRequest(MapBulkRequest::decode_body(w, r)?)
            }
        } else if subtype == cp.solicit {
            ExtMessage::Solicit(MapSolicit::decode_body(w, r)?)
        } else {
            return Err(DecodeError::UnknownSubtype(subtype));
        };
        r.finish()?;
        Ok(msg)
    }
}

/// Map-Subscribe and Map-Solicit both put Key ID / Algorithm ID / length at
/// byte 16 and the Authentication Data at byte 20.
pub(crate) const AUTH_OFFSET: usize = 20;

pub(crate) fn auth_field(alg: AuthAlg, key_id: u8, nonce: u64, len: usize) -> AuthField {
    AuthField {
        offset: AUTH_OFFSET,
        len,
        key_id,
        alg,
        nonce,
    }
}

/// Encodes a message with `len` zeroed bytes of Authentication Data (the
/// algorithm's full digest) through `encode`, then signs it in place.
pub(crate) fn encode_signed(
    alg: AuthAlg,
    key_id: u8,
    nonce: u64,
    psk: &[u8],
    salt: &[u8],
    encode: impl FnOnce(usize) -> Result<Vec<u8>, EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    let len = alg.digest_len().ok_or(EncodeError::Invalid {
        field: "algorithm id",
        reason: "unknown algorithm",
    })?;
    let mut out = encode(len)?;
    auth::sign_in_place(&mut out, &auth_field(alg, key_id, nonce, len), psk, salt).map_err(
        |_| EncodeError::Invalid {
            field: "authentication",
            reason: "could not sign",
        },
    )?;
    Ok(out)
}

/// Decodes `count` filters, bounding the allocation by the bytes present.
pub(crate) fn decode_filters(r: &mut Reader<'_>, count: usize) -> Result<Vec<Filter>, DecodeError> {
    let mut v = Vec::with_capacity(crate::wire::bounded_capacity(count, r.remaining(), 1));
    for _ in 0..count {
        v.push(Filter::decode(r)?);
    }
    Ok(v)
}

pub(crate) fn check_count(
    field: &'static str,
    count: usize,
    limit: usize,
) -> Result<(), EncodeError> {
    if count > limit {
        Err(EncodeError::TooMany {
            field,
            count,
            limit,
        })
    } else {
        Ok(())
    }
}
