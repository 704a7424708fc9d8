//! Typed decode errors. Every variant names the field that was wrong, so a
//! counter or a log line can say exactly why a packet was dropped.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated {field}: needs {needed} bytes, {available} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("invalid {field}: value {value} {reason}")]
    BadValue {
        field: &'static str,
        value: u64,
        reason: &'static str,
    },
    #[error("unsupported AFI {afi} in {field}")]
    UnknownAfi { field: &'static str, afi: u16 },
    #[error("unsupported LCAF type {lcaf_type} in {field}")]
    UnknownLcaf { field: &'static str, lcaf_type: u8 },
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("unknown shared-extension sub-type {0}")]
    UnknownSubtype(u16),
    #[error("{count} {field} exceed the limit of {limit}")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

impl DecodeError {
    /// A short stable label for counters (`malformed{reason="..."}`).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Invalid { .. } | DecodeError::BadValue { .. } => "invalid",
            DecodeError::UnknownAfi { .. } => "unknown_afi",
            DecodeError::UnknownLcaf { .. } => "unknown_lcaf",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::UnknownSubtype(_) => "unknown_subtype",
            DecodeError::TooMany { .. } => "too_many",
            DecodeError::TrailingBytes(_) => "trailing_bytes",
        }
    }
}

/// Errors raised while encoding: values that do not fit their wire field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{field} has {count} entries, the wire field holds at most {limit}")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}
