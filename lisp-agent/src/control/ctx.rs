//! What a role handler gets to act: the clock, the outbox, statistics and
//! the event sink. Handlers never touch sockets directly.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use lisp_msx_proto::LispMessage;
use lisp_msx_proto::api;
use lisp_msx_proto::msx::ExtCodepoints;
use tokio::sync::mpsc;

use crate::control::io::{ControlSocket, Outbox, socket_for};
use crate::stats::{Stats, inc};

/// Where a packet came in.
#[derive(Clone, Copy, Debug)]
pub struct Incoming {
    pub sock: usize,
    pub src: SocketAddr,
    pub local: SocketAddr,
}

/// With several sockets of one family (an xTR with two RLOCs), the one to
/// send from is the one the kernel would pick as source towards the
/// destination: a message leaving by another uplink with the address of a
/// failed one would have its answer lost. Looked up with a connected UDP
/// socket (no packet is sent) and remembered for a second.
#[derive(Default)]
pub struct SourceCache {
    map: HashMap<IpAddr, (Option<usize>, Instant)>,
}

const SOURCE_TTL: Duration = Duration::from_secs(1);

impl SourceCache {
    pub fn pick(
        &mut self,
        socks: &[ControlSocket],
        dest: &SocketAddr,
        now: Instant,
    ) -> Option<usize> {
        let same_family = socks
            .iter()
            .filter(|s| s.local.is_ipv4() == dest.is_ipv4())
            .count();
        if same_family <= 1 {
            return socket_for(socks, dest, None);
        }
        if let Some((i, t)) = self.map.get(&dest.ip())
            && now.duration_since(*t) < SOURCE_TTL
        {
            return i.or_else(|| socket_for(socks, dest, None));
        }
        if self.map.len() >= 4096 {
            // Forget stale answers only: clearing everything would make a
            // busy sender look the route up again for every destination.
            self.map
                .retain(|_, (_, t)| now.duration_since(*t) < SOURCE_TTL);
            if self.map.len() >= 4 * 4096 {
                self.map.clear();
            }
        }
        let src = kernel_source(dest);
        let i = src.and_then(|ip| socks.iter().position(|s| s.local.ip() == ip));
        self.map.insert(dest.ip(), (i, now));
        i.or_else(|| socket_for(socks, dest, None))
    }
}

/// The source address the kernel's routing chooses towards `dest`.
fn kernel_source(dest: &SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if dest.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any).ok()?;
    s.connect(dest).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

pub struct Ctx<'a> {
    pub now: Instant,
    pub out: &'a mut Outbox,
    pub socks: &'a [ControlSocket],
    pub sources: &'a mut SourceCache,
    pub stats: &'a Stats,
    pub cp: ExtCodepoints,
    pub events: &'a mut Vec<mpsc::Sender<api::Event>>,
}

impl Ctx<'_> {
    /// Encodes `msg` and queues it to `dest`; returns false when no socket
    /// of the right family exists or the message does not encode.
    pub fn send(&mut self, dest: SocketAddr, via: Option<usize>, msg: &LispMessage) -> bool {
        let cp = self.cp;
        self.send_with(dest, via, |buf| msg.encode_with(buf, &cp).is_ok())
    }

    /// Queues raw bytes (an already encoded message, e.g. a forwarded ECM).
    pub fn send_bytes(&mut self, dest: SocketAddr, via: Option<usize>, bytes: &[u8]) -> bool {
        self.send_with(dest, via, |buf| {
            buf.extend_from_slice(bytes);
            true
        })
    }

    /// Queues a datagram written by `write` straight into a reused buffer.
    pub fn send_with(
        &mut self,
        dest: SocketAddr,
        via: Option<usize>,
        write: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> bool {
        let sock = match via {
            Some(s)
                if self
                    .socks
                    .get(s)
                    .is_some_and(|x| x.local.is_ipv4() == dest.is_ipv4()) =>
            {
                s
            }
            _ => match self.sources.pick(self.socks, &dest, self.now) {
                Some(s) => s,
                None => {
                    inc(&self.stats.counters.send_errors);
                    return false;
                }
            },
        };
        let buf = self.out.push(sock, dest);
        if write(buf) {
            inc(&self.stats.counters.packets_tx);
            true
        } else {
            self.out.cancel_last();
            false
        }
    }

    /// The local address we would send to `dest` from.
    pub fn local_for(&mut self, dest: &SocketAddr) -> Option<IpAddr> {
        self.sources
            .pick(self.socks, dest, self.now)
            .map(|i| self.socks[i].local.ip())
    }

    /// Publishes an event to `WatchEvents` subscribers (slow ones miss events).
    pub fn event(&mut self, kind: &str, eid_prefix: String, detail: String) {
        if self.events.is_empty() {
            return;
        }
        let ev = api::Event {
            unix_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            kind: kind.to_string(),
            detail,
            eid_prefix,
        };
        self.events.retain(|tx| {
            !matches!(
                tx.try_send(ev.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}
