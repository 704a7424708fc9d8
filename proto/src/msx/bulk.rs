//! Map-Bulk-Request / Map-Bulk-Reply (draft-boucadair-lisp-bulk-07), over TCP
//! 4342 with the framing of [`crate::msx::frame`].
//!
//! ```text
//! Request: |Type=15| Sub-type |R=0|        Reserved (15)       |
//!          |                 Transaction ID                    |
//!          | Filter Count |           Reserved (24)            |   (our addition)
//!          ~ Filters ...                                       ~
//! Reply:   |Type=15| Sub-type |R=1|M|Rs| Records Count | Result|
//!          |                 Transaction ID                    |
//!          | Failed Count |           Reserved (24)            |   (our addition)
//!          ~ Failed filters: Code(8) | Length(8) | text       ~
//!          ~ EID-records (RFC 9301 §5.4)                       ~
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::lisp::record::{EidRecord, check_records, decode_records};
use crate::msx::filter::Filter;
use crate::msx::{check_count, decode_filters, word0};
use crate::wire::{Reader, bounded_capacity};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BulkResult(pub u8);

impl BulkResult {
    pub const SUCCESS: BulkResult = BulkResult(0);
    /// Never retry.
    pub const PROHIBITED: BulkResult = BulkResult(1);
    /// Retry after 60 s.
    pub const LIMIT: BulkResult = BulkResult(2);
    /// Retry after 300 s.
    pub const OUT_OF_RESOURCES: BulkResult = BulkResult(3);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "success",
            1 => "bulk-prohibited",
            2 => "bulk-limit",
            3 => "out-of-resources",
            _ => "unassigned",
        }
    }

    /// How long the draft tells the requester to wait before retrying
    /// (`None`: never retry; `Some(0)`: no wait).
    pub fn retry_after_secs(self) -> Option<u64> {
        match self.0 {
            0 => Some(0),
            1 => None,
            2 => Some(60),
            _ => Some(300),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilterCode(pub u8);

impl FilterCode {
    /// Drop that filter format.
    pub const UNSUPPORTED: FilterCode = FilterCode(0);
    /// Do not resend.
    pub const BAD: FilterCode = FilterCode(1);
    /// Too many filters; re-issue with fewer.
    pub const MAX: FilterCode = FilterCode(2);
    /// Local policy; wait at least 60 s.
    pub const LOCAL: FilterCode = FilterCode(3);
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailedFilter {
    pub code: FilterCode,
    pub filter: Filter,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapBulkRequest {
    pub transaction_id: u32,
    /// Empty or `[Filter::Any]`: the whole table.
    pub filters: Vec<Filter>,
}

impl MapBulkRequest {
    pub fn encode(&self, buf: &mut Vec<u8>, subtype: u16) -> Result<(), EncodeError> {
        check_count("filters", self.filters.len(), 255)?;
        buf.extend_from_slice(&word0(subtype, 0).to_be_bytes());
        buf.extend_from_slice(&self.transaction_id.to_be_bytes());
        buf.extend_from_slice(&((self.filters.len() as u32) << 24).to_be_bytes());
        for f in &self.filters {
            f.encode(buf)?;
        }
        Ok(())
    }

    pub(crate) fn decode_body(_w: u32, r: &mut Reader<'_>) -> Result<MapBulkRequest, DecodeError> {
        let transaction_id = r.u32("transaction id")?;
        let count = (r.u32("filter count")? >> 24) as usize;
        let filters = decode_filters(r, count)?;
        Ok(MapBulkRequest {
            transaction_id,
            filters,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapBulkReply {
    /// M: more replies follow for this transaction.
    pub more: bool,
    pub result: BulkResult,
    pub transaction_id: u32,
    pub failed_filters: Vec<FailedFilter>,
    /// At most 255 per message; page with `more`.
    pub records: Vec<EidRecord>,
}

impl MapBulkReply {
    /// Records one reply can carry (8-bit Records Count).
    pub const MAX_RECORDS: usize = 255;

    pub fn wire_len(&self) -> usize {
        12 + self
            .failed_filters
            .iter()
            .map(|f| 1 + f.filter.wire_len())
            .sum::<usize>()
            + self.records.iter().map(EidRecord::wire_len).sum::<usize>()
    }

    pub fn encode(&self, buf: &mut Vec<u8>, subtype: u16) -> Result<(), EncodeError> {
        check_records(&self.records, Self::MAX_RECORDS)?;
        check_count("failed filters", self.failed_filters.len(), 255)?;
        if self.result.0 > 15 {
            return Err(EncodeError::Invalid {
                field: "bulk result",
                reason: "exceeds 4 bits",
            });
        }
        let low = 0x8000u16
            | (u16::from(self.more) << 14)
            | ((self.records.len() as u16) << 4)
            | u16::from(self.result.0);
        buf.extend_from_slice(&word0(subtype, low).to_be_bytes());
        buf.extend_from_slice(&self.transaction_id.to_be_bytes());
        buf.extend_from_slice(&((self.failed_filters.len() as u32) << 24).to_be_bytes());
        for f in &self.failed_filters {
            buf.push(f.code.0);
            f.filter.encode(buf)?;
        }
        for rec in &self.records {
            rec.encode(buf);
        }
        Ok(())
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapBulkReply, DecodeError> {
        let transaction_id = r.u32("transaction id")?;
        let failed = (r.u32("failed filter count")? >> 24) as usize;
        let mut failed_filters = Vec::with_capacity(bounded_capacity(failed, r.remaining(), 2));
        for _ in 0..failed {
            let code = FilterCode(r.u8("failed filter code")?);
            failed_filters.push(FailedFilter {
                code,
                filter: Filter::decode(r)?,
            });
        }
        let records = decode_records(r, ((w >> 4) & 0xFF) as usize)?;
        Ok(MapBulkReply {
            more: w & 0x4000 != 0,
            result: BulkResult((w & 0xF) as u8),
            transaction_id,
            failed_filters,
            records,
        })
    }
}
