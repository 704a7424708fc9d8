//! UDP control-plane sockets with batched I/O: up to [`BATCH`] datagrams per
//! `recvmmsg`/`sendmmsg` system call, into buffers that are reused for the
//! life of the reactor, so a request/reply costs no heap allocation.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, MultiHeaders, SockFlag, SockProtocol,
    SockType, SockaddrIn, SockaddrIn6, SockaddrStorage, sockopt,
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

    /// Has the kernel stamp every received datagram (SO_TIMESTAMPNS, CLOCK_REALTIME).
    pub fn enable_rx_timestamps(&self) -> std::io::Result<()> {
        Ok(socket::setsockopt(
            &self.sock,
            sockopt::ReceiveTimestampns,
            &true,
        )?)
    }
}

/// Receive buffers for one batch.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    /// (source, length) of each datagram of the last batch.
    pub meta: Vec<(SocketAddr, usize)>,
    /// Kernel receive time of each datagram (ns since the Unix epoch, 0 if
    /// none); filled only by [`RecvBatch::with_timestamps`].
    pub stamps: Vec<u64>,
    timestamps: bool,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            headers: MultiHeaders::preallocate(BATCH, None),
            meta: Vec::with_capacity(BATCH),
            stamps: Vec::new(),
            timestamps: false,
        }
    }
}

impl RecvBatch {
    /// Also collects kernel receive timestamps (the socket must have
    /// [`ControlSocket::enable_rx_timestamps`]).
    pub fn with_timestamps() -> RecvBatch {
        RecvBatch {
            headers: MultiHeaders::preallocate(
                BATCH,
                Some(nix::cmsg_space!(nix::sys::time::TimeSpec)),
            ),
            stamps: Vec::with_capacity(BATCH),
            timestamps: true,
            ..RecvBatch::default()
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many.
    pub fn recv(&mut self, s: &ControlSocket) -> std::io::Result<usize> {
        self.meta.clear();
        self.stamps.clear();
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
            if self.timestamps {
                let ts = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|m| match m {
                        ControlMessageOwned::ScmTimestampns(t) => {
                            Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
                        }
                        _ => None,
                    })
                });
                self.stamps.push(ts.unwrap_or(0));
            }
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
    /// Destinations of one sendmmsg, reused: building a BATCH-sized array
    /// per flush copied 8 KB even for one datagram.
    addrs: Vec<Option<SockaddrStorage>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bufs: Vec::new(),
            dests: Vec::new(),
            used: 0,
            headers: MultiHeaders::preallocate(BATCH, None),
            addrs: Vec::with_capacity(BATCH),
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

    /// Sends everything queued (if anything is); datagrams the kernel
    /// refused are added to `failed`.
    pub fn flush_counting(
        &mut self,
        socks: &[ControlSocket],
        failed: &std::sync::atomic::AtomicU64,
    ) {
        if self.is_empty() {
            return;
        }
        let (_, bad) = self.flush(socks);
        if bad > 0 {
            failed.fetch_add(bad as u64, std::sync::atomic::Ordering::Relaxed);
        }
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
        self.addrs.clear();
        self.addrs
            .extend(chunk.iter().map(|&i| Some(to_storage(&self.dests[i].1))));
        match socket::sendmmsg(
            s.sock.as_raw_fd(),
            &mut self.headers,
            slices[..n].iter(),
            &self.addrs,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_with_timestamps() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let a = ControlSocket::bind(lo, 0).unwrap();
        let b = ControlSocket::bind(lo, 0).unwrap();
        b.enable_rx_timestamps().unwrap();
        let socks = [a];
        let mut out = Outbox::default();
        for i in 0..3u8 {
            out.push(0, b.local).extend_from_slice(&[i; 4]);
        }
        assert_eq!(out.flush(&socks), (3, 0));
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            - 1_000_000_000;
        let mut rx = RecvBatch::with_timestamps();
        let mut got = 0;
        for _ in 0..1000 {
            got += rx.recv(&b).unwrap();
            if got == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, 3);
        assert_eq!(rx.meta[0].0, socks[0].local);
        assert!(rx.stamps.iter().all(|&t| t > before));
    }
}
