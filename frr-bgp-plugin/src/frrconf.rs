//! `frr-bgp-plugin print-frr-config`: the bgpd (and zebra) lines an
//! operator adds so that bgpd peers with the plugin, accepts its routes and
//! lets the community cross eBGP.

use std::fmt::Write;
use std::net::IpAddr;

use crate::bgp::fsm::Mode;
use crate::bgp::prefix::Family;
use crate::config::Config;

/// How to satisfy `bgp ebgp-requires-policy` (on by default in FRR's
/// traditional profile: without policy, eBGP peers get and take nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EbgpPolicy {
    /// Permit-all route-maps in and out on the listed eBGP neighbors.
    RouteMaps,
    /// `no bgp ebgp-requires-policy`.
    Disable,
    /// Print nothing for it: the operator's own policies already permit.
    Keep,
}

#[derive(Clone, Debug)]
pub struct SnippetOptions {
    pub ebgp_neighbors: Vec<IpAddr>,
    pub ibgp_neighbors: Vec<IpAddr>,
    pub ebgp_policy: EbgpPolicy,
    /// Print the static discard routes for the next hops.
    pub discard_routes: bool,
}

pub const RM_PLUGIN_IN: &str = "LISP-MSX-PLUGIN-IN";
pub const RM_PLUGIN_OUT: &str = "LISP-MSX-PLUGIN-OUT";
pub const RM_EBGP_IN: &str = "LISP-MSX-EBGP-IN";
pub const RM_EBGP_OUT: &str = "LISP-MSX-EBGP-OUT";

/// The snippet, in `vtysh`/frr.conf syntax (FRR 8.x).
pub fn snippet(cfg: &Config, o: &SnippetOptions) -> String {
    let mut s = String::new();
    let b = &cfg.bgp;
    let me = b.local_address;
    let bgpd = b
        .bgpd_address
        .map(|a| a.to_string())
        .unwrap_or_else(|| "<bgp.bgpd_address>".into());
    let fams = cfg.families();
    let _ = writeln!(
        s,
        "! ---- frr-bgp-plugin (printed by `frr-bgp-plugin print-frr-config`) ----"
    );
    let _ = writeln!(
        s,
        "! The plugin's BGP speaker uses {me}; bgpd (AS {}) talks to it from {bgpd},",
        b.local_as
    );
    let _ = writeln!(
        s,
        "! which must be an address on lo other than 127.x (bgpd fails to peer over 127.0.0.x)."
    );
    let _ = writeln!(
        s,
        "! Its routes carry the LISP Mapping System Target extended community"
    );
    let _ = writeln!(
        s,
        "! (type {:#04x}/{:#04x}, sub-type {:#04x}); bgpd shows it as \"UNK:{}, {}\".",
        cfg.codepoint.v4_type,
        cfg.codepoint.v6_type,
        cfg.codepoint.subtype,
        cfg.codepoint.v4_type,
        cfg.codepoint.subtype
    );
    if cfg.compat.send_split() {
        let _ = writeln!(
            s,
            "! IPv6 contacts also travel split over four communities of type {:#04x} (\"UNK:{}, {}\"):",
            cfg.compat.split_ec_type, cfg.compat.split_ec_type, cfg.codepoint.subtype
        );
        let _ = writeln!(
            s,
            "! FRR 8.4 bgpd does not pass the IPv6 form (attribute 25) on (README)."
        );
    }
    if o.discard_routes && (b.next_hop_v4.is_some() || b.next_hop_v6.is_some()) {
        let _ = writeln!(s, "!");
        let _ = writeln!(
            s,
            "! Next hops of the originated EID prefixes: bgpd refuses its own addresses as next"
        );
        let _ = writeln!(
            s,
            "! hops and needs them resolvable, so they are discard addresses (README, next hop)."
        );
        if let Some(nh) = b.next_hop_v4 {
            let _ = writeln!(s, "ip route {nh}/32 Null0");
        }
        if let Some(nh) = b.next_hop_v6 {
            let _ = writeln!(s, "ipv6 route {nh}/128 Null0");
        }
    }
    let _ = writeln!(s, "!");
    let _ = writeln!(s, "route-map {RM_PLUGIN_IN} permit 10");
    let _ = writeln!(s, "exit");
    let _ = writeln!(s, "route-map {RM_PLUGIN_OUT} permit 10");
    let _ = writeln!(s, "exit");
    let ebgp_maps = o.ebgp_policy == EbgpPolicy::RouteMaps && !o.ebgp_neighbors.is_empty();
    if ebgp_maps {
        let _ = writeln!(
            s,
            "! eBGP policy (bgp ebgp-requires-policy): permit, so that the tagged prefixes cross."
        );
        let _ = writeln!(
            s,
            "! If these neighbors have route-maps already, permit the EID prefixes in them instead."
        );
        let _ = writeln!(s, "route-map {RM_EBGP_IN} permit 10");
        let _ = writeln!(s, "exit");
        let _ = writeln!(s, "route-map {RM_EBGP_OUT} permit 10");
        let _ = writeln!(s, "exit");
    }
    let _ = writeln!(s, "!");
    let _ = writeln!(s, "router bgp {}", b.local_as);
    if o.ebgp_policy == EbgpPolicy::Disable {
        let _ = writeln!(s, " no bgp ebgp-requires-policy");
    }
    let _ = writeln!(s, " neighbor {me} remote-as internal");
    let _ = writeln!(s, " neighbor {me} description {}", cfg.name);
    if let Some(a) = b.bgpd_address {
        let _ = writeln!(s, " neighbor {me} update-source {a}");
    }
    match cfg.mode() {
        Mode::Active => {
            let _ = writeln!(s, " neighbor {me} passive");
        }
        Mode::Passive => {
            if b.listen_port != 179 {
                let _ = writeln!(s, " neighbor {me} port {}", b.listen_port);
            }
        }
    }
    for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let _ = writeln!(s, " !");
        let _ = writeln!(s, " address-family {f}");
        if fams.contains(&f) {
            let _ = writeln!(s, "  neighbor {me} activate");
            let _ = writeln!(
                s,
                "  ! route-reflector-client: bgpd also sends the plugin what its iBGP peers learned,"
            );
            let _ = writeln!(s, "  ! and passes the plugin's routes on to them.");
            let _ = writeln!(s, "  neighbor {me} route-reflector-client");
            let _ = writeln!(s, "  neighbor {me} send-community extended");
            let _ = writeln!(s, "  neighbor {me} route-map {RM_PLUGIN_IN} in");
            let _ = writeln!(s, "  neighbor {me} route-map {RM_PLUGIN_OUT} out");
        } else if f == Family::Ipv4Unicast {
            let _ = writeln!(s, "  no neighbor {me} activate");
        }
        for n in &o.ebgp_neighbors {
            let _ = writeln!(s, "  neighbor {n} send-community extended");
            let _ = writeln!(s, "  neighbor {n} next-hop-self");
            if ebgp_maps {
                let _ = writeln!(s, "  neighbor {n} route-map {RM_EBGP_IN} in");
                let _ = writeln!(s, "  neighbor {n} route-map {RM_EBGP_OUT} out");
            }
        }
        for n in &o.ibgp_neighbors {
            let _ = writeln!(s, "  neighbor {n} send-community extended");
            let _ = writeln!(s, "  neighbor {n} next-hop-self");
        }
        let _ = writeln!(s, " exit-address-family");
    }
    let _ = writeln!(s, "exit");
    let _ = writeln!(s, "! ---- end of frr-bgp-plugin ----");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(
            r#"
[bgp]
local_as = 65002
bgpd_address = "192.0.2.2"
next_hop_v4 = "192.0.2.254"
next_hop_v6 = "2001:db8:ffff::fe"
"#,
            "t",
        )
        .unwrap()
    }

    #[test]
    fn snippet_contents() {
        let o = SnippetOptions {
            ebgp_neighbors: vec!["198.51.100.1".parse().unwrap()],
            ibgp_neighbors: vec![],
            ebgp_policy: EbgpPolicy::RouteMaps,
            discard_routes: true,
        };
        let s = snippet(&cfg(), &o);
        for line in [
            "ip route 192.0.2.254/32 Null0",
            "ipv6 route 2001:db8:ffff::fe/128 Null0",
            "router bgp 65002",
            " neighbor 127.0.0.2 remote-as internal",
            " neighbor 127.0.0.2 update-source 192.0.2.2",
            " neighbor 127.0.0.2 passive",
            " address-family ipv6 unicast",
            "  neighbor 127.0.0.2 route-reflector-client",
            "  neighbor 198.51.100.1 route-map LISP-MSX-EBGP-OUT out",
            "  neighbor 198.51.100.1 next-hop-self",
            "UNK:1, 176",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        assert!(!s.contains("ebgp-requires-policy\n") || s.contains("(bgp ebgp-requires-policy)"));
        let s = snippet(
            &cfg(),
            &SnippetOptions {
                ebgp_policy: EbgpPolicy::Disable,
                ..o
            },
        );
        assert!(s.contains(" no bgp ebgp-requires-policy"));
        assert!(!s.contains("LISP-MSX-EBGP-IN"));
    }
}
