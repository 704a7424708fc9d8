//! The Mapping Service Function Discovery (MSFD) TLV of
//! draft-boucadair-lisp-function-discovery-03 (wire-formats.md §1.2), carried
//! in an RI LSA. Its outer type was never assigned: 32768 (RFC 7770's
//! experimental range) by default, configurable.
//!
//! Sub-TLVs (RFC 3630 encoding, value padded to 4 bytes):
//!
//! | T | name                     | value                                   |
//! |---|--------------------------|-----------------------------------------|
//! | 1 | MSF-TYPE                 | type(16) 0 MS, 1 MR, 2 both; reserved(16) |
//! | 2 | MSF-LOCATOR              | IPv4 (L=4) or IPv6 (L=16), may repeat   |
//! | 3 | MSF-DESCRIPTION          | UTF-8, no NUL                           |
//! | 4 | MSF-EPOCH                | u32                                     |
//! | 5 | MSF-UNAVAILABILITY-TIMER | u32 seconds                             |
//! | 6 | MSF-REBOOT-TIMER         | u32 seconds                             |
//! | 7 | MSF-DIAGNOSIS            | flag, L=0                               |
//! | 8 | MS-STATUS                | status(16) 0 reset, 1 partial, 2 sync; reserved(16) |
//! | 9 | MSF-STATUS               | status(16) 0 enabled, 1 disabled; reserved(16) |
//! |10 | MSF-CAPABILITIES (ours)  | u32 flags, see [`capability`]           |
//!
//! The draft's table says L=1 for MSF-TYPE and MSF-DIAGNOSIS while its
//! figures say 4 and 0: we send the figures' lengths and accept both.
//! MSF-TYPE and at least one MSF-LOCATOR are mandatory. A single-valued
//! sub-TLV that repeats keeps its first occurrence (RFC 7770's "ignore what
//! you cannot use" spirit; the draft is silent).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::ospf::ri::{Tlv, decode_tlvs, put_tlv};
use crate::wire::Reader;

/// Default RI TLV type of the MSFD TLV (wire-formats.md §0).
pub const DEFAULT_MSFD_TLV_TYPE: u16 = 32768;

pub const SUB_MSF_TYPE: u16 = 1;
pub const SUB_MSF_LOCATOR: u16 = 2;
pub const SUB_MSF_DESCRIPTION: u16 = 3;
pub const SUB_MSF_EPOCH: u16 = 4;
pub const SUB_MSF_UNAVAILABILITY_TIMER: u16 = 5;
pub const SUB_MSF_REBOOT_TIMER: u16 = 6;
pub const SUB_MSF_DIAGNOSIS: u16 = 7;
pub const SUB_MS_STATUS: u16 = 8;
pub const SUB_MSF_STATUS: u16 = 9;
pub const SUB_MSF_CAPABILITIES: u16 = 10;

/// MSF-CAPABILITIES bits, numbered as in wire-formats.md (bit 0 is the most
/// significant bit of the 32-bit word).
pub mod capability {
    /// Bit 0: Map-Subscribe supported.
    pub const SUBSCRIBE: u32 = 1 << 31;
    /// Bit 1: Map-Bulk supported.
    pub const BULK: u32 = 1 << 30;
    /// Bit 2: CPNP interconnection offered.
    pub const CPNP: u32 = 1 << 29;
}

/// Which mapping-service function the advertiser runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MsfType {
    #[default]
    MapServer,
    MapResolver,
    Both,
}

impl MsfType {
    pub fn code(self) -> u16 {
        match self {
            MsfType::MapServer => 0,
            MsfType::MapResolver => 1,
            MsfType::Both => 2,
        }
    }

    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            0 => Some(MsfType::MapServer),
            1 => Some(MsfType::MapResolver),
            2 => Some(MsfType::Both),
            _ => None,
        }
    }
}

/// MS-STATUS: state of the mapping database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MsStatus {
    Reset,
    Partial,
    Synchronized,
}

impl MsStatus {
    pub fn code(self) -> u16 {
        match self {
            MsStatus::Reset => 0,
            MsStatus::Partial => 1,
            MsStatus::Synchronized => 2,
        }
    }

    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            0 => Some(MsStatus::Reset),
            1 => Some(MsStatus::Partial),
            2 => Some(MsStatus::Synchronized),
            _ => None,
        }
    }
}

/// MSF-STATUS: whether the function instance is in service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MsfStatus {
    Enabled,
    Disabled,
}

impl MsfStatus {
    pub fn code(self) -> u16 {
        match self {
            MsfStatus::Enabled => 0,
            MsfStatus::Disabled => 1,
        }
    }

    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            0 => Some(MsfStatus::Enabled),
            1 => Some(MsfStatus::Disabled),
            _ => None,
        }
    }
}

/// The MSFD TLV's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msfd {
    pub function: MsfType,
    /// At least one is required on the wire.
    pub locators: Vec<IpAddr>,
    pub description: Option<String>,
    /// 0 = state lost (ETRs re-register now), then +1 per change.
    pub epoch: Option<u32>,
    /// Seconds until unavailable (0 = now).
    pub unavailability_timer: Option<u32>,
    /// Seconds until the reboot starts.
    pub reboot_timer: Option<u32>,
    /// MSF-DIAGNOSIS present.
    pub diagnosis: bool,
    pub ms_status: Option<MsStatus>,
    pub msf_status: Option<MsfStatus>,
    /// MSF-CAPABILITIES flags ([`capability`]).
    pub capabilities: Option<u32>,
    /// Sub-TLVs of other types, kept in order and re-sent as they are.
    pub unknown: Vec<Tlv>,
}

fn status_word(code: u16) -> [u8; 4] {
    let c = code.to_be_bytes();
    [c[0], c[1], 0, 0]
}

impl Msfd {
    pub fn has_capability(&self, bit: u32) -> bool {
        self.capabilities.is_some_and(|c| c & bit != 0)
    }

    /// Encodes the sub-TLVs (the MSFD TLV's value).
    pub fn encode_value(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.locators.is_empty() {
            return Err(EncodeError::Invalid {
                field: "msf-locator",
                reason: "at least one locator is mandatory",
            });
        }
        put_tlv(buf, SUB_MSF_TYPE, &status_word(self.function.code()))?;
        for loc in &self.locators {
            match loc {
                IpAddr::V4(a) => put_tlv(buf, SUB_MSF_LOCATOR, &a.octets())?,
                IpAddr::V6(a) => put_tlv(buf, SUB_MSF_LOCATOR, &a.octets())?,
            }
        }
        if let Some(d) = &self.description {
            if d.contains('\0') {
                return Err(EncodeError::Invalid {
                    field: "msf-description",
                    reason: "contains a NUL character",
                });
            }
            put_tlv(buf, SUB_MSF_DESCRIPTION, d.as_bytes())?;
        }
        let timers = [
            (SUB_MSF_EPOCH, self.epoch),
            (SUB_MSF_UNAVAILABILITY_TIMER, self.unavailability_timer),
            (SUB_MSF_REBOOT_TIMER, self.reboot_timer),
        ];
        for (t, v) in timers {
            if let Some(v) = v {
                put_tlv(buf, t, &v.to_be_bytes())?;
            }
        }
        if self.diagnosis {
            put_tlv(buf, SUB_MSF_DIAGNOSIS, &[])?;
        }
        if let Some(s) = self.ms_status {
            put_tlv(buf, SUB_MS_STATUS, &status_word(s.code()))?;
        }
        if let Some(s) = self.msf_status {
            put_tlv(buf, SUB_MSF_STATUS, &status_word(s.code()))?;
        }
        if let Some(c) = self.capabilities {
            put_tlv(buf, SUB_MSF_CAPABILITIES, &c.to_be_bytes())?;
        }
        for t in &self.unknown {
            if (SUB_MSF_TYPE..=SUB_MSF_CAPABILITIES).contains(&t.typ) {
                return Err(EncodeError::Invalid {
                    field: "msfd unknown sub-tlv",
                    reason: "uses the type of a known sub-TLV",
                });
            }
            t.encode(buf)?;
        }
        Ok(())
    }

    /// Encodes the whole MSFD TLV with the default type.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_with(DEFAULT_MSFD_TLV_TYPE, buf)
    }

    /// Encodes the whole MSFD TLV with a configured type.
    pub fn encode_with(&self, tlv_type: u16, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let tlv = self.to_tlv(tlv_type)?;
        tlv.encode(buf)
    }

    /// The MSFD TLV as a generic RI TLV.
    pub fn to_tlv(&self, tlv_type: u16) -> Result<Tlv, EncodeError> {
        let mut value = Vec::with_capacity(64);
        self.encode_value(&mut value)?;
        Ok(Tlv {
            typ: tlv_type,
            value,
        })
    }

    /// Decodes the MSFD TLV's value (its sub-TLVs).
    pub fn decode_value(value: &[u8]) -> Result<Msfd, DecodeError> {
        let mut function = None;
        let mut m = Msfd::default();
        for sub in decode_tlvs(value)? {
            let v = sub.value.as_slice();
            match sub.typ {
                SUB_MSF_TYPE => {
                    // L=4 (figure): type(16) + reserved; L=1 (table): one octet.
                    let code = match v.len() {
                        4 => u16::from_be_bytes([v[0], v[1]]),
                        1 => u16::from(v[0]),
                        n => return Err(bad_len("msf-type length", n, "is neither 4 nor 1")),
                    };
                    let f = MsfType::from_code(code).ok_or(DecodeError::BadValue {
                        field: "msf-type",
                        value: code.into(),
                        reason: "is not 0 (MS), 1 (MR) or 2 (both)",
                    })?;
                    function.get_or_insert(f);
                }
                SUB_MSF_LOCATOR => m.locators.push(match v.len() {
                    4 => IpAddr::V4(Ipv4Addr::from(u32_of(v))),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(v);
                        IpAddr::V6(Ipv6Addr::from(a))
                    }
                    n => {
                        return Err(bad_len(
                            "msf-locator length",
                            n,
                            "is neither 4 (IPv4) nor 16 (IPv6)",
                        ));
                    }
                }),
                SUB_MSF_DESCRIPTION => {
                    let s = std::str::from_utf8(v).map_err(|_| DecodeError::Invalid {
                        field: "msf-description",
                        reason: "is not UTF-8",
                    })?;
                    // "SHOULD NOT be null terminated": tolerate trailing NULs,
                    // but not one inside the text (we could not send it back).
                    let s = s.trim_end_matches('\0');
                    if s.contains('\0') {
                        return Err(DecodeError::Invalid {
                            field: "msf-description",
                            reason: "contains a NUL character",
                        });
                    }
                    if m.description.is_none() {
                        m.description = Some(s.to_owned());
                    }
                }
                SUB_MSF_EPOCH => set_u32(&mut m.epoch, v, "msf-epoch length")?,
                SUB_MSF_UNAVAILABILITY_TIMER => set_u32(
                    &mut m.unavailability_timer,
                    v,
                    "msf-unavailability-timer length",
                )?,
                SUB_MSF_REBOOT_TIMER => set_u32(&mut m.reboot_timer, v, "msf-reboot-timer length")?,
                SUB_MSF_DIAGNOSIS => {
                    if v.len() > 1 {
                        return Err(bad_len(
                            "msf-diagnosis length",
                            v.len(),
                            "is neither 0 nor 1",
                        ));
                    }
                    m.diagnosis = true;
                }
                SUB_MS_STATUS => {
                    let code = status_code(v, "ms-status length")?;
                    let s = MsStatus::from_code(code).ok_or(DecodeError::BadValue {
                        field: "ms-status",
                        value: code.into(),
                        reason: "is not 0 (reset), 1 (partial) or 2 (synchronized)",
                    })?;
                    m.ms_status.get_or_insert(s);
                }
                SUB_MSF_STATUS => {
                    let code = status_code(v, "msf-status length")?;
                    let s = MsfStatus::from_code(code).ok_or(DecodeError::BadValue {
                        field: "msf-status",
                        value: code.into(),
                        reason: "is not 0 (enabled) or 1 (disabled)",
                    })?;
                    m.msf_status.get_or_insert(s);
                }
                SUB_MSF_CAPABILITIES => set_u32(&mut m.capabilities, v, "msf-capabilities length")?,
                _ => m.unknown.push(sub),
            }
        }
        m.function = function.ok_or(DecodeError::Invalid {
            field: "msf-type",
            reason: "mandatory sub-TLV missing",
        })?;
        if m.locators.is_empty() {
            return Err(DecodeError::Invalid {
                field: "msf-locator",
                reason: "mandatory sub-TLV missing",
            });
        }
        Ok(m)
    }

    /// Decodes a whole MSFD TLV of the default type.
    pub fn decode(buf: &[u8]) -> Result<Msfd, DecodeError> {
        Self::decode_with(buf, DEFAULT_MSFD_TLV_TYPE)
    }

    /// Decodes a whole MSFD TLV (type, length, value, padding); the type must be
    /// `tlv_type` and `buf` must hold exactly this one TLV.
    pub fn decode_with(buf: &[u8], tlv_type: u16) -> Result<Msfd, DecodeError> {
        let mut r = Reader::new(buf);
        let tlv = Tlv::read(&mut r)?;
        r.finish()?;
        if tlv.typ != tlv_type {
            return Err(DecodeError::BadValue {
                field: "msfd tlv type",
                value: tlv.typ.into(),
                reason: "is not the configured MSFD TLV type",
            });
        }
        Self::decode_value(&tlv.value)
    }
}

fn bad_len(field: &'static str, n: usize, reason: &'static str) -> DecodeError {
    DecodeError::BadValue {
        field,
        value: n as u64,
        reason,
    }
}

fn u32_of(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}

fn set_u32(slot: &mut Option<u32>, v: &[u8], field: &'static str) -> Result<(), DecodeError> {
    if v.len() != 4 {
        return Err(bad_len(field, v.len(), "is not 4"));
    }
    slot.get_or_insert(u32_of(v));
    Ok(())
}

fn status_code(v: &[u8], field: &'static str) -> Result<u16, DecodeError> {
    if v.len() != 4 {
        return Err(bad_len(field, v.len(), "is not 4"));
    }
    Ok(u16::from_be_bytes([v[0], v[1]]))
}

/// Finds and decodes every MSFD TLV of type `tlv_type` in an RI LSA body.
/// Other TLVs are skipped; a malformed TLV stream or MSFD TLV is an error
/// (the whole LSA is then suspect).
pub fn find_msfd(ri_body: &[u8], tlv_type: u16) -> Result<Vec<Msfd>, DecodeError> {
    decode_tlvs(ri_body)?
        .into_iter()
        .filter(|t| t.typ == tlv_type)
        .map(|t| Msfd::decode_value(&t.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ospf::ri::encode_tlvs;

    fn sample() -> Msfd {
        Msfd {
            function: MsfType::Both,
            locators: vec![
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                "2001:db8::10".parse().unwrap(),
            ],
            description: Some("ms-a".into()),
            epoch: Some(7),
            unavailability_timer: None,
            reboot_timer: Some(300),
            diagnosis: true,
            ms_status: Some(MsStatus::Synchronized),
            msf_status: Some(MsfStatus::Enabled),
            capabilities: Some(capability::SUBSCRIBE | capability::BULK),
            unknown: vec![Tlv::new(99, vec![1, 2, 3])],
        }
    }

    #[test]
    fn minimal_known_answer() {
        let m = Msfd {
            function: MsfType::MapServer,
            locators: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            ..Msfd::default()
        };
        let mut v = Vec::new();
        m.encode(&mut v).unwrap();
        assert_eq!(
            v,
            [
                0x80, 0x00, 0, 16, // MSFD, length 16
                0, 1, 0, 4, 0, 0, 0, 0, // MSF-TYPE L=4: MS, reserved
                0, 2, 0, 4, 192, 0, 2, 1, // MSF-LOCATOR IPv4
            ]
        );
        assert_eq!(Msfd::decode(&v).unwrap(), m);
    }

    #[test]
    fn full_known_answer() {
        let m = sample();
        let mut v = Vec::new();
        m.encode_with(32770, &mut v).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x80, 0x02, 0, 96,
            0, 1, 0, 4, 0, 2, 0, 0,
            0, 2, 0, 4, 192, 0, 2, 10,
            0, 2, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            0, 3, 0, 4, b'm', b's', b'-', b'a',
            0, 4, 0, 4, 0, 0, 0, 7,
            0, 6, 0, 4, 0, 0, 1, 0x2c,
            0, 7, 0, 0,
            0, 8, 0, 4, 0, 2, 0, 0,
            0, 9, 0, 4, 0, 0, 0, 0,
            0, 10, 0, 4, 0xC0, 0, 0, 0,
            0, 99, 0, 3, 1, 2, 3, 0,
        ];
        assert_eq!(v, want);
        assert_eq!(Msfd::decode_with(&v, 32770).unwrap(), m);
        assert!(m.has_capability(capability::BULK));
        assert!(!m.has_capability(capability::CPNP));
        assert!(Msfd::decode(&v).is_err(), "wrong outer type");
    }

    #[test]
    fn table_lengths_accepted() {
        // MSF-TYPE with L=1 (MR) and MSF-DIAGNOSIS with L=1, as the draft's table says.
        let value = [
            0, 1, 0, 1, 1, 0, 0, 0, // MSF-TYPE L=1, padded
            0, 2, 0, 4, 192, 0, 2, 7, // locator
            0, 7, 0, 1, 0, 0, 0, 0, // MSF-DIAGNOSIS L=1, padded
        ];
        let m = Msfd::decode_value(&value).unwrap();
        assert_eq!(m.function, MsfType::MapResolver);
        assert!(m.diagnosis);
        // Re-encoding uses the figures' lengths.
        let mut v = Vec::new();
        m.encode_value(&mut v).unwrap();
        assert_eq!(&v[..8], &[0, 1, 0, 4, 0, 1, 0, 0]);
        assert_eq!(&v[16..], &[0, 7, 0, 0]);
    }

    #[test]
    fn mandatory_sub_tlvs() {
        let no_type = [0, 2, 0, 4, 192, 0, 2, 7];
        assert!(matches!(
            Msfd::decode_value(&no_type),
            Err(DecodeError::Invalid {
                field: "msf-type",
                ..
            })
        ));
        let no_locator = [0, 1, 0, 4, 0, 0, 0, 0];
        assert!(matches!(
            Msfd::decode_value(&no_locator),
            Err(DecodeError::Invalid {
                field: "msf-locator",
                ..
            })
        ));
        assert!(Msfd::default().encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn bad_values() {
        let bad_loc = [0, 1, 0, 4, 0, 0, 0, 0, 0, 2, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0];
        assert!(matches!(
            Msfd::decode_value(&bad_loc),
            Err(DecodeError::BadValue {
                field: "msf-locator length",
                value: 5,
                ..
            })
        ));
        let bad_type = [0, 1, 0, 4, 0, 3, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4];
        assert!(matches!(
            Msfd::decode_value(&bad_type),
            Err(DecodeError::BadValue {
                field: "msf-type",
                value: 3,
                ..
            })
        ));
        let bad_type_len = [0, 1, 0, 2, 0, 0, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4];
        assert!(matches!(
            Msfd::decode_value(&bad_type_len),
            Err(DecodeError::BadValue {
                field: "msf-type length",
                ..
            })
        ));
        let bad_status = [
            0, 1, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4, 0, 9, 0, 4, 0, 2, 0, 0,
        ];
        assert!(matches!(
            Msfd::decode_value(&bad_status),
            Err(DecodeError::BadValue {
                field: "msf-status",
                ..
            })
        ));
        let bad_epoch = [
            0, 1, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4, 0, 4, 0, 2, 0, 1, 0, 0,
        ];
        assert!(matches!(
            Msfd::decode_value(&bad_epoch),
            Err(DecodeError::BadValue {
                field: "msf-epoch length",
                ..
            })
        ));
        let bad_utf8 = [
            0, 1, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4, 0, 3, 0, 1, 0xFF, 0, 0, 0,
        ];
        assert!(matches!(
            Msfd::decode_value(&bad_utf8),
            Err(DecodeError::Invalid {
                field: "msf-description",
                ..
            })
        ));
        // Truncated sub-TLV.
        assert!(matches!(
            Msfd::decode_value(&[0, 1, 0, 4, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn encoder_refuses_ambiguous_unknown_and_nul() {
        let mut m = sample();
        m.unknown = vec![Tlv::new(SUB_MSF_EPOCH, vec![0, 0, 0, 1])];
        assert!(m.encode(&mut Vec::new()).is_err());
        let mut m = sample();
        m.description = Some("a\0b".into());
        assert!(m.encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn duplicates_keep_the_first() {
        let value = [
            0, 1, 0, 4, 0, 1, 0, 0, // MR
            0, 1, 0, 4, 0, 0, 0, 0, // MS (ignored)
            0, 2, 0, 4, 192, 0, 2, 7, //
            0, 4, 0, 4, 0, 0, 0, 1, // epoch 1
            0, 4, 0, 4, 0, 0, 0, 2, // epoch 2 (ignored)
        ];
        let m = Msfd::decode_value(&value).unwrap();
        assert_eq!(m.function, MsfType::MapResolver);
        assert_eq!(m.epoch, Some(1));
    }

    #[test]
    fn find_in_ri_body() {
        let a = sample();
        let b = Msfd {
            function: MsfType::MapServer,
            locators: vec![IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))],
            ..Msfd::default()
        };
        let tlvs = vec![
            Tlv::new(1, vec![0x80, 0, 0, 0]), // informational capabilities
            a.to_tlv(DEFAULT_MSFD_TLV_TYPE).unwrap(),
            Tlv::new(32769, vec![5; 5]),
            b.to_tlv(DEFAULT_MSFD_TLV_TYPE).unwrap(),
        ];
        let mut body = Vec::new();
        encode_tlvs(&tlvs, &mut body).unwrap();
        assert_eq!(find_msfd(&body, DEFAULT_MSFD_TLV_TYPE).unwrap(), vec![a, b]);
        assert_eq!(find_msfd(&body, 40000).unwrap(), vec![]);
        // A broken MSFD TLV makes the whole body an error.
        let mut broken = Vec::new();
        encode_tlvs(
            &[Tlv::new(
                DEFAULT_MSFD_TLV_TYPE,
                vec![0, 2, 0, 4, 1, 2, 3, 4],
            )],
            &mut broken,
        )
        .unwrap();
        assert!(find_msfd(&broken, DEFAULT_MSFD_TLV_TYPE).is_err());
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Found by cargo-fuzz: a description with an inner NUL decoded but could
    /// not be re-encoded. It is now refused on decode, naming the field.
    #[test]
    fn inner_nul_in_description_is_refused() {
        let mut m = Msfd {
            locators: vec!["192.0.2.3".parse().unwrap()],
            description: Some("ab".into()),
            ..Default::default()
        };
        let mut ok = Vec::new();
        m.encode(&mut ok).unwrap();
        let pos = ok.windows(2).position(|w| w == b"ab").unwrap();
        let mut bad = ok.clone();
        bad[pos + 1] = 0; // "a\0"
        bad[pos] = b'a';
        let mut inner = ok.clone();
        inner[pos] = 0; // "\0b": NUL inside the text
        assert_eq!(
            Msfd::decode(&bad).unwrap().description.as_deref(),
            Some("a")
        );
        let err = Msfd::decode(&inner).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Invalid {
                    field: "msf-description",
                    ..
                }
            ),
            "{err}"
        );
        m.description = Some("a".into());
        assert_eq!(Msfd::decode(&bad).unwrap(), m);
    }
}
