//! The BGP "LISP Mapping System Target" extended community
//! (draft-boucadair-lisp-idr-ms-discovery-01, wire-formats.md §1.1, §6).
//!
//! ```text
//! IPv4 form, in Extended Communities (attribute 16), 8 bytes:
//!   Type(8)=0x01 | Sub-type(8) | Global Admin(32) = MS contact IPv4 | Local Admin(16) = MS id
//! IPv6 form, in IPv6 Address Specific EC (attribute 25, RFC 5701), 20 bytes:
//!   Type(8)=0x00 | Sub-type(8) | Global Admin(128) = MS contact IPv6 | Local Admin(16) = MS id
//! ```
//! The sub-type was never assigned by IANA, so every code point is configuration
//! ([`MsTargetCodepoint`]); the defaults are the ones verified to cross FRR 8.4 bgpd.
//!
//! The attribute scanners return an error, never a partial result, when an
//! attribute's length is not a whole number of communities: RFC 7606 §7.14 and
//! RFC 5701 §3 make that "treat-as-withdraw", which only the caller can apply.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

/// Path attribute type code of Extended Communities (RFC 4360).
pub const ATTR_EXT_COMMUNITIES: u8 = 16;
/// Path attribute type code of IPv6 Address Specific Extended Community (RFC 5701).
pub const ATTR_IPV6_EXT_COMMUNITIES: u8 = 25;
/// Length of one community in attribute 16.
pub const EC_V4_LEN: usize = 8;
/// Length of one community in attribute 25.
pub const EC_V6_LEN: usize = 20;

/// Type and sub-type octets identifying the MS-target community. Configurable
/// because none of them is IANA-assigned (wire-formats.md §0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsTargetCodepoint {
    /// Type octet of the IPv4 form (0x01: transitive IPv4-address-specific).
    pub v4_type: u8,
    /// Type octet of the IPv6 form (0x00: transitive, RFC 5701).
    pub v6_type: u8,
    /// Sub-type octet shared by both forms.
    pub subtype: u8,
}

impl Default for MsTargetCodepoint {
    fn default() -> Self {
        MsTargetCodepoint {
            v4_type: 0x01,
            v6_type: 0x00,
            subtype: 0xB0,
        }
    }
}

/// One mapping system announced with a prefix: where to reach it and its id
/// (0 unless configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MsTarget {
    pub contact: IpAddr,
    pub ms_id: u16,
}

impl MsTarget {
    pub fn new(contact: impl Into<IpAddr>, ms_id: u16) -> Self {
        MsTarget {
            contact: contact.into(),
            ms_id,
        }
    }

    /// Bytes of this community on the wire: 8 (IPv4 form) or 20 (IPv6 form).
    pub fn wire_len(&self) -> usize {
        match self.contact {
            IpAddr::V4(_) => EC_V4_LEN,
            IpAddr::V6(_) => EC_V6_LEN,
        }
    }

    /// The path attribute that carries this community (16 or 25).
    pub fn attribute(&self) -> u8 {
        match self.contact {
            IpAddr::V4(_) => ATTR_EXT_COMMUNITIES,
            IpAddr::V6(_) => ATTR_IPV6_EXT_COMMUNITIES,
        }
    }

    /// Encodes with the default code points.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_with(buf, &MsTargetCodepoint::default())
    }

    /// Appends the community: the IPv4 form for an IPv4 contact, the IPv6 form
    /// otherwise. Never fails; `Result` keeps the crate's encoder signature.
    pub fn encode_with(
        &self,
        buf: &mut Vec<u8>,
        cp: &MsTargetCodepoint,
    ) -> Result<(), EncodeError> {
        match self.contact {
            IpAddr::V4(a) => {
                buf.extend_from_slice(&[cp.v4_type, cp.subtype]);
                buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                buf.extend_from_slice(&[cp.v6_type, cp.subtype]);
                buf.extend_from_slice(&a.octets());
            }
        }
        buf.extend_from_slice(&self.ms_id.to_be_bytes());
        Ok(())
    }

    /// The community bytes, ready to splice into an attribute value.
    pub fn to_bytes(&self, cp: &MsTargetCodepoint) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_len());
        // Infallible: encode_with only ever returns Ok.
        let _ = self.encode_with(&mut v, cp);
        v
    }

    /// Decodes one community with the default code points.
    pub fn decode(buf: &[u8]) -> Result<MsTarget, DecodeError> {
        Self::decode_with(buf, &MsTargetCodepoint::default())
    }

    /// Decodes exactly one community; its length (8 or 20) selects the form.
    /// Any other type/sub-type is an error: the caller asked for an MS target.
    pub fn decode_with(buf: &[u8], cp: &MsTargetCodepoint) -> Result<MsTarget, DecodeError> {
        let want_type = match buf.len() {
            EC_V4_LEN => cp.v4_type,
            EC_V6_LEN => cp.v6_type,
            n => {
                return Err(DecodeError::BadValue {
                    field: "ms-target community length",
                    value: n as u64,
                    reason: "is neither 8 (IPv4 form) nor 20 (IPv6 form)",
                });
            }
        };
        Self::match_one(buf, want_type, cp.subtype)?.ok_or(DecodeError::Invalid {
            field: "ms-target community",
            reason: "type/sub-type is not the configured MS-target code point",
        })
    }

    /// `Ok(None)` when `ec` is some other community.
    fn match_one(ec: &[u8], want_type: u8, subtype: u8) -> Result<Option<MsTarget>, DecodeError> {
        let mut r = Reader::new(ec);
        let [typ, sub] = r.array::<2>("ms-target type")?;
        if typ != want_type || sub != subtype {
            return Ok(None);
        }
        let contact = if ec.len() == EC_V4_LEN {
            IpAddr::V4(Ipv4Addr::from(r.u32("ms-target contact")?))
        } else {
            IpAddr::V6(Ipv6Addr::from(r.u128("ms-target contact")?))
        };
        let ms_id = r.u16("ms-target id")?;
        r.finish()?;
        Ok(Some(MsTarget { contact, ms_id }))
    }

    /// Hex of the community as ExaBGP's `extended-community [ 0x... ]` takes it
    /// and as logs show it, e.g. `0x01b0c63364020001`.
    pub fn to_raw_hex(&self, cp: &MsTargetCodepoint) -> String {
        let mut s = String::with_capacity(2 + 2 * self.wire_len());
        s.push_str("0x");
        for b in self.to_bytes(cp) {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses [`to_raw_hex`](Self::to_raw_hex) output (the `0x` prefix is optional).
    pub fn from_raw_hex(s: &str, cp: &MsTargetCodepoint) -> Result<MsTarget, DecodeError> {
        let s = s.trim();
        let h = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if !h.is_ascii() || !h.len().is_multiple_of(2) || h.len() > 2 * EC_V6_LEN {
            return Err(DecodeError::Invalid {
                field: "ms-target hex",
                reason: "not an even number of hex digits of an 8- or 20-byte community",
            });
        }
        let mut bytes = Vec::with_capacity(h.len() / 2);
        for pair in h.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).map_err(|_| DecodeError::Invalid {
                field: "ms-target hex",
                reason: "not hex",
            })?;
            bytes.push(
                u8::from_str_radix(pair, 16).map_err(|_| DecodeError::Invalid {
                    field: "ms-target hex",
                    reason: "not hex",
                })?,
            );
        }
        Self::decode_with(&bytes, cp)
    }
}

impl fmt::Display for MsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ms-target {} id {}", self.contact, self.ms_id)
    }
}

/// Scans an Extended Communities attribute value (attribute 16) and returns the
/// MS targets in it, in order; other communities are skipped. A length that is
/// not a multiple of 8 is an error (RFC 7606 §7.14: treat-as-withdraw).
pub fn ms_targets_in_ext_communities(
    attr: &[u8],
    cp: &MsTargetCodepoint,
) -> Result<Vec<MsTarget>, DecodeError> {
    scan(
        attr,
        EC_V4_LEN,
        cp.v4_type,
        cp.subtype,
        "extended communities attribute length",
    )
}

/// Scans an IPv6 Address Specific Extended Community attribute value
/// (attribute 25). A length that is not a multiple of 20 is an error (RFC 5701
/// §3 with RFC 7606: treat-as-withdraw).
pub fn ms_targets_in_ipv6_ext_communities(
    attr: &[u8],
    cp: &MsTargetCodepoint,
) -> Result<Vec<MsTarget>, DecodeError> {
    scan(
        attr,
        EC_V6_LEN,
        cp.v6_type,
        cp.subtype,
        "ipv6 extended communities attribute length",
    )
}

fn scan(
    attr: &[u8],
    size: usize,
    typ: u8,
    subtype: u8,
    field: &'static str,
) -> Result<Vec<MsTarget>, DecodeError> {
    if !attr.len().is_multiple_of(size) {
        return Err(DecodeError::BadValue {
            field,
            value: attr.len() as u64,
            reason: if size == EC_V4_LEN {
                "is not a multiple of 8"
            } else {
                "is not a multiple of 20"
            },
        });
    }
    let mut out = Vec::new();
    for ec in attr.chunks_exact(size) {
        if let Some(t) = MsTarget::match_one(ec, typ, subtype)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// Builds the attribute values carrying `targets`: (attribute 16 value,
/// attribute 25 value). Either may be empty; the caller appends them to any
/// other communities the route carries.
pub fn encode_ms_targets(targets: &[MsTarget], cp: &MsTargetCodepoint) -> (Vec<u8>, Vec<u8>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for t in targets {
        let out = if t.contact.is_ipv4() {
            &mut v4
        } else {
            &mut v6
        };
        // Infallible, see encode_with.
        let _ = t.encode_with(out, cp);
    }
    (v4, v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> MsTargetCodepoint {
        MsTargetCodepoint::default()
    }

    #[test]
    fn ipv4_form_known_answer() {
        // The community used in the lab (lab-facts.md): 0x01 B0 C6336402 0001.
        let t = MsTarget::new(Ipv4Addr::new(198, 51, 100, 2), 1);
        let mut v = Vec::new();
        t.encode(&mut v).unwrap();
        assert_eq!(v, [0x01, 0xB0, 198, 51, 100, 2, 0x00, 0x01]);
        assert_eq!(t.to_raw_hex(&cp()), "0x01b0c63364020001");
        assert_eq!(MsTarget::decode(&v).unwrap(), t);
        assert_eq!(
            MsTarget::from_raw_hex("0x01b0c63364020001", &cp()).unwrap(),
            t
        );
        assert_eq!(t.attribute(), ATTR_EXT_COMMUNITIES);
    }

    #[test]
    fn ipv6_form_known_answer() {
        let t = MsTarget::new("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 0x0102);
        let v = t.to_bytes(&cp());
        let mut want = vec![0x00, 0xB0, 0x20, 0x01, 0x0d, 0xb8];
        want.extend_from_slice(&[0; 11]);
        want.extend_from_slice(&[1, 0x01, 0x02]);
        assert_eq!(v, want);
        assert_eq!(v.len(), EC_V6_LEN);
        assert_eq!(MsTarget::decode(&v).unwrap(), t);
        assert_eq!(
            t.to_raw_hex(&cp()),
            "0x00b020010db80000000000000000000000010102"
        );
        assert_eq!(t.attribute(), ATTR_IPV6_EXT_COMMUNITIES);
    }

    #[test]
    fn configured_codepoint() {
        let c = MsTargetCodepoint {
            v4_type: 0x83,
            v6_type: 0x83,
            subtype: 0x01,
        };
        let t = MsTarget::new(Ipv4Addr::new(192, 0, 2, 9), 0);
        let v = t.to_bytes(&c);
        assert_eq!(&v[..2], &[0x83, 0x01]);
        assert_eq!(MsTarget::decode_with(&v, &c).unwrap(), t);
        assert!(
            MsTarget::decode(&v).is_err(),
            "default code point must not match"
        );
    }

    #[test]
    fn codepoint_config_defaults_and_rejects_unknown_fields() {
        let c: MsTargetCodepoint = serde_json::from_str(r#"{"subtype": 177}"#).unwrap();
        assert_eq!(c.v4_type, 0x01);
        assert_eq!(c.v6_type, 0x00);
        assert_eq!(c.subtype, 177);
        assert!(serde_json::from_str::<MsTargetCodepoint>(r#"{"sub_type": 1}"#).is_err());
    }

    #[test]
    fn scan_attribute_16_skips_other_communities() {
        let a = MsTarget::new(Ipv4Addr::new(192, 0, 2, 1), 7);
        let b = MsTarget::new(Ipv4Addr::new(203, 0, 113, 5), 0);
        let mut attr = Vec::new();
        // Route target 0x0002 (two-octet AS), then ours, a non-transitive copy, ours.
        attr.extend_from_slice(&[0x00, 0x02, 0xFD, 0xE8, 0, 0, 0, 1]);
        a.encode(&mut attr).unwrap();
        attr.extend_from_slice(&[0x41, 0xB0, 192, 0, 2, 1, 0, 7]);
        b.encode(&mut attr).unwrap();
        assert_eq!(
            ms_targets_in_ext_communities(&attr, &cp()).unwrap(),
            vec![a, b]
        );
        assert_eq!(ms_targets_in_ext_communities(&[], &cp()).unwrap(), vec![]);
    }

    #[test]
    fn scan_attribute_25() {
        let a = MsTarget::new("2001:db8::53".parse::<Ipv6Addr>().unwrap(), 3);
        let mut attr = vec![0x00, 0x02];
        attr.extend_from_slice(&[0xAA; 18]); // IPv6 route target, not ours
        a.encode(&mut attr).unwrap();
        assert_eq!(
            ms_targets_in_ipv6_ext_communities(&attr, &cp()).unwrap(),
            vec![a]
        );
    }

    #[test]
    fn malformed_attribute_lengths_are_errors_not_skips() {
        let attr = [0x01, 0xB0, 192, 0, 2, 1, 0, 7, 0x01];
        let err = ms_targets_in_ext_communities(&attr, &cp()).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadValue { value: 9, field, .. } if field.contains("extended communities")),
            "{err}"
        );
        let err = ms_targets_in_ipv6_ext_communities(&[0; 21], &cp()).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadValue { value: 21, .. }),
            "{err}"
        );
        // An IPv4-sized community in attribute 25 is malformed too.
        assert!(ms_targets_in_ipv6_ext_communities(&[0; 8], &cp()).is_err());
    }

    #[test]
    fn single_community_errors() {
        assert!(matches!(
            MsTarget::decode(&[0x01, 0xB0, 1, 2, 3]),
            Err(DecodeError::BadValue { .. })
        ));
        assert!(matches!(
            MsTarget::decode(&[0x01, 0x02, 192, 0, 2, 1, 0, 1]),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(MsTarget::from_raw_hex("0x01b0c6336402000", &cp()).is_err());
        assert!(MsTarget::from_raw_hex("0x01b0c633640200zz", &cp()).is_err());
        assert!(MsTarget::from_raw_hex("0x01b0c63364€0001", &cp()).is_err());
    }

    #[test]
    fn encode_splits_by_family() {
        let a = MsTarget::new(Ipv4Addr::new(192, 0, 2, 1), 1);
        let b = MsTarget::new("2001:db8::2".parse::<Ipv6Addr>().unwrap(), 2);
        let (v4, v6) = encode_ms_targets(&[a, b, a], &cp());
        assert_eq!(v4.len(), 16);
        assert_eq!(v6.len(), 20);
        assert_eq!(
            ms_targets_in_ext_communities(&v4, &cp()).unwrap(),
            vec![a, a]
        );
        assert_eq!(
            ms_targets_in_ipv6_ext_communities(&v6, &cp()).unwrap(),
            vec![b]
        );
    }
}
