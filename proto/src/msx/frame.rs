//! Stream framing for LISP messages over TCP (Map-Bulk, sync channel): each
//! message is preceded by its length as a u16 (the bulk draft defines no
//! framing; wire-formats.md §0 decides this one).

use crate::error::{DecodeError, EncodeError};

pub const FRAME_HEADER_LEN: usize = 2;
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Appends a frame holding `message` (already encoded).
pub fn put_frame(out: &mut Vec<u8>, message: &[u8]) -> Result<(), EncodeError> {
    if message.len() > MAX_FRAME {
        return Err(EncodeError::Invalid {
            field: "frame",
            reason: "message longer than 65535 bytes",
        });
    }
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// Encodes `write` into `out` as one frame, patching the length afterwards.
pub fn frame_with(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    write(out)?;
    let len = out.len() - start - FRAME_HEADER_LEN;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(EncodeError::Invalid {
            field: "frame",
            reason: "message longer than 65535 bytes",
        });
    }
    out[start..start + 2].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}

/// Splits the next complete frame off the front of `buf`: `Ok(Some((msg, used)))`,
/// `Ok(None)` when more bytes are needed. A zero-length frame is an error.
pub fn next_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, DecodeError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
    if len == 0 {
        return Err(DecodeError::Invalid {
            field: "frame length",
            reason: "zero",
        });
    }
    if buf.len() < FRAME_HEADER_LEN + len {
        return Ok(None);
    }
    Ok(Some((
        &buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len],
        FRAME_HEADER_LEN + len,
    )))
}
