//! Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 §5.6, §5.7). The
//! three share one body: nonce, key id, algorithm id, authentication data,
//! records and (I bit) the xTR-ID/Site-ID trailer.

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::lisp::auth::{self, AuthAlg, AuthError, AuthField};
use crate::lisp::record::{EidRecord, check_records, decode_records};
use crate::lisp::{TYPE_MAP_NOTIFY, TYPE_MAP_NOTIFY_ACK, TYPE_MAP_REGISTER, XtrSiteId};
use crate::wire::Reader;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegisterFlags {
    /// P: the Map-Server answers Map-Requests on the ETR's behalf.
    pub proxy_reply: bool,
    /// S: LISP-SEC capable.
    pub security: bool,
    /// E: EID-notify.
    pub eid_notify: bool,
    /// T: expire the registration after the record TTL instead of 3 minutes.
    pub use_ttl: bool,
    /// a: merge with other registrations of the same prefix.
    pub merge: bool,
    /// M: the ETR wants a Map-Notify.
    pub want_map_notify: bool,
}

/// The body shared by Map-Register, Map-Notify and Map-Notify-Ack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedBody {
    pub nonce: u64,
    pub key_id: u8,
    pub alg: AuthAlg,
    /// Authentication Data as carried; filled by `encode_signed`.
    pub auth_data: Vec<u8>,
    pub records: Vec<EidRecord>,
    pub xtr_site: Option<XtrSiteId>,
}

impl AuthenticatedBody {
    fn wire_len(&self) -> usize {
        16 + self.auth_data.len()
            + self.records.iter().map(EidRecord::wire_len).sum::<usize>()
            + if self.xtr_site.is_some() { 24 } else { 0 }
    }

    fn encode<B: BufMut>(&self, word0: u32, buf: &mut B) -> Result<(), EncodeError> {
        check_records(&self.records, 255)?;
        if self.auth_data.len() > u16::MAX as usize {
            return Err(EncodeError::Invalid {
                field: "authentication data",
                reason: "longer than 65535 bytes",
            });
        }
        buf.put_u32(word0 | self.records.len() as u32);
        buf.put_u64(self.nonce);
        buf.put_u8(self.key_id);
        buf.put_u8(self.alg.0);
        buf.put_u16(self.auth_data.len() as u16);
        buf.put_slice(&self.auth_data);
        for rec in &self.records {
            rec.encode(buf);
        }
        if let Some(x) = &self.xtr_site {
            x.encode(buf);
        }
        Ok(())
    }

    fn decode(w: u32, has_xtr: bool, r: &mut Reader<'_>) -> Result<AuthenticatedBody, DecodeError> {
        let nonce = r.u64("nonce")?;
        let key_id = r.u8("key id")?;
        let alg = AuthAlg(r.u8("algorithm id")?);
        let auth_len = r.u16("auth data length")? as usize;
        let auth_data = r.take(auth_len, "authentication data")?.to_vec();
        let records = decode_records(r, (w & 0xFF) as usize)?;
        let xtr_site = if has_xtr {
            Some(XtrSiteId::decode(r)?)
        } else {
            None
        };
        r.finish()?;
        Ok(AuthenticatedBody {
            nonce,
            key_id,
            alg,
            auth_data,
            records,
            xtr_site,
        })
    }

    /// Encodes with an authentication field of the algorithm's full digest
    /// length and signs it with `psk`.
    fn encode_signed(&self, word0: u32, psk: &[u8], salt: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let len = self.alg.digest_len().ok_or(EncodeError::Invalid {
            field: "algorithm id",
            reason: "unknown algorithm",
        })?;
        let mut body = self.clone();
        body.auth_data = vec![0; len];
        let mut out = Vec::with_capacity(body.wire_len());
        body.encode(word0, &mut out)?;
        let field = AuthField {
            offset: 16,
            len,
            key_id: self.key_id,
            alg: self.alg,
            nonce: self.nonce,
        };
        auth::sign_in_place(&mut out, &field, psk, salt).map_err(|_| EncodeError::Invalid {
            field: "authentication",
            reason: "could not sign",
        })?;
        Ok(out)
    }
}

/// Locates the authentication field of a Map-Register/Map-Notify/Map-Notify-Ack
/// packet, without decoding the records.
pub fn auth_field(packet: &[u8]) -> Result<AuthField, AuthError> {
    if packet.len() < 16 {
        return Err(AuthError::Malformed);
    }
    let nonce = u64::from_be_bytes(packet[4..12].try_into().map_err(|_| AuthError::Malformed)?);
    let len = u16::from_be_bytes([packet[14], packet[15]]) as usize;
    if packet.len() < 16 + len {
        return Err(AuthError::Malformed);
    }
    Ok(AuthField {
        offset: 16,
        len,
        key_id: packet[12],
        alg: AuthAlg(packet[13]),
        nonce,
    })
}

/// The salt for a register-like packet, from its type.
fn salt_for(packet: &[u8]) -> Result<&'static [u8], AuthError> {
    match packet.first().map(|b| b >> 4) {
        Some(TYPE_MAP_REGISTER) => Ok(auth::salt::MAP_REGISTER),
        Some(TYPE_MAP_NOTIFY) => Ok(auth::salt::MAP_NOTIFY),
        Some(TYPE_MAP_NOTIFY_ACK) => Ok(auth::salt::MAP_NOTIFY_ACK),
        _ => Err(AuthError::Malformed),
    }
}

/// Verifies a raw Map-Register/Map-Notify/Map-Notify-Ack with `psk`.
pub fn verify_packet(packet: &[u8], psk: &[u8]) -> Result<AuthField, AuthError> {
    let field = auth_field(packet)?;
    auth::verify(packet, &field, psk, salt_for(packet)?)?;
    Ok(field)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRegister {
    pub flags: RegisterFlags,
    #[serde(flatten)]
    pub body: AuthenticatedBody,
}

impl MapRegister {
    fn word0(&self) -> u32 {
        let f = &self.flags;
        let mut w: u32 = u32::from(TYPE_MAP_REGISTER) << 28;
        w |= u32::from(f.proxy_reply) << 27;
        w |= u32::from(f.security) << 26;
        w |= u32::from(self.body.xtr_site.is_some()) << 25;
        w |= u32::from(f.eid_notify) << 12;
        w |= u32::from(f.use_ttl) << 11;
        w |= u32::from(f.merge) << 10;
        w |= u32::from(f.want_map_notify) << 8;
        w
    }

    pub fn wire_len(&self) -> usize {
        self.body.wire_len()
    }

    /// Encodes with the authentication data as it is in `body.auth_data`.
    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.body.encode(self.word0(), buf)
    }

    /// Encodes and signs with the pre-shared key of `body.key_id`.
    pub fn encode_signed(&self, psk: &[u8]) -> Result<Vec<u8>, EncodeError> {
        self.body
            .encode_signed(self.word0(), psk, auth::salt::MAP_REGISTER)
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapRegister, DecodeError> {
        let flags = RegisterFlags {
            proxy_reply: w & (1 << 27) != 0,
            security: w & (1 << 26) != 0,
            eid_notify: w & (1 << 12) != 0,
            use_ttl: w & (1 << 11) != 0,
            merge: w & (1 << 10) != 0,
            want_map_notify: w & (1 << 8) != 0,
        };
        let body = AuthenticatedBody::decode(w, w & (1 << 25) != 0, r)?;
        Ok(MapRegister { flags, body })
    }
}

/// Map-Notify and Map-Notify-Ack. The xTR-ID/Site-ID trailer uses the I bit at
/// the Map-Register's position (bit 6): RFC 9301 says the Notify "has the same
/// contents as a Map-Register".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapNotify {
    #[serde(flatten)]
    pub body: AuthenticatedBody,
}

impl MapNotify {
    fn word0(&self, msg_type: u8) -> u32 {
        (u32::from(msg_type) << 28) | (u32::from(self.body.xtr_site.is_some()) << 25)
    }

    pub fn wire_len(&self) -> usize {
        self.body.wire_len()
    }

    /// A Map-Notify acknowledging a Map-Register: same nonce, key and records.
    pub fn acknowledging(reg: &MapRegister) -> MapNotify {
        let mut body = reg.body.clone();
        body.auth_data.clear();
        MapNotify { body }
    }

    pub fn encode<B: BufMut>(&self, ack: bool, buf: &mut B) -> Result<(), EncodeError> {
        self.body.encode(self.word0(Self::type_of(ack)), buf)
    }

    pub fn encode_signed(&self, ack: bool, psk: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let salt = if ack {
            auth::salt::MAP_NOTIFY_ACK
        } else {
            auth::salt::MAP_NOTIFY
        };
        self.body
            .encode_signed(self.word0(Self::type_of(ack)), psk, salt)
    }

    fn type_of(ack: bool) -> u8 {
        if ack {
            TYPE_MAP_NOTIFY_ACK
        } else {
            TYPE_MAP_NOTIFY
        }
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapNotify, DecodeError> {
        Ok(MapNotify {
            body: AuthenticatedBody::decode(w, w & (1 << 25) != 0, r)?,
        })
    }
}
