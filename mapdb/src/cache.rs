//! The map-cache entry: what an ITR keeps per EID prefix, in 56 bytes plus a
//! shared, packed locator set.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use lisp_msx_proto::Addr;
use lisp_msx_proto::lisp::record::{Action, EidRecord, Locator, TTL_RECEIVER_DECIDES};

use crate::map::PrefixMap;
use crate::prefix::Prefix;

/// The ITR map-cache (and any table of received mappings).
pub type MapCache = PrefixMap<CacheEntry>;

/// Where a cached mapping came from; decides refresh and eviction policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A Map-Reply with locators.
    MapReply,
    /// Configured.
    Static,
    /// A Map-Bulk-Reply (MSX bulk copy).
    Bulk,
    /// A Map-Notify on a subscription (pub/sub).
    Subscription,
    /// Learned from a peer ITR by cache synchronization.
    Sync,
    /// A negative Map-Reply: no locators, an action.
    Negative,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::MapReply => "map-reply",
            Source::Static => "static",
            Source::Bulk => "bulk",
            Source::Subscription => "subscription",
            Source::Sync => "sync",
            Source::Negative => "negative",
        }
    }
}

/// `expires` value of an entry that never expires (record TTL "receiver decides").
pub const NEVER: u32 = u32::MAX;

/// One map-cache entry. Times are seconds on the owner's monotonic clock
/// (e.g. seconds since the daemon started), so they fit a `u32` for 136 years.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    pub locators: RlocSet,
    /// Packets and bytes encapsulated with this entry.
    pub packets: u64,
    pub bytes: u64,
    /// When the entry expires ([`NEVER`]: no TTL).
    pub expires: u32,
    /// When the data plane last used the entry; 0: never (clocks start at 1).
    /// Installation is not use: smart synchronization refreshes only entries
    /// that carried traffic.
    pub last_used: u32,
    /// When the mapping was installed or last replaced (for uptime).
    pub installed: u32,
    /// 12-bit Map-Version (RFC 9302).
    pub map_version: u16,
    /// What to do with packets when there is no locator.
    pub action: Action,
    pub source: Source,
    /// A bit of the record: from an authoritative ETR/Map-Server.
    pub authoritative: bool,
}

impl CacheEntry {
    /// A positive entry.
    pub fn new(locators: RlocSet, source: Source, expires: u32) -> CacheEntry {
        CacheEntry {
            locators,
            packets: 0,
            bytes: 0,
            expires,
            last_used: 0,
            installed: 0,
            map_version: 0,
            action: Action::NO_ACTION,
            source,
            authoritative: false,
        }
    }

    /// A negative entry: no locators, `action` for the packets.
    pub fn negative(action: Action, expires: u32) -> CacheEntry {
        CacheEntry {
            action,
            ..CacheEntry::new(RlocSet::EMPTY, Source::Negative, expires)
        }
    }

    /// The entry for a received record at time `now` (TTL minutes → expiry).
    /// The locator set is packed afresh; [`CacheEntry::from_record_in`]
    /// shares identical sets instead.
    pub fn from_record(rec: &EidRecord, source: Source, now: u32) -> CacheEntry {
        CacheEntry::with_locators(rec, RlocSet::new(&rec.locators), source, now)
    }

    /// Like [`CacheEntry::from_record`], taking the locator set from `interner`.
    pub fn from_record_in(
        rec: &EidRecord,
        source: Source,
        now: u32,
        interner: &mut RlocInterner,
    ) -> CacheEntry {
        CacheEntry::with_locators(rec, interner.intern(&rec.locators), source, now)
    }

    fn with_locators(rec: &EidRecord, locators: RlocSet, source: Source, now: u32) -> CacheEntry {
        CacheEntry {
            locators,
            packets: 0,
            bytes: 0,
            expires: expiry(rec.ttl, now),
            last_used: 0,
            installed: now,
            map_version: rec.map_version & 0x0FFF,
            action: rec.action,
            source,
            authoritative: rec.authoritative,
        }
    }

    /// For an entry replacing `old` under the same key: the traffic counters
    /// and last use carry over, and the uptime too when the locators are the
    /// same (a refresh is not a new mapping).
    pub fn carry_over(&mut self, old: &CacheEntry) {
        self.packets = old.packets;
        self.bytes = old.bytes;
        self.last_used = old.last_used;
        if old.locators == self.locators {
            self.installed = old.installed;
        }
    }

    /// The record for this entry as seen at `now`: the TTL is the remaining
    /// time, rounded up to whole minutes.
    pub fn to_record(&self, eid: Prefix, now: u32) -> EidRecord {
        EidRecord {
            ttl: self.ttl_minutes(now),
            eid: eid.into(),
            action: self.action,
            authoritative: self.authoritative,
            map_version: self.map_version,
            locators: self.locators.iter().collect(),
        }
    }

    /// Remaining TTL in minutes, rounded up (0 once expired).
    pub fn ttl_minutes(&self, now: u32) -> u32 {
        if self.expires == NEVER {
            TTL_RECEIVER_DECIDES
        } else {
            self.expires.saturating_sub(now).div_ceil(60)
        }
    }

    #[inline]
    pub fn is_expired(&self, now: u32) -> bool {
        self.expires != NEVER && now >= self.expires
    }

    /// Counts one packet of `bytes` sent with this entry at `now`.
    #[inline]
    pub fn touch(&mut self, now: u32, bytes: u32) {
        self.packets += 1;
        self.bytes += u64::from(bytes);
        self.last_used = now;
    }
}

/// Record TTL (minutes) to an expiry; never [`NEVER`] unless the TTL says so.
fn expiry(ttl_minutes: u32, now: u32) -> u32 {
    if ttl_minutes == TTL_RECEIVER_DECIDES {
        NEVER
    } else {
        let t = u64::from(now) + u64::from(ttl_minutes) * 60;
        t.min(u64::from(NEVER - 1)) as u32
    }
}

/// A locator set, packed and shared.
///
/// Packed because a map-cache holds millions of sets: an IPv4 locator takes
/// 9 bytes here against 48 for a [`Locator`]. Shared (`Arc`) because many
/// prefixes map to the same xTRs and because entries are cloned into sync
/// and bulk messages; [`RlocInterner`] makes equal sets one allocation.
/// The empty set (negative entries) allocates nothing.
///
/// Layout: a count byte, then per locator a flags byte (bits 0-1 family:
/// 0 none, 1 IPv4, 2 IPv6; bit 2 L, bit 3 p, bit 4 R), priority, weight,
/// m-priority, m-weight and 0, 4 or 16 address bytes.
#[derive(Clone, Default)]
pub struct RlocSet(Option<Arc<[u8]>>);

const F_V4: u8 = 1;
const F_V6: u8 = 2;
const F_LOCAL: u8 = 4;
const F_PROBED: u8 = 8;
const F_REACHABLE: u8 = 16;

impl RlocSet {
    pub const EMPTY: RlocSet = RlocSet(None);

    /// Packs `locators`; past 255 (the record format's limit) they are dropped.
    pub fn new(locators: &[Locator]) -> RlocSet {
        if locators.is_empty() {
            return RlocSet::EMPTY;
        }
        let mut buf = Vec::new();
        encode(locators, &mut buf);
        RlocSet(Some(buf.into()))
    }

    /// Number of locators.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes().first().map_or(0, |&n| usize::from(n))
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The locators, unpacked.
    pub fn iter(&self) -> RlocIter<'_> {
        RlocIter {
            rest: self.bytes().get(1..).unwrap_or(&[]),
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// Heap bytes of this set (shared sets count once per holder).
    pub fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |a| a.len() + 2 * size_of::<usize>())
    }

    /// True when both hold the same allocation (interned together).
    pub fn ptr_eq(&self, other: &RlocSet) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

fn encode(locators: &[Locator], buf: &mut Vec<u8>) {
    let locators = &locators[..locators.len().min(255)];
    buf.push(locators.len() as u8);
    for l in locators {
        let mut flags = 0;
        if l.local {
            flags |= F_LOCAL;
        }
        if l.probed {
            flags |= F_PROBED;
        }
        if l.reachable {
            flags |= F_REACHABLE;
        }
        match l.addr {
            Addr::None => buf.push(flags),
            Addr::V4(a) => {
                buf.push(flags | F_V4);
                buf.extend_from_slice(&[l.priority, l.weight, l.m_priority, l.m_weight]);
                buf.extend_from_slice(&a.to_be_bytes());
                continue;
            }
            Addr::V6(a) => {
                buf.push(flags | F_V6);
                buf.extend_from_slice(&[l.priority, l.weight, l.m_priority, l.m_weight]);
                buf.extend_from_slice(&a.to_be_bytes());
                continue;
            }
        }
        buf.extend_from_slice(&[l.priority, l.weight, l.m_priority, l.m_weight]);
    }
}

impl PartialEq for RlocSet {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for RlocSet {}

/// Hashes as its packed bytes, so an interner can look sets up by bytes.
impl Hash for RlocSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl Borrow<[u8]> for RlocSet {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl fmt::Debug for RlocSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<&[Locator]> for RlocSet {
    fn from(l: &[Locator]) -> Self {
        RlocSet::new(l)
    }
}

impl<'a> IntoIterator for &'a RlocSet {
    type Item = Locator;
    type IntoIter = RlocIter<'a>;
    fn into_iter(self) -> RlocIter<'a> {
        self.iter()
    }
}

/// Unpacks an [`RlocSet`].
#[derive(Clone)]
pub struct RlocIter<'a> {
    rest: &'a [u8],
}

impl Iterator for RlocIter<'_> {
    type Item = Locator;

    fn next(&mut self) -> Option<Locator> {
        let (&[flags, priority, weight, m_priority, m_weight], rest) =
            self.rest.split_first_chunk::<5>()?;
        let (addr, rest) = match flags & 3 {
            F_V4 => {
                let (a, rest) = rest.split_first_chunk::<4>()?;
                (Addr::V4(u32::from_be_bytes(*a)), rest)
            }
            F_V6 => {
                let (a, rest) = rest.split_first_chunk::<16>()?;
                (Addr::V6(u128::from_be_bytes(*a)), rest)
            }
            _ => (Addr::None, rest),
        };
        self.rest = rest;
        Some(Locator {
            priority,
            weight,
            m_priority,
            m_weight,
            local: flags & F_LOCAL != 0,
            probed: flags & F_PROBED != 0,
            reachable: flags & F_REACHABLE != 0,
            addr,
        })
    }
}

/// Makes equal locator sets share one allocation.
///
/// Sets are kept until [`RlocInterner::purge`] drops those no entry holds any
/// more; call it from the same timer that expires entries.
#[derive(Default)]
pub struct RlocInterner {
    sets: HashSet<RlocSet>,
    scratch: Vec<u8>,
}

impl RlocInterner {
    pub fn new() -> Self {
        RlocInterner::default()
    }

    /// The shared set equal to `locators`.
    pub fn intern(&mut self, locators: &[Locator]) -> RlocSet {
        if locators.is_empty() {
            return RlocSet::EMPTY;
        }
        self.scratch.clear();
        encode(locators, &mut self.scratch);
        if let Some(s) = self.sets.get(self.scratch.as_slice()) {
            return s.clone();
        }
        let s = RlocSet(Some(self.scratch.as_slice().into()));
        self.sets.insert(s.clone());
        s
    }

    /// Shares `set` if an equal one is known, else remembers it.
    pub fn share(&mut self, set: &RlocSet) -> RlocSet {
        if set.is_empty() {
            return RlocSet::EMPTY;
        }
        if let Some(s) = self.sets.get(set) {
            return s.clone();
        }
        self.sets.insert(set.clone());
        set.clone()
    }

    /// Forgets the sets only the interner still holds.
    pub fn purge(&mut self) {
        self.sets
            .retain(|s| s.0.as_ref().is_some_and(|a| Arc::strong_count(a) > 1));
    }

    /// Distinct sets known.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locs() -> Vec<Locator> {
        let mut a = Locator::new(Addr::V4(0xc633_6401), 1, 50);
        a.local = true;
        let mut b = Locator::new("2001:db8::1".parse::<Addr>().unwrap(), 2, 100);
        b.reachable = false;
        b.probed = true;
        b.m_priority = 7;
        b.m_weight = 9;
        let c = Locator::new(Addr::None, 255, 0);
        vec![a, b, c]
    }

    #[test]
    fn rloc_sets_round_trip() {
        let l = locs();
        let s = RlocSet::new(&l);
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().collect::<Vec<_>>(), l);
        assert_eq!(s.heap_bytes(), 1 + 9 + 21 + 5 + 16);
        assert!(RlocSet::new(&[]).is_empty());
        assert_eq!(RlocSet::EMPTY.iter().count(), 0);
    }

    #[test]
    fn interner_shares_and_purges() {
        let mut i = RlocInterner::new();
        let a = i.intern(&locs());
        let b = i.intern(&locs());
        assert!(a.ptr_eq(&b));
        let c = i.share(&RlocSet::new(&locs()));
        assert!(c.ptr_eq(&a));
        assert_eq!(i.len(), 1);
        drop((a, b));
        i.purge();
        assert_eq!(i.len(), 1, "c still holds it");
        drop(c);
        i.purge();
        assert!(i.is_empty());
    }

    #[test]
    fn records_round_trip() {
        let eid: Prefix = "[3]192.0.2.0/24".parse().unwrap();
        let mut rec = EidRecord::new(eid.into(), 1440, locs());
        rec.map_version = 0x123;
        rec.authoritative = true;
        let e = CacheEntry::from_record(&rec, Source::MapReply, 1000);
        assert_eq!(e.expires, 1000 + 1440 * 60);
        assert_eq!(e.to_record(eid, 1000), rec);
        assert_eq!(e.to_record(eid, 1001).ttl, 1440);
        assert_eq!(e.to_record(eid, 1060).ttl, 1439);
        assert!(!e.is_expired(1000 + 1440 * 60 - 1) && e.is_expired(1000 + 1440 * 60));

        let neg = EidRecord::negative(eid.into(), TTL_RECEIVER_DECIDES, Action::NATIVELY_FORWARD);
        let e = CacheEntry::from_record(&neg, Source::Negative, 5);
        assert_eq!(e.expires, NEVER);
        assert!(!e.is_expired(u32::MAX - 1));
        assert_eq!(e.to_record(eid, 99), neg);
        assert_eq!(
            CacheEntry::from_record(
                &EidRecord::new(eid.into(), u32::MAX - 1, vec![]),
                Source::Static,
                7
            )
            .expires,
            NEVER - 1
        );
    }

    #[test]
    fn entry_is_compact() {
        assert_eq!(size_of::<CacheEntry>(), 56);
        assert_eq!(size_of::<Option<CacheEntry>>(), 56);
        assert_eq!(size_of::<crate::trie::Slot<CacheEntry>>(), 56);
    }
}
