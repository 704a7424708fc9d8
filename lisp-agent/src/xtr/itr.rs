//! ITR control plane: the map-cache (longest-prefix match, IPv4/IPv6,
//! instance ids, TTL expiry, negative entries), resolution through the
//! Map-Resolvers (ECM Map-Requests; at most one per second per prefix;
//! retries doubling, failover to the next Map-Resolver; after 10 unanswered
//! tries a 30 s hold-down), SMR handling, RLOC probing, and `lig`.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lisp_mapdb::{CacheEntry, MapCache, NEVER, Prefix, RlocInterner, Source};
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix, api};
use tokio::sync::oneshot;
use tracing::{debug, info};

use crate::api::Response;
use crate::config::XtrConfig;
use crate::control::ctx::{Ctx, Incoming};
use crate::mapping::locator_view;
use crate::stats::inc;

const MAX_ATTEMPTS: u32 = 10;
const HOLD_DOWN: Duration = Duration::from_secs(30);
const MIN_RESEND: Duration = Duration::from_secs(1);
/// At most one SMR-invoked request per entry per this interval.
const SMR_INTERVAL: Duration = Duration::from_secs(3);
/// Probes unanswered before a locator is marked down.
const PROBE_MISSES_DOWN: u32 = 3;
/// How long a used entry outlives its TTL while it is being refreshed.
const REFRESH_GRACE_SECS: u32 = 10;

/// What RLOC probing learned about one locator (kept only for probed locators).
#[derive(Debug, Clone, Default)]
struct ProbeState {
    misses: u32,
    rtt: Option<Duration>,
}

/// How often locators are probed (None: never).
fn probe_interval(cfg: &XtrConfig) -> Option<Duration> {
    match (cfg.rloc_probe_interval_ms, cfg.rloc_probe_interval_secs) {
        (0, 0) => None,
        (0, s) => Some(Duration::from_secs(s)),
        (ms, _) => Some(Duration::from_millis(ms)),
    }
}

/// The usable locators of best (lowest) priority, for the data plane.
pub fn best_locators(e: &CacheEntry) -> Vec<Locator> {
    let usable = |l: &Locator| l.reachable && l.priority != 255;
    let best = e.locators.iter().filter(usable).map(|l| l.priority).min();
    e.locators
        .iter()
        .filter(|l| usable(l) && Some(l.priority) == best)
        .collect()
}

/// Someone waiting for a resolution (lig, the data plane).
#[derive(Debug)]
pub struct Waiter {
    pub reply: oneshot::Sender<Response>,
    pub started: Instant,
    pub via: Option<IpAddr>,
}

#[derive(Debug)]
struct Pending {
    nonce: u64,
    attempts: u32,
    last_sent: Instant,
    deadline: Instant,
    mr: usize,
    smr_invoked: bool,
    /// A lig sent to one Map-Resolver only.
    via: Option<IpAddr>,
    waiters: Vec<Waiter>,
}

pub struct Itr {
    pub enabled: bool,
    cfg: XtrConfig,
    /// The map-cache: compact entries (mapdb), locator sets shared through the interner.
    pub cache: MapCache,
    interner: RlocInterner,
    /// The cache's clock (whole seconds since start, from 1) for the u32 times in entries.
    base: Instant,
    probe_state: HashMap<(Prefix, Addr), ProbeState>,
    last_smr: HashMap<Prefix, Instant>,
    pending: HashMap<Prefix, Pending>,
    by_nonce: HashMap<u64, Prefix>,
    deadlines: BTreeSet<(Instant, u64)>,
    hold_down: HashMap<Prefix, Instant>,
    discovered_mrs: Vec<IpAddr>,
    itr_rlocs: Vec<Addr>,
    next_sweep: Instant,
    next_probe: Option<Instant>,
    probes: HashMap<u64, (Prefix, Addr, Instant)>,
    /// Map-cache synchronization is on: Map-Reply installs are collected in
    /// `installed`, and an expiring entry the data plane used within this
    /// many seconds stays while it is refreshed (`refreshing`), otherwise it
    /// goes to `expired`. The reactor hands all three to the sync engine.
    pub sync_window: Option<u32>,
    pub installed: Vec<(Prefix, EidRecord)>,
    pub refreshing: Vec<Prefix>,
    pub expired: Vec<Prefix>,
}

impl Itr {
    pub fn new(cfg: Option<&XtrConfig>, itr_rlocs: Vec<Addr>, now: Instant) -> Itr {
        let enabled = cfg.is_some_and(|c| c.itr);
        let cfg = cfg.cloned().unwrap_or_else(|| XtrConfig {
            itr: false,
            etr: false,
            map_resolvers: Vec::new(),
            map_servers: Vec::new(),
            discovered_ms_key: None,
            database: Vec::new(),
            static_map_cache: Vec::new(),
            itr_rlocs: Vec::new(),
            register_interval_secs: 60,
            request_timeout_ms: 1000,
            map_cache_limit: 0,
            max_ttl_secs: 0,
            rloc_probe_interval_secs: 0,
            rloc_probe_interval_ms: 0,
            xtr_id: None,
            site_id: 0,
            accept_smr: true,
        });
        let mut itr = Itr {
            enabled,
            next_probe: probe_interval(&cfg).map(|i| now + i),
            cfg,
            cache: MapCache::new(),
            interner: RlocInterner::new(),
            base: now,
            probe_state: HashMap::new(),
            last_smr: HashMap::new(),
            pending: HashMap::new(),
            by_nonce: HashMap::new(),
            deadlines: BTreeSet::new(),
            hold_down: HashMap::new(),
            discovered_mrs: Vec::new(),
            itr_rlocs,
            next_sweep: now,
            probes: HashMap::new(),
            sync_window: None,
            installed: Vec::new(),
            refreshing: Vec::new(),
            expired: Vec::new(),
        };
        itr.install_static(now);
        itr
    }

    /// The cache clock at `t`.
    pub fn secs(&self, t: Instant) -> u32 {
        u32::try_from(t.saturating_duration_since(self.base).as_secs())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    fn install_static(&mut self, now: Instant) {
        let now_s = self.secs(now);
        self.cache.retain(|_, e| e.source != Source::Static);
        for s in &self.cfg.static_map_cache {
            let Ok(key) = Prefix::try_from(s.eid_prefix.normalized()) else {
                continue;
            };
            let locators: Vec<Locator> = s
                .locators
                .iter()
                .map(|l| Locator::new(Addr::from(l.address), l.priority, l.weight))
                .collect();
            let mut e = CacheEntry::new(self.interner.intern(&locators), Source::Static, NEVER);
            if let Some(a) = s.action.as_deref().and_then(super::parse_action) {
                e.action = a;
            }
            e.installed = now_s;
            self.cache.insert(key, e);
        }
    }

    /// New configuration: static entries are replaced, learned entries stay.
    pub fn reload(&mut self, cfg: Option<&XtrConfig>, itr_rlocs: Vec<Addr>, now: Instant) {
        if let Some(c) = cfg {
            self.cfg = c.clone();
            self.enabled = c.itr;
        }
        self.itr_rlocs = itr_rlocs;
        self.install_static(now);
    }

    pub fn set_discovered_mrs(&mut self, mrs: Vec<IpAddr>) {
        self.discovered_mrs = mrs;
    }

    /// The Map-Resolvers in use: configured ones, else discovered ones.
    pub fn map_resolvers(&self) -> &[IpAddr] {
        if self.cfg.map_resolvers.is_empty() {
            &self.discovered_mrs
        } else {
            &self.cfg.map_resolvers
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let d = self.deadlines.first().map(|(t, _)| *t);
        [d, Some(self.next_sweep), self.next_probe]
            .into_iter()
            .flatten()
            .min()
    }

    /// Longest-match lookup for the data plane; counts hits and misses.
    pub fn lookup(&mut self, ctx: &Ctx<'_>, iid: u32, addr: Addr) -> Option<&mut CacheEntry> {
        let found = match addr {
            Addr::V4(a) => self.cache.lookup_v4_mut(iid, a),
            Addr::V6(a) => self.cache.lookup_v6_mut(iid, a),
            Addr::None => None,
        };
        inc(if found.is_some() {
            &ctx.stats.counters.cache_hits
        } else {
            &ctx.stats.counters.cache_misses
        });
        found
    }

    /// Starts (or joins) the resolution of `key`.
    pub fn resolve(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: Prefix,
        waiter: Option<Waiter>,
        smr_invoked: bool,
    ) {
        let now = ctx.now;
        if let Some(p) = self.pending.get_mut(&key) {
            if let Some(w) = waiter {
                p.waiters.push(w);
            }
            // At most one request per second per prefix (RFC 9301 §5.3).
            if now.duration_since(p.last_sent) >= MIN_RESEND && smr_invoked {
                let nonce = p.nonce;
                self.send_request(ctx, nonce);
            }
            return;
        }
        if let Some(until) = self.hold_down.get(&key)
            && *until > now
            && waiter.is_none()
        {
            return;
        }
        let via = waiter.as_ref().and_then(|w| w.via);
        if via.is_none() && self.map_resolvers().is_empty() {
            if let Some(w) = waiter {
                let _ = w.reply.send(Response::Lig(api::LigReply {
                    error: "no Map-Resolver configured or discovered".into(),
                    ..Default::default()
                }));
            }
            return;
        }
        let nonce = rand::random();
        self.pending.insert(
            key,
            Pending {
                nonce,
                attempts: 0,
                last_sent: now,
                deadline: now,
                mr: 0,
                smr_invoked,
                via,
                waiters: waiter.into_iter().collect(),
            },
        );
        self.by_nonce.insert(nonce, key);
        self.send_request(ctx, nonce);
    }

    fn send_request(&mut self, ctx: &mut Ctx<'_>, nonce: u64) {
        let Some(key) = self.by_nonce.get(&nonce).copied() else {
            return;
        };
        let mrs = self.map_resolvers().to_vec();
        let itr_rlocs = self.itr_rlocs.clone();
        let timeout = Duration::from_millis(self.cfg.request_timeout_ms);
        let Some(p) = self.pending.get_mut(&key) else {
            return;
        };
        let mr = match p.via {
            Some(v) => v,
            None => match mrs.get(p.mr % mrs.len().max(1)) {
                Some(m) => *m,
                None => return,
            },
        };
        let dest = SocketAddr::new(mr, CONTROL_PORT);
        let Some(local) = ctx.local_for(&dest) else {
            return;
        };
        let mut req = MapRequest::new(nonce, EidPrefix::from(key), Addr::from(local));
        let mut rlocs: Vec<Addr> = itr_rlocs
            .iter()
            .filter(|a| a.ip().is_some_and(|ip| ip.is_ipv4() == local.is_ipv4()))
            .copied()
            .collect();
        // The address we send from first: the answer goes to the first
        // ITR-RLOC, and the one the kernel picked is the one that works now.
        if let Some(i) = rlocs.iter().position(|a| a.ip() == Some(local)) {
            rlocs[..=i].rotate_right(1);
        }
        if !rlocs.is_empty() {
            req.itr_rlocs = rlocs.into_iter().take(32).collect();
        }
        req.flags.smr_invoked = p.smr_invoked;
        let eid_ip = EidPrefix::from(key).addr.addr.ip();
        let inner_dst = match eid_ip {
            Some(ip) if ip.is_ipv4() == local.is_ipv4() => ip,
            // The inner header needs one family: an IPv6 EID over IPv4 uses the ITR-RLOC.
            _ => local,
        };
        let inner = InnerHeader::new(
            local,
            inner_dst,
            ctx.socks.first().map_or(CONTROL_PORT, |s| s.local.port()),
            CONTROL_PORT,
        );
        let ecm = LispMessage::Ecm(Ecm::new(inner, LispMessage::MapRequest(req)));
        if ctx.send(dest, None, &ecm) {
            inc(&ctx.stats.counters.map_request_tx);
            if p.smr_invoked {
                inc(&ctx.stats.counters.smr_invoked_tx);
            }
        }
        self.deadlines.remove(&(p.deadline, nonce));
        p.last_sent = ctx.now;
        p.deadline = ctx.now + timeout * 2u32.saturating_pow(p.attempts.min(5));
        p.attempts += 1;
        self.deadlines.insert((p.deadline, nonce));
    }

    /// A Map-Reply: an answer to a resolution, a probe reply, or unmatched.
    pub fn handle_reply(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, reply: &MapReply) {
        inc(&ctx.stats.counters.map_reply_rx);
        if reply.probe {
            self.handle_probe_reply(ctx, inc_, reply);
            return;
        }
        let Some(key) = self.by_nonce.remove(&reply.nonce) else {
            inc(&ctx.stats.counters.map_reply_unmatched);
            return;
        };
        let Some(p) = self.pending.remove(&key) else {
            return;
        };
        self.deadlines.remove(&(p.deadline, p.nonce));
        self.hold_down.remove(&key);
        let now = ctx.now;
        let mut answer: Option<EidRecord> = None;
        for rec in &reply.records {
            let Ok(rk) = Prefix::try_from(rec.eid.normalized()) else {
                continue;
            };
            // Only records related to what we asked for may enter the cache.
            if !(rk.contains(&key) || key.contains(&rk)) {
                debug!(record = %rk, asked = %key, "ignoring an unrelated record");
                continue;
            }
            if rk.contains(&key)
                && answer
                    .as_ref()
                    .is_none_or(|a: &EidRecord| a.eid.len < rec.eid.len)
            {
                answer = Some(rec.clone());
            }
            if self.enabled {
                self.install(rk, rec.clone(), Source::MapReply, now, ctx);
            }
        }
        for w in p.waiters {
            let rtt = now.duration_since(w.started);
            let mapping = answer.as_ref().map(crate::mapping::record_view);
            let _ = w.reply.send(Response::Lig(api::LigReply {
                // A negative answer is an answer, but not a resolution.
                resolved: mapping.as_ref().is_some_and(|m| !m.locators.is_empty()),
                mapping,
                rtt_us: rtt.as_micros() as u64,
                map_resolver: p.via.map(|v| v.to_string()).unwrap_or_else(|| {
                    self.map_resolvers()
                        .get(p.mr % self.map_resolvers().len().max(1))
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                }),
                path: String::new(),
                error: String::new(),
            }));
        }
    }

    /// Installs (or replaces, or with TTL 0 removes) a mapping.
    pub fn install(
        &mut self,
        key: Prefix,
        rec: EidRecord,
        source: Source,
        now: Instant,
        ctx: &mut Ctx<'_>,
    ) {
        if rec.ttl == 0 {
            self.cache.remove(&key);
            return;
        }
        if self
            .cache
            .get(&key)
            .is_some_and(|old| old.source == Source::Static)
        {
            return;
        }
        if self.cfg.map_cache_limit > 0
            && self.cache.len() >= self.cfg.map_cache_limit
            && self.cache.get(&key).is_none()
        {
            // Full: evict the entry used least recently (never used first, oldest first).
            let victim = self
                .cache
                .iter()
                .filter(|(_, e)| e.source != Source::Static)
                .min_by_key(|(_, e)| (e.last_used, e.installed))
                .map(|(p, _)| p);
            if let Some(v) = victim {
                self.cache.remove(&v);
            }
        }
        let now_s = self.secs(now);
        let source = if rec.locators.is_empty() && source == Source::MapReply {
            Source::Negative
        } else {
            source
        };
        if self.sync_window.is_some() && source == Source::MapReply {
            self.installed.push((key, rec.clone()));
        }
        let mut e = CacheEntry::from_record_in(&rec, source, now_s, &mut self.interner);
        if self.cfg.max_ttl_secs > 0 && e.expires != NEVER {
            e.expires = e.expires.min(
                now_s.saturating_add(u32::try_from(self.cfg.max_ttl_secs).unwrap_or(u32::MAX)),
            );
        }
        if let Some(old) = self.cache.get(&key) {
            e.carry_over(old);
        }
        ctx.event("map-cache", key.to_string(), source.name().into());
        self.cache.insert(key, e);
    }

    /// A record learned from the synchronization set, valid for `valid_ms`
    /// more (every member holds the same expiry; rounded up to the second).
    pub fn install_synced(
        &mut self,
        key: Prefix,
        rec: &EidRecord,
        valid_ms: Option<u64>,
        ctx: &mut Ctx<'_>,
    ) {
        if self
            .cache
            .get(&key)
            .is_some_and(|old| old.source == Source::Static)
        {
            return;
        }
        let now_s = self.secs(ctx.now);
        let mut e = CacheEntry::from_record_in(rec, Source::Sync, now_s, &mut self.interner);
        e.expires = match valid_ms {
            None => NEVER,
            Some(ms) => {
                now_s.saturating_add(u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX - 1))
            }
        };
        if let Some(old) = self.cache.get(&key) {
            e.carry_over(old);
        }
        ctx.event("map-cache", key.to_string(), "sync".into());
        self.cache.insert(key, e);
    }

    /// A Solicit-Map-Request from an ETR: refresh the entry through the mapping system.
    pub fn handle_smr(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, req: &MapRequest) {
        inc(&ctx.stats.counters.smr_rx);
        if !self.cfg.accept_smr {
            return;
        }
        for r in &req.records {
            let Ok(k) = Prefix::try_from(r.eid.normalized()) else {
                continue;
            };
            let Some((cached, _)) = self.cache.longest_match_prefix(&k) else {
                // SMRs for uncached EIDs are ignored (RFC 9301 §6.1).
                continue;
            };
            let now = ctx.now;
            if self
                .last_smr
                .get(&cached)
                .is_some_and(|t| now.duration_since(*t) < SMR_INTERVAL)
            {
                continue;
            }
            self.last_smr
                .retain(|_, t| now.duration_since(*t) < SMR_INTERVAL);
            self.last_smr.insert(cached, now);
            info!(from = %inc_.src, prefix = %cached, "SMR: refreshing");
            self.resolve(ctx, cached, None, true);
        }
    }

    fn handle_probe_reply(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, reply: &MapReply) {
        inc(&ctx.stats.counters.probe_reply_rx);
        let Some((key, rloc, sent)) = self.probes.remove(&reply.nonce) else {
            return;
        };
        if rloc.ip() != Some(inc_.src.ip()) {
            return;
        }
        let st = self.probe_state.entry((key, rloc)).or_default();
        st.misses = 0;
        st.rtt = Some(ctx.now.duration_since(sent));
        if self.set_reachable(&key, rloc, true) {
            info!(prefix = %key, %rloc, "locator up (probe reply)");
        }
    }

    /// Marks a locator of an entry up or down; true when that changed it.
    fn set_reachable(&mut self, key: &Prefix, rloc: Addr, up: bool) -> bool {
        let Some(e) = self.cache.get_mut(key) else {
            return false;
        };
        let mut locs: Vec<Locator> = e.locators.iter().collect();
        let mut changed = false;
        for l in locs
            .iter_mut()
            .filter(|l| l.addr == rloc && l.reachable != up)
        {
            l.reachable = up;
            changed = true;
        }
        if changed {
            e.locators = self.interner.intern(&locs);
        }
        changed
    }

    fn probe_round(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        // Unanswered probes of the last round count as misses.
        let unanswered: Vec<(Prefix, Addr)> =
            self.probes.drain().map(|(_, (k, a, _))| (k, a)).collect();
        for (key, rloc) in unanswered {
            let st = self.probe_state.entry((key, rloc)).or_default();
            st.misses += 1;
            if st.misses >= PROBE_MISSES_DOWN && self.set_reachable(&key, rloc, false) {
                info!(prefix = %key, %rloc, "locator down (probes unanswered)");
                ctx.event("locator-down", key.to_string(), rloc.to_string());
            }
        }
        let cache = &self.cache;
        self.probe_state.retain(|(k, _), _| cache.contains_key(k));
        let targets: Vec<(Prefix, Addr)> = self
            .cache
            .iter()
            .filter(|(_, e)| e.source != Source::Static && e.source != Source::Negative)
            .flat_map(|(p, e)| {
                e.locators
                    .iter()
                    .map(move |l| (p, l.addr))
                    .collect::<Vec<_>>()
            })
            .filter(|(_, a)| a.ip().is_some())
            .take(4096)
            .collect();
        for (p, rloc) in targets {
            let Some(ip) = rloc.ip() else { continue };
            let dest = SocketAddr::new(ip, CONTROL_PORT);
            let Some(local) = ctx.local_for(&dest) else {
                continue;
            };
            let nonce: u64 = rand::random();
            let mut req = MapRequest::new(nonce, EidPrefix::from(p), Addr::from(local));
            req.flags.probe = true;
            if ctx.send(dest, None, &LispMessage::MapRequest(req)) {
                self.probes.insert(nonce, (p, rloc, now));
            }
        }
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        while let Some(&(t, nonce)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, nonce));
            let Some(key) = self.by_nonce.get(&nonce).copied() else {
                continue;
            };
            let n_mrs = self.map_resolvers().len().max(1);
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            if p.attempts >= MAX_ATTEMPTS
                || (p.via.is_some() || !p.waiters.is_empty()) && p.attempts >= 3
            {
                inc(&ctx.stats.counters.resolution_timeouts);
                let p = self.pending.remove(&key).expect("present");
                self.by_nonce.remove(&nonce);
                self.hold_down.insert(key, now + HOLD_DOWN);
                for w in p.waiters {
                    let _ = w.reply.send(Response::Lig(api::LigReply {
                        error: format!("no answer after {} tries", p.attempts),
                        ..Default::default()
                    }));
                }
                continue;
            }
            // Fail over to the next Map-Resolver.
            p.mr = (p.mr + 1) % n_mrs;
            self.send_request(ctx, nonce);
        }
        if now >= self.next_sweep {
            self.next_sweep = now + Duration::from_secs(1);
            let mut expired = 0;
            let now_s = self.secs(now);
            let window = self.sync_window;
            let (refreshing, gone) = (&mut self.refreshing, &mut self.expired);
            self.cache.retain(|k, e| {
                if !e.is_expired(now_s) {
                    return true;
                }
                if let Some(w) = window
                    && e.source != Source::Static
                {
                    let used = e.last_used != 0 && now_s.saturating_sub(e.last_used) <= w;
                    if used && e.source != Source::Negative {
                        // Keeps forwarding while the Map-Request is out.
                        e.expires = now_s + REFRESH_GRACE_SECS;
                        refreshing.push(*k);
                        return true;
                    }
                    gone.push(*k);
                }
                expired += 1;
                false
            });
            if expired > 0 {
                // Locator sets no entry uses any more.
                self.interner.purge();
            }
            if expired > 0 {
                ctx.stats
                    .counters
                    .cache_expired
                    .fetch_add(expired, std::sync::atomic::Ordering::Relaxed);
            }
            self.hold_down.retain(|_, t| *t > now);
        }
        if let Some(t) = self.next_probe
            && t <= now
        {
            self.next_probe = probe_interval(&self.cfg).map(|i| now + i);
            self.probe_round(ctx);
        }
    }

    /// Removes entries under `prefix` (all with None); returns how many.
    pub fn clear(&mut self, prefix: Option<Prefix>) -> u64 {
        let before = self.cache.len();
        match prefix {
            None => self.cache.retain(|_, e| e.source == Source::Static),
            Some(p) => self
                .cache
                .retain(|k, e| e.source == Source::Static || !p.contains(k)),
        }
        (before - self.cache.len()) as u64
    }

    pub fn show(&self, req: &api::ShowMapCacheRequest, now: Instant) -> api::ShowMapCacheReply {
        let now_s = self.secs(now);
        let view = |p: Prefix, e: &CacheEntry| {
            let rec = e.to_record(p, now_s);
            let up = u64::from(now_s.saturating_sub(e.installed));
            let mut mapping = crate::mapping::record_view(&rec);
            mapping.eid_prefix = p.to_string();
            mapping.locators = rec
                .locators
                .iter()
                .map(|l| locator_view(l, if l.reachable { "up" } else { "down" }, up))
                .collect();
            api::MapCacheEntry {
                mapping: Some(mapping),
                uptime_secs: up,
                expires_in_secs: if e.expires == NEVER {
                    0
                } else {
                    u64::from(e.expires.saturating_sub(now_s))
                },
                source: e.source.name().into(),
                packets: e.packets,
                bytes: e.bytes,
                last_used_secs: if e.last_used == 0 {
                    0
                } else {
                    u64::from(now_s.saturating_sub(e.last_used))
                },
                never_used: e.last_used == 0,
            }
        };
        let entries: Vec<api::MapCacheEntry> = if req.eid.is_empty() {
            self.cache.iter().map(|(p, e)| view(p, e)).collect()
        } else {
            match crate::mapping::parse_eid(&req.eid, req.instance_id) {
                Ok(k) => self
                    .cache
                    .longest_match_prefix(&k)
                    .map(|(p, e)| view(p, e))
                    .into_iter()
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        api::ShowMapCacheReply {
            total: self.cache.len() as u64,
            entries,
        }
    }

    /// The ITR-RLOCs (for show and the data plane).
    pub fn itr_rlocs(&self) -> &[Addr] {
        &self.itr_rlocs
    }
}
