//! Helpers shared by the roles: where a Map-Reply goes, negative-reply
//! prefixes ("holes"), and the API's view of mappings.

use std::net::{IpAddr, SocketAddr};

use lisp_mapdb::{Prefix, PrefixMap};
use lisp_msx_proto::lisp::{EidRecord, Locator, MapRequest};
use lisp_msx_proto::{EidPrefix, api};

/// The ITR-RLOC a Map-Reply for `req` goes to: the first of the family we can
/// send from (`v4_ok`/`v6_ok`), with the requester's UDP source port.
pub fn reply_target(req: &MapRequest, port: u16, v4_ok: bool, v6_ok: bool) -> Option<SocketAddr> {
    req.itr_rlocs.iter().find_map(|a| match a.ip() {
        Some(ip @ IpAddr::V4(_)) if v4_ok => Some(SocketAddr::new(ip, port)),
        Some(ip @ IpAddr::V6(_)) if v6_ok => Some(SocketAddr::new(ip, port)),
        _ => None,
    })
}

/// The key a request record is looked up with.
pub fn request_prefix(req: &MapRequest) -> Option<Prefix> {
    let r = req.records.first()?;
    Prefix::try_from(r.eid.normalized()).ok()
}

/// The least-specific prefix containing `eid` that overlaps nothing in
/// `table` (RFC 9301 §8.2 negative replies for "holes"), limited to `within`
/// when given (a DDT node answers holes inside its authority only).
pub fn hole_prefix<V>(eid: &Prefix, table: &PrefixMap<V>, within: Option<&Prefix>) -> Prefix {
    hole_prefix_by(eid, within, |c| overlaps(table, c))
}

/// Whether anything in `table` overlaps `p` (covers it or lies inside it).
pub fn overlaps<V>(table: &PrefixMap<V>, p: &Prefix) -> bool {
    table.longest_match_prefix(p).is_some() || table.more_specifics(p).next().is_some()
}

/// [`hole_prefix`] against any notion of "known" prefixes.
pub fn hole_prefix_by(
    eid: &Prefix,
    within: Option<&Prefix>,
    known: impl Fn(&Prefix) -> bool,
) -> Prefix {
    let start = within.map_or(0, |w| w.len());
    for len in start..=eid.len() {
        let Ok(candidate) = Prefix::new(eid.iid(), eid.addr(), len) else {
            continue;
        };
        if !known(&candidate) {
            return candidate;
        }
    }
    *eid
}

pub fn locator_view(l: &Locator, state: &str, uptime_secs: u64) -> api::Locator {
    api::Locator {
        address: l.addr.to_string(),
        priority: l.priority.into(),
        weight: l.weight.into(),
        m_priority: l.m_priority.into(),
        m_weight: l.m_weight.into(),
        state: state.to_string(),
        local: l.local,
        uptime_secs,
    }
}

pub fn record_view(r: &EidRecord) -> api::MappingRecord {
    api::MappingRecord {
        eid_prefix: r.eid.to_string(),
        instance_id: r.eid.addr.instance(),
        ttl_minutes: r.ttl,
        action: if r.locators.is_empty() {
            r.action.name().to_string()
        } else {
            String::new()
        },
        authoritative: r.authoritative,
        locators: r
            .locators
            .iter()
            .map(|l| locator_view(l, if l.reachable { "up" } else { "down" }, 0))
            .collect(),
    }
}

/// Parses an EID given on the command line or API: a prefix, or an address
/// (a host route), optionally "[iid]"-prefixed; `iid` applies when none is written.
pub fn parse_eid(s: &str, iid: u32) -> Result<Prefix, String> {
    let mut p: EidPrefix = s.parse()?;
    if p.addr.iid.is_none() && iid != 0 {
        p.addr.iid = Some(lisp_msx_proto::InstanceId::new(iid));
    }
    Prefix::try_from(p.normalized()).map_err(|e| e.to_string())
}
