//! Load generator for the resolution benchmark: an ITR-side client that sends
//! ECM Map-Requests (as an ITR to a Map-Resolver, or as a Map-Resolver to a
//! Map-Server) over loopback with batched socket I/O, keeps a window of
//! requests outstanding (or paces at a fixed rate), and measures replies.
//! Bounded in time and count; only loopback/lab addresses are accepted.
//!
//! Latency is reported twice. End to end: from when the request was due (the
//! pacing schedule, so a late send is not hidden) to when the client read the
//! reply. Server side: from the send to the kernel's receive timestamp of the
//! reply, which the loopback device takes as the server transmits it; this
//! leaves out the client's own scheduling at both ends. The client's stalls
//! (its loop not running) are counted separately, and so is the CPU time
//! the hypervisor stole meanwhile. [`reflect`] is the floor to compare with.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lisp_msx_proto::lisp::{
    CONTROL_PORT, Ecm, InnerHeader, LispMessage, MapRequest, TYPE_MAP_REPLY,
};
use lisp_msx_proto::{Addr, EidPrefix};

use crate::control::io::{ControlSocket, Outbox, RecvBatch};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Where the Map-Requests go (a Map-Resolver or a Map-Server).
    pub target: IpAddr,
    /// The client's address (its ITR-RLOC).
    pub source: IpAddr,
    /// EIDs are drawn from this prefix.
    pub eids: EidPrefix,
    pub duration: Duration,
    /// Requests outstanding at once (window mode).
    pub window: usize,
    /// Requests per second (paced mode); 0: window mode.
    pub rate: u64,
    /// Stop after this many requests.
    pub max_requests: u64,
    /// Writes one CSV line per reply (seq, due, sent, kernel receive, read; ns).
    pub dump: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BenchReport {
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub seconds: f64,
    pub replies_per_sec: f64,
    /// End to end: due (paced) or sent (window) → reply read.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Server side: sent → reply transmitted (kernel timestamp).
    pub server_p50_us: u64,
    pub server_p90_us: u64,
    pub server_p99_us: u64,
    pub server_max_us: u64,
    /// How late the client sent against the schedule (paced mode).
    pub send_late_p99_us: u64,
    pub send_late_max_us: u64,
    /// Client loop gaps longer than 1 ms: count, total and longest.
    pub client_stalls: u64,
    pub client_stalled_ms: f64,
    pub client_stall_max_us: u64,
    /// CPU time the hypervisor took from this virtual machine during the
    /// run (all CPUs, /proc/stat "steal"; 0 on bare metal). The
    /// millisecond tail follows it.
    pub steal_ms: f64,
}

const NONCE_OFFSET_V4: usize = 4 + 20 + 8 + 4;
const NONCE_OFFSET_V6: usize = 4 + 40 + 8 + 4;

pub fn run(cfg: &BenchConfig) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        // Only loopback and the documentation ranges are legitimate targets.
        lisp_msx_proto::addr::is_lab_address(cfg.target),
        "target {} is outside loopback and the documentation ranges",
        cfg.target
    );
    anyhow::ensure!(
        cfg.source.is_ipv4() == cfg.target.is_ipv4(),
        "source and target must be of one family"
    );
    let sock = ControlSocket::bind(cfg.source, 0)?;
    let port = sock.local.port();
    let target = SocketAddr::new(cfg.target, CONTROL_PORT);

    // One template per EID; the nonce is patched in place. The inner UDP
    // checksum is zeroed (allowed over IPv4, ignored by our decoder).
    let host_bits = cfg.eids.addr.addr.max_len() - cfg.eids.len;
    let n_eids = 1usize << host_bits.min(8);
    let templates: Vec<Vec<u8>> = (0..n_eids)
        .map(|i| {
            let base = cfg.eids.normalized().addr.addr;
            let eid = match base {
                Addr::V4(a) => Addr::V4(a + i as u32),
                Addr::V6(a) => Addr::V6(a + i as u128),
                Addr::None => base,
            };
            let req = MapRequest::new(0, EidPrefix::host(eid), Addr::from(cfg.source));
            let dst = eid
                .ip()
                .filter(|ip| ip.is_ipv4() == cfg.source.is_ipv4())
                .unwrap_or(cfg.source);
            let inner = InnerHeader::new(cfg.source, dst, port, CONTROL_PORT);
            let mut b = Vec::new();
            Ecm::new(inner, LispMessage::MapRequest(req))
                .encode(&mut b)
                .expect("template encodes");
            let csum = if cfg.source.is_ipv4() {
                4 + 20 + 6
            } else {
                4 + 40 + 6
            };
            if cfg.source.is_ipv4() {
                b[csum..csum + 2].copy_from_slice(&[0, 0]);
            }
            b
        })
        .collect();
    let nonce_off = if cfg.source.is_ipv4() {
        NONCE_OFFSET_V4
    } else {
        NONCE_OFFSET_V6
    };

    sock.enable_rx_timestamps()?;
    let socks = [sock];
    let mut out = Outbox::default();
    let mut rx = RecvBatch::with_timestamps();
    // Send times (ns since start, +1) by sequence number (the nonce); 0 = answered or never sent.
    let cap = cfg.max_requests.min(50_000_000) as usize;
    let mut sent_at: Vec<u64> = vec![0; cap];
    let mut m = Measures::with_capacity(cap.min(20_000_000));
    let mut dump = match &cfg.dump {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let steal0 = steal_ms();
    let start = Instant::now();
    let real0 = realtime_ns();
    let ns = |t: Instant| (t - start).as_nanos() as u64;
    let mut seq: u64 = 0;
    let mut answered: u64 = 0;
    let window = cfg.window.max(1) as u64;
    let deadline = start + cfg.duration;
    let mut last_progress = Instant::now();
    let mut prev = start;
    loop {
        let now = Instant::now();
        let gap = now - prev;
        prev = now;
        if gap > STALL {
            m.stalls
                .push((ns(now) - gap.as_nanos() as u64, gap.as_micros() as u64));
        }
        if now >= deadline || (seq >= cfg.max_requests && answered >= seq) {
            break;
        }
        // How many to send now.
        let budget = if cfg.rate > 0 {
            let due = ((now - start).as_secs_f64() * cfg.rate as f64) as u64;
            due.saturating_sub(seq).min(64)
        } else {
            (answered + window).saturating_sub(seq).min(64)
        };
        let budget = budget.min(cfg.max_requests.saturating_sub(seq));
        if budget > 0 {
            let t = ns(now) + 1;
            for _ in 0..budget {
                let tpl = &templates[(seq as usize) % templates.len()];
                let b = out.push(0, target);
                b.extend_from_slice(tpl);
                b[nonce_off..nonce_off + 8].copy_from_slice(&seq.to_be_bytes());
                sent_at[seq as usize] = t;
                seq += 1;
            }
            out.flush(&socks);
        }
        let n = rx.recv(&socks[0])?;
        let read = ns(Instant::now());
        for i in 0..n {
            if let Some(s) = reply_seq(rx.packet(i))
                && let Some(t0) = sent_at.get_mut(s as usize)
                && *t0 != 0
            {
                let sent = *t0 - 1;
                *t0 = 0;
                let intended = due(cfg.rate, s).unwrap_or(sent);
                let kernel = rx.stamps[i].checked_sub(real0).unwrap_or(read).min(read);
                m.record(intended, sent, kernel, read);
                if let Some(d) = &mut dump {
                    writeln!(d, "{s},{intended},{sent},{kernel},{read}")?;
                }
                answered += 1;
                last_progress = Instant::now();
            }
        }
        if n == 0 {
            // Window mode with everything lost: re-open the window after 200 ms.
            if cfg.rate == 0
                && seq > answered
                && last_progress.elapsed() > Duration::from_millis(200)
            {
                answered = seq;
                last_progress = Instant::now();
            }
            std::hint::spin_loop();
        }
    }
    let measured = Instant::now();
    // Grace period for stragglers.
    let grace = measured + Duration::from_millis(200);
    while Instant::now() < grace {
        let n = rx.recv(&socks[0])?;
        let read = ns(Instant::now());
        for i in 0..n {
            if let Some(s) = reply_seq(rx.packet(i))
                && let Some(t0) = sent_at.get_mut(s as usize)
                && *t0 != 0
            {
                let sent = *t0 - 1;
                *t0 = 0;
                let kernel = rx.stamps[i].checked_sub(real0).unwrap_or(read).min(read);
                m.record(due(cfg.rate, s).unwrap_or(sent), sent, kernel, read);
            }
        }
    }
    if let Some(d) = &mut dump {
        writeln!(d, "start,{real0}")?;
        for (at, us) in &m.stalls {
            writeln!(d, "stall,{at},{us}")?;
        }
        d.flush()?;
    }
    let elapsed = (measured - start).as_secs_f64().max(1e-9);
    let ok = m.e2e.len() as u64;
    let e2e = percentiles(&mut m.e2e);
    let server = percentiles(&mut m.server);
    let late = percentiles(&mut m.late);
    Ok(BenchReport {
        sent: seq,
        answered: ok,
        lost: seq - ok,
        seconds: elapsed,
        replies_per_sec: ok as f64 / elapsed,
        p50_us: e2e[0],
        p90_us: e2e[1],
        p99_us: e2e[2],
        max_us: e2e[3],
        server_p50_us: server[0],
        server_p90_us: server[1],
        server_p99_us: server[2],
        server_max_us: server[3],
        send_late_p99_us: late[2],
        send_late_max_us: late[3],
        client_stalls: m.stalls.len() as u64,
        client_stalled_ms: m.stalls.iter().map(|s| s.1).sum::<u64>() as f64 / 1000.0,
        client_stall_max_us: m.stalls.iter().map(|s| s.1).max().unwrap_or(0),
        steal_ms: match (steal0, steal_ms()) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        },
    })
}

/// Client loop iterations further apart than this count as a stall of the
/// client (its longest own iteration, 64 sends and 64 receives, is ~0.4 ms).
const STALL: Duration = Duration::from_millis(1);

/// When request `seq` was due, in ns since start (paced mode).
fn due(rate: u64, seq: u64) -> Option<u64> {
    (rate > 0).then(|| (u128::from(seq) * 1_000_000_000 / u128::from(rate)) as u64)
}

/// Latencies in µs, collected per answered request.
struct Measures {
    e2e: Vec<u32>,
    server: Vec<u32>,
    late: Vec<u32>,
    /// (ns since start, µs) of each client stall.
    stalls: Vec<(u64, u64)>,
}

impl Measures {
    fn with_capacity(n: usize) -> Measures {
        Measures {
            e2e: Vec::with_capacity(n),
            server: Vec::with_capacity(n),
            late: Vec::with_capacity(n),
            stalls: Vec::new(),
        }
    }

    /// Times in ns since start: when the request was due, sent, when its
    /// reply reached the client's socket (kernel stamp) and was read.
    fn record(&mut self, intended: u64, sent: u64, kernel: u64, read: u64) {
        let us = |d: u64| (d / 1000).min(u64::from(u32::MAX)) as u32;
        self.e2e.push(us(read.saturating_sub(intended)));
        self.server.push(us(kernel.saturating_sub(sent)));
        self.late.push(us(sent.saturating_sub(intended)));
    }
}

/// p50, p90, p99, max.
fn percentiles(v: &mut [u32]) -> [u64; 4] {
    v.sort_unstable();
    let pct = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as u64
    };
    [
        pct(0.5),
        pct(0.9),
        pct(0.99),
        v.last().copied().unwrap_or(0) as u64,
    ]
}

/// The nonce (our sequence number) of a Map-Reply.
fn reply_seq(pkt: &[u8]) -> Option<u64> {
    if pkt.len() < 12 || pkt[0] >> 4 != TYPE_MAP_REPLY {
        return None;
    }
    Some(u64::from_be_bytes(pkt[4..12].try_into().ok()?))
}

/// The machine's floor for the same measurement: answers the benchmark's
/// own Map-Requests with a fixed Map-Reply (one record, one locator, the
/// request's nonce) through the same batched socket code, with no decoding,
/// lookup or state. Whatever tail it shows is the kernel's and the
/// machine's, not the Map-Server's. Runs for `duration`; returns the
/// number of replies.
pub fn reflect(listen: IpAddr, duration: Duration, busy_poll: Duration) -> anyhow::Result<u64> {
    anyhow::ensure!(
        lisp_msx_proto::addr::is_lab_address(listen),
        "{listen} is outside loopback and the documentation ranges"
    );
    let sock = ControlSocket::bind(listen, CONTROL_PORT)?;
    let nonce_off = if listen.is_ipv4() {
        NONCE_OFFSET_V4
    } else {
        NONCE_OFFSET_V6
    };
    let record = lisp_msx_proto::lisp::EidRecord::new(
        "192.0.2.0/26"
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        1440,
        vec![lisp_msx_proto::lisp::Locator::new(listen, 1, 100)],
    );
    let mut reply = Vec::new();
    LispMessage::MapReply(lisp_msx_proto::lisp::MapReply::new(0, vec![record]))
        .encode(&mut reply)?;
    let socks = [sock];
    let mut rx = RecvBatch::default();
    let mut out = Outbox::default();
    let end = Instant::now() + duration;
    let mut last_io = Instant::now();
    let mut replies = 0u64;
    while Instant::now() < end {
        let timeout = if last_io.elapsed() < busy_poll {
            nix::poll::PollTimeout::ZERO
        } else {
            nix::poll::PollTimeout::from(100u16)
        };
        let mut fds = [nix::poll::PollFd::new(
            socks[0].fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, timeout)? == 0 {
            continue;
        }
        last_io = Instant::now();
        loop {
            let n = rx.recv(&socks[0])?;
            for i in 0..n {
                let req = rx.packet(i);
                let Some(nonce) = req.get(nonce_off..nonce_off + 8) else {
                    continue;
                };
                let b = out.push(0, rx.meta[i].0);
                b.extend_from_slice(&reply);
                b[4..12].copy_from_slice(nonce);
                replies += 1;
            }
            out.flush(&socks);
            if n < crate::control::io::BATCH {
                break;
            }
        }
    }
    Ok(replies)
}

/// Stolen time of all CPUs so far, in ms (None where /proc/stat is missing).
fn steal_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: f64 = stat
        .lines()
        .next()?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some(ticks * 1000.0 / hz)
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
