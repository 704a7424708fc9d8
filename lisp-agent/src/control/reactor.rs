//! The reactor: one thread that owns the control-plane sockets and every
//! role's state. It waits in poll(2) on the sockets and an eventfd (API
//! calls, reloads), reads datagrams in batches, dispatches them to the roles,
//! runs the roles' timers, and flushes replies in batches.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lisp_msx_proto::DecodeError;
use lisp_msx_proto::api;
use lisp_msx_proto::lisp::{Ecm, LispMessage, MapRequest, TYPE_ECM, TYPE_MAP_REQUEST};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api::{Call, Request, Response};
use crate::config::Config;
use crate::control::ctx::{Ctx, Incoming};
use crate::control::handle::{Input, ReactorInbox};
use crate::control::io::{ControlSocket, Outbox, RecvBatch};
use crate::dataplane::{DataPlane, Roles as DpRoles};
use crate::ddt::DdtNode;
use crate::discovery::Discovery;
use crate::mr::MapResolver;
use crate::ms::MapServer;
use crate::stats::{Stats, inc};
use crate::xtr::etr::Etr;
use crate::xtr::itr::{Itr, Waiter};

/// The network side a handler acts through.
struct Net {
    socks: Vec<ControlSocket>,
    sources: crate::control::ctx::SourceCache,
    out: Outbox,
    stats: Arc<Stats>,
    events: Vec<mpsc::Sender<api::Event>>,
    cp: lisp_msx_proto::msx::ExtCodepoints,
}

impl Net {
    fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        Ctx {
            now,
            out: &mut self.out,
            socks: &self.socks,
            sources: &mut self.sources,
            stats: &self.stats,
            cp: self.cp,
            events: &mut self.events,
        }
    }

    fn flush(&mut self) {
        self.out
            .flush_counting(&self.socks, &self.stats.counters.send_errors);
    }
}

/// Per-source token buckets for Map-Requests, so a flood from one source
/// cannot starve the rest (registrations are never limited).
struct RateLimiter {
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    const MAX_SOURCES: usize = 65_536;

    fn allow(&mut self, src: IpAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        if self.buckets.len() >= Self::MAX_SOURCES {
            // Forget idle sources rather than grow without bound.
            self.buckets
                .retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(10));
        }
        let burst = self.rate;
        let (tokens, last) = self.buckets.entry(src).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Roles {
    cfg: Config,
    ms: Option<MapServer>,
    mr: Option<MapResolver>,
    ddt: Option<DdtNode>,
    etr: Option<Etr>,
    itr: Itr,
    discovery: Discovery,
    local_watchers: Vec<mpsc::Sender<api::LocalFunctions>>,
    local: api::LocalFunctions,
    epoch: u32,
    rate: RateLimiter,
    msx: Option<crate::msx::MsxRole>,
    started: Instant,
    /// Reused for every Map-Request: the hot path decodes without allocating.
    scratch: MapRequest,
    next_discovery_check: Option<Instant>,
    /// Subscription datagrams produced outside a packet context.
    msx_out: Vec<crate::msx::subscribe::Out>,
    /// ITR map-cache synchronization: the engine and its transport.
    sync: Option<SyncRole>,
}

struct SyncRole {
    engine: crate::sync::SyncEngine,
    out: crate::sync::transport::SyncOutgoing,
    /// The initial pull is over (or there is no set): the data plane forwards.
    ready: bool,
}

pub struct Reactor {
    net: Net,
    recv: RecvBatch,
    roles: Roles,
    inbox: ReactorInbox,
    dp: Option<DataPlane>,
    /// Readiness of the last poll, reused across iterations.
    ready: Vec<bool>,
    /// When a descriptor was last ready (for `agent.busy_poll_us`).
    last_io: Instant,
}

fn local_ips(cfg: &Config) -> Vec<IpAddr> {
    cfg.agent
        .listen
        .iter()
        .copied()
        .filter(|a| !a.is_unspecified())
        .collect()
}

/// The LISP-MSX service we offer, from the configuration.
fn msx_local(cfg: &Config) -> Option<lisp_msx_proto::cpnp::MsxService> {
    let m = cfg.msx.as_ref()?;
    let ms = cfg.map_server.as_ref()?;
    Some(lisp_msx_proto::cpnp::MsxService {
        mapping_system_contact: ms.contact?,
        ms_identifier: ms.ms_id,
        as_number: m.as_number,
        services: m.offer.into(),
        eid_prefixes: ms
            .sites
            .iter()
            .flat_map(|s| s.eid_prefixes.iter().map(|p| p.prefix))
            .collect(),
        rate_limits: Default::default(),
        validity_seconds: None,
    })
}

impl Reactor {
    /// `msx` carries the CPNP transport's outgoing channel and the agreements
    /// loaded from disk when `[msx]` is configured.
    pub fn new(
        cfg: Config,
        socks: Vec<ControlSocket>,
        inbox: ReactorInbox,
        stats: Arc<Stats>,
        msx: Option<(
            crate::msx::transport::Outgoing,
            Vec<crate::msx::negotiation::Agreement>,
            Option<tokio::sync::mpsc::UnboundedSender<crate::msx::bulk::BulkJob>>,
        )>,
        dp: Option<DataPlane>,
        sync_out: Option<crate::sync::transport::SyncOutgoing>,
    ) -> Reactor {
        let now = Instant::now();
        let local = local_ips(&cfg);
        let msx = match (
            msx,
            cfg.msx.as_ref(),
            msx_local(&cfg),
            cfg.agreements_path(),
        ) {
            (Some((out, persisted, jobs)), Some(m), Some(svc), Some(path)) => {
                Some(crate::msx::MsxRole::new(m, svc, path, persisted, out, jobs))
            }
            _ => None,
        };
        let mut roles = Roles {
            ms: cfg
                .map_server
                .as_ref()
                .filter(|c| c.enabled)
                .map(MapServer::new),
            mr: cfg
                .map_resolver
                .as_ref()
                .filter(|c| c.enabled)
                .map(MapResolver::new),
            ddt: cfg.ddt.as_ref().filter(|c| c.enabled).map(DdtNode::new),
            etr: cfg
                .xtr
                .as_ref()
                .filter(|x| x.etr)
                .map(|x| Etr::new(x, &local, now)),
            itr: Itr::new(cfg.xtr.as_ref(), cfg.itr_rlocs(), now),
            discovery: Discovery::default(),
            local_watchers: Vec::new(),
            local: api::LocalFunctions::default(),
            epoch: 1,
            rate: RateLimiter {
                rate: f64::from(cfg.agent.map_request_rate_limit),
                buckets: HashMap::new(),
            },
            msx,
            started: now,
            scratch: MapRequest::default(),
            next_discovery_check: None,
            msx_out: Vec::new(),
            sync: None,
            cfg,
        };
        if let (Some(sy), Some(out)) = (roles.cfg.sync.clone(), sync_out) {
            let member_id = sync_member_id(&sy, &roles.cfg.agent.name);
            let t = crate::sync::Time::now();
            roles.itr.sync_window = Some(u32::try_from(sy.refresh_window_secs).unwrap_or(u32::MAX));
            let engine =
                crate::sync::SyncEngine::new(sy, member_id, roles.cfg.agent.extensions.sync, t);
            roles.sync = Some(SyncRole {
                engine,
                out,
                ready: false,
            });
        }

        if let (Some(_), Some(ms)) = (&roles.msx, &mut roles.ms) {
            // Registration changes are published to subscribers.
            ms.track_changes = true;
        }
        if let Some(m) = &mut roles.msx {
            let out = m.restore_subscriptions(now);
            roles.msx_out.extend(out);
        }
        let mut r = Reactor {
            net: Net {
                socks,
                sources: Default::default(),
                out: Outbox::default(),
                stats,
                events: Vec::new(),
                cp: roles.cfg.agent.extensions,
            },
            recv: RecvBatch::default(),
            roles,
            inbox,
            dp,
            ready: Vec::new(),
            last_io: now,
        };
        r.roles.local = r.roles.local_functions();
        // Agreements loaded from disk become routes at once.
        r.roles.apply_discovery(now);
        let mut ctx = r.net.ctx(now);
        r.roles.sync_pump(&mut ctx);
        r.net.flush();
        r
    }

    /// Runs until told to shut down.
    pub fn run(mut self) {
        info!(name = %self.roles.cfg.agent.name, sockets = self.net.socks.len(), "control plane running");
        loop {
            let now = Instant::now();
            let deadline = self.roles.next_deadline();
            let timeout = deadline
                .map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now))
                .min(Duration::from_secs(1));
            // Busy polling: while packets keep coming, look again at once
            // instead of sleeping, so no wake-up sits between a request and
            // its reply.
            let busy = Duration::from_micros(u64::from(self.roles.cfg.agent.busy_poll_us));
            let timeout = if now.saturating_duration_since(self.last_io) < busy {
                Duration::ZERO
            } else {
                timeout
            };
            let mut fds: Vec<PollFd<'_>> = self
                .net
                .socks
                .iter()
                .map(|s| PollFd::new(s.sock.as_fd(), PollFlags::POLLIN))
                .collect();
            fds.push(PollFd::new(self.inbox.wake.as_fd(), PollFlags::POLLIN));
            if let Some(dp) = &self.dp {
                fds.extend(
                    dp.fds()
                        .into_iter()
                        .map(|f| PollFd::new(f, PollFlags::POLLIN)),
                );
            }
            let ms = timeout.as_millis().min(1000) as u16;
            // Sub-millisecond deadlines round up to 1 ms rather than spin.
            let t = if timeout.is_zero() {
                PollTimeout::ZERO
            } else {
                PollTimeout::from(ms.max(1))
            };
            self.ready.clear();
            match poll(&mut fds, t) {
                Ok(n) => {
                    if n > 0 {
                        self.last_io = Instant::now();
                    }
                    self.ready.extend(
                        fds.iter()
                            .map(|f| f.revents().is_some_and(|r| !r.is_empty())),
                    );
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    warn!("poll failed: {e}");
                    self.ready.resize(fds.len(), true);
                }
            }
            drop(fds);
            let ready = std::mem::take(&mut self.ready);
            let n_socks = self.net.socks.len();
            if ready.get(n_socks).copied().unwrap_or(false) {
                self.inbox.clear();
                if !self.drain_inbox() {
                    break;
                }
            }
            for i in 0..self.net.socks.len() {
                if ready.get(i).copied().unwrap_or(false) {
                    self.read_socket(i);
                }
            }
            // Data plane: the TUN device, then the UDP 4341 sockets.
            self.run_data_plane(ready.get(n_socks + 1..).unwrap_or(&[]));
            let now = Instant::now();
            let mut ctx = self.net.ctx(now);
            self.roles.tick(&mut ctx);
            self.roles.sync_pump(&mut ctx);
            self.net.flush();
            self.ready = ready;
        }
        info!("control plane stopped");
    }

    /// Serves the data plane's ready descriptors (`ready[0]`: the TUN
    /// device, then the data sockets), and its queue of packets waiting for
    /// a mapping.
    fn run_data_plane(&mut self, ready: &[bool]) {
        let Some(dp) = &mut self.dp else { return };
        dp.ready = self.roles.sync.as_ref().is_none_or(|s| s.ready);
        let now = Instant::now();
        let Roles { itr, etr, ms, .. } = &mut self.roles;
        let local_eid = |k: &lisp_mapdb::Prefix| etr.as_ref().is_some_and(|e| e.covers(k));
        let registered = |k: &lisp_mapdb::Prefix| ms.as_ref().and_then(|m| m.registered_answer(k));
        let mut roles = DpRoles {
            itr,
            local_eid: &local_eid,
            registered: &registered,
        };
        let mut ctx = self.net.ctx(now);
        if ready.first().copied().unwrap_or(false) {
            dp.read_tun(&mut roles, &mut ctx);
        }
        for i in 0..dp.socket_count() {
            if ready.get(i + 1).copied().unwrap_or(false) {
                dp.read_socket(i, &mut roles);
            }
        }
        dp.service_queue(&mut roles, &mut ctx);
        self.net.flush();
    }

    /// Reads and handles everything queued on socket `i`, a batch at a time.
    fn read_socket(&mut self, i: usize) {
        // Bounded, so timers and API calls are served under a flood too.
        for _ in 0..64 {
            let n = match self.recv.recv(&self.net.socks[i]) {
                Ok(n) => n,
                Err(e) => {
                    debug!("recvmmsg: {e}");
                    0
                }
            };
            if n == 0 {
                break;
            }
            let now = Instant::now();
            let local = self.net.socks[i].local;
            for k in 0..n {
                let (src, _) = self.recv.meta[k];
                let pkt = self.recv.packet(k);
                let inc_ = Incoming {
                    sock: i,
                    src,
                    local,
                };
                let mut ctx = self.net.ctx(now);
                inc(&ctx.stats.counters.packets_rx);
                self.roles.handle_packet(&mut ctx, &inc_, pkt);
            }
            self.net.flush();
            if n < crate::control::io::BATCH {
                break;
            }
        }
    }

    /// Handles API calls and control inputs; false when shutting down.
    fn drain_inbox(&mut self) -> bool {
        while let Ok(input) = self.inbox.rx.try_recv() {
            let now = Instant::now();
            match input {
                Input::Shutdown => return false,
                Input::Reload(cfg) => {
                    let mut ctx = self.net.ctx(now);
                    self.roles.reload(&mut ctx, *cfg);
                    self.net.cp = self.roles.cfg.agent.extensions;
                    if let (Some(dp), Some(c)) = (&mut self.dp, &self.roles.cfg.data_plane) {
                        dp.reload(c);
                    }
                }
                Input::BulkCopy { peer, records } => {
                    if let Some(mr) = &mut self.roles.mr {
                        mr.set_copy(peer, records);
                        // Publications that came while the copy was on its
                        // way are newer than (or as new as) the copy.
                        if let Some(m) = &mut self.roles.msx {
                            let later = m.subscriber.bulk_landed(peer);
                            mr.apply_deltas(peer, &later);
                        }
                    }
                }
                Input::Preprovision(records) => {
                    let mut ctx = self.net.ctx(now);
                    let n = records.len();
                    for rec in records {
                        if let Ok(key) = lisp_mapdb::Prefix::try_from(rec.eid.normalized()) {
                            self.roles.itr.install(
                                key,
                                rec,
                                lisp_mapdb::Source::Bulk,
                                now,
                                &mut ctx,
                            );
                        }
                    }
                    debug!(records = n, "map-cache pre-provisioned (Map-Bulk)");
                }
                Input::Sync(ev) => {
                    if let Some(s) = &mut self.roles.sync {
                        s.engine.on_event(ev, crate::sync::Time::now());
                    }
                    let mut ctx = self.net.ctx(now);
                    self.roles.sync_pump(&mut ctx);
                }
                Input::Cpnp { peer, msg } => {
                    if let Some(m) = &mut self.roles.msx
                        && m.received(peer, *msg, now)
                    {
                        self.roles.apply_discovery(now);
                    }
                }
                Input::Call(call) => {
                    if let Request::WatchEvents(tx) = call.request {
                        self.net.events.push(tx);
                        let _ = call.reply.send(Response::Watching);
                        continue;
                    }
                    let mut ctx = self.net.ctx(now);
                    self.roles.handle_call(&mut ctx, call);
                }
            }
        }
        self.net.flush();
        true
    }
}

/// A member id unique in the set: the sync address when it is IPv4, else a
/// hash of it (or of the agent's name).
fn sync_member_id(cfg: &crate::sync::SyncConfig, name: &str) -> u32 {
    match cfg.listen {
        Some(IpAddr::V4(a)) => u32::from(a),
        other => {
            let s = other.map_or_else(|| name.to_string(), |a| a.to_string());
            s.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            })
        }
    }
}

impl Roles {
    /// Hands the ITR's cache changes to the sync engine, runs it when due,
    /// and carries out what it asks: installs, removals, Map-Solicits,
    /// readiness; frames go to the transport.
    fn sync_pump(&mut self, ctx: &mut Ctx<'_>) {
        use crate::sync::{Action, ExpiryDecision, SyncKey, Time};
        let Some(s) = &mut self.sync else { return };
        let t = Time::now();
        for (key, rec) in self.itr.installed.drain(..) {
            let expiry = if rec.ttl == lisp_msx_proto::lisp::TTL_RECEIVER_DECIDES {
                crate::sync::engine::NEVER
            } else {
                t.unix_ms + u64::from(rec.ttl) * 60_000
            };
            s.engine.local_upsert(rec, key.iid(), expiry, true, t);
        }
        for key in std::mem::take(&mut self.itr.refreshing) {
            if s.engine.on_expiry(SyncKey::of_prefix(key), true, t) == ExpiryDecision::Refresh {
                self.itr.resolve(ctx, key, None, false);
            }
        }
        for key in self.itr.expired.drain(..) {
            s.engine.on_expiry(SyncKey::of_prefix(key), false, t);
        }
        if s.engine.next_wakeup() <= t.now {
            s.engine.tick(t);
        }
        for a in s.engine.drain_actions() {
            if s.out.apply(&a) {
                continue;
            }
            match a {
                Action::Install {
                    key,
                    rec,
                    expiry_unix_ms,
                } => {
                    if let Some(p) = key.prefix() {
                        let valid = (expiry_unix_ms != crate::sync::engine::NEVER)
                            .then(|| expiry_unix_ms.saturating_sub(t.unix_ms));
                        self.itr.install_synced(p, &rec, valid, ctx);
                    }
                }
                Action::Remove { key } => {
                    if let Some(p) = key.prefix() {
                        self.itr.cache.remove(&p);
                    }
                }
                Action::SendSolicit { to, msg } => {
                    let key = &s.engine.config().key;
                    if let Ok(bytes) = crate::sync::encode_solicit(&msg, ctx.cp.solicit, key) {
                        let dest =
                            std::net::SocketAddr::new(to, lisp_msx_proto::lisp::CONTROL_PORT);
                        ctx.send_bytes(dest, None, &bytes);
                    }
                }
                Action::Ready => {
                    if !s.ready {
                        info!("map-cache synchronization ready: forwarding");
                    }
                    s.ready = true;
                }
                _ => {}
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.ms.as_ref().and_then(MapServer::next_deadline),
            self.mr.as_ref().and_then(MapResolver::next_deadline),
            self.etr.as_ref().and_then(Etr::next_deadline),
            self.itr.next_deadline(),
            self.next_discovery_check,
            // Negotiation and subscription retransmissions run on a 250 ms clock.
            self.msx
                .as_ref()
                .map(|_| Instant::now() + Duration::from_millis(250)),
            self.msx
                .as_ref()
                .and_then(crate::msx::MsxRole::subscription_deadline),
            self.sync.as_ref().map(|s| s.engine.next_wakeup()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(ms) = &mut self.ms {
            ms.tick(ctx);
        }
        if let Some(mr) = &mut self.mr {
            mr.tick(ctx);
        }
        if let Some(etr) = &mut self.etr {
            etr.tick(ctx);
        }
        self.itr.tick(ctx);
        let msx_changed = self.msx.as_mut().is_some_and(|m| m.tick(ctx.now));
        if msx_changed || self.next_discovery_check.is_some_and(|t| t <= ctx.now) {
            self.apply_discovery(ctx.now);
        }
        if let Some(m) = &mut self.msx {
            // Registration changes go to the subscribers they match.
            if let Some(ms) = &mut self.ms {
                let deltas = ms.take_changes();
                if !deltas.is_empty() {
                    let out = m.publish(ctx.now, &deltas);
                    self.msx_out.extend(out);
                }
            }
            let out = m.subscription_tick(ctx.now, ctx.cp.subscribe);
            self.msx_out.extend(out);
            m.persist_subscriptions(ctx.now);
        }
        self.flush_msx(ctx);
    }

    fn flush_msx(&mut self, ctx: &mut Ctx<'_>) {
        for o in self.msx_out.drain(..) {
            ctx.send_bytes(o.to, o.via, &o.bytes);
        }
    }

    /// Map-Subscribe and its Ack (LISP-MSX subscriptions).
    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        pkt: &[u8],
        m: &lisp_msx_proto::msx::MapSubscribe,
    ) {
        let c = &ctx.stats.counters;
        let Some(msx) = &mut self.msx else {
            // Not supported here: ignored, as the draft says.
            inc(&c.unknown_type);
            return;
        };
        let subtype = ctx.cp.subscribe;
        if m.ack {
            match msx
                .subscriber
                .on_ack(ctx.now, inc_.src.ip(), pkt, m, subtype, &msx.psk)
            {
                Ok(out) => {
                    inc(&c.msx_subscribe_ack_rx);
                    self.msx_out.extend(out);
                }
                Err(e) => Self::msx_refused(ctx, inc_, "Map-Subscribe-Ack", &e),
            }
        } else {
            let ms = self.ms.as_ref();
            match msx.on_subscribe(ctx.now, inc_.src, inc_.sock, pkt, m, subtype, || {
                ms.map_or_else(Vec::new, MapServer::registered_records)
            }) {
                Ok((out, result)) => {
                    inc(&c.msx_subscribe_rx);
                    debug!(src = %inc_.src, result = result.name(), "Map-Subscribe");
                    self.msx_out.extend(out);
                }
                Err(e) => Self::msx_refused(ctx, inc_, "Map-Subscribe", &e),
            }
        }
        self.flush_msx(ctx);
    }

    fn msx_refused(ctx: &Ctx<'_>, inc_: &Incoming, what: &str, e: &crate::msx::subscribe::Refused) {
        use crate::msx::subscribe::Refused;
        match e {
            Refused::Auth(_) => {
                inc(&ctx.stats.counters.auth_failures);
                warn!(src = %inc_.src, "{what} refused: {e}");
            }
            Refused::Unknown => {
                inc(&ctx.stats.counters.msx_unmatched);
                debug!(src = %inc_.src, "{what} dropped: {e}");
            }
            Refused::Encode(_) => warn!(src = %inc_.src, "{what}: {e}"),
        }
    }

    /// A Map-Notify that publishes changes of a subscription; false when it
    /// is not one (then it is an ETR's registration acknowledgement).
    fn on_publication(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        pkt: &[u8],
        n: &lisp_msx_proto::lisp::MapNotify,
    ) -> bool {
        let Some(msx) = &mut self.msx else {
            return false;
        };
        if n.body.xtr_site.is_none() || self.mr.is_none() {
            return false;
        }
        match msx
            .subscriber
            .on_publication(ctx.now, inc_.src, pkt, n, ctx.cp.subscribe, &msx.psk)
        {
            Ok(p) => {
                inc(&ctx.stats.counters.msx_publication_rx);
                if let (Some(provider), Some(mr)) = (p.provider, &mut self.mr) {
                    mr.apply_deltas(provider, &p.deltas);
                    for d in &p.deltas {
                        let kind = match d {
                            crate::msx::subscribe::Delta::Upsert(_) => "msx-update",
                            crate::msx::subscribe::Delta::Withdraw(_) => "msx-withdraw",
                        };
                        ctx.event(kind, d.eid().to_string(), format!("from {provider}"));
                    }
                    if p.resync {
                        msx.force_bulk(provider, ctx.now);
                    }
                }
                self.msx_out.extend(p.out);
                self.flush_msx(ctx);
                true
            }
            Err(crate::msx::subscribe::Refused::Unknown) => false,
            Err(e) => {
                Self::msx_refused(ctx, inc_, "publication", &e);
                true
            }
        }
    }

    fn malformed(ctx: &Ctx<'_>, inc_: &Incoming, e: &DecodeError) {
        let c = &ctx.stats.counters;
        match e {
            DecodeError::UnknownType(_) | DecodeError::UnknownSubtype(_) => inc(&c.unknown_type),
            _ => inc(&c.malformed),
        }
        debug!(src = %inc_.src, "dropped: {e}");
    }

    fn handle_packet(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, pkt: &[u8]) {
        let Some(&first) = pkt.first() else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        match first >> 4 {
            TYPE_MAP_REQUEST => {
                let mut req = std::mem::take(&mut self.scratch);
                match req.decode_into(pkt) {
                    Ok(()) => self.on_map_request(ctx, inc_, &req),
                    Err(e) => Self::malformed(ctx, inc_, &e),
                }
                self.scratch = req;
            }
            TYPE_ECM => {
                inc(&ctx.stats.counters.ecm_rx);
                let (hdr, inner) = match Ecm::decode_headers(pkt) {
                    Ok(x) => x,
                    Err(e) => return Self::malformed(ctx, inc_, &e),
                };
                if inner.first().map(|b| b >> 4) != Some(TYPE_MAP_REQUEST) {
                    inc(&ctx.stats.counters.unknown_type);
                    return;
                }
                let mut req = std::mem::take(&mut self.scratch);
                match req.decode_into(inner) {
                    Ok(()) => self.on_ecm_request(ctx, inc_, &req, &hdr, pkt),
                    Err(e) => Self::malformed(ctx, inc_, &e),
                }
                self.scratch = req;
            }
            _ => match LispMessage::decode_with(pkt, &ctx.cp) {
                Ok(msg) => self.on_message(ctx, inc_, pkt, msg),
                Err(e) => Self::malformed(ctx, inc_, &e),
            },
        }
    }

    fn rate_limited(&mut self, ctx: &Ctx<'_>, inc_: &Incoming) -> bool {
        if self.rate.allow(inc_.src.ip(), ctx.now) {
            false
        } else {
            inc(&ctx.stats.counters.map_request_rate_limited);
            true
        }
    }

    /// A Map-Request that is not encapsulated: SMR, RLOC probe, or a request
    /// to an ETR or (directly) to a Map-Server.
    fn on_map_request(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, req: &MapRequest) {
        inc(&ctx.stats.counters.map_request_rx);
        if self.rate_limited(ctx, inc_) {
            return;
        }
        if req.flags.smr {
            self.itr.handle_smr(ctx, inc_, req);
            return;
        }
        let Some(key) = crate::mapping::request_prefix(req) else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        if let Some(etr) = &mut self.etr
            && etr.covers(&key)
        {
            etr.handle_request(ctx, inc_, req, None);
            return;
        }
        if req.flags.probe {
            return;
        }
        if let Some(ms) = &mut self.ms
            && ms.covers(&key)
        {
            ms.handle_request(ctx, inc_, req, None, None);
        }
    }

    fn on_ecm_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        inc_: &Incoming,
        req: &MapRequest,
        hdr: &lisp_msx_proto::lisp::EcmHeader,
        raw: &[u8],
    ) {
        inc(&ctx.stats.counters.map_request_rx);
        if self.rate_limited(ctx, inc_) {
            return;
        }
        let Some(key) = crate::mapping::request_prefix(req) else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        if hdr.to_etr {
            if let Some(etr) = &mut self.etr {
                etr.handle_request(ctx, inc_, req, Some(hdr));
            }
            return;
        }
        if let Some(ms) = &mut self.ms
            && (ms.covers(&key) || hdr.ddt && self.ddt.is_none())
        {
            ms.handle_request(ctx, inc_, req, Some(hdr), Some(raw));
            return;
        }
        if hdr.ddt {
            if let Some(ddt) = &self.ddt {
                ddt.handle_request(ctx, inc_, req);
            }
            return;
        }
        if let Some(mr) = &mut self.mr {
            mr.handle_request(ctx, req, hdr, raw, self.ms.as_ref());
            return;
        }
        if let Some(etr) = &mut self.etr
            && etr.covers(&key)
        {
            etr.handle_request(ctx, inc_, req, Some(hdr));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, inc_: &Incoming, pkt: &[u8], msg: LispMessage) {
        match msg {
            LispMessage::MapReply(r) => self.itr.handle_reply(ctx, inc_, &r),
            LispMessage::MapRegister(r) => match &mut self.ms {
                Some(ms) => ms.handle_register(ctx, inc_, pkt, &r),
                None => inc(&ctx.stats.counters.unknown_type),
            },
            LispMessage::MapNotify(n) => {
                if self.on_publication(ctx, inc_, pkt, &n) {
                    return;
                }
                match &mut self.etr {
                    Some(etr) => etr.handle_notify(ctx, inc_, pkt, &n),
                    None => inc(&ctx.stats.counters.unknown_type),
                }
            }
            LispMessage::MapNotifyAck(n) => {
                inc(&ctx.stats.counters.map_notify_ack_rx);
                if let Some(m) = &mut self.msx
                    && let Err(e) = m.publisher.on_notify_ack(inc_.src.ip(), pkt, &n, &m.psk)
                {
                    Self::msx_refused(ctx, inc_, "Map-Notify-Ack", &e);
                }
            }
            LispMessage::MapReferral(r) => match &mut self.mr {
                Some(mr) => mr.handle_referral(ctx, inc_, &r),
                None => inc(&ctx.stats.counters.unknown_type),
            },
            LispMessage::Extension(lisp_msx_proto::msx::ExtMessage::Subscribe(m)) => {
                inc(&ctx.stats.counters.extension_rx);
                self.on_subscribe(ctx, inc_, pkt, &m);
            }
            LispMessage::Extension(lisp_msx_proto::msx::ExtMessage::Solicit(m)) => {
                inc(&ctx.stats.counters.extension_rx);
                match &mut self.sync {
                    Some(s) => {
                        s.engine
                            .on_solicit(inc_.src.ip(), &m, pkt, crate::sync::Time::now())
                    }
                    None => inc(&ctx.stats.counters.unknown_type),
                }
            }
            LispMessage::Extension(_) => inc(&ctx.stats.counters.extension_rx),
            // Handled on the fast path before full decoding.
            LispMessage::MapRequest(_) | LispMessage::Ecm(_) => {}
        }
    }

    fn reload(&mut self, ctx: &mut Ctx<'_>, cfg: Config) {
        let now = ctx.now;
        if cfg.agent.listen != self.cfg.agent.listen
            || cfg.agent.control_port != self.cfg.agent.control_port
        {
            warn!("reload: changes to agent.listen/control_port take effect at the next restart");
        }
        let local = local_ips(&cfg);
        self.ms = match (
            self.ms.take(),
            cfg.map_server.as_ref().filter(|c| c.enabled),
        ) {
            (Some(mut ms), Some(c)) => {
                ms.reload(c);
                Some(ms)
            }
            (None, Some(c)) => Some(MapServer::new(c)),
            (_, None) => None,
        };
        self.mr = match (
            self.mr.take(),
            cfg.map_resolver.as_ref().filter(|c| c.enabled),
        ) {
            (Some(mut mr), Some(c)) => {
                mr.reload(c);
                Some(mr)
            }
            (None, Some(c)) => Some(MapResolver::new(c)),
            (_, None) => None,
        };
        self.ddt = cfg.ddt.as_ref().filter(|c| c.enabled).map(DdtNode::new);
        self.etr = match (self.etr.take(), cfg.xtr.as_ref().filter(|x| x.etr)) {
            (Some(mut etr), Some(x)) => {
                etr.reload(ctx, x, &local);
                Some(etr)
            }
            (None, Some(x)) => Some(Etr::new(x, &local, now)),
            (_, None) => None,
        };
        self.itr.reload(cfg.xtr.as_ref(), cfg.itr_rlocs(), now);
        self.rate.rate = f64::from(cfg.agent.map_request_rate_limit);
        if let (Some(m), Some(mc), Some(svc)) = (&mut self.msx, cfg.msx.as_ref(), msx_local(&cfg)) {
            m.reload(mc, svc);
        } else if cfg.msx.is_some() != self.msx.is_some() {
            warn!("reload: adding or removing [msx] takes effect at the next restart");
        }
        self.cfg = cfg;
        self.apply_discovery(now);
        self.push_local_functions();
        info!("configuration reloaded");
    }

    /// Feeds what discovery knows to the roles.
    fn apply_discovery(&mut self, now: Instant) {
        self.itr
            .set_discovered_mrs(self.discovery.map_resolvers(now));
        if let Some(etr) = &mut self.etr {
            etr.set_discovered(&self.discovery.map_servers(now), now);
        }
        // LISP-MSX: every reachable system learned from BGP is a candidate for
        // an interconnection; with `require_agreement`, only agreed ones are used.
        let mut agreement_routes = Vec::new();
        let mut use_bgp_directly = true;
        if let Some(m) = &mut self.msx {
            for p in self.discovery.bgp_systems(now) {
                m.discovered(&p, now);
            }
            agreement_routes = m.agreement_routes();
            use_bgp_directly = !m.require_agreement;
            m.request_bulk(now);
            let subtype = self.cfg.agent.extensions.subscribe;
            let out = m.sync_subscriptions(now, subtype);
            self.msx_out.extend(out);
            for gone in m.take_torn_down() {
                if let Some(mr) = &mut self.mr {
                    mr.set_copy(gone, Vec::new());
                }
            }
        }
        if let Some(mr) = &mut self.mr {
            let bgp = if use_bgp_directly {
                self.discovery.bgp_routes(now)
            } else {
                Vec::new()
            };
            mr.set_learned_routes("bgp", bgp);
            mr.set_learned_routes("msx-agreement", agreement_routes);
        }
        self.next_discovery_check = self.discovery.next_change(now);
    }

    fn local_functions(&self) -> api::LocalFunctions {
        let ms = self.ms.as_ref();
        let adv = &self.cfg.agent.advertise;
        let locators = if adv.locators.is_empty() {
            local_ips(&self.cfg)
        } else {
            adv.locators.clone()
        };
        api::LocalFunctions {
            map_server: ms.is_some(),
            map_resolver: self.mr.is_some(),
            locators: locators.iter().map(|a| a.to_string()).collect(),
            status: adv.status.clone(),
            description: adv
                .description
                .clone()
                .unwrap_or_else(|| self.cfg.agent.name.clone()),
            unavailability_timer_secs: adv.unavailability_timer_secs.unwrap_or(0),
            has_unavailability_timer: adv.unavailability_timer_secs.is_some(),
            reboot_timer_secs: adv.reboot_timer_secs.unwrap_or(0),
            has_reboot_timer: adv.reboot_timer_secs.is_some(),
            diagnosis: adv.diagnosis,
            epoch: self.epoch,
            database_status: if ms.is_some() {
                "synchronized".into()
            } else {
                String::new()
            },
            // MSF-CAPABILITIES bits (MSB first): subscribe, bulk, CPNP.
            capabilities: self.cfg.msx.as_ref().map_or(0, |m| {
                (u32::from(m.offer.subscribe) << 31) | (u32::from(m.offer.bulk) << 30) | (1 << 29)
            }),
            eid_prefixes: ms
                .map(|m| m.prefixes().iter().map(|p| p.to_string()).collect())
                .unwrap_or_default(),
            contact: ms
                .and_then(|m| m.contact())
                .map(|c| c.to_string())
                .unwrap_or_default(),
            ms_id: ms.map_or(0, |m| u32::from(m.ms_id())),
        }
    }

    fn push_local_functions(&mut self) {
        let lf = self.local_functions();
        if lf != self.local {
            self.local = lf.clone();
            self.local_watchers.retain(|tx| {
                !matches!(
                    tx.try_send(lf.clone()),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            });
        }
    }

    fn handle_call(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        let Call { request, reply } = call;
        let now = ctx.now;
        let resp = match request {
            Request::ShowSites(r) => match &self.ms {
                Some(ms) => Response::Sites(ms.show_sites(&r, now)),
                None => Response::Error("this agent is not a Map-Server".into()),
            },
            Request::ShowMapCache(r) => Response::MapCache(self.itr.show(&r, now)),
            Request::ShowDatabase => match &self.etr {
                Some(etr) => Response::Database(etr.show()),
                None => Response::Error("this agent is not an ETR".into()),
            },
            Request::ShowMapResolver => {
                let in_use = self
                    .itr
                    .map_resolvers()
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                match &self.mr {
                    Some(mr) => Response::MapResolver(mr.show(ctx.stats, in_use)),
                    None => Response::MapResolver(api::ShowMapResolverReply {
                        map_resolvers_in_use: in_use,
                        ..Default::default()
                    }),
                }
            }
            Request::ShowReferralCache => match &self.mr {
                Some(mr) => Response::ReferralCache(mr.show_referrals(now)),
                None => Response::Error("this agent is not a Map-Resolver".into()),
            },
            Request::ShowStatistics => Response::Statistics(api::ShowStatisticsReply {
                counters: ctx
                    .stats
                    .counters
                    .snapshot()
                    .into_iter()
                    .map(|(n, _, v)| (n.to_string(), v))
                    .collect(),
                uptime_secs: now.duration_since(self.started).as_secs(),
            }),
            Request::ShowDiscovery => {
                let mut in_use: Vec<IpAddr> = self.itr.map_resolvers().to_vec();
                if let Some(etr) = &self.etr {
                    in_use.extend(etr.map_servers());
                }
                Response::Discovery(self.discovery.show(now, &in_use))
            }
            Request::ShowMsx(r) => match &self.msx {
                Some(m) => Response::Msx(m.show(&r.what)),
                None => Response::Error("LISP-MSX interconnection is not configured".into()),
            },
            Request::ShowSync => match &self.sync {
                Some(s) => Response::Sync(s.engine.show(now)),
                None => {
                    Response::Error("map-cache synchronization is not configured ([sync])".into())
                }
            },
            Request::ShowDataPlane => {
                if self.cfg.data_plane.is_some() {
                    Response::DataPlane(DataPlane::show(ctx.stats))
                } else {
                    Response::Error("the data plane is not configured ([data_plane])".into())
                }
            }
            Request::ClearMapCache(r) => {
                let prefix = if r.prefix.is_empty() {
                    None
                } else {
                    crate::mapping::parse_eid(&r.prefix, 0).ok()
                };
                if !r.prefix.is_empty() && prefix.is_none() {
                    Response::Error(format!("'{}' is not an EID prefix", r.prefix))
                } else {
                    if let Some(mr) = &mut self.mr
                        && prefix.is_none()
                    {
                        mr.clear_referrals();
                    }
                    Response::ClearMapCache(api::ClearMapCacheReply {
                        removed: self.itr.clear(prefix),
                    })
                }
            }
            Request::Lig(r) => {
                let key = match crate::mapping::parse_eid(&r.eid, r.instance_id) {
                    Ok(k) => k,
                    Err(e) => {
                        let _ = reply.send(Response::Error(e));
                        return;
                    }
                };
                let via = if r.via.is_empty() {
                    None
                } else {
                    match r.via.parse::<IpAddr>() {
                        Ok(v) => Some(v),
                        Err(_) => {
                            let _ = reply
                                .send(Response::Error(format!("'{}' is not an address", r.via)));
                            return;
                        }
                    }
                };
                // The answer comes when the Map-Reply arrives (or the tries run out).
                self.itr.resolve(
                    ctx,
                    key,
                    Some(Waiter {
                        reply,
                        started: now,
                        via,
                    }),
                    false,
                );
                return;
            }
            Request::UpdateDiscovery(u) => {
                self.discovery.update(&u, now);
                self.apply_discovery(now);
                Response::DiscoveryAck(api::DiscoveryAck {
                    systems_known: self.discovery.len() as u32,
                })
            }
            Request::WatchLocalFunctions(tx) => {
                let _ = tx.try_send(self.local.clone());
                self.local_watchers.push(tx);
                Response::Watching
            }
            Request::WatchEvents(_) => Response::Watching,
            Request::BulkRecords { peer, filters } => {
                // Site ITRs pre-provisioning may copy everything registered.
                let site_itr = self.cfg.map_server.as_ref().is_some_and(|m| {
                    m.bulk_clients.iter().any(|p| {
                        p.contains(&lisp_msx_proto::EidPrefix::host(
                            lisp_msx_proto::Addr::from(peer),
                        ))
                    })
                });
                let allowed = if site_itr {
                    self.ms.as_ref().map(|m| m.prefixes())
                } else {
                    self.msx
                        .as_ref()
                        .and_then(|m| m.bulk_agreement(peer))
                        .map(|a| a.service.eid_prefixes.clone())
                };
                Response::BulkRecords(match (allowed, &self.ms) {
                    (Some(allowed), Some(ms)) => Ok(ms
                        .registered_records()
                        .into_iter()
                        .filter(|r| allowed.iter().any(|p| p.contains(&r.eid)))
                        .filter(|r| {
                            filters.is_empty()
                                || filters.iter().any(|f| f.matches(&r.eid, None, None))
                        })
                        .collect()),
                    _ => Err(lisp_msx_proto::msx::BulkResult::PROHIBITED),
                })
            }
        };
        let _ = reply.send(resp);
    }
}
