//! The LISP data-plane header (RFC 9300 §5.3): 8 bytes after the outer UDP header.
//!
//! ```text
//! |N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
//! |                 Instance ID/Locator-Status-Bits               |
//! ```

use crate::error::DecodeError;

pub const DATA_HEADER_LEN: usize = 8;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct DataHeader {
    /// N: the nonce field carries a nonce (exclusive with V).
    pub nonce_present: bool,
    /// L: the locator-status-bits are meaningful.
    pub lsb_enabled: bool,
    /// E: echo-nonce request (needs N).
    pub echo_nonce: bool,
    /// V: the field carries source and destination map-versions.
    pub map_version: bool,
    /// I: an instance id occupies the high 24 bits of the second word.
    pub instance_present: bool,
    /// 24 bits: nonce, or two 12-bit map-versions when V is set.
    pub nonce: u32,
    /// 24 bits when `instance_present`.
    pub instance_id: u32,
    /// 32 bits, or 8 when `instance_present`.
    pub lsb: u32,
}

impl DataHeader {
    pub fn encode(&self) -> [u8; DATA_HEADER_LEN] {
        let flags = (u8::from(self.nonce_present) << 7)
            | (u8::from(self.lsb_enabled) << 6)
            | (u8::from(self.echo_nonce) << 5)
            | (u8::from(self.map_version) << 4)
            | (u8::from(self.instance_present) << 3);
        let w0 = (u32::from(flags) << 24) | (self.nonce & 0x00FF_FFFF);
        let w1 = if self.instance_present {
            ((self.instance_id & 0x00FF_FFFF) << 8) | (self.lsb & 0xFF)
        } else {
            self.lsb
        };
        let mut out = [0u8; DATA_HEADER_LEN];
        out[..4].copy_from_slice(&w0.to_be_bytes());
        out[4..].copy_from_slice(&w1.to_be_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<DataHeader, DecodeError> {
        let h: [u8; 8] = buf
            .get(..DATA_HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated {
                field: "LISP data header",
                needed: DATA_HEADER_LEN,
                available: buf.len(),
            })?;
        let w0 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let w1 = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let flags = h[0];
        let instance_present = flags & 0x08 != 0;
        let nonce_present = flags & 0x80 != 0;
        let map_version = flags & 0x10 != 0;
        if nonce_present && map_version {
            return Err(DecodeError::Invalid {
                field: "LISP data header flags",
                reason: "N and V are both set",
            });
        }
        Ok(DataHeader {
            nonce_present,
            lsb_enabled: flags & 0x40 != 0,
            echo_nonce: flags & 0x20 != 0,
            map_version,
            instance_present,
            nonce: w0 & 0x00FF_FFFF,
            instance_id: if instance_present { w1 >> 8 } else { 0 },
            lsb: if instance_present { w1 & 0xFF } else { w1 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_instance_round_trips() {
        let h = DataHeader {
            nonce_present: true,
            instance_present: true,
            nonce: 0xABCDEF,
            instance_id: 0x123456,
            lsb: 0x3,
            ..Default::default()
        };
        let b = h.encode();
        assert_eq!(b, [0x88, 0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56, 0x03]);
        assert_eq!(DataHeader::decode(&b).unwrap(), h);
    }
}
