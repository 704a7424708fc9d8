//! The handful of system calls std does not wrap. This is the only module of the
//! crate allowed to use `unsafe`; every block is a single libc call whose
//! preconditions are spelled out next to it, behind a safe function.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

/// `_IOW('T', 202, int)` from <linux/if_tun.h>.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags member of the
/// union, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens `/dev/net/tun` and attaches it to a new TAP interface `ifname`
/// (IFF_TAP | IFF_NO_PI: every read/write is one Ethernet frame, no extra
/// header). The interface is created in the calling thread's network namespace
/// and disappears when the returned file is closed.
pub fn open_tap(ifname: &str) -> io::Result<File> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{ifname}`"),
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    for (dst, src) in req.name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: TUNSETIFF takes a pointer to a `struct ifreq`; `req` has its
    // layout (16-byte NUL-terminated name, flags, padding to 40 bytes), is
    // exclusively borrowed and outlives the call, and the fd is open.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            TUNSETIFF as _,
            &mut req as *mut IfReqFlags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Moves the calling thread (only this thread) into the network namespace whose
/// handle is at `path` (e.g. `/run/netns/NAME`).
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let ns = File::open(path)?;
    // SAFETY: setns reads an open fd and a flag; it touches no memory of ours.
    // CLONE_NEWNET changes the namespace of the calling thread only.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `file` is readable, at most `timeout`. `Ok(false)` on timeout or
/// when interrupted by a signal.
pub fn wait_readable(file: &File, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid, exclusively borrowed pollfd, count 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0 && pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
}

/// Lowers the calling thread's timer slack (default 50 µs) so that timed waits
/// wake up close to their deadline. Best effort.
pub fn set_timer_slack(slack: Duration) {
    let ns = slack.as_nanos().clamp(1, u32::MAX as u128) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument; no pointers.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

/// Sends `signal` to process `pid`.
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    if pid == 0 || pid > i32::MAX as u32 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad pid"));
    }
    // SAFETY: kill takes two integers; a positive pid addresses one process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// Tries to take an exclusive advisory lock on `file` without blocking.
/// `Ok(false)` when another open file description holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock takes an open fd and flags; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// An ICMP "ping" datagram socket (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6): the
/// kernel fills in the identifier and checksum and hands back echo replies
/// without the IP header. Needs the caller's group in
/// `net.ipv4.ping_group_range` (the lab sets it in every node).
pub fn icmp_socket(v6: bool) -> io::Result<std::net::UdpSocket> {
    use std::os::fd::FromRawFd;
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: socket takes three integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(), is open, and nothing else
    // owns it; the UdpSocket takes sole ownership and closes it on drop. A
    // datagram socket supports every call UdpSocket makes (sendto, recvfrom,
    // SO_RCVTIMEO).
    Ok(unsafe { std::net::UdpSocket::from_raw_fd(fd) })
}

/// Puts the calling thread (only this thread) in the SCHED_FIFO real-time class
/// at `priority` (1..=99), so that it runs as soon as it is woken even when the
/// machine is busy with normal tasks. Fails without CAP_SYS_NICE.
pub fn set_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // means the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
