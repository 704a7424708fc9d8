//! ETR: registers the site's database mappings with its Map-Servers every
//! `register_interval` (want-map-notify, retried with backoff until the
//! Map-Notify arrives), answers Map-Requests and RLOC probes for its EIDs,
//! and sends Solicit-Map-Requests to recent requesters when a mapping changes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use lisp_mapdb::Prefix;
use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::map_register::verify_packet;
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix, api};
use tracing::{info, warn};

use crate::config::{DatabaseMappingConfig, EtrMapServerConfig, KeyConfig, XtrConfig};
use crate::control::ctx::{Ctx, Incoming};
use crate::mapping::{record_view, reply_target};
use crate::stats::inc;

/// Requesters remembered per prefix, for SMRs after a change.
const REQUESTER_MEMORY: Duration = Duration::from_secs(600);
const MAX_REQUESTERS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum RegState {
    Pending,
    Registered,
    /// No Map-Notify yet; retrying.
    Retrying,
}

#[derive(Debug, Clone)]
struct Target {
    addr: IpAddr,
    key_id: u8,
    key: String,
    alg: AuthAlg,
    proxy_reply: bool,
    want_map_notify: bool,
    discovered: bool,
    state: RegState,
    next_register: Instant,
    /// Retransmission while no Map-Notify: 1 s doubling up to the interval.
    retry_backoff: Duration,
    outstanding: Option<u64>,
    last_register: Option<SystemTime>,
}

pub struct Etr {
    database: Vec<(Prefix, EidRecord)>,
    targets: Vec<Target>,
    interval: Duration,
    xtr_site: XtrSiteId,
    last_nonce: u64,
    requesters: HashMap<Prefix, Vec<(IpAddr, Instant)>>,
    discovered_key: Option<KeyConfig>,
}

fn record_of(d: &DatabaseMappingConfig, local: &[IpAddr]) -> EidRecord {
    let locators = d
        .locators
        .iter()
        .map(|l| {
            let mut loc = Locator::new(Addr::from(l.address), l.priority, l.weight);
            loc.local = local.contains(&l.address);
            loc
        })
        .collect();
    let mut rec = EidRecord::new(d.eid_prefix.normalized(), d.ttl_minutes, locators);
    rec.authoritative = true;
    rec
}

fn target_of(m: &EtrMapServerConfig, now: Instant) -> Target {
    Target {
        addr: m.address,
        key_id: m.key_id,
        key: m.key.clone(),
        alg: m.algorithm,
        proxy_reply: m.proxy_reply,
        want_map_notify: m.want_map_notify,
        discovered: false,
        state: RegState::Pending,
        next_register: now,
        retry_backoff: Duration::from_secs(1),
        outstanding: None,
        last_register: None,
    }
}

impl Etr {
    pub fn new(cfg: &XtrConfig, local: &[IpAddr], now: Instant) -> Etr {
        Etr {
            database: cfg
                .database
                .iter()
                .filter_map(|d| {
                    Prefix::try_from(d.eid_prefix.normalized())
                        .ok()
                        .map(|p| (p, record_of(d, local)))
                })
                .collect(),
            targets: cfg.map_servers.iter().map(|m| target_of(m, now)).collect(),
            interval: Duration::from_secs(cfg.register_interval_secs),
            xtr_site: XtrSiteId {
                xtr_id: cfg.xtr_id.unwrap_or_else(rand::random),
                site_id: cfg.site_id,
            },
            last_nonce: 0,
            requesters: HashMap::new(),
            discovered_key: cfg.discovered_ms_key.clone(),
        }
    }

    /// New configuration: changed mappings are re-registered at once and
    /// their recent requesters get an SMR; unchanged registrations stay.
    pub fn reload(&mut self, ctx: &mut Ctx<'_>, cfg: &XtrConfig, local: &[IpAddr]) {
        let new_db: Vec<(Prefix, EidRecord)> = cfg
            .database
            .iter()
            .filter_map(|d| {
                Prefix::try_from(d.eid_prefix.normalized())
                    .ok()
                    .map(|p| (p, record_of(d, local)))
            })
            .collect();
        let changed: Vec<Prefix> = new_db
            .iter()
            .filter(|(p, r)| !self.database.iter().any(|(q, s)| q == p && s == r))
            .map(|(p, _)| *p)
            .collect();
        let db_changed = new_db.len() != self.database.len() || !changed.is_empty();
        self.database = new_db;
        self.interval = Duration::from_secs(cfg.register_interval_secs);
        self.discovered_key = cfg.discovered_ms_key.clone();
        let now = ctx.now;
        let mut targets: Vec<Target> = cfg.map_servers.iter().map(|m| target_of(m, now)).collect();
        for t in &mut targets {
            if let Some(old) = self
                .targets
                .iter()
                .find(|o| o.addr == t.addr && o.key_id == t.key_id && o.key == t.key)
            {
                t.state = old.state.clone();
                t.next_register = if db_changed { now } else { old.next_register };
                t.last_register = old.last_register;
            }
        }
        targets.extend(self.targets.iter().filter(|t| t.discovered).cloned());
        self.targets = targets;
        for p in changed {
            self.send_smrs(ctx, p);
        }
    }

    /// Map-Servers learned through discovery (used with `discovered_ms_key`).
    pub fn set_discovered(&mut self, servers: &[IpAddr], now: Instant) {
        let Some(key) = self.discovered_key.clone() else {
            return;
        };
        self.targets
            .retain(|t| !t.discovered || servers.contains(&t.addr));
        for s in servers {
            if !self.targets.iter().any(|t| t.addr == *s) {
                info!(ms = %s, "registering with a discovered Map-Server");
                let mut t = target_of(
                    &EtrMapServerConfig {
                        address: *s,
                        key_id: key.id,
                        key: key.key.clone(),
                        algorithm: AuthAlg::HMAC_SHA256_128,
                        proxy_reply: true,
                        want_map_notify: true,
                    },
                    now,
                );
                t.discovered = true;
                self.targets.push(t);
            }
        }
    }

    pub fn map_servers(&self) -> Vec<IpAddr> {
        self.targets.iter().map(|t| t.addr).collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.targets.iter().map(|t| t.next_register).min()
    }

    fn next_nonce(&mut self) -> u64 {
        // Time-based so the Map-Server's "greater than the last" replay check
        // holds across restarts without persisting the counter.
        let micros = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        self.last_nonce = micros.max(self.last_nonce + 1);
        self.last_nonce
    }

    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.database.is_empty() {
            return;
        }
        let now = ctx.now;
        for i in 0..self.targets.len() {
            if self.targets[i].next_register > now {
                continue;
            }
            let nonce = self.next_nonce();
            let t = &mut self.targets[i];
            let reg = MapRegister {
                flags: RegisterFlags {
                    proxy_reply: t.proxy_reply,
                    want_map_notify: t.want_map_notify,
                    ..Default::default()
                },
                body: AuthenticatedBody {
                    nonce,
                    key_id: t.key_id,
                    alg: t.alg,
                    auth_data: Vec::new(),
                    records: self
                        .database
                        .iter()
                        .map(|(_, r)| r.clone())
                        .take(255)
                        .collect(),
                    xtr_site: Some(self.xtr_site),
                },
            };
            match reg.encode_signed(t.key.as_bytes()) {
                Ok(bytes) => {
                    if ctx.send_bytes(SocketAddr::new(t.addr, CONTROL_PORT), None, &bytes) {
                        inc(&ctx.stats.counters.map_register_tx);
                    }
                }
                Err(e) => warn!(ms = %t.addr, "cannot encode Map-Register: {e}"),
            }
            t.last_register = Some(SystemTime::now());
            if t.want_map_notify {
                // Until the Map-Notify arrives, retransmit: 1 s doubling up to
                // 60 s (RFC 9301 §5.7); the Notify resets to the interval.
                if t.outstanding.is_some() && t.state == RegState::Registered {
                    t.state = RegState::Retrying;
                }
                t.outstanding = Some(nonce);
                t.next_register = now + t.retry_backoff.min(self.interval);
                t.retry_backoff = (t.retry_backoff * 2).min(Duration::from_secs(60));
            } else {
                t.state = RegState::Registered;
                t.next_register = now + self.interval;
            }
        }
    }

    /// A Map-Notify answering one of our registrations.
    pub fn handle_notify(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        packet: &[u8],
        notify: &MapNotify,
    ) {
        inc(&ctx.stats.counters.map_notify_rx);
        let Some(t) = self.targets.iter_mut().find(|t| t.addr == inc_.src.ip()) else {
            return;
        };
        if verify_packet(packet, t.key.as_bytes()).is_err() {
            inc(&ctx.stats.counters.auth_failures);
            warn!(ms = %t.addr, "Map-Notify refused: bad authentication");
            return;
        }
        if t.outstanding != Some(notify.body.nonce) {
            return;
        }
        if t.state != RegState::Registered {
            info!(ms = %t.addr, "registered");
            ctx.event("registered", String::new(), format!("with {}", t.addr));
        }
        t.state = RegState::Registered;
        t.outstanding = None;
        t.retry_backoff = Duration::from_secs(1);
        t.next_register = ctx.now + self.interval;
    }

    /// The database entry covering the request, if any.
    pub fn covers(&self, key: &Prefix) -> bool {
        self.database.iter().any(|(p, _)| p.contains(key))
    }

    /// Answers a Map-Request (forwarded by a Map-Server, or an RLOC probe).
    pub fn handle_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        req: &MapRequest,
        ecm: Option<&EcmHeader>,
    ) {
        let Some(key) = crate::mapping::request_prefix(req) else {
            return;
        };
        let Some((p, rec)) = self.database.iter().find(|(p, _)| p.contains(&key)) else {
            return;
        };
        let (p, rec) = (*p, rec.clone());
        if req.flags.probe {
            inc(&ctx.stats.counters.probe_rx);
        }
        // Probes are answered to their source; others to the ITR-RLOC.
        let target = if req.flags.probe {
            Some(inc_.src)
        } else {
            let port = ecm.map_or(inc_.src.port(), |e| e.inner.src_port);
            let v4 = ctx.socks.iter().any(|s| s.is_ipv4());
            let v6 = ctx.socks.iter().any(|s| !s.is_ipv4());
            reply_target(req, port, v4, v6)
        };
        let Some(target) = target else { return };
        let mut reply = MapReply::new(req.nonce, vec![rec]);
        reply.probe = req.flags.probe;
        if ctx.send(target, None, &LispMessage::MapReply(reply)) {
            inc(&ctx.stats.counters.map_reply_tx);
        }
        if let Some(itr) = req.itr_rlocs.iter().find_map(|a| a.ip()) {
            let list = self.requesters.entry(p).or_default();
            let now = ctx.now;
            list.retain(|(a, t)| *a != itr && now.duration_since(*t) < REQUESTER_MEMORY);
            if list.len() < MAX_REQUESTERS {
                list.push((itr, now));
            }
        }
    }

    /// Solicit-Map-Requests to the ITRs that recently asked for `p`.
    fn send_smrs(&mut self, ctx: &mut Ctx<'_>, p: Prefix) {
        let Some(list) = self.requesters.get(&p) else {
            return;
        };
        let now = ctx.now;
        for (itr, seen) in list.clone() {
            if now.duration_since(seen) > REQUESTER_MEMORY {
                continue;
            }
            let dest = SocketAddr::new(itr, CONTROL_PORT);
            let Some(me) = ctx.local_for(&dest) else {
                continue;
            };
            let mut req = MapRequest::new(rand::random(), EidPrefix::from(p), Addr::from(me));
            req.flags.smr = true;
            req.source_eid = EidPrefix::from(p).addr;
            if ctx.send(dest, None, &LispMessage::MapRequest(req)) {
                info!(itr = %itr, prefix = %p, "sent SMR");
                inc(&ctx.stats.counters.map_request_tx);
            }
        }
    }

    pub fn show(&self) -> api::ShowDatabaseReply {
        api::ShowDatabaseReply {
            entries: self
                .database
                .iter()
                .map(|(_, r)| api::DatabaseEntry {
                    mapping: Some(record_view(r)),
                    map_servers: self.targets.iter().map(|t| t.addr.to_string()).collect(),
                    registration_state: self
                        .targets
                        .iter()
                        .map(|t| {
                            match t.state {
                                RegState::Pending => "pending",
                                RegState::Registered => "registered",
                                RegState::Retrying => "retrying",
                            }
                            .to_string()
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
