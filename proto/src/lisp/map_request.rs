//! Map-Request (RFC 9301 §5.2, I and N bits from RFC 9437).

use bytes::BufMut;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::addr::{Addr, EidPrefix, LispAddr};
use crate::error::{DecodeError, EncodeError};
use crate::lisp::record::EidRecord;
use crate::lisp::{TYPE_MAP_REQUEST, XtrSiteId};
use crate::wire::Reader;

/// One requested EID prefix. `notify` is RFC 9437's N bit (subscribe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestRecord {
    pub notify: bool,
    pub eid: EidPrefix,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapRequestFlags {
    /// A: authoritative (the ITR asks for an answer from the ETR).
    pub authoritative: bool,
    /// P: RLOC probe.
    pub probe: bool,
    /// S: Solicit-Map-Request.
    pub smr: bool,
    /// p: sent by a PITR.
    pub pitr: bool,
    /// s: SMR-invoked.
    pub smr_invoked: bool,
    /// L: sent to a local xTR.
    pub local_xtr: bool,
    /// D: don't send a Map-Reply.
    pub dont_reply: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRequest {
    pub flags: MapRequestFlags,
    pub nonce: u64,
    pub source_eid: LispAddr,
    /// 1 to 32 ITR-RLOCs.
    pub itr_rlocs: SmallVec<[Addr; 2]>,
    pub records: SmallVec<[RequestRecord; 1]>,
    /// M bit: the sender's own mapping, piggybacked.
    pub map_data: Option<EidRecord>,
    /// I bit (RFC 9437): xTR-ID and Site-ID appended.
    pub xtr_site: Option<XtrSiteId>,
}

impl MapRequest {
    /// A plain request for one EID from one ITR-RLOC.
    pub fn new(nonce: u64, eid: EidPrefix, itr_rloc: Addr) -> Self {
        let mut itr_rlocs = SmallVec::new();
        itr_rlocs.push(itr_rloc);
        let mut records = SmallVec::new();
        records.push(RequestRecord { notify: false, eid });
        MapRequest {
            nonce,
            itr_rlocs,
            records,
            ..Default::default()
        }
    }

    pub fn wire_len(&self) -> usize {
        12 + self.source_eid.wire_len()
            + self.itr_rlocs.iter().map(Addr::wire_len).sum::<usize>()
            + self
                .records
                .iter()
                .map(|r| 2 + r.eid.addr.wire_len())
                .sum::<usize>()
            + self.map_data.as_ref().map_or(0, EidRecord::wire_len)
            + if self.xtr_site.is_some() { 24 } else { 0 }
    }

    pub fn check(&self) -> Result<(), EncodeError> {
        if self.itr_rlocs.is_empty() || self.itr_rlocs.len() > 32 {
            return Err(EncodeError::TooMany {
                field: "itr-rlocs (1..=32)",
                count: self.itr_rlocs.len(),
                limit: 32,
            });
        }
        if self.records.len() > 255 {
            return Err(EncodeError::TooMany {
                field: "records",
                count: self.records.len(),
                limit: 255,
            });
        }
        if self
            .records
            .iter()
            .any(|r| r.eid.len > r.eid.addr.addr.max_len())
        {
            return Err(EncodeError::Invalid {
                field: "record EID mask-len",
                reason: "exceeds the address family's length",
            });
        }
        if let Some(m) = &self.map_data {
            m.check()?;
        }
        Ok(())
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.check()?;
        let f = &self.flags;
        let mut w: u32 = u32::from(TYPE_MAP_REQUEST) << 28;
        w |= u32::from(f.authoritative) << 27;
        w |= u32::from(self.map_data.is_some()) << 26;
        w |= u32::from(f.probe) << 25;
        w |= u32::from(f.smr) << 24;
        w |= u32::from(f.pitr) << 23;
        w |= u32::from(f.smr_invoked) << 22;
        w |= u32::from(self.xtr_site.is_some()) << 20;
        w |= u32::from(f.local_xtr) << 14;
        w |= u32::from(f.dont_reply) << 13;
        w |= ((self.itr_rlocs.len() as u32 - 1) & 0x1F) << 8;
        w |= self.records.len() as u32;
        buf.put_u32(w);
        buf.put_u64(self.nonce);
        self.source_eid.encode(buf);
        for a in &self.itr_rlocs {
            a.encode(buf);
        }
        for rec in &self.records {
            buf.put_u8(if rec.notify { 0x80 } else { 0 });
            buf.put_u8(rec.eid.len);
            rec.eid.addr.encode(buf);
        }
        if let Some(m) = &self.map_data {
            m.encode(buf);
        }
        if let Some(x) = &self.xtr_site {
            x.encode(buf);
        }
        Ok(())
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapRequest, DecodeError> {
        let mut m = MapRequest::default();
        m.decode_fields(w, r)?;
        Ok(m)
    }

    /// Fills `self` field by field, reusing its buffers: values are written
    /// once, where they stay, instead of being assembled and then moved.
    #[inline(always)]
    fn decode_fields(&mut self, w: u32, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.flags = MapRequestFlags {
            authoritative: w & (1 << 27) != 0,
            probe: w & (1 << 25) != 0,
            smr: w & (1 << 24) != 0,
            pitr: w & (1 << 23) != 0,
            smr_invoked: w & (1 << 22) != 0,
            local_xtr: w & (1 << 14) != 0,
            dont_reply: w & (1 << 13) != 0,
        };
        let has_map_data = w & (1 << 26) != 0;
        let has_xtr_id = w & (1 << 20) != 0;
        let irc = ((w >> 8) & 0x1F) as usize + 1;
        let rec_count = (w & 0xFF) as usize;
        self.nonce = r.u64("nonce")?;
        LispAddr::decode_to(r, "source EID", &mut self.source_eid)?;
        self.itr_rlocs.clear();
        for _ in 0..irc {
            self.itr_rlocs.push(Addr::None);
            let slot = self.itr_rlocs.last_mut().expect("just pushed");
            Addr::decode_to(r, "ITR-RLOC", slot)?;
        }
        self.records.clear();
        for _ in 0..rec_count {
            let rsvd = r.u8("request record flags")?;
            let len = r.u8("request record mask-len")?;
            self.records.push(RequestRecord::default());
            let rec = self.records.last_mut().expect("just pushed");
            rec.notify = rsvd & 0x80 != 0;
            rec.eid.len = len;
            LispAddr::decode_to(r, "request record EID", &mut rec.eid.addr)?;
            rec.eid.check("request record mask-len")?;
        }
        self.map_data = if has_map_data {
            Some(EidRecord::decode(r)?)
        } else {
            None
        };
        self.xtr_site = if has_xtr_id {
            Some(XtrSiteId::decode(r)?)
        } else {
            None
        };
        r.finish()
    }

    /// Decodes into an existing value, reusing its storage: the receive loop
    /// of a busy Map-Resolver/Map-Server keeps one and decodes every request
    /// into it, with no allocation and no large moves. On error `self` holds
    /// a partial decode and must not be used.
    pub fn decode_into(&mut self, buf: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(buf);
        let w = r.u32("header")?;
        let t = (w >> 28) as u8;
        if t != TYPE_MAP_REQUEST {
            return Err(DecodeError::UnknownType(t));
        }
        self.decode_fields(w, &mut r)
    }

    /// Decodes a complete Map-Request.
    pub fn decode(buf: &[u8]) -> Result<MapRequest, DecodeError> {
        let mut r = Reader::new(buf);
        let w = r.u32("header")?;
        let t = (w >> 28) as u8;
        if t != TYPE_MAP_REQUEST {
            return Err(DecodeError::UnknownType(t));
        }
        Self::decode_body(w, &mut r)
    }
}
