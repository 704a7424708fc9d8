//! A small built-in ping (ICMP echo over a ping socket, from a thread that
//! enters the node's namespace), so that RTT checks need no `ping` binary.

use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::netns;
use crate::sys;

/// Round-trip times of a ping run.
#[derive(Debug, Clone, Serialize)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
    /// Every RTT measured, in order.
    pub rtts: Vec<Duration>,
    /// Sequence numbers (from 1) that got no reply.
    pub lost: Vec<u32>,
}

impl PingStats {
    pub fn min(&self) -> Option<Duration> {
        self.rtts.iter().min().copied()
    }
    pub fn max(&self) -> Option<Duration> {
        self.rtts.iter().max().copied()
    }
    pub fn avg(&self) -> Option<Duration> {
        (!self.rtts.is_empty()).then(|| self.rtts.iter().sum::<Duration>() / self.rtts.len() as u32)
    }
}

/// Sends `count` echo requests from namespace `ns` to `dst`, one every
/// `interval` (whatever the replies do); after the last one, waits at most
/// `reply_timeout` for outstanding replies.
pub fn ping_in(
    ns: &str,
    dst: IpAddr,
    count: u32,
    interval: Duration,
    reply_timeout: Duration,
) -> Result<PingStats> {
    if count == 0 || count > u16::MAX as u32 {
        return Err(anyhow!("ping count must be 1..=65535, not {count}"));
    }
    let path = netns::ns_path(ns);
    thread::spawn(move || -> Result<PingStats> {
        sys::enter_netns(&path).context("enter namespace")?;
        // Real-time when permitted, so that the RTT measures the link rather
        // than the scheduler of a busy machine.
        let _ = sys::set_realtime(10);
        let sock = sys::icmp_socket(dst.is_ipv6()).context("ICMP ping socket")?;
        let to = SocketAddr::new(dst, 0);
        let (req, rep) = if dst.is_ipv6() {
            (128u8, 129u8)
        } else {
            (8u8, 0u8)
        };
        let mut stats = PingStats {
            sent: 0,
            received: 0,
            rtts: Vec::new(),
            lost: Vec::new(),
        };
        let mut buf = [0u8; 2048];
        let mut sent_at: Vec<Option<Instant>> = vec![None; count as usize + 1];
        // Receives replies until `until`, or until every request is answered.
        let mut receive_until = |until: Instant,
                                 sent_at: &mut Vec<Option<Instant>>,
                                 stats: &mut PingStats|
         -> Result<()> {
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() || stats.received == count {
                    return Ok(());
                }
                sock.set_read_timeout(Some(left))?;
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) if n >= 8 && buf[0] == rep => {
                        let now = Instant::now();
                        let seq = u16::from_be_bytes([buf[6], buf[7]]) as usize;
                        if let Some(t) = sent_at.get_mut(seq).and_then(Option::take) {
                            stats.rtts.push(now - t);
                            stats.received += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(e).context("receive echo reply"),
                }
            }
        };
        let start = Instant::now();
        for seq in 1..=count {
            // Requests go out on schedule (the ping interval), replies are
            // taken as they come in between.
            let due = start + interval * (seq - 1);
            receive_until(due, &mut sent_at, &mut stats)?;
            let mut pkt = vec![0u8; 8 + 56];
            pkt[0] = req;
            pkt[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
            sent_at[seq as usize] = Some(Instant::now());
            sock.send_to(&pkt, to).context("send echo request")?;
            stats.sent += 1;
        }
        receive_until(Instant::now() + reply_timeout, &mut sent_at, &mut stats)?;
        stats.lost = (1..=count)
            .filter(|&seq| sent_at[seq as usize].is_some())
            .collect();
        Ok(stats)
    })
    .join()
    .map_err(|_| anyhow!("ping thread panicked"))?
}
