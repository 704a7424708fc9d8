//! Map-Solicit-Request / Map-Solicit-Response: ours (no draft defines them).
//! An ITR recovering from failure solicits its synchronization set; each live
//! member answers with its RLOCs, capabilities and cache size, then the ITR
//! pulls caches with Map-Bulk-Request.
//!
//! ```text
//! |Type=15| Sub-type=1026 |R|B|U| Rsvd(5) |  RLOC Count  |
//! |                    ITR Identifier                    |
//! |                       Nonce (64)                     |
//! | Key ID (8) | Alg ID (8) | Authentication Data Length |
//! ~                  Authentication Data                 ~
//! |                  Sync-Set Identifier                 |
//! |  Sync-Mode   |              Reserved                 |
//! |          Record Count (mappings the sender holds)    |
//! ~     RLOCs (AFI-encoded) x RLOC Count                 ~
//! ```

use serde::{Deserialize, Serialize};

use crate::addr::Addr;
use crate::error::{DecodeError, EncodeError};
use crate::lisp::auth::{self, AuthAlg, AuthError};
use crate::msx::{check_count, word0};
use crate::wire::{Reader, bounded_capacity};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncMode(pub u8);

impl SyncMode {
    pub const NONE: SyncMode = SyncMode(0);
    pub const NAIVE: SyncMode = SyncMode(1);
    pub const SMART: SyncMode = SyncMode(2);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "none",
            1 => "naive",
            2 => "smart",
            _ => "unassigned",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSolicit {
    /// R: this is a Map-Solicit-Response.
    pub response: bool,
    /// B: the sender serves Map-Bulk-Request.
    pub bulk: bool,
    /// U: the sender accepts Map-Subscribe.
    pub subscribe: bool,
    pub itr_id: u32,
    pub nonce: u64,
    pub key_id: u8,
    pub alg: AuthAlg,
    pub auth_data: Vec<u8>,
    pub sync_set: u32,
    pub sync_mode: SyncMode,
    /// Mappings the sender holds (0 in a request).
    pub record_count: u32,
    pub rlocs: Vec<Addr>,
}

impl MapSolicit {
    pub fn encode(&self, buf: &mut Vec<u8>, subtype: u16) -> Result<(), EncodeError> {
        check_count("rlocs", self.rlocs.len(), 255)?;
        if self.auth_data.len() > u16::MAX as usize {
            return Err(EncodeError::Invalid {
                field: "authentication data",
                reason: "longer than 65535 bytes",
            });
        }
        let low = (u16::from(self.response) << 15)
            | (u16::from(self.bulk) << 14)
            | (u16::from(self.subscribe) << 13)
            | self.rlocs.len() as u16;
        buf.extend_from_slice(&word0(subtype, low).to_be_bytes());
        buf.extend_from_slice(&self.itr_id.to_be_bytes());
        buf.extend_from_slice(&self.nonce.to_be_bytes());
        buf.push(self.key_id);
        buf.push(self.alg.0);
        buf.extend_from_slice(&(self.auth_data.len() as u16).to_be_bytes());
        buf.extend_from_slice(&self.auth_data);
        buf.extend_from_slice(&self.sync_set.to_be_bytes());
        buf.extend_from_slice(&(u32::from(self.sync_mode.0) << 24).to_be_bytes());
        buf.extend_from_slice(&self.record_count.to_be_bytes());
        for a in &self.rlocs {
            a.encode(buf);
        }
        Ok(())
    }

    /// Encodes and signs (salt "Map-Solicit Authentication").
    pub fn encode_signed(&self, subtype: u16, psk: &[u8]) -> Result<Vec<u8>, EncodeError> {
        super::encode_signed(
            self.alg,
            self.key_id,
            self.nonce,
            psk,
            auth::salt::MAP_SOLICIT,
            |len| {
                let mut m = self.clone();
                m.auth_data = vec![0; len];
                let mut out = Vec::new();
                m.encode(&mut out, subtype)?;
                Ok(out)
            },
        )
    }

    /// Verifies the raw packet this message was decoded from.
    pub fn verify(&self, packet: &[u8], psk: &[u8]) -> Result<(), AuthError> {
        let field = super::auth_field(self.alg, self.key_id, self.nonce, self.auth_data.len());
        auth::verify(packet, &field, psk, auth::salt::MAP_SOLICIT)
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<MapSolicit, DecodeError> {
        let itr_id = r.u32("ITR identifier")?;
        let nonce = r.u64("nonce")?;
        let key_id = r.u8("key id")?;
        let alg = AuthAlg(r.u8("algorithm id")?);
        let auth_len = usize::from(r.u16("auth data length")?);
        let auth_data = r.take(auth_len, "authentication data")?.to_vec();
        let sync_set = r.u32("sync-set identifier")?;
        let sync_mode = SyncMode((r.u32("sync mode")? >> 24) as u8);
        let record_count = r.u32("record count")?;
        let n = (w & 0xFF) as usize;
        let mut rlocs = Vec::with_capacity(bounded_capacity(n, r.remaining(), 2));
        for _ in 0..n {
            rlocs.push(Addr::decode(r, "solicit RLOC")?);
        }
        Ok(MapSolicit {
            response: w & 0x8000 != 0,
            bulk: w & 0x4000 != 0,
            subscribe: w & 0x2000 != 0,
            itr_id,
            nonce,
            key_id,
            alg,
            auth_data,
            sync_set,
            sync_mode,
            record_count,
            rlocs,
        })
    }
}
