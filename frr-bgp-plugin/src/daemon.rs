//! The daemon loop: one place that owns the BGP FSM, what we originate
//! (Adj-RIB-Out), what we learned (Adj-RIB-In, reduced to tagged prefixes),
//! zebra's reachability verdicts and the pushes to lisp-agent. I/O tasks
//! (TCP reader/connector, zebra session, agent watch) only send events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lisp_msx_proto::api;
use lisp_msx_proto::bgp::MsTarget;
use lisp_msx_proto::grpc::AgentClient;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tonic::transport::Channel;
use tracing::{debug, error, info, warn};

use crate::bgp::fsm::{Fsm, FsmConfig, Mode, Output, State};
use crate::bgp::io::{NetEvent, Tagged, spawn_connect, spawn_listener, spawn_reader};
use crate::bgp::msg::Message;
use crate::bgp::prefix::{Family, Prefix};
use crate::bgp::update::{Update, announce_bodies, end_of_rib, withdraw_bodies};
use crate::config::Config;
use crate::translate::{Desired, Learned, desired, origin_attrs, systems};
use crate::zapi::client::{ZebraConfig, ZebraEvent};

/// Changes are pushed to the agent at most this often.
const PUSH_DEBOUNCE: Duration = Duration::from_millis(50);

/// What the agent watch task knows.
#[derive(Clone, Debug, Default)]
pub struct AgentView {
    pub local: Option<api::LocalFunctions>,
    /// When the watch stream was lost (None: connected, or never was).
    pub lost_since: Option<Instant>,
}

/// Counters, logged at shutdown and kept for tests of the library.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub updates_rx: u64,
    pub treat_as_withdraw: u64,
    pub attribute_discard: u64,
    pub sessions_established: u64,
    pub pushes: u64,
}

/// Messages into the loop from outside (signals).
#[derive(Debug)]
pub enum Control {
    Reload(Box<Config>),
    Stop,
}

struct Conn {
    writer: OwnedWriteHalf,
    reader: JoinHandle<()>,
    peer: SocketAddr,
}

pub struct Daemon {
    cfg: Config,
    fsm: Fsm,
    conn_id: u64,
    conn: Option<Conn>,
    connector: Option<JoinHandle<()>>,
    net_tx: mpsc::Sender<Tagged>,
    net_rx: mpsc::Receiver<Tagged>,
    /// What the peer holds from us (valid while Established).
    adj_out: Desired,
    learned: Learned,
    reach: BTreeMap<IpAddr, bool>,
    router_id: Option<IpAddr>,
    local_addrs: BTreeSet<IpAddr>,
    agent_view: watch::Receiver<AgentView>,
    agent: Option<AgentClient<Channel>>,
    dirty: bool,
    push_at: Option<Instant>,
    nht: watch::Sender<BTreeSet<IpAddr>>,
    zebra_rx: Option<mpsc::Receiver<ZebraEvent>>,
    pub counters: Counters,
    last_skipped: Vec<String>,
    started: Instant,
    first_push_logged: bool,
}

impl Daemon {
    /// Builds the daemon and starts its helper tasks (agent watch, zebra).
    pub fn new(cfg: Config) -> Daemon {
        let now = Instant::now();
        let (net_tx, net_rx) = mpsc::channel(256);
        let (view_tx, view_rx) = watch::channel(AgentView::default());
        tokio::spawn(watch_agent(
            cfg.agent_socket.clone(),
            cfg.name.clone(),
            view_tx,
        ));
        let (nht, nht_rx) = watch::channel(BTreeSet::new());
        let zebra_rx = if cfg.zebra.enabled {
            let (ztx, zrx) = mpsc::channel(256);
            let zcfg = ZebraConfig {
                socket: cfg.zebra.socket.clone(),
                resolve_via_default: cfg.zebra.resolve_via_default,
                reconnect_max: Duration::from_secs_f64(cfg.zebra.reconnect_max_secs),
            };
            tokio::spawn(crate::zapi::client::run(zcfg, nht_rx, ztx));
            Some(zrx)
        } else {
            None
        };
        let fsm = Fsm::new(fsm_config(&cfg), now.into_std());
        Daemon {
            cfg,
            fsm,
            conn_id: 0,
            conn: None,
            connector: None,
            net_tx,
            net_rx,
            adj_out: BTreeMap::new(),
            learned: Learned::default(),
            reach: BTreeMap::new(),
            router_id: None,
            local_addrs: BTreeSet::new(),
            agent_view: view_rx,
            agent: None,
            dirty: true,
            push_at: Some(now),
            nht,
            zebra_rx,
            counters: Counters::default(),
            last_skipped: Vec::new(),
            started: now,
            first_push_logged: false,
        }
    }

    /// Runs until `Control::Stop` arrives (or the control channel closes).
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) -> Counters {
        if self.cfg.mode() == Mode::Passive {
            let addr = SocketAddr::new(self.cfg.bgp.local_address, self.cfg.bgp.listen_port);
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    info!(%addr, "listening for bgpd (passive mode)");
                    spawn_listener(l, self.net_tx.clone());
                }
                Err(e) => error!(%addr, "cannot listen for bgpd: {e}"),
            }
        }
        info!(
            local_as = self.cfg.bgp.local_as,
            bgpd = ?self.cfg.bgpd_socket(),
            local = %self.cfg.bgp.local_address,
            mode = %self.cfg.bgp.mode,
            "frr-bgp-plugin started"
        );
        let far = Instant::now() + Duration::from_secs(86400);
        loop {
            let fsm_at = self
                .fsm
                .next_deadline()
                .map(Instant::from_std)
                .unwrap_or(far);
            let push_at = self.push_at.unwrap_or(far);
            let loss_at = self.agent_loss_deadline().unwrap_or(far);
            tokio::select! {
                Some((conn_id, ev)) = self.net_rx.recv() => self.on_net(conn_id, ev).await,
                _ = sleep_until(fsm_at) => {
                    let out = self.fsm.poll(Instant::now().into_std());
                    self.apply(out).await;
                }
                r = self.agent_view.changed() => {
                    if r.is_ok() {
                        self.sync_out().await;
                        // A (re)started agent knows nothing we told its
                        // predecessor: send the full set again.
                        self.dirty = true;
                    }
                }
                _ = sleep_until(loss_at) => {
                    warn!("lisp-agent unreachable for {} s: withdrawing its prefixes", self.cfg.originate.agent_loss_withdraw_secs);
                    self.sync_out().await;
                }
                Some(ev) = recv_opt(&mut self.zebra_rx) => self.on_zebra(ev),
                _ = sleep_until(push_at) => {
                    self.push_at = None;
                    if self.dirty && !self.push().await {
                        self.push_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
                c = control.recv() => match c {
                    Some(Control::Reload(cfg)) => self.reload(*cfg).await,
                    Some(Control::Stop) | None => break,
                },
            }
            if self.dirty && self.push_at.is_none() {
                self.push_at = Some(Instant::now() + PUSH_DEBOUNCE);
            }
        }
        let out = self
            .fsm
            .stop(Instant::now().into_std(), "frr-bgp-plugin shutting down");
        self.apply(out).await;
        // Tell the agent that everything we reported is gone.
        self.learned.paths.clear();
        self.dirty = true;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.push()).await;
        info!(?self.counters, "frr-bgp-plugin stopped");
        self.counters
    }

    fn agent_loss_deadline(&self) -> Option<Instant> {
        let grace = self.cfg.originate.agent_loss_withdraw_secs;
        let lost = self.agent_view.borrow().lost_since?;
        let at = lost + Duration::from_secs(grace);
        (grace > 0 && at > Instant::now()).then_some(at)
    }

    /// The agent's local functions, unless it has been gone too long.
    fn agent_local(&self) -> Option<api::LocalFunctions> {
        let v = self.agent_view.borrow();
        let grace = self.cfg.originate.agent_loss_withdraw_secs;
        if let Some(lost) = v.lost_since
            && grace > 0
            && lost.elapsed() >= Duration::from_secs(grace)
        {
            return None;
        }
        v.local.clone()
    }

    fn desired(&mut self) -> Desired {
        let local = self.agent_local();
        let (d, skipped) = desired(&self.cfg, &self.cfg.static_originations(), local.as_ref());
        let text: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.what, s.reason))
            .collect();
        if text != self.last_skipped {
            for t in &text {
                warn!("not originating {t}");
            }
            self.last_skipped = text;
        }
        d
    }

    /// Contacts of our own mapping system(s): never reported as discovered.
    fn own_contacts(&self) -> BTreeSet<IpAddr> {
        self.adj_out
            .values()
            .flatten()
            .map(|t| t.contact)
            .chain(
                self.cfg
                    .static_originations()
                    .into_iter()
                    .map(|o| o.contact),
            )
            .collect()
    }

    async fn on_net(&mut self, conn_id: u64, ev: NetEvent) {
        let now = Instant::now().into_std();
        if let NetEvent::Accepted(stream, peer) = ev {
            if let Some(want) = self.cfg.bgp.bgpd_address
                && peer.ip() != want
            {
                warn!(%peer, "refusing a BGP connection from an address other than bgp.bgpd_address {want}");
                return;
            }
            return self.connected(None, stream, now).await;
        }
        if conn_id != self.conn_id {
            debug!(
                conn_id,
                current = self.conn_id,
                "dropping an event of an old connection"
            );
            return;
        }
        match ev {
            NetEvent::Connected(stream) => self.connected(Some(conn_id), stream, now).await,
            NetEvent::ConnectFailed(e) => {
                debug!("{e}");
                let out = self.fsm.tcp_down(now, &e);
                self.apply(out).await;
            }
            NetEvent::Frame(raw) => {
                let out = self.fsm.message(now, &raw);
                self.apply(out).await;
            }
            NetEvent::Framing(e) => {
                let out = self.fsm.framing_error(now, &e);
                self.apply(out).await;
            }
            NetEvent::Closed(why) => {
                self.conn = None;
                let out = self.fsm.tcp_down(now, &why);
                self.apply(out).await;
            }
            NetEvent::Accepted(..) => {}
        }
    }

    /// A TCP connection to bgpd: ours (`Some(id)`, the id of the attempt) or
    /// accepted in passive mode (`None`: it gets a new id if the FSM takes it,
    /// so that a refused second connection does not disturb the session).
    async fn connected(
        &mut self,
        conn_id: Option<u64>,
        stream: tokio::net::TcpStream,
        now: std::time::Instant,
    ) {
        let peer = stream.peer_addr().ok();
        let out = self.fsm.tcp_up(now);
        if out == [Output::Close] {
            info!(
                ?peer,
                state = self.fsm.state().name(),
                "refusing a connection: not expecting one"
            );
            return;
        }
        let conn_id = conn_id.unwrap_or_else(|| {
            self.conn_id += 1;
            self.conn_id
        });
        let (rd, wr) = stream.into_split();
        let reader = spawn_reader(conn_id, rd, self.net_tx.clone());
        info!(peer = ?peer, "TCP connection to bgpd up");
        self.conn = Some(Conn {
            writer: wr,
            reader,
            peer: peer.unwrap_or_else(|| SocketAddr::new(self.cfg.bgp.local_address, 0)),
        });
        self.apply(out).await;
    }

    /// Carries out FSM outputs in order.
    async fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Connect => {
                    let Some(remote) = self.cfg.bgpd_socket() else {
                        continue;
                    };
                    self.conn_id += 1;
                    let local = SocketAddr::new(self.cfg.bgp.local_address, 0);
                    let limit = self.cfg.connect_retry_max().max(Duration::from_secs(3));
                    if let Some(c) = self.connector.take() {
                        c.abort();
                    }
                    self.connector = Some(spawn_connect(
                        self.conn_id,
                        local,
                        remote,
                        limit,
                        self.net_tx.clone(),
                    ));
                }
                Output::Send(m) => {
                    if let Message::Notification(n) = &m {
                        warn!("sending NOTIFICATION {n}");
                    }
                    self.send(&m.encode()).await;
                }
                Output::Close => {
                    if let Some(c) = self.conn.take() {
                        c.reader.abort();
                        let mut w = c.writer;
                        let _ = w.shutdown().await;
                    }
                    // Events still queued from that connection are stale.
                    self.conn_id += 1;
                }
                Output::Up(n) => {
                    self.counters.sessions_established += 1;
                    info!(
                        peer = ?self.conn.as_ref().map(|c| c.peer),
                        peer_id = %n.peer_id,
                        hold = n.hold_time,
                        families = ?n.families,
                        "BGP session with bgpd Established"
                    );
                    self.adj_out.clear();
                    self.sync_out().await;
                    for f in n.families.clone() {
                        self.send(&Message::Update(end_of_rib(f)).encode()).await;
                    }
                }
                Output::Down(reason) => {
                    warn!("BGP session with bgpd down: {reason}");
                    self.adj_out.clear();
                    if !self.learned.paths.is_empty() {
                        self.learned.paths.clear();
                        self.dirty = true;
                        self.update_nht();
                    }
                }
                Output::Update(u) => self.on_update(*u),
                Output::RouteRefresh(f) => {
                    info!(family = %f, "bgpd asked for our routes again (route refresh)");
                    let routes: Desired = self
                        .adj_out
                        .iter()
                        .filter(|(p, _)| p.family() == f)
                        .map(|(p, t)| (*p, t.clone()))
                        .collect();
                    self.announce(&routes).await;
                    self.send(&Message::Update(end_of_rib(f)).encode()).await;
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let Some(c) = self.conn.as_mut() else { return };
        if let Err(e) = c.writer.write_all(bytes).await {
            warn!("writing to bgpd: {e}");
            self.conn = None;
            let out = self.fsm.tcp_down(Instant::now().into_std(), &e.to_string());
            // tcp_down never asks to send: no recursion into apply's Send.
            for o in out {
                if let Output::Down(r) = o {
                    warn!("BGP session with bgpd down: {r}");
                    self.adj_out.clear();
                    self.learned.paths.clear();
                    self.dirty = true;
                }
            }
        }
    }

    fn on_update(&mut self, u: Update) {
        self.counters.updates_rx += 1;
        for p in &u.problems {
            match p.action {
                crate::bgp::update::Rfc7606Action::TreatAsWithdraw => {
                    self.counters.treat_as_withdraw += 1
                }
                crate::bgp::update::Rfc7606Action::AttributeDiscard => {
                    self.counters.attribute_discard += 1
                }
            }
            warn!(prefixes = ?u.announced.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "malformed UPDATE from bgpd, RFC 7606: {p}");
        }
        if !u.ignored_families.is_empty() {
            debug!(families = ?u.ignored_families, "ignored MP attributes of families not negotiated");
        }
        let applied = self.learned.apply_with(
            &u,
            &self.cfg.codepoint,
            self.cfg.router_id(),
            self.cfg.compat.split_ec_type,
        );
        for p in &applied.split_problems {
            warn!(prefixes = ?u.announced.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "ignoring a split-form IPv6 contact: {p}");
        }
        if !applied.reflected_own.is_empty() {
            debug!(prefixes = ?applied.reflected_own.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "our own routes reflected back (ORIGINATOR_ID), ignored");
        }
        if !applied.treated_as_withdraw.is_empty() {
            warn!(
                prefixes = ?applied.treated_as_withdraw.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "treat-as-withdraw: prefixes withdrawn, session kept"
            );
        }
        if applied.changed {
            for p in u
                .announced
                .iter()
                .filter(|p| self.learned.paths.contains_key(p))
            {
                let path = &self.learned.paths[p];
                info!(prefix = %p, targets = ?path.targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(), as_path = ?path.as_path, "learned");
            }
            for p in u.withdrawn.iter().chain(&applied.treated_as_withdraw) {
                debug!(prefix = %p, "forgotten");
            }
            self.dirty = true;
            self.update_nht();
        }
    }

    fn update_nht(&mut self) {
        let want = self.learned.contacts(&self.own_contacts());
        self.reach.retain(|a, _| want.contains(a));
        self.nht.send_if_modified(|cur| {
            if *cur == want {
                false
            } else {
                *cur = want;
                true
            }
        });
    }

    fn on_zebra(&mut self, ev: ZebraEvent) {
        match ev {
            ZebraEvent::Up => info!(
                "zebra: session up; tracking {} contact(s)",
                self.nht.borrow().len()
            ),
            ZebraEvent::Down(r) => warn!("zebra: {r}"),
            ZebraEvent::Incompatible(e) => error!("zebra: {e}"),
            ZebraEvent::RouterId(id) => {
                if self.router_id != id {
                    info!(router_id = ?id, "zebra: router-id");
                    self.router_id = id;
                }
            }
            ZebraEvent::Interface(i) => {
                debug!(name = %i.name, ifindex = i.ifindex, up = i.is_up(), "zebra: interface")
            }
            ZebraEvent::Address(a) => {
                debug!(addr = %a.addr, len = a.len, added = a.added, ifindex = a.ifindex, "zebra: address");
                if a.added {
                    self.local_addrs.insert(a.addr);
                    let nh4 = self.cfg.bgp.next_hop_v4.map(IpAddr::V4);
                    let nh6 = self.cfg.bgp.next_hop_v6.map(IpAddr::V6);
                    if Some(a.addr) == nh4 || Some(a.addr) == nh6 {
                        error!(
                            next_hop = %a.addr,
                            "the configured next hop is an address of this router: bgpd refuses such routes (see README, next hop)"
                        );
                    }
                } else {
                    self.local_addrs.remove(&a.addr);
                }
            }
            ZebraEvent::Nexthop {
                addr,
                reachable,
                detail,
            } => {
                if !self.nht.borrow().contains(&addr) {
                    return;
                }
                let before = self.reach.insert(addr, reachable);
                if before != Some(reachable) {
                    if reachable {
                        info!(contact = %addr, "zebra: contact reachable {detail}");
                    } else {
                        warn!(contact = %addr, "zebra: contact unreachable ({detail})");
                    }
                    self.dirty = true;
                }
            }
        }
    }

    /// Brings the peer's copy of our routes in line with what we want.
    async fn sync_out(&mut self) {
        let want = self.desired();
        if self.fsm.state() != State::Established {
            return;
        }
        let gone: Vec<Prefix> = self
            .adj_out
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        let changed: Desired = want
            .iter()
            .filter(|(p, t)| self.adj_out.get(p) != Some(t))
            .map(|(p, t)| (*p, t.clone()))
            .collect();
        if gone.is_empty() && changed.is_empty() {
            return;
        }
        if !gone.is_empty() {
            info!(prefixes = ?gone.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "withdrawing");
            for body in withdraw_bodies(&gone) {
                self.send(&Message::Update(body).encode()).await;
            }
        }
        if !changed.is_empty() {
            self.announce(&changed).await;
        }
        self.adj_out = want;
        self.update_nht();
        self.dirty = true;
    }

    /// Sends announcements, packing prefixes that share their targets.
    async fn announce(&mut self, routes: &Desired) {
        let ctx = self.fsm.negotiated().map(|n| n.ctx).unwrap_or_default();
        let mut groups: BTreeMap<(Family, Vec<MsTarget>), Vec<Prefix>> = BTreeMap::new();
        for (p, t) in routes {
            groups.entry((p.family(), t.clone())).or_default().push(*p);
        }
        for ((family, targets), prefixes) in groups {
            let Some(attrs) = origin_attrs(&self.cfg, &prefixes[0], &targets) else {
                continue;
            };
            info!(
                prefixes = ?prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                targets = ?targets.iter().map(|t| t.to_raw_hex(&self.cfg.codepoint)).collect::<Vec<_>>(),
                next_hop = ?attrs.next_hop,
                "originating"
            );
            for body in announce_bodies(&attrs, family, &prefixes, &ctx) {
                self.send(&Message::Update(body).encode()).await;
            }
        }
    }

    async fn reload(&mut self, new: Config) {
        let session_changed = new.bgp.local_as != self.cfg.bgp.local_as
            || new.bgp.bgpd_address != self.cfg.bgp.bgpd_address
            || new.bgp.local_address != self.cfg.bgp.local_address
            || new.bgp.mode != self.cfg.bgp.mode
            || new.families() != self.cfg.families()
            || new.router_id() != self.cfg.router_id()
            || new.bgp.hold_time_secs != self.cfg.bgp.hold_time_secs;
        if session_changed {
            warn!(
                "reload: changes to the BGP session (bgp.local_as, addresses, mode, families, router id, hold time) take effect after a restart"
            );
        }
        if new.zebra != self.cfg.zebra
            || new.agent_socket != self.cfg.agent_socket
            || new.name != self.cfg.name
        {
            warn!("reload: changes to [zebra], agent_socket and name take effect after a restart");
        }
        let codepoint_changed = new.codepoint != self.cfg.codepoint;
        let compat_changed = new.compat != self.cfg.compat;
        let mut keep = self.cfg.bgp.clone();
        keep.next_hop_v4 = new.bgp.next_hop_v4;
        keep.next_hop_v6 = new.bgp.next_hop_v6;
        keep.local_pref = new.bgp.local_pref;
        let next_hop_changed = keep.next_hop_v4 != self.cfg.bgp.next_hop_v4
            || keep.next_hop_v6 != self.cfg.bgp.next_hop_v6
            || keep.local_pref != self.cfg.bgp.local_pref;
        let old = std::mem::take(&mut self.cfg);
        self.cfg = Config {
            bgp: keep,
            zebra: old.zebra,
            agent_socket: old.agent_socket,
            name: old.name,
            ..new
        };
        info!("configuration reloaded");
        if next_hop_changed || codepoint_changed || compat_changed {
            // Re-announce everything with the new attributes.
            self.adj_out.clear();
        }
        self.sync_out().await;
        if codepoint_changed {
            // What we kept was filtered with the old code point: ask bgpd
            // for everything again (RFC 2918).
            info!("reload: MS-target code point changed; asking bgpd for a route refresh");
            self.learned.paths.clear();
            self.dirty = true;
            self.update_nht();
            let fams = self
                .fsm
                .negotiated()
                .map(|n| n.families.clone())
                .unwrap_or_default();
            for f in fams {
                if let Some(m) = self.fsm.route_refresh(f) {
                    self.send(&m.encode()).await;
                }
            }
        }
    }

    /// Sends the full learned set to the agent; false when it is unreachable.
    async fn push(&mut self) -> bool {
        if self.agent.is_none() {
            self.agent = lisp_msx_proto::grpc::connect(&self.cfg.agent_socket)
                .await
                .ok();
        }
        if self.agent.is_none() {
            return false;
        }
        let own = self.own_contacts();
        let systems = systems(&self.learned, &self.reach, &own, self.cfg.bgp.local_as);
        let n = systems.len();
        let upd = api::DiscoveryUpdate {
            source: "bgp".into(),
            adapter: self.cfg.name.clone(),
            full_set: true,
            systems,
            withdrawn_keys: Vec::new(),
            reachability: self
                .reach
                .iter()
                .map(|(c, r)| api::ContactReachability {
                    contact: c.to_string(),
                    reachable: *r,
                })
                .collect(),
        };
        let Some(agent) = self.agent.as_mut() else {
            return false;
        };
        match agent.update_discovery(upd).await {
            Ok(_) => {
                self.dirty = false;
                self.counters.pushes += 1;
                if n > 0 && !self.first_push_logged {
                    self.first_push_logged = true;
                    info!(
                        systems = n,
                        since_start_ms = self.started.elapsed().as_millis() as u64,
                        "first mapping systems reported to lisp-agent"
                    );
                } else {
                    debug!(systems = n, "reported to lisp-agent");
                }
                true
            }
            Err(e) => {
                warn!("pushing discovery to lisp-agent: {e}");
                self.agent = None;
                false
            }
        }
    }
}

fn fsm_config(cfg: &Config) -> FsmConfig {
    FsmConfig {
        local_as: cfg.bgp.local_as,
        peer_as: cfg.bgp.local_as,
        bgp_id: cfg
            .router_id()
            .unwrap_or(std::net::Ipv4Addr::new(127, 0, 0, 2)),
        hold_time: cfg.bgp.hold_time_secs,
        families: cfg.families(),
        mode: cfg.mode(),
        connect_retry_min: Duration::from_millis(500).min(cfg.connect_retry_max()),
        connect_retry_max: cfg.connect_retry_max(),
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Follows the agent's local functions; reconnects when the agent restarts.
async fn watch_agent(socket: std::path::PathBuf, name: String, tx: watch::Sender<AgentView>) {
    let mut logged = false;
    loop {
        match lisp_msx_proto::grpc::connect(&socket).await {
            Ok(mut client) => match client
                .watch_local_functions(api::WatchRequest {
                    client: name.clone(),
                })
                .await
            {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    logged = false;
                    info!(socket = %socket.display(), "watching lisp-agent's local functions");
                    while let Ok(Some(lf)) = stream.message().await {
                        tx.send_modify(|v| {
                            v.local = Some(lf);
                            v.lost_since = None;
                        });
                    }
                    warn!("lost the lisp-agent watch stream; reconnecting");
                    tx.send_modify(|v| v.lost_since = Some(Instant::now()));
                }
                Err(e) => warn!("lisp-agent refused WatchLocalFunctions: {e}"),
            },
            Err(e) => {
                if !logged {
                    warn!("{e}");
                    logged = true;
                }
                tx.send_if_modified(|v| {
                    if v.lost_since.is_none() && v.local.is_some() {
                        v.lost_since = Some(Instant::now());
                        true
                    } else {
                        false
                    }
                });
            }
        }
        sleep(Duration::from_millis(500)).await;
    }
}
