//! The TLV stream of an OSPFv2 Router Information LSA body (RFC 7770 §2.3,
//! with RFC 3630's encoding): `Type(16) | Length(16) | Value`, the value
//! padded to a multiple of 4 bytes, the padding not counted in Length.
//! Sub-TLVs (e.g. inside the MSFD TLV) use the same encoding.
//!
//! Decoding keeps every TLV, known or not: RFC 7770 says unknown TLVs are
//! ignored, which is the caller's choice once it sees the types.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

/// RI TLV types reserved for experimental use (RFC 7770 §7.1).
pub const EXPERIMENTAL_TYPES: std::ops::RangeInclusive<u16> = 32768..=32777;
/// Router Informational Capabilities TLV (RFC 7770 §2.4).
pub const TLV_INFORMATIONAL_CAPABILITIES: u16 = 1;
/// Router Functional Capabilities TLV (RFC 7770 §2.5).
pub const TLV_FUNCTIONAL_CAPABILITIES: u16 = 2;

const TLV_HEADER_LEN: usize = 4;

/// One TLV as carried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tlv {
    pub typ: u16,
    pub value: Vec<u8>,
}

impl Tlv {
    pub fn new(typ: u16, value: impl Into<Vec<u8>>) -> Self {
        Tlv {
            typ,
            value: value.into(),
        }
    }

    /// Bytes on the wire, padding included.
    pub fn wire_len(&self) -> usize {
        TLV_HEADER_LEN + padded(self.value.len())
    }

    /// Appends the TLV and its zero padding.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_tlv(buf, self.typ, &self.value)
    }

    /// Reads one TLV and skips its padding. Padding missing at the very end of
    /// the buffer is tolerated (some speakers drop it on the last TLV); a
    /// value running past the end is an error.
    pub fn read(r: &mut Reader<'_>) -> Result<Tlv, DecodeError> {
        let typ = r.u16("tlv type")?;
        let len = usize::from(r.u16("tlv length")?);
        let value = r.take(len, "tlv value")?.to_vec();
        let pad = padded(len) - len;
        r.skip(pad.min(r.remaining()), "tlv padding")?;
        Ok(Tlv { typ, value })
    }
}

#[inline]
fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends `typ | len | value | padding`.
pub fn put_tlv(buf: &mut Vec<u8>, typ: u16, value: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len()).map_err(|_| EncodeError::Invalid {
        field: "tlv length",
        reason: "value longer than 65535 bytes",
    })?;
    buf.extend_from_slice(&typ.to_be_bytes());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + (padded(value.len()) - value.len()), 0);
    Ok(())
}

/// Decodes a whole TLV stream (an RI LSA body or a TLV's value holding sub-TLVs).
pub fn decode_tlvs(buf: &[u8]) -> Result<Vec<Tlv>, DecodeError> {
    let mut r = Reader::new(buf);
    // No count on the wire: grow as TLVs are read.
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Tlv::read(&mut r)?);
    }
    Ok(out)
}

/// Encodes a TLV stream.
pub fn encode_tlvs(tlvs: &[Tlv], buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    for t in tlvs {
        t.encode(buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_not_counted_in_length() {
        let tlvs = vec![
            Tlv::new(3, b"ms1".to_vec()),
            Tlv::new(32768, vec![1, 2, 3, 4]),
        ];
        let mut v = Vec::new();
        encode_tlvs(&tlvs, &mut v).unwrap();
        assert_eq!(
            v,
            [
                0, 3, 0, 3, b'm', b's', b'1', 0, 0x80, 0x00, 0, 4, 1, 2, 3, 4
            ]
        );
        assert_eq!(tlvs.iter().map(Tlv::wire_len).sum::<usize>(), v.len());
        assert_eq!(decode_tlvs(&v).unwrap(), tlvs);
    }

    #[test]
    fn unknown_and_empty_tlvs_are_kept() {
        let v = [0x12, 0x34, 0, 0, 0xFF, 0xFF, 0, 1, 9, 0, 0, 0];
        let tlvs = decode_tlvs(&v).unwrap();
        assert_eq!(
            tlvs,
            vec![Tlv::new(0x1234, vec![]), Tlv::new(0xFFFF, vec![9])]
        );
    }

    #[test]
    fn missing_final_padding_is_tolerated() {
        let v = [0, 3, 0, 1, b'x'];
        assert_eq!(decode_tlvs(&v).unwrap(), vec![Tlv::new(3, b"x".to_vec())]);
    }

    #[test]
    fn truncation_errors() {
        assert!(matches!(
            decode_tlvs(&[0, 1, 0, 8, 1, 2, 3, 4]),
            Err(DecodeError::Truncated {
                field: "tlv value",
                ..
            })
        ));
        assert!(matches!(
            decode_tlvs(&[0, 1, 0]),
            Err(DecodeError::Truncated {
                field: "tlv length",
                ..
            })
        ));
        assert_eq!(decode_tlvs(&[]).unwrap(), vec![]);
    }

    #[test]
    fn oversized_value_refused() {
        let t = Tlv::new(1, vec![0; 65536]);
        assert!(t.encode(&mut Vec::new()).is_err());
    }
}
