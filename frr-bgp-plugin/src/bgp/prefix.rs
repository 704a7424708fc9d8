//! IP prefixes as BGP carries them (RFC 4271 §4.3: length octet, then the
//! fewest octets holding the prefix).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Address family identifiers (IANA AFI) and the one SAFI we speak.
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

/// A unicast address family this speaker can negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => AFI_IPV4,
            Family::Ipv6Unicast => AFI_IPV6,
        }
    }

    pub fn safi(self) -> u8 {
        SAFI_UNICAST
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    fn max_len(self) -> u8 {
        match self {
            Family::Ipv4Unicast => 32,
            Family::Ipv6Unicast => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4Unicast => "ipv4 unicast",
            Family::Ipv6Unicast => "ipv6 unicast",
        })
    }
}

/// An IPv4 or IPv6 prefix with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix could not be built or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length {len} is longer than {max}")]
    TooLong { len: u8, max: u8 },
    #[error("NLRI truncated: prefix /{len} needs {needed} octets, {available} left")]
    Truncated {
        len: u8,
        needed: usize,
        available: usize,
    },
    #[error("'{0}' is not a prefix (want ADDRESS/LENGTH)")]
    Syntax(String),
}

impl Prefix {
    /// Builds a prefix; host bits are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let family = family_of(addr);
        if len > family.max_len() {
            return Err(PrefixError::TooLong {
                len,
                max: family.max_len(),
            });
        }
        Ok(Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the zero-length default prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn family(&self) -> Family {
        family_of(self.addr)
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        family_of(ip) == self.family() && mask(ip, self.len) == self.addr
    }

    /// Octets of the prefix on the wire, without the length octet.
    pub fn wire_octets(&self) -> usize {
        usize::from(self.len).div_ceil(8)
    }

    /// Appends the NLRI encoding: length, then the significant octets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let n = self.wire_octets();
        match self.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
        }
    }

    /// Reads one NLRI prefix of `family` from the front of `buf`; returns it
    /// and the octets used. Trailing bits beyond the length are ignored
    /// (RFC 4271 §4.3), so the result is normalized.
    pub fn decode(buf: &[u8], family: Family) -> Result<(Prefix, usize), PrefixError> {
        let Some(&len) = buf.first() else {
            return Err(PrefixError::Truncated {
                len: 0,
                needed: 1,
                available: 0,
            });
        };
        if len > family.max_len() {
            return Err(PrefixError::TooLong {
                len,
                max: family.max_len(),
            });
        }
        let n = usize::from(len).div_ceil(8);
        let Some(bytes) = buf.get(1..1 + n) else {
            return Err(PrefixError::Truncated {
                len,
                needed: n,
                available: buf.len() - 1,
            });
        };
        let addr = match family {
            Family::Ipv4Unicast => {
                let mut o = [0u8; 4];
                o[..n].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(o))
            }
            Family::Ipv6Unicast => {
                let mut o = [0u8; 16];
                o[..n].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        };
        Ok((
            Prefix {
                addr: mask(addr, len),
                len,
            },
            1 + n,
        ))
    }

    /// Reads a whole NLRI field (a sequence of prefixes).
    pub fn decode_all(mut buf: &[u8], family: Family) -> Result<Vec<Prefix>, PrefixError> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (p, used) = Prefix::decode(buf, family)?;
            out.push(p);
            buf = &buf[used..];
        }
        Ok(out)
    }
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4Unicast,
        IpAddr::V6(_) => Family::Ipv6Unicast,
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (a, l) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = a.parse().map_err(|_| syntax())?;
        let len: u8 = l.parse().map_err(|_| syntax())?;
        Prefix::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_normalization() {
        let p: Prefix = "203.0.113.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "203.0.113.0/24");
        let mut b = Vec::new();
        p.encode(&mut b);
        assert_eq!(b, [24, 203, 0, 113]);
        assert_eq!(Prefix::decode(&b, Family::Ipv4Unicast).unwrap(), (p, 4));
        let p6: Prefix = "2001:db8:a::/48".parse().unwrap();
        let mut b = Vec::new();
        p6.encode(&mut b);
        assert_eq!(b, [48, 0x20, 0x01, 0x0d, 0xb8, 0, 0x0a]);
        assert_eq!(Prefix::decode(&b, Family::Ipv6Unicast).unwrap().0, p6);
        // Trailing bits past the length are ignored.
        let (q, _) = Prefix::decode(&[25, 192, 0, 2, 0xFF], Family::Ipv4Unicast).unwrap();
        assert_eq!(q.to_string(), "192.0.2.128/25");
        let (z, used) = Prefix::decode(&[0], Family::Ipv4Unicast).unwrap();
        assert!(z.is_empty() && used == 1);
    }

    #[test]
    fn malformed_nlri_is_a_typed_error() {
        assert!(matches!(
            Prefix::decode(&[33, 1, 2, 3, 4, 5], Family::Ipv4Unicast),
            Err(PrefixError::TooLong { len: 33, max: 32 })
        ));
        assert!(matches!(
            Prefix::decode(&[24, 1, 2], Family::Ipv4Unicast),
            Err(PrefixError::Truncated { needed: 3, .. })
        ));
        assert!(Prefix::decode(&[], Family::Ipv6Unicast).is_err());
        assert!(Prefix::decode_all(&[8, 10, 16], Family::Ipv4Unicast).is_err());
        assert!("192.0.2.0".parse::<Prefix>().is_err());
        assert!("192.0.2.0/33".parse::<Prefix>().is_err());
        assert!("2001:db8::/129".parse::<Prefix>().is_err());
    }

    #[test]
    fn contains() {
        let p: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(p.contains("2001:db8::1".parse().unwrap()));
        assert!(!p.contains("2001:db9::1".parse().unwrap()));
        assert!(!p.contains("192.0.2.1".parse().unwrap()));
    }
}
