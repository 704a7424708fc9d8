//! The agent's configuration: one TOML file, parsed once into typed values
//! and validated here, so roles never see raw tables. Every error names the
//! file, the key and the reason.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::msx::ExtCodepoints;
use lisp_msx_proto::{Addr, EidPrefix};
use serde::{Deserialize, Deserializer};

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

fn de_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<EidPrefix, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn de_alg<'de, D: Deserializer<'de>>(d: D) -> Result<AuthAlg, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn default_alg() -> AuthAlg {
    AuthAlg::HMAC_SHA256_128
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub agent: AgentConfig,
    pub map_server: Option<MapServerConfig>,
    pub map_resolver: Option<MapResolverConfig>,
    pub ddt: Option<DdtConfig>,
    pub xtr: Option<XtrConfig>,
    pub msx: Option<MsxConfig>,
    pub data_plane: Option<crate::dataplane::DataPlaneConfig>,
    /// ITR map-cache synchronization with the site's other ITRs.
    pub sync: Option<crate::sync::SyncConfig>,
    /// Where the file came from (set by [`Config::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Upper bound of `agent.busy_poll_us`: longer would only hide a wrong unit.
pub const MAX_BUSY_POLL_US: u32 = 1_000_000;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Shown in logs and `show` headers.
    pub name: String,
    /// Addresses the control plane binds UDP `control_port` on.
    pub listen: Vec<IpAddr>,
    pub control_port: u16,
    /// The gRPC API's Unix socket.
    pub api_socket: PathBuf,
    /// Group owning the API socket (mode 0660), like FRR's `frrvty`; unset: root only (0600).
    pub api_group: Option<String>,
    /// Prometheus /metrics; loopback unless configured otherwise; unset disables it.
    pub metrics_listen: Option<SocketAddr>,
    /// "text" or "json".
    pub log_format: String,
    /// Non-volatile state (agreements); created when missing.
    pub state_dir: PathBuf,
    /// Map-Requests accepted per second from one source address (0 = no limit).
    pub map_request_rate_limit: u32,
    /// After a packet, keep polling the sockets without sleeping for this
    /// long (µs; 0 = always sleep). Trades a busy core for wake-up latency.
    pub busy_poll_us: u32,
    pub extensions: ExtCodepoints,
    /// What discovery adapters advertise for this agent's Map-Server/Map-Resolver.
    pub advertise: AdvertiseConfig,
}

/// The mapping-function announcement (OSPF MSFD TLV) of this agent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdvertiseConfig {
    /// "enabled" or "disabled" (xTRs stop using a disabled function).
    pub status: String,
    pub description: Option<String>,
    /// Locators to advertise; empty: the `listen` addresses.
    pub locators: Vec<IpAddr>,
    /// Seconds until the function becomes unavailable (maintenance notice).
    pub unavailability_timer_secs: Option<u32>,
    /// Seconds until a planned reboot starts.
    pub reboot_timer_secs: Option<u32>,
    pub diagnosis: bool,
}

impl Default for AdvertiseConfig {
    fn default() -> Self {
        AdvertiseConfig {
            status: "enabled".into(),
            description: None,
            locators: Vec::new(),
            unavailability_timer_secs: None,
            reboot_timer_secs: None,
            diagnosis: false,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: "lisp-agent".into(),
            listen: vec!["0.0.0.0".parse().expect("literal")],
            control_port: lisp_msx_proto::lisp::CONTROL_PORT,
            api_socket: PathBuf::from("/run/lisp-msx/agent.sock"),
            api_group: None,
            metrics_listen: None,
            log_format: "text".into(),
            state_dir: PathBuf::from("/var/lib/lisp-msx"),
            map_request_rate_limit: 20_000,
            busy_poll_us: 0,
            extensions: ExtCodepoints::default(),
            advertise: AdvertiseConfig::default(),
        }
    }
}

/// LISP-MSX interconnection with other mapping systems (CPNP negotiation).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MsxConfig {
    /// Our AS number (told to peers; their policies may use it).
    pub as_number: u32,
    /// CPNP has no IANA port; both sides must agree on this one.
    #[serde(default = "default_cpnp_port")]
    pub cpnp_port: u16,
    /// Pre-shared key authenticating every CPNP frame (HMAC-SHA-256).
    pub psk: String,
    /// What we provide to peers that ask.
    #[serde(default)]
    pub offer: ServicesConfig,
    /// What we ask of peers we discover.
    #[serde(default)]
    pub request: ServicesConfig,
    /// Use a BGP-discovered mapping system only once an agreement is in place
    /// (otherwise the Map-Resolver falls back to DDT or a negative reply).
    #[serde(default = "yes")]
    pub require_agreement: bool,
    /// Agreements survive restarts in this file (relative to agent.state_dir).
    #[serde(default = "default_agreements_file")]
    pub agreements_file: PathBuf,
    #[serde(default)]
    pub policy: crate::msx::negotiation::Policy,
    /// Map-Subscribe: what we ask for and what we grant.
    #[serde(default)]
    pub subscription: crate::msx::subscribe::SubscriptionConfig,
    /// CPNP over TLS with client certificates (mutual authentication).
    pub tls: Option<TlsConfig>,
}

/// `[msx.tls]`: PEM files. Both sides present a certificate signed by `ca`;
/// a peer's certificate must name its contact address (IP SAN).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// Check that the peer's certificate names the address it connects
    /// from / we connect to (on by default).
    #[serde(default = "yes")]
    pub verify_peer_address: bool,
}

/// LISP-MSX services (offered or requested).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    pub bulk: bool,
    pub subscribe: bool,
    pub direct_map_request: bool,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig {
            bulk: true,
            subscribe: true,
            direct_map_request: true,
        }
    }
}

impl From<ServicesConfig> for lisp_msx_proto::cpnp::MsxServices {
    fn from(s: ServicesConfig) -> Self {
        lisp_msx_proto::cpnp::MsxServices {
            bulk: s.bulk,
            subscribe: s.subscribe,
            direct_map_request: s.direct_map_request,
        }
    }
}

fn default_cpnp_port() -> u16 {
    4343
}
fn default_agreements_file() -> PathBuf {
    PathBuf::from("agreements.json")
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub id: u8,
    /// The pre-shared key; never logged nor shown.
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SitePrefixConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub prefix: EidPrefix,
    #[serde(default)]
    pub accept_more_specifics: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Several ids for rolling rekeys.
    pub keys: Vec<KeyConfig>,
    pub eid_prefixes: Vec<SitePrefixConfig>,
    /// Answer for the site's ETRs even when they did not ask for proxy-reply.
    #[serde(default)]
    pub force_proxy_reply: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapServerConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Accept HMAC-SHA-1-96 registrations (off: SHA-256 variants only).
    #[serde(default)]
    pub accept_sha1: bool,
    /// Registration lifetime without the T bit, seconds (RFC 9301: 3 minutes).
    #[serde(default = "default_registration_ttl")]
    pub registration_ttl_secs: u64,
    /// Answer DDT Map-Requests with MS-ACK / MS-NOT-REGISTERED (a DDT Map-Server).
    #[serde(default)]
    pub ddt: bool,
    /// The contact address announced to other domains (BGP MS target), and
    /// the MS identifier.
    pub contact: Option<IpAddr>,
    #[serde(default)]
    pub ms_id: u16,
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteConfig>,
    /// ITRs (by source address prefix) allowed to copy the registrations
    /// with Map-Bulk over TCP 4342, to pre-provision their map-caches.
    #[serde(default, deserialize_with = "de_prefixes")]
    pub bulk_clients: Vec<EidPrefix>,
}

fn de_prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EidPrefix>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn yes() -> bool {
    true
}
fn default_registration_ttl() -> u64 {
    180
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MsRouteConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub eid_prefix: EidPrefix,
    pub map_servers: Vec<IpAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapResolverConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Static EID-prefix → Map-Server table (discovery adds to it at run time).
    #[serde(default, rename = "map_server")]
    pub routes: Vec<MsRouteConfig>,
    /// DDT roots for prefixes no Map-Server route covers.
    #[serde(default)]
    pub ddt_roots: Vec<IpAddr>,
    /// TTL (minutes) of the negative reply when nothing covers the EID.
    #[serde(default = "default_negative_ttl")]
    pub negative_ttl_minutes: u32,
    /// How long one DDT query may take before the next referral is tried, ms.
    #[serde(default = "default_ddt_timeout")]
    pub ddt_timeout_ms: u64,
}

fn default_negative_ttl() -> u32 {
    15
}
fn default_ddt_timeout() -> u64 {
    2000
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DelegationConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub prefix: EidPrefix,
    /// "node" (a child DDT node) or "map-server" (DDT Map-Servers).
    pub kind: String,
    pub referrals: Vec<IpAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DdtConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The prefixes this node is authoritative for (a root: 0.0.0.0/0 and ::/0).
    pub authoritative_prefixes: Vec<String>,
    #[serde(default, rename = "delegation")]
    pub delegations: Vec<DelegationConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocatorConfig {
    pub address: IpAddr,
    #[serde(default = "one")]
    pub priority: u8,
    #[serde(default = "hundred")]
    pub weight: u8,
}

fn one() -> u8 {
    1
}
fn hundred() -> u8 {
    100
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseMappingConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub eid_prefix: EidPrefix,
    #[serde(default = "default_record_ttl")]
    pub ttl_minutes: u32,
    pub locators: Vec<LocatorConfig>,
}

fn default_record_ttl() -> u32 {
    1440
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EtrMapServerConfig {
    pub address: IpAddr,
    pub key_id: u8,
    pub key: String,
    #[serde(default = "default_alg", deserialize_with = "de_alg")]
    pub algorithm: AuthAlg,
    #[serde(default = "yes")]
    pub proxy_reply: bool,
    #[serde(default = "yes")]
    pub want_map_notify: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticMapCacheConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub eid_prefix: EidPrefix,
    #[serde(default)]
    pub locators: Vec<LocatorConfig>,
    /// For a negative entry: "natively-forward", "drop", "send-map-request".
    pub action: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XtrConfig {
    #[serde(default = "yes")]
    pub itr: bool,
    #[serde(default = "yes")]
    pub etr: bool,
    /// Map-Resolvers; empty: use the ones discovered (OSPF MSFD).
    #[serde(default)]
    pub map_resolvers: Vec<IpAddr>,
    /// Map-Servers to register with; empty: the discovered ones with `discovered_ms_key`.
    #[serde(default, rename = "map_server")]
    pub map_servers: Vec<EtrMapServerConfig>,
    /// Key used with discovered Map-Servers.
    pub discovered_ms_key: Option<KeyConfig>,
    #[serde(default, rename = "database_mapping")]
    pub database: Vec<DatabaseMappingConfig>,
    #[serde(default, rename = "map_cache")]
    pub static_map_cache: Vec<StaticMapCacheConfig>,
    /// ITR-RLOCs put in Map-Requests; empty: the control-plane listen addresses.
    #[serde(default)]
    pub itr_rlocs: Vec<IpAddr>,
    /// Seconds between Map-Registers (RFC 9301: 60).
    #[serde(default = "default_register_interval")]
    pub register_interval_secs: u64,
    /// Seconds an ITR waits for a Map-Reply before retrying (doubling).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Maximum map-cache entries (0 = unlimited).
    #[serde(default)]
    pub map_cache_limit: usize,
    /// Cap on how long a learned mapping stays cached, in seconds (0 = the
    /// record TTL rules). Lets an operator bound staleness below one minute.
    #[serde(default)]
    pub max_ttl_secs: u64,
    /// RLOC-probe interval in seconds (0 = no probing).
    #[serde(default)]
    pub rloc_probe_interval_secs: u64,
    /// The same in milliseconds (wins when set; at least 100): a locator is
    /// marked down after 3 unanswered probes, so this bounds failover time.
    #[serde(default)]
    pub rloc_probe_interval_ms: u64,
    #[serde(default)]
    pub xtr_id: Option<u128>,
    #[serde(default)]
    pub site_id: u64,
    /// Honour Solicit-Map-Requests from ETRs.
    #[serde(default = "yes")]
    pub accept_smr: bool,
}

fn default_register_interval() -> u64 {
    60
}
fn default_request_timeout() -> u64 {
    1000
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "-".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .map(|l| format!("line {l}"))
                .unwrap_or_else(|| "-".into());
            ConfigError {
                file: file.clone(),
                key: line,
                reason: e.message().to_string(),
            }
        })?;
        cfg.path = path.to_path_buf();
        cfg.validate()?;
        Ok(cfg)
    }

    fn err(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.display().to_string(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Semantic checks that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.agent;
        if a.listen.is_empty() {
            return Err(self.err("agent.listen", "at least one address is needed"));
        }
        if !matches!(a.log_format.as_str(), "text" | "json") {
            return Err(self.err("agent.log_format", "must be \"text\" or \"json\""));
        }
        if a.busy_poll_us > MAX_BUSY_POLL_US {
            return Err(self.err(
                "agent.busy_poll_us",
                format!("at most {MAX_BUSY_POLL_US} (1 s)"),
            ));
        }
        a.extensions
            .validate()
            .map_err(|r| self.err("agent.extensions", r))?;
        if self.map_server.is_none()
            && self.map_resolver.is_none()
            && self.ddt.is_none()
            && self.xtr.is_none()
        {
            return Err(self.err(
                "-",
                "no role configured: add [map_server], [map_resolver], [ddt] or [xtr]",
            ));
        }
        if let Some(sy) = &self.sync {
            sy.validate()
                .map_err(|(k, r)| self.err(format!("sync.{k}"), r))?;
            if !self.xtr.as_ref().is_some_and(|x| x.itr) {
                return Err(self.err(
                    "sync",
                    "synchronization shares an ITR's map-cache: needs [xtr] with itr = true",
                ));
            }
        }
        if let Some(dp) = &self.data_plane {
            dp.validate().map_err(|(k, r)| self.err(k, r))?;
            if dp.assist_service && self.map_server.is_none() {
                return Err(self.err(
                    "data_plane.assist_service",
                    "mapping-system assist needs [map_server] (it forwards to registered ETRs)",
                ));
            }
        }
        if let Some(ms) = &self.map_server {
            let mut names = std::collections::HashSet::new();
            for (i, s) in ms.sites.iter().enumerate() {
                let k = format!("map_server.site[{i}]");
                if !names.insert(&s.name) {
                    return Err(self.err(
                        format!("{k}.name"),
                        format!("duplicate site name '{}'", s.name),
                    ));
                }
                if s.keys.is_empty() {
                    return Err(self.err(format!("{k}.keys"), "a site needs at least one key"));
                }
                if s.keys.iter().any(|key| key.key.is_empty()) {
                    return Err(self.err(format!("{k}.keys"), "empty key"));
                }
                let mut ids = std::collections::HashSet::new();
                if let Some(dup) = s.keys.iter().find(|key| !ids.insert(key.id)) {
                    return Err(self.err(
                        format!("{k}.keys"),
                        format!("key id {} appears twice", dup.id),
                    ));
                }
                if s.eid_prefixes.is_empty() {
                    return Err(self.err(
                        format!("{k}.eid_prefixes"),
                        "a site needs at least one EID prefix",
                    ));
                }
            }
            if ms.registration_ttl_secs == 0 {
                return Err(self.err("map_server.registration_ttl_secs", "must be positive"));
            }
        }
        if let Some(mr) = &self.map_resolver {
            for (i, r) in mr.routes.iter().enumerate() {
                if r.map_servers.is_empty() {
                    return Err(self.err(
                        format!("map_resolver.map_server[{i}].map_servers"),
                        "empty list",
                    ));
                }
            }
        }
        if let Some(ddt) = &self.ddt {
            if ddt.authoritative_prefixes.is_empty() {
                return Err(self.err(
                    "ddt.authoritative_prefixes",
                    "a DDT node needs at least one",
                ));
            }
            for (i, p) in ddt.authoritative_prefixes.iter().enumerate() {
                p.parse::<EidPrefix>()
                    .map_err(|e| self.err(format!("ddt.authoritative_prefixes[{i}]"), e))?;
            }
            for (i, d) in ddt.delegations.iter().enumerate() {
                if !matches!(d.kind.as_str(), "node" | "map-server") {
                    return Err(self.err(
                        format!("ddt.delegation[{i}].kind"),
                        "must be \"node\" or \"map-server\"",
                    ));
                }
                if d.referrals.is_empty() {
                    return Err(self.err(format!("ddt.delegation[{i}].referrals"), "empty list"));
                }
            }
        }
        if let Some(x) = &self.xtr {
            for (i, d) in x.database.iter().enumerate() {
                if d.locators.is_empty() {
                    return Err(self.err(
                        format!("xtr.database_mapping[{i}].locators"),
                        "an EID prefix needs a locator",
                    ));
                }
            }
            for (i, m) in x.map_servers.iter().enumerate() {
                if m.algorithm.digest_len().is_none() || m.algorithm == AuthAlg::NONE {
                    return Err(self.err(
                        format!("xtr.map_server[{i}].algorithm"),
                        "choose an HMAC algorithm",
                    ));
                }
                if m.key.is_empty() {
                    return Err(self.err(format!("xtr.map_server[{i}].key"), "empty key"));
                }
            }
            for (i, c) in x.static_map_cache.iter().enumerate() {
                if let Some(act) = &c.action
                    && crate::xtr::parse_action(act).is_none()
                {
                    return Err(self.err(
                        format!("xtr.map_cache[{i}].action"),
                        "must be natively-forward, send-map-request, drop or no-action",
                    ));
                }
            }
            if x.rloc_probe_interval_ms > 0 && x.rloc_probe_interval_ms < 100 {
                return Err(self.err("xtr.rloc_probe_interval_ms", "must be at least 100"));
            }
            if x.register_interval_secs == 0 {
                return Err(self.err("xtr.register_interval_secs", "must be positive"));
            }
        }
        Ok(())
    }

    /// Where agreements are persisted.
    pub fn agreements_path(&self) -> Option<PathBuf> {
        self.msx
            .as_ref()
            .map(|m| self.agent.state_dir.join(&m.agreements_file))
    }

    /// The addresses an ITR puts in its Map-Requests.
    pub fn itr_rlocs(&self) -> Vec<Addr> {
        let from = self
            .xtr
            .as_ref()
            .map(|x| x.itr_rlocs.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.agent.listen.clone());
        from.into_iter()
            .filter(|a| !a.is_unspecified())
            .map(Addr::from)
            .collect()
    }
}
