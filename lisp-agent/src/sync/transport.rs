//! The sync channel's transport: TCP (TLS with client certificates when
//! `[sync.tls]` is set) between the members of a synchronization set.
//!
//! - One connection per member. The member with the lower address dials
//!   (from its sync address, so the other knows it by it); the higher one
//!   dials too if nothing came within 5 s (it may be unknown to the other),
//!   and when both connections exist the one dialed by the lower address
//!   stays, on both sides. A newer connection from the same side replaces
//!   the old one (a restarted member).
//! - With a key, both sides first exchange fresh nonces (a preamble); each
//!   direction's frames are then authenticated under a key derived from the
//!   PSK and both nonces, with an implicit sequence number, so frames
//!   recorded on another connection, replayed or reordered are refused.
//! - Frames: `Length(16) | Map-Sync message | HMAC-SHA-256(key)` (see
//!   `lisp_msx_proto::msx::sync`). A frame failing authentication closes the
//!   connection; it is counted (`auth.failure`) and logged, and reported to
//!   the engine ([`SyncEvent::Refused`]).
//! - Outgoing: an unbounded channel per connection, but [`SyncOutgoing::send`]
//!   refuses a message that would take the bytes queued for that member
//!   over `peer_queue_bytes` ([`SyncEvent::Dropped`]) and keeps refusing until
//!   the queue has drained. The writer reports what it wrote
//!   ([`SyncEvent::Written`], coalesced to 16–64 KiB) so the engine can pace.
//!
//! Nothing here knows the protocol: messages go to the engine through
//! `deliver` (the reactor's inbox), actions come back through [`SyncOutgoing`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lisp_msx_proto::msx::sync::{self as wire, FrameError, FrameMac};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use super::SyncConfig;
use super::engine::{Action, Refusal, SyncEvent};
use crate::msx::transport::{Tls, TlsRefused, connect};
use crate::stats::{Stats, inc};

/// Where the transport's events go (typically: into the reactor's inbox).
pub type Deliver = Arc<dyn Fn(SyncEvent) + Send + Sync>;

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// The higher address dials too after this long without a connection.
const DIAL_ANYWAY_AFTER: Duration = Duration::from_secs(5);
/// `Written` is reported every this many bytes while writing...
const REPORT_BYTES: u64 = 64 * 1024;
/// ...and when the queue empties with at least this many unreported.
const REPORT_IDLE_BYTES: u64 = 16 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// The nonce exchange of a keyed connection must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

struct Conn {
    generation: u64,
    /// Dialed by the lower of the two addresses (wins over the other kind).
    by_lower: bool,
    tx: mpsc::UnboundedSender<Arc<[u8]>>,
    queued: Arc<AtomicUsize>,
    /// Refusing until the queue is empty.
    overflowed: bool,
    /// Dropping it stops the connection's reader.
    _stop: oneshot::Sender<()>,
}

struct Shared {
    conns: Mutex<HashMap<IpAddr, Conn>>,
    next_gen: AtomicU64,
    psk: Option<Arc<[u8]>>,
    bound: usize,
    overhead: usize,
    deliver: Deliver,
    stats: Arc<Stats>,
    tls: Option<Tls>,
    listen: Option<IpAddr>,
    port: u16,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, HashMap<IpAddr, Conn>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connected(&self, peer: IpAddr) -> bool {
        self.conns().contains_key(&peer)
    }

    /// Our address towards `peer`: the configured one, else the one the
    /// routing table picks (a connected UDP socket sends nothing).
    fn local_ip_for(&self, peer: IpAddr) -> Option<IpAddr> {
        self.listen.or_else(|| {
            let any: IpAddr = if peer.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            let s = UdpSocket::bind((any, 0)).ok()?;
            s.connect((peer, self.port)).ok()?;
            Some(s.local_addr().ok()?.ip())
        })
    }
}

enum Command {
    Connect(IpAddr),
    Close(IpAddr),
    Shutdown,
}

/// The reactor's handle on the transport.
#[derive(Clone)]
pub struct SyncOutgoing {
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<Command>,
    local: SocketAddr,
}

impl SyncOutgoing {
    /// Queues one encoded Map-Sync message for `peer`, or reports it
    /// [`SyncEvent::Dropped`] (no connection, or over the byte bound).
    pub fn send(&self, peer: IpAddr, msg: Arc<[u8]>) {
        let n = msg.len() + self.shared.overhead;
        let dropped = {
            let mut conns = self.shared.conns();
            match conns.get_mut(&peer) {
                None => true,
                Some(c) => {
                    let queued = c.queued.load(Relaxed);
                    if c.overflowed && queued == 0 {
                        c.overflowed = false;
                    }
                    if c.overflowed || queued + n > self.shared.bound {
                        if !c.overflowed {
                            warn!(%peer, queued, "sync: queue bound reached; refusing messages until it drains");
                        }
                        c.overflowed = true;
                        true
                    } else {
                        c.queued.fetch_add(n, Relaxed);
                        c.tx.send(msg).is_err()
                    }
                }
            }
        };
        if dropped {
            (self.shared.deliver)(SyncEvent::Dropped {
                peer,
                bytes: n as u64,
            });
        }
    }

    /// Keep a connection to `peer` (dial now if it is ours to dial).
    pub fn connect(&self, peer: IpAddr) {
        let _ = self.cmd.send(Command::Connect(peer));
    }

    /// Drop the connection to `peer` and stop dialing it.
    pub fn close(&self, peer: IpAddr) {
        let _ = self.cmd.send(Command::Close(peer));
    }

    /// Carries out the transport's actions (`Send`, `Connect`, `Close`);
    /// false for the reactor's own.
    pub fn apply(&self, a: &Action) -> bool {
        match a {
            Action::Send { peer, msg } => self.send(*peer, msg.clone()),
            Action::Connect { peer } => self.connect(*peer),
            Action::Close { peer } => self.close(*peer),
            _ => return false,
        }
        true
    }

    /// Closes the listener and every connection.
    pub fn shutdown(&self) {
        let _ = self.cmd.send(Command::Shutdown);
    }

    /// Where we listen.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Members with a connection up.
    pub fn connected(&self) -> Vec<IpAddr> {
        self.shared.conns().keys().copied().collect()
    }
}

/// Binds `(listen, port)` and starts the transport on the current tokio
/// runtime. `tls`: loaded from `cfg.tls` by the caller
/// (`Tls::load_section(t, "sync.tls")`). Members are added with
/// [`SyncOutgoing::connect`] (the engine's [`Action::Connect`]).
pub fn spawn(
    cfg: &SyncConfig,
    tls: Option<Tls>,
    stats: Arc<Stats>,
    deliver: Deliver,
) -> anyhow::Result<SyncOutgoing> {
    let any: IpAddr = if cfg.peers.iter().all(IpAddr::is_ipv4) {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let bind = SocketAddr::new(cfg.listen.unwrap_or(any), cfg.port);
    let std_listener = std::net::TcpListener::bind(bind).map_err(|e| {
        anyhow::anyhow!("sync: cannot listen on {bind} (sync.listen, sync.port): {e}")
    })?;
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    let local = listener.local_addr()?;
    let psk = cfg.psk().map(Arc::<[u8]>::from);
    let shared = Arc::new(Shared {
        conns: Mutex::new(HashMap::new()),
        next_gen: AtomicU64::new(1),
        overhead: wire::frame_overhead(psk.is_some()),
        psk,
        bound: cfg.peer_queue_bytes,
        deliver,
        stats,
        tls,
        listen: cfg.listen,
        port: cfg.port,
    });
    let (cmd, rx) = mpsc::unbounded_channel();
    info!(%local, tls = shared.tls.is_some(), "sync: listening");
    tokio::spawn(manage(shared.clone(), listener, rx));
    Ok(SyncOutgoing { shared, cmd, local })
}

async fn manage(
    sh: Arc<Shared>,
    listener: TcpListener,
    mut cmds: mpsc::UnboundedReceiver<Command>,
) {
    let mut tasks = JoinSet::new();
    let mut dialers: HashMap<IpAddr, (AbortHandle, Arc<Notify>)> = HashMap::new();
    loop {
        tokio::select! {
            a = listener.accept() => {
                let Ok((stream, from)) = a else { continue };
                tasks.spawn(accepted(sh.clone(), stream, from.ip()));
            }
            c = cmds.recv() => match c {
                Some(Command::Connect(peer)) => match dialers.get(&peer) {
                    Some((_, kick)) => kick.notify_one(),
                    None => {
                        let kick = Arc::new(Notify::new());
                        let h = tasks.spawn(dial(sh.clone(), peer, kick.clone()));
                        dialers.insert(peer, (h, kick));
                    }
                },
                Some(Command::Close(peer)) => {
                    if let Some((h, _)) = dialers.remove(&peer) {
                        h.abort();
                    }
                    if sh.conns().remove(&peer).is_some() {
                        (sh.deliver)(SyncEvent::Lost { peer });
                    }
                }
                Some(Command::Shutdown) | None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
    sh.conns().clear();
    info!("sync: transport stopped");
}

/// Keeps a connection to `peer` up from our side.
async fn dial(sh: Arc<Shared>, peer: IpAddr, kick: Arc<Notify>) {
    let ours = sh.local_ip_for(peer).is_none_or(|l| l < peer);
    if !ours {
        // The lower address dials; wait for it unless told to hurry.
        let _ = tokio::time::timeout(DIAL_ANYWAY_AFTER, kick.notified()).await;
    }
    let mut backoff = RETRY_MIN;
    loop {
        if !sh.connected(peer) {
            // From our sync address: the peer knows us by it.
            match connect(sh.listen, SocketAddr::new(peer, sh.port)).await {
                Ok(stream) => {
                    let started = Instant::now();
                    outgoing(sh.clone(), stream, peer).await;
                    if started.elapsed() > Duration::from_secs(1) {
                        backoff = RETRY_MIN;
                    }
                }
                Err(e) => debug!(%peer, "sync: cannot connect: {e}"),
            }
        }
        let _ = tokio::time::timeout(backoff, kick.notified()).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

fn tls_refused(sh: &Shared, peer: IpAddr, r: TlsRefused) {
    match r {
        TlsRefused::Auth(e) => {
            inc(&sh.stats.counters.auth_failures);
            (sh.deliver)(SyncEvent::Refused {
                peer,
                reason: Refusal::Auth,
            });
            warn!(%peer, "sync: connection refused: {e}");
        }
        TlsRefused::Timeout => warn!(%peer, "sync: TLS handshake timed out"),
    }
}

async fn outgoing(sh: Arc<Shared>, stream: TcpStream, peer: IpAddr) {
    match &sh.tls {
        None => serve(sh, stream, peer, true).await,
        Some(t) => match t.connect(stream, peer).await {
            Ok(s) => serve(sh, s, peer, true).await,
            Err(r) => tls_refused(&sh, peer, r),
        },
    }
}

async fn accepted(sh: Arc<Shared>, stream: TcpStream, peer: IpAddr) {
    let _ = stream.set_nodelay(true);
    match &sh.tls {
        None => serve(sh, stream, peer, false).await,
        Some(t) => match t.accept(stream, peer).await {
            Ok(s) => serve(sh, s, peer, false).await,
            Err(r) => tls_refused(&sh, peer, r),
        },
    }
}

/// Registers the connection, runs it until it ends, unregisters it.
async fn serve<S>(sh: Arc<Shared>, stream: S, peer: IpAddr, dialed: bool)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let by_lower = match sh.local_ip_for(peer) {
        Some(l) if dialed => l < peer,
        Some(l) => peer < l,
        None => dialed,
    };
    let (mut r, mut w) = tokio::io::split(stream);
    let (tx_mac, rx_mac) = match sh.psk.as_deref() {
        None => (None, None),
        Some(k) => match handshake(&mut r, &mut w, k).await {
            Ok((send, recv)) => (Some(send), Some(recv)),
            Err(Some(e)) => {
                inc(&sh.stats.counters.malformed);
                warn!(%peer, "sync: {e}; closing the connection");
                (sh.deliver)(SyncEvent::Refused {
                    peer,
                    reason: Refusal::BadFrame,
                });
                return;
            }
            Err(None) => {
                debug!(%peer, "sync: no preamble from the peer");
                return;
            }
        },
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, mut stopped) = oneshot::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let generation = sh.next_gen.fetch_add(1, Relaxed);
    {
        let mut conns = sh.conns();
        if conns
            .get(&peer)
            .is_some_and(|old| old.by_lower && !by_lower)
        {
            debug!(%peer, "sync: duplicate connection dropped (the lower address's stays)");
            return;
        }
        conns.insert(
            peer,
            Conn {
                generation,
                by_lower,
                tx,
                queued: queued.clone(),
                overflowed: false,
                _stop: stop,
            },
        );
    }
    info!(%peer, dialed, "sync: connected");
    (sh.deliver)(SyncEvent::Connected { peer });
    let writer = tokio::spawn(write_loop(w, rx, sh.clone(), peer, queued, tx_mac));
    read_loop(r, &sh, peer, &mut stopped, rx_mac).await;
    writer.abort();
    let mine = {
        let mut conns = sh.conns();
        let mine = conns.get(&peer).is_some_and(|c| c.generation == generation);
        if mine {
            conns.remove(&peer);
        }
        mine
    };
    if mine {
        info!(%peer, "sync: connection lost");
        (sh.deliver)(SyncEvent::Lost { peer });
    }
}

/// Sends our nonce, reads the peer's: the (sending, receiving) frame
/// authentication of this connection. `Err(None)`: the peer sent nothing
/// in time or the connection failed.
async fn handshake<S: AsyncRead + AsyncWrite>(
    r: &mut ReadHalf<S>,
    w: &mut WriteHalf<S>,
    psk: &[u8],
) -> Result<(FrameMac, FrameMac), Option<FrameError>> {
    let ours: [u8; wire::NONCE_LEN] = rand::random();
    let exchange = async {
        w.write_all(&wire::preamble(&ours)).await?;
        w.flush().await?;
        let mut p = [0u8; wire::PREAMBLE_LEN];
        r.read_exact(&mut p).await?;
        Ok::<_, std::io::Error>(p)
    };
    let p = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
        Ok(Ok(p)) => p,
        _ => return Err(None),
    };
    let theirs = wire::parse_preamble(&p).map_err(Some)?;
    if theirs == ours {
        // Our own preamble reflected back to us.
        return Err(Some(FrameError::BadPreamble));
    }
    Ok(FrameMac::pair(psk, &ours, &theirs))
}

async fn write_loop<S: AsyncWrite>(
    w: WriteHalf<S>,
    mut rx: mpsc::UnboundedReceiver<Arc<[u8]>>,
    sh: Arc<Shared>,
    peer: IpAddr,
    queued: Arc<AtomicUsize>,
    mut mac: Option<FrameMac>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    let mut unreported = 0u64;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Everything queued goes out in one flush.
        while let Some(msg) = next.take() {
            let n = msg.len() + sh.overhead;
            if let Ok((head, tag)) = wire::frame_parts(&msg, mac.as_mut()) {
                let ok = w.write_all(&head).await.is_ok()
                    && w.write_all(&msg).await.is_ok()
                    && match tag {
                        Some(m) => w.write_all(&m).await.is_ok(),
                        None => true,
                    };
                if !ok {
                    return;
                }
                unreported += n as u64;
            }
            queued.fetch_sub(n, Relaxed);
            if unreported >= REPORT_BYTES {
                (sh.deliver)(SyncEvent::Written {
                    peer,
                    bytes: std::mem::take(&mut unreported),
                });
            }
            next = rx.try_recv().ok();
        }
        if w.flush().await.is_err() {
            return;
        }
        if unreported >= REPORT_IDLE_BYTES {
            (sh.deliver)(SyncEvent::Written {
                peer,
                bytes: std::mem::take(&mut unreported),
            });
        }
    }
}

async fn read_loop<S: AsyncRead>(
    mut r: ReadHalf<S>,
    sh: &Shared,
    peer: IpAddr,
    stopped: &mut oneshot::Receiver<()>,
    mut mac: Option<FrameMac>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let mut used = 0;
        loop {
            match wire::next_frame(&buf[used..], mac.as_mut()) {
                Ok(Some((msg, n))) => {
                    (sh.deliver)(SyncEvent::Frame {
                        peer,
                        msg: msg.to_vec(),
                    });
                    used += n;
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = match e {
                        FrameError::BadMac => {
                            inc(&sh.stats.counters.auth_failures);
                            Refusal::Auth
                        }
                        FrameError::Empty | FrameError::BadPreamble => {
                            inc(&sh.stats.counters.malformed);
                            Refusal::BadFrame
                        }
                    };
                    warn!(%peer, "sync: {e} (wrong key?); closing the connection");
                    (sh.deliver)(SyncEvent::Refused { peer, reason });
                    return;
                }
            }
        }
        buf.drain(..used);
        tokio::select! {
            n = r.read(&mut chunk) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = &mut *stopped => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpSocket;

    fn cfg(me: IpAddr, peer: IpAddr, port: u16, key: &str) -> SyncConfig {
        let mut c = SyncConfig::new(1, key);
        c.listen = Some(me);
        c.peers = vec![peer];
        c.port = port;
        c
    }

    fn start(c: &SyncConfig) -> (SyncOutgoing, mpsc::UnboundedReceiver<SyncEvent>) {
        let tls = c
            .tls
            .as_ref()
            .map(|t| Tls::load_section(t, "sync.tls").unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        let out = spawn(
            c,
            tls,
            Arc::new(Stats::default()),
            Arc::new(move |ev| {
                let _ = tx.send(ev);
            }),
        )
        .unwrap();
        (out, rx)
    }

    /// The next event matching `want` (the timeout only guards against a hang).
    async fn next(
        rx: &mut mpsc::UnboundedReceiver<SyncEvent>,
        want: impl Fn(&SyncEvent) -> bool,
    ) -> SyncEvent {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let ev = rx.recv().await.expect("transport alive");
                if want(&ev) {
                    return ev;
                }
            }
        })
        .await
        .expect("event not seen")
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    // Single-threaded runtime: the writers cannot run while the test
    // queues, so what the bound lets through is exact.
    #[tokio::test]
    async fn frames_flow_the_bound_holds_and_a_wrong_key_is_refused() {
        let port = free_port();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (ta, mut ra) = start(&cfg(a, b, port, "k"));
        let (tb, mut rb) = start(&cfg(b, a, port, "k"));
        ta.connect(b);
        tb.connect(a);
        next(&mut ra, |e| *e == SyncEvent::Connected { peer: b }).await;
        next(&mut rb, |e| *e == SyncEvent::Connected { peer: a }).await;
        let msg: Arc<[u8]> = vec![0xF4, 0x03, 7, 0, 0, 0, 0, 1].into();
        tb.send(a, msg.clone());
        let got = next(&mut ra, |e| matches!(e, SyncEvent::Frame { .. })).await;
        assert_eq!(
            got,
            SyncEvent::Frame {
                peer: b,
                msg: msg.to_vec()
            }
        );
        // 100 frames of 60 KB against a 4 MiB bound: 69 queued, 31 refused.
        let big: Arc<[u8]> = vec![1u8; 60_000].into();
        let frame = 60_000 + wire::frame_overhead(true);
        for _ in 0..100 {
            ta.send(b, big.clone());
        }
        let fits = (4 << 20) / frame;
        let mut dropped = 0;
        while let Ok(ev) = ra.try_recv() {
            assert!(
                matches!(ev, SyncEvent::Dropped { peer, bytes } if peer == b && bytes == frame as u64)
            );
            dropped += 1;
        }
        assert_eq!(dropped, 100 - fits);
        // Everything queued is written and reported.
        let mut written = 0;
        while written < fits * frame {
            if let SyncEvent::Written { bytes, .. } =
                next(&mut ra, |e| matches!(e, SyncEvent::Written { .. })).await
            {
                written += bytes as usize;
            }
        }
        assert_eq!(written, fits * frame);
        let mut frames = 0;
        while frames < fits {
            next(
                &mut rb,
                |e| matches!(e, SyncEvent::Frame { msg, .. } if msg.len() == 60_000),
            )
            .await;
            frames += 1;
        }
        ta.shutdown();
        tb.shutdown();

        // A member with another key: its first frame closes the connection.
        let port = free_port();
        let (tc, mut rc) = start(&cfg(a, b, port, "k"));
        let (td, mut rd) = start(&cfg(b, a, port, "other"));
        tc.connect(b);
        td.connect(a);
        next(&mut rc, |e| *e == SyncEvent::Connected { peer: b }).await;
        next(&mut rd, |e| *e == SyncEvent::Connected { peer: a }).await;
        td.send(a, msg.clone());
        next(&mut rc, |e| {
            *e == SyncEvent::Refused {
                peer: b,
                reason: Refusal::Auth,
            }
        })
        .await;
        next(&mut rc, |e| *e == SyncEvent::Lost { peer: b }).await;
        tc.shutdown();
        td.shutdown();
    }

    /// The next frame delivered or connection refused.
    async fn next_verdict(rx: &mut mpsc::UnboundedReceiver<SyncEvent>) -> SyncEvent {
        next(rx, |e| {
            matches!(e, SyncEvent::Refused { .. } | SyncEvent::Frame { .. })
        })
        .await
    }

    /// A member-to-be on a raw socket: connects from `from`, exchanges
    /// nonces with the member at `to`; returns the stream, our sending
    /// state and everything it wrote so far.
    async fn raw_member(
        from: IpAddr,
        to: SocketAddr,
        key: &[u8],
    ) -> (TcpStream, FrameMac, Vec<u8>) {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from, 0)).unwrap();
        let mut s = sock.connect(to).await.unwrap();
        let ours: [u8; wire::NONCE_LEN] = rand::random();
        let sent = wire::preamble(&ours).to_vec();
        s.write_all(&sent).await.unwrap();
        let mut p = [0u8; wire::PREAMBLE_LEN];
        s.read_exact(&mut p).await.unwrap();
        let theirs = wire::parse_preamble(&p).unwrap();
        (s, FrameMac::pair(key, &ours, &theirs).0, sent)
    }

    #[tokio::test]
    async fn recorded_or_repeated_frames_are_refused() {
        let port = free_port();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (ta, mut ra) = start(&cfg(a, b, port, "k"));
        let to = SocketAddr::new(a, port);
        let msg = vec![0xF4, 0x03, 7, 0, 0, 0, 0, 1];

        // A genuine session: its frame is delivered. Everything it sent is recorded.
        let (mut s, mut mac, mut recorded) = raw_member(b, to, b"k").await;
        wire::put_frame(&mut recorded, &msg, Some(&mut mac)).unwrap();
        s.write_all(&recorded[wire::PREAMBLE_LEN..]).await.unwrap();
        let got = next(&mut ra, |e| matches!(e, SyncEvent::Frame { .. })).await;
        assert_eq!(
            got,
            SyncEvent::Frame {
                peer: b,
                msg: msg.clone()
            }
        );
        drop(s);
        next(&mut ra, |e| *e == SyncEvent::Lost { peer: b }).await;

        // The recording played back on a new connection: the member chose a
        // new nonce, so the old frame fails.
        let mut s = TcpStream::connect(to).await.unwrap();
        let mut p = [0u8; wire::PREAMBLE_LEN];
        s.read_exact(&mut p).await.unwrap();
        s.write_all(&recorded).await.unwrap();
        let ev = next_verdict(&mut ra).await;
        assert_eq!(
            ev,
            SyncEvent::Refused {
                peer: a,
                reason: Refusal::Auth
            }
        );
        drop(s);

        // Within one session, a frame sent twice: the copy is refused.
        let (mut s, mut mac, _) = raw_member(b, to, b"k").await;
        let mut frame = Vec::new();
        wire::put_frame(&mut frame, &msg, Some(&mut mac)).unwrap();
        s.write_all(&frame).await.unwrap();
        s.write_all(&frame).await.unwrap();
        let ev = next_verdict(&mut ra).await;
        assert_eq!(
            ev,
            SyncEvent::Frame {
                peer: b,
                msg: msg.clone()
            }
        );
        let ev = next_verdict(&mut ra).await;
        assert_eq!(
            ev,
            SyncEvent::Refused {
                peer: b,
                reason: Refusal::Auth
            }
        );

        // Not a preamble at all: refused as a bad frame, nothing delivered.
        let mut s = TcpStream::connect(to).await.unwrap();
        s.write_all(&[0u8; wire::PREAMBLE_LEN]).await.unwrap();
        let ev = next_verdict(&mut ra).await;
        assert_eq!(
            ev,
            SyncEvent::Refused {
                peer: a,
                reason: Refusal::BadFrame
            }
        );
        ta.shutdown();
    }

    /// PEM files of a CA (`tag`) and of certificates naming `ips`.
    fn pki(dir: &std::path::Path, tag: &str, ips: &[IpAddr]) {
        use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join(format!("{tag}-ca.pem")), ca.pem()).unwrap();
        for ip in ips {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec![ip.to_string()]).unwrap();
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
            std::fs::write(dir.join(format!("{tag}-{ip}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{tag}-{ip}.key")), key.serialize_pem()).unwrap();
        }
    }

    fn with_tls(mut c: SyncConfig, dir: &std::path::Path, tag: &str) -> SyncConfig {
        let me = c.listen.unwrap();
        c.tls = Some(crate::config::TlsConfig {
            cert: dir.join(format!("{tag}-{me}.pem")),
            key: dir.join(format!("{tag}-{me}.key")),
            ca: dir.join(format!("{tag}-ca.pem")),
            verify_peer_address: true,
        });
        c
    }

    #[tokio::test]
    async fn tls_without_a_key_carries_frames_and_refuses_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        pki(dir.path(), "good", &[a, b]);
        pki(dir.path(), "rogue", &[b]);
        let port = free_port();
        let (ta, mut ra) = start(&with_tls(cfg(a, b, port, ""), dir.path(), "good"));
        let (tb, mut rb) = start(&with_tls(cfg(b, a, port, ""), dir.path(), "good"));
        ta.connect(b);
        tb.connect(a);
        next(&mut rb, |e| *e == SyncEvent::Connected { peer: a }).await;
        let msg: Arc<[u8]> = vec![0xF4, 0x03, 7, 0, 0, 0, 0, 9].into();
        ta.send(b, msg.clone());
        let got = next(&mut rb, |e| matches!(e, SyncEvent::Frame { .. })).await;
        assert_eq!(
            got,
            SyncEvent::Frame {
                peer: a,
                msg: msg.to_vec()
            }
        );
        next(&mut ra, |e| *e == SyncEvent::Connected { peer: b }).await;
        ta.shutdown();
        tb.shutdown();

        // A member whose certificate another CA signed never gets a session.
        let port = free_port();
        let (tc, mut rc) = start(&with_tls(cfg(a, b, port, ""), dir.path(), "good"));
        let (td, _rd) = start(&with_tls(cfg(b, a, port, ""), dir.path(), "rogue"));
        tc.connect(b);
        td.connect(a);
        next(&mut rc, |e| {
            *e == SyncEvent::Refused {
                peer: b,
                reason: Refusal::Auth,
            }
        })
        .await;
        assert!(tc.connected().is_empty());
        tc.shutdown();
        td.shutdown();
    }
}
