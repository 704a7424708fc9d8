//! BGP ⇄ the agent's API, as pure functions: which routes to originate for
//! the agent's local Map-Server, what an UPDATE teaches, and the
//! `DiscoveredSystem`s that follow.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lisp_msx_proto::api;
use lisp_msx_proto::bgp::{
    MsTarget, MsTargetCodepoint, encode_ms_targets, ms_targets_in_ext_communities,
    ms_targets_in_ipv6_ext_communities,
};

use crate::bgp::prefix::{Family, Prefix};
use crate::bgp::update::{AsPath, Origin, PathAttrs, Update};
use crate::config::{Config, Origination};

/// What we want bgpd to hold: prefix → the mapping systems serving it.
pub type Desired = BTreeMap<Prefix, Vec<MsTarget>>;

/// Why an agent-announced prefix is not originated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub what: String,
    pub reason: String,
}

/// The originations: static ones from the configuration plus the agent's
/// Map-Server prefixes (when it has a Map-Server with a contact address).
pub fn desired(
    cfg: &Config,
    statics: &[Origination],
    local: Option<&api::LocalFunctions>,
) -> (Desired, Vec<Skipped>) {
    let mut out: Desired = BTreeMap::new();
    let mut skipped = Vec::new();
    let fams = cfg.families();
    for s in statics {
        push(&mut out, s.prefix, MsTarget::new(s.contact, s.ms_id));
    }
    if let Some(lf) = local.filter(|_| cfg.originate.from_agent)
        && lf.map_server
        && !lf.eid_prefixes.is_empty()
    {
        let contact = match lf.contact.parse::<IpAddr>() {
            Ok(c) => Some(c),
            Err(_) => {
                skipped.push(Skipped {
                    what: "the agent's Map-Server".into(),
                    reason: if lf.contact.is_empty() {
                        "has no contact address ([map_server] contact)".into()
                    } else {
                        format!("contact '{}' is not an address", lf.contact)
                    },
                });
                None
            }
        };
        let ms_id = match u16::try_from(lf.ms_id) {
            Ok(id) => id,
            Err(_) => {
                skipped.push(Skipped {
                    what: "the agent's Map-Server".into(),
                    reason: format!(
                        "ms_id {} does not fit the 16-bit Local Administrator field",
                        lf.ms_id
                    ),
                });
                0
            }
        };
        if let Some(contact) = contact {
            for p in &lf.eid_prefixes {
                // Instance ids ("[7]203.0.113.0/24") have no place in unicast BGP.
                if p.starts_with('[') && !p.starts_with("[0]") {
                    skipped.push(Skipped {
                        what: p.clone(),
                        reason: "has an instance id; unicast BGP carries instance 0 only".into(),
                    });
                    continue;
                }
                let text = p.strip_prefix("[0]").unwrap_or(p);
                match text.parse::<Prefix>() {
                    Ok(prefix) if fams.contains(&prefix.family()) => {
                        push(&mut out, prefix, MsTarget::new(contact, ms_id))
                    }
                    Ok(prefix) => skipped.push(Skipped {
                        what: p.clone(),
                        reason: format!("{} is not negotiated (bgp.families)", prefix.family()),
                    }),
                    Err(e) => skipped.push(Skipped {
                        what: p.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    // Prefixes without a next hop for their family cannot be originated.
    out.retain(|p, _| {
        let ok = match p.family() {
            Family::Ipv4Unicast => cfg.bgp.next_hop_v4.is_some(),
            Family::Ipv6Unicast => cfg.bgp.next_hop_v6.is_some(),
        };
        if !ok {
            skipped.push(Skipped {
                what: p.to_string(),
                reason: format!(
                    "no next hop configured for {} (bgp.{})",
                    p.family(),
                    if p.family() == Family::Ipv4Unicast {
                        "next_hop_v4"
                    } else {
                        "next_hop_v6"
                    }
                ),
            });
        }
        ok
    });
    (out, skipped)
}

fn push(out: &mut Desired, p: Prefix, t: MsTarget) {
    let v = out.entry(p).or_default();
    if !v.contains(&t) {
        v.push(t);
        v.sort();
    }
}

/// The attributes of an originated route.
pub fn origin_attrs(cfg: &Config, prefix: &Prefix, targets: &[MsTarget]) -> Option<PathAttrs> {
    let next_hop = match prefix.family() {
        Family::Ipv4Unicast => IpAddr::V4(cfg.bgp.next_hop_v4?),
        Family::Ipv6Unicast => IpAddr::V6(cfg.bgp.next_hop_v6?),
    };
    let (mut v4, mut v6) = encode_ms_targets(targets, &cfg.codepoint);
    if cfg.compat.send_split() {
        v4.extend(crate::compat::encode_split(
            targets,
            cfg.compat.split_ec_type,
            cfg.codepoint.subtype,
        ));
    }
    if !cfg.compat.send_rfc5701() {
        v6.clear();
    }
    Some(PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::default(),
        next_hop: Some(next_hop),
        local_pref: Some(cfg.bgp.local_pref),
        ext_communities: v4,
        ipv6_ext_communities: v6,
        ..Default::default()
    })
}

/// A best path bgpd sent us that carries MS targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedPath {
    pub targets: Vec<MsTarget>,
    pub as_path: Vec<u32>,
    pub origin_as: Option<u32>,
    pub next_hop: Option<IpAddr>,
}

/// What an UPDATE changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub changed: bool,
    /// Prefixes withdrawn because of RFC 7606 treat-as-withdraw.
    pub treated_as_withdraw: Vec<Prefix>,
    /// Prefixes whose MS-target communities were malformed (counted in
    /// `treated_as_withdraw` too).
    pub malformed_targets: Vec<Prefix>,
    /// Our own routes reflected back (ORIGINATOR_ID = our identifier).
    pub reflected_own: Vec<Prefix>,
    /// Split-form IPv6 contacts that could not be put together.
    pub split_problems: Vec<String>,
}

/// Default type octet of the split IPv6 form.
pub const DEFAULT_SPLIT_TYPE: u8 = 0x83;

/// Adj-RIB-In, reduced to the prefixes that carry MS targets.
#[derive(Debug, Default, Clone)]
pub struct Learned {
    pub paths: BTreeMap<Prefix, LearnedPath>,
}

impl Learned {
    /// Applies an UPDATE (RFC 7606 findings included). `own_id` is our BGP
    /// identifier: a route reflected back to us carries it as ORIGINATOR_ID
    /// and is ignored (RFC 4456 §8): it is our own origination.
    pub fn apply(
        &mut self,
        u: &Update,
        cp: &MsTargetCodepoint,
        own_id: Option<std::net::Ipv4Addr>,
    ) -> Applied {
        self.apply_with(u, cp, own_id, DEFAULT_SPLIT_TYPE)
    }

    /// [`apply`](Self::apply) with the type octet of the split IPv6 form.
    pub fn apply_with(
        &mut self,
        u: &Update,
        cp: &MsTargetCodepoint,
        own_id: Option<std::net::Ipv4Addr>,
        split_type: u8,
    ) -> Applied {
        let mut r = Applied::default();
        for p in &u.withdrawn {
            r.changed |= self.paths.remove(p).is_some();
        }
        if u.announced.is_empty() {
            return r;
        }
        if own_id.is_some() && u.attrs.originator_id == own_id {
            for p in &u.announced {
                r.changed |= self.paths.remove(p).is_some();
            }
            r.reflected_own = u.announced.clone();
            return r;
        }
        let mut targets = Vec::new();
        let mut malformed = u.treat_as_withdraw();
        if !malformed {
            match (
                ms_targets_in_ext_communities(&u.attrs.ext_communities, cp),
                ms_targets_in_ipv6_ext_communities(&u.attrs.ipv6_ext_communities, cp),
            ) {
                (Ok(a), Ok(b)) => {
                    targets.extend(a);
                    targets.extend(b);
                    let (c, problems) = crate::compat::decode_split(
                        &u.attrs.ext_communities,
                        split_type,
                        cp.subtype,
                    );
                    targets.extend(c);
                    r.split_problems = problems;
                }
                _ => malformed = true,
            }
        }
        if malformed {
            for p in &u.announced {
                r.changed |= self.paths.remove(p).is_some();
                r.treated_as_withdraw.push(*p);
            }
            if !u.treat_as_withdraw() {
                r.malformed_targets = u.announced.clone();
            }
            return r;
        }
        targets.sort();
        targets.dedup();
        for p in &u.announced {
            if targets.is_empty() {
                r.changed |= self.paths.remove(p).is_some();
                continue;
            }
            let path = LearnedPath {
                targets: targets.clone(),
                as_path: u.attrs.as_path.flatten(),
                origin_as: u.attrs.as_path.origin_as(),
                next_hop: u.attrs.next_hop,
            };
            if self.paths.get(p) != Some(&path) {
                self.paths.insert(*p, path);
                r.changed = true;
            }
        }
        r
    }

    /// Every contact address in use (for nexthop tracking), minus `own`.
    pub fn contacts(&self, own: &BTreeSet<IpAddr>) -> BTreeSet<IpAddr> {
        self.paths
            .values()
            .flat_map(|p| p.targets.iter().map(|t| t.contact))
            .filter(|c| !own.contains(c))
            .collect()
    }
}

/// The key of one (prefix, mapping system) pair in the agent.
pub fn system_key(prefix: &Prefix, t: &MsTarget) -> String {
    match t.contact {
        IpAddr::V4(a) => format!("bgp {prefix} {a}:{}", t.ms_id),
        IpAddr::V6(a) => format!("bgp {prefix} [{a}]:{}", t.ms_id),
    }
}

/// The systems to report: one per (prefix, target), except targets whose
/// contact is our own mapping system. `reach` holds zebra's verdicts;
/// contacts zebra has not judged (or without zebra) count as reachable.
pub fn systems(
    learned: &Learned,
    reach: &BTreeMap<IpAddr, bool>,
    own: &BTreeSet<IpAddr>,
    local_as: u32,
) -> Vec<api::DiscoveredSystem> {
    let mut out = Vec::new();
    for (prefix, path) in &learned.paths {
        for t in &path.targets {
            if own.contains(&t.contact) {
                continue;
            }
            let reachable = reach.get(&t.contact).copied().unwrap_or(true);
            // An empty AS path: the route was originated inside our AS.
            let origin_as = path.origin_as.unwrap_or(local_as);
            out.push(api::DiscoveredSystem {
                key: system_key(prefix, t),
                kind: "mapping-system".into(),
                locators: vec![t.contact.to_string()],
                status: if reachable { "enabled" } else { "unreachable" }.into(),
                description: format!("AS {origin_as}"),
                eid_prefixes: vec![prefix.to_string()],
                contact: t.contact.to_string(),
                ms_id: u32::from(t.ms_id),
                as_path: path.as_path.clone(),
                origin_as,
                advertiser: path.next_hop.map(|n| n.to_string()).unwrap_or_default(),
                reachable,
                ..Default::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::update::{AttrProblem, Rfc7606Action, SegmentKind};

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

    fn lf(prefixes: &[&str], contact: &str, id: u32) -> api::LocalFunctions {
        api::LocalFunctions {
            map_server: true,
            eid_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            contact: contact.into(),
            ms_id: id,
            ..Default::default()
        }
    }

    #[test]
    fn desired_from_the_agent_and_statics() {
        let c = cfg();
        let statics = vec![Origination {
            prefix: "203.0.113.0/24".parse().unwrap(),
            contact: "192.0.2.9".parse().unwrap(),
            ms_id: 9,
        }];
        let l = lf(
            &[
                "203.0.113.0/24",
                "2001:db8:a::/48",
                "[7]198.51.100.0/24",
                "bogus",
            ],
            "198.51.100.6",
            1,
        );
        let (d, skipped) = desired(&c, &statics, Some(&l));
        assert_eq!(d.len(), 2);
        assert_eq!(d[&"203.0.113.0/24".parse().unwrap()].len(), 2);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        // No Map-Server: only the statics.
        let (d, _) = desired(&c, &statics, Some(&api::LocalFunctions::default()));
        assert_eq!(d.len(), 1);
        // A Map-Server without a contact: skipped with a reason.
        let (d, skipped) = desired(&c, &[], Some(&lf(&["203.0.113.0/24"], "", 1)));
        assert!(d.is_empty());
        assert!(skipped[0].reason.contains("no contact"));
        // An ms_id beyond 16 bits.
        let (_, skipped) = desired(&c, &[], Some(&lf(&["203.0.113.0/24"], "192.0.2.1", 70000)));
        assert!(skipped[0].reason.contains("16-bit"));
    }

    #[test]
    fn origin_attributes_carry_the_community() {
        let c = cfg();
        let t = MsTarget::new("198.51.100.6".parse::<IpAddr>().unwrap(), 1);
        let a = origin_attrs(&c, &"203.0.113.0/24".parse().unwrap(), &[t]).unwrap();
        assert_eq!(a.ext_communities, vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1]);
        assert_eq!(a.next_hop, Some("192.0.2.254".parse().unwrap()));
        assert_eq!(a.local_pref, Some(100));
        let t6 = MsTarget::new("2001:db8::6".parse::<IpAddr>().unwrap(), 2);
        let a = origin_attrs(&c, &"2001:db8:a::/48".parse().unwrap(), &[t6]).unwrap();
        assert_eq!(a.ipv6_ext_communities.len(), 20);
        assert_eq!(a.next_hop, Some("2001:db8:ffff::fe".parse().unwrap()));
    }

    fn update(prefix: &str, ec: Vec<u8>) -> Update {
        Update {
            announced: vec![prefix.parse().unwrap()],
            attrs: PathAttrs {
                as_path: AsPath(vec![crate::bgp::update::Segment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65001, 65003],
                }]),
                next_hop: Some("198.51.100.1".parse().unwrap()),
                ext_communities: ec,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn learning_and_withdrawal() {
        let cp = MsTargetCodepoint::default();
        let mut l = Learned::default();
        let ec = vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1];
        assert!(
            l.apply(&update("203.0.113.0/24", ec.clone()), &cp, None)
                .changed
        );
        assert!(
            !l.apply(&update("203.0.113.0/24", ec.clone()), &cp, None)
                .changed,
            "same path again"
        );
        let s = systems(&l, &BTreeMap::new(), &BTreeSet::new(), 65002);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].key, "bgp 203.0.113.0/24 198.51.100.6:1");
        assert_eq!(s[0].origin_as, 65003);
        assert_eq!(s[0].as_path, vec![65001, 65003]);
        assert_eq!(s[0].advertiser, "198.51.100.1");
        assert!(s[0].reachable && s[0].status == "enabled");
        // zebra says unreachable.
        let reach = BTreeMap::from([("198.51.100.6".parse().unwrap(), false)]);
        let s = systems(&l, &reach, &BTreeSet::new(), 65002);
        assert!(!s[0].reachable && s[0].status == "unreachable");
        // Our own contact is not reported.
        assert!(
            systems(
                &l,
                &BTreeMap::new(),
                &BTreeSet::from(["198.51.100.6".parse().unwrap()]),
                65002
            )
            .is_empty()
        );
        assert_eq!(l.contacts(&BTreeSet::new()).len(), 1);
        // The community goes away: the prefix is forgotten.
        assert!(
            l.apply(
                &update("203.0.113.0/24", vec![0x00, 0x02, 0, 1, 0, 0, 0, 1]),
                &cp,
                None
            )
            .changed
        );
        assert!(l.paths.is_empty());
        // Withdrawal.
        l.apply(&update("203.0.113.0/24", ec.clone()), &cp, None);
        let w = Update {
            withdrawn: vec!["203.0.113.0/24".parse().unwrap()],
            ..Default::default()
        };
        assert!(l.apply(&w, &cp, None).changed);
        assert!(l.paths.is_empty());
    }

    #[test]
    fn treat_as_withdraw_removes_the_prefix() {
        let cp = MsTargetCodepoint::default();
        let mut l = Learned::default();
        l.apply(
            &update("203.0.113.0/24", vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1]),
            &cp,
            None,
        );
        let mut bad = update("203.0.113.0/24", Vec::new());
        bad.problems.push(AttrProblem {
            attr: 16,
            action: Rfc7606Action::TreatAsWithdraw,
            reason: "length 9".into(),
        });
        let r = l.apply(&bad, &cp, None);
        assert!(r.changed);
        assert_eq!(r.treated_as_withdraw.len(), 1);
        assert!(l.paths.is_empty());
    }

    #[test]
    fn split_ipv6_contacts_are_originated_and_learned() {
        let c = cfg();
        let t6 = MsTarget::new("2001:db8:b::2".parse::<IpAddr>().unwrap(), 6);
        let a = origin_attrs(&c, &"2001:db8:e::/48".parse().unwrap(), &[t6]).unwrap();
        assert_eq!(a.ext_communities.len(), 32, "split form in attribute 16");
        assert_eq!(
            a.ipv6_ext_communities.len(),
            20,
            "and the draft's attribute 25"
        );
        // What crosses bgpd 8.4: attribute 16 only.
        let mut u = update("2001:db8:e::/48", a.ext_communities.clone());
        u.attrs.ipv6_ext_communities.clear();
        let mut l = Learned::default();
        l.apply(&u, &MsTargetCodepoint::default(), None);
        assert_eq!(l.paths.values().next().unwrap().targets, vec![t6]);
        // Both forms present: one target.
        u.attrs.ipv6_ext_communities = a.ipv6_ext_communities.clone();
        l.apply(&u, &MsTargetCodepoint::default(), None);
        assert_eq!(l.paths.values().next().unwrap().targets, vec![t6]);
    }

    #[test]
    fn ipv6_targets_and_keys() {
        let cp = MsTargetCodepoint::default();
        let mut l = Learned::default();
        let t = MsTarget::new("2001:db8::6".parse::<IpAddr>().unwrap(), 3);
        let mut u = update("2001:db8:a::/48", Vec::new());
        u.attrs.ipv6_ext_communities = t.to_bytes(&cp);
        l.apply(&u, &cp, None);
        let s = systems(&l, &BTreeMap::new(), &BTreeSet::new(), 65002);
        assert_eq!(s[0].key, "bgp 2001:db8:a::/48 [2001:db8::6]:3");
        assert_eq!(s[0].contact, "2001:db8::6");
        // An empty AS path: originated in our own AS.
        u.attrs.as_path = AsPath::default();
        l.apply(&u, &cp, None);
        assert_eq!(
            systems(&l, &BTreeMap::new(), &BTreeSet::new(), 65002)[0].origin_as,
            65002
        );
    }
}

#[cfg(test)]
mod reflection_tests {
    use super::*;

    #[test]
    fn our_own_reflected_routes_are_ignored() {
        let cp = MsTargetCodepoint::default();
        let me = std::net::Ipv4Addr::new(127, 0, 0, 2);
        let mut u = Update {
            announced: vec!["203.0.113.0/24".parse().unwrap()],
            ..Default::default()
        };
        u.attrs.ext_communities = vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1];
        u.attrs.originator_id = Some(me);
        let mut l = Learned::default();
        let r = l.apply(&u, &cp, Some(me));
        assert!(l.paths.is_empty());
        assert_eq!(r.reflected_own.len(), 1);
        // Reflected from another client: learned.
        u.attrs.originator_id = Some(std::net::Ipv4Addr::new(192, 0, 2, 3));
        l.apply(&u, &cp, Some(me));
        assert_eq!(l.paths.len(), 1);
    }
}
