//! What a role handler gets to act: the clock, the outbox, statistics and
//! the event sink. Handlers never touch sockets directly.

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

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

pub struct Ctx<'a> {
    pub now: Instant,
    pub out: &'a mut Outbox,
    pub socks: &'a [ControlSocket],
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
            _ => match socket_for(self.socks, &dest, None) {
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
    pub fn local_for(&self, dest: &SocketAddr) -> Option<IpAddr> {
        socket_for(self.socks, dest, None).map(|i| self.socks[i].local.ip())
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
