//! Subscription and bulk filters (draft-boucadair-lisp-subscribe §3):
//! `Length(8) | UTF-8 text`. A filter is an EID prefix (IPv4 written as
//! IPv4-mapped IPv6), an AS number (`AS64500`) or a name (DNS syntax).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::addr::{Addr, EidPrefix};
use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Filter {
    /// The null filter (length 0 or all zero bytes): "everything" in a bulk
    /// request, "clear all filters" in a subscription.
    Any,
    Prefix(EidPrefix),
    As(u32),
    Name(String),
}

impl Filter {
    /// The text form carried on the wire.
    pub fn to_text(&self) -> String {
        match self {
            Filter::Any => String::new(),
            Filter::Prefix(p) => {
                let iid = p
                    .addr
                    .iid
                    .map(|i| format!("[{}]", i.id))
                    .unwrap_or_default();
                match p.addr.addr {
                    Addr::V4(a) => format!(
                        "{iid}{}/{}",
                        Ipv4Addr::from(a).to_ipv6_mapped(),
                        u16::from(p.len) + 96
                    ),
                    Addr::V6(a) => format!("{iid}{}/{}", Ipv6Addr::from(a), p.len),
                    Addr::None => String::new(),
                }
            }
            Filter::As(n) => format!("AS{n}"),
            Filter::Name(n) => n.clone(),
        }
    }

    /// Parses the text form (also used for configuration).
    pub fn parse(text: &str) -> Result<Filter, &'static str> {
        if text.is_empty() {
            return Ok(Filter::Any);
        }
        if let Some(n) = text.strip_prefix("AS").or_else(|| text.strip_prefix("as"))
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            return n
                .parse()
                .map(Filter::As)
                .map_err(|_| "AS number out of range");
        }
        if text.contains('/') || text.parse::<IpAddr>().is_ok() || text.starts_with('[') {
            let p: EidPrefix = text.parse().map_err(|_| "not a valid EID prefix")?;
            return Ok(Filter::Prefix(unmap(p)));
        }
        let valid_name = text.len() <= 253
            && text.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid_name {
            Ok(Filter::Name(text.to_string()))
        } else {
            Err("neither a prefix, an AS number (ASnnn) nor a DNS name")
        }
    }

    pub fn wire_len(&self) -> usize {
        1 + self.to_text().len()
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let t = self.to_text();
        if t.len() > 255 {
            return Err(EncodeError::Invalid {
                field: "filter",
                reason: "longer than 255 bytes",
            });
        }
        buf.put_u8(t.len() as u8);
        buf.put_slice(t.as_bytes());
        Ok(())
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Filter, DecodeError> {
        let len = usize::from(r.u8("filter length")?);
        let raw = r.take(len, "filter")?;
        if raw.iter().all(|b| *b == 0) {
            return Ok(Filter::Any);
        }
        let text = std::str::from_utf8(raw).map_err(|_| DecodeError::Invalid {
            field: "filter",
            reason: "not UTF-8",
        })?;
        Filter::parse(text).map_err(|reason| DecodeError::Invalid {
            field: "filter",
            reason,
        })
    }

    /// Whether a mapping for `eid` (originated by `origin_as`, named `name`) passes.
    pub fn matches(&self, eid: &EidPrefix, origin_as: Option<u32>, name: Option<&str>) -> bool {
        match self {
            Filter::Any => true,
            Filter::Prefix(p) => p.contains(eid),
            Filter::As(a) => origin_as == Some(*a),
            Filter::Name(n) => {
                name.is_some_and(|x| x.eq_ignore_ascii_case(n) || x.ends_with(&format!(".{n}")))
            }
        }
    }
}

/// IPv4-mapped IPv6 prefixes (::ffff:0:0/96 and longer) become IPv4 prefixes.
fn unmap(p: EidPrefix) -> EidPrefix {
    if let Addr::V6(a) = p.addr.addr
        && p.len >= 96
        && let Some(v4) = mapped_v4(Ipv6Addr::from(a))
    {
        let mut out = p;
        out.addr.addr = Addr::v4(v4);
        out.len = p.len - 96;
        return out;
    }
    p
}

fn mapped_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    (s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xFFFF)
        .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
}

/// Writes a 128-bit address field, IPv4 as IPv4-mapped IPv6.
pub(crate) fn put_addr128<B: BufMut>(buf: &mut B, a: Addr) {
    let v6 = match a {
        Addr::None => Ipv6Addr::UNSPECIFIED,
        Addr::V4(v4) => Ipv4Addr::from(v4).to_ipv6_mapped(),
        Addr::V6(v6) => Ipv6Addr::from(v6),
    };
    buf.put_slice(&v6.octets());
}

pub(crate) fn get_addr128(r: &mut Reader<'_>, field: &'static str) -> Result<Addr, DecodeError> {
    let a = Ipv6Addr::from(r.u128(field)?);
    Ok(if a.is_unspecified() {
        Addr::None
    } else if let Some(v4) = mapped_v4(a) {
        Addr::v4(v4)
    } else {
        Addr::v6(a)
    })
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Any => f.write_str("any"),
            Filter::Prefix(p) => p.fmt(f),
            other => f.write_str(&other.to_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let p = Filter::parse("::ffff:192.0.2.0/122").unwrap();
        assert_eq!(p, Filter::Prefix("192.0.2.0/26".parse().unwrap()));
        assert_eq!(p.to_text(), "::ffff:192.0.2.0/122");
        assert_eq!(Filter::parse("AS64500").unwrap(), Filter::As(64500));
        assert_eq!(
            Filter::parse("ms.example.net").unwrap(),
            Filter::Name("ms.example.net".into())
        );
        assert_eq!(
            Filter::parse("2001:db8::/32").unwrap().to_text(),
            "2001:db8::/32"
        );
        assert!(Filter::parse("bad name!").is_err());
    }

    #[test]
    fn matching() {
        let eid: EidPrefix = "203.0.113.64/26".parse().unwrap();
        assert!(
            Filter::parse("203.0.113.0/24")
                .unwrap()
                .matches(&eid, None, None)
        );
        assert!(
            !Filter::parse("198.51.100.0/24")
                .unwrap()
                .matches(&eid, None, None)
        );
        assert!(Filter::As(65002).matches(&eid, Some(65002), None));
        assert!(Filter::Name("example.net".into()).matches(&eid, None, Some("site1.example.net")));
    }
}
