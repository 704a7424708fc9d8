//! Load generator for the resolution benchmark: an ITR-side client that sends
//! ECM Map-Requests (as an ITR to a Map-Resolver, or as a Map-Resolver to a
//! Map-Server) over loopback with batched socket I/O, keeps a window of
//! requests outstanding (or paces at a fixed rate), and measures replies.
//! Bounded in time and count; only loopback/lab addresses are accepted.

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
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BenchReport {
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub seconds: f64,
    pub replies_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
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
    let socks = [sock];
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

    let mut out = Outbox::default();
    let mut rx = RecvBatch::default();
    // Send times by sequence number (the nonce); 0 = answered or never sent.
    let cap = cfg.max_requests.min(50_000_000) as usize;
    let mut sent_at: Vec<u64> = vec![0; cap];
    let mut latencies: Vec<u32> = Vec::with_capacity(cap.min(20_000_000));
    let start = Instant::now();
    let mut seq: u64 = 0;
    let mut answered: u64 = 0;
    let window = cfg.window.max(1) as u64;
    let deadline = start + cfg.duration;
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
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
            let t = (now - start).as_nanos() as u64 + 1;
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
        for i in 0..n {
            let pkt = rx.packet(i);
            if pkt.len() < 12 || pkt[0] >> 4 != TYPE_MAP_REPLY {
                continue;
            }
            let nonce = u64::from_be_bytes(pkt[4..12].try_into().expect("8 bytes"));
            if let Some(t0) = sent_at.get_mut(nonce as usize)
                && *t0 != 0
            {
                let rtt = (Instant::now() - start).as_nanos() as u64 - *t0 + 1;
                latencies.push((rtt / 1000).min(u64::from(u32::MAX)) as u32);
                *t0 = 0;
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
    // Grace period for stragglers.
    let grace = Instant::now() + Duration::from_millis(200);
    while Instant::now() < grace {
        let n = rx.recv(&socks[0])?;
        for i in 0..n {
            let pkt = rx.packet(i);
            if pkt.len() >= 12 && pkt[0] >> 4 == TYPE_MAP_REPLY {
                let nonce = u64::from_be_bytes(pkt[4..12].try_into().expect("8 bytes"));
                if let Some(t0) = sent_at.get_mut(nonce as usize)
                    && *t0 != 0
                {
                    let rtt = (Instant::now() - start).as_nanos() as u64 - *t0 + 1;
                    latencies.push((rtt / 1000) as u32);
                    *t0 = 0;
                }
            }
        }
    }
    let elapsed = (Instant::now() - start - Duration::from_millis(200))
        .as_secs_f64()
        .max(1e-9);
    let ok = latencies.len() as u64;
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as u64
    };
    Ok(BenchReport {
        sent: seq,
        answered: ok,
        lost: seq - ok,
        seconds: elapsed,
        replies_per_sec: ok as f64 / elapsed,
        p50_us: pct(0.5),
        p90_us: pct(0.9),
        p99_us: pct(0.99),
        max_us: latencies.last().copied().unwrap_or(0) as u64,
    })
}
