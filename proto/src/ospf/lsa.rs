//! OSPFv2 LSA header (RFC 2328 §A.4.1), opaque LSAs (RFC 5250) and the LSA
//! checksum (RFC 2328 §12.1.7: the Fletcher checksum of ISO 8473 / RFC 905
//! Annex B over the LSA from byte 2, so that aging does not change it).
//!
//! ```text
//! | LS age(16)              | Options(8) | LS type(8) |
//! | Opaque Type(8) | Opaque ID(24)  (= Link State ID)  |
//! | Advertising Router(32)                            |
//! | LS sequence number(32)                            |
//! | LS checksum(16)         | length(16, header incl.) |
//! ```

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

pub const LSA_HEADER_LEN: usize = 20;
/// Opaque LSA types (RFC 5250): link-local, area and AS flooding scope.
pub const LSA_TYPE_OPAQUE_LINK: u8 = 9;
pub const LSA_TYPE_OPAQUE_AREA: u8 = 10;
pub const LSA_TYPE_OPAQUE_AS: u8 = 11;
/// Opaque type of the Router Information LSA (RFC 7770).
pub const OPAQUE_TYPE_RI: u8 = 4;
/// Options bit O: opaque-capable (RFC 5250).
pub const OPTION_O: u8 = 0x40;
/// Options bit E: external routing capability.
pub const OPTION_E: u8 = 0x02;
/// RFC 2328 InitialSequenceNumber.
pub const INITIAL_SEQ: u32 = 0x8000_0001;
/// RFC 2328 MaxAge (seconds): an LSA of this age is being flushed.
pub const MAX_AGE: u16 = 3600;
/// Largest Opaque ID (24 bits).
pub const MAX_OPAQUE_ID: u32 = 0x00FF_FFFF;

/// Offset of the checksum field inside the LSA.
const CHECKSUM_OFFSET: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LsaHeader {
    pub age: u16,
    pub options: u8,
    pub lsa_type: u8,
    /// Link State ID; for opaque LSAs Opaque Type (8) ‖ Opaque ID (24).
    pub ls_id: u32,
    pub adv_router: Ipv4Addr,
    pub seq: u32,
    pub checksum: u16,
    /// Whole LSA in bytes, header included.
    pub length: u16,
}

impl LsaHeader {
    /// A header for an opaque LSA as an OSPF API client submits it: age,
    /// options, sequence number and checksum zero (ospfd fills them in),
    /// length of the header alone (set by [`Lsa::new`]).
    pub fn opaque(lsa_type: u8, opaque_type: u8, opaque_id: u32, adv_router: Ipv4Addr) -> Self {
        LsaHeader {
            age: 0,
            options: 0,
            lsa_type,
            ls_id: opaque_ls_id(opaque_type, opaque_id),
            adv_router,
            seq: 0,
            checksum: 0,
            length: LSA_HEADER_LEN as u16,
        }
    }

    /// Opaque Type: the top byte of the Link State ID.
    #[inline]
    pub fn opaque_type(&self) -> u8 {
        (self.ls_id >> 24) as u8
    }

    /// Opaque ID: the low 24 bits of the Link State ID (the RI instance for RI LSAs).
    #[inline]
    pub fn opaque_id(&self) -> u32 {
        self.ls_id & MAX_OPAQUE_ID
    }

    #[inline]
    pub fn is_opaque(&self) -> bool {
        matches!(
            self.lsa_type,
            LSA_TYPE_OPAQUE_LINK | LSA_TYPE_OPAQUE_AREA | LSA_TYPE_OPAQUE_AS
        )
    }

    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.age.to_be_bytes());
        buf.push(self.options);
        buf.push(self.lsa_type);
        buf.extend_from_slice(&self.ls_id.to_be_bytes());
        buf.extend_from_slice(&self.adv_router.octets());
        buf.extend_from_slice(&self.seq.to_be_bytes());
        buf.extend_from_slice(&self.checksum.to_be_bytes());
        buf.extend_from_slice(&self.length.to_be_bytes());
    }

    /// Reads the 20 header bytes; `length` is checked against the header size
    /// only (the caller knows how many bytes the LSA may span).
    pub fn read(r: &mut Reader<'_>) -> Result<LsaHeader, DecodeError> {
        let h = LsaHeader {
            age: r.u16("ls age")?,
            options: r.u8("lsa options")?,
            lsa_type: r.u8("ls type")?,
            ls_id: r.u32("link state id")?,
            adv_router: Ipv4Addr::from(r.u32("advertising router")?),
            seq: r.u32("ls sequence number")?,
            checksum: r.u16("ls checksum")?,
            length: r.u16("lsa length")?,
        };
        if usize::from(h.length) < LSA_HEADER_LEN {
            return Err(DecodeError::BadValue {
                field: "lsa length",
                value: h.length.into(),
                reason: "is shorter than the 20-byte header",
            });
        }
        Ok(h)
    }

    /// Decodes exactly one 20-byte header.
    pub fn decode(buf: &[u8]) -> Result<LsaHeader, DecodeError> {
        let mut r = Reader::new(buf);
        let h = Self::read(&mut r)?;
        r.finish()?;
        Ok(h)
    }
}

/// Link State ID of an opaque LSA. The Opaque ID is truncated to 24 bits.
#[inline]
pub fn opaque_ls_id(opaque_type: u8, opaque_id: u32) -> u32 {
    (u32::from(opaque_type) << 24) | (opaque_id & MAX_OPAQUE_ID)
}

/// Any LSA: header plus the bytes after it, uninterpreted. The OSPF API
/// notifies every LSA type, so the API layer needs this generic form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lsa {
    pub header: LsaHeader,
    pub body: Vec<u8>,
}

impl Lsa {
    /// An LSA with `header.length` set from the body.
    pub fn new(mut header: LsaHeader, body: Vec<u8>) -> Self {
        header.length = (LSA_HEADER_LEN + body.len()).min(u16::MAX as usize) as u16;
        Lsa { header, body }
    }

    pub fn wire_len(&self) -> usize {
        LSA_HEADER_LEN + self.body.len()
    }

    /// Encodes header and body as they are; `header.length` must match the
    /// body (a mismatch would make every reader cut the LSA wrongly).
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.wire_len() > usize::from(u16::MAX) {
            return Err(EncodeError::Invalid {
                field: "lsa length",
                reason: "LSA longer than 65535 bytes",
            });
        }
        if usize::from(self.header.length) != self.wire_len() {
            return Err(EncodeError::Invalid {
                field: "lsa length",
                reason: "header length does not match 20 + body length",
            });
        }
        self.header.encode(buf);
        buf.extend_from_slice(&self.body);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(self.wire_len());
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Reads one LSA whose header length says how many bytes it spans.
    pub fn read(r: &mut Reader<'_>) -> Result<Lsa, DecodeError> {
        let header = LsaHeader::read(r)?;
        let body = r
            .take(usize::from(header.length) - LSA_HEADER_LEN, "lsa body")?
            .to_vec();
        Ok(Lsa { header, body })
    }

    /// Decodes exactly one LSA; every byte of `buf` must belong to it.
    pub fn decode(buf: &[u8]) -> Result<Lsa, DecodeError> {
        let mut r = Reader::new(buf);
        let lsa = Self::read(&mut r)?;
        r.finish()?;
        Ok(lsa)
    }

    /// Sets `header.checksum` to the Fletcher checksum of the encoded LSA.
    pub fn compute_checksum(&mut self) -> Result<(), EncodeError> {
        let mut bytes = self.to_bytes()?;
        set_checksum(&mut bytes).map_err(|_| EncodeError::Invalid {
            field: "ls checksum",
            reason: "LSA shorter than its header",
        })?;
        self.header.checksum =
            u16::from_be_bytes([bytes[CHECKSUM_OFFSET], bytes[CHECKSUM_OFFSET + 1]]);
        Ok(())
    }

    /// True when the carried checksum is valid for the LSA's bytes.
    pub fn checksum_ok(&self) -> bool {
        self.to_bytes().is_ok_and(|b| verify_checksum(&b))
    }
}

/// An opaque LSA (type 9, 10 or 11): the RI LSA that carries the MSFD TLV.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueLsa {
    pub header: LsaHeader,
    pub body: Vec<u8>,
}

impl OpaqueLsa {
    /// Builds an opaque LSA as an OSPF API client submits it (see
    /// [`LsaHeader::opaque`]); `header.length` is set from the body.
    pub fn new(
        lsa_type: u8,
        opaque_type: u8,
        opaque_id: u32,
        adv_router: Ipv4Addr,
        body: Vec<u8>,
    ) -> Self {
        let lsa = Lsa::new(
            LsaHeader::opaque(lsa_type, opaque_type, opaque_id, adv_router),
            body,
        );
        OpaqueLsa {
            header: lsa.header,
            body: lsa.body,
        }
    }

    pub fn wire_len(&self) -> usize {
        LSA_HEADER_LEN + self.body.len()
    }

    fn check_type(lsa_type: u8) -> bool {
        matches!(
            lsa_type,
            LSA_TYPE_OPAQUE_LINK | LSA_TYPE_OPAQUE_AREA | LSA_TYPE_OPAQUE_AS
        )
    }

    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !Self::check_type(self.header.lsa_type) {
            return Err(EncodeError::Invalid {
                field: "ls type",
                reason: "an opaque LSA has type 9, 10 or 11",
            });
        }
        self.as_lsa().encode(buf)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(self.wire_len());
        self.encode(&mut v)?;
        Ok(v)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<OpaqueLsa, DecodeError> {
        OpaqueLsa::try_from(Lsa::read(r)?)
    }

    pub fn decode(buf: &[u8]) -> Result<OpaqueLsa, DecodeError> {
        OpaqueLsa::try_from(Lsa::decode(buf)?)
    }

    /// The same LSA in its generic form.
    pub fn as_lsa(&self) -> Lsa {
        Lsa {
            header: self.header,
            body: self.body.clone(),
        }
    }

    pub fn compute_checksum(&mut self) -> Result<(), EncodeError> {
        let mut lsa = self.as_lsa();
        lsa.compute_checksum()?;
        self.header.checksum = lsa.header.checksum;
        Ok(())
    }

    pub fn checksum_ok(&self) -> bool {
        self.as_lsa().checksum_ok()
    }
}

impl TryFrom<Lsa> for OpaqueLsa {
    type Error = DecodeError;
    fn try_from(lsa: Lsa) -> Result<Self, Self::Error> {
        if !Self::check_type(lsa.header.lsa_type) {
            return Err(DecodeError::BadValue {
                field: "ls type",
                value: lsa.header.lsa_type.into(),
                reason: "is not an opaque LSA type (9, 10, 11)",
            });
        }
        Ok(OpaqueLsa {
            header: lsa.header,
            body: lsa.body,
        })
    }
}

impl From<OpaqueLsa> for Lsa {
    fn from(o: OpaqueLsa) -> Self {
        Lsa {
            header: o.header,
            body: o.body,
        }
    }
}

/// Sums (C0, C1) mod 255 of ISO 8473 over `data`, reading the two bytes at
/// `zero_at` as zero when given (the checksum field while computing).
fn fletcher_sums(data: &[u8], zero_at: Option<usize>) -> (u32, u32) {
    // 4102 bytes keep c1 below 2^31 before the reduction (RFC 1008's MODX).
    const MODX: usize = 4102;
    let (mut c0, mut c1) = (0u32, 0u32);
    for (chunk_no, chunk) in data.chunks(MODX).enumerate() {
        for (i, &b) in chunk.iter().enumerate() {
            let pos = chunk_no * MODX + i;
            let b = match zero_at {
                Some(z) if pos == z || pos == z + 1 => 0,
                _ => u32::from(b),
            };
            c0 += b;
            c1 += c0;
        }
        c0 %= 255;
        c1 %= 255;
    }
    (c0, c1)
}

/// The checksum an LSA must carry: Fletcher over bytes 2.. with the checksum
/// field taken as zero. `None` when `lsa` is shorter than a header.
pub fn lsa_checksum(lsa: &[u8]) -> Option<u16> {
    if lsa.len() < LSA_HEADER_LEN {
        return None;
    }
    let data = &lsa[2..];
    // Position of the checksum field within `data`.
    let k = CHECKSUM_OFFSET - 2;
    let (c0, c1) = fletcher_sums(data, Some(k));
    let n = data.len() as i64;
    let (c0, c1) = (i64::from(c0), i64::from(c1));
    // ISO 8473 §7.2.9 / RFC 905 Annex B: X = ((L - k - 1)·C0 - C1) mod 255,
    // Y = (-X - C0) mod 255, with 0 sent as 255.
    let mut x = ((n - k as i64 - 1) * c0 - c1).rem_euclid(255);
    if x == 0 {
        x = 255;
    }
    let mut y = 510 - c0 - x;
    if y > 255 {
        y -= 255;
    }
    Some(((x as u16) << 8) | y as u16)
}

/// Writes the checksum into an encoded LSA.
pub fn set_checksum(lsa: &mut [u8]) -> Result<u16, DecodeError> {
    let c = lsa_checksum(lsa).ok_or(DecodeError::Truncated {
        field: "lsa header",
        needed: LSA_HEADER_LEN,
        available: lsa.len(),
    })?;
    lsa[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    Ok(c)
}

/// Verifies an encoded LSA: both Fletcher sums over bytes 2.. are 0 mod 255.
/// A zero checksum field is never valid (the computation cannot produce it).
pub fn verify_checksum(lsa: &[u8]) -> bool {
    if lsa.len() < LSA_HEADER_LEN || lsa[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2] == [0, 0] {
        return false;
    }
    fletcher_sums(&lsa[2..], None) == (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An area-scoped RI LSA (type 10, Opaque Type 4, Opaque ID 1) from
    /// 192.0.2.1, seq 0x80000001, age 1, options 0x42 (O and E), carrying one
    /// TLV 32768 with an MSF-TYPE (MS) sub-TLV. Built by hand from RFC 2328
    /// §A.4.1 / RFC 7770 / draft-boucadair-lisp-function-discovery-03; the
    /// checksum 0x16a5 was computed independently (a separate script following
    /// RFC 905 Annex B's X/Y formulas) and is confirmed below by the defining
    /// property: both Fletcher sums over bytes 2.. are 0 mod 255.
    const RI_LSA: [u8; 32] = [
        0x00, 0x01, 0x42, 0x0a, // age 1, options O|E, type 10
        0x04, 0x00, 0x00, 0x01, // opaque type 4, opaque id 1
        0xc0, 0x00, 0x02, 0x01, // advertising router 192.0.2.1
        0x80, 0x00, 0x00, 0x01, // seq
        0x16, 0xa5, 0x00, 0x20, // checksum, length 32
        0x80, 0x00, 0x00, 0x08, // TLV 32768, length 8
        0x00, 0x01, 0x00, 0x04, // MSF-TYPE, length 4
        0x00, 0x00, 0x00, 0x00, // MS, reserved
    ];

    #[test]
    fn checksum_known_answer() {
        assert_eq!(lsa_checksum(&RI_LSA), Some(0x16a5));
        assert!(verify_checksum(&RI_LSA));
        // The defining property, computed without the module's helpers.
        let (mut c0, mut c1) = (0u32, 0u32);
        for &b in &RI_LSA[2..] {
            c0 = (c0 + u32::from(b)) % 255;
            c1 = (c1 + c0) % 255;
        }
        assert_eq!((c0, c1), (0, 0));
        // Age is excluded: a flushed (MaxAge) copy keeps the checksum.
        let mut aged = RI_LSA;
        aged[..2].copy_from_slice(&MAX_AGE.to_be_bytes());
        assert!(verify_checksum(&aged));
        // Any other change breaks it.
        let mut bad = RI_LSA;
        bad[31] = 1;
        assert!(!verify_checksum(&bad));
        assert!(!verify_checksum(&RI_LSA[..19]));
    }

    #[test]
    fn decode_known_lsa() {
        let lsa = OpaqueLsa::decode(&RI_LSA).unwrap();
        assert_eq!(lsa.header.age, 1);
        assert_eq!(lsa.header.options, OPTION_O | OPTION_E);
        assert_eq!(lsa.header.lsa_type, LSA_TYPE_OPAQUE_AREA);
        assert_eq!(lsa.header.opaque_type(), OPAQUE_TYPE_RI);
        assert_eq!(lsa.header.opaque_id(), 1);
        assert_eq!(lsa.header.adv_router, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(lsa.header.seq, INITIAL_SEQ);
        assert_eq!(lsa.header.checksum, 0x16a5);
        assert_eq!(lsa.header.length, 32);
        assert_eq!(lsa.body.len(), 12);
        assert!(lsa.checksum_ok());
        assert_eq!(lsa.to_bytes().unwrap(), RI_LSA);
    }

    #[test]
    fn build_and_checksum() {
        let mut lsa = OpaqueLsa::new(
            LSA_TYPE_OPAQUE_AREA,
            OPAQUE_TYPE_RI,
            1,
            Ipv4Addr::new(192, 0, 2, 1),
            RI_LSA[20..].to_vec(),
        );
        lsa.header.age = 1;
        lsa.header.options = 0x42;
        lsa.header.seq = INITIAL_SEQ;
        assert!(!lsa.checksum_ok());
        lsa.compute_checksum().unwrap();
        assert_eq!(lsa.header.checksum, 0x16a5);
        assert_eq!(lsa.to_bytes().unwrap(), RI_LSA);
    }

    #[test]
    fn checksum_of_long_lsa_matches_property() {
        // Longer than one MODX block, so the chunked reduction is exercised.
        let body: Vec<u8> = (0..9000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut lsa = Lsa::new(
            LsaHeader::opaque(
                LSA_TYPE_OPAQUE_AS,
                200,
                0xABCDEF,
                Ipv4Addr::new(198, 51, 100, 7),
            ),
            body,
        );
        lsa.header.seq = 0x8000_1234;
        lsa.compute_checksum().unwrap();
        assert!(lsa.checksum_ok());
        let bytes = lsa.to_bytes().unwrap();
        let (mut c0, mut c1) = (0u64, 0u64);
        for &b in &bytes[2..] {
            c0 = (c0 + u64::from(b)) % 255;
            c1 = (c1 + c0) % 255;
        }
        assert_eq!((c0, c1), (0, 0));
    }

    #[test]
    fn errors() {
        // Truncated header.
        assert!(matches!(
            LsaHeader::decode(&RI_LSA[..19]),
            Err(DecodeError::Truncated { .. })
        ));
        // Length below the header size.
        let mut short = RI_LSA;
        short[18..20].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            Lsa::decode(&short),
            Err(DecodeError::BadValue {
                field: "lsa length",
                ..
            })
        ));
        // Length beyond the buffer.
        let mut long = RI_LSA;
        long[18..20].copy_from_slice(&36u16.to_be_bytes());
        assert!(matches!(
            Lsa::decode(&long),
            Err(DecodeError::Truncated { .. })
        ));
        // Trailing bytes.
        let mut extra = RI_LSA.to_vec();
        extra.push(0);
        assert!(matches!(
            Lsa::decode(&extra),
            Err(DecodeError::TrailingBytes(1))
        ));
        // Not opaque.
        let mut router = RI_LSA;
        router[3] = 1;
        assert!(Lsa::decode(&router).is_ok());
        assert!(matches!(
            OpaqueLsa::decode(&router),
            Err(DecodeError::BadValue {
                field: "ls type",
                ..
            })
        ));
        // Encoder refuses an inconsistent length and a non-opaque type.
        let mut lsa = OpaqueLsa::decode(&RI_LSA).unwrap();
        lsa.body.push(0);
        assert!(lsa.to_bytes().is_err());
        let mut lsa = OpaqueLsa::decode(&RI_LSA).unwrap();
        lsa.header.lsa_type = 1;
        assert!(lsa.to_bytes().is_err());
    }

    #[test]
    fn opaque_id_is_24_bits() {
        assert_eq!(opaque_ls_id(4, 1), 0x0400_0001);
        assert_eq!(opaque_ls_id(4, 0x0123_4567), 0x0423_4567);
        let h = LsaHeader::opaque(10, 250, 0xFFFFFF, Ipv4Addr::UNSPECIFIED);
        assert_eq!((h.opaque_type(), h.opaque_id()), (250, 0xFFFFFF));
    }
}
