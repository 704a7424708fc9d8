//! The xTR data plane (RFC 9300) in user space, like OOR's: packets towards
//! remote EID prefixes are routed into a TUN device; the ITR looks their
//! destination up in the map-cache and sends them in UDP 4341 with the LISP
//! header to the chosen RLOC; the ETR takes UDP 4341 packets for its own EIDs
//! off the wire and writes the inner packet to the TUN device, from where the
//! kernel delivers it into the site.
//!
//! It runs inside the reactor thread: the map-cache is the ITR's, so a lookup
//! is a plain function call and a miss starts the resolution at once. Reads
//! are bounded per wake-up so the control plane is never starved.
//!
//! MTU: the TUN device's MTU is the underlay MTU minus the encapsulation
//! overhead (36 bytes over IPv4 RLOCs, 56 over IPv6), so the ITR's kernel
//! answers an oversized packet with ICMP "fragmentation needed" / "packet too
//! big" before it is encapsulated (RFC 9300 §7.2, stateful). Outer packets
//! leave with the kernel's default path-MTU handling.
//!
//! Misses: the Map-Request is sent (rate-limited by the ITR) and the packet is
//! dropped (default, like the reference systems), queued (bounded) until the
//! mapping arrives, or handed encapsulated to a Map-Server offering
//! mapping-system assist, which forwards it to the registered ETR.

pub mod packet;
mod sys;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lisp_mapdb::Prefix;
use lisp_msx_proto::Addr;
use lisp_msx_proto::api;
use lisp_msx_proto::lisp::data::{DATA_HEADER_LEN, DataHeader};
use lisp_msx_proto::lisp::{Action, EidRecord, Locator};
use serde::Deserialize;
use tracing::{info, warn};

use crate::control::ctx::Ctx;
use crate::control::ctx::SourceCache;
use crate::control::io::{BATCH, ControlSocket, Outbox, RecvBatch};
use crate::stats::{Stats, inc};
use crate::xtr::itr::Itr;

pub use packet::{Inner, flow_hash, parse};

/// The LISP data port (RFC 9300).
pub const DATA_PORT: u16 = 4341;
/// Encapsulation overhead over IPv4 RLOCs: IPv4 + UDP + LISP header.
pub const OVERHEAD_V4: u32 = 20 + 8 + DATA_HEADER_LEN as u32;
/// Over IPv6 RLOCs: IPv6 + UDP + LISP header.
pub const OVERHEAD_V6: u32 = 40 + 8 + DATA_HEADER_LEN as u32;
/// Largest packet read from the TUN device or the wire.
const MAX_PACKET: usize = 9216;
/// Packets read per wake-up before the control plane gets its turn.
const READS_PER_WAKE: usize = 256;

/// What the ITR does with a packet that misses the map-cache.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MissAction {
    #[default]
    Drop,
    Queue,
}

/// `[data_plane]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataPlaneConfig {
    /// The TUN device routes to remote EID prefixes point at.
    pub tun: String,
    /// MTU of the underlay (RLOC) network; the TUN device gets it minus the overhead.
    pub underlay_mtu: u32,
    /// Instance id of the site's EIDs (0: none; otherwise carried with the I bit).
    pub instance_id: u32,
    /// RLOC addresses to receive UDP 4341 on; empty: the agent's listen addresses.
    pub listen: Vec<IpAddr>,
    pub miss_action: MissAction,
    /// Queued packets per destination and in all (`miss_action = "queue"`).
    pub queue_per_destination: usize,
    pub queue_limit: usize,
    /// How long a queued packet may wait for its mapping.
    pub queue_timeout_ms: u64,
    /// Map-Servers offering mapping-system assist: a miss is sent there,
    /// encapsulated, while the mapping is resolved.
    pub assist: Vec<IpAddr>,
    /// Proxy-ETRs for destinations whose negative entry says natively-forward.
    pub petr: Vec<IpAddr>,
    /// Offer mapping-system assist (needs `[map_server]`): forward data
    /// packets for registered EIDs to their ETR.
    pub assist_service: bool,
    /// Act as a Proxy-ETR: decapsulate packets for any destination.
    pub petr_service: bool,
    /// Pre-provisioning: copy mappings from a Map-Server with Map-Bulk at
    /// start and every `refresh_secs`, so first packets find them.
    pub preprovision: Option<PreprovisionConfig>,
}

/// `[data_plane.preprovision]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprovisionConfig {
    pub map_server: IpAddr,
    /// Map-Bulk filters (prefixes, AS numbers, names); empty: everything.
    #[serde(default)]
    pub filters: Vec<String>,
    #[serde(default = "default_preprovision_refresh")]
    pub refresh_secs: u64,
}

fn default_preprovision_refresh() -> u64 {
    60
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            tun: "lisp0".into(),
            underlay_mtu: 1500,
            instance_id: 0,
            listen: Vec::new(),
            miss_action: MissAction::Drop,
            queue_per_destination: 8,
            queue_limit: 1024,
            queue_timeout_ms: 3000,
            assist: Vec::new(),
            petr: Vec::new(),
            assist_service: false,
            petr_service: false,
            preprovision: None,
        }
    }
}

impl DataPlaneConfig {
    /// Semantic checks; the error is (field, reason).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.tun.is_empty() || self.tun.len() >= 16 || self.tun.contains(['/', ' ', '\0']) {
            return Err((
                "data_plane.tun",
                "an interface name of 1 to 15 characters without '/' or spaces".into(),
            ));
        }
        if !(1280..=9000).contains(&self.underlay_mtu) {
            return Err((
                "data_plane.underlay_mtu",
                "must be within 1280..=9000".into(),
            ));
        }
        if self.instance_id > 0x00FF_FFFF {
            return Err(("data_plane.instance_id", "instance ids are 24 bits".into()));
        }
        if self.miss_action == MissAction::Queue
            && (self.queue_per_destination == 0 || self.queue_limit == 0)
        {
            return Err((
                "data_plane.queue_limit",
                "queueing needs room for at least one packet".into(),
            ));
        }
        if let Some(p) = &self.preprovision {
            if p.refresh_secs == 0 {
                return Err((
                    "data_plane.preprovision.refresh_secs",
                    "must be positive".into(),
                ));
            }
            for f in &p.filters {
                if lisp_msx_proto::msx::Filter::parse(f).is_err() {
                    return Err((
                        "data_plane.preprovision.filters",
                        format!("`{f}` is not a prefix, AS number or name"),
                    ));
                }
            }
        }
        for (field, addrs) in [
            ("data_plane.assist", &self.assist),
            ("data_plane.petr", &self.petr),
        ] {
            if addrs.iter().any(|a| a.is_unspecified() || a.is_multicast()) {
                return Err((field, "must be unicast addresses".into()));
            }
        }
        Ok(())
    }

    /// The TUN MTU: the underlay MTU minus the largest overhead in use.
    pub fn tun_mtu(&self, rlocs: &[IpAddr]) -> u32 {
        let overhead = if rlocs.iter().any(IpAddr::is_ipv6) {
            OVERHEAD_V6
        } else {
            OVERHEAD_V4
        };
        self.underlay_mtu - overhead
    }
}

/// Picks the locator for a flow: the usable locators of best priority, then
/// by weight (RFC 9300 §10; all weights 0 share equally). No allocation.
pub fn choose_locator(locators: impl Iterator<Item = Locator> + Clone, hash: u32) -> Option<Addr> {
    let usable = |l: &Locator| l.reachable && l.priority != 255 && l.addr != Addr::None;
    let best = locators.clone().filter(usable).map(|l| l.priority).min()?;
    let cands = locators.filter(move |l| usable(l) && l.priority == best);
    let total: u32 = cands.clone().map(|l| u32::from(l.weight)).sum();
    if total == 0 {
        let n = cands.clone().count() as u32;
        return cands
            .clone()
            .nth((hash % n.max(1)) as usize)
            .map(|l| l.addr);
    }
    let mut pick = hash % total;
    for l in cands {
        let w = u32::from(l.weight);
        if pick < w {
            return Some(l.addr);
        }
        pick -= w;
    }
    None
}

/// Multicast, link-local and unspecified destinations are not resolved:
/// LISP multicast (RFC 6831) is not supported, and the rest never leaves the link.
fn is_eid_unicast(a: Addr) -> bool {
    match a.ip() {
        Some(std::net::IpAddr::V4(v)) => {
            !(v.is_multicast() || v.is_broadcast() || v.is_unspecified() || v.is_link_local())
        }
        Some(std::net::IpAddr::V6(v)) => {
            !(v.is_multicast() || v.is_unspecified() || v.is_unicast_link_local())
        }
        None => false,
    }
}

/// A packet waiting for its mapping.
struct Queued {
    since: Instant,
    packet: Vec<u8>,
}

pub struct DataPlane {
    cfg: DataPlaneConfig,
    tun: File,
    socks: Vec<ControlSocket>,
    /// Taken out while its packets are handled.
    recv: Option<RecvBatch>,
    out: Outbox,
    stats: Arc<Stats>,
    buf: Vec<u8>,
    queue: HashMap<Addr, VecDeque<Queued>>,
    queued: usize,
    nonce: u32,
    /// With several RLOCs of one family, packets leave from the one the
    /// kernel routes by (as control messages do).
    sources: SourceCache,
    /// The clock of the batch being handled.
    now: Instant,
    /// False while a recovering ITR pulls its synchronization set's caches:
    /// it forwards nothing it would miss on.
    pub ready: bool,
}

/// Where the reactor's roles meet the data plane for one batch.
pub struct Roles<'a> {
    pub itr: &'a mut Itr,
    /// The ETR's database: packets for these EIDs are delivered.
    pub local_eid: &'a dyn Fn(&Prefix) -> bool,
    /// The Map-Server's registered mapping for an EID (assist service).
    pub registered: &'a dyn Fn(&Prefix) -> Option<EidRecord>,
}

impl DataPlane {
    /// Creates the TUN device (up, MTU set) and binds UDP 4341 on the RLOCs.
    pub fn start(
        cfg: &DataPlaneConfig,
        agent_listen: &[IpAddr],
        stats: Arc<Stats>,
    ) -> anyhow::Result<DataPlane> {
        let listen: Vec<IpAddr> = if cfg.listen.is_empty() {
            agent_listen.to_vec()
        } else {
            cfg.listen.clone()
        };
        let tun = sys::open_tun(&cfg.tun).map_err(|e| {
            anyhow::anyhow!("cannot create TUN device {} (data_plane.tun): {e}", cfg.tun)
        })?;
        // No IPv6 link-local on the TUN device: otherwise the kernel sends
        // router solicitations and MLD reports into it, which are not EID traffic.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/addr_gen_mode", cfg.tun),
            "1",
        );
        let mtu = cfg.tun_mtu(&listen);
        sys::set_up_with_mtu(&cfg.tun, mtu)
            .map_err(|e| anyhow::anyhow!("cannot bring {} up with MTU {mtu}: {e}", cfg.tun))?;
        let mut socks = Vec::new();
        for a in &listen {
            let s = ControlSocket::bind(*a, DATA_PORT).map_err(|e| {
                anyhow::anyhow!("cannot bind UDP {a}:{DATA_PORT} (data_plane.listen): {e}")
            })?;
            socks.push(s);
        }
        info!(tun = %cfg.tun, mtu, rlocs = ?listen, "data plane running");
        Ok(DataPlane {
            cfg: cfg.clone(),
            tun,
            socks,
            recv: Some(RecvBatch::default()),
            out: Outbox::default(),
            stats,
            buf: vec![0u8; MAX_PACKET],
            queue: HashMap::new(),
            queued: 0,
            nonce: rand::random(),
            sources: SourceCache::default(),
            now: Instant::now(),
            ready: true,
        })
    }

    /// The descriptors to poll: the TUN device, then the data sockets.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.tun.as_fd())
            .chain(self.socks.iter().map(|s| s.fd()))
            .collect()
    }

    pub fn socket_count(&self) -> usize {
        self.socks.len()
    }

    /// Reconfiguration that needs no new device or socket (SIGHUP).
    pub fn reload(&mut self, cfg: &DataPlaneConfig) {
        if cfg.tun != self.cfg.tun
            || cfg.listen != self.cfg.listen
            || cfg.underlay_mtu != self.cfg.underlay_mtu
        {
            warn!("data_plane.tun, listen and underlay_mtu take effect at restart");
        }
        let keep = (
            self.cfg.tun.clone(),
            self.cfg.listen.clone(),
            self.cfg.underlay_mtu,
        );
        self.cfg = cfg.clone();
        (self.cfg.tun, self.cfg.listen, self.cfg.underlay_mtu) = keep;
    }

    fn next_nonce(&mut self) -> u32 {
        // xorshift32: unpredictable enough for echo-nonce matching, free per packet.
        let mut x = self.nonce;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.nonce = x;
        x & 0x00FF_FFFF
    }

    /// Queues `pkt` encapsulated to `rloc`; false when no socket of its family exists.
    fn encapsulate(&mut self, rloc: Addr, pkt: &[u8]) -> bool {
        let Some(ip) = rloc.ip() else { return false };
        let dest = SocketAddr::new(ip, DATA_PORT);
        let Some(sock) = self.sources.pick(&self.socks, &dest, self.now) else {
            inc(&self.stats.counters.dp_drop_no_rloc_family);
            return false;
        };
        let iid = self.cfg.instance_id;
        let header = DataHeader {
            nonce_present: true,
            instance_present: iid != 0,
            nonce: self.next_nonce(),
            instance_id: iid,
            ..Default::default()
        };
        let b = self.out.push(sock, dest);
        b.extend_from_slice(&header.encode());
        b.extend_from_slice(pkt);
        if self.out.len() >= BATCH {
            self.flush();
        }
        true
    }

    /// Sends what is queued.
    pub fn flush(&mut self) {
        self.out
            .flush_counting(&self.socks, &self.stats.counters.dp_drop_send);
    }

    /// Reads packets from the TUN device and encapsulates them (ITR side).
    pub fn read_tun(&mut self, roles: &mut Roles<'_>, ctx: &mut Ctx<'_>) {
        self.now = ctx.now;
        let mut buf = std::mem::take(&mut self.buf);
        for _ in 0..READS_PER_WAKE {
            let n = match (&self.tun).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("reading {}: {e}", self.cfg.tun);
                    break;
                }
            };
            self.route(roles, ctx, &buf[..n], false);
        }
        self.buf = buf;
        self.flush();
    }

    /// The ITR's decision for one packet. `requeue`: it came from the queue
    /// (a miss keeps it queued rather than counting it again).
    fn route(
        &mut self,
        roles: &mut Roles<'_>,
        ctx: &mut Ctx<'_>,
        pkt: &[u8],
        requeue: bool,
    ) -> bool {
        let c = &self.stats.counters;
        let Some(inner) = parse(pkt) else {
            inc(&c.dp_drop_malformed);
            return true;
        };
        if !is_eid_unicast(inner.dst) {
            inc(&c.dp_drop_not_unicast);
            return true;
        }
        if !roles.itr.enabled {
            inc(&c.dp_drop_no_itr);
            return true;
        }
        if !self.ready {
            inc(&c.dp_drop_sync_pending);
            return true;
        }
        let iid = self.cfg.instance_id;
        let now_s = roles.itr.secs(ctx.now);
        let hash = flow_hash(&inner);
        enum Verdict {
            Send(Addr),
            Negative(Action),
            NoLocator,
            Miss,
        }
        let verdict = match roles.itr.lookup(ctx, iid, inner.dst) {
            Some(e) if !e.locators.is_empty() => match choose_locator(e.locators.iter(), hash) {
                Some(rloc) => {
                    e.touch(now_s, pkt.len() as u32);
                    Verdict::Send(rloc)
                }
                None => Verdict::NoLocator,
            },
            Some(e) => {
                e.touch(now_s, pkt.len() as u32);
                Verdict::Negative(e.action)
            }
            None => Verdict::Miss,
        };
        match verdict {
            Verdict::Send(rloc) => {
                if self.encapsulate(rloc, pkt) {
                    let c = &self.stats.counters;
                    inc(&c.dp_encapsulated);
                    c.dp_encapsulated_bytes
                        .fetch_add(pkt.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Verdict::NoLocator => inc(&self.stats.counters.dp_drop_no_locator),
            Verdict::Negative(action) => {
                if action == Action::NATIVELY_FORWARD {
                    match self.pick(&self.cfg.petr, hash) {
                        Some(petr) => {
                            if self.encapsulate(petr, pkt) {
                                inc(&self.stats.counters.dp_petr);
                            }
                        }
                        None => inc(&self.stats.counters.dp_drop_no_petr),
                    }
                } else {
                    if action == Action::SEND_MAP_REQUEST
                        && let Ok(key) = Prefix::host(iid, inner.dst)
                    {
                        roles.itr.resolve(ctx, key, None, false);
                    }
                    inc(&self.stats.counters.dp_drop_negative);
                }
            }
            Verdict::Miss => {
                if requeue {
                    return false;
                }
                inc(&self.stats.counters.dp_miss);
                if let Ok(key) = Prefix::host(iid, inner.dst) {
                    roles.itr.resolve(ctx, key, None, false);
                }
                if let Some(ms) = self.pick(&self.cfg.assist, hash) {
                    if self.encapsulate(ms, pkt) {
                        inc(&self.stats.counters.dp_assisted);
                    }
                } else if self.cfg.miss_action == MissAction::Queue {
                    self.enqueue(inner.dst, pkt, ctx.now);
                } else {
                    inc(&self.stats.counters.dp_drop_miss);
                }
            }
        }
        true
    }

    fn pick(&self, among: &[IpAddr], hash: u32) -> Option<Addr> {
        if among.is_empty() {
            return None;
        }
        Some(Addr::from(among[hash as usize % among.len()]))
    }

    fn enqueue(&mut self, dst: Addr, pkt: &[u8], now: Instant) {
        let c = &self.stats.counters;
        let q = self.queue.entry(dst).or_default();
        if self.queued >= self.cfg.queue_limit || q.len() >= self.cfg.queue_per_destination {
            inc(&c.dp_drop_queue_full);
            return;
        }
        q.push_back(Queued {
            since: now,
            packet: pkt.to_vec(),
        });
        self.queued += 1;
        inc(&c.dp_queued);
    }

    /// After the control plane ran: sends queued packets whose mapping
    /// arrived, drops those that waited too long.
    pub fn service_queue(&mut self, roles: &mut Roles<'_>, ctx: &mut Ctx<'_>) {
        if self.queued == 0 {
            return;
        }
        self.now = ctx.now;
        let timeout = Duration::from_millis(self.cfg.queue_timeout_ms);
        let dsts: Vec<Addr> = self.queue.keys().copied().collect();
        for dst in dsts {
            let Some(mut q) = self.queue.remove(&dst) else {
                continue;
            };
            while let Some(item) = q.pop_front() {
                if ctx.now.duration_since(item.since) > timeout {
                    self.queued -= 1;
                    inc(&self.stats.counters.dp_drop_queue_timeout);
                    continue;
                }
                if self.route(roles, ctx, &item.packet, true) {
                    self.queued -= 1;
                } else {
                    // Still no mapping: everything behind it waits too.
                    q.push_front(item);
                    break;
                }
            }
            if !q.is_empty() {
                self.queue.insert(dst, q);
            }
        }
        self.flush();
    }

    /// Reads encapsulated packets from data socket `i` (ETR, assist, PETR side).
    pub fn read_socket(&mut self, i: usize, roles: &mut Roles<'_>) {
        self.now = Instant::now();
        let Some(mut recv) = self.recv.take() else {
            return;
        };
        for _ in 0..READS_PER_WAKE / BATCH {
            let n = recv.recv(&self.socks[i]).unwrap_or(0);
            if n == 0 {
                break;
            }
            for k in 0..n {
                self.decapsulate(recv.packet(k), roles);
            }
            self.flush();
            if n < BATCH {
                break;
            }
        }
        self.recv = Some(recv);
    }

    fn decapsulate(&mut self, pkt: &[u8], roles: &mut Roles<'_>) {
        let c = &self.stats.counters;
        let Ok(h) = DataHeader::decode(pkt) else {
            inc(&c.dp_drop_malformed);
            return;
        };
        let inner_bytes = &pkt[DATA_HEADER_LEN..];
        let Some(inner) = parse(inner_bytes) else {
            inc(&c.dp_drop_malformed);
            return;
        };
        let iid = if h.instance_present { h.instance_id } else { 0 };
        let Ok(key) = Prefix::host(iid, inner.dst) else {
            inc(&c.dp_drop_malformed);
            return;
        };
        if self.cfg.petr_service || (roles.local_eid)(&key) {
            match (&self.tun).write(inner_bytes) {
                Ok(_) => {
                    inc(&c.dp_decapsulated);
                    c.dp_decapsulated_bytes.fetch_add(
                        inner_bytes.len() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                Err(_) => inc(&c.dp_drop_tun_write),
            }
            return;
        }
        if self.cfg.assist_service
            && let Some(rec) = (roles.registered)(&key)
        {
            let hash = flow_hash(&inner);
            match choose_locator(rec.locators.iter().copied(), hash) {
                Some(rloc) => {
                    if self.encapsulate(rloc, inner_bytes) {
                        inc(&self.stats.counters.dp_assist_forwarded);
                    }
                }
                None => inc(&self.stats.counters.dp_drop_no_locator),
            }
            return;
        }
        inc(&c.dp_drop_not_ours);
    }

    /// `show lisp data-plane statistics`.
    pub fn show(stats: &Stats) -> api::DataPlaneStatistics {
        let c = &stats.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        api::DataPlaneStatistics {
            encapsulated: get(&c.dp_encapsulated),
            decapsulated: get(&c.dp_decapsulated),
            misses: get(&c.dp_miss),
            bytes_encapsulated: get(&c.dp_encapsulated_bytes),
            bytes_decapsulated: get(&c.dp_decapsulated_bytes),
            drops: c
                .snapshot()
                .into_iter()
                .filter_map(|(name, _, v)| {
                    name.strip_prefix("data-plane.drop.")
                        .map(|n| (n.to_string(), v))
                })
                .collect(),
            counters: [
                ("assisted", &c.dp_assisted),
                ("assist-forwarded", &c.dp_assist_forwarded),
                ("queued", &c.dp_queued),
                ("petr", &c.dp_petr),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), get(v)))
            .collect(),
        }
    }
}
