//! What the data plane reads from an inner IP packet: addresses and the flow
//! (protocol and ports) for weight-based locator selection. Never panics on
//! any input; anything that is not a plausible IPv4/IPv6 header is `None`.

use lisp_msx_proto::Addr;

/// The fields of an inner packet the ITR/ETR decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner {
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

const IPV4_MIN: usize = 20;
const IPV6_HEADER: usize = 40;

fn ports(l4: Option<&[u8]>, proto: u8) -> (u16, u16) {
    match (proto, l4) {
        // TCP, UDP, SCTP, UDP-Lite: ports first.
        (6 | 17 | 132 | 136, Some(b)) if b.len() >= 4 => (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ),
        _ => (0, 0),
    }
}

/// Parses the IP header of `pkt` (a packet as read from the TUN device).
pub fn parse(pkt: &[u8]) -> Option<Inner> {
    match pkt.first()? >> 4 {
        4 => {
            if pkt.len() < IPV4_MIN {
                return None;
            }
            let ihl = usize::from(pkt[0] & 0x0F) * 4;
            if ihl < IPV4_MIN || pkt.len() < ihl {
                return None;
            }
            let proto = pkt[9];
            let src = u32::from_be_bytes([pkt[12], pkt[13], pkt[14], pkt[15]]);
            let dst = u32::from_be_bytes([pkt[16], pkt[17], pkt[18], pkt[19]]);
            // Later fragments carry no ports.
            let frag_offset = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1FFF;
            let (sp, dp) = if frag_offset == 0 {
                ports(pkt.get(ihl..), proto)
            } else {
                (0, 0)
            };
            Some(Inner {
                src: Addr::V4(src),
                dst: Addr::V4(dst),
                proto,
                src_port: sp,
                dst_port: dp,
            })
        }
        6 => {
            if pkt.len() < IPV6_HEADER {
                return None;
            }
            let proto = pkt[6];
            let src: [u8; 16] = pkt[8..24].try_into().ok()?;
            let dst: [u8; 16] = pkt[24..40].try_into().ok()?;
            let (sp, dp) = ports(pkt.get(IPV6_HEADER..), proto);
            Some(Inner {
                src: Addr::V6(u128::from_be_bytes(src)),
                dst: Addr::V6(u128::from_be_bytes(dst)),
                proto,
                src_port: sp,
                dst_port: dp,
            })
        }
        _ => None,
    }
}

/// A hash of the flow (both directions differ, which is fine: each ITR
/// picks for its own direction). FNV-1a: cheap and stable across runs, so
/// one flow always takes the same locator.
pub fn flow_hash(i: &Inner) -> u32 {
    fn addr_bytes(a: &Addr) -> ([u8; 16], usize) {
        match a {
            Addr::V4(v) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v.to_be_bytes());
                (b, 4)
            }
            Addr::V6(v) => (v.to_be_bytes(), 16),
            Addr::None => ([0; 16], 0),
        }
    }
    let (s, sl) = addr_bytes(&i.src);
    let (d, dl) = addr_bytes(&i.dst);
    let [sp0, sp1] = i.src_port.to_be_bytes();
    let [dp0, dp1] = i.dst_port.to_be_bytes();
    s[..sl]
        .iter()
        .chain(&d[..dl])
        .chain(&[i.proto, sp0, sp1, dp0, dp1])
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4_udp() -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = 17;
        p[12..16].copy_from_slice(&[192, 0, 2, 10]);
        p[16..20].copy_from_slice(&[203, 0, 113, 10]);
        p[20..22].copy_from_slice(&5000u16.to_be_bytes());
        p[22..24].copy_from_slice(&53u16.to_be_bytes());
        p
    }

    #[test]
    fn parses_ipv4_udp() {
        let i = parse(&v4_udp()).unwrap();
        assert_eq!(i.dst, Addr::from(std::net::Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!((i.proto, i.src_port, i.dst_port), (17, 5000, 53));
    }

    #[test]
    fn later_fragment_has_no_ports() {
        let mut p = v4_udp();
        p[7] = 10;
        let i = parse(&p).unwrap();
        assert_eq!((i.src_port, i.dst_port), (0, 0));
    }

    #[test]
    fn parses_ipv6_icmp() {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = 58;
        p[24] = 0x20;
        p[25] = 0x01;
        p[26] = 0x0d;
        p[27] = 0xb8;
        let i = parse(&p).unwrap();
        assert_eq!(i.proto, 58);
        let want: std::net::Ipv6Addr = "2001:db8::".parse().unwrap();
        assert_eq!(i.dst, Addr::from(want));
    }

    #[test]
    fn rejects_short_and_bad_headers() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[0x45; 10]).is_none());
        let mut p = v4_udp();
        p[0] = 0x44; // IHL 16 bytes
        assert!(parse(&p).is_none());
        assert!(parse(&[0x60; 39]).is_none());
        assert!(parse(&[0x20; 60]).is_none());
    }

    #[test]
    fn same_flow_same_hash() {
        let a = parse(&v4_udp()).unwrap();
        let mut b = a;
        assert_eq!(flow_hash(&a), flow_hash(&b));
        b.src_port = 5001;
        assert_ne!(flow_hash(&a), flow_hash(&b));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
