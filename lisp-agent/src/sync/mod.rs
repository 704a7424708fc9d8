//! ITR map-cache synchronization (issue 8): the redundant ITRs of one site
//! (behind VRRP) share their map-caches so a failover loses no packets.
//!
//! - [`engine`]: the sans-I/O engine. The reactor owns one [`SyncEngine`],
//!   feeds it its ITR's cache changes, the transport's [`SyncEvent`]s,
//!   Map-Solicits and timer ticks, and carries out the [`Action`]s it drains.
//! - [`transport`]: TCP (optionally TLS) between members, frames
//!   authenticated with HMAC-SHA-256 under the set's key, a byte-bounded
//!   queue per peer.
//!
//! Wiring (the reactor side, a few lines):
//!
//! ```text
//! let out = sync::transport::spawn(&cfg, tls, stats, Arc::new(move |ev| handle.send(Input::Sync(ev))))?;
//! let mut engine = SyncEngine::new(cfg, member_id, cp.sync, Time::now());
//! // on Input::Sync(ev): engine.on_event(ev, Time::now())
//! // on a Map-Solicit (UDP 4342): engine.on_solicit(from, &msg, packet, Time::now())
//! // on ITR cache changes: engine.local_upsert(..) / local_remove(..) / on_expiry(..)
//! // timer: at engine.next_wakeup(), engine.tick(Time::now())
//! // after each call: for a in engine.drain_actions() {
//! //     if !out.apply(&a) { /* Install, Remove, SendSolicit, Ready: the reactor's part */ } }
//! ```
//!
//! Records installed from [`Action::Install`] must not be fed back through
//! `local_upsert` (they are already shared).

pub mod engine;
pub mod transport;

use std::net::IpAddr;

use lisp_msx_proto::EncodeError;
use lisp_msx_proto::msx::{MapSolicit, SyncMode};
use serde::Deserialize;

use crate::config::TlsConfig;

pub use engine::{
    Action, EngineStats, ExpiryDecision, MemberState, MemberStats, Refusal, SyncEngine, SyncEvent,
    SyncKey, Time,
};

/// Default TCP port of the sync channel (no IANA port exists).
pub const DEFAULT_PORT: u16 = 4344;

/// How members share their caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The reference approach, kept to measure against: every Map-Reply sends
    /// the whole cache to the set; receivers replace everything and reset TTLs.
    Naive,
    /// Changed records only, batched; absolute expiry times; anti-entropy repair.
    #[default]
    Smart,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Naive => "naive",
            Mode::Smart => "smart",
        }
    }

    /// The code carried in Map-Solicit and Map-Sync Hello.
    pub fn wire(self) -> SyncMode {
        match self {
            Mode::Naive => SyncMode::NAIVE,
            Mode::Smart => SyncMode::SMART,
        }
    }
}

/// `[sync]`: this ITR's synchronization set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Identifies the set; members of other sets are refused.
    pub set_id: u32,
    #[serde(default)]
    pub mode: Mode,
    /// Pre-shared key: HMAC-SHA-256 of every frame and Map-Solicit
    /// authentication. Required unless `tls` is configured.
    #[serde(default)]
    pub key: String,
    /// The other members (their sync addresses).
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    /// Where Map-Solicit requests go (a multicast or broadcast address on
    /// the site LAN); without it, to each configured peer.
    #[serde(default)]
    pub solicit_group: Option<IpAddr>,
    /// Our sync address (listen and connect from it; peers know us by it).
    #[serde(default)]
    pub listen: Option<IpAddr>,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Changes are batched for at most this long...
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// ...or until this many are pending.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// Bytes queued towards one peer before it is marked for repair and
    /// sent nothing more until its queue drains.
    #[serde(default = "default_peer_queue_bytes")]
    pub peer_queue_bytes: usize,
    /// Anti-entropy: digests are exchanged this often (smart).
    #[serde(default = "default_digest_interval")]
    pub digest_interval_secs: u64,
    /// An expiring record used by the data plane within this window is
    /// refreshed (smart); otherwise it is dropped locally.
    #[serde(default = "default_refresh_window")]
    pub refresh_window_secs: u64,
    /// After a (re)start, forward traffic once the peers' caches are pulled
    /// or after this long, whichever comes first.
    #[serde(default = "default_pull_timeout_ms")]
    pub pull_timeout_ms: u64,
    /// The channel over TLS with client certificates (as `[msx.tls]`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_batch_ms() -> u64 {
    10
}
fn default_batch_max() -> usize {
    512
}
fn default_peer_queue_bytes() -> usize {
    4 << 20
}
fn default_digest_interval() -> u64 {
    5
}
fn default_refresh_window() -> u64 {
    60
}
fn default_pull_timeout_ms() -> u64 {
    2000
}

/// A queue must hold a few full-size messages so bulk transfers can pace.
pub const MIN_PEER_QUEUE_BYTES: usize = 256 * 1024;

impl SyncConfig {
    /// A configuration with every default (tests, benchmarks).
    pub fn new(set_id: u32, key: &str) -> SyncConfig {
        SyncConfig {
            set_id,
            mode: Mode::default(),
            key: key.to_string(),
            peers: Vec::new(),
            solicit_group: None,
            listen: None,
            port: DEFAULT_PORT,
            batch_ms: default_batch_ms(),
            batch_max: default_batch_max(),
            peer_queue_bytes: default_peer_queue_bytes(),
            digest_interval_secs: default_digest_interval(),
            refresh_window_secs: default_refresh_window(),
            pull_timeout_ms: default_pull_timeout_ms(),
            tls: None,
        }
    }

    /// Checks values serde cannot: `Err((field, reason))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, r: &str| Err((f.to_string(), r.to_string()));
        if self.key.is_empty() && self.tls.is_none() {
            return err(
                "key",
                "required: the sync channel must be authenticated (or configure tls)",
            );
        }
        if self.peers.is_empty() && self.solicit_group.is_none() {
            return err(
                "peers",
                "no member to synchronize with: list peers or set solicit_group",
            );
        }
        for (i, p) in self.peers.iter().enumerate() {
            if Some(*p) == self.listen {
                return err("peers", &format!("{p} is this member's own address"));
            }
            if self.peers[..i].contains(p) {
                return err("peers", &format!("{p} is listed twice"));
            }
            if p.is_unspecified() || p.is_multicast() {
                return err("peers", &format!("{p} is not a unicast address"));
            }
        }
        if self.listen.is_some_and(|l| l.is_multicast()) {
            return err("listen", "must be a unicast address");
        }
        if self.port == 0 {
            return err("port", "must not be 0");
        }
        if !(1..=1000).contains(&self.batch_ms) {
            return err("batch_ms", "must be between 1 and 1000");
        }
        if !(1..=usize::from(u16::MAX)).contains(&self.batch_max) {
            return err("batch_max", "must be between 1 and 65535");
        }
        if self.peer_queue_bytes < MIN_PEER_QUEUE_BYTES {
            return err(
                "peer_queue_bytes",
                &format!("must be at least {MIN_PEER_QUEUE_BYTES}"),
            );
        }
        if !(1..=3600).contains(&self.digest_interval_secs) {
            return err("digest_interval_secs", "must be between 1 and 3600");
        }
        if !(1..=86_400).contains(&self.refresh_window_secs) {
            return err("refresh_window_secs", "must be between 1 and 86400");
        }
        if self.pull_timeout_ms > 600_000 {
            return err("pull_timeout_ms", "must be at most 600000");
        }
        Ok(())
    }

    /// The frame key (`None`: TLS alone protects the channel).
    pub fn psk(&self) -> Option<&[u8]> {
        (!self.key.is_empty()).then_some(self.key.as_bytes())
    }
}

/// Encodes a Map-Solicit the engine asked for ([`Action::SendSolicit`]):
/// signed with the set's key, unsigned when only TLS is configured.
pub fn encode_solicit(msg: &MapSolicit, subtype: u16, key: &str) -> Result<Vec<u8>, EncodeError> {
    if key.is_empty() {
        let mut out = Vec::new();
        msg.encode(&mut out, subtype)?;
        Ok(out)
    } else {
        msg.encode_signed(subtype, key.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SyncConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_and_validation_name_the_field() {
        let c = parse("set_id = 7\nkey = \"k\"\npeers = [\"192.0.2.2\"]").unwrap();
        assert_eq!(c.mode, Mode::Smart);
        assert_eq!(c.port, 4344);
        assert_eq!((c.batch_ms, c.batch_max), (10, 512));
        assert_eq!(c.peer_queue_bytes, 4 << 20);
        assert_eq!(
            (
                c.digest_interval_secs,
                c.refresh_window_secs,
                c.pull_timeout_ms
            ),
            (5, 60, 2000)
        );
        c.validate().unwrap();
        let n = parse("set_id = 7\nmode = \"naive\"\nkey = \"k\"\nsolicit_group = \"224.0.0.240\"")
            .unwrap();
        assert_eq!(n.mode, Mode::Naive);
        n.validate().unwrap();
        assert!(parse("set_id = 7\nmode = \"clever\"").is_err());
        assert!(parse("set_id = 7\nkey = \"k\"\nbogus = 1").is_err());

        let field = |s: &str| parse(s).unwrap().validate().unwrap_err().0;
        assert_eq!(field("set_id = 1\npeers = [\"192.0.2.2\"]"), "key");
        assert_eq!(field("set_id = 1\nkey = \"k\""), "peers");
        assert_eq!(
            field("set_id = 1\nkey = \"k\"\nlisten = \"192.0.2.1\"\npeers = [\"192.0.2.1\"]"),
            "peers"
        );
        assert_eq!(
            field("set_id = 1\nkey = \"k\"\npeers = [\"192.0.2.2\"]\npeer_queue_bytes = 1000"),
            "peer_queue_bytes"
        );
        assert_eq!(
            field("set_id = 1\nkey = \"k\"\npeers = [\"192.0.2.2\"]\nbatch_ms = 0"),
            "batch_ms"
        );
    }
}
