//! ospf-msfd's configuration (TOML), validated at load; errors name file, key, reason.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The lisp-agent API socket.
    pub agent_socket: PathBuf,
    /// ospfd's API server (ospfd -a), in the router's namespace.
    pub ospfd: SocketAddr,
    /// Sync port P (ospfd calls back on P+1); 0 picks one in 49152..65534.
    pub client_port: u16,
    /// Area of the area-scoped RI LSA (opaque LSA type 10).
    pub area: Ipv4Addr,
    /// 10 (area scope) or 11 (AS scope).
    pub lsa_type: u8,
    /// RI instance (Opaque ID). 0 is ospfd's own RI, so the default is 1.
    pub opaque_id: u32,
    /// RI TLV type of the MSFD TLV (never assigned; experimental range).
    pub tlv_type: u16,
    /// Name in the agent's `show lisp discovery`.
    pub name: String,
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent_socket: PathBuf::from("/run/lisp-msx/agent.sock"),
            ospfd: "127.0.0.1:2607".parse().expect("literal"),
            client_port: 0,
            area: Ipv4Addr::UNSPECIFIED,
            lsa_type: 10,
            opaque_id: 1,
            tlv_type: lisp_msx_proto::ospf::msfd::DEFAULT_MSFD_TLV_TYPE,
            name: "ospf-msfd".into(),
            log_format: "text".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let err = |key: &str, reason: String| ConfigError {
            file: file.clone(),
            key: key.into(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err("-", format!("cannot read: {e}")))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            err(
                &line.map_or("-".into(), |l| format!("line {l}")),
                e.message().to_string(),
            )
        })?;
        if !matches!(cfg.lsa_type, 10 | 11) {
            return Err(err(
                "lsa_type",
                "must be 10 (area scope) or 11 (AS scope)".into(),
            ));
        }
        if cfg.opaque_id == 0 || cfg.opaque_id > 0x00FF_FFFF {
            return Err(err(
                "opaque_id",
                "must be 1..16777215 (0 is ospfd's own Router Information)".into(),
            ));
        }
        if cfg.client_port == u16::MAX {
            return Err(err("client_port", "P+1 must be a valid port".into()));
        }
        if !matches!(cfg.log_format.as_str(), "text" | "json") {
            return Err(err("log_format", "must be \"text\" or \"json\"".into()));
        }
        Ok(cfg)
    }
}
