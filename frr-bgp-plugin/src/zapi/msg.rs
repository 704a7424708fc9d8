//! The zebra API (ZAPI) as FRR 8.2 to 8.5 speak it: header version 6, the
//! command numbering of that series, and the few messages this client
//! needs. Checked against FRR's `lib/zclient.h`, `lib/zclient.c` and
//! `zebra/zapi_msg.c` and against frames captured from FRR 8.4.4 zebra
//! (see the tests); differences to other series are listed in the README.
//!
//! ```text
//! header (10 octets): length(2) marker(1)=254 version(1)=6 vrf_id(4) command(2)
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bgp::prefix::Prefix;

pub const HEADER_LEN: usize = 10;
pub const MARKER: u8 = 254;
pub const VERSION: u8 = 6;
/// zebra's largest message (ZEBRA_MAX_PACKET_SIZ).
pub const MAX_LEN: usize = 16384;
pub const VRF_DEFAULT: u32 = 0;

/// Command codes of the FRR 8.2-8.5 numbering (`zebra_message_types_t`).
/// 8.2 removed the three IMPORT_* commands, which shifted everything from
/// BFD_DEST_REGISTER on; the codes below 26 are the same from 7.2 to 8.5.
pub mod cmd {
    pub const INTERFACE_ADD: u16 = 0;
    pub const INTERFACE_DELETE: u16 = 1;
    pub const INTERFACE_ADDRESS_ADD: u16 = 2;
    pub const INTERFACE_ADDRESS_DELETE: u16 = 3;
    pub const INTERFACE_UP: u16 = 4;
    pub const INTERFACE_DOWN: u16 = 5;
    pub const ROUTER_ID_ADD: u16 = 15;
    pub const ROUTER_ID_DELETE: u16 = 16;
    pub const ROUTER_ID_UPDATE: u16 = 17;
    pub const HELLO: u16 = 18;
    pub const CAPABILITIES: u16 = 19;
    pub const NEXTHOP_REGISTER: u16 = 20;
    pub const NEXTHOP_UNREGISTER: u16 = 21;
    pub const NEXTHOP_UPDATE: u16 = 22;
    pub const VRF_ADD: u16 = 33;
    pub const VRF_DELETE: u16 = 34;
}

/// Linux address families as zebra puts them on the wire.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// SAFI_UNICAST in zebra's numbering (lib/zebra.h).
pub const ZEBRA_SAFI_UNICAST: u16 = 1;
/// ZAPI_MESSAGE_SRTE: an SR-TE color follows the prefixes of a NEXTHOP_UPDATE.
const ZAPI_MESSAGE_SRTE: u32 = 0x0200;
/// Interface name field: INTERFACE_NAMSIZ, which is IFNAMSIZ (16) on Linux
/// in FRR 8.x (gobgp's zclient assumes 20; frames from 8.4.4 say 16).
pub const INTERFACE_NAMSIZ: usize = 16;
/// Interface flags (Linux IFF_*).
pub const IFF_UP: u64 = 0x1;
pub const IFF_RUNNING: u64 = 0x40;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZapiError {
    #[error(
        "zebra speaks ZAPI version {version} (header marker {marker}); frr-bgp-plugin speaks ZAPI version 6 with the command numbering of FRR 8.2 to 8.5 (tested with 8.4.4)"
    )]
    UnsupportedVersion { marker: u8, version: u8 },
    #[error("ZAPI header: length {0} is invalid")]
    BadLength(u16),
    #[error("ZAPI {what}: truncated ({have} of {need} octets)")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("ZAPI {what}: address family {family} is neither AF_INET nor AF_INET6")]
    BadFamily { what: &'static str, family: u16 },
    #[error("ZAPI {what}: prefix length {len} is invalid")]
    BadPrefixLength { what: &'static str, len: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub length: u16,
    pub vrf_id: u32,
    pub command: u16,
}

/// Frames one message.
pub fn frame(command: u16, vrf_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    out.push(MARKER);
    out.push(VERSION);
    out.extend_from_slice(&vrf_id.to_be_bytes());
    out.extend_from_slice(&command.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits one message off a stream buffer: `Ok(Some((header, total length)))`
/// when complete, `Ok(None)` when more octets are needed. An unknown marker
/// or version is an error naming what zebra speaks.
pub fn split_frame(buf: &[u8]) -> Result<Option<(Header, usize)>, ZapiError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let (length, marker, version) = (u16::from_be_bytes([buf[0], buf[1]]), buf[2], buf[3]);
    if marker != MARKER || version != VERSION {
        return Err(ZapiError::UnsupportedVersion { marker, version });
    }
    if usize::from(length) < HEADER_LEN || usize::from(length) > MAX_LEN {
        return Err(ZapiError::BadLength(length));
    }
    if buf.len() < HEADER_LEN || buf.len() < usize::from(length) {
        return Ok(None);
    }
    Ok(Some((
        Header {
            length,
            vrf_id: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            command: u16::from_be_bytes([buf[8], buf[9]]),
        },
        usize::from(length),
    )))
}

/// HELLO (lib/zclient.c `zclient_send_hello`, FRR 7.4 to 8.5): route type,
/// instance, session id, receive-notify, synchronous. Route type 0
/// (ZEBRA_ROUTE_SYSTEM): we install no routes, so zebra must not take us
/// for a routing protocol (graceful restart bookkeeping, `show zebra client`).
pub fn hello(route_type: u8, session_id: u32) -> Vec<u8> {
    let mut b = vec![route_type];
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&session_id.to_be_bytes());
    b.push(0); // receive_notify
    b.push(0); // synchronous
    frame(cmd::HELLO, VRF_DEFAULT, &b)
}

/// ROUTER_ID_ADD for an address family (AFI 1: IPv4, 2: IPv6).
pub fn router_id_add(afi: u16) -> Vec<u8> {
    frame(cmd::ROUTER_ID_ADD, VRF_DEFAULT, &afi.to_be_bytes())
}

/// INTERFACE_ADD from a client: "send me every interface of this VRF, and
/// changes" (lib/zclient.c `zclient_send_reg_requests`).
pub fn interface_request() -> Vec<u8> {
    frame(cmd::INTERFACE_ADD, VRF_DEFAULT, &[])
}

/// NEXTHOP_REGISTER / NEXTHOP_UNREGISTER for host routes to `addrs` (FRR
/// 8.2+: connected, resolve-via-default, SAFI, family, length, address).
pub fn nexthop(register: bool, addrs: &[IpAddr], resolve_via_default: bool) -> Vec<u8> {
    let mut b = Vec::new();
    for a in addrs {
        b.push(0); // not "connected only"
        b.push(u8::from(resolve_via_default));
        b.extend_from_slice(&ZEBRA_SAFI_UNICAST.to_be_bytes());
        match a {
            IpAddr::V4(v4) => {
                b.extend_from_slice(&AF_INET.to_be_bytes());
                b.push(32);
                b.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                b.extend_from_slice(&AF_INET6.to_be_bytes());
                b.push(128);
                b.extend_from_slice(&v6.octets());
            }
        }
    }
    let c = if register {
        cmd::NEXTHOP_REGISTER
    } else {
        cmd::NEXTHOP_UNREGISTER
    };
    frame(c, VRF_DEFAULT, &b)
}

/// Bounds-checked reading of a body.
struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ZapiError> {
        if self.b.len() < n {
            return Err(ZapiError::Truncated {
                what: self.what,
                need: n,
                have: self.b.len(),
            });
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, ZapiError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ZapiError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, ZapiError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, ZapiError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn addr(&mut self, family: u16) -> Result<IpAddr, ZapiError> {
        Ok(match family {
            AF_INET => {
                let s = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
            }
            AF_INET6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            f => {
                return Err(ZapiError::BadFamily {
                    what: self.what,
                    family: f,
                });
            }
        })
    }
    /// family(2) length(1) address, as NEXTHOP_UPDATE puts prefixes.
    fn prefix_w(&mut self) -> Result<Prefix, ZapiError> {
        let family = self.u16()?;
        let len = self.u8()?;
        let addr = self.addr(family)?;
        Prefix::new(addr, len).map_err(|_| ZapiError::BadPrefixLength {
            what: self.what,
            len,
        })
    }
}

/// What zebra told us, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZebraMsg {
    Capabilities { mpls: bool, multipath: u32 },
    RouterId(Option<IpAddr>),
    Interface(InterfaceMsg),
    Address(AddressMsg),
    Nexthop(NexthopUpdate),
    VrfAdd { vrf_id: u32 },
    Other { command: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceMsg {
    /// INTERFACE_ADD, _DELETE, _UP or _DOWN.
    pub command: u16,
    pub name: String,
    pub ifindex: u32,
    pub flags: u64,
}

impl InterfaceMsg {
    pub fn is_up(&self) -> bool {
        self.command != cmd::INTERFACE_DELETE
            && self.command != cmd::INTERFACE_DOWN
            && self.flags & IFF_UP != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressMsg {
    pub added: bool,
    pub ifindex: u32,
    pub flags: u8,
    /// The interface address with its prefix length (host bits kept).
    pub addr: IpAddr,
    pub len: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexthopUpdate {
    /// What we registered.
    pub registered: Prefix,
    /// The route zebra resolved it through (0.0.0.0/0 or ::/0 when none).
    pub resolved_by: Prefix,
    pub route_type: u8,
    pub distance: u8,
    pub metric: u32,
    /// Active nexthops of that route: 0 means unreachable.
    pub nexthops: u8,
}

/// Decodes a message zebra sent (header already split off by the caller).
pub fn decode(header: &Header, body: &[u8]) -> Result<ZebraMsg, ZapiError> {
    Ok(match header.command {
        cmd::CAPABILITIES => {
            let mut r = Rd {
                b: body,
                what: "CAPABILITIES",
            };
            let _backend = r.u32()?;
            let mpls = r.u8()? != 0;
            let multipath = r.u32()?;
            ZebraMsg::Capabilities { mpls, multipath }
        }
        cmd::ROUTER_ID_UPDATE => {
            let mut r = Rd {
                b: body,
                what: "ROUTER_ID_UPDATE",
            };
            let family = u16::from(r.u8()?);
            let addr = r.addr(family)?;
            let _len = r.u8()?;
            ZebraMsg::RouterId((!addr.is_unspecified()).then_some(addr))
        }
        cmd::INTERFACE_ADD | cmd::INTERFACE_DELETE | cmd::INTERFACE_UP | cmd::INTERFACE_DOWN => {
            let mut r = Rd {
                b: body,
                what: "INTERFACE",
            };
            let raw = r.take(INTERFACE_NAMSIZ)?;
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            let name = String::from_utf8_lossy(&raw[..end]).into_owned();
            let ifindex = r.u32()?;
            let _status = r.u8()?;
            let flags = r.u64()?;
            ZebraMsg::Interface(InterfaceMsg {
                command: header.command,
                name,
                ifindex,
                flags,
            })
        }
        cmd::INTERFACE_ADDRESS_ADD | cmd::INTERFACE_ADDRESS_DELETE => {
            let mut r = Rd {
                b: body,
                what: "INTERFACE_ADDRESS",
            };
            let ifindex = r.u32()?;
            let flags = r.u8()?;
            let family = u16::from(r.u8()?);
            let addr = r.addr(family)?;
            let len = r.u8()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(ZapiError::BadPrefixLength {
                    what: "INTERFACE_ADDRESS",
                    len,
                });
            }
            ZebraMsg::Address(AddressMsg {
                added: header.command == cmd::INTERFACE_ADDRESS_ADD,
                ifindex,
                flags,
                addr,
                len,
            })
        }
        cmd::NEXTHOP_UPDATE => {
            let mut r = Rd {
                b: body,
                what: "NEXTHOP_UPDATE",
            };
            let message = r.u32()?;
            let _safi = r.u16()?;
            let registered = r.prefix_w()?;
            let resolved_by = r.prefix_w()?;
            if message & ZAPI_MESSAGE_SRTE != 0 {
                let _color = r.u32()?;
            }
            let route_type = r.u8()?;
            let _instance = r.u16()?;
            let distance = r.u8()?;
            let metric = r.u32()?;
            let nexthops = r.u8()?;
            ZebraMsg::Nexthop(NexthopUpdate {
                registered,
                resolved_by,
                route_type,
                distance,
                metric,
                nexthops,
            })
        }
        cmd::VRF_ADD => ZebraMsg::VrfAdd {
            vrf_id: header.vrf_id,
        },
        c => ZebraMsg::Other { command: c },
    })
}

/// FRR route type names (lib/route_types.txt order, FRR 8.x) for logs.
pub fn route_type_name(t: u8) -> &'static str {
    const NAMES: [&str; 31] = [
        "system",
        "kernel",
        "connected",
        "static",
        "rip",
        "ripng",
        "ospf",
        "ospf6",
        "isis",
        "bgp",
        "pim",
        "eigrp",
        "nhrp",
        "hsls",
        "olsr",
        "table",
        "ldp",
        "vnc",
        "vnc-direct",
        "vnc-rn",
        "bgp-direct",
        "bgp-direct-to-nve",
        "babel",
        "sharp",
        "pbr",
        "bfd",
        "openfabric",
        "vrrp",
        "nhg",
        "srte",
        "wildcard",
    ];
    NAMES.get(usize::from(t)).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(b: &[u8]) -> (Header, &[u8]) {
        let (h, n) = split_frame(b).unwrap().unwrap();
        assert_eq!(n, b.len());
        (h, &b[HEADER_LEN..n])
    }

    #[test]
    fn hello_known_answer() {
        // length 19, marker 254, version 6, vrf 0, command 18; type 0, instance 0, session 0, notify 0, sync 0.
        assert_eq!(
            hello(0, 0),
            [0, 19, 254, 6, 0, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(router_id_add(1), [0, 12, 254, 6, 0, 0, 0, 0, 0, 15, 0, 1]);
        assert_eq!(interface_request(), [0, 10, 254, 6, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn nexthop_register_known_answer() {
        let b = nexthop(true, &["198.51.100.6".parse().unwrap()], false);
        assert_eq!(
            b,
            [
                0, 21, 254, 6, 0, 0, 0, 0, 0, 20, 0, 0, 0, 1, 0, 2, 32, 198, 51, 100, 6
            ]
        );
        let b = nexthop(
            false,
            &["2001:db8::1".parse().unwrap(), "192.0.2.1".parse().unwrap()],
            true,
        );
        let (h, body) = split(&b);
        assert_eq!(h.command, cmd::NEXTHOP_UNREGISTER);
        assert_eq!(body.len(), (7 + 16) + (7 + 4));
        assert_eq!(&body[..7], &[0, 1, 0, 1, 0, 10, 128]);
    }

    #[test]
    fn framing() {
        let mut b = hello(0, 0);
        b.extend(router_id_add(1));
        assert_eq!(split_frame(&b[..3]).unwrap(), None);
        assert_eq!(split_frame(&b[..12]).unwrap(), None);
        let (h, n) = split_frame(&b).unwrap().unwrap();
        assert_eq!((h.command, n), (cmd::HELLO, 19));
        let (h, _) = split_frame(&b[n..]).unwrap().unwrap();
        assert_eq!(h.command, cmd::ROUTER_ID_ADD);
    }

    #[test]
    fn unknown_versions_are_named() {
        let mut b = hello(0, 0);
        b[3] = 5;
        let e = split_frame(&b).unwrap_err();
        assert_eq!(
            e,
            ZapiError::UnsupportedVersion {
                marker: 254,
                version: 5
            }
        );
        assert!(e.to_string().contains("ZAPI version 5"), "{e}");
        b[2] = 255;
        b[3] = 2;
        assert!(matches!(
            split_frame(&b),
            Err(ZapiError::UnsupportedVersion {
                marker: 255,
                version: 2
            })
        ));
        let mut b = hello(0, 0);
        b[0..2].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(split_frame(&b), Err(ZapiError::BadLength(5)));
    }

    /// Frames FRR 8.4.4 zebra (Debian 12) sent to this client in the lab,
    /// logged with FRR_BGP_PLUGIN_ZAPI_TRACE=1 (README, "Checking ZAPI").
    mod captured {
        fn hex(s: &str) -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        }
        pub fn capabilities() -> Vec<u8> {
            hex("0014fe0600000000001300000000000000010000")
        }
        pub fn router_id_update() -> Vec<u8> {
            hex("0010fe0600000000001102c000020220")
        }
        pub fn interface_add_lo() -> Vec<u8> {
            hex(
                "004afe060000000000006c6f00000000000000000000000000000000000105000000000001004900020000000000000000000100000001000000000000000000000000001e0000000000",
            )
        }
        pub fn interface_add_veth() -> Vec<u8> {
            hex(
                "0050fe0600000000000062642d723261000000000000000000000000000205000000000001104300020000000000002710000005dc000005dc0000000000000002000000010000000672346febe47a00",
            )
        }
        pub fn address_add_v4() -> Vec<u8> {
            hex("0019fe06000000000002000000020002c63364021e00000000")
        }
        pub fn address_add_v6() -> Vec<u8> {
            hex(
                "0031fe0600000000000200000002000a20010db8000a000000000000000000024000000000000000000000000000000000",
            )
        }
        pub fn nexthop_update_connected() -> Vec<u8> {
            hex(
                "0031fe06000000000016000000000001000220c633640600021ec633640402000000000000000100000000010000000003",
            )
        }
        /// After the link towards the contact went down.
        pub fn nexthop_update_unreachable() -> Vec<u8> {
            hex("0027fe06000000000016000000000001000220c633640600020000000000000000000000000000")
        }
        pub fn vrf_add() -> Vec<u8> {
            hex(
                "0056fe06000000000021fe00000000000000000000000000000000000000000000000000000000000000000000000000000064656661756c740000000000000000000000000000000000000000000000000000000000",
            )
        }
    }

    fn decoded(frame: &[u8]) -> ZebraMsg {
        let (h, body) = split(frame);
        decode(&h, body).unwrap()
    }

    #[test]
    fn captured_frames_of_frr_8_4() {
        assert_eq!(
            decoded(&captured::capabilities()),
            ZebraMsg::Capabilities {
                mpls: false,
                multipath: 256
            }
        ); // Debian builds --enable-multipath=256
        assert_eq!(
            decoded(&captured::router_id_update()),
            ZebraMsg::RouterId(Some("192.0.2.2".parse().unwrap()))
        );
        assert_eq!(
            decoded(&captured::vrf_add()),
            ZebraMsg::VrfAdd { vrf_id: 0 }
        );
        let ZebraMsg::Interface(i) = decoded(&captured::interface_add_veth()) else {
            panic!()
        };
        assert_eq!((i.name.as_str(), i.ifindex, i.is_up()), ("bd-r2a", 2, true));
        let ZebraMsg::Address(a) = decoded(&captured::address_add_v6()) else {
            panic!()
        };
        assert_eq!(
            (a.addr.to_string().as_str(), a.len, a.ifindex),
            ("2001:db8:a::2", 64, 2)
        );
        let ZebraMsg::Nexthop(u) = decoded(&captured::nexthop_update_connected()) else {
            panic!()
        };
        assert_eq!(
            (
                u.registered.to_string().as_str(),
                u.resolved_by.to_string().as_str(),
                u.nexthops
            ),
            ("198.51.100.6/32", "198.51.100.4/30", 1)
        );
        assert_eq!(route_type_name(u.route_type), "connected");
        let ZebraMsg::Nexthop(u) = decoded(&captured::nexthop_update_unreachable()) else {
            panic!()
        };
        assert_eq!(
            (u.registered.to_string().as_str(), u.nexthops),
            ("198.51.100.6/32", 0)
        );
    }

    #[test]
    fn interface_and_address_messages() {
        let b = captured::interface_add_lo();
        let (h, body) = split(&b);
        let ZebraMsg::Interface(i) = decode(&h, body).unwrap() else {
            panic!()
        };
        assert_eq!((i.name.as_str(), i.ifindex), ("lo", 1));
        assert!(i.is_up());
        let b = captured::address_add_v4();
        let (h, body) = split(&b);
        assert_eq!(
            decode(&h, body).unwrap(),
            ZebraMsg::Address(AddressMsg {
                added: true,
                ifindex: 2,
                flags: 0,
                addr: "198.51.100.2".parse().unwrap(),
                len: 30
            })
        );
    }

    fn nexthop_update(nexthops: u8, srte: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(if srte { ZAPI_MESSAGE_SRTE } else { 0 }).to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&[0, 2, 32, 198, 51, 100, 6]);
        b.extend_from_slice(&[0, 2, 30, 198, 51, 100, 4]);
        if srte {
            b.extend_from_slice(&7u32.to_be_bytes());
        }
        b.push(2); // connected
        b.extend_from_slice(&[0, 0]);
        b.push(0);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.push(nexthops);
        if nexthops > 0 {
            // vrf(4) type(1) flags(1) ifindex(4): a NEXTHOP_TYPE_IFINDEX nexthop
            b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 3]);
        }
        frame(cmd::NEXTHOP_UPDATE, 0, &b)
    }

    #[test]
    fn nexthop_update_reachable_and_not() {
        for srte in [false, true] {
            let b = nexthop_update(1, srte);
            let (h, body) = split(&b);
            let ZebraMsg::Nexthop(u) = decode(&h, body).unwrap() else {
                panic!()
            };
            assert_eq!(u.registered.to_string(), "198.51.100.6/32");
            assert_eq!(u.resolved_by.to_string(), "198.51.100.4/30");
            assert_eq!(route_type_name(u.route_type), "connected");
            assert_eq!(u.nexthops, 1);
        }
        let b = nexthop_update(0, false);
        let (h, body) = split(&b);
        let ZebraMsg::Nexthop(u) = decode(&h, body).unwrap() else {
            panic!()
        };
        assert_eq!(u.nexthops, 0);
    }

    #[test]
    fn truncated_and_bad_bodies_are_typed_errors() {
        for b in [
            nexthop_update(1, true),
            captured::interface_add_lo(),
            router_id_add(1),
        ] {
            let (h, body) = split(&b);
            for n in 0..body.len() {
                let _ = decode(&h, &body[..n]);
            }
        }
        let h = Header {
            length: 0,
            vrf_id: 0,
            command: cmd::NEXTHOP_UPDATE,
        };
        assert!(matches!(
            decode(&h, &[0, 0, 0, 0, 0, 1, 0, 7, 32]),
            Err(ZapiError::BadFamily { family: 7, .. })
        ));
        assert!(matches!(
            decode(&h, &[0, 0, 0, 0, 0, 1, 0, 2, 33, 1, 2, 3, 4]),
            Err(ZapiError::BadPrefixLength { len: 33, .. })
        ));
        assert!(matches!(
            decode(&h, &[0, 0]),
            Err(ZapiError::Truncated { .. })
        ));
        let rid = Header {
            command: cmd::ROUTER_ID_UPDATE,
            ..h
        };
        assert_eq!(
            decode(&rid, &[2, 192, 0, 2, 2, 32]).unwrap(),
            ZebraMsg::RouterId(Some("192.0.2.2".parse().unwrap()))
        );
        assert_eq!(
            decode(&rid, &[2, 0, 0, 0, 0, 32]).unwrap(),
            ZebraMsg::RouterId(None)
        );
    }
}
