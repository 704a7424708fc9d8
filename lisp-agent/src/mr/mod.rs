//! Map-Resolver (RFC 9301 §8.1, RFC 8111 DDT Map-Resolver): resolves
//! ECM-encapsulated Map-Requests through (a) the Map-Server holding the
//! prefix (static routes, or learned through OSPF/BGP discovery and MSX
//! agreements), (b) a DDT walk with a referral cache, or (c) a negative
//! reply. The path that served each request is counted.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lisp_mapdb::{Prefix, PrefixMap};
use lisp_msx_proto::api;
use lisp_msx_proto::lisp::*;
use tracing::debug;

use crate::config::MapResolverConfig;
use crate::control::ctx::{Ctx, Incoming};

use crate::mapping::reply_target;
use crate::ms::negative;
use crate::stats::{Stats, inc};

/// Copied mappings listed by `show lisp map-resolver` at most.
const SHOW_COPIED_MAX: usize = 1000;
/// DDT hops before a walk is abandoned (a referral loop).
const MAX_HOPS: u8 = 16;

/// Where the Map-Server for a prefix is, and who said so.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub map_servers: Vec<IpAddr>,
    /// "static", "ospf", "bgp", "msx-agreement"
    pub source: String,
    pub reachable: bool,
    pub agreement_id: String,
}

#[derive(Debug, Clone)]
struct CachedReferral {
    action: ReferralAction,
    referrals: Vec<IpAddr>,
    expires: Instant,
    incomplete: bool,
}

#[derive(Debug)]
struct DdtWalk {
    /// The ITR's ECM with the D bit set, re-sent at every hop.
    ecm: Vec<u8>,
    itr: Option<SocketAddr>,
    key: Prefix,
    candidates: Vec<IpAddr>,
    next: usize,
    asked: IpAddr,
    hops: u8,
    started: Instant,
    deadline: Instant,
}

pub struct MapResolver {
    cfg: MapResolverConfig,
    static_routes: Vec<(Prefix, Route)>,
    routes: PrefixMap<Route>,
    referrals: PrefixMap<CachedReferral>,
    walks: HashMap<u64, DdtWalk>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_sweep: Instant,
    /// Peer tables copied with Map-Bulk (LISP-MSX): answered directly.
    copy: PrefixMap<(IpAddr, EidRecord)>,
}

impl MapResolver {
    pub fn new(cfg: &MapResolverConfig) -> MapResolver {
        let mut mr = MapResolver {
            cfg: cfg.clone(),
            static_routes: Vec::new(),
            routes: PrefixMap::new(),
            referrals: PrefixMap::new(),
            walks: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_sweep: Instant::now(),
            copy: PrefixMap::new(),
        };
        mr.reload(cfg);
        mr
    }

    /// New configuration: static routes and roots change; the referral cache stays.
    pub fn reload(&mut self, cfg: &MapResolverConfig) {
        self.cfg = cfg.clone();
        let dynamic: Vec<(Prefix, Route)> = self
            .routes
            .iter()
            .filter(|(_, r)| r.source != "static")
            .map(|(p, r)| (p, r.clone()))
            .collect();
        self.static_routes = cfg
            .routes
            .iter()
            .filter_map(|r| {
                Prefix::try_from(r.eid_prefix.normalized()).ok().map(|p| {
                    (
                        p,
                        Route {
                            map_servers: r.map_servers.clone(),
                            source: "static".into(),
                            reachable: true,
                            agreement_id: String::new(),
                        },
                    )
                })
            })
            .collect();
        self.rebuild(dynamic);
    }

    /// Replaces the routes learned from `source` ("ospf", "bgp", "msx-agreement").
    pub fn set_learned_routes(&mut self, source: &str, learned: Vec<(Prefix, Route)>) {
        let mut keep: Vec<(Prefix, Route)> = self
            .routes
            .iter()
            .filter(|(_, r)| r.source != "static" && r.source != source)
            .map(|(p, r)| (p, r.clone()))
            .collect();
        keep.extend(learned);
        self.rebuild(keep);
    }

    fn rebuild(&mut self, dynamic: Vec<(Prefix, Route)>) {
        let mut routes = PrefixMap::new();
        // Dynamic first, static last: configuration wins over discovery.
        for (p, r) in dynamic
            .into_iter()
            .chain(self.static_routes.iter().cloned())
        {
            routes.insert(p, r);
        }
        self.routes = routes;
    }

    /// Replaces the copy of `peer`'s table (empty: forget it).
    pub fn set_copy(&mut self, peer: IpAddr, records: Vec<EidRecord>) {
        self.copy.retain(|_, (p, _)| *p != peer);
        for r in records {
            if let Ok(k) = Prefix::try_from(r.eid.normalized()) {
                self.copy.insert(k, (peer, r));
            }
        }
    }

    /// Applies published changes of `peer`'s table to its copy.
    pub fn apply_deltas(&mut self, peer: IpAddr, deltas: &[crate::msx::subscribe::Delta]) {
        use crate::msx::subscribe::Delta;
        for d in deltas {
            let Ok(k) = Prefix::try_from(d.eid().normalized()) else {
                continue;
            };
            match d {
                Delta::Upsert(r) => {
                    self.copy.insert(k, (peer, r.clone()));
                }
                Delta::Withdraw(_) => {
                    if self.copy.get(&k).is_some_and(|(p, _)| *p == peer) {
                        self.copy.remove(&k);
                    }
                }
            }
        }
    }

    /// Mappings held in copies.
    pub fn copied(&self) -> usize {
        self.copy.len()
    }

    pub fn ddt_roots(&self) -> &[IpAddr] {
        &self.cfg.ddt_roots
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    fn serve(stats: &Stats, path: &str, latency: Option<Duration>) {
        if let Some(i) = Stats::path_index(path) {
            inc(&stats.served[i]);
            if let Some(l) = latency {
                stats.resolution[i].observe_us(l.as_micros() as u64);
            }
        }
    }

    /// An ECM Map-Request from an ITR.
    /// `local_ms` is a co-located Map-Server: its sites are known space, so a
    /// negative reply's hole must not cover them.
    pub fn handle_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: &MapRequest,
        ecm: &EcmHeader,
        raw_ecm: &[u8],
        local_ms: Option<&crate::ms::MapServer>,
    ) {
        let Some(key) = crate::mapping::request_prefix(req) else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        let v4 = ctx.socks.iter().any(|s| s.is_ipv4());
        let v6 = ctx.socks.iter().any(|s| !s.is_ipv4());
        let itr = reply_target(req, ecm.inner.src_port, v4, v6);

        // A copied peer table answers at once, with no round trip at all.
        if let Some((_, (_, rec))) = self.copy.longest_match_prefix(&key)
            && let Some(t) = itr
        {
            let reply = LispMessage::MapReply(MapReply::new(req.nonce, vec![rec.clone()]));
            if ctx.send(t, None, &reply) {
                inc(&ctx.stats.counters.map_reply_tx);
            }
            Self::serve(ctx.stats, "msx-copy", Some(Duration::ZERO));
            return;
        }

        if let Some((_, route)) = self.routes.longest_match_prefix(&key)
            && route.reachable
            && let Some(ms) = route.map_servers.first()
        {
            let mut b = raw_ecm.to_vec();
            b[0] = (b[0] & !0x06) | 0x01; // not DDT, not to-ETR; M: destined to a Map-Server
            if ctx.send_bytes(SocketAddr::new(*ms, CONTROL_PORT), None, &b) {
                inc(&ctx.stats.counters.ecm_forwarded);
            }
            let path = if route.source.starts_with("msx") {
                "msx-direct"
            } else {
                "ms"
            };
            Self::serve(ctx.stats, path, None);
            return;
        }
        if !self.cfg.ddt_roots.is_empty() {
            self.start_walk(ctx, req.nonce, key, itr, raw_ecm);
            return;
        }
        if let Some(t) = itr {
            let routes = &self.routes;
            let hole = crate::mapping::hole_prefix_by(&key, None, |c| {
                crate::mapping::overlaps(routes, c) || local_ms.is_some_and(|ms| ms.overlaps(c))
            });
            negative(ctx, t, req.nonce, hole, self.cfg.negative_ttl_minutes);
        }
        Self::serve(ctx.stats, "negative", Some(Duration::ZERO));
    }

    fn start_walk(
        &mut self,
        ctx: &mut Ctx<'_>,
        nonce: u64,
        key: Prefix,
        itr: Option<SocketAddr>,
        raw_ecm: &[u8],
    ) {
        let now = ctx.now;
        let mut candidates = self.cfg.ddt_roots.clone();
        if let Some((p, c)) = self
            .referrals
            .longest_match_prefix(&key)
            .map(|(p, c)| (p, c.clone()))
            && c.expires > now
        {
            match c.action {
                // An MS-ACK names the DDT Map-Server that took the request:
                // later requests go straight to it (RFC 8111 §7.3.1).
                ReferralAction::NODE_REFERRAL
                | ReferralAction::MS_REFERRAL
                | ReferralAction::MS_ACK
                    if !c.referrals.is_empty() =>
                {
                    candidates = c.referrals.clone();
                }
                ReferralAction::MS_NOT_REGISTERED | ReferralAction::DELEGATION_HOLE => {
                    if let Some(t) = itr {
                        let ttl = (c.expires - now).as_secs().div_ceil(60).max(1) as u32;
                        negative(ctx, t, nonce, p, ttl);
                    }
                    Self::serve(ctx.stats, "ddt", Some(Duration::ZERO));
                    return;
                }
                _ => {}
            }
        }
        let mut ecm = raw_ecm.to_vec();
        ecm[0] |= 0x04; // D: a DDT request, Map-Referrals wanted
        let first = candidates[0];
        let walk = DdtWalk {
            ecm,
            itr,
            key,
            candidates,
            next: 1,
            asked: first,
            hops: 0,
            started: now,
            deadline: now + Duration::from_millis(self.cfg.ddt_timeout_ms),
        };
        self.send_walk(ctx, nonce, walk);
    }

    fn send_walk(&mut self, ctx: &mut Ctx<'_>, nonce: u64, walk: DdtWalk) {
        ctx.send_bytes(SocketAddr::new(walk.asked, CONTROL_PORT), None, &walk.ecm);
        inc(&ctx.stats.counters.map_request_tx);
        if let Some(old) = self.walks.get(&nonce) {
            self.deadlines.remove(&(old.deadline, nonce));
        }
        self.deadlines.insert((walk.deadline, nonce));
        self.walks.insert(nonce, walk);
    }

    /// A Map-Referral from a DDT node or DDT Map-Server.
    pub fn handle_referral(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, referral: &MapReferral) {
        inc(&ctx.stats.counters.map_referral_rx);
        let Some(walk) = self.walks.get(&referral.nonce) else {
            debug!(src = %inc_.src, "Map-Referral matching no walk");
            return;
        };
        // Only the node we asked may steer the walk.
        if walk.asked != inc_.src.ip() {
            debug!(src = %inc_.src, asked = %walk.asked, "Map-Referral from a node we did not ask");
            return;
        }
        let mut walk = self.walks.remove(&referral.nonce).expect("present");
        self.deadlines.remove(&(walk.deadline, referral.nonce));
        let Some(rec) = referral.records.first() else {
            return;
        };
        let now = ctx.now;
        let rec_key = Prefix::try_from(rec.eid.normalized()).unwrap_or(walk.key);
        let referral_ips: Vec<IpAddr> = rec.referrals.iter().filter_map(|l| l.addr.ip()).collect();
        let ttl = Duration::from_secs(u64::from(rec.ttl) * 60);
        if !rec.incomplete && rec.ttl > 0 {
            self.referrals.insert(
                rec_key,
                CachedReferral {
                    action: rec.action,
                    referrals: referral_ips.clone(),
                    expires: now + ttl,
                    incomplete: rec.incomplete,
                },
            );
        }
        match rec.action {
            ReferralAction::NODE_REFERRAL | ReferralAction::MS_REFERRAL
                if !referral_ips.is_empty() && walk.hops < MAX_HOPS =>
            {
                walk.hops += 1;
                walk.candidates = referral_ips;
                walk.asked = walk.candidates[0];
                walk.next = 1;
                walk.deadline = now + Duration::from_millis(self.cfg.ddt_timeout_ms);
                self.send_walk(ctx, referral.nonce, walk);
            }
            ReferralAction::MS_ACK => {
                Self::serve(ctx.stats, "ddt", Some(now - walk.started));
            }
            ReferralAction::MS_NOT_REGISTERED | ReferralAction::DELEGATION_HOLE => {
                if let Some(t) = walk.itr {
                    negative(ctx, t, referral.nonce, rec_key, rec.ttl.max(1));
                }
                Self::serve(ctx.stats, "ddt", Some(now - walk.started));
            }
            _ => self.next_candidate(ctx, referral.nonce, walk),
        }
    }

    /// Tries the next node of the current referral set, or gives up.
    fn next_candidate(&mut self, ctx: &mut Ctx<'_>, nonce: u64, mut walk: DdtWalk) {
        if let Some(next) = walk.candidates.get(walk.next).copied() {
            walk.next += 1;
            walk.asked = next;
            walk.deadline = ctx.now + Duration::from_millis(self.cfg.ddt_timeout_ms);
            self.send_walk(ctx, nonce, walk);
        } else {
            inc(&ctx.stats.counters.resolution_timeouts);
            if let Some(t) = walk.itr {
                negative(ctx, t, nonce, walk.key, 1);
            }
            Self::serve(ctx.stats, "negative", Some(ctx.now - walk.started));
        }
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(&(t, nonce)) = self.deadlines.first() {
            if t > ctx.now {
                break;
            }
            self.deadlines.remove(&(t, nonce));
            if let Some(walk) = self.walks.remove(&nonce) {
                self.next_candidate(ctx, nonce, walk);
            }
        }
        if ctx.now >= self.next_sweep {
            // Expired referrals are ignored on lookup; sweeping bounds memory.
            self.next_sweep = ctx.now + Duration::from_secs(10);
            let now = ctx.now;
            self.referrals.retain(|_, c| c.expires > now);
        }
    }

    pub fn show(&self, stats: &Stats, resolvers_in_use: Vec<String>) -> api::ShowMapResolverReply {
        api::ShowMapResolverReply {
            routes: self
                .routes
                .iter()
                .map(|(p, r)| api::MapServerRoute {
                    eid_prefix: p.to_string(),
                    map_servers: r.map_servers.iter().map(|a| a.to_string()).collect(),
                    source: r.source.clone(),
                    reachable: r.reachable,
                    agreement_id: r.agreement_id.clone(),
                })
                .collect(),
            ddt_roots: self.cfg.ddt_roots.iter().map(|a| a.to_string()).collect(),
            served_by: crate::stats::PATHS
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        p.to_string(),
                        stats.served[i].load(std::sync::atomic::Ordering::Relaxed),
                    )
                })
                .collect(),
            map_resolvers_in_use: resolvers_in_use,
            // Bounded: a copied table can hold millions.
            copied: self
                .copy
                .iter()
                .take(SHOW_COPIED_MAX)
                .map(|(p, (from, r))| api::CopiedMapping {
                    eid_prefix: p.to_string(),
                    from: from.to_string(),
                    rlocs: r
                        .locators
                        .iter()
                        .filter_map(|l| l.addr.ip())
                        .map(|a| a.to_string())
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn show_referrals(&self, now: Instant) -> api::ShowReferralCacheReply {
        api::ShowReferralCacheReply {
            entries: self
                .referrals
                .iter()
                .map(|(p, c)| api::ReferralEntry {
                    eid_prefix: p.to_string(),
                    action: c.action.name().to_string(),
                    referrals: c.referrals.iter().map(|a| a.to_string()).collect(),
                    expires_in_secs: c.expires.saturating_duration_since(now).as_secs(),
                    incomplete: c.incomplete,
                })
                .collect(),
        }
    }

    /// Forgets cached referrals (`clear` in tests and the experiment's cold runs).
    pub fn clear_referrals(&mut self) {
        self.referrals = PrefixMap::new();
    }
}
