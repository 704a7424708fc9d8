//! UDP control-plane sockets with batched I/O: up to [`BATCH`] datagrams per
//! `recvmmsg`/`sendmmsg` system call, into buffers that are reused for the
//! life of the reactor, so a request/reply costs no heap allocation.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{
    self, AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockProtocol, SockType, SockaddrIn,
    SockaddrIn6, SockaddrStorage, sockopt,
};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Largest control message we accept (jumbo frames; anything larger is truncated and dropped).
pub const MAX_DATAGRAM: usize = 9216;

/// One bound UDP socket on the control port.
pub struct ControlSocket {
    pub sock: UdpSocket,
    pub local: SocketAddr,
}

impl ControlSocket {
    /// Binds `addr:port`, non-blocking; IPv6 sockets are v6-only so `0.0.0.0` and `::` can coexist.
    pub fn bind(addr: IpAddr, port: u16) -> std::io::Result<ControlSocket> {
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket::socket(
            family,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::Udp,
        )?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        // Large buffers absorb bursts (a Map-Request flood, a registration storm).
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &(4 << 20));
        let _ = socket::setsockopt(&fd, sockopt::SndBuf, &(4 << 20));
        let sa = SocketAddr::new(addr, port);
        match sa {
            SocketAddr::V4(v4) => socket::bind(fd.as_raw_fd(), &SockaddrIn::from(v4))?,
            SocketAddr::V6(v6) => {
                socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
                socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?
            }
        }
        let sock = UdpSocket::from(fd);
        let local = sock.local_addr()?;
        Ok(ControlSocket { sock, local })
    }

    pub fn is_ipv4(&self) -> bool {
        self.local.is_ipv4()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Receive buffers for one batch.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    /// (source, length) of each datagram of the last batch.
    pub meta: Vec<(SocketAddr, usize)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            headers: MultiHeaders::preallocate(BATCH, None),
            meta: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Receives up to [`BATCH`] datagrams without blocking; returns how many.
    pub fn recv(&mut self, s: &ControlSocket) -> std::io::Result<usize> {
        self.meta.clear();
        // On the stack: at moderate rates a batch is one datagram, so a heap
        // allocation here would be one per request.
        let mut bufs = self.bufs.iter_mut();
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(
                &mut bufs.next().expect("BATCH buffers")[..],
            )]
        });
        let res = match socket::recvmmsg(
            s.sock.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for msg in res {
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
            let Some(src) = msg.address.as_ref().and_then(to_std) else {
                continue;
            };
            if truncated {
                // Longer than MAX_DATAGRAM: report length 0 so the caller counts it as malformed.
                self.meta.push((src, 0));
            } else {
                self.meta.push((src, msg.bytes));
            }
        }
        Ok(self.meta.len())
    }

    /// The payload of datagram `i` of the last batch.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.meta[i].1]
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }
}

fn to_storage(a: &SocketAddr) -> SockaddrStorage {
    SockaddrStorage::from(*a)
}

/// Datagrams waiting to be sent, per socket; buffers are reused.
pub struct Outbox {
    bufs: Vec<Vec<u8>>,
    dests: Vec<(usize, SocketAddr)>,
    used: usize,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bufs: Vec::new(),
            dests: Vec::new(),
            used: 0,
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl Outbox {
    /// A cleared buffer for a datagram to `dest` through socket `sock`.
    pub fn push(&mut self, sock: usize, dest: SocketAddr) -> &mut Vec<u8> {
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(512));
        }
        self.dests.truncate(self.used);
        self.dests.push((sock, dest));
        let b = &mut self.bufs[self.used];
        b.clear();
        self.used += 1;
        b
    }

    /// Drops the last pushed datagram (its encoding failed).
    pub fn cancel_last(&mut self) {
        if self.used > 0 {
            self.used -= 1;
            self.dests.truncate(self.used);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn len(&self) -> usize {
        self.used
    }

    /// Sends everything queued; returns (sent, failed).
    pub fn flush(&mut self, socks: &[ControlSocket]) -> (usize, usize) {
        let (mut sent, mut failed) = (0, 0);
        for (si, sock) in socks.iter().enumerate() {
            // Up to BATCH datagrams of socket `si` per sendmmsg, gathered in a
            // stack array (no allocation per flush, i.e. per request at low rates).
            let mut chunk = [0usize; BATCH];
            let mut n = 0;
            for i in 0..=self.used {
                if i < self.used && self.dests[i].0 == si {
                    chunk[n] = i;
                    n += 1;
                }
                if n == BATCH || (i == self.used && n > 0) {
                    let (ok, bad) = self.send_chunk(sock, &chunk[..n]);
                    sent += ok;
                    failed += bad;
                    n = 0;
                }
            }
        }
        self.used = 0;
        self.dests.clear();
        (sent, failed)
    }

    /// One sendmmsg of the datagrams `chunk` (indices into the queue); returns (sent, failed).
    fn send_chunk(&mut self, s: &ControlSocket, chunk: &[usize]) -> (usize, usize) {
        let n = chunk.len();
        let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|k| {
            [IoSlice::new(
                chunk.get(k).map_or(&[][..], |&i| &self.bufs[i][..]),
            )]
        });
        let addrs: [Option<SockaddrStorage>; BATCH] =
            std::array::from_fn(|k| chunk.get(k).map(|&i| to_storage(&self.dests[i].1)));
        match socket::sendmmsg(
            s.sock.as_raw_fd(),
            &mut self.headers,
            slices[..n].iter(),
            &addrs[..n],
            [],
            MsgFlags::MSG_DONTWAIT,
        ) {
            // A datagram the kernel refused (e.g. unreachable) is skipped, not retried.
            Ok(res) => {
                let ok = res.count();
                (ok, n - ok)
            }
            Err(_) => (0, n),
        }
    }
}

/// Picks the socket to send to `dest` from: the family must match; prefer the
/// one bound to the same address as `prefer` when given.
pub fn socket_for(
    socks: &[ControlSocket],
    dest: &SocketAddr,
    prefer: Option<IpAddr>,
) -> Option<usize> {
    let same_family = |s: &ControlSocket| s.local.is_ipv4() == dest.is_ipv4();
    if let Some(p) = prefer
        && let Some(i) = socks
            .iter()
            .position(|s| same_family(s) && s.local.ip() == p)
    {
        return Some(i);
    }
    socks.iter().position(same_family)
}
