//! frr-bgp-plugin's configuration (TOML), validated at load; errors name
//! file, key and reason.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lisp_msx_proto::bgp::MsTargetCodepoint;
use serde::Deserialize;

use crate::bgp::fsm::Mode;
use crate::bgp::prefix::{Family, Prefix};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The lisp-agent API socket.
    pub agent_socket: PathBuf,
    /// Name in the agent's `show lisp discovery` and in logs.
    pub name: String,
    /// "text" or "json".
    pub log_format: String,
    pub bgp: BgpConfig,
    /// Type/sub-type octets of the MS-target community.
    pub codepoint: MsTargetCodepoint,
    pub originate: OriginateConfig,
    pub zebra: ZebraSection,
    pub compat: CompatConfig,
}

/// How IPv6 contacts travel (see `compat.rs` and the README: FRR 8.4 bgpd
/// does not pass attribute 25 on).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompatConfig {
    /// "both" (attribute 25 as the draft says, and the split form in
    /// attribute 16), "rfc5701" (attribute 25 only) or "split".
    pub ipv6_contact_encoding: String,
    /// Type octet of the split form (transitive experimental, 0x80-0x8F).
    pub split_ec_type: u8,
}

impl Default for CompatConfig {
    fn default() -> Self {
        CompatConfig {
            ipv6_contact_encoding: "both".into(),
            split_ec_type: 0x83,
        }
    }
}

impl CompatConfig {
    pub fn send_rfc5701(&self) -> bool {
        self.ipv6_contact_encoding != "split"
    }
    pub fn send_split(&self) -> bool {
        self.ipv6_contact_encoding != "rfc5701"
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConfig {
    /// The AS of the local bgpd (the session is iBGP).
    pub local_as: u32,
    /// bgpd's address for this session: the `update-source` address bgpd
    /// uses towards us (a non-127 address on its loopback).
    pub bgpd_address: Option<IpAddr>,
    pub bgpd_port: u16,
    /// Our address: the source of the connection, and the neighbor address
    /// configured in bgpd. 127.0.0.2 by default (see README: loopback trap).
    pub local_address: IpAddr,
    /// Port we listen on in passive mode.
    pub listen_port: u16,
    /// Our BGP identifier; default: `local_address` when IPv4.
    pub router_id: Option<Ipv4Addr>,
    /// "active": we connect to bgpd (bgpd has `neighbor ... passive`);
    /// "passive": bgpd connects to us.
    pub mode: String,
    /// Hold time offered (0, or at least 3 s).
    pub hold_time_secs: u16,
    /// Longest wait between connection attempts.
    pub connect_retry_secs: f64,
    /// Families to negotiate: "ipv4", "ipv6".
    pub families: Vec<String>,
    /// Next hop of originated IPv4 prefixes. Must be an address bgpd accepts:
    /// not one of the router's own, not martian, resolvable (README).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop of originated IPv6 prefixes (global address).
    pub next_hop_v6: Option<std::net::Ipv6Addr>,
    pub local_pref: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OriginateConfig {
    /// Originate the EID prefixes of the local agent's Map-Server (its
    /// sites), tagged with its contact address and MS identifier.
    pub from_agent: bool,
    /// Withdraw the agent's prefixes when the agent has been unreachable for
    /// this long (0: keep them until it comes back).
    pub agent_loss_withdraw_secs: u64,
    /// Prefixes originated regardless of the agent.
    #[serde(rename = "prefix")]
    pub prefixes: Vec<StaticOrigination>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticOrigination {
    pub prefix: String,
    pub contact: IpAddr,
    #[serde(default)]
    pub ms_id: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZebraSection {
    pub enabled: bool,
    /// zserv.api of the router's zebra (/var/run/frr/NS/zserv.api with -N NS).
    pub socket: PathBuf,
    /// Let a default route make a contact reachable.
    pub resolve_via_default: bool,
    pub reconnect_max_secs: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent_socket: PathBuf::from("/run/lisp-msx/agent.sock"),
            name: "frr-bgp-plugin".into(),
            log_format: "text".into(),
            bgp: BgpConfig::default(),
            codepoint: MsTargetCodepoint::default(),
            originate: OriginateConfig::default(),
            zebra: ZebraSection::default(),
            compat: CompatConfig::default(),
        }
    }
}

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig {
            local_as: 0,
            bgpd_address: None,
            bgpd_port: 179,
            local_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            listen_port: 179,
            router_id: None,
            mode: "active".into(),
            hold_time_secs: 90,
            connect_retry_secs: 5.0,
            families: vec!["ipv4".into(), "ipv6".into()],
            next_hop_v4: None,
            next_hop_v6: None,
            local_pref: 100,
        }
    }
}

impl Default for OriginateConfig {
    fn default() -> Self {
        OriginateConfig {
            from_agent: true,
            agent_loss_withdraw_secs: 30,
            prefixes: Vec::new(),
        }
    }
}

impl Default for ZebraSection {
    fn default() -> Self {
        ZebraSection {
            enabled: true,
            socket: PathBuf::from("/var/run/frr/zserv.api"),
            resolve_via_default: false,
            reconnect_max_secs: 5.0,
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

/// A static origination, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origination {
    pub prefix: Prefix,
    pub contact: IpAddr,
    pub ms_id: u16,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "-".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            file: file.to_string(),
            key: key.into(),
            reason,
        };
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            err(
                &line.map_or("-".into(), |l| format!("line {l}")),
                e.message().to_string(),
            )
        })?;
        let b = &cfg.bgp;
        if b.local_as == 0 {
            return Err(err(
                "bgp.local_as",
                "required: the AS of the local bgpd (the session is iBGP)".into(),
            ));
        }
        if b.bgpd_address.is_none() && b.mode == "active" {
            return Err(err(
                "bgp.bgpd_address",
                "required in active mode: bgpd's update-source address for this session".into(),
            ));
        }
        if !matches!(b.mode.as_str(), "active" | "passive") {
            return Err(err("bgp.mode", "must be \"active\" or \"passive\"".into()));
        }
        if b.hold_time_secs == 1 || b.hold_time_secs == 2 {
            return Err(err(
                "bgp.hold_time_secs",
                "must be 0 or at least 3 (RFC 4271)".into(),
            ));
        }
        if !(b.connect_retry_secs > 0.0 && b.connect_retry_secs <= 3600.0) {
            return Err(err("bgp.connect_retry_secs", "must be in (0, 3600]".into()));
        }
        if b.families.is_empty() {
            return Err(err(
                "bgp.families",
                "at least one of \"ipv4\", \"ipv6\"".into(),
            ));
        }
        for (i, f) in b.families.iter().enumerate() {
            if !matches!(f.as_str(), "ipv4" | "ipv6") {
                return Err(err(
                    &format!("bgp.families[{i}]"),
                    format!("'{f}' is neither \"ipv4\" nor \"ipv6\""),
                ));
            }
        }
        if b.router_id.is_none() && !b.local_address.is_ipv4() {
            return Err(err(
                "bgp.router_id",
                "required when local_address is IPv6".into(),
            ));
        }
        if let Some(id) = cfg.router_id()
            && (id.is_unspecified() || id.is_multicast() || u32::from(id) >= 0xF000_0000)
        {
            return Err(err(
                "bgp.router_id",
                format!("{id} is not a valid BGP identifier"),
            ));
        }
        if let Some(nh) = b.next_hop_v4
            && (nh.is_unspecified() || nh.is_loopback() || nh.is_multicast() || nh.is_broadcast())
        {
            return Err(err(
                "bgp.next_hop_v4",
                format!("{nh} is a martian: bgpd would refuse the routes"),
            ));
        }
        if let Some(nh) = b.next_hop_v6
            && (nh.is_unspecified()
                || nh.is_loopback()
                || nh.is_multicast()
                || (nh.segments()[0] & 0xffc0) == 0xfe80)
        {
            return Err(err(
                "bgp.next_hop_v6",
                format!("{nh} is not a global unicast address"),
            ));
        }
        if !matches!(cfg.log_format.as_str(), "text" | "json") {
            return Err(err("log_format", "must be \"text\" or \"json\"".into()));
        }
        if !(cfg.zebra.reconnect_max_secs > 0.0 && cfg.zebra.reconnect_max_secs <= 3600.0) {
            return Err(err(
                "zebra.reconnect_max_secs",
                "must be in (0, 3600]".into(),
            ));
        }
        if !matches!(
            cfg.compat.ipv6_contact_encoding.as_str(),
            "both" | "rfc5701" | "split"
        ) {
            return Err(err(
                "compat.ipv6_contact_encoding",
                "must be \"both\", \"rfc5701\" or \"split\"".into(),
            ));
        }
        if !(0x80..=0x8F).contains(&cfg.compat.split_ec_type)
            || cfg.compat.split_ec_type == cfg.codepoint.v4_type
        {
            return Err(err(
                "compat.split_ec_type",
                "must be a transitive experimental type 0x80-0x8F other than codepoint.v4_type"
                    .into(),
            ));
        }
        let fams = cfg.families();
        for (i, s) in cfg.originate.prefixes.iter().enumerate() {
            let key = format!("originate.prefix[{i}]");
            let p: Prefix = s
                .prefix
                .parse()
                .map_err(|e| err(&format!("{key}.prefix"), format!("{e}")))?;
            if !fams.contains(&p.family()) {
                return Err(err(
                    &format!("{key}.prefix"),
                    format!("{} is not among bgp.families", p.family()),
                ));
            }
            let nh_missing = match p.family() {
                Family::Ipv4Unicast => b.next_hop_v4.is_none(),
                Family::Ipv6Unicast => b.next_hop_v6.is_none(),
            };
            if nh_missing {
                let k = if p.family() == Family::Ipv4Unicast {
                    "next_hop_v4"
                } else {
                    "next_hop_v6"
                };
                return Err(err(
                    &format!("{key}.prefix"),
                    format!("originating {p} needs bgp.{k}"),
                ));
            }
        }
        Ok(cfg)
    }

    pub fn families(&self) -> Vec<Family> {
        let mut v = Vec::new();
        for f in &self.bgp.families {
            let f = if f == "ipv6" {
                Family::Ipv6Unicast
            } else {
                Family::Ipv4Unicast
            };
            if !v.contains(&f) {
                v.push(f);
            }
        }
        v
    }

    pub fn router_id(&self) -> Option<Ipv4Addr> {
        self.bgp.router_id.or(match self.bgp.local_address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    pub fn mode(&self) -> Mode {
        if self.bgp.mode == "passive" {
            Mode::Passive
        } else {
            Mode::Active
        }
    }

    pub fn bgpd_socket(&self) -> Option<SocketAddr> {
        self.bgp
            .bgpd_address
            .map(|a| SocketAddr::new(a, self.bgp.bgpd_port))
    }

    pub fn connect_retry_max(&self) -> Duration {
        Duration::from_secs_f64(self.bgp.connect_retry_secs)
    }

    /// The static originations, checked by `parse`.
    pub fn static_originations(&self) -> Vec<Origination> {
        self.originate
            .prefixes
            .iter()
            .filter_map(|s| {
                Some(Origination {
                    prefix: s.prefix.parse().ok()?,
                    contact: s.contact,
                    ms_id: s.ms_id,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
agent_socket = "/tmp/agent.sock"
[bgp]
local_as = 65002
bgpd_address = "192.0.2.2"
hold_time_secs = 3
next_hop_v4 = "192.0.2.254"
next_hop_v6 = "2001:db8:ffff::fe"
[codepoint]
subtype = 0xB1
[[originate.prefix]]
prefix = "203.0.113.0/24"
contact = "198.51.100.6"
ms_id = 1
[zebra]
socket = "/var/run/frr/r2/zserv.api"
"#;

    #[test]
    fn good_config() {
        let c = Config::parse(GOOD, "t.toml").unwrap();
        assert_eq!(c.bgp.local_as, 65002);
        assert_eq!(c.router_id(), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(c.codepoint.subtype, 0xB1);
        assert_eq!(c.codepoint.v4_type, 1);
        assert_eq!(c.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert_eq!(
            c.static_originations()[0].prefix.to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(c.mode(), Mode::Active);
        assert_eq!(c.bgpd_socket().unwrap().to_string(), "192.0.2.2:179");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[bgp]\nbgpd_address = \"192.0.2.2\"", "bgp.local_as"),
            ("[bgp]\nlocal_as = 1", "bgp.bgpd_address"),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\nmode = \"both\"",
                "bgp.mode",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\nhold_time_secs = 2",
                "bgp.hold_time_secs",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\nfamilies = [\"l2vpn\"]",
                "bgp.families[0]",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\nnext_hop_v4 = \"127.0.0.1\"",
                "bgp.next_hop_v4",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\n[[originate.prefix]]\nprefix = \"203.0.113.0/24\"\ncontact = \"192.0.2.1\"",
                "originate.prefix[0].prefix",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\nnext_hop_v4 = \"192.0.2.9\"\n[[originate.prefix]]\nprefix = \"203.0.113.0/33\"\ncontact = \"192.0.2.1\"",
                "originate.prefix[0].prefix",
            ),
            ("bogus = 1", "line 1"),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\n[compat]\nipv6_contact_encoding = \"x\"",
                "compat.ipv6_contact_encoding",
            ),
            (
                "[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"\n[compat]\nsplit_ec_type = 0x01",
                "compat.split_ec_type",
            ),
            (
                "log_format = \"xml\"\n[bgp]\nlocal_as = 1\nbgpd_address = \"192.0.2.2\"",
                "log_format",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(text, "t.toml").unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.to_string().starts_with("t.toml: "), "{e}");
        }
    }
}
