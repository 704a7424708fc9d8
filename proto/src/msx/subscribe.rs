//! Map-Subscribe / Map-Subscribe-Ack (draft-boucadair-lisp-subscribe-05 §3-4).
//!
//! ```text
//! |Type=15| Sub-type |A|U|B|I|R|Res. | Filter Count |   (R, Result: Ack only)
//! |                    ITR Identifier                  |
//! |                        Nonce (64)                  |
//! | Key ID (8) | Alg ID (8) | Authentication Data Length |
//! ~                  Authentication Data               ~
//! |                    Expiry Timer (s)                |
//! ~   Filters: Length(8) | text ...                    ~
//! ~   Redirect Map-Resolver (128, only when R=1)       ~
//! ```
//! The draft's 16-bit Key ID is split like RFC 9301's (Key ID + Algorithm ID),
//! and Result sits in bits 21-23 (the draft's figure has no Result field).

use serde::{Deserialize, Serialize};

use crate::addr::Addr;
use crate::error::{DecodeError, EncodeError};
use crate::lisp::auth::{self, AuthAlg, AuthError};
use crate::msx::filter::{Filter, get_addr128, put_addr128};
use crate::msx::{check_count, decode_filters, word0};
use crate::wire::Reader;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscribeResult(pub u8);

impl SubscribeResult {
    pub const SUCCESS: SubscribeResult = SubscribeResult(0);
    pub const PARTIAL_LIMIT: SubscribeResult = SubscribeResult(1);
    pub const PARTIAL_BAD: SubscribeResult = SubscribeResult(2);
    pub const PARTIAL_LOCAL: SubscribeResult = SubscribeResult(3);
    pub const PROHIBITED: SubscribeResult = SubscribeResult(4);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "success",
            1 => "partial-filters-installed-limit",
            2 => "partial-filters-installed-bad",
            3 => "partial-filters-installed-local",
            4 => "filters-prohibited",
            _ => "unassigned",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSubscribe {
    /// A: this is a Map-Subscribe-Ack.
    pub ack: bool,
    /// U: unsolicited Map-Replies accepted / will be sent.
    pub unsolicited: bool,
    /// B: bulk supported.
    pub bulk: bool,
    /// I: push all matching mappings at once (resynchronization).
    pub immediate: bool,
    /// Ack only: the result (3 bits).
    pub result: SubscribeResult,
    pub itr_id: u32,
    pub nonce: u64,
    pub key_id: u8,
    pub alg: AuthAlg,
    pub auth_data: Vec<u8>,
    /// Seconds; 0 deletes the listed filters.
    pub expiry: u32,
    pub filters: Vec<Filter>,
    /// Ack only: R=1 and the Map-Resolver to use instead.
    pub redirect: Option<Addr>,
}

impl MapSubscribe {
    fn low16(&self) -> Result<u16, EncodeError> {
        check_count("filters", self.filters.len(), 255)?;
        if !self.ack && (self.redirect.is_some() || self.result.0 != 0) {
            return Err(EncodeError::Invalid {
                field: "map-subscribe",
                reason: "redirect and result belong to the Ack",
            });
        }
        if self.result.0 > 7 {
            return Err(EncodeError::Invalid {
                field: "subscribe result",
                reason: "exceeds 3 bits",
            });
        }
        Ok((u16::from(self.ack) << 15)
            | (u16::from(self.unsolicited) << 14)
            | (u16::from(self.bulk) << 13)
            | (u16::from(self.immediate) << 12)
            | (u16::from(self.redirect.is_some()) << 11)
            | (u16::from(self.result.0) << 8)
            | self.filters.len() as u16)
    }

    pub fn encode(&self, buf: &mut Vec<u8>, subtype: u16) -> Result<(), EncodeError> {
        let low = self.low16()?;
        if self.auth_data.len() > u16::MAX as usize {
            return Err(EncodeError::Invalid {
                field: "authentication data",
                reason: "longer than 65535 bytes",
            });
        }
        buf.extend_from_slice(&word0(subtype, low).to_be_bytes());
        buf.extend_from_slice(&self.itr_id.to_be_bytes());
        buf.extend_from_slice(&self.nonce.to_be_bytes());
        buf.push(self.key_id);
        buf.push(self.alg.0);
        buf.extend_from_slice(&(self.auth_data.len() as u16).to_be_bytes());
        buf.extend_from_slice(&self.auth_data);
        buf.extend_from_slice(&self.expiry.to_be_bytes());
        for f in &self.filters {
            f.encode(buf)?;
        }
        if let Some(a) = self.redirect {
            put_addr128(buf, a);
        }
        Ok(())
    }

    /// Encodes and signs (salt "Map-Subscribe Authentication").
    pub fn encode_signed(&self, subtype: u16, psk: &[u8]) -> Result<Vec<u8>, EncodeError> {
        super::encode_signed(
            self.alg,
            self.key_id,
            self.nonce,
            psk,
            auth::salt::MAP_SUBSCRIBE,
            |len| {
                let mut m = self.clone();
                m.auth_data = vec![0; len];
                let mut out = Vec::new();
                m.encode(&mut out, subtype)?;
                Ok(out)
            },
        )
    }

    /// Verifies the raw packet this message was decoded from.
    pub fn verify(&self, packet: &[u8], psk: &[u8]) -> Result<(), AuthError> {
        let field = super::auth_field(self.alg, self.key_id, self.nonce, self.auth_data.len());
        auth::verify(packet, &field, psk, auth::salt::MAP_SUBSCRIBE)
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapSubscribe, DecodeError> {
        let ack = w & 0x8000 != 0;
        let has_redirect = w & 0x0800 != 0;
        let result = SubscribeResult(((w >> 8) & 0x7) as u8);
        if !ack && (has_redirect || result.0 != 0) {
            return Err(DecodeError::Invalid {
                field: "map-subscribe flags",
                reason: "R or Result set in a request",
            });
        }
        let itr_id = r.u32("ITR identifier")?;
        let nonce = r.u64("nonce")?;
        let key_id = r.u8("key id")?;
        let alg = AuthAlg(r.u8("algorithm id")?);
        let auth_len = usize::from(r.u16("auth data length")?);
        let auth_data = r.take(auth_len, "authentication data")?.to_vec();
        let expiry = r.u32("expiry timer")?;
        let filters = decode_filters(r, (w & 0xFF) as usize)?;
        let redirect = if has_redirect {
            Some(get_addr128(r, "redirect map-resolver")?)
        } else {
            None
        };
        Ok(MapSubscribe {
            ack,
            unsolicited: w & 0x4000 != 0,
            bulk: w & 0x2000 != 0,
            immediate: w & 0x1000 != 0,
            result,
            itr_id,
            nonce,
            key_id,
            alg,
            auth_data,
            expiry,
            filters,
            redirect,
        })
    }
}
