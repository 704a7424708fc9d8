//! The key of the mapping database: instance id + IPv4 or IPv6 prefix.

use std::fmt;

use lisp_msx_proto::{Addr, EidPrefix, InstanceId, LispAddr};

/// An EID prefix as the database keys it: instance id, family, address, length.
///
/// Unlike [`EidPrefix`] it cannot hold AFI 0, an AS-number LCAF or host bits,
/// so two spellings of the same prefix are the same key. It is 32 bytes and
/// `Copy`; its order (instance, IPv4 before IPv6, address, length) is the order
/// of [`PrefixMap::iter`](crate::PrefixMap::iter), a less-specific before its
/// more-specifics.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    iid: u32,
    v6: bool,
    /// The address as an integer (IPv4 in the low 32 bits), host bits zero.
    bits: u128,
    len: u8,
}

/// Why an [`EidPrefix`] or [`Addr`] cannot be a database key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// AFI 0: no address to key on.
    NoAddress,
    /// The mask length exceeds the family's width.
    LenTooLong { len: u8, max: u8 },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::NoAddress => f.write_str("prefix has no address (AFI 0)"),
            PrefixError::LenTooLong { len, max } => {
                write!(f, "mask-len {len} exceeds the family's {max} bits")
            }
        }
    }
}

impl std::error::Error for PrefixError {}

#[inline]
pub(crate) fn mask32(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - len))
    }
}

#[inline]
pub(crate) fn mask128(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len))
    }
}

// `len` is the mask length, not a count: there is no "empty" prefix.
#[allow(clippy::len_without_is_empty)]
impl Prefix {
    /// An IPv4 prefix; host bits are cleared.
    ///
    /// # Panics
    /// If `len > 32` (a programming error; use [`Prefix::new`] for input).
    #[inline]
    pub fn v4(iid: u32, addr: u32, len: u8) -> Prefix {
        assert!(len <= 32, "IPv4 mask-len {len} > 32");
        Prefix {
            iid,
            v6: false,
            bits: u128::from(mask32(addr, len)),
            len,
        }
    }

    /// An IPv6 prefix; host bits are cleared.
    ///
    /// # Panics
    /// If `len > 128` (a programming error; use [`Prefix::new`] for input).
    #[inline]
    pub fn v6(iid: u32, addr: u128, len: u8) -> Prefix {
        assert!(len <= 128, "IPv6 mask-len {len} > 128");
        Prefix {
            iid,
            v6: true,
            bits: mask128(addr, len),
            len,
        }
    }

    /// A prefix from an [`Addr`], validated; host bits are cleared.
    pub fn new(iid: u32, addr: Addr, len: u8) -> Result<Prefix, PrefixError> {
        match addr {
            Addr::None => Err(PrefixError::NoAddress),
            Addr::V4(a) if len <= 32 => Ok(Prefix::v4(iid, a, len)),
            Addr::V6(a) if len <= 128 => Ok(Prefix::v6(iid, a, len)),
            _ => Err(PrefixError::LenTooLong {
                len,
                max: addr.max_len(),
            }),
        }
    }

    /// The host route for one address.
    pub fn host(iid: u32, addr: Addr) -> Result<Prefix, PrefixError> {
        Prefix::new(iid, addr, addr.max_len())
    }

    #[inline]
    pub fn iid(&self) -> u32 {
        self.iid
    }

    #[inline]
    pub fn len(&self) -> u8 {
        self.len
    }

    #[inline]
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    #[inline]
    pub fn addr(&self) -> Addr {
        if self.v6 {
            Addr::V6(self.bits)
        } else {
            Addr::V4(self.bits as u32)
        }
    }

    /// The address as an integer: IPv4 in the low 32 bits.
    #[inline]
    pub fn bits(&self) -> u128 {
        self.bits
    }

    /// The family's width: 32 or 128.
    #[inline]
    pub fn max_len(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// True when `other` lies inside this prefix (same instance and family).
    pub fn contains(&self, other: &Prefix) -> bool {
        self.iid == other.iid
            && self.v6 == other.v6
            && other.len >= self.len
            && self.masked_bits(other.bits) == self.bits
    }

    /// True when `addr` (in instance `iid`) lies inside this prefix.
    pub fn contains_addr(&self, iid: u32, addr: Addr) -> bool {
        self.iid == iid
            && match addr {
                Addr::V4(a) if !self.v6 => self.masked_bits(u128::from(a)) == self.bits,
                Addr::V6(a) if self.v6 => self.masked_bits(a) == self.bits,
                _ => false,
            }
    }

    #[inline]
    fn masked_bits(&self, b: u128) -> u128 {
        if self.v6 {
            mask128(b, self.len)
        } else {
            u128::from(mask32(b as u32, self.len))
        }
    }

    /// Builds a key from parts the trie already validated.
    #[inline]
    pub(crate) fn from_parts(iid: u32, v6: bool, bits: u128, len: u8) -> Prefix {
        Prefix { iid, v6, bits, len }
    }
}

/// Instance 0 is the default instance: an EID with no Instance-ID LCAF.
/// The AS-number LCAF and the IID mask-len are not part of the key.
impl TryFrom<EidPrefix> for Prefix {
    type Error = PrefixError;
    fn try_from(p: EidPrefix) -> Result<Self, Self::Error> {
        Prefix::new(p.addr.instance(), p.addr.addr, p.len)
    }
}

impl TryFrom<&EidPrefix> for Prefix {
    type Error = PrefixError;
    fn try_from(p: &EidPrefix) -> Result<Self, Self::Error> {
        Prefix::try_from(*p)
    }
}

/// Instance 0 becomes a plain EID (no Instance-ID LCAF).
impl From<Prefix> for EidPrefix {
    fn from(p: Prefix) -> Self {
        let iid = (p.iid != 0).then(|| InstanceId::new(p.iid));
        EidPrefix {
            addr: LispAddr {
                iid,
                asn: None,
                addr: p.addr(),
            },
            len: p.len,
        }
    }
}

/// Same text form as [`EidPrefix`]: `192.0.2.0/24`, `[7]2001:db8::/32`.
impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.iid != 0 {
            write!(f, "[{}]", self.iid)?;
        }
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let p: EidPrefix = s.parse()?;
        Prefix::try_from(p).map_err(|e| format!("'{s}': {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared_and_text_round_trips() {
        let p: Prefix = "[7]10.1.2.3/16".parse().unwrap();
        assert_eq!(p.addr(), Addr::V4(0x0a01_0000));
        assert_eq!(p.to_string(), "[7]10.1.0.0/16");
        let q: Prefix = "2001:db8::1/32".parse().unwrap();
        assert_eq!(q.to_string(), "2001:db8::/32");
        assert!(q.is_v6() && q.iid() == 0);
        assert_eq!("0.0.0.0/0".parse::<Prefix>().unwrap().len(), 0);
        assert_eq!(Prefix::v6(0, u128::MAX, 128).bits(), u128::MAX);
    }

    #[test]
    fn eid_prefix_conversions() {
        let e: EidPrefix = "[9]192.0.2.77/24".parse().unwrap();
        let p = Prefix::try_from(e).unwrap();
        assert_eq!(p, Prefix::v4(9, 0xc000_0200, 24));
        assert_eq!(EidPrefix::from(p), e.normalized());
        let plain: EidPrefix = "192.0.2.0/24".parse().unwrap();
        assert_eq!(EidPrefix::from(Prefix::try_from(plain).unwrap()), plain);
        assert_eq!(
            Prefix::try_from(EidPrefix::new(Addr::None, 0)),
            Err(PrefixError::NoAddress)
        );
        assert_eq!(
            Prefix::new(0, Addr::V4(0), 33),
            Err(PrefixError::LenTooLong { len: 33, max: 32 })
        );
    }

    #[test]
    fn containment_and_order() {
        let a: Prefix = "10.0.0.0/8".parse().unwrap();
        let b: Prefix = "10.1.0.0/16".parse().unwrap();
        let c: Prefix = "[1]10.1.0.0/16".parse().unwrap();
        let d: Prefix = "::/0".parse().unwrap();
        assert!(a.contains(&b) && !b.contains(&a) && !a.contains(&c));
        assert!(a.contains_addr(0, Addr::V4(0x0a09_0909)));
        assert!(!a.contains_addr(0, Addr::V6(0x0a09_0909)));
        assert!(d.contains_addr(0, Addr::V6(5)));
        assert!(a < b && b < d && d < c);
        assert_eq!(size_of::<Prefix>(), 32);
    }
}
