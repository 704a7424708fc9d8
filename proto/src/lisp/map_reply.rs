//! Map-Reply (RFC 9301 §5.4).

use bytes::BufMut;
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::lisp::TYPE_MAP_REPLY;
use crate::lisp::record::{EidRecord, check_records, decode_records};
use crate::wire::Reader;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapReply {
    /// P: answer to an RLOC probe.
    pub probe: bool,
    /// E: the ETR can echo nonces.
    pub echo_nonce: bool,
    /// S: LISP-SEC data follows the records (kept raw).
    pub security: bool,
    pub nonce: u64,
    pub records: Vec<EidRecord>,
    /// Opaque LISP-SEC data when `security` is set.
    pub security_data: Vec<u8>,
}

impl MapReply {
    pub fn new(nonce: u64, records: Vec<EidRecord>) -> Self {
        MapReply {
            nonce,
            records,
            ..Default::default()
        }
    }

    pub fn wire_len(&self) -> usize {
        12 + self.records.iter().map(EidRecord::wire_len).sum::<usize>() + self.security_data.len()
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        check_records(&self.records, 255)?;
        if !self.security && !self.security_data.is_empty() {
            return Err(EncodeError::Invalid {
                field: "security data",
                reason: "present without the S bit",
            });
        }
        let mut w: u32 = u32::from(TYPE_MAP_REPLY) << 28;
        w |= u32::from(self.probe) << 27;
        w |= u32::from(self.echo_nonce) << 26;
        w |= u32::from(self.security) << 25;
        w |= self.records.len() as u32;
        buf.put_u32(w);
        buf.put_u64(self.nonce);
        for rec in &self.records {
            rec.encode(buf);
        }
        buf.put_slice(&self.security_data);
        Ok(())
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapReply, DecodeError> {
        let nonce = r.u64("nonce")?;
        let records = decode_records(r, (w & 0xFF) as usize)?;
        let security = w & (1 << 25) != 0;
        let security_data = if security {
            r.rest().to_vec()
        } else {
            Vec::new()
        };
        if security {
            r.skip(r.remaining(), "security data")?;
        }
        r.finish()?;
        Ok(MapReply {
            probe: w & (1 << 27) != 0,
            echo_nonce: w & (1 << 26) != 0,
            security,
            nonce,
            records,
            security_data,
        })
    }
}
