//! The synchronization engine, sans I/O: inputs are method calls with the
//! time passed in ([`Time`]), outputs are [`Action`]s drained by the caller.
//!
//! # API
//!
//! - [`SyncEngine::new`]`(cfg, member_id, subtype, t)`; `subtype` is the
//!   Map-Sync code point (`ExtCodepoints::sync`).
//! - ITR side: [`SyncEngine::local_upsert`] (a Map-Reply result or a
//!   refresh was installed), [`SyncEngine::local_remove`] (withdrawn, shared
//!   with the set), [`SyncEngine::on_expiry`] (a record's TTL ran out: the
//!   answer says whether to refresh it).
//! - Network side: [`SyncEngine::on_event`] ([`SyncEvent`] from the
//!   transport), [`SyncEngine::on_solicit`] (a Map-Solicit on UDP 4342).
//! - Timers: [`SyncEngine::tick`], due at [`SyncEngine::next_wakeup`].
//! - Outputs: [`SyncEngine::drain_actions`]; state for `show lisp sync`:
//!   [`SyncEngine::members`], [`SyncEngine::stats`], [`SyncEngine::show`].
//!
//! # How the set stays consistent
//!
//! The engine mirrors the shared records, keyed by (instance id, EID prefix).
//!
//! *Naive* (the reference): each Map-Reply makes the member send its whole
//! table to every peer as Full pages with R=1; a receiver stages the pages
//! and, on the last, replaces its table and restarts every TTL. A transfer
//! triggered while one to that peer is still being written is coalesced
//! into one more transfer.
//!
//! *Smart*: a local change gets a version (`max(unix ms, the key's previous
//! version + 1)`) and is batched (`batch_ms`, `batch_max`) into a Delta to
//! every peer; a record
//! carries its absolute expiry, so all members drop it at the same instant.
//! Concurrent writes are ordered by (version, origin member). At expiry each
//! member asks its own data plane: unused records are dropped locally and
//! silently, used ones are refreshed and the refreshed record is shared.
//! Withdrawals leave tombstones so an older copy cannot come back.
//!
//! Every `digest_interval_secs` the lower member id of each pair sends a
//! digest: 256 buckets (by a hash of the key), each the XOR of hash(key,
//! record, expiry) over the records written at least [`SETTLE_MS`] ago (the
//! digest's cutoff) and not expiring within [`HORIZON_MS`] of it. The
//! receiver computes its own table as of the same cutoff, so changes still
//! in flight do not show as differences. It asks for the differing buckets
//! only, merges the answer, then answers with its own digest (Q bit), so
//! the first member fetches in turn only what the second had and it lacked.
//! Digests cost no pass over the table: per-bucket XORs are kept current,
//! and a 30 s log of changes lets a digest step back to its cutoff.
//!
//! # Flow control
//!
//! The engine counts the bytes it handed to the transport for each peer and
//! not yet reported written ([`SyncEvent::Written`]). Bulk streams (whole
//! table, repair answers) are paced to half of `peer_queue_bytes`; a message
//! that would exceed the whole bound is not sent, the peer is marked for
//! repair and gets nothing until its queue has drained to half, then a
//! digest exchange (smart) or a new full transfer (naive) catches it up.
//!
//! A (re)started member is empty: it solicits the set, pulls the whole table
//! of the fullest peer that says hello, and emits [`Action::Ready`] when the
//! last page arrives, when every configured peer reported an empty table, or
//! after `pull_timeout_ms`.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lisp_msx_proto::EidPrefix;
use lisp_msx_proto::addr::{Addr, LispAddr};
use lisp_msx_proto::api;
use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::record::{EidRecord, TTL_RECEIVER_DECIDES};
use lisp_msx_proto::msx::MapSolicit;
use lisp_msx_proto::msx::sync::{
    self, BUCKETS, ChangesWriter, FullWriter, MapSync, SyncChanges, SyncDigest, SyncFull,
    SyncHello, SyncUpsert, SyncWithdraw, UpsertRef,
};
use tracing::{debug, info, warn};

use super::{Mode, SyncConfig};

/// Largest message the engine builds (a frame holds 65535).
const PAGE_BYTES: usize = 60_000;
/// Changes younger than this are left out of digests (still in flight).
pub const SETTLE_MS: u64 = 1_000;
/// Records expiring this close to a digest's cutoff are left out of it
/// (members drop them at about that time anyway).
pub const HORIZON_MS: u64 = 2 * SETTLE_MS;
/// Expired records stay this long before the engine purges them itself
/// (the reactor normally reports the expiry first).
const PURGE_GRACE_MS: u64 = 10_000;
/// A withdrawal of a record without expiry is remembered this long.
const TOMB_MS: u64 = 3_600_000;
/// Most records staged from one naive transfer.
const MAX_STAGED: usize = 5_000_000;
const SKEW_WARN_MS: u64 = 1_000;
/// Expiry of a record that never expires.
pub const NEVER: u64 = u64::MAX;

/// The caller's clocks: monotonic for timers, wall clock (unix ms) for
/// the expiry times and versions members share.
#[derive(Clone, Copy, Debug)]
pub struct Time {
    pub now: Instant,
    pub unix_ms: u64,
}

impl Time {
    pub fn now() -> Time {
        Time {
            now: Instant::now(),
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// `ms` later on both clocks.
    pub fn plus_ms(self, ms: u64) -> Time {
        Time {
            now: self.now + Duration::from_millis(ms),
            unix_ms: self.unix_ms + ms,
        }
    }
}

/// A shared record's key: instance id and EID prefix (host bits cleared,
/// no instance id inside the EID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncKey {
    pub iid: u32,
    pub eid: EidPrefix,
}

impl SyncKey {
    /// The smallest key (range starts).
    const MIN: SyncKey = SyncKey {
        iid: 0,
        eid: EidPrefix {
            addr: LispAddr::plain(Addr::None),
            len: 0,
        },
    };

    pub fn new(iid: u32, eid: EidPrefix) -> SyncKey {
        let mut eid = eid.normalized();
        eid.addr.iid = None;
        SyncKey { iid, eid }
    }

    /// The key of a map-cache entry.
    pub fn of_prefix(p: lisp_mapdb::Prefix) -> SyncKey {
        SyncKey::new(p.iid(), p.into())
    }

    /// The map-cache prefix of this key.
    pub fn prefix(&self) -> Option<lisp_mapdb::Prefix> {
        lisp_mapdb::Prefix::new(self.iid, self.eid.addr.addr, self.eid.len).ok()
    }
}

impl fmt::Display for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]{}", self.iid, self.eid)
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send one encoded Map-Sync message to a member (the transport frames it).
    Send { peer: IpAddr, msg: Arc<[u8]> },
    /// Put a record learned from the set into the map-cache (source "sync").
    Install {
        key: SyncKey,
        rec: EidRecord,
        expiry_unix_ms: u64,
    },
    /// Take a record out of the map-cache.
    Remove { key: SyncKey },
    /// Send a Map-Solicit over UDP 4342 (see [`super::encode_solicit`]).
    SendSolicit { to: IpAddr, msg: MapSolicit },
    /// Keep a connection to this member (the transport decides who dials).
    Connect { peer: IpAddr },
    /// Drop the connection to this member and stop dialing it.
    Close { peer: IpAddr },
    /// The initial pull is over: the data plane may forward.
    Ready,
}

/// What the transport reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncEvent {
    /// A connection to the member is up (a new one replaces the previous).
    Connected {
        peer: IpAddr,
    },
    Lost {
        peer: IpAddr,
    },
    /// One authenticated message, frame removed.
    Frame {
        peer: IpAddr,
        msg: Vec<u8>,
    },
    /// Frame bytes (message plus framing) written to the socket.
    Written {
        peer: IpAddr,
        bytes: u64,
    },
    /// A message the transport did not queue (bound exceeded, no connection).
    Dropped {
        peer: IpAddr,
        bytes: u64,
    },
    /// The connection was closed for bad input.
    Refused {
        peer: IpAddr,
        reason: Refusal,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A frame failed authentication (HMAC or TLS).
    Auth,
    /// A frame could not be taken off the stream.
    BadFrame,
}

/// The answer to [`SyncEngine::on_expiry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryDecision {
    /// Drop the entry (locally only: the other members decide for themselves).
    Remove,
    /// Keep forwarding with it, send a Map-Request and install the answer
    /// with `local_upsert`; the set gets the refreshed record.
    Refresh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// No connection or no hello yet.
    Connecting,
    /// We are pulling its table.
    Pulling,
    Synced,
    /// Its queue overflowed, or a digest repair is running.
    Repairing,
}

impl MemberState {
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Connecting => "connecting",
            MemberState::Pulling => "pulling",
            MemberState::Synced => "synced",
            MemberState::Repairing => "repairing",
        }
    }
}

/// Per-member figures for `show lisp sync`. Bytes are wire bytes of the
/// sync channel: messages plus framing (length and HMAC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub records_sent: u64,
    pub records_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub malformed: u64,
    pub auth_failures: u64,
    pub overflows: u64,
    pub refused: u64,
}

#[derive(Clone, Debug)]
pub struct MemberStats {
    pub peer: IpAddr,
    pub member_id: Option<u32>,
    pub configured: bool,
    pub state: MemberState,
    pub last_exchange: Option<Instant>,
    pub counters: Counters,
}

/// Engine-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub local_upserts: u64,
    /// Local upserts identical to what the set holds (nothing sent).
    pub local_unchanged: u64,
    pub installs: u64,
    pub removes: u64,
    /// Received or local records already expired, or older than ours.
    pub stale_ignored: u64,
    pub expired_unused: u64,
    pub refreshes: u64,
    pub deltas_sent: u64,
    pub full_pages_sent: u64,
    pub full_transfers_received: u64,
    pub digests_sent: u64,
    pub digest_mismatches: u64,
    pub buckets_requested: u64,
    /// Differing buckets not requested: a key in them changed twice since
    /// the cutoff on one side.
    pub buckets_unsettled: u64,
    pub overflows: u64,
    pub malformed: u64,
    pub auth_failures: u64,
    /// Members refused (other set, other mode, our member id).
    pub refused: u64,
    /// Messages out of place (before hello, wrong mode).
    pub unexpected: u64,
    pub pull_timeouts: u64,
    pub solicits_received: u64,
    pub staging_aborted: u64,
    pub purged: u64,
}

#[derive(Debug)]
struct Live {
    rec: EidRecord,
    expiry: u64,
    version: u64,
    origin: u32,
    hash: u64,
}

#[derive(Debug)]
enum State {
    Live(Live),
    Tomb {
        version: u64,
        origin: u32,
        until: u64,
    },
}

#[derive(Debug)]
struct Slot {
    state: State,
}

impl Slot {
    fn order(&self) -> (u64, u32) {
        match &self.state {
            State::Live(l) => (l.version, l.origin),
            State::Tomb {
                version, origin, ..
            } => (*version, *origin),
        }
    }

    /// Hash and expiry of a live slot.
    fn live(&self) -> Option<(u64, u64)> {
        match &self.state {
            State::Live(l) => Some((l.hash, l.expiry)),
            State::Tomb { .. } => None,
        }
    }
}

/// One change of the table, kept a while so a digest can be computed as of
/// an earlier cutoff by stepping back over the changes made since.
#[derive(Debug)]
struct Logged {
    /// When it was applied here (unix ms), for trimming.
    at: u64,
    version: u64,
    pos: (u8, SyncKey),
    /// Hash and expiry before and after (`None`: absent or withdrawn).
    old: Option<(u64, u64)>,
    new: Option<(u64, u64)>,
}

/// Changes are kept this long: a digest's cutoff is about [`SETTLE_MS`] old.
const LOG_KEEP_MS: u64 = 30_000;

/// What digests are computed from, kept up to date with every change so a
/// digest costs the changes since its cutoff, not a pass over the table.
#[derive(Debug, Default)]
struct DigestIndex {
    /// Per bucket, the XOR of the hashes of the live records.
    current: Vec<u64>,
    /// Live records by expiry (also what purging walks).
    by_expiry: BTreeSet<(u64, u8, SyncKey)>,
    /// Tombstones by end of life.
    tombs: BTreeSet<(u64, u8, SyncKey)>,
    log: VecDeque<Logged>,
    /// Every change with a version above this is in the log.
    complete_above: u64,
    /// Naive mode has no digests: no log.
    logging: bool,
}

impl DigestIndex {
    fn new(logging: bool) -> DigestIndex {
        DigestIndex {
            current: vec![0; BUCKETS],
            logging,
            ..DigestIndex::default()
        }
    }

    /// `pos` went from `old` to `new` (live hash and expiry, or `None`).
    fn change(&mut self, pos: (u8, SyncKey), old: &Option<Slot>, new: &Slot, at: u64) {
        let (b, key) = pos;
        let before = old.as_ref().and_then(Slot::live);
        let after = new.live();
        if let Some((h, e)) = before {
            self.current[usize::from(b)] ^= h;
            self.by_expiry.remove(&(e, b, key));
        }
        if let Some(State::Tomb { until, .. }) = old.as_ref().map(|s| &s.state) {
            self.tombs.remove(&(*until, b, key));
        }
        match &new.state {
            State::Live(l) => {
                self.current[usize::from(b)] ^= l.hash;
                self.by_expiry.insert((l.expiry, b, key));
            }
            State::Tomb { until, .. } => {
                self.tombs.insert((*until, b, key));
            }
        }
        if self.logging {
            self.log.push_back(Logged {
                at,
                version: new.order().0,
                pos,
                old: before,
                new: after,
            });
            while self
                .log
                .front()
                .is_some_and(|f| f.at.saturating_add(LOG_KEEP_MS) < at)
            {
                let f = self.log.pop_front().expect("checked");
                self.complete_above = self.complete_above.max(f.version);
            }
        }
    }

    /// `pos` left the table without a trace (expired, or refreshed).
    fn forget(&mut self, pos: (u8, SyncKey), old: &Slot) {
        let (b, key) = pos;
        match &old.state {
            State::Live(l) => {
                self.current[usize::from(b)] ^= l.hash;
                self.by_expiry.remove(&(l.expiry, b, key));
            }
            State::Tomb { until, .. } => {
                self.tombs.remove(&(*until, b, key));
            }
        }
    }

    /// The digest of the records as they were at `cutoff` (written at or
    /// before it) that do not expire within [`HORIZON_MS`] of it. Expired
    /// records were dropped without a log entry: leaving out everything
    /// that expires near the cutoff makes that invisible.
    fn digest(
        &self,
        table: &BTreeMap<(u8, SyncKey), Slot>,
        cutoff: u64,
        query: bool,
    ) -> SyncDigest {
        let mut d = SyncDigest {
            query,
            cutoff_unix_ms: cutoff,
            record_count: 0,
            buckets: self.current.clone(),
            unsettled: vec![0u8; BUCKETS / 8],
        };
        if cutoff < self.complete_above {
            // Older than the log reaches: compare nothing rather than guess.
            d.unsettled.fill(0xFF);
            return d;
        }
        let mut count = self.by_expiry.len() as i64;
        // Step back over the changes made after the cutoff; per key the
        // last one met (scanning backwards) holds the state at the cutoff.
        let mut then: HashMap<(u8, SyncKey), Option<(u64, u64)>> = HashMap::new();
        for c in self.log.iter().rev().filter(|c| c.version > cutoff) {
            let b = usize::from(c.pos.0);
            if let Some((h, _)) = c.new {
                d.buckets[b] ^= h;
                count -= 1;
            }
            if let Some((h, _)) = c.old {
                d.buckets[b] ^= h;
                count += 1;
            }
            then.insert(c.pos, c.old);
        }
        let horizon = cutoff.saturating_add(HORIZON_MS);
        for (pos, old) in &then {
            if let Some((h, e)) = old
                && *e <= horizon
            {
                d.buckets[usize::from(pos.0)] ^= h;
                count -= 1;
            }
        }
        for (_, b, key) in self
            .by_expiry
            .range(..(horizon.saturating_add(1), 0, SyncKey::MIN))
        {
            if then.contains_key(&(*b, *key)) {
                continue;
            }
            if let Some((h, _)) = table.get(&(*b, *key)).and_then(Slot::live) {
                d.buckets[usize::from(*b)] ^= h;
                count -= 1;
            }
        }
        d.record_count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        d
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKind {
    /// Naive: the whole table, because of a Map-Reply.
    Push,
    /// The whole table, asked for with BulkPull.
    PullAnswer,
    /// Records of some buckets, asked for with DigestRequest.
    Repair,
}

#[derive(Debug)]
struct Stream {
    kind: StreamKind,
    tid: u32,
    page: u16,
    /// The last table position visited.
    cursor: Option<(u8, SyncKey)>,
    /// Repair: the buckets, and the index of the current one.
    buckets: Vec<u8>,
    bucket_idx: usize,
}

impl Stream {
    fn new(kind: StreamKind, tid: u32) -> Stream {
        Stream {
            kind,
            tid,
            page: 0,
            cursor: None,
            buckets: Vec::new(),
            bucket_idx: 0,
        }
    }

    fn started(&self) -> bool {
        self.page != 0 || self.cursor.is_some() || self.bucket_idx != 0
    }
}

#[derive(Debug)]
struct Staging {
    tid: u32,
    next_page: u16,
    entries: Vec<SyncUpsert>,
}

#[derive(Clone, Copy, Debug)]
struct PeerHello {
    member_id: u32,
    record_count: u32,
}

#[derive(Debug)]
struct Peer {
    configured: bool,
    connected: bool,
    hello: Option<PeerHello>,
    last_epoch: Option<u64>,
    /// Bytes handed to the transport and not yet reported written.
    inflight: usize,
    overflowed: bool,
    /// A DigestRequest of ours is being answered.
    repair_in: bool,
    /// The peer asked (Q) for our digest: sent once our repair is done, so
    /// it only shows what the peer lacks.
    answer_after_repair: bool,
    streams: VecDeque<Stream>,
    push_again: bool,
    staging: Option<Staging>,
    last_exchange: Option<Instant>,
    counters: Counters,
}

impl Peer {
    fn new(configured: bool) -> Peer {
        Peer {
            configured,
            connected: false,
            hello: None,
            last_epoch: None,
            inflight: 0,
            overflowed: false,
            repair_in: false,
            answer_after_repair: false,
            streams: VecDeque::new(),
            push_again: false,
            staging: None,
            last_exchange: None,
            counters: Counters::default(),
        }
    }

    fn reset_session(&mut self) {
        self.hello = None;
        self.inflight = 0;
        self.overflowed = false;
        self.repair_in = false;
        self.answer_after_repair = false;
        self.streams.clear();
        self.push_again = false;
        self.staging = None;
    }

    fn up(&self) -> bool {
        self.connected && self.hello.is_some()
    }
}

/// One pending change as a Delta carries it.
enum Change<'a> {
    Upsert(UpsertRef<'a>),
    Withdraw(SyncWithdraw),
}

impl<'a> Change<'a> {
    /// What `slot` (the table's state of `key`) sends while still valid at `unix_ms`.
    fn of(key: SyncKey, slot: &'a Slot, unix_ms: u64) -> Option<Change<'a>> {
        match &slot.state {
            State::Live(l) if l.expiry > unix_ms => Some(Change::Upsert(UpsertRef {
                iid: key.iid,
                origin: l.origin,
                version: l.version,
                expiry_unix_ms: l.expiry,
                record: &l.rec,
            })),
            State::Tomb {
                version,
                origin,
                until,
            } if *until > unix_ms => Some(Change::Withdraw(SyncWithdraw {
                iid: key.iid,
                origin: *origin,
                version: *version,
                until_unix_ms: *until,
                eid: key.eid,
            })),
            _ => None,
        }
    }

    fn wire_len(&self) -> usize {
        match self {
            Change::Upsert(u) => sync::upsert_wire_len(u.record, true),
            Change::Withdraw(w) => sync::withdraw_wire_len(w),
        }
    }

    fn push(self, w: &mut ChangesWriter) -> Result<(), lisp_msx_proto::EncodeError> {
        match self {
            Change::Upsert(u) => w.push_upsert(u),
            Change::Withdraw(d) => w.push_withdraw(&d),
        }
    }
}

#[derive(Debug)]
enum Phase {
    Pulling {
        deadline: Instant,
        from: Option<(IpAddr, u32)>,
    },
    Ready,
}

pub struct SyncEngine {
    cfg: SyncConfig,
    member_id: u32,
    subtype: u16,
    epoch: u64,
    overhead: usize,
    table: BTreeMap<(u8, SyncKey), Slot>,
    index: DigestIndex,
    live: usize,
    pending: Vec<SyncKey>,
    pending_set: HashSet<SyncKey>,
    pending_since: Option<Instant>,
    peers: BTreeMap<IpAddr, Peer>,
    phase: Phase,
    next_digest: Instant,
    next_tid: u32,
    next_nonce: u64,
    actions: Vec<Action>,
    stats: EngineStats,
}

impl SyncEngine {
    /// A starting member: empty, pulling. `cfg` must have passed
    /// [`SyncConfig::validate`]. The epoch (told to peers, so they see a
    /// restart) is the start time in unix ms.
    pub fn new(cfg: SyncConfig, member_id: u32, subtype: u16, t: Time) -> SyncEngine {
        let overhead = sync::frame_overhead(cfg.psk().is_some());
        let peers = cfg.peers.iter().map(|p| (*p, Peer::new(true))).collect();
        let mut e = SyncEngine {
            phase: Phase::Pulling {
                deadline: t.now + Duration::from_millis(cfg.pull_timeout_ms),
                from: None,
            },
            next_digest: t.now + digest_period(&cfg, member_id),
            index: DigestIndex::new(cfg.mode == Mode::Smart),
            cfg,
            member_id,
            subtype,
            epoch: t.unix_ms,
            overhead,
            table: BTreeMap::new(),
            live: 0,
            pending: Vec::new(),
            pending_set: HashSet::new(),
            pending_since: None,
            peers,
            next_tid: 1,
            next_nonce: t.unix_ms.rotate_left(20) ^ u64::from(member_id),
            actions: Vec::new(),
            stats: EngineStats::default(),
        };
        let configured: Vec<IpAddr> = e.peers.keys().copied().collect();
        for p in &configured {
            e.actions.push(Action::Connect { peer: *p });
        }
        let targets = match e.cfg.solicit_group {
            Some(g) => vec![g],
            None => configured,
        };
        for to in targets {
            let msg = e.solicit(false);
            e.actions.push(Action::SendSolicit { to, msg });
        }
        if e.peers.is_empty() && e.cfg.solicit_group.is_none() {
            e.become_ready(t);
        }
        e
    }

    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }

    pub fn config(&self) -> &SyncConfig {
        &self.cfg
    }

    pub fn member_id(&self) -> u32 {
        self.member_id
    }

    /// True once the initial pull is over (the data plane may forward).
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Records held (live, expired ones not yet purged included).
    pub fn record_count(&self) -> usize {
        self.live
    }

    /// The shared record for `key`, with its absolute expiry.
    pub fn get(&self, key: &SyncKey) -> Option<(&EidRecord, u64)> {
        match &self.table.get(&(bucket_of(key), *key))?.state {
            State::Live(l) => Some((&l.rec, l.expiry)),
            State::Tomb { .. } => None,
        }
    }

    /// "Used within the last minute" for [`SyncEngine::on_expiry`].
    pub fn refresh_window(&self) -> Duration {
        Duration::from_secs(self.cfg.refresh_window_secs)
    }

    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn members(&self) -> Vec<MemberStats> {
        self.peers
            .iter()
            .map(|(ip, p)| MemberStats {
                peer: *ip,
                member_id: p.hello.map(|h| h.member_id),
                configured: p.configured,
                state: self.member_state(*ip, p),
                last_exchange: p.last_exchange,
                counters: p.counters.clone(),
            })
            .collect()
    }

    /// `show lisp sync`.
    pub fn show(&self, now: Instant) -> api::ShowSyncReply {
        api::ShowSyncReply {
            mode: self.cfg.mode.name().to_string(),
            sync_set: self.cfg.set_id,
            members: self
                .members()
                .into_iter()
                .map(|m| api::SyncMember {
                    peer: m.peer.to_string(),
                    state: m.state.name().to_string(),
                    last_exchange_secs: m
                        .last_exchange
                        .map_or(0, |l| now.saturating_duration_since(l).as_secs()),
                    records_sent: m.counters.records_sent,
                    records_received: m.counters.records_received,
                    bytes_sent: m.counters.bytes_sent,
                    bytes_received: m.counters.bytes_received,
                })
                .collect(),
        }
    }

    fn member_state(&self, ip: IpAddr, p: &Peer) -> MemberState {
        if !p.up() {
            MemberState::Connecting
        } else if matches!(self.phase, Phase::Pulling { from: Some((f, _)), .. } if f == ip) {
            MemberState::Pulling
        } else if p.overflowed
            || p.repair_in
            || p.streams.iter().any(|s| s.kind == StreamKind::Repair)
        {
            MemberState::Repairing
        } else {
            MemberState::Synced
        }
    }

    /// When [`SyncEngine::tick`] is next due.
    pub fn next_wakeup(&self) -> Instant {
        let mut at = self.next_digest;
        if let Some(s) = self.pending_since {
            at = at.min(s + Duration::from_millis(self.cfg.batch_ms));
        }
        if let Phase::Pulling { deadline, .. } = self.phase {
            at = at.min(deadline);
        }
        at
    }

    // ------------------------------------------------------------ ITR side

    /// This member's ITR installed `rec` (instance `iid`) until
    /// `expiry_unix_ms` ([`NEVER`] for TTL "receiver decides"). Naive: a
    /// Map-Reply (`from_map_reply`) sends the whole table to the set. Smart:
    /// the record is shared if it differs from what the set holds.
    pub fn local_upsert(
        &mut self,
        rec: EidRecord,
        iid: u32,
        expiry_unix_ms: u64,
        from_map_reply: bool,
        t: Time,
    ) {
        self.stats.local_upserts += 1;
        if expiry_unix_ms <= t.unix_ms || rec.check().is_err() {
            self.stats.stale_ignored += 1;
            return;
        }
        let key = SyncKey::new(iid, rec.eid);
        let b = bucket_of(&key);
        let mut rec = rec;
        rec.eid = key.eid;
        let hash = content_hash(&key, &rec, expiry_unix_ms);
        let old = self.table.get(&(b, key));
        let unchanged = matches!(old, Some(Slot { state: State::Live(l), .. }) if l.hash == hash);
        if unchanged {
            self.stats.local_unchanged += 1;
        } else {
            let version = Self::next_version(old.map(Slot::order), t.unix_ms);
            let origin = self.member_id;
            self.store(
                b,
                key,
                State::Live(Live {
                    rec,
                    expiry: expiry_unix_ms,
                    version,
                    origin,
                    hash,
                }),
                t.unix_ms,
            );
        }
        match self.cfg.mode {
            Mode::Naive if from_map_reply => self.trigger_push(t),
            Mode::Naive => {}
            Mode::Smart if !unchanged => self.queue_change(key, t),
            Mode::Smart => {}
        }
    }

    /// This member withdrew `key` (e.g. `clear lisp map-cache`); smart mode
    /// tells the set, naive mode just forgets it (the next transfer omits it).
    pub fn local_remove(&mut self, key: SyncKey, t: Time) {
        let key = SyncKey::new(key.iid, key.eid);
        let b = bucket_of(&key);
        let Some(slot) = self.table.get(&(b, key)) else {
            return;
        };
        let State::Live(l) = &slot.state else {
            return;
        };
        match self.cfg.mode {
            Mode::Naive => self.forget(b, key),
            Mode::Smart => {
                let until = if l.expiry == NEVER {
                    t.unix_ms.saturating_add(TOMB_MS)
                } else {
                    l.expiry
                };
                let version = Self::next_version(Some(slot.order()), t.unix_ms);
                let origin = self.member_id;
                self.store(
                    b,
                    key,
                    State::Tomb {
                        version,
                        origin,
                        until,
                    },
                    t.unix_ms,
                );
                self.queue_change(key, t);
            }
        }
    }

    /// The ITR's entry for `key` reached its expiry; `used` says whether the
    /// data plane forwarded with it within `refresh_window_secs`. Either way
    /// the engine forgets the record without telling the set (every member
    /// holds the same expiry and decides for itself); smart mode answers
    /// `Refresh` for a used record.
    pub fn on_expiry(&mut self, key: SyncKey, used: bool, _t: Time) -> ExpiryDecision {
        let key = SyncKey::new(key.iid, key.eid);
        let b = bucket_of(&key);
        if matches!(
            self.table.get(&(b, key)),
            Some(Slot {
                state: State::Live(_),
                ..
            })
        ) {
            self.forget(b, key);
        }
        if self.cfg.mode == Mode::Smart && used {
            self.stats.refreshes += 1;
            ExpiryDecision::Refresh
        } else {
            self.stats.expired_unused += 1;
            ExpiryDecision::Remove
        }
    }

    // ------------------------------------------------------------ network side

    pub fn on_event(&mut self, ev: SyncEvent, t: Time) {
        match ev {
            SyncEvent::Connected { peer } => {
                let p = self.peers.entry(peer).or_insert_with(|| Peer::new(false));
                p.reset_session();
                p.connected = true;
                let hello = MapSync::Hello(SyncHello {
                    member_id: self.member_id,
                    set_id: self.cfg.set_id,
                    mode: self.cfg.mode.wire(),
                    epoch: self.epoch,
                    unix_ms: t.unix_ms,
                    record_count: u32::try_from(self.live).unwrap_or(u32::MAX),
                });
                self.send_msg(peer, &hello, t, false);
            }
            SyncEvent::Lost { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.connected = false;
                    p.reset_session();
                }
                if matches!(self.phase, Phase::Pulling { from: Some((f, _)), .. } if f == peer) {
                    if let Phase::Pulling { from, .. } = &mut self.phase {
                        *from = None;
                    }
                    self.pull_from_fullest(t);
                }
            }
            SyncEvent::Frame { peer, msg } => self.on_frame(peer, &msg, t),
            SyncEvent::Written { peer, bytes } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.inflight = p.inflight.saturating_sub(bytes as usize);
                }
                self.recover_if_drained(peer, t);
                self.pump(peer, t);
            }
            SyncEvent::Dropped { peer, bytes } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.inflight = p.inflight.saturating_sub(bytes as usize);
                    p.counters.bytes_sent = p.counters.bytes_sent.saturating_sub(bytes);
                    p.counters.messages_sent = p.counters.messages_sent.saturating_sub(1);
                    if p.up() && !p.overflowed {
                        p.overflowed = true;
                        p.counters.overflows += 1;
                        self.stats.overflows += 1;
                        warn!(%peer, "sync: the transport dropped a message; the member will be repaired");
                    }
                }
            }
            SyncEvent::Refused { peer, reason } => {
                let p = self.peers.entry(peer).or_insert_with(|| Peer::new(false));
                match reason {
                    Refusal::Auth => {
                        p.counters.auth_failures += 1;
                        self.stats.auth_failures += 1;
                    }
                    Refusal::BadFrame => {
                        p.counters.malformed += 1;
                        self.stats.malformed += 1;
                    }
                }
            }
        }
    }

    /// A Map-Solicit from `from` (`packet`: the raw bytes, for authentication).
    /// Requests are answered; either kind makes the sender a member.
    pub fn on_solicit(&mut self, from: IpAddr, msg: &MapSolicit, packet: &[u8], _t: Time) {
        self.stats.solicits_received += 1;
        if let Some(key) = self.cfg.psk()
            && (msg.alg == AuthAlg::NONE || msg.verify(packet, key).is_err())
        {
            self.stats.auth_failures += 1;
            warn!(%from, "sync: Map-Solicit failed authentication (dropped)");
            return;
        }
        if msg.sync_set != self.cfg.set_id || msg.itr_id == self.member_id {
            self.stats.unexpected += 1;
            debug!(%from, set = msg.sync_set, "sync: Map-Solicit for another set (ignored)");
            return;
        }
        match self.peers.get(&from) {
            None => {
                info!(%from, member = msg.itr_id, "sync: member discovered by Map-Solicit");
                self.peers.insert(from, Peer::new(false));
                self.actions.push(Action::Connect { peer: from });
            }
            // A restarted member: reconnect now rather than at the next retry.
            Some(p) if !p.connected => self.actions.push(Action::Connect { peer: from }),
            Some(_) => {}
        }
        if !msg.response {
            let msg = self.solicit(true);
            self.actions.push(Action::SendSolicit { to: from, msg });
        }
    }

    fn solicit(&mut self, response: bool) -> MapSolicit {
        self.next_nonce = self.next_nonce.wrapping_add(1);
        MapSolicit {
            response,
            bulk: true,
            subscribe: false,
            itr_id: self.member_id,
            nonce: self.next_nonce,
            key_id: 0,
            alg: if self.cfg.psk().is_some() {
                AuthAlg::HMAC_SHA256_128
            } else {
                AuthAlg::NONE
            },
            auth_data: Vec::new(),
            sync_set: self.cfg.set_id,
            sync_mode: self.cfg.mode.wire(),
            record_count: if response {
                u32::try_from(self.live).unwrap_or(u32::MAX)
            } else {
                0
            },
            rlocs: self.cfg.listen.map(Addr::from).into_iter().collect(),
        }
    }

    /// Timers: batch flush, digests, purge, the pull deadline, paced streams.
    pub fn tick(&mut self, t: Time) {
        if let Phase::Pulling { deadline, from } = self.phase
            && t.now >= deadline
        {
            self.stats.pull_timeouts += 1;
            warn!(
                pulling = from.is_some(),
                "sync: peers' caches not pulled within pull_timeout_ms; forwarding anyway"
            );
            self.become_ready(t);
        }
        if self
            .pending_since
            .is_some_and(|s| t.now >= s + Duration::from_millis(self.cfg.batch_ms))
        {
            self.flush(t);
        }
        if t.now >= self.next_digest {
            self.next_digest = t.now + Duration::from_secs(self.cfg.digest_interval_secs);
            self.purge(t);
            if self.cfg.mode == Mode::Smart && self.is_ready() {
                // One exchange per pair and interval, started by the lower id.
                let me = self.member_id;
                let to: Vec<IpAddr> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.up() && !p.overflowed)
                    .filter(|(_, p)| p.hello.is_some_and(|h| me < h.member_id))
                    .map(|(ip, _)| *ip)
                    .collect();
                self.send_digest(&to, true, t);
            }
        }
        let ips: Vec<IpAddr> = self.peers.keys().copied().collect();
        for ip in ips {
            self.recover_if_drained(ip, t);
            self.pump(ip, t);
        }
    }

    // ------------------------------------------------------------ internals

    /// The wall clock, or just past the key's previous version: versions only
    /// order writes of one key, so they need not be unique across keys (a
    /// member-wide counter would run ahead of the clock under bursts and
    /// keep records out of digests until the clock caught up).
    fn next_version(old: Option<(u64, u32)>, unix_ms: u64) -> u64 {
        unix_ms.max(old.map_or(0, |(v, _)| v.saturating_add(1)))
    }

    /// Writes `state` for `key` (at `unix_ms`), keeping the index current.
    fn store(&mut self, b: u8, key: SyncKey, state: State, unix_ms: u64) {
        let slot = Slot { state };
        let live = slot.live().is_some();
        let old = match self.table.entry((b, key)) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), slot)),
            Entry::Vacant(e) => {
                e.insert(slot);
                None
            }
        };
        let was_live = old.as_ref().is_some_and(|s| s.live().is_some());
        match (was_live, live) {
            (true, false) => self.live -= 1,
            (false, true) => self.live += 1,
            _ => {}
        }
        let new = &self.table[&(b, key)];
        self.index.change((b, key), &old, new, unix_ms);
    }

    /// Drops a slot without a trace (local-only removal).
    fn forget(&mut self, b: u8, key: SyncKey) {
        if let Some(s) = self.table.remove(&(b, key)) {
            if s.live().is_some() {
                self.live -= 1;
            }
            self.index.forget((b, key), &s);
        }
    }

    fn queue_change(&mut self, key: SyncKey, t: Time) {
        if self.pending_set.insert(key) {
            self.pending.push(key);
        }
        self.pending_since.get_or_insert(t.now);
        if self.pending.len() >= self.cfg.batch_max {
            self.flush(t);
        }
    }

    /// Sends the pending changes as Deltas (one encoding, every member).
    fn flush(&mut self, t: Time) {
        self.pending_since = None;
        self.pending_set.clear();
        let keys = std::mem::take(&mut self.pending);
        let mut msgs: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut w = ChangesWriter::delta(self.subtype);
        for key in keys {
            let Some(slot) = self.table.get(&(bucket_of(&key), key)) else {
                continue;
            };
            let Some(change) = Change::of(key, slot, t.unix_ms) else {
                continue;
            };
            if w.count() > 0 && w.wire_len() + change.wire_len() > PAGE_BYTES {
                let n = w.count();
                msgs.push((w.finish(false), n));
                w = ChangesWriter::delta(self.subtype);
            }
            if let Err(e) = change.push(&mut w) {
                warn!(%key, "sync: cannot encode the record: {e}");
            }
        }
        if w.count() > 0 {
            let n = w.count();
            msgs.push((w.finish(false), n));
        }
        let to: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.up() && !p.overflowed)
            .map(|(ip, _)| *ip)
            .collect();
        for (msg, n) in msgs {
            self.stats.deltas_sent += 1;
            let msg: Arc<[u8]> = msg.into();
            for peer in &to {
                self.send_shared(*peer, msg.clone(), n, t, true);
            }
        }
    }

    fn send_msg(&mut self, peer: IpAddr, msg: &MapSync, t: Time, need_hello: bool) -> bool {
        match msg.to_bytes(self.subtype) {
            Ok(b) => self.send_shared(peer, b.into(), 0, t, need_hello),
            Err(e) => {
                warn!(%peer, "sync: cannot encode {}: {e}", msg.name());
                false
            }
        }
    }

    /// Hands one message to the transport unless the peer's bound would be
    /// exceeded (then the peer is marked for repair).
    fn send_shared(
        &mut self,
        peer: IpAddr,
        msg: Arc<[u8]>,
        records: usize,
        t: Time,
        need_hello: bool,
    ) -> bool {
        let bound = self.cfg.peer_queue_bytes;
        let n = msg.len() + self.overhead;
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if !p.connected || (need_hello && p.hello.is_none()) || p.overflowed {
            return false;
        }
        if p.inflight + n > bound {
            p.overflowed = true;
            p.counters.overflows += 1;
            self.stats.overflows += 1;
            warn!(%peer, queued = p.inflight, "sync: the member's queue is full; it will be repaired once it drains");
            return false;
        }
        p.inflight += n;
        p.counters.bytes_sent += n as u64;
        p.counters.messages_sent += 1;
        p.counters.records_sent += records as u64;
        p.last_exchange = Some(t.now);
        self.actions.push(Action::Send { peer, msg });
        true
    }

    fn window(&self) -> usize {
        self.cfg.peer_queue_bytes / 2
    }

    fn recover_if_drained(&mut self, peer: IpAddr, t: Time) {
        let window = self.window();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !(p.overflowed && p.up() && p.inflight <= window) {
            return;
        }
        p.overflowed = false;
        info!(%peer, "sync: the member's queue drained; repairing");
        match self.cfg.mode {
            Mode::Smart => {
                if self.is_ready() {
                    self.send_digest(&[peer], true, t);
                }
            }
            Mode::Naive => self.start_push(peer),
        }
    }

    fn trigger_push(&mut self, t: Time) {
        let ips: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.up())
            .map(|(ip, _)| *ip)
            .collect();
        for ip in ips {
            self.start_push(ip);
            self.pump(ip, t);
        }
    }

    fn start_push(&mut self, peer: IpAddr) {
        let tid = self.tid();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.streams.iter().any(|s| s.kind == StreamKind::Push) {
            p.push_again = true;
        } else {
            p.streams.push_back(Stream::new(StreamKind::Push, tid));
        }
    }

    fn tid(&mut self) -> u32 {
        self.next_tid = self.next_tid.wrapping_add(1).max(1);
        self.next_tid
    }

    /// Sends pages of the peer's streams while its window allows.
    fn pump(&mut self, peer: IpAddr, t: Time) {
        let window = self.window();
        loop {
            let Some(p) = self.peers.get_mut(&peer) else {
                return;
            };
            if !p.up() || p.overflowed || p.inflight >= window {
                return;
            }
            let Some(mut s) = p.streams.pop_front() else {
                return;
            };
            let (msg, n, done) = self.page(&mut s, t.unix_ms);
            let sent = self.send_shared(peer, msg.into(), n, t, true);
            if sent && s.kind != StreamKind::Repair {
                self.stats.full_pages_sent += 1;
            }
            let p = self.peers.get_mut(&peer).expect("looked up above");
            if !sent {
                // Overflowed: repair will catch the member up; a naive push restarts.
                if s.kind == StreamKind::Push {
                    p.push_again = false;
                }
                return;
            }
            if !done {
                p.streams.push_front(s);
            } else if s.kind == StreamKind::Push && std::mem::take(&mut p.push_again) {
                let tid = self.tid();
                let p = self.peers.get_mut(&peer).expect("looked up above");
                p.streams.push_back(Stream::new(StreamKind::Push, tid));
            }
        }
    }

    /// The next page of a stream: (message, records, last page).
    fn page(&self, s: &mut Stream, unix_ms: u64) -> (Vec<u8>, usize, bool) {
        if s.kind == StreamKind::Repair {
            return self.repair_page(s, unix_ms);
        }
        let naive = self.cfg.mode == Mode::Naive;
        let mut w = FullWriter::new(self.subtype, s.tid, s.page, naive, !naive);
        let start = s.cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut more = false;
        for (pos, slot) in self.table.range((start, Bound::Unbounded)) {
            if let State::Live(l) = &slot.state
                && l.expiry > unix_ms
            {
                if w.count() > 0
                    && w.wire_len() + sync::upsert_wire_len(&l.rec, !naive) > PAGE_BYTES
                {
                    more = true;
                    break;
                }
                // Records were checked when stored, so this cannot fail.
                let _ = w.push(UpsertRef {
                    iid: pos.1.iid,
                    origin: l.origin,
                    version: l.version,
                    expiry_unix_ms: l.expiry,
                    record: &l.rec,
                });
            }
            s.cursor = Some(*pos);
        }
        s.page = s.page.wrapping_add(1);
        let n = w.count();
        (w.finish(more), n, !more)
    }

    fn repair_page(&self, s: &mut Stream, unix_ms: u64) -> (Vec<u8>, usize, bool) {
        let mut w = ChangesWriter::digest_reply(self.subtype);
        'buckets: while let Some(&b) = s.buckets.get(s.bucket_idx) {
            let start = match s.cursor {
                Some(c) if c.0 == b => Bound::Excluded(c),
                _ => Bound::Included((b, SyncKey::MIN)),
            };
            for (pos, slot) in self.table.range((start, Bound::Unbounded)) {
                if pos.0 != b {
                    break;
                }
                if let Some(change) = Change::of(pos.1, slot, unix_ms) {
                    if w.count() > 0 && w.wire_len() + change.wire_len() > PAGE_BYTES {
                        break 'buckets;
                    }
                    let _ = change.push(&mut w);
                }
                s.cursor = Some(*pos);
            }
            s.bucket_idx += 1;
            s.cursor = None;
        }
        let done = s.bucket_idx >= s.buckets.len();
        s.page = s.page.wrapping_add(1);
        let n = w.count();
        (w.finish(!done), n, done)
    }

    fn send_digest(&mut self, to: &[IpAddr], query: bool, t: Time) {
        if to.is_empty() {
            return;
        }
        let cutoff = t.unix_ms.saturating_sub(SETTLE_MS);
        let msg = MapSync::Digest(self.index.digest(&self.table, cutoff, query));
        let Ok(bytes) = msg.to_bytes(self.subtype) else {
            return;
        };
        let bytes: Arc<[u8]> = bytes.into();
        for peer in to {
            if self.send_shared(*peer, bytes.clone(), 0, t, true) {
                self.stats.digests_sent += 1;
            }
        }
    }

    /// Drops what expired a while ago and tombstones past their time.
    fn purge(&mut self, t: Time) {
        let expired = t.unix_ms.saturating_sub(PURGE_GRACE_MS);
        let old: Vec<(u8, SyncKey)> = self
            .index
            .by_expiry
            .range(..(expired.saturating_add(1), 0, SyncKey::MIN))
            .chain(
                self.index
                    .tombs
                    .range(..(t.unix_ms.saturating_add(1), 0, SyncKey::MIN)),
            )
            .map(|(_, b, k)| (*b, *k))
            .collect();
        self.stats.purged += old.len() as u64;
        for (b, k) in old {
            self.forget(b, k);
        }
    }

    fn become_ready(&mut self, t: Time) {
        if self.is_ready() {
            return;
        }
        self.phase = Phase::Ready;
        self.actions.push(Action::Ready);
        info!(records = self.live, "sync: ready (forwarding allowed)");
        if self.cfg.mode == Mode::Smart {
            // Catch up with members other than the one we pulled from.
            let to: Vec<IpAddr> = self
                .peers
                .iter()
                .filter(|(_, p)| p.up() && p.hello.is_some_and(|h| h.record_count > 0))
                .map(|(ip, _)| *ip)
                .collect();
            self.send_digest(&to, true, t);
        }
        self.next_digest = t.now + digest_period(&self.cfg, self.member_id);
    }

    /// Pulls from the up member holding the most records, if any has some.
    fn pull_from_fullest(&mut self, t: Time) {
        if !matches!(self.phase, Phase::Pulling { from: None, .. }) {
            return;
        }
        let best = self
            .peers
            .iter()
            .filter(|(_, p)| p.up())
            .filter_map(|(ip, p)| p.hello.map(|h| (h.record_count, *ip)))
            .filter(|(n, _)| *n > 0)
            .max();
        if let Some((n, peer)) = best {
            let tid = self.tid();
            info!(%peer, records = n, "sync: pulling the member's cache");
            self.send_msg(peer, &MapSync::BulkPull { transfer_id: tid }, t, true);
            if let Phase::Pulling { from, .. } = &mut self.phase {
                *from = Some((peer, tid));
            }
        } else if self.peers.values().any(|p| p.configured)
            && self
                .peers
                .values()
                .filter(|p| p.configured)
                .all(|p| p.up() && p.hello.is_some_and(|h| h.record_count == 0))
        {
            info!("sync: every configured member is empty; nothing to pull");
            self.become_ready(t);
        }
    }

    fn on_frame(&mut self, peer: IpAddr, bytes: &[u8], t: Time) {
        let n = (bytes.len() + self.overhead) as u64;
        let Some(p) = self.peers.get_mut(&peer) else {
            self.stats.unexpected += 1;
            return;
        };
        p.counters.bytes_received += n;
        p.counters.messages_received += 1;
        let msg = match MapSync::decode(bytes, self.subtype) {
            Ok(m) => m,
            Err(e) => {
                p.counters.malformed += 1;
                self.stats.malformed += 1;
                warn!(%peer, "sync: malformed message dropped: {e}");
                return;
            }
        };
        if !p.connected || (p.hello.is_none() && !matches!(msg, MapSync::Hello(_))) {
            self.stats.unexpected += 1;
            debug!(%peer, "sync: {} before hello (dropped)", msg.name());
            return;
        }
        p.last_exchange = Some(t.now);
        let smart = self.cfg.mode == Mode::Smart;
        match msg {
            MapSync::Hello(h) => self.on_hello(peer, h, t),
            MapSync::Delta(c) if smart => self.merge(peer, c, t),
            MapSync::Full(f) => self.on_full(peer, f, t),
            MapSync::Digest(d) if smart => self.on_digest(peer, d, t),
            MapSync::DigestRequest(b) if smart => self.on_digest_request(peer, b, t),
            MapSync::DigestReply { more, changes } if smart => {
                self.merge(peer, changes, t);
                if !more
                    && let Some(p) = self.peers.get_mut(&peer)
                    && std::mem::take(&mut p.repair_in)
                    && std::mem::take(&mut p.answer_after_repair)
                {
                    self.send_digest(&[peer], false, t);
                }
            }
            MapSync::BulkPull { transfer_id } => {
                let p = self.peers.get_mut(&peer).expect("looked up above");
                p.streams.retain(|s| s.kind != StreamKind::PullAnswer);
                p.streams
                    .push_back(Stream::new(StreamKind::PullAnswer, transfer_id));
                self.pump(peer, t);
            }
            other => {
                self.stats.unexpected += 1;
                debug!(%peer, "sync: {} in naive mode (dropped)", other.name());
            }
        }
    }

    fn on_hello(&mut self, peer: IpAddr, h: SyncHello, t: Time) {
        let p = self.peers.get_mut(&peer).expect("caller looked it up");
        if h.set_id != self.cfg.set_id
            || h.mode != self.cfg.mode.wire()
            || h.member_id == self.member_id
        {
            p.counters.refused += 1;
            self.stats.refused += 1;
            warn!(%peer, set = h.set_id, mode = h.mode.name(), member = h.member_id,
                "sync: member refused (other sync set, other mode, or our own member id)");
            self.actions.push(Action::Close { peer });
            return;
        }
        let skew = h.unix_ms.abs_diff(t.unix_ms);
        if skew > SKEW_WARN_MS {
            warn!(%peer, skew_ms = skew, "sync: the member's clock differs from ours; shared expiry times are absolute");
        }
        if p.last_epoch.is_some_and(|e| e != h.epoch) {
            info!(%peer, "sync: the member restarted");
        }
        p.last_epoch = Some(h.epoch);
        p.hello = Some(PeerHello {
            member_id: h.member_id,
            record_count: h.record_count,
        });
        match self.phase {
            Phase::Pulling { .. } => self.pull_from_fullest(t),
            Phase::Ready
                if self.cfg.mode == Mode::Smart
                    && h.record_count > 0
                    && self.member_id < h.member_id =>
            {
                // Back after a disconnection: compare (the lower id starts).
                self.send_digest(&[peer], true, t);
            }
            Phase::Ready => {}
        }
    }

    fn on_full(&mut self, peer: IpAddr, f: SyncFull, t: Time) {
        let p = self.peers.get_mut(&peer).expect("caller looked it up");
        p.counters.records_received += f.entries.len() as u64;
        let last = !f.more;
        let pulled = last
            && matches!(self.phase, Phase::Pulling { from: Some((pp, tid)), .. }
                if pp == peer && tid == f.transfer_id);
        if f.replace {
            // Naive: all pages, then replace everything.
            let prev = p.staging.take();
            let staged = if f.page == 0 {
                if prev.is_some() {
                    self.stats.staging_aborted += 1;
                    warn!(%peer, "sync: a full transfer was cut short by the next one");
                }
                Some(Staging {
                    tid: f.transfer_id,
                    next_page: 1,
                    entries: f.entries,
                })
            } else {
                match prev {
                    Some(mut s) if s.tid == f.transfer_id && s.next_page == f.page => {
                        s.next_page = s.next_page.wrapping_add(1);
                        s.entries.extend(f.entries);
                        Some(s)
                    }
                    _ => None,
                }
            };
            let Some(s) = staged.filter(|s| s.entries.len() <= MAX_STAGED) else {
                self.stats.staging_aborted += 1;
                warn!(%peer, "sync: incomplete or oversized full transfer discarded");
                return;
            };
            if last {
                self.stats.full_transfers_received += 1;
                self.replace_all(s.entries, t);
            } else {
                p.staging = Some(s);
            }
        } else if f.timed {
            for u in f.entries {
                self.merge_upsert(u, t);
            }
            if last {
                self.stats.full_transfers_received += 1;
            }
        } else {
            self.stats.unexpected += 1;
            return;
        }
        if pulled {
            info!(%peer, records = self.live, "sync: pulled the member's cache");
            self.become_ready(t);
        }
    }

    /// Naive: the table becomes exactly `entries`, every TTL restarting now.
    fn replace_all(&mut self, entries: Vec<SyncUpsert>, t: Time) {
        let mut fresh: BTreeMap<(u8, SyncKey), Slot> = BTreeMap::new();
        for u in entries {
            if u.record.check().is_err() {
                continue;
            }
            let key = SyncKey::new(u.iid, u.record.eid);
            let mut rec = u.record;
            rec.eid = key.eid;
            let expiry = if rec.ttl == TTL_RECEIVER_DECIDES {
                NEVER
            } else {
                t.unix_ms.saturating_add(u64::from(rec.ttl) * 60_000)
            };
            let hash = content_hash(&key, &rec, expiry);
            fresh.insert(
                (bucket_of(&key), key),
                Slot {
                    state: State::Live(Live {
                        rec,
                        expiry,
                        version: 0,
                        origin: 0,
                        hash,
                    }),
                },
            );
        }
        for (pos, slot) in &self.table {
            if matches!(slot.state, State::Live(_)) && !fresh.contains_key(pos) {
                self.actions.push(Action::Remove { key: pos.1 });
                self.stats.removes += 1;
            }
        }
        for ((_, key), slot) in &fresh {
            if let State::Live(l) = &slot.state {
                self.actions.push(Action::Install {
                    key: *key,
                    rec: l.rec.clone(),
                    expiry_unix_ms: l.expiry,
                });
            }
        }
        self.stats.installs += fresh.len() as u64;
        self.live = fresh.len();
        self.table = fresh;
        self.index = DigestIndex::new(self.index.logging);
        for (pos, slot) in &self.table {
            self.index.change(*pos, &None, slot, t.unix_ms);
        }
    }

    fn merge(&mut self, peer: IpAddr, c: SyncChanges, t: Time) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.counters.records_received += (c.upserts.len() + c.withdrawals.len()) as u64;
        }
        for u in c.upserts {
            self.merge_upsert(u, t);
        }
        for w in c.withdrawals {
            self.merge_withdraw(w, t);
        }
    }

    fn merge_upsert(&mut self, u: SyncUpsert, t: Time) {
        if u.expiry_unix_ms <= t.unix_ms || u.record.check().is_err() {
            self.stats.stale_ignored += 1;
            return;
        }
        let key = SyncKey::new(u.iid, u.record.eid);
        let b = bucket_of(&key);
        if self
            .table
            .get(&(b, key))
            .is_some_and(|s| s.order() >= (u.version, u.origin))
        {
            self.stats.stale_ignored += 1;
            return;
        }
        let mut rec = u.record;
        rec.eid = key.eid;
        let hash = content_hash(&key, &rec, u.expiry_unix_ms);
        self.actions.push(Action::Install {
            key,
            rec: rec.clone(),
            expiry_unix_ms: u.expiry_unix_ms,
        });
        self.stats.installs += 1;
        self.store(
            b,
            key,
            State::Live(Live {
                rec,
                expiry: u.expiry_unix_ms,
                version: u.version,
                origin: u.origin,
                hash,
            }),
            t.unix_ms,
        );
    }

    fn merge_withdraw(&mut self, w: SyncWithdraw, t: Time) {
        if w.until_unix_ms <= t.unix_ms {
            self.stats.stale_ignored += 1;
            return;
        }
        let key = SyncKey::new(w.iid, w.eid);
        let b = bucket_of(&key);
        let was_live = match self.table.get(&(b, key)) {
            Some(s) if s.order() >= (w.version, w.origin) => {
                self.stats.stale_ignored += 1;
                return;
            }
            Some(s) => matches!(s.state, State::Live(_)),
            None => false,
        };
        self.store(
            b,
            key,
            State::Tomb {
                version: w.version,
                origin: w.origin,
                until: w.until_unix_ms,
            },
            t.unix_ms,
        );
        if was_live {
            self.actions.push(Action::Remove { key });
            self.stats.removes += 1;
        }
    }

    fn on_digest(&mut self, peer: IpAddr, d: SyncDigest, t: Time) {
        if !self.is_ready() {
            // Pulling: the pull brings everything; compare afterwards.
            return;
        }
        if d.buckets.len() != BUCKETS || d.unsettled.len() != BUCKETS / 8 {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.counters.malformed += 1;
            }
            self.stats.malformed += 1;
            return;
        }
        let own = self.index.digest(&self.table, d.cutoff_unix_ms, false);
        let diff: Vec<u16> = (0..BUCKETS)
            .filter(|i| own.buckets[*i] != d.buckets[*i])
            .filter(|i| {
                // Compared next time, once settled.
                let unsettled = own.is_unsettled(*i) || d.is_unsettled(*i);
                self.stats.buckets_unsettled += u64::from(unsettled);
                !unsettled
            })
            .map(|i| i as u16)
            .collect();
        // Equal as of the cutoff: neither side lacks anything, no answer needed.
        if diff.is_empty() {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.repair_in = false;
            }
            return;
        }
        self.stats.digest_mismatches += 1;
        self.stats.buckets_requested += diff.len() as u64;
        debug!(%peer, buckets = diff.len(), "sync: digest differs; asking for the buckets");
        if self.send_msg(peer, &MapSync::DigestRequest(diff), t, true)
            && let Some(p) = self.peers.get_mut(&peer)
        {
            p.repair_in = true;
            p.answer_after_repair = d.query;
        }
    }

    fn on_digest_request(&mut self, peer: IpAddr, buckets: Vec<u16>, t: Time) {
        let mut b: Vec<u8> = buckets
            .into_iter()
            .filter_map(|i| u8::try_from(i).ok())
            .collect();
        b.sort_unstable();
        b.dedup();
        let tid = self.tid();
        let p = self.peers.get_mut(&peer).expect("caller looked it up");
        // A request not yet being answered absorbs the new one.
        if let Some(s) = p
            .streams
            .iter_mut()
            .find(|s| s.kind == StreamKind::Repair && !s.started())
        {
            s.buckets.extend(b);
            s.buckets.sort_unstable();
            s.buckets.dedup();
        } else {
            let mut s = Stream::new(StreamKind::Repair, tid);
            s.buckets = b;
            p.streams.push_back(s);
        }
        self.pump(peer, t);
    }
}

/// The first digest interval, stretched by up to one interval depending on
/// the member: members started together do not compute their digests (a
/// pass over the whole table) all at the same moment.
fn digest_period(cfg: &SyncConfig, member_id: u32) -> Duration {
    let ms = cfg.digest_interval_secs * 1000;
    Duration::from_millis(ms + u64::from(member_id).wrapping_mul(0x9E37_79B9) % ms)
}

// ------------------------------------------------------------ hashing

/// FNV-1a 64: stable across builds and platforms (members may run different
/// builds; std's hasher promises neither).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn addr(&mut self, a: &Addr) {
        match a {
            Addr::None => self.bytes(&[0]),
            Addr::V4(v) => {
                self.bytes(&[1]);
                self.bytes(&v.to_be_bytes());
            }
            Addr::V6(v) => {
                self.bytes(&[2]);
                self.bytes(&v.to_be_bytes());
            }
        }
    }

    fn key(&mut self, k: &SyncKey) {
        self.bytes(&k.iid.to_be_bytes());
        self.bytes(&[k.eid.len]);
        if let Some(asn) = k.eid.addr.asn {
            self.bytes(&asn.to_be_bytes());
        }
        self.addr(&k.eid.addr.addr);
    }

    /// Spreads the bits (splitmix64's finalizer): FNV's high bits are weak.
    fn finish(self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn bucket_of(k: &SyncKey) -> u8 {
    let mut h = Fnv::new();
    h.key(k);
    (h.finish() >> 56) as u8
}

/// Hash of what members must agree on: key, record (TTL aside: the expiry
/// says it absolutely) and expiry.
fn content_hash(k: &SyncKey, rec: &EidRecord, expiry: u64) -> u64 {
    let mut h = Fnv::new();
    h.key(k);
    h.bytes(&[
        rec.action.0,
        u8::from(rec.authoritative),
        (rec.map_version >> 8) as u8,
        rec.map_version as u8,
        rec.locators.len() as u8,
    ]);
    for l in &rec.locators {
        h.bytes(&[
            l.priority,
            l.weight,
            l.m_priority,
            l.m_weight,
            u8::from(l.local) | u8::from(l.probed) << 1 | u8::from(l.reachable) << 2,
        ]);
        h.addr(&l.addr);
    }
    h.bytes(&expiry.to_be_bytes());
    h.finish()
}

#[cfg(test)]
mod tests;
