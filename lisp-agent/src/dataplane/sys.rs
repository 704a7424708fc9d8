//! The TUN device: the system calls std does not wrap. This is the only
//! module of the crate allowed to use `unsafe`; every block is one libc call
//! whose preconditions are spelled out next to it, behind a safe function.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `_IOW('T', 202, int)` from <linux/if_tun.h>.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` with the flags member of its union (TUNSETIFF,
/// SIOCGIFFLAGS/SIOCSIFFLAGS), padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with the int member of its union (SIOCSIFMTU).
#[repr(C)]
struct IfReqInt {
    name: [libc::c_char; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

fn ifname_bytes(ifname: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains(['\0', '/', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{ifname}`"),
        ));
    }
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, src) in name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(name)
}

/// Opens `/dev/net/tun` (non-blocking) and attaches it to the TUN interface
/// `ifname` (IFF_TUN | IFF_NO_PI: every read/write is one IP packet with no
/// extra header), creating it if needed. The interface disappears when the
/// returned file is closed (it is not persistent).
pub fn open_tun(ifname: &str) -> io::Result<File> {
    let name = ifname_bytes(ifname)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let mut req = IfReqFlags {
        name,
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
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

/// A datagram socket to issue interface ioctls on.
fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes three integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(), is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the MTU of `ifname` and brings it up (IFF_UP).
pub fn set_up_with_mtu(ifname: &str, mtu: u32) -> io::Result<()> {
    let name = ifname_bytes(ifname)?;
    let sock = ioctl_socket()?;
    let mut m = IfReqInt {
        name,
        value: mtu as libc::c_int,
        _pad: [0; 20],
    };
    // SAFETY: SIOCSIFMTU reads a `struct ifreq` whose union holds an int;
    // `m` has that layout, outlives the call and the socket is open.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFMTU as _,
            &mut m as *mut IfReqInt,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut f = IfReqFlags {
        name,
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: SIOCGIFFLAGS fills the flags member of a `struct ifreq`; `f` has
    // that layout and is exclusively borrowed for the call.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as _,
            &mut f as *mut IfReqFlags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    f.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS reads the same structure.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS as _,
            &mut f as *mut IfReqFlags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
