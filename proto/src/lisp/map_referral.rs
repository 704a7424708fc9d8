//! Map-Referral (RFC 8111 §6.4): the DDT node's answer.

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::addr::{EidPrefix, LispAddr};
use crate::error::{DecodeError, EncodeError};
use crate::lisp::TYPE_MAP_REFERRAL;
use crate::lisp::record::Locator;
use crate::wire::{Reader, bounded_capacity};

/// Referral action (3 bits), kept as a number so unassigned values round-trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReferralAction(pub u8);

impl ReferralAction {
    pub const NODE_REFERRAL: ReferralAction = ReferralAction(0);
    pub const MS_REFERRAL: ReferralAction = ReferralAction(1);
    pub const MS_ACK: ReferralAction = ReferralAction(2);
    pub const MS_NOT_REGISTERED: ReferralAction = ReferralAction(3);
    pub const DELEGATION_HOLE: ReferralAction = ReferralAction(4);
    pub const NOT_AUTHORITATIVE: ReferralAction = ReferralAction(5);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "node-referral",
            1 => "ms-referral",
            2 => "ms-ack",
            3 => "ms-not-registered",
            4 => "delegation-hole",
            5 => "not-authoritative",
            _ => "unassigned",
        }
    }

    /// The TTL (minutes) RFC 8111 §6.1 recommends for the action.
    pub fn default_ttl(self) -> u32 {
        match self.0 {
            0..=2 => 1440,
            3 => 1,
            4 => 15,
            _ => 0,
        }
    }
}

/// A signature section (RFC 8111 §6.4.1), kept as carried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReferralSignature {
    pub original_ttl: u32,
    pub expiration: u32,
    pub inception: u32,
    pub key_tag: u16,
    pub algorithm: u8,
    pub signature: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReferralRecord {
    /// Minutes.
    pub ttl: u32,
    pub eid: EidPrefix,
    pub action: ReferralAction,
    pub authoritative: bool,
    /// I: the referral set is incomplete; do not cache.
    pub incomplete: bool,
    pub map_version: u16,
    pub referrals: Vec<Locator>,
    pub signatures: Vec<ReferralSignature>,
}

impl ReferralRecord {
    const MIN_WIRE_LEN: usize = 12 + 2;

    fn wire_len(&self) -> usize {
        12 + self.eid.addr.wire_len()
            + self.referrals.iter().map(Locator::wire_len).sum::<usize>()
            + self
                .signatures
                .iter()
                .map(|s| 20 + s.signature.len())
                .sum::<usize>()
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.referrals.len() > 255 {
            return Err(EncodeError::TooMany {
                field: "referrals",
                count: self.referrals.len(),
                limit: 255,
            });
        }
        if self.signatures.len() > 15 {
            return Err(EncodeError::TooMany {
                field: "signatures",
                count: self.signatures.len(),
                limit: 15,
            });
        }
        if self
            .signatures
            .iter()
            .any(|s| s.signature.len() > u16::MAX as usize)
        {
            return Err(EncodeError::Invalid {
                field: "signature",
                reason: "longer than 65535 bytes",
            });
        }
        if self.action.0 > 7
            || self.map_version > 0xFFF
            || self.eid.len > self.eid.addr.addr.max_len()
        {
            return Err(EncodeError::Invalid {
                field: "referral record",
                reason: "action, map-version or mask-len out of range",
            });
        }
        Ok(())
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u32(self.ttl);
        buf.put_u8(self.referrals.len() as u8);
        buf.put_u8(self.eid.len);
        let w = (u16::from(self.action.0 & 7) << 13)
            | (u16::from(self.authoritative) << 12)
            | (u16::from(self.incomplete) << 11);
        buf.put_u16(w);
        buf.put_u16((u16::from(self.signatures.len() as u8) << 12) | (self.map_version & 0xFFF));
        self.eid.addr.encode(buf);
        for l in &self.referrals {
            l.encode(buf);
        }
        for s in &self.signatures {
            buf.put_u32(s.original_ttl);
            buf.put_u32(s.expiration);
            buf.put_u32(s.inception);
            buf.put_u16(s.key_tag);
            buf.put_u16(s.signature.len() as u16);
            buf.put_u8(s.algorithm);
            buf.put_u8(0);
            buf.put_u16(0);
            buf.put_slice(&s.signature);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<ReferralRecord, DecodeError> {
        let ttl = r.u32("referral TTL")?;
        let ref_count = r.u8("referral count")? as usize;
        let len = r.u8("referral EID mask-len")?;
        let w = r.u16("referral flags")?;
        let sv = r.u16("sigcnt/map-version")?;
        let addr = LispAddr::decode(r, "referral EID")?;
        let eid = EidPrefix { addr, len };
        eid.check("referral EID mask-len")?;
        let mut referrals = Vec::with_capacity(bounded_capacity(
            ref_count,
            r.remaining(),
            Locator::MIN_WIRE_LEN,
        ));
        for _ in 0..ref_count {
            referrals.push(Locator::decode(r)?);
        }
        let sig_count = usize::from(sv >> 12);
        let mut signatures = Vec::with_capacity(bounded_capacity(sig_count, r.remaining(), 20));
        for _ in 0..sig_count {
            let original_ttl = r.u32("signature original TTL")?;
            let expiration = r.u32("signature expiration")?;
            let inception = r.u32("signature inception")?;
            let key_tag = r.u16("signature key tag")?;
            let sig_len = usize::from(r.u16("signature length")?);
            let algorithm = r.u8("signature algorithm")?;
            r.skip(3, "signature reserved")?;
            let signature = r.take(sig_len, "signature")?.to_vec();
            signatures.push(ReferralSignature {
                original_ttl,
                expiration,
                inception,
                key_tag,
                algorithm,
                signature,
            });
        }
        Ok(ReferralRecord {
            ttl,
            eid,
            action: ReferralAction((w >> 13) as u8),
            authoritative: w & 0x1000 != 0,
            incomplete: w & 0x0800 != 0,
            map_version: sv & 0xFFF,
            referrals,
            signatures,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapReferral {
    pub nonce: u64,
    pub records: Vec<ReferralRecord>,
}

impl MapReferral {
    pub fn wire_len(&self) -> usize {
        12 + self
            .records
            .iter()
            .map(ReferralRecord::wire_len)
            .sum::<usize>()
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        if self.records.len() > 255 {
            return Err(EncodeError::TooMany {
                field: "records",
                count: self.records.len(),
                limit: 255,
            });
        }
        self.records.iter().try_for_each(ReferralRecord::check)?;
        buf.put_u32((u32::from(TYPE_MAP_REFERRAL) << 28) | self.records.len() as u32);
        buf.put_u64(self.nonce);
        for rec in &self.records {
            rec.encode(buf);
        }
        Ok(())
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapReferral, DecodeError> {
        let nonce = r.u64("nonce")?;
        let count = (w & 0xFF) as usize;
        let mut records = Vec::with_capacity(bounded_capacity(
            count,
            r.remaining(),
            ReferralRecord::MIN_WIRE_LEN,
        ));
        for _ in 0..count {
            records.push(ReferralRecord::decode(r)?);
        }
        r.finish()?;
        Ok(MapReferral { nonce, records })
    }
}
