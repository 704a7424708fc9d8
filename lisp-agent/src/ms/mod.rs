//! Map-Server (RFC 9301 §8): sites with allowed EID prefixes and keys,
//! authenticated registrations with replay protection and expiry, Map-Notify,
//! proxy-replies, forwarding to ETRs, negative replies, and the DDT
//! Map-Server answers (RFC 8111: MS-ACK, MS-NOT-REGISTERED, DELEGATION-HOLE).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lisp_mapdb::{Prefix, PrefixMap};
use lisp_msx_proto::lisp::auth::{AuthAlg, AuthError};
use lisp_msx_proto::lisp::map_register::{self, auth_field};
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix, api};
use tracing::{debug, info, warn};

use crate::config::{MapServerConfig, SiteConfig};
use crate::control::ctx::{Ctx, Incoming};
use crate::mapping::{hole_prefix, locator_view, reply_target};
use crate::stats::inc;

/// TTL (minutes) of a negative reply for a configured but unregistered prefix.
pub const UNREGISTERED_TTL: u32 = 1;
/// TTL (minutes) of a negative reply for a prefix no site covers.
pub const HOLE_TTL: u32 = 15;
/// More-specific records added to one reply, at most.
const MAX_REPLY_RECORDS: usize = 32;

#[derive(Debug, Clone)]
struct Site {
    cfg: SiteConfig,
    auth_failures: u64,
}

/// One configured prefix of a site.
#[derive(Debug, Clone, Copy)]
struct Allowed {
    site: usize,
    accept_more_specifics: bool,
}

/// Who registered: the xTR-ID when sent, else the source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EtrKey {
    XtrId(u128),
    Source(IpAddr),
}

#[derive(Debug, Clone)]
struct EtrRegistration {
    key: EtrKey,
    source: SocketAddr,
    record: EidRecord,
    proxy_reply: bool,
    want_map_notify: bool,
    merge: bool,
    key_id: u8,
    alg: AuthAlg,
    xtr_site: Option<XtrSiteId>,
    expires: Instant,
    first: Instant,
    last: Instant,
}

/// Registrations of one EID prefix (possibly a more-specific of a configured one).
#[derive(Debug, Clone, Default)]
struct Registered {
    site: usize,
    etrs: Vec<EtrRegistration>,
}

impl Registered {
    /// The record to answer with: merged locator sets when every ETR asked for
    /// merging, else the most recent registration's (RFC 9301 §8.2).
    fn answer(&self) -> Option<EidRecord> {
        let mut rec = self.answer_as_registered()?;
        // Nobody but the ETR speaks for its locators: L is 0 in proxy
        // answers, and in what peers copy (RFC 9301 §5.4).
        for l in &mut rec.locators {
            l.local = false;
        }
        Some(rec)
    }

    fn answer_as_registered(&self) -> Option<EidRecord> {
        let newest = self.etrs.iter().max_by_key(|e| e.last)?;
        if self.etrs.iter().all(|e| e.merge) && self.etrs.len() > 1 {
            let mut rec = newest.record.clone();
            rec.locators.clear();
            for e in &self.etrs {
                for l in &e.record.locators {
                    if !rec.locators.iter().any(|x| x.addr == l.addr) {
                        rec.locators.push(*l);
                    }
                }
            }
            rec.authoritative = false;
            Some(rec)
        } else {
            let mut rec = newest.record.clone();
            // Only the ETR itself is authoritative; a proxy answer is not.
            rec.authoritative = false;
            Some(rec)
        }
    }

    fn proxy(&self, force: bool) -> bool {
        force || self.etrs.iter().any(|e| e.proxy_reply)
    }
}

pub struct MapServer {
    cfg: MapServerConfig,
    sites: Vec<Site>,
    allowed: PrefixMap<Allowed>,
    registered: PrefixMap<Registered>,
    /// Last nonce per (registrant, key id): anything not greater is a replay.
    last_nonce: HashMap<(EtrKey, u8), u64>,
    next_sweep: Instant,
    /// Prefixes whose answer changed since the last [`MapServer::take_changes`]
    /// (kept only while someone subscribes).
    changes: Vec<Prefix>,
    pub track_changes: bool,
}

impl MapServer {
    pub fn new(cfg: &MapServerConfig) -> MapServer {
        let mut ms = MapServer {
            cfg: cfg.clone(),
            sites: Vec::new(),
            allowed: PrefixMap::new(),
            registered: PrefixMap::new(),
            last_nonce: HashMap::new(),
            next_sweep: Instant::now(),
            changes: Vec::new(),
            track_changes: false,
        };
        ms.load_sites(cfg);
        ms
    }

    fn load_sites(&mut self, cfg: &MapServerConfig) {
        self.sites = cfg
            .sites
            .iter()
            .map(|s| Site {
                cfg: s.clone(),
                auth_failures: 0,
            })
            .collect();
        self.allowed = PrefixMap::new();
        for (i, s) in cfg.sites.iter().enumerate() {
            for p in &s.eid_prefixes {
                if let Ok(key) = Prefix::try_from(p.prefix.normalized()) {
                    self.allowed.insert(
                        key,
                        Allowed {
                            site: i,
                            accept_more_specifics: p.accept_more_specifics,
                        },
                    );
                }
            }
        }
    }

    /// Applies a new configuration, keeping the registrations that are still
    /// allowed for the same site (SIGHUP must not drop unchanged state).
    pub fn reload(&mut self, cfg: &MapServerConfig) {
        let old_names: Vec<String> = self.sites.iter().map(|s| s.cfg.name.clone()).collect();
        self.cfg = cfg.clone();
        self.load_sites(cfg);
        let allowed = &self.allowed;
        let sites = &self.sites;
        self.registered.retain(|p, reg| {
            let name = &old_names[reg.site];
            match allowed.longest_match_prefix(p) {
                Some((cfg_prefix, a))
                    if sites[a.site].cfg.name == *name
                        && (cfg_prefix == *p || a.accept_more_specifics) =>
                {
                    reg.site = a.site;
                    true
                }
                _ => false,
            }
        });
    }

    /// True when a configured site covers the prefix (the MS is responsible).
    pub fn covers(&self, p: &Prefix) -> bool {
        self.allowed.longest_match_prefix(p).is_some()
    }

    /// Whether a configured site overlaps `p` (for negative-reply holes).
    pub fn overlaps(&self, p: &Prefix) -> bool {
        crate::mapping::overlaps(&self.allowed, p)
    }

    /// The configured EID prefixes (for BGP origination).
    pub fn prefixes(&self) -> Vec<EidPrefix> {
        self.cfg
            .sites
            .iter()
            .flat_map(|s| s.eid_prefixes.iter().map(|p| p.prefix))
            .collect()
    }

    pub fn contact(&self) -> Option<IpAddr> {
        self.cfg.contact
    }

    pub fn ms_id(&self) -> u16 {
        self.cfg.ms_id
    }

    /// All registered mappings (the answer records), for bulk and subscribe.
    pub fn registered_records(&self) -> Vec<EidRecord> {
        self.registered
            .iter()
            .filter_map(|(_, r)| r.answer())
            .collect()
    }

    /// The registered answer covering `key` (mapping-system assist forwards data with it).
    pub fn registered_answer(&self, key: &Prefix) -> Option<EidRecord> {
        self.registered
            .longest_match_prefix(key)
            .and_then(|(_, r)| r.answer())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        Some(self.next_sweep)
    }

    /// The changes since the last call, as they stand now: the current answer
    /// of each changed prefix, or its withdrawal.
    pub fn take_changes(&mut self) -> Vec<crate::msx::subscribe::Delta> {
        use crate::msx::subscribe::Delta;
        if self.changes.is_empty() {
            return Vec::new();
        }
        let mut changed = std::mem::take(&mut self.changes);
        changed.sort_unstable();
        changed.dedup();
        changed
            .into_iter()
            .map(
                |p| match self.registered.get(&p).and_then(Registered::answer) {
                    Some(r) => Delta::Upsert(r),
                    None => Delta::Withdraw(p.into()),
                },
            )
            .collect()
    }

    /// Expires registrations.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.now < self.next_sweep {
            return;
        }
        self.next_sweep = ctx.now + Duration::from_secs(1);
        let now = ctx.now;
        let mut expired = Vec::new();
        self.registered.retain(|p, reg| {
            let before = reg.etrs.len();
            reg.etrs.retain(|e| e.expires > now);
            if reg.etrs.len() < before {
                expired.push(*p);
            }
            !reg.etrs.is_empty()
        });
        if self.track_changes {
            self.changes.extend(expired.iter().copied());
        }
        for p in expired {
            inc(&ctx.stats.counters.registrations_expired);
            info!(prefix = %p, "registration expired");
            ctx.event("registration-expired", p.to_string(), String::new());
        }
    }

    /// Handles a Map-Register (already decoded; `packet` is the raw bytes for
    /// authentication).
    pub fn handle_register(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        packet: &[u8],
        reg: &MapRegister,
    ) {
        inc(&ctx.stats.counters.map_register_rx);
        let Some(first) = reg.body.records.first() else {
            inc(&ctx.stats.counters.map_register_rejected);
            return;
        };
        let Ok(first_key) = Prefix::try_from(first.eid.normalized()) else {
            inc(&ctx.stats.counters.map_register_rejected);
            return;
        };
        let Some((_, allowed)) = self
            .allowed
            .longest_match_prefix(&first_key)
            .map(|(p, a)| (p, *a))
        else {
            inc(&ctx.stats.counters.map_register_rejected);
            debug!(src = %inc_.src, eid = %first.eid, "Map-Register for a prefix no site allows");
            return;
        };
        let site_idx = allowed.site;
        let field = match auth_field(packet) {
            Ok(f) => f,
            Err(_) => {
                inc(&ctx.stats.counters.malformed);
                return;
            }
        };
        let site = &mut self.sites[site_idx];
        let refuse = |ctx: &mut Ctx<'_>, site: &mut Site, why: &str| {
            site.auth_failures += 1;
            inc(&ctx.stats.counters.auth_failures);
            warn!(src = %inc_.src, site = %site.cfg.name, key_id = field.key_id, "Map-Register refused: {why}");
        };
        let alg_ok = match field.alg {
            AuthAlg::HMAC_SHA256_128 | AuthAlg::HMAC_SHA256_128_HKDF => true,
            AuthAlg::HMAC_SHA1_96 => self.cfg.accept_sha1,
            _ => false,
        };
        if !alg_ok {
            refuse(
                ctx,
                site,
                &format!("algorithm {} is not accepted", field.alg.name()),
            );
            return;
        }
        let Some(key) = site.cfg.keys.iter().find(|k| k.id == field.key_id) else {
            refuse(ctx, site, "unknown key id");
            return;
        };
        match map_register::verify_packet(packet, key.key.as_bytes()) {
            Ok(_) => {}
            Err(AuthError::Mismatch) => {
                refuse(ctx, site, "authentication data does not match");
                return;
            }
            Err(e) => {
                refuse(ctx, site, &e.to_string());
                return;
            }
        }
        let etr_key = reg
            .body
            .xtr_site
            .map_or(EtrKey::Source(inc_.src.ip()), |x| EtrKey::XtrId(x.xtr_id));
        let last = self.last_nonce.entry((etr_key, field.key_id)).or_insert(0);
        if reg.body.nonce <= *last && *last != 0 {
            inc(&ctx.stats.counters.replayed_nonces);
            warn!(src = %inc_.src, nonce = reg.body.nonce, "Map-Register refused: replayed nonce");
            return;
        }
        *last = reg.body.nonce;

        let now = ctx.now;
        let mut accepted = 0;
        for rec in &reg.body.records {
            let Ok(p) = Prefix::try_from(rec.eid.normalized()) else {
                continue;
            };
            let ok = match self.allowed.longest_match_prefix(&p) {
                Some((cfg_p, a)) => a.site == site_idx && (cfg_p == p || a.accept_more_specifics),
                None => false,
            };
            if !ok {
                inc(&ctx.stats.counters.map_register_rejected);
                warn!(src = %inc_.src, eid = %rec.eid, "record refused: not allowed for this site");
                continue;
            }
            let ttl = if reg.flags.use_ttl {
                Duration::from_secs(u64::from(rec.ttl.min(24 * 60 * 365)) * 60)
            } else {
                Duration::from_secs(self.cfg.registration_ttl_secs)
            };
            let entry = EtrRegistration {
                key: etr_key,
                source: inc_.src,
                record: rec.clone(),
                proxy_reply: reg.flags.proxy_reply,
                want_map_notify: reg.flags.want_map_notify,
                merge: reg.flags.merge,
                key_id: field.key_id,
                alg: field.alg,
                xtr_site: reg.body.xtr_site,
                expires: now + ttl,
                first: now,
                last: now,
            };
            let slot = match self.registered.get_mut(&p) {
                Some(s) => s,
                None => {
                    self.registered.insert(
                        p,
                        Registered {
                            site: site_idx,
                            etrs: Vec::new(),
                        },
                    );
                    self.registered.get_mut(&p).expect("just inserted")
                }
            };
            match slot.etrs.iter_mut().find(|e| e.key == etr_key) {
                Some(existing) => {
                    let changed = existing.record.locators != rec.locators;
                    let first = existing.first;
                    *existing = entry;
                    existing.first = first;
                    if changed {
                        ctx.event("registration", p.to_string(), "locators changed".into());
                        if self.track_changes {
                            self.changes.push(p);
                        }
                    }
                }
                None => {
                    slot.etrs.push(entry);
                    if self.track_changes {
                        self.changes.push(p);
                    }
                    info!(prefix = %p, etr = %inc_.src, site = %self.sites[site_idx].cfg.name, "registered");
                    ctx.event(
                        "registration",
                        p.to_string(),
                        format!("from {}", inc_.src.ip()),
                    );
                }
            }
            accepted += 1;
        }
        if accepted == 0 {
            return;
        }
        inc(&ctx.stats.counters.map_register_accepted);
        if reg.flags.want_map_notify {
            let notify = MapNotify::acknowledging(reg);
            let key = self.sites[site_idx]
                .cfg
                .keys
                .iter()
                .find(|k| k.id == field.key_id)
                .map(|k| k.key.clone());
            if let Some(key) = key
                && let Ok(bytes) = notify.encode_signed(false, key.as_bytes())
                && ctx.send_bytes(inc_.src, Some(inc_.sock), &bytes)
            {
                inc(&ctx.stats.counters.map_notify_tx);
            }
        }
    }

    /// Handles a Map-Request for a prefix this MS covers. `ecm` is the ECM
    /// header it came in (None: a plain Map-Request), `raw_ecm` its bytes.
    pub fn handle_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        req: &MapRequest,
        ecm: Option<&EcmHeader>,
        raw_ecm: Option<&[u8]>,
    ) {
        let Some(key) = crate::mapping::request_prefix(req) else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        let ddt = ecm.is_some_and(|e| e.ddt);
        // The Map-Reply goes to the ITR: inner UDP source port for an ECM, outer otherwise.
        let port = ecm.map_or(inc_.src.port(), |e| e.inner.src_port);
        let v4 = ctx.socks.iter().any(|s| s.is_ipv4());
        let v6 = ctx.socks.iter().any(|s| !s.is_ipv4());
        let target = reply_target(req, port, v4, v6);

        if let Some((reg_p, reg)) = self.registered.longest_match_prefix(&key) {
            let site_force = self
                .sites
                .get(reg.site)
                .is_some_and(|s| s.cfg.force_proxy_reply);
            if ddt {
                self.send_referral(ctx, inc_, req.nonce, reg_p, ReferralAction::MS_ACK, 1440);
            }
            if reg.proxy(site_force) {
                let Some(target) = target else { return };
                let mut records = Vec::with_capacity(2);
                if let Some(r) = reg.answer() {
                    records.push(r);
                }
                if key.len() < reg_p.len() || key == reg_p {
                    for (_, more) in self
                        .registered
                        .more_specifics(&reg_p)
                        .take(MAX_REPLY_RECORDS)
                    {
                        if let Some(r) = more.answer()
                            && r.eid != records[0].eid
                        {
                            records.push(r);
                        }
                    }
                }
                let reply = LispMessage::MapReply(MapReply::new(req.nonce, records));
                if ctx.send(target, None, &reply) {
                    inc(&ctx.stats.counters.map_reply_tx);
                }
            } else if let Some(etr) = reg.etrs.iter().max_by_key(|e| e.last) {
                // Forward to the ETR, which answers the ITR itself.
                let dest = SocketAddr::new(etr.source.ip(), CONTROL_PORT);
                match raw_ecm {
                    Some(raw) => {
                        let mut b = raw.to_vec();
                        b[0] = (b[0] & !0x04) | 0x02; // clear D, set E (to ETR)
                        ctx.send_bytes(dest, None, &b);
                    }
                    None => {
                        ctx.send(dest, None, &LispMessage::MapRequest(req.clone()));
                    }
                }
                inc(&ctx.stats.counters.ecm_forwarded);
            }
            return;
        }
        if let Some((cfg_p, _)) = self.allowed.longest_match_prefix(&key) {
            if ddt {
                self.send_referral(
                    ctx,
                    inc_,
                    req.nonce,
                    cfg_p,
                    ReferralAction::MS_NOT_REGISTERED,
                    UNREGISTERED_TTL,
                );
            } else if let Some(t) = target {
                negative(ctx, t, req.nonce, cfg_p, UNREGISTERED_TTL);
            }
            return;
        }
        let hole = hole_prefix(&key, &self.allowed, None);
        if ddt {
            self.send_referral(
                ctx,
                inc_,
                req.nonce,
                hole,
                ReferralAction::DELEGATION_HOLE,
                HOLE_TTL,
            );
        } else if let Some(t) = target {
            negative(ctx, t, req.nonce, hole, HOLE_TTL);
        }
    }

    fn send_referral(
        &self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        nonce: u64,
        p: Prefix,
        action: ReferralAction,
        ttl: u32,
    ) {
        let me = Addr::from(inc_.local.ip());
        let referrals = if action == ReferralAction::MS_ACK {
            vec![Locator::new(me, 1, 100)]
        } else {
            Vec::new()
        };
        let rec = ReferralRecord {
            ttl,
            eid: EidPrefix::from(p),
            action,
            authoritative: true,
            incomplete: false,
            map_version: 0,
            referrals,
            signatures: Vec::new(),
        };
        let msg = LispMessage::MapReferral(MapReferral {
            nonce,
            records: vec![rec],
        });
        if ctx.send(inc_.src, Some(inc_.sock), &msg) {
            inc(&ctx.stats.counters.map_referral_tx);
        }
    }

    pub fn show_sites(&self, req: &api::ShowSitesRequest, now: Instant) -> api::ShowSitesReply {
        let mut sites = Vec::new();
        for (i, s) in self.sites.iter().enumerate() {
            if !req.name.is_empty() && req.name != s.cfg.name {
                continue;
            }
            let prefixes = s
                .cfg
                .eid_prefixes
                .iter()
                .map(|p| {
                    let key = Prefix::try_from(p.prefix.normalized()).ok();
                    let regs: Vec<api::Registration> = key
                        .and_then(|k| self.registered.get(&k))
                        .map(|r| r.etrs.iter().map(|e| registration_view(e, now)).collect())
                        .unwrap_or_default();
                    let more: Vec<String> = key
                        .map(|k| {
                            self.registered
                                .more_specifics(&k)
                                .filter(|(mp, r)| *mp != k && r.site == i)
                                .map(|(mp, _)| mp.to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut rows = vec![api::SiteEidPrefix {
                        eid_prefix: p.prefix.to_string(),
                        accept_more_specifics: p.accept_more_specifics,
                        registered: !regs.is_empty() || !more.is_empty(),
                        registrations: regs,
                        // Listed as rows of their own below, with their registrations.
                        registered_more_specifics: Vec::new(),
                    }];
                    // Each registered more-specific gets its own row with its registrations.
                    if let Some(k) = key {
                        for (mp, r) in self.registered.more_specifics(&k) {
                            if mp != k && r.site == i {
                                rows.push(api::SiteEidPrefix {
                                    eid_prefix: mp.to_string(),
                                    accept_more_specifics: false,
                                    registered: true,
                                    registrations: r
                                        .etrs
                                        .iter()
                                        .map(|e| registration_view(e, now))
                                        .collect(),
                                    registered_more_specifics: Vec::new(),
                                });
                            }
                        }
                    }
                    rows
                })
                .flat_map(|rows| rows.into_iter())
                .collect();
            sites.push(api::Site {
                name: s.cfg.name.clone(),
                description: s.cfg.description.clone(),
                key_ids: s.cfg.keys.iter().map(|k| u32::from(k.id)).collect(),
                prefixes,
                auth_failures: s.auth_failures,
            });
        }
        api::ShowSitesReply { sites }
    }
}

fn registration_view(e: &EtrRegistration, now: Instant) -> api::Registration {
    api::Registration {
        etr: e.source.ip().to_string(),
        xtr_id: e
            .xtr_site
            .map(|x| format!("{:032x}", x.xtr_id))
            .unwrap_or_default(),
        site_id: e.xtr_site.map_or(0, |x| x.site_id),
        last_register_secs: now.saturating_duration_since(e.last).as_secs(),
        expires_in_secs: e.expires.saturating_duration_since(now).as_secs(),
        proxy_reply: e.proxy_reply,
        want_map_notify: e.want_map_notify,
        key_id: e.key_id.into(),
        algorithm: e.alg.name().to_string(),
        locators: e
            .record
            .locators
            .iter()
            .map(|l| {
                locator_view(
                    l,
                    if l.reachable { "up" } else { "down" },
                    now.saturating_duration_since(e.first).as_secs(),
                )
            })
            .collect(),
        ttl_minutes: e.record.ttl,
    }
}

/// Sends a negative Map-Reply (natively-forward) for `p`.
pub fn negative(ctx: &mut Ctx<'_>, to: SocketAddr, nonce: u64, p: Prefix, ttl: u32) {
    let rec = EidRecord::negative(EidPrefix::from(p), ttl, Action::NATIVELY_FORWARD);
    if ctx.send(
        to,
        None,
        &LispMessage::MapReply(MapReply::new(nonce, vec![rec])),
    ) {
        inc(&ctx.stats.counters.map_reply_tx);
        inc(&ctx.stats.counters.negative_reply_tx);
    }
}
