//! What the discovery adapters told us (OSPF MSFD, BGP MS-target community,
//! zebra reachability), and what follows from it for the roles.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lisp_mapdb::Prefix;
use lisp_msx_proto::api;

use crate::mr::Route;

#[derive(Debug, Clone)]
struct Entry {
    adapter: String,
    system: api::DiscoveredSystem,
    updated: Instant,
}

#[derive(Debug, Default)]
pub struct Discovery {
    entries: BTreeMap<(String, String), Entry>,
    reachable: HashMap<IpAddr, bool>,
}

impl Discovery {
    pub fn update(&mut self, upd: &api::DiscoveryUpdate, now: Instant) {
        if upd.full_set {
            self.entries.retain(|(src, _), _| *src != upd.source);
        }
        for k in &upd.withdrawn_keys {
            self.entries.remove(&(upd.source.clone(), k.clone()));
        }
        for s in &upd.systems {
            self.entries.insert(
                (upd.source.clone(), s.key.clone()),
                Entry {
                    adapter: upd.adapter.clone(),
                    system: s.clone(),
                    updated: now,
                },
            );
        }
        for r in &upd.reachability {
            if let Ok(ip) = r.contact.parse() {
                self.reachable.insert(ip, r.reachable);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an advertised function may be used now: enabled, and its
    /// unavailability timer (counted from when we heard it) not run out.
    fn usable(e: &Entry, now: Instant) -> bool {
        let s = &e.system;
        if matches!(
            s.status.as_str(),
            "disabled" | "unavailable" | "unreachable"
        ) {
            return false;
        }
        if s.has_unavailability_timer
            && now >= e.updated + Duration::from_secs(u64::from(s.unavailability_timer_secs))
        {
            return false;
        }
        true
    }

    fn locators(&self, now: Instant, want: &[&str]) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|((src, _), e)| {
                src == "ospf" && want.contains(&e.system.kind.as_str()) && Self::usable(e, now)
            })
            .flat_map(|(_, e)| e.system.locators.iter().filter_map(|l| l.parse().ok()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Map-Resolvers advertised inside the domain.
    pub fn map_resolvers(&self, now: Instant) -> Vec<IpAddr> {
        self.locators(now, &["mr", "ms+mr"])
    }

    /// Map-Servers advertised inside the domain.
    pub fn map_servers(&self, now: Instant) -> Vec<IpAddr> {
        self.locators(now, &["ms", "ms+mr"])
    }

    /// EID prefix → remote Map-Server routes learned from BGP.
    pub fn bgp_routes(&self, now: Instant) -> Vec<(Prefix, Route)> {
        let mut out = Vec::new();
        for ((src, _), e) in &self.entries {
            if src != "bgp" {
                continue;
            }
            let Ok(contact) = e.system.contact.parse::<IpAddr>() else {
                continue;
            };
            let reachable = e.system.reachable
                && self.reachable.get(&contact).copied().unwrap_or(true)
                && Self::usable(e, now);
            for p in &e.system.eid_prefixes {
                if let Ok(k) = crate::mapping::parse_eid(p, 0) {
                    out.push((
                        k,
                        Route {
                            map_servers: vec![contact],
                            source: "bgp".into(),
                            reachable,
                            agreement_id: String::new(),
                        },
                    ));
                }
            }
        }
        out
    }

    /// Remote mapping systems learned from BGP, one per contact, with all the
    /// EID prefixes announced for it (for LISP-MSX negotiation).
    pub fn bgp_systems(&self, now: Instant) -> Vec<crate::msx::negotiation::Peer> {
        let mut by_contact: BTreeMap<IpAddr, crate::msx::negotiation::Peer> = BTreeMap::new();
        for ((src, _), e) in &self.entries {
            if src != "bgp" || !Self::usable(e, now) || !e.system.reachable {
                continue;
            }
            let Ok(contact) = e.system.contact.parse::<IpAddr>() else {
                continue;
            };
            if self.reachable.get(&contact) == Some(&false) {
                continue;
            }
            let p = by_contact
                .entry(contact)
                .or_insert_with(|| crate::msx::negotiation::Peer {
                    contact,
                    ms_id: e.system.ms_id as u16,
                    origin_as: e.system.origin_as,
                    as_path: e.system.as_path.clone(),
                    eid_prefixes: Vec::new(),
                });
            for s in &e.system.eid_prefixes {
                if let Ok(ep) = s.parse::<lisp_msx_proto::EidPrefix>()
                    && !p.eid_prefixes.contains(&ep)
                {
                    p.eid_prefixes.push(ep);
                }
            }
        }
        by_contact.into_values().collect()
    }

    /// The earliest moment an unavailability timer runs out (re-evaluate then).
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.system.has_unavailability_timer)
            .map(|e| e.updated + Duration::from_secs(u64::from(e.system.unavailability_timer_secs)))
            .filter(|t| *t > now)
            .min()
    }

    pub fn show(&self, now: Instant, in_use: &[IpAddr]) -> api::ShowDiscoveryReply {
        api::ShowDiscoveryReply {
            entries: self
                .entries
                .iter()
                .map(|((src, _), e)| {
                    let mut system = e.system.clone();
                    if let Ok(c) = system.contact.parse::<IpAddr>()
                        && let Some(r) = self.reachable.get(&c)
                    {
                        system.reachable = system.reachable && *r;
                    }
                    let used = Self::usable(e, now)
                        && (system
                            .locators
                            .iter()
                            .chain(std::iter::once(&system.contact)))
                        .filter_map(|l| l.parse::<IpAddr>().ok())
                        .any(|ip| in_use.contains(&ip));
                    api::DiscoveryEntry {
                        source: src.clone(),
                        adapter: e.adapter.clone(),
                        in_use: used,
                        system: Some(system),
                        age_secs: now.saturating_duration_since(e.updated).as_secs(),
                    }
                })
                .collect(),
        }
    }
}
