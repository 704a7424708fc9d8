//! LISP control-plane messages (RFC 9301, RFC 8111, RFC 9437) and the LISP
//! data header (RFC 9300).

pub mod auth;
pub mod data;
pub mod ecm;
pub mod map_referral;
pub mod map_register;
pub mod map_reply;
pub mod map_request;
pub mod record;

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::msx::{ExtCodepoints, ExtMessage};
use crate::wire::Reader;

pub use ecm::{Ecm, EcmHeader, InnerHeader};
pub use map_referral::{MapReferral, ReferralAction, ReferralRecord, ReferralSignature};
pub use map_register::{AuthenticatedBody, MapNotify, MapRegister, RegisterFlags};
pub use map_reply::MapReply;
pub use map_request::{MapRequest, MapRequestFlags, RequestRecord};
pub use record::{Action, EidRecord, Locator, TTL_RECEIVER_DECIDES};

/// UDP port of the LISP control plane.
pub const CONTROL_PORT: u16 = 4342;
/// UDP port of the LISP data plane.
pub const DATA_PORT: u16 = 4341;

pub const TYPE_MAP_REQUEST: u8 = 1;
pub const TYPE_MAP_REPLY: u8 = 2;
pub const TYPE_MAP_REGISTER: u8 = 3;
pub const TYPE_MAP_NOTIFY: u8 = 4;
pub const TYPE_MAP_NOTIFY_ACK: u8 = 5;
pub const TYPE_MAP_REFERRAL: u8 = 6;
pub const TYPE_ECM: u8 = 8;
pub const TYPE_SHARED_EXTENSION: u8 = 15;

/// The xTR-ID (128 bits) and Site-ID (64 bits) trailer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct XtrSiteId {
    pub xtr_id: u128,
    pub site_id: u64,
}

impl XtrSiteId {
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u128(self.xtr_id);
        buf.put_u64(self.site_id);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<XtrSiteId, DecodeError> {
        Ok(XtrSiteId {
            xtr_id: r.u128("xTR-ID")?,
            site_id: r.u64("Site-ID")?,
        })
    }
}

/// Every message that arrives on the LISP control port.
///
/// Variants are unboxed on purpose: boxing would cost an allocation per
/// decoded message, and the one large variant (Map-Request) has its own
/// allocation-free `MapRequest::decode_into` for the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LispMessage {
    MapRequest(MapRequest),
    MapReply(MapReply),
    MapRegister(MapRegister),
    MapNotify(MapNotify),
    MapNotifyAck(MapNotify),
    MapReferral(MapReferral),
    Ecm(Ecm),
    Extension(ExtMessage),
}

impl LispMessage {
    /// The 4-bit message type.
    pub fn msg_type(&self) -> u8 {
        match self {
            LispMessage::MapRequest(_) => TYPE_MAP_REQUEST,
            LispMessage::MapReply(_) => TYPE_MAP_REPLY,
            LispMessage::MapRegister(_) => TYPE_MAP_REGISTER,
            LispMessage::MapNotify(_) => TYPE_MAP_NOTIFY,
            LispMessage::MapNotifyAck(_) => TYPE_MAP_NOTIFY_ACK,
            LispMessage::MapReferral(_) => TYPE_MAP_REFERRAL,
            LispMessage::Ecm(_) => TYPE_ECM,
            LispMessage::Extension(_) => TYPE_SHARED_EXTENSION,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            LispMessage::MapRequest(_) => "map-request",
            LispMessage::MapReply(_) => "map-reply",
            LispMessage::MapRegister(_) => "map-register",
            LispMessage::MapNotify(_) => "map-notify",
            LispMessage::MapNotifyAck(_) => "map-notify-ack",
            LispMessage::MapReferral(_) => "map-referral",
            LispMessage::Ecm(_) => "ecm",
            LispMessage::Extension(e) => e.name(),
        }
    }

    /// Decodes with the default extension code points.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<LispMessage, DecodeError> {
        Self::decode_with(buf, &ExtCodepoints::default())
    }

    /// Decodes one message; every byte of `buf` must belong to it.
    pub fn decode_with(buf: &[u8], cp: &ExtCodepoints) -> Result<LispMessage, DecodeError> {
        let mut r = Reader::new(buf);
        let w = r.u32("header")?;
        let t = (w >> 28) as u8;
        Ok(match t {
            TYPE_MAP_REQUEST => LispMessage::MapRequest(MapRequest::decode_body(w, &mut r)?),
            TYPE_MAP_REPLY => LispMessage::MapReply(MapReply::decode_body(w, &mut r)?),
            TYPE_MAP_REGISTER => LispMessage::MapRegister(MapRegister::decode_body(w, &mut r)?),
            TYPE_MAP_NOTIFY => LispMessage::MapNotify(MapNotify::decode_body(w, &mut r)?),
            TYPE_MAP_NOTIFY_ACK => LispMessage::MapNotifyAck(MapNotify::decode_body(w, &mut r)?),
            TYPE_MAP_REFERRAL => LispMessage::MapReferral(MapReferral::decode_body(w, &mut r)?),
            TYPE_ECM => LispMessage::Ecm(Ecm::decode_body(w, &mut r)?),
            TYPE_SHARED_EXTENSION => {
                LispMessage::Extension(ExtMessage::decode_body(w, &mut r, cp)?)
            }
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// Encodes with the default extension code points.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_with(buf, &ExtCodepoints::default())
    }

    pub fn encode_with(&self, buf: &mut Vec<u8>, cp: &ExtCodepoints) -> Result<(), EncodeError> {
        match self {
            LispMessage::MapRequest(m) => m.encode(buf),
            LispMessage::MapReply(m) => m.encode(buf),
            LispMessage::MapRegister(m) => m.encode(buf),
            LispMessage::MapNotify(m) => m.encode(false, buf),
            LispMessage::MapNotifyAck(m) => m.encode(true, buf),
            LispMessage::MapReferral(m) => m.encode(buf),
            LispMessage::Ecm(m) => m.encode(buf),
            LispMessage::Extension(m) => m.encode(buf, cp),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(128);
        self.encode(&mut v)?;
        Ok(v)
    }
}
