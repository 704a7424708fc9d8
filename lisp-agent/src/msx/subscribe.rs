//! LISP-MSX subscriptions (draft-boucadair-lisp-subscribe): the provider side
//! (a Map-Server holding subscriptions of peer systems under an agreement and
//! publishing changes) and the subscriber side (a Map-Resolver keeping its
//! copy of a peer's table fresh). Sans I/O: both return the datagrams to send.
//!
//! The draft says changes are pushed "as unsolicited Map-Replies or bulk
//! messages" but gives them no authentication. We publish with RFC 9437's
//! pattern instead: an authenticated Map-Notify (HMAC-SHA-256 under the MSX
//! pre-shared key) whose nonce is the subscription nonce plus the
//! publication number, carrying the subscriber's ITR identifier as xTR-ID;
//! the subscriber answers each with a Map-Notify-Ack, unacknowledged
//! publications are sent again. A record with TTL 0 and no locators is a
//! withdrawal. The Map-Notify's Site-ID carries the provider's epoch (random
//! at its start); a new subscription gets an empty first publication, so the
//! subscriber learns the epoch at once. A gap in the publication numbers or a
//! changed epoch (the provider restarted and lost our subscription) leads to
//! a full resynchronization: a new subscription with the I bit.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lisp_msx_proto::EidPrefix;
use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::map_register::verify_packet;
use lisp_msx_proto::lisp::{AuthenticatedBody, CONTROL_PORT, EidRecord, MapNotify, XtrSiteId};
use lisp_msx_proto::msx::{Filter, MapSubscribe, SubscribeResult};
use serde::{Deserialize, Serialize};

/// Key id used on every MSX-keyed message (one key per mapping system pair).
pub const MSX_KEY_ID: u8 = 1;
/// Publications are sent again this often while unacknowledged...
const RETRANSMIT: Duration = Duration::from_secs(1);
/// ...this many times in all before the subscription is dropped (the
/// subscriber's next renewal then gets everything again).
const MAX_TRIES: u32 = 5;
/// Records per publication: keep a Map-Notify within the IPv6 minimum MTU.
const PUBLICATION_BYTES: usize = 1_100;
/// A subscription request is sent again after this long without an Ack.
const SUBSCRIBE_RETRY: Duration = Duration::from_secs(1);
/// After this many tries the subscriber waits [`BACKOFF`] before starting over.
const SUBSCRIBE_TRIES: u32 = 5;
const BACKOFF: Duration = Duration::from_secs(30);
/// The draft: after PARTIAL-FILTERS-INSTALLED-LOCAL, wait at least 60 s.
const LOCAL_WAIT: Duration = Duration::from_secs(60);
/// Deltas kept per provider while a bulk copy is in flight.
const MAX_PENDING_DELTAS: usize = 200_000;

/// `[msx.subscription]`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionConfig {
    /// Expiry we ask for as a subscriber (renewed at a third of it).
    pub expiry_secs: u32,
    /// Bounds we grant as a provider.
    pub min_expiry_secs: u32,
    pub max_expiry_secs: u32,
    /// Filters one subscription may hold.
    pub max_filters: usize,
    /// Answer every Map-Subscribe with a redirect to this Map-Resolver.
    pub redirect_to: Option<IpAddr>,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            expiry_secs: 600,
            min_expiry_secs: 10,
            max_expiry_secs: 86_400,
            max_filters: 64,
            redirect_to: None,
        }
    }
}

/// A change of one mapping, as published.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Upsert(EidRecord),
    Withdraw(EidPrefix),
}

impl Delta {
    pub fn eid(&self) -> &EidPrefix {
        match self {
            Delta::Upsert(r) => &r.eid,
            Delta::Withdraw(p) => p,
        }
    }

    fn record(&self) -> EidRecord {
        match self {
            Delta::Upsert(r) => r.clone(),
            Delta::Withdraw(p) => EidRecord::new(*p, 0, Vec::new()),
        }
    }

    fn from_record(r: EidRecord) -> Delta {
        if r.ttl == 0 && r.locators.is_empty() {
            Delta::Withdraw(r.eid)
        } else {
            Delta::Upsert(r)
        }
    }
}

/// A datagram to send; `via` is the socket a request came in on, so the
/// answer leaves from the address the peer talked to.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub to: SocketAddr,
    pub via: Option<usize>,
    pub bytes: Vec<u8>,
}

/// Why a message was dropped (logged and counted by the caller).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("matches no subscription")]
    Unknown,
    #[error("cannot encode: {0}")]
    Encode(String),
}

fn sign_subscribe(m: &MapSubscribe, subtype: u16, psk: &[u8]) -> Result<Vec<u8>, Refused> {
    m.encode_signed(subtype, psk)
        .map_err(|e| Refused::Encode(e.to_string()))
}

fn notify(nonce: u64, itr_id: u32, epoch: u64, records: Vec<EidRecord>) -> MapNotify {
    MapNotify {
        body: AuthenticatedBody {
            nonce,
            key_id: MSX_KEY_ID,
            alg: AuthAlg::HMAC_SHA256_128,
            auth_data: Vec::new(),
            records,
            xtr_site: Some(XtrSiteId {
                xtr_id: u128::from(itr_id),
                site_id: epoch,
            }),
        },
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---------------------------------------------------------------- provider

/// What the agreement lets a peer subscribe to.
pub struct Allowed<'a> {
    pub agreement: String,
    pub prefixes: &'a [EidPrefix],
    pub local_as: u32,
}

struct Pending {
    bytes: Vec<u8>,
    tries: u32,
    next: Instant,
}

struct ProvidedSub {
    to: SocketAddr,
    via: usize,
    itr_id: u32,
    nonce: u64,
    filters: Vec<Filter>,
    agreement: String,
    expires: Instant,
    /// Publications sent so far (the next one's nonce is `nonce + seq + 1`).
    seq: u64,
    inflight: BTreeMap<u64, Pending>,
    records: u64,
    updates: u64,
    last_update_ms: u64,
}

impl ProvidedSub {
    fn matches(&self, eid: &EidPrefix, local_as: u32) -> bool {
        self.filters
            .iter()
            .any(|f| f.matches(eid, Some(local_as), None))
    }

    /// Queues `deltas` as publications (several when they do not fit one).
    fn publish(
        &mut self,
        now: Instant,
        deltas: &[Delta],
        epoch: u64,
        psk: &[u8],
        out: &mut Vec<Out>,
    ) {
        let mut batch: Vec<EidRecord> = Vec::new();
        let mut bytes = 0;
        for d in deltas {
            let r = d.record();
            let len = r.wire_len();
            if !batch.is_empty() && (bytes + len > PUBLICATION_BYTES || batch.len() == 255) {
                self.send_one(now, std::mem::take(&mut batch), epoch, psk, out);
                bytes = 0;
            }
            bytes += len;
            batch.push(r);
        }
        if !batch.is_empty() {
            self.send_one(now, batch, epoch, psk, out);
        }
    }

    fn send_one(
        &mut self,
        now: Instant,
        records: Vec<EidRecord>,
        epoch: u64,
        psk: &[u8],
        out: &mut Vec<Out>,
    ) {
        self.seq += 1;
        let nonce = self.nonce.wrapping_add(self.seq);
        let n = records.len() as u64;
        let Ok(bytes) = notify(nonce, self.itr_id, epoch, records).encode_signed(false, psk) else {
            return;
        };
        self.records += n;
        self.updates += 1;
        self.last_update_ms = unix_ms();
        out.push(Out {
            to: self.to,
            via: Some(self.via),
            bytes: bytes.clone(),
        });
        self.inflight.insert(
            nonce,
            Pending {
                bytes,
                tries: 1,
                next: now + RETRANSMIT,
            },
        );
    }
}

/// Outcome of a Map-Subscribe at the provider.
#[derive(Debug, Default)]
pub struct SubscribeOutcome {
    pub out: Vec<Out>,
    /// The filters to take a snapshot for (I bit, or a subscription we did
    /// not know): the caller passes the matching records to [`Publisher::push_all`].
    pub snapshot_for: Option<(IpAddr, u32)>,
    pub result: SubscribeResult,
}

pub struct Publisher {
    subs: BTreeMap<(IpAddr, u32), ProvidedSub>,
    pub cfg: SubscriptionConfig,
    /// Random at start: tells subscribers we restarted (and may have missed
    /// changes while down).
    epoch: u64,
    /// The set of subscriptions changed since the last [`Publisher::saved`].
    pub dirty: bool,
}

/// A subscription as persisted, so that a restarted provider keeps its
/// subscribers (and tells them, with its new epoch, to resynchronize).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSubscription {
    pub to: SocketAddr,
    pub via: usize,
    pub itr_id: u32,
    pub nonce: u64,
    pub filters: Vec<Filter>,
    pub agreement: String,
    pub expires_unix: u64,
}

fn unix_secs() -> u64 {
    unix_ms() / 1000
}

impl Publisher {
    pub fn new(cfg: SubscriptionConfig) -> Publisher {
        Publisher {
            subs: BTreeMap::new(),
            cfg,
            epoch: rand::random::<u64>() | 1,
            dirty: false,
        }
    }

    /// What to persist (clears `dirty`).
    pub fn saved(&mut self, now: Instant) -> Vec<SavedSubscription> {
        self.dirty = false;
        let unix = unix_secs();
        self.subs
            .values()
            .map(|s| SavedSubscription {
                to: s.to,
                via: s.via,
                itr_id: s.itr_id,
                nonce: s.nonce,
                filters: s.filters.clone(),
                agreement: s.agreement.clone(),
                expires_unix: unix + s.expires.saturating_duration_since(now).as_secs(),
            })
            .collect()
    }

    /// Takes persisted subscriptions back after a restart (those whose
    /// agreement still exists and that have not expired) and sends each an
    /// empty publication: our new epoch tells the subscriber to resynchronize.
    pub fn restore(
        &mut self,
        now: Instant,
        saved: Vec<SavedSubscription>,
        agreement_exists: impl Fn(&str) -> bool,
        psk: &[u8],
    ) -> Vec<Out> {
        let unix = unix_secs();
        let mut out = Vec::new();
        for s in saved {
            if s.expires_unix <= unix || !agreement_exists(&s.agreement) {
                continue;
            }
            let mut sub = ProvidedSub {
                to: s.to,
                via: s.via,
                itr_id: s.itr_id,
                nonce: s.nonce,
                filters: s.filters,
                agreement: s.agreement,
                expires: now + Duration::from_secs(s.expires_unix - unix),
                seq: 0,
                inflight: BTreeMap::new(),
                records: 0,
                updates: 0,
                last_update_ms: 0,
            };
            sub.send_one(now, Vec::new(), self.epoch, psk, &mut out);
            self.subs.insert((s.to.ip(), s.itr_id), sub);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Handles a Map-Subscribe from `from` (already decoded; `packet` is the
    /// raw bytes for authentication). `allowed` is None without an agreement
    /// that includes subscriptions.
    #[allow(clippy::too_many_arguments)]
    pub fn on_subscribe(
        &mut self,
        now: Instant,
        from: SocketAddr,
        via: usize,
        packet: &[u8],
        m: &MapSubscribe,
        subtype: u16,
        psk: &[u8],
        allowed: Option<Allowed<'_>>,
    ) -> Result<SubscribeOutcome, Refused> {
        m.verify(packet, psk)
            .map_err(|e| Refused::Auth(e.to_string()))?;
        let mut ack = MapSubscribe {
            ack: true,
            itr_id: m.itr_id,
            nonce: m.nonce,
            key_id: MSX_KEY_ID,
            alg: AuthAlg::HMAC_SHA256_128,
            ..Default::default()
        };
        let mut outcome = SubscribeOutcome::default();
        let key = (from.ip(), m.itr_id);
        // Any answered request may change what is persisted (set, filters, expiry).
        self.dirty = true;
        if let Some(r) = self.cfg.redirect_to {
            // Redirect: R set, other flags clear, expiry 0, no filters.
            ack.redirect = Some(r.into());
            outcome.out.push(Out {
                to: from,
                via: Some(via),
                bytes: sign_subscribe(&ack, subtype, psk)?,
            });
            return Ok(outcome);
        }
        let Some(allowed) = allowed else {
            ack.result = SubscribeResult::PROHIBITED;
            self.subs.remove(&key);
            outcome.result = ack.result;
            outcome.out.push(Out {
                to: from,
                via: Some(via),
                bytes: sign_subscribe(&ack, subtype, psk)?,
            });
            return Ok(outcome);
        };
        // "Everything" (the Any filter, our AS, or no filter in a
        // subscription): everything the agreement covers.
        let everything = || allowed.prefixes.iter().map(|p| Filter::Prefix(*p));
        let requested: Vec<Filter> = if m.filters.is_empty() && m.expiry != 0 {
            everything().collect()
        } else {
            m.filters
                .iter()
                .flat_map(|f| match f {
                    Filter::Any => everything().collect(),
                    Filter::As(a) if *a == allowed.local_as => everything().collect(),
                    other => vec![other.clone()],
                })
                .collect()
        };

        if m.expiry == 0 {
            // Expiry 0 deletes the listed filters (all of them when none).
            if let Some(s) = self.subs.get_mut(&key) {
                if m.filters.is_empty() {
                    s.filters.clear();
                } else {
                    s.filters.retain(|f| !requested.contains(f));
                }
                ack.filters = s.filters.clone();
                if s.filters.is_empty() {
                    self.subs.remove(&key);
                }
            }
            outcome.out.push(Out {
                to: from,
                via: Some(via),
                bytes: sign_subscribe(&ack, subtype, psk)?,
            });
            return Ok(outcome);
        }

        let expiry = m
            .expiry
            .clamp(self.cfg.min_expiry_secs, self.cfg.max_expiry_secs);
        let known = self
            .subs
            .get(&key)
            .is_some_and(|s| s.nonce == m.nonce && s.agreement == allowed.agreement);
        self.subs.entry(key).or_insert_with(|| ProvidedSub {
            to: from,
            via,
            itr_id: m.itr_id,
            nonce: m.nonce,
            filters: Vec::new(),
            agreement: allowed.agreement.clone(),
            expires: now,
            seq: 0,
            inflight: BTreeMap::new(),
            records: 0,
            updates: 0,
            last_update_ms: 0,
        });
        if !known {
            // The same peer under the same agreement with another ITR
            // identifier: the subscriber restarted; its old subscription goes.
            let agreement = allowed.agreement.clone();
            self.subs
                .retain(|k, s| *k == key || k.0 != key.0 || s.agreement != agreement);
        }
        let sub = self.subs.get_mut(&key).expect("inserted above");
        if !known {
            // A new subscription (or the subscriber restarted): start over.
            sub.nonce = m.nonce;
            sub.seq = 0;
            sub.inflight.clear();
            sub.filters.clear();
            sub.agreement = allowed.agreement.clone();
        }
        sub.to = from;
        sub.via = via;
        sub.expires = now + Duration::from_secs(u64::from(expiry));

        let (mut bad, mut local, mut limit) = (false, false, false);
        for f in requested {
            let ok = match &f {
                Filter::Prefix(p) => allowed.prefixes.iter().any(|a| a.contains(p)),
                Filter::As(_) | Filter::Any => {
                    local = true;
                    continue;
                }
                Filter::Name(_) => {
                    // We keep no names with mappings: such a filter never matches.
                    bad = true;
                    continue;
                }
            };
            if !ok {
                local = true;
                continue;
            }
            let Filter::Prefix(p) = f else { continue };
            // More specific than an installed filter: refused (the old one is
            // returned); more general: replaces the ones it covers.
            if sub.filters.iter().any(|g| match g {
                Filter::Prefix(q) => q.contains(&p),
                _ => false,
            }) {
                continue;
            }
            sub.filters.retain(|g| match g {
                Filter::Prefix(q) => !p.contains(q),
                _ => true,
            });
            if sub.filters.len() >= self.cfg.max_filters {
                limit = true;
                continue;
            }
            sub.filters.push(Filter::Prefix(p));
        }
        ack.result = if sub.filters.is_empty() {
            SubscribeResult::PROHIBITED
        } else if limit {
            SubscribeResult::PARTIAL_LIMIT
        } else if bad {
            SubscribeResult::PARTIAL_BAD
        } else if local {
            SubscribeResult::PARTIAL_LOCAL
        } else {
            SubscribeResult::SUCCESS
        };
        outcome.result = ack.result;
        if sub.filters.is_empty() {
            self.subs.remove(&key);
        } else {
            ack.unsolicited = true;
            ack.bulk = true;
            ack.immediate = m.immediate;
            ack.expiry = expiry;
            ack.filters = sub.filters.clone();
        }
        outcome.out.push(Out {
            to: from,
            via: Some(via),
            bytes: sign_subscribe(&ack, subtype, psk)?,
        });
        if self.subs.contains_key(&key) {
            if m.immediate {
                // Everything follows (the caller takes the snapshot).
                outcome.snapshot_for = Some(key);
            } else if !known {
                // An empty first publication tells the subscriber our epoch.
                let epoch = self.epoch;
                if let Some(s) = self.subs.get_mut(&key) {
                    s.send_one(now, Vec::new(), epoch, psk, &mut outcome.out);
                }
            }
        }
        Ok(outcome)
    }

    /// The filters of a subscription (for the caller's snapshot).
    pub fn filters(&self, key: (IpAddr, u32)) -> Option<&[Filter]> {
        self.subs.get(&key).map(|s| s.filters.as_slice())
    }

    /// Publishes every record of a snapshot to one subscription (I bit).
    pub fn push_all(
        &mut self,
        now: Instant,
        key: (IpAddr, u32),
        records: Vec<EidRecord>,
        local_as: u32,
        psk: &[u8],
    ) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(s) = self.subs.get_mut(&key) {
            let deltas: Vec<Delta> = records
                .into_iter()
                .filter(|r| s.matches(&r.eid, local_as))
                .map(Delta::Upsert)
                .collect();
            s.publish(now, &deltas, self.epoch, psk, &mut out);
        }
        out
    }

    /// Publishes changes to every subscription whose filters match.
    pub fn publish(
        &mut self,
        now: Instant,
        deltas: &[Delta],
        local_as: u32,
        psk: &[u8],
    ) -> Vec<Out> {
        let mut out = Vec::new();
        for s in self.subs.values_mut() {
            let mine: Vec<Delta> = deltas
                .iter()
                .filter(|d| s.matches(d.eid(), local_as))
                .cloned()
                .collect();
            if !mine.is_empty() {
                s.publish(now, &mine, self.epoch, psk, &mut out);
            }
        }
        out
    }

    /// A Map-Notify-Ack: true when it acknowledged one of our publications.
    pub fn on_notify_ack(
        &mut self,
        from: IpAddr,
        packet: &[u8],
        ack: &MapNotify,
        psk: &[u8],
    ) -> Result<bool, Refused> {
        let Some(itr_id) = ack.body.xtr_site.map(|x| x.xtr_id as u32) else {
            return Ok(false);
        };
        let Some(s) = self.subs.get_mut(&(from, itr_id)) else {
            return Ok(false);
        };
        if !s.inflight.contains_key(&ack.body.nonce) {
            return Ok(false);
        }
        verify_packet(packet, psk).map_err(|e| Refused::Auth(e.to_string()))?;
        s.inflight.remove(&ack.body.nonce);
        Ok(true)
    }

    /// Retransmissions and expiry; returns what to send and the subscriptions
    /// dropped (peer, reason).
    pub fn tick(&mut self, now: Instant) -> (Vec<Out>, Vec<(IpAddr, String)>) {
        let mut out = Vec::new();
        let mut dropped = Vec::new();
        self.subs.retain(|(peer, _), s| {
            if s.expires <= now {
                dropped.push((*peer, "expired".to_string()));
                return false;
            }
            for p in s.inflight.values_mut() {
                if p.next <= now {
                    if p.tries >= MAX_TRIES {
                        dropped.push((*peer, "publications not acknowledged".to_string()));
                        return false;
                    }
                    p.tries += 1;
                    p.next = now + RETRANSMIT;
                    out.push(Out {
                        to: s.to,
                        via: Some(s.via),
                        bytes: p.bytes.clone(),
                    });
                }
            }
            true
        });
        if !dropped.is_empty() {
            self.dirty = true;
        }
        (out, dropped)
    }

    /// Drops the subscriptions of a peer whose agreement ended.
    pub fn forget(&mut self, peer: IpAddr) {
        self.subs.retain(|(p, _), _| *p != peer);
        self.dirty = true;
    }

    pub fn show(&self, now: Instant) -> Vec<lisp_msx_proto::api::Subscription> {
        self.subs
            .values()
            .map(|s| lisp_msx_proto::api::Subscription {
                peer: s.to.ip().to_string(),
                role: "provider".into(),
                filters: s.filters.iter().map(Filter::to_text).collect(),
                expires_in_secs: s.expires.saturating_duration_since(now).as_secs(),
                records: s.records,
                updates: s.updates,
                state: if s.inflight.is_empty() {
                    "active".into()
                } else {
                    format!("active ({} unacknowledged)", s.inflight.len())
                },
                agreement_id: s.agreement.clone(),
                last_update_unix_ms: s.last_update_ms,
            })
            .collect()
    }
}

// -------------------------------------------------------------- subscriber

#[derive(Debug, Clone, PartialEq)]
enum State {
    Requesting {
        tries: u32,
        next: Instant,
    },
    Active {
        expires: Instant,
        renew: Instant,
    },
    /// Refused for good (PROHIBITED) or waiting (backoff, LOCAL).
    Waiting {
        until: Option<Instant>,
        why: String,
    },
}

struct WantedSub {
    provider: SocketAddr,
    agreement: String,
    filters: Vec<Filter>,
    nonce: u64,
    immediate: bool,
    state: State,
    /// Publication number expected next.
    next_seq: u64,
    result: SubscribeResult,
    records: u64,
    updates: u64,
    last_update_ms: u64,
    granted_filters: Vec<Filter>,
    /// The provider's epoch, from its publications.
    epoch: Option<u64>,
}

/// What the subscriber learned from a publication.
#[derive(Debug, Default)]
pub struct Publication {
    pub out: Vec<Out>,
    pub provider: Option<IpAddr>,
    pub deltas: Vec<Delta>,
    /// The subscription (re)started: a fresh bulk copy is the base to apply
    /// publications on (changes before it may have been missed).
    pub resync: bool,
}

/// Subscription wanted by the caller (from a client agreement).
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub provider: IpAddr,
    pub agreement: String,
    pub filters: Vec<Filter>,
    /// Ask for everything at once (no bulk copy to start from).
    pub immediate: bool,
}

pub struct Subscriber {
    itr_id: u32,
    subs: BTreeMap<IpAddr, WantedSub>,
    pub cfg: SubscriptionConfig,
    /// Deltas received while a bulk copy of that provider is in flight: they
    /// are applied again on top of the copy when it lands.
    since_bulk: HashMap<IpAddr, Vec<Delta>>,
}

impl Subscriber {
    pub fn new(cfg: SubscriptionConfig) -> Subscriber {
        Subscriber {
            itr_id: rand::random::<u32>() | 1,
            subs: BTreeMap::new(),
            cfg,
            since_bulk: HashMap::new(),
        }
    }

    /// Brings the subscriptions in line with `wanted`: new ones are
    /// requested, ones no longer wanted are cancelled (expiry 0).
    pub fn sync(&mut self, now: Instant, wanted: Vec<Want>, subtype: u16, psk: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        let gone: Vec<IpAddr> = self
            .subs
            .keys()
            .filter(|p| !wanted.iter().any(|w| w.provider == **p))
            .copied()
            .collect();
        for p in gone {
            if let Some(s) = self.subs.remove(&p)
                && matches!(s.state, State::Active { .. })
                && let Ok(o) = s.request(self.itr_id, subtype, psk, 0)
            {
                out.push(o);
            }
            self.since_bulk.remove(&p);
        }
        for w in wanted {
            let changed = self
                .subs
                .get(&w.provider)
                .is_none_or(|s| s.agreement != w.agreement || s.filters != w.filters);
            if !changed {
                continue;
            }
            let s = WantedSub {
                provider: SocketAddr::new(w.provider, CONTROL_PORT),
                agreement: w.agreement,
                filters: w.filters,
                nonce: rand::random::<u64>() >> 1,
                immediate: w.immediate,
                state: State::Requesting {
                    tries: 1,
                    next: now + SUBSCRIBE_RETRY,
                },
                next_seq: 1,
                result: SubscribeResult::SUCCESS,
                records: 0,
                updates: 0,
                last_update_ms: 0,
                granted_filters: Vec::new(),
                epoch: None,
            };
            if let Ok(o) = s.request(self.itr_id, subtype, psk, self.cfg.expiry_secs) {
                out.push(o);
            }
            self.subs.insert(w.provider, s);
        }
        out
    }

    /// True while `provider`'s subscription is being set up (a bulk copy
    /// waits for it, so that no change falls between the two).
    pub fn is_starting(&self, provider: IpAddr) -> bool {
        self.subs
            .get(&provider)
            .is_some_and(|s| matches!(s.state, State::Requesting { .. }) && s.epoch.is_none())
    }

    /// Starts logging deltas of `provider` (a bulk copy was requested).
    pub fn bulk_requested(&mut self, provider: IpAddr) {
        // A copy already on its way keeps its (older, so larger) log.
        self.since_bulk.entry(provider).or_default();
    }

    /// The deltas to apply again on top of a bulk copy that just landed.
    pub fn bulk_landed(&mut self, provider: IpAddr) -> Vec<Delta> {
        self.since_bulk.remove(&provider).unwrap_or_default()
    }

    fn find(&mut self, from: IpAddr, nonce: u64, itr_id: u32) -> Option<&mut WantedSub> {
        if itr_id != self.itr_id {
            return None;
        }
        if self.subs.get(&from).is_some_and(|s| s.nonce == nonce) {
            return self.subs.get_mut(&from);
        }
        // The provider answered from another of its addresses.
        self.subs.values_mut().find(|s| s.nonce == nonce)
    }

    /// A Map-Subscribe-Ack. Returns an extra request when redirected.
    pub fn on_ack(
        &mut self,
        now: Instant,
        from: IpAddr,
        packet: &[u8],
        m: &MapSubscribe,
        subtype: u16,
        psk: &[u8],
    ) -> Result<Vec<Out>, Refused> {
        let expiry_default = self.cfg.expiry_secs;
        let itr = self.itr_id;
        let Some(s) = self.find(from, m.nonce, m.itr_id) else {
            return Err(Refused::Unknown);
        };
        m.verify(packet, psk)
            .map_err(|e| Refused::Auth(e.to_string()))?;
        if !matches!(s.state, State::Requesting { .. } | State::Active { .. }) {
            return Ok(Vec::new());
        }
        s.result = m.result;
        if let Some(r) = m.redirect.and_then(|a| a.ip()) {
            // Switch Map-Resolver: ask the one we were sent to.
            tracing::info!(provider = %s.provider, redirect = %r, "LISP-MSX subscription redirected");
            s.provider = SocketAddr::new(r, CONTROL_PORT);
            s.state = State::Requesting {
                tries: 1,
                next: now + SUBSCRIBE_RETRY,
            };
            return Ok(vec![s.request(itr, subtype, psk, expiry_default)?]);
        }
        match m.result {
            SubscribeResult::PROHIBITED => {
                s.state = State::Waiting {
                    until: None,
                    why: "filters-prohibited".into(),
                };
            }
            _ if m.expiry == 0 => {
                s.state = State::Waiting {
                    until: Some(now + BACKOFF),
                    why: "no expiry granted".into(),
                };
            }
            r => {
                let life = Duration::from_secs(u64::from(m.expiry));
                s.state = State::Active {
                    expires: now + life,
                    renew: now + life / 3,
                };
                s.granted_filters = m.filters.clone();
                // The filters the provider refused are not asked again
                // (BAD/PROHIBITED never; LIMIT: no new ones; LOCAL: after 60 s).
                s.filters = m.filters.clone();
                if r == SubscribeResult::PARTIAL_LOCAL {
                    s.state = State::Active {
                        expires: now + life,
                        renew: now + (life / 3).max(LOCAL_WAIT),
                    };
                }
                if m.immediate {
                    s.next_seq = 1;
                }
                // Once set up, renewals do not ask for everything again.
                s.immediate = false;
            }
        }
        Ok(Vec::new())
    }

    /// A publication (Map-Notify): verified, acknowledged, returned as deltas.
    /// A gap in the numbering restarts the subscription with the I bit.
    pub fn on_publication(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &[u8],
        n: &MapNotify,
        subtype: u16,
        psk: &[u8],
    ) -> Result<Publication, Refused> {
        let itr_id = n.body.xtr_site.map_or(0, |x| x.xtr_id as u32);
        if itr_id != self.itr_id {
            return Err(Refused::Unknown);
        }
        let provider_key = self
            .subs
            .iter()
            .find(|(_, s)| {
                s.provider.ip() == from.ip()
                    && n.body.nonce.wrapping_sub(s.nonce) > 0
                    && n.body.nonce.wrapping_sub(s.nonce) < 1 << 40
            })
            .map(|(k, _)| *k)
            .ok_or(Refused::Unknown)?;
        verify_packet(packet, psk).map_err(|e| Refused::Auth(e.to_string()))?;
        let mut out = Vec::new();
        // Acknowledge (same nonce and xTR-ID, no records).
        let ack = notify(
            n.body.nonce,
            itr_id,
            n.body.xtr_site.map_or(0, |x| x.site_id),
            Vec::new(),
        );
        if let Ok(bytes) = ack.encode_signed(true, psk) {
            out.push(Out {
                to: from,
                via: None,
                bytes,
            });
        }
        let s = self.subs.get_mut(&provider_key).expect("found above");
        let seq = n.body.nonce.wrapping_sub(s.nonce);
        let epoch = n.body.xtr_site.map_or(0, |x| x.site_id);
        let mut publication = Publication {
            out,
            provider: Some(provider_key),
            deltas: Vec::new(),
            resync: false,
        };
        let restarted = s.epoch.is_some_and(|e| e != epoch);
        if !restarted && seq < s.next_seq {
            // A retransmission of something already applied.
            return Ok(publication);
        }
        if restarted || seq > s.next_seq {
            // Something was lost: start a new subscription asking for all.
            tracing::warn!(provider = %provider_key, expected = s.next_seq, got = seq, restarted, "LISP-MSX publications lost: resubscribing with the I bit");
            s.epoch = Some(epoch);
            s.restart_immediate(now);
            publication.resync = true;
            if let Ok(o) = s.request(self.itr_id, subtype, psk, self.cfg.expiry_secs) {
                publication.out.push(o);
            }
            return Ok(publication);
        }
        if s.epoch.is_none() || seq == 1 {
            publication.resync = true;
        }
        s.epoch = Some(epoch);
        s.next_seq += 1;
        s.records += n.body.records.len() as u64;
        s.updates += 1;
        s.last_update_ms = unix_ms();
        publication.deltas = n
            .body
            .records
            .iter()
            .cloned()
            .map(Delta::from_record)
            .collect();
        if let Some(log) = self.since_bulk.get_mut(&provider_key)
            && log.len() + publication.deltas.len() <= MAX_PENDING_DELTAS
        {
            log.extend(publication.deltas.iter().cloned());
        }
        Ok(publication)
    }

    /// Retries, renewals and backoff ends.
    pub fn tick(&mut self, now: Instant, subtype: u16, psk: &[u8]) -> Vec<Out> {
        let (itr, expiry) = (self.itr_id, self.cfg.expiry_secs);
        let mut send = Vec::new();
        for s in self.subs.values_mut() {
            match s.state.clone() {
                State::Requesting { tries, next } if next <= now => {
                    if tries >= SUBSCRIBE_TRIES {
                        s.state = State::Waiting {
                            until: Some(now + BACKOFF),
                            why: "no answer".into(),
                        };
                    } else {
                        s.state = State::Requesting {
                            tries: tries + 1,
                            next: now + SUBSCRIBE_RETRY,
                        };
                        send.extend(s.request(itr, subtype, psk, expiry).ok());
                    }
                }
                State::Active { expires, .. } if expires <= now => {
                    // Expired without a renewal answered: everything again.
                    s.restart_immediate(now);
                    send.extend(s.request(itr, subtype, psk, expiry).ok());
                }
                State::Active { expires, renew } if renew <= now => {
                    s.state = State::Active {
                        expires,
                        renew: now + SUBSCRIBE_RETRY * 5,
                    };
                    send.extend(s.request(itr, subtype, psk, expiry).ok());
                }
                State::Waiting { until: Some(t), .. } if t <= now => {
                    s.restart_immediate(now);
                    send.extend(s.request(itr, subtype, psk, expiry).ok());
                }
                _ => {}
            }
        }
        send
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.subs
            .values()
            .filter_map(|s| match s.state {
                State::Requesting { next, .. } => Some(next),
                State::Active { renew, expires } => Some(renew.min(expires)),
                State::Waiting { until, .. } => until,
            })
            .min()
    }

    pub fn show(&self, now: Instant) -> Vec<lisp_msx_proto::api::Subscription> {
        self.subs
            .values()
            .map(|s| {
                let (state, expires) = match &s.state {
                    State::Requesting { tries, .. } => (format!("requesting (try {tries})"), 0),
                    State::Active { expires, .. } => (
                        if s.result == SubscribeResult::SUCCESS {
                            "active".to_string()
                        } else {
                            format!("active ({})", s.result.name())
                        },
                        expires.saturating_duration_since(now).as_secs(),
                    ),
                    State::Waiting { why, .. } => (format!("refused ({why})"), 0),
                };
                lisp_msx_proto::api::Subscription {
                    peer: s.provider.ip().to_string(),
                    role: "subscriber".into(),
                    filters: s.granted_filters.iter().map(Filter::to_text).collect(),
                    expires_in_secs: expires,
                    records: s.records,
                    updates: s.updates,
                    state,
                    agreement_id: s.agreement.clone(),
                    last_update_unix_ms: s.last_update_ms,
                }
            })
            .collect()
    }
}

impl WantedSub {
    /// This subscription's Map-Subscribe (`expiry` 0: cancel it).
    fn request(&self, itr_id: u32, subtype: u16, psk: &[u8], expiry: u32) -> Result<Out, Refused> {
        let m = MapSubscribe {
            unsolicited: true,
            bulk: true,
            immediate: self.immediate,
            itr_id,
            nonce: self.nonce,
            key_id: MSX_KEY_ID,
            alg: AuthAlg::HMAC_SHA256_128,
            expiry,
            filters: self.filters.clone(),
            ..Default::default()
        };
        Ok(Out {
            to: self.provider,
            via: None,
            bytes: sign_subscribe(&m, subtype, psk)?,
        })
    }

    /// Starts over with a new subscription asking for everything.
    fn restart_immediate(&mut self, now: Instant) {
        self.nonce = rand::random::<u64>() >> 1;
        self.immediate = true;
        self.next_seq = 1;
        self.state = State::Requesting {
            tries: 1,
            next: now + SUBSCRIBE_RETRY,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lisp_msx_proto::LispMessage;
    use lisp_msx_proto::lisp::Locator;
    use lisp_msx_proto::msx::{ExtCodepoints, ExtMessage};

    const PSK: &[u8] = b"psk";

    fn cp() -> ExtCodepoints {
        ExtCodepoints::default()
    }

    fn pfx(s: &str) -> EidPrefix {
        crate::mapping::parse_eid(s, 0).unwrap().into()
    }

    fn rec(p: &str, rloc: &str) -> EidRecord {
        EidRecord::new(
            pfx(p),
            1440,
            vec![Locator::new(rloc.parse::<IpAddr>().unwrap(), 1, 100)],
        )
    }

    fn decode(o: &Out) -> LispMessage {
        LispMessage::decode_with(&o.bytes, &cp()).unwrap()
    }

    /// `m` signed with `psk`, and the message as a receiver decodes it.
    fn signed(m: &MapSubscribe, psk: &[u8]) -> (MapSubscribe, Vec<u8>) {
        let mut m = m.clone();
        m.auth_data.clear();
        let bytes = m.encode_signed(cp().subscribe, psk).unwrap();
        match LispMessage::decode_with(&bytes, &cp()).unwrap() {
            LispMessage::Extension(ExtMessage::Subscribe(m)) => (m, bytes),
            other => panic!("not a Map-Subscribe: {other:?}"),
        }
    }

    fn ack_of(o: &Out) -> MapSubscribe {
        match decode(o) {
            LispMessage::Extension(ExtMessage::Subscribe(m)) if m.ack => m,
            other => panic!("not an ack: {other:?}"),
        }
    }

    const FROM: &str = "192.0.2.1:4342";

    struct Pair {
        p: Publisher,
        s: Subscriber,
        allowed: Vec<EidPrefix>,
        now: Instant,
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                p: Publisher::new(SubscriptionConfig::default()),
                s: Subscriber::new(SubscriptionConfig::default()),
                allowed: vec![pfx("203.0.113.0/24")],
                now: Instant::now(),
            }
        }

        /// Delivers subscriber → provider requests; returns provider output.
        fn deliver_to_provider(&mut self, outs: Vec<Out>) -> Vec<Out> {
            let mut back = Vec::new();
            for o in outs {
                match decode(&o) {
                    LispMessage::Extension(ExtMessage::Subscribe(m)) => {
                        let allowed = Allowed {
                            agreement: "c/p".into(),
                            prefixes: &self.allowed,
                            local_as: 65002,
                        };
                        let r = self
                            .p
                            .on_subscribe(
                                self.now,
                                FROM.parse().unwrap(),
                                0,
                                &o.bytes,
                                &m,
                                cp().subscribe,
                                PSK,
                                Some(allowed),
                            )
                            .unwrap();
                        back.extend(r.out);
                    }
                    LispMessage::MapNotifyAck(n) => {
                        assert!(
                            self.p
                                .on_notify_ack("192.0.2.1".parse().unwrap(), &o.bytes, &n, PSK)
                                .unwrap()
                        );
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            back
        }

        /// Delivers provider → subscriber messages; returns (deltas, replies).
        fn deliver_to_subscriber(&mut self, outs: Vec<Out>) -> (Vec<Delta>, Vec<Out>, bool) {
            let (mut deltas, mut replies, mut resync) = (Vec::new(), Vec::new(), false);
            let from: SocketAddr = "203.0.113.250:4342".parse().unwrap();
            for o in outs {
                match decode(&o) {
                    LispMessage::Extension(ExtMessage::Subscribe(m)) => {
                        replies.extend(
                            self.s
                                .on_ack(self.now, from.ip(), &o.bytes, &m, cp().subscribe, PSK)
                                .unwrap(),
                        );
                    }
                    LispMessage::MapNotify(n) => {
                        let p = self
                            .s
                            .on_publication(self.now, from, &o.bytes, &n, cp().subscribe, PSK)
                            .unwrap();
                        deltas.extend(p.deltas);
                        replies.extend(p.out);
                        resync |= p.resync;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (deltas, replies, resync)
        }

        fn subscribe(&mut self) -> bool {
            let outs = self.s.sync(
                self.now,
                vec![Want {
                    provider: "203.0.113.250".parse().unwrap(),
                    agreement: "c/p".into(),
                    filters: vec![Filter::Prefix(pfx("203.0.113.0/24"))],
                    immediate: false,
                }],
                cp().subscribe,
                PSK,
            );
            let back = self.deliver_to_provider(outs);
            let (d, replies, resync) = self.deliver_to_subscriber(back);
            assert!(d.is_empty());
            assert!(self.deliver_to_provider(replies).is_empty());
            resync
        }
    }

    #[test]
    fn subscribe_publish_ack_and_withdraw() {
        let mut t = Pair::new();
        assert!(t.subscribe(), "the first publication asks for a base copy");
        assert_eq!(t.s.show(t.now)[0].state, "active");
        let outs = t.p.publish(
            t.now,
            &[
                Delta::Upsert(rec("203.0.113.0/26", "192.0.2.9")),
                // Outside the filters: not published.
                Delta::Upsert(rec("198.51.100.0/24", "192.0.2.9")),
            ],
            65002,
            PSK,
        );
        assert_eq!(outs.len(), 1);
        let (d, acks, _) = t.deliver_to_subscriber(outs);
        assert_eq!(d, vec![Delta::Upsert(rec("203.0.113.0/26", "192.0.2.9"))]);
        t.deliver_to_provider(acks);
        // Acknowledged: nothing is sent again.
        let (again, _) = t.p.tick(t.now + Duration::from_secs(2));
        assert!(again.is_empty());
        let outs =
            t.p.publish(t.now, &[Delta::Withdraw(pfx("203.0.113.0/26"))], 65002, PSK);
        let (d, _, _) = t.deliver_to_subscriber(outs);
        assert_eq!(d, vec![Delta::Withdraw(pfx("203.0.113.0/26"))]);
    }

    #[test]
    fn unacknowledged_publications_are_resent_then_the_subscription_dropped() {
        let mut t = Pair::new();
        t.subscribe();
        let outs = t.p.publish(
            t.now,
            &[Delta::Upsert(rec("203.0.113.0/26", "192.0.2.9"))],
            65002,
            PSK,
        );
        let mut resent = 0;
        let mut now = t.now;
        for _ in 0..10 {
            now += Duration::from_millis(1_100);
            let (o, dropped) = t.p.tick(now);
            resent += o.len();
            if !dropped.is_empty() {
                break;
            }
        }
        assert_eq!(resent, (MAX_TRIES - 1) as usize);
        assert!(t.p.is_empty());
        // A retransmission that does arrive is acknowledged but not applied twice.
        let (d1, _, _) = t.deliver_to_subscriber(outs.clone());
        let (d2, acks, _) = t.deliver_to_subscriber(outs);
        assert_eq!(d1.len(), 1);
        assert!(d2.is_empty());
        assert_eq!(acks.len(), 1);
    }

    #[test]
    fn a_gap_or_a_restarted_provider_resubscribes_with_the_i_bit() {
        let mut t = Pair::new();
        t.subscribe();
        let lost = t.p.publish(
            t.now,
            &[Delta::Upsert(rec("203.0.113.0/26", "192.0.2.9"))],
            65002,
            PSK,
        );
        drop(lost);
        let next = t.p.publish(
            t.now,
            &[Delta::Upsert(rec("203.0.113.64/26", "192.0.2.9"))],
            65002,
            PSK,
        );
        let (d, replies, resync) = t.deliver_to_subscriber(next);
        assert!(d.is_empty(), "not applied past a gap");
        assert!(resync);
        let resub = replies
            .iter()
            .find_map(|o| match decode(o) {
                LispMessage::Extension(ExtMessage::Subscribe(m)) if !m.ack => Some(m),
                _ => None,
            })
            .expect("a new Map-Subscribe");
        assert!(resub.immediate);

        // A restarted provider (new epoch) is noticed at its first publication.
        let mut t = Pair::new();
        t.subscribe();
        t.p = Publisher::new(SubscriptionConfig::default());
        let (_, replies, resync) = {
            // The renewal reaches the new provider, which answers with its epoch.
            let renew =
                t.s.tick(t.now + Duration::from_secs(201), cp().subscribe, PSK);
            assert_eq!(renew.len(), 1);
            let back = t.deliver_to_provider(renew);
            t.deliver_to_subscriber(back)
        };
        assert!(resync);
        assert!(replies.iter().any(|o| matches!(decode(o),
            LispMessage::Extension(ExtMessage::Subscribe(m)) if m.immediate)));
    }

    #[test]
    fn filters_results_redirect_and_wrong_key() {
        let mut p = Publisher::new(SubscriptionConfig {
            max_filters: 2,
            ..Default::default()
        });
        let allowed_prefixes = vec![pfx("203.0.113.0/24"), pfx("2001:db8::/32")];
        let now = Instant::now();
        let ask = |filters: Vec<Filter>, nonce: u64, psk: &[u8]| {
            let m = MapSubscribe {
                itr_id: 9,
                nonce,
                key_id: 1,
                alg: AuthAlg::HMAC_SHA256_128,
                expiry: 5,
                filters,
                ..Default::default()
            };
            signed(&m, psk)
        };
        let run = |p: &mut Publisher, m: &MapSubscribe, bytes: &[u8]| {
            p.on_subscribe(
                now,
                FROM.parse().unwrap(),
                0,
                bytes,
                m,
                cp().subscribe,
                PSK,
                Some(Allowed {
                    agreement: "a".into(),
                    prefixes: &allowed_prefixes,
                    local_as: 65002,
                }),
            )
        };
        // Wrong key: refused, nothing installed.
        let (m, b) = ask(vec![Filter::Any], 1, b"wrong");
        assert!(matches!(run(&mut p, &m, &b), Err(Refused::Auth(_))));
        assert!(p.is_empty());
        // A prefix outside the agreement: LOCAL; a name: BAD; expiry clamped.
        let (m, b) = ask(
            vec![
                Filter::Prefix(pfx("203.0.113.0/25")),
                Filter::Prefix(pfx("198.51.100.0/24")),
            ],
            2,
            PSK,
        );
        let r = run(&mut p, &m, &b).unwrap();
        assert_eq!(r.result, SubscribeResult::PARTIAL_LOCAL);
        let ack = ack_of(&r.out[0]);
        assert_eq!(ack.expiry, 10, "clamped to the minimum");
        assert_eq!(ack.filters, vec![Filter::Prefix(pfx("203.0.113.0/25"))]);
        // More specific than an installed filter: refused, the old one stays;
        // more general: replaces it.
        let (m, b) = ask(vec![Filter::Prefix(pfx("203.0.113.0/26"))], 2, PSK);
        let ack = ack_of(&run(&mut p, &m, &b).unwrap().out[0]);
        assert_eq!(ack.filters, vec![Filter::Prefix(pfx("203.0.113.0/25"))]);
        let (m, b) = ask(vec![Filter::Prefix(pfx("203.0.113.0/24"))], 2, PSK);
        let ack = ack_of(&run(&mut p, &m, &b).unwrap().out[0]);
        assert_eq!(ack.filters, vec![Filter::Prefix(pfx("203.0.113.0/24"))]);
        let (m, b) = ask(vec![Filter::Name("example.net".into())], 2, PSK);
        assert_eq!(
            run(&mut p, &m, &b).unwrap().result,
            SubscribeResult::PARTIAL_BAD
        );
        // The limit (2 filters).
        let (m, b) = ask(
            vec![
                Filter::Prefix(pfx("2001:db8:1::/48")),
                Filter::Prefix(pfx("2001:db8:2::/48")),
            ],
            2,
            PSK,
        );
        assert_eq!(
            run(&mut p, &m, &b).unwrap().result,
            SubscribeResult::PARTIAL_LIMIT
        );
        // Expiry 0 with no filters: unsubscribed.
        let mut m0 = ask(vec![], 2, PSK).0;
        m0.expiry = 0;
        let (m0, b0) = signed(&m0, PSK);
        run(&mut p, &m0, &b0).unwrap();
        assert!(p.is_empty());
        // Without an agreement: PROHIBITED.
        let (m, b) = ask(vec![Filter::Any], 3, PSK);
        let r = p
            .on_subscribe(
                now,
                FROM.parse().unwrap(),
                0,
                &b,
                &m,
                cp().subscribe,
                PSK,
                None,
            )
            .unwrap();
        assert_eq!(ack_of(&r.out[0]).result, SubscribeResult::PROHIBITED);
        // Redirect: R, no filters, expiry 0; the subscriber switches.
        p.cfg.redirect_to = Some("192.0.2.77".parse().unwrap());
        let (m, b) = ask(vec![Filter::Any], 4, PSK);
        let ack = ack_of(&run(&mut p, &m, &b).unwrap().out[0]);
        assert_eq!(ack.redirect.and_then(|a| a.ip()), "192.0.2.77".parse().ok());
        assert!(ack.filters.is_empty() && ack.expiry == 0);
        let mut s = Subscriber::new(SubscriptionConfig::default());
        let first = s.sync(
            now,
            vec![Want {
                provider: "192.0.2.1".parse().unwrap(),
                agreement: "a".into(),
                filters: vec![Filter::Any],
                immediate: false,
            }],
            cp().subscribe,
            PSK,
        );
        let LispMessage::Extension(ExtMessage::Subscribe(req)) = decode(&first[0]) else {
            panic!()
        };
        let mut redirect = ack.clone();
        redirect.itr_id = req.itr_id;
        redirect.nonce = req.nonce;
        let (redirect, rb) = signed(&redirect, PSK);
        let again = s
            .on_ack(
                now,
                "192.0.2.1".parse().unwrap(),
                &rb,
                &redirect,
                cp().subscribe,
                PSK,
            )
            .unwrap();
        assert_eq!(again[0].to, "192.0.2.77:4342".parse().unwrap());
    }
}
