//! Addresses with a prefix length, and the rule every lab address obeys: only the
//! documentation ranges (RFC 5737, RFC 3849) and loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The ranges a lab may use, as text for error messages.
pub const ALLOWED_RANGES: &str =
    "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 and loopback";

/// An address with a prefix length, `198.51.100.1/30` or `2001:db8::1/64`.
/// Without `/len` it is a host address (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length /{len} is longer than {max}"));
        }
        Ok(Cidr { addr, len })
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The network (host bits cleared), as FRR prints route keys.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.len)
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.len)
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Cidr {
            addr,
            len: self.len,
        }
    }

    /// Whether the whole prefix lies inside the documentation ranges or loopback.
    pub fn is_allowed(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => {
                let o = a.octets();
                let doc = (o[0] == 192 && o[1] == 0 && o[2] == 2)
                    || (o[0] == 198 && o[1] == 51 && o[2] == 100)
                    || (o[0] == 203 && o[1] == 0 && o[2] == 113);
                (doc && self.len >= 24) || (o[0] == 127 && self.len >= 8)
            }
            IpAddr::V6(a) => {
                let s = a.segments();
                (s[0] == 0x2001 && s[1] == 0x0db8 && self.len >= 32)
                    || (a == Ipv6Addr::LOCALHOST && self.len == 128)
            }
        }
    }

    /// `Ok` when allowed, otherwise the reason, for error messages.
    pub fn check_allowed(&self) -> Result<(), String> {
        if self.is_allowed() {
            Ok(())
        } else {
            Err(format!("{self} is outside {ALLOWED_RANGES}"))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address (expected e.g. 198.51.100.1/30)"))?;
        let len = match l {
            Some(l) => l
                .parse::<u8>()
                .map_err(|_| format!("`{s}` has a bad prefix length"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, len).map_err(|e| format!("`{s}`: {e}"))
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// Whether a single address (a gateway, a peer) is allowed.
pub fn addr_allowed(a: IpAddr) -> bool {
    let len = if a.is_ipv4() { 32 } else { 128 };
    Cidr { addr: a, len }.is_allowed()
}

/// Scans free text (an FRR config, a shell command, a daemon's config) for IP
/// address literals outside the allowed ranges. Returns the offending tokens with
/// their line numbers. Tolerated: unspecified addresses and /0 prefixes, link-local
/// and link-scope multicast (OSPF's 224.0.0.5/6, ff02::), contiguous netmasks, and
/// identifiers that merely look like addresses (after `area`, `router-id`).
pub fn scan_text(text: &str) -> Vec<(usize, String)> {
    let mut bad = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split(['!', '#']).next().unwrap_or("");
        let mut prev = "";
        for raw in line.split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '"' | '\'' | '=' | '[' | ']' | '(' | ')')
        }) {
            let tok = raw.trim_end_matches('.');
            if !tok.is_empty() && !token_allowed(tok, prev) {
                bad.push((lineno + 1, tok.to_string()));
            }
            if !raw.is_empty() {
                prev = raw;
            }
        }
    }
    bad
}

fn token_allowed(tok: &str, prev: &str) -> bool {
    // A token with ':' between address and port (`198.51.100.1:4342`) is checked
    // on its address part.
    let cidr = match tok.parse::<Cidr>() {
        Ok(c) => c,
        Err(_) => match tok.rsplit_once(':') {
            Some((a, p)) if p.chars().all(|c| c.is_ascii_digit()) && a.contains('.') => {
                match a.parse::<Cidr>() {
                    Ok(c) => c,
                    Err(_) => return true,
                }
            }
            _ => return true,
        },
    };
    if cidr.is_allowed() || cidr.len == 0 || cidr.addr.is_unspecified() {
        return true;
    }
    if matches!(prev, "area" | "router-id" | "originator-id" | "cluster-id") {
        return true;
    }
    match cidr.addr {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            let o = a.octets();
            let mask = v != 0 && (v | (v - 1)) == u32::MAX && o[0] == 255 && cidr.len == 32;
            let link_mcast = o[0] == 224 && o[1] == 0 && o[2] == 0;
            mask || link_mcast
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (s[0] & 0xffc0) == 0xfe80 || s[0] == 0xff02
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_ranges() {
        for ok in [
            "192.0.2.1/32",
            "198.51.100.1/30",
            "203.0.113.0/24",
            "2001:db8::1/64",
            "2001:db8:1::/48",
            "127.0.0.2",
            "::1",
        ] {
            assert!(ok.parse::<Cidr>().unwrap().is_allowed(), "{ok}");
        }
        for bad in [
            "10.0.0.1/8",
            "192.0.2.1/16",
            "8.8.8.8",
            "2001:db9::1/64",
            "2001:db8::/16",
            "fe80::1/64",
        ] {
            assert!(!bad.parse::<Cidr>().unwrap().is_allowed(), "{bad}");
        }
    }

    #[test]
    fn network_masks_host_bits() {
        let c: Cidr = "198.51.100.6/30".parse().unwrap();
        assert_eq!(c.network().to_string(), "198.51.100.4/30");
        let c: Cidr = "2001:db8::1/64".parse().unwrap();
        assert_eq!(c.network().to_string(), "2001:db8::/64");
    }

    #[test]
    fn scan_finds_outside_addresses() {
        let conf = "router ospf\n ospf router-id 1.1.1.1\n network 198.51.100.0/30 area 0.0.0.0\n\
                    network 10.1.0.0/16 area 0\n! 10.9.9.9 in a comment\n ip route 0.0.0.0/0 192.0.2.9\n\
                    ip route 203.0.113.0 255.255.255.0 198.51.100.2\n neighbor 8.8.8.8 remote-as 1\n";
        let bad = scan_text(conf);
        assert_eq!(
            bad,
            vec![(4, "10.1.0.0/16".to_string()), (8, "8.8.8.8".to_string())]
        );
        assert!(scan_text("ping -c 3 198.51.100.1; mac 00:00:5e:00:01:05 ff02::12").is_empty());
        assert_eq!(scan_text("connect 172.16.0.1:179").len(), 1);
    }
}
