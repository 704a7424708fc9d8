//! EID-records and RLOC-records (RFC 9301 §5.4), shared by Map-Reply,
//! Map-Register, Map-Notify, Map-Bulk-Reply and the sync channel.

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::addr::{Addr, EidPrefix, LispAddr};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, bounded_capacity};

/// Map-Reply action (3 bits). Kept as a number so unassigned values survive a round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action(pub u8);

impl Action {
    pub const NO_ACTION: Action = Action(0);
    pub const NATIVELY_FORWARD: Action = Action(1);
    pub const SEND_MAP_REQUEST: Action = Action(2);
    pub const DROP_NO_REASON: Action = Action(3);
    pub const DROP_POLICY_DENIED: Action = Action(4);
    pub const DROP_AUTH_FAILURE: Action = Action(5);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "no-action",
            1 => "natively-forward",
            2 => "send-map-request",
            3 => "drop",
            4 => "drop-policy-denied",
            5 => "drop-auth-failure",
            _ => "unassigned",
        }
    }

    pub fn is_drop(self) -> bool {
        matches!(self.0, 3..=5)
    }
}

/// Record TTL meaning "the receiver decides" (RFC 9301 §5.4).
pub const TTL_RECEIVER_DECIDES: u32 = 0xFFFF_FFFF;

/// An RLOC-record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Locator {
    pub priority: u8,
    pub weight: u8,
    pub m_priority: u8,
    pub m_weight: u8,
    /// L: the locator is local to the sender.
    pub local: bool,
    /// p: this locator was used to probe.
    pub probed: bool,
    /// R: the sender believes it reachable.
    pub reachable: bool,
    pub addr: Addr,
}

impl Locator {
    /// A reachable unicast locator with the given priority and weight.
    pub fn new(addr: impl Into<Addr>, priority: u8, weight: u8) -> Self {
        Locator {
            priority,
            weight,
            m_priority: 255,
            m_weight: 0,
            local: false,
            probed: false,
            reachable: true,
            addr: addr.into(),
        }
    }

    pub const MIN_WIRE_LEN: usize = 6 + 2;

    #[inline]
    pub fn wire_len(&self) -> usize {
        6 + self.addr.wire_len()
    }

    #[inline]
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(&[self.priority, self.weight, self.m_priority, self.m_weight]);
        let flags = (u16::from(self.local) << 2)
            | (u16::from(self.probed) << 1)
            | u16::from(self.reachable);
        buf.put_u16(flags);
        self.addr.encode(buf);
    }

    #[inline]
    pub fn decode(r: &mut Reader<'_>) -> Result<Locator, DecodeError> {
        let mut l = Locator::new(Addr::None, 0, 0);
        l.decode_to(r)?;
        Ok(l)
    }

    /// Fills `self` in place (no wide moves of a returned value).
    #[inline(always)]
    pub fn decode_to(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let [priority, weight, m_priority, m_weight] = r.array::<4>("locator priority/weight")?;
        let flags = r.u16("locator flags")?;
        self.priority = priority;
        self.weight = weight;
        self.m_priority = m_priority;
        self.m_weight = m_weight;
        self.local = flags & 0x4 != 0;
        self.probed = flags & 0x2 != 0;
        self.reachable = flags & 0x1 != 0;
        Addr::decode_to(r, "locator", &mut self.addr)
    }
}

/// An EID-record with its locator set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EidRecord {
    /// Minutes; 0 = remove now; [`TTL_RECEIVER_DECIDES`].
    pub ttl: u32,
    pub eid: EidPrefix,
    /// Meaningful only when `locators` is empty.
    pub action: Action,
    /// A: set only by an authoritative ETR.
    pub authoritative: bool,
    /// 12 bits.
    pub map_version: u16,
    pub locators: Vec<Locator>,
}

impl EidRecord {
    pub fn new(eid: EidPrefix, ttl: u32, locators: Vec<Locator>) -> Self {
        EidRecord {
            ttl,
            eid,
            action: Action::NO_ACTION,
            authoritative: false,
            map_version: 0,
            locators,
        }
    }

    /// A negative record: no locators, an action.
    pub fn negative(eid: EidPrefix, ttl: u32, action: Action) -> Self {
        EidRecord {
            ttl,
            eid,
            action,
            authoritative: false,
            map_version: 0,
            locators: Vec::new(),
        }
    }

    pub const MIN_WIRE_LEN: usize = 12 + 2;

    /// Bytes on the wire: 10 of TTL, counts, flags and Map-Version, then the
    /// EID with its AFI, then the locators.
    pub fn wire_len(&self) -> usize {
        10 + self.eid.addr.wire_len() + self.locators.iter().map(Locator::wire_len).sum::<usize>()
    }

    pub fn check(&self) -> Result<(), EncodeError> {
        if self.locators.len() > 255 {
            return Err(EncodeError::TooMany {
                field: "locators",
                count: self.locators.len(),
                limit: 255,
            });
        }
        if self.action.0 > 7 || self.map_version > 0xFFF {
            return Err(EncodeError::Invalid {
                field: "record",
                reason: "action or map-version out of range",
            });
        }
        if self.eid.len > self.eid.addr.addr.max_len() {
            return Err(EncodeError::Invalid {
                field: "record EID mask-len",
                reason: "exceeds the address family's length",
            });
        }
        Ok(())
    }

    /// Encodes; callers validate with [`EidRecord::check`] first (messages do).
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u32(self.ttl);
        buf.put_u8(self.locators.len() as u8);
        buf.put_u8(self.eid.len);
        let w = (u16::from(self.action.0 & 7) << 13) | (u16::from(self.authoritative) << 12);
        buf.put_u16(w);
        buf.put_u16(self.map_version & 0x0FFF);
        self.eid.addr.encode(buf);
        for l in &self.locators {
            l.encode(buf);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<EidRecord, DecodeError> {
        let mut rec = EidRecord::negative(EidPrefix::default(), 0, Action::NO_ACTION);
        rec.decode_to(r)?;
        Ok(rec)
    }

    /// Fills `self` in place, reusing its locator vector.
    pub fn decode_to(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.ttl = r.u32("record TTL")?;
        let loc_count = r.u8("locator count")? as usize;
        self.eid.len = r.u8("EID mask-len")?;
        let w = r.u16("record flags")?;
        self.map_version = r.u16("map-version")? & 0x0FFF;
        self.action = Action((w >> 13) as u8);
        self.authoritative = w & 0x1000 != 0;
        LispAddr::decode_to(r, "record EID", &mut self.eid.addr)?;
        self.eid.check("record EID mask-len")?;
        self.locators.clear();
        self.locators.reserve(bounded_capacity(
            loc_count,
            r.remaining(),
            Locator::MIN_WIRE_LEN,
        ));
        for _ in 0..loc_count {
            self.locators.push(Locator::new(Addr::None, 0, 0));
            self.locators
                .last_mut()
                .expect("just pushed")
                .decode_to(r)?;
        }
        Ok(())
    }
}

/// Decodes `count` records, bounding the allocation by the bytes present.
pub(crate) fn decode_records(
    r: &mut Reader<'_>,
    count: usize,
) -> Result<Vec<EidRecord>, DecodeError> {
    let mut out = Vec::with_capacity(bounded_capacity(
        count,
        r.remaining(),
        EidRecord::MIN_WIRE_LEN,
    ));
    for _ in 0..count {
        out.push(EidRecord::negative(
            EidPrefix::default(),
            0,
            Action::NO_ACTION,
        ));
        out.last_mut().expect("just pushed").decode_to(r)?;
    }
    Ok(out)
}

pub(crate) fn check_records(records: &[EidRecord], limit: usize) -> Result<(), EncodeError> {
    if records.len() > limit {
        return Err(EncodeError::TooMany {
            field: "records",
            count: records.len(),
            limit,
        });
    }
    records.iter().try_for_each(EidRecord::check)
}
