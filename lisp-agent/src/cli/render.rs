//! Human output of lispctl, modelled on IOS-XE `show lisp ...`.
//!
//! Every renderer is a pure function of an API reply: the agent computes
//! state, lispctl only lays it out, so output can be tested with fixed
//! replies and never drifts from what the agent knows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use lisp_msx_proto::api;

/// IOS-style age: `hh:mm:ss` under a day, `1d02h` under a week, `3w2d`
/// beyond.
pub fn duration(secs: u64) -> String {
    const DAY: u64 = 86_400;
    const WEEK: u64 = 7 * DAY;
    if secs < DAY {
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    } else if secs < WEEK {
        format!("{}d{:02}h", secs / DAY, secs % DAY / 3600)
    } else {
        format!("{}w{}d", secs / WEEK, secs % WEEK / DAY)
    }
}

/// Splits the `[iid]` an EID prefix carries for non-default instances.
fn split_iid(prefix: &str) -> (Option<u32>, &str) {
    if let Some(rest) = prefix.strip_prefix('[')
        && let Some((iid, p)) = rest.split_once(']')
        && let Ok(iid) = iid.parse()
    {
        return (Some(iid), p);
    }
    (None, prefix)
}

/// Address family name of an EID prefix, as IOS names its tables.
fn family(prefix: &str) -> &'static str {
    let addr = split_iid(prefix).1.split('/').next().unwrap_or("");
    if addr.parse::<Ipv4Addr>().is_ok() {
        "IPv4"
    } else if addr.parse::<Ipv6Addr>().is_ok() {
        "IPv6"
    } else if is_mac(addr) {
        "MAC"
    } else {
        "other"
    }
}

fn is_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit());
    let colon: Vec<_> = s.split([':', '-']).collect();
    let dotted: Vec<_> = s.split('.').collect();
    (colon.len() == 6 && colon.iter().all(|g| hex(g, 2)))
        || (dotted.len() == 3 && dotted.iter().all(|g| hex(g, 4)))
}

fn eid_table(iid: u32) -> String {
    if iid == 0 {
        "EID-table default (IID 0)".to_string()
    } else {
        format!("EID-table (IID {iid})")
    }
}

fn family_rank(f: &str) -> u8 {
    match f {
        "IPv4" => 0,
        "IPv6" => 1,
        "MAC" => 2,
        _ => 3,
    }
}

/// Groups items by (instance-id, family), IOS shows one table per group.
/// Groups sort by instance and family; items keep the agent's order.
fn by_table<T>(
    items: &[T],
    mapping: impl Fn(&T) -> Option<&api::MappingRecord>,
) -> BTreeMap<(u32, u8, &'static str), Vec<&T>> {
    let mut groups: BTreeMap<_, Vec<&T>> = BTreeMap::new();
    for item in items {
        let (iid, f) = match mapping(item) {
            Some(m) => {
                let (bracket, _) = split_iid(&m.eid_prefix);
                (bracket.unwrap_or(m.instance_id), family(&m.eid_prefix))
            }
            None => (0, "other"),
        };
        groups
            .entry((iid, family_rank(f), f))
            .or_default()
            .push(item);
    }
    groups
}

/// A left-aligned table: each column as wide as its widest cell (at least
/// `min`), two spaces apart; trailing blanks trimmed.
fn table(indent: &str, cols: &[(&str, usize)], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, (title, min))| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([title.len(), *min])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let titles: Vec<String> = cols.iter().map(|(t, _)| t.to_string()).collect();
    for row in std::iter::once(&titles).chain(rows) {
        let mut line = indent.to_string();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

fn pri_wgt(l: &api::Locator) -> String {
    format!("{:>3}/{}", l.priority, l.weight)
}

fn entries(n: usize) -> String {
    format!("{n} {}", if n == 1 { "entry" } else { "entries" })
}

/// The locator table under a mapping, or the action line of a negative one.
fn locators_or_action(out: &mut String, m: &api::MappingRecord) {
    if m.locators.is_empty() {
        let action = if m.action.is_empty() {
            "no-action"
        } else {
            &m.action
        };
        let _ = writeln!(out, "  Negative cache entry, action: {action}");
        return;
    }
    let rows: Vec<Vec<String>> = m
        .locators
        .iter()
        .map(|l| {
            vec![
                l.address.clone(),
                duration(l.uptime_secs),
                or_dash(&l.state),
                pri_wgt(l),
            ]
        })
        .collect();
    out.push_str(&table(
        "  ",
        &[("Locator", 13), ("Uptime", 8), ("State", 5), ("Pri/Wgt", 0)],
        &rows,
    ));
}

/// `show lisp map-cache [EID] [detail]`.
pub fn render_map_cache(reply: &api::ShowMapCacheReply, detail: bool) -> String {
    let mut out = String::new();
    if reply.entries.is_empty() {
        if reply.total == 0 {
            let _ = writeln!(
                out,
                "LISP IPv4 Mapping Cache for {}, 0 entries",
                eid_table(0)
            );
        } else {
            let _ = writeln!(
                out,
                "No matching map-cache entry ({} in the cache)",
                entries(reply.total as usize)
            );
        }
        return out;
    }
    let groups = by_table(&reply.entries, |e| e.mapping.as_ref());
    for (i, ((iid, _, fam), group)) in groups.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "LISP {fam} Mapping Cache for {}, {}\n",
            eid_table(*iid),
            entries(group.len())
        );
        for e in group {
            let m = e.mapping.clone().unwrap_or_default();
            let expires = if e.expires_in_secs == 0 && e.source == "static" {
                "never".to_string()
            } else {
                duration(e.expires_in_secs)
            };
            let _ = writeln!(
                out,
                "{}, uptime: {}, expires: {expires}, via {}",
                split_iid(&m.eid_prefix).1,
                duration(e.uptime_secs),
                or_dash(&e.source)
            );
            if detail {
                let _ = writeln!(
                    out,
                    "  TTL: {}, authoritative: {}",
                    duration(u64::from(m.ttl_minutes) * 60),
                    yes_no(m.authoritative)
                );
                let used = if e.never_used {
                    "never".to_string()
                } else {
                    format!("{} ago", duration(e.last_used_secs))
                };
                let _ = writeln!(
                    out,
                    "  Packets out: {} ({} bytes), last used: {used}",
                    e.packets, e.bytes
                );
            }
            locators_or_action(&mut out, &m);
        }
    }
    let shown = reply.entries.len() as u64;
    if reply.total > shown {
        let _ = writeln!(out, "\n{shown} of {} shown", entries(reply.total as usize));
    }
    out
}

/// The registration most recently received for a prefix.
fn latest(p: &api::SiteEidPrefix) -> Option<&api::Registration> {
    p.registrations.iter().min_by_key(|r| r.last_register_secs)
}

/// `show lisp site [NAME] [detail]`.
pub fn render_sites(reply: &api::ShowSitesReply, detail: bool) -> String {
    let mut out = String::from("LISP Site Registration Information\n\n");
    if detail {
        for site in &reply.sites {
            site_detail(&mut out, site);
        }
        return out;
    }
    let mut rows = Vec::new();
    for site in &reply.sites {
        let mut name = site.name.clone();
        if site.prefixes.is_empty() {
            rows.push(vec![name.clone(), "never".into(), "no".into(), "--".into()]);
        }
        for p in &site.prefixes {
            let (iid, prefix) = split_iid(&p.eid_prefix);
            let last = latest(p);
            rows.push(vec![
                std::mem::take(&mut name),
                last.map_or("never".into(), |r| duration(r.last_register_secs)),
                yes_no(p.registered).into(),
                last.map_or("--".into(), |r| r.etr.clone()),
                iid.unwrap_or(0).to_string(),
                prefix.to_string(),
            ]);
            for more in &p.registered_more_specifics {
                let (iid, prefix) = split_iid(more);
                rows.push(vec![
                    String::new(),
                    "--".into(),
                    "yes".into(),
                    "--".into(),
                    iid.unwrap_or(0).to_string(),
                    prefix.to_string(),
                ]);
            }
        }
    }
    out.push_str(&table(
        "",
        &[
            ("Site Name", 0),
            ("Last Register", 0),
            ("Up", 3),
            ("Who Last Registered", 0),
            ("Inst ID", 0),
            ("EID Prefix", 0),
        ],
        &rows,
    ));
    out
}

fn site_detail(out: &mut String, site: &api::Site) {
    let _ = writeln!(out, "Site name: {}", site.name);
    if !site.description.is_empty() {
        let _ = writeln!(out, "Description: {}", site.description);
    }
    let keys: Vec<String> = site.key_ids.iter().map(u32::to_string).collect();
    let _ = writeln!(out, "Authentication key-ids: {}", list_or_dash(&keys));
    let _ = writeln!(out, "Authentication failures: {}", site.auth_failures);
    let _ = writeln!(out, "Allowed EID-prefixes:");
    for p in &site.prefixes {
        let (iid, prefix) = split_iid(&p.eid_prefix);
        let _ = write!(out, "\n  EID-prefix: {prefix}");
        if let Some(iid) = iid {
            let _ = write!(out, " instance-id {iid}");
        }
        if p.accept_more_specifics {
            out.push_str(" (accept-more-specifics)");
        }
        out.push('\n');
        let _ = writeln!(out, "    Registered:             {}", yes_no(p.registered));
        if !p.registered_more_specifics.is_empty() {
            let _ = writeln!(
                out,
                "    More-specifics:         {}",
                p.registered_more_specifics.join(", ")
            );
        }
        for r in &p.registrations {
            registration(out, r);
        }
    }
    out.push('\n');
}

fn registration(out: &mut String, r: &api::Registration) {
    let _ = writeln!(
        out,
        "    ETR {}, last registered {}, expires {}, {}proxy-reply, {}map-notify",
        r.etr,
        duration(r.last_register_secs),
        duration(r.expires_in_secs),
        if r.proxy_reply { "" } else { "no " },
        if r.want_map_notify { "" } else { "no " },
    );
    // Key ids and algorithm only: the API carries no key material.
    let _ = writeln!(
        out,
        "        TTL {}, key-id {}, {}",
        duration(u64::from(r.ttl_minutes) * 60),
        r.key_id,
        or_dash(&r.algorithm)
    );
    let xtr_id = if r.xtr_id.is_empty() {
        "unspecified".to_string()
    } else {
        format!("0x{}", r.xtr_id)
    };
    let site_id = if r.site_id == 0 {
        "unspecified".to_string()
    } else {
        r.site_id.to_string()
    };
    let _ = writeln!(out, "        xTR-ID {xtr_id}, site-ID {site_id}");
    let rows: Vec<Vec<String>> = r
        .locators
        .iter()
        .map(|l| {
            vec![
                l.address.clone(),
                yes_no(l.local).into(),
                or_dash(&l.state),
                pri_wgt(l),
            ]
        })
        .collect();
    out.push_str(&table(
        "      ",
        &[("Locator", 13), ("Local", 0), ("State", 5), ("Pri/Wgt", 0)],
        &rows,
    ));
}

/// `show lisp database`.
pub fn render_database(reply: &api::ShowDatabaseReply) -> String {
    let mut out = String::new();
    if reply.entries.is_empty() {
        let _ = writeln!(
            out,
            "LISP ETR IPv4 Mapping Database for {}, 0 entries",
            eid_table(0)
        );
        return out;
    }
    let groups = by_table(&reply.entries, |e| e.mapping.as_ref());
    for (i, ((iid, _, fam), group)) in groups.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "LISP ETR {fam} Mapping Database for {}, {}",
            eid_table(*iid),
            entries(group.len())
        );
        for e in group {
            let m = e.mapping.clone().unwrap_or_default();
            let _ = writeln!(out, "\n{}", split_iid(&m.eid_prefix).1);
            locators_or_action(&mut out, &m);
            let rows: Vec<Vec<String>> = e
                .map_servers
                .iter()
                .enumerate()
                .map(|(i, ms)| {
                    let state = e.registration_state.get(i).map_or("-", String::as_str);
                    vec![ms.clone(), state.to_string()]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(
                    "  ",
                    &[("Map-Server", 13), ("Registration", 0)],
                    &rows,
                ));
            }
        }
    }
    out
}

/// Known resolution paths first, in the order a request tries them.
fn path_order(served: &std::collections::HashMap<String, u64>) -> Vec<(String, u64)> {
    const ORDER: [&str; 6] = ["ms", "ddt", "msx-copy", "msx-direct", "negative", "petr"];
    let mut v: Vec<(String, u64)> = served.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by_key(|(k, _)| {
        (
            ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()),
            k.clone(),
        )
    });
    v
}

/// `show lisp map-resolver`.
pub fn render_map_resolver(reply: &api::ShowMapResolverReply) -> String {
    let mut out = String::from("LISP Map-Resolver\n\n");
    let served: Vec<String> = path_order(&reply.served_by)
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(out, "Requests served:       {}", list_or_dash(&served));
    let _ = writeln!(
        out,
        "DDT roots:             {}",
        list_or_dash(&reply.ddt_roots)
    );
    let _ = writeln!(
        out,
        "Map-Resolvers in use:  {}",
        list_or_dash(&reply.map_resolvers_in_use)
    );
    let _ = writeln!(out, "\nMap-Server routes: {}\n", reply.routes.len());
    let rows: Vec<Vec<String>> = reply
        .routes
        .iter()
        .map(|r| {
            vec![
                r.eid_prefix.clone(),
                list_or_dash(&r.map_servers),
                or_dash(&r.source),
                yes_no(r.reachable).into(),
                or_dash(&r.agreement_id),
            ]
        })
        .collect();
    out.push_str(&table(
        "",
        &[
            ("EID Prefix", 0),
            ("Map-Servers", 0),
            ("Source", 0),
            ("Reachable", 0),
            ("Agreement", 0),
        ],
        &rows,
    ));
    if !reply.copied.is_empty() {
        let _ = writeln!(
            out,
            "\nCopied from peer systems (LISP-MSX): {}\n",
            reply.copied.len()
        );
        let rows: Vec<Vec<String>> = reply
            .copied
            .iter()
            .map(|c| vec![c.eid_prefix.clone(), c.from.clone(), list_or_dash(&c.rlocs)])
            .collect();
        out.push_str(&table(
            "",
            &[("EID Prefix", 0), ("From", 0), ("RLOCs", 0)],
            &rows,
        ));
    }
    out
}

/// `show lisp referral-cache`.
pub fn render_referral_cache(reply: &api::ShowReferralCacheReply) -> String {
    let mut out = format!("LISP Referral Cache, {}\n\n", entries(reply.entries.len()));
    let rows: Vec<Vec<String>> = reply
        .entries
        .iter()
        .map(|e| {
            vec![
                e.eid_prefix.clone(),
                or_dash(&e.action),
                duration(e.expires_in_secs),
                yes_no(!e.incomplete).into(),
                list_or_dash(&e.referrals),
            ]
        })
        .collect();
    out.push_str(&table(
        "",
        &[
            ("EID Prefix", 0),
            ("Action", 0),
            ("Expires", 0),
            ("Complete", 0),
            ("Referrals", 0),
        ],
        &rows,
    ));
    out
}

/// `show lisp statistics`: counters grouped by the part of their name
/// before the first dot (`map-request.rx` under `map-request`).
pub fn render_statistics(reply: &api::ShowStatisticsReply) -> String {
    let mut out = format!(
        "LISP control plane statistics, uptime {}\n",
        duration(reply.uptime_secs)
    );
    /// A counter named like the group itself (`malformed`) and the
    /// counters under it (`malformed.unknown-type`).
    #[derive(Default)]
    struct Group<'a> {
        own: Option<u64>,
        members: Vec<(&'a str, u64)>,
    }
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for (name, value) in &reply.counters {
        match name.split_once('.') {
            Some((group, rest)) => groups
                .entry(group)
                .or_default()
                .members
                .push((rest, *value)),
            None => groups.entry(name).or_default().own = Some(*value),
        }
    }
    const WIDTH: usize = 40;
    for (group, Group { own, mut members }) in groups {
        members.sort();
        out.push('\n');
        match own {
            Some(v) => {
                let _ = writeln!(out, "{group:<WIDTH$}{v:>12}");
            }
            None => {
                let _ = writeln!(out, "{group}");
            }
        }
        for (name, v) in members {
            let _ = writeln!(out, "  {name:<w$}{v:>12}", w = WIDTH - 2);
        }
    }
    out
}

/// `show lisp discovery`.
pub fn render_discovery(reply: &api::ShowDiscoveryReply) -> String {
    let mut out = format!(
        "Mapping systems discovered: {} (* = in use)\n\n",
        reply.entries.len()
    );
    let rows: Vec<Vec<String>> = reply
        .entries
        .iter()
        .map(|e| {
            let s = e.system.clone().unwrap_or_default();
            vec![
                if e.in_use { "*" } else { "" }.into(),
                or_dash(&e.source),
                or_dash(&s.advertiser),
                or_dash(&s.kind),
                list_or_dash(&s.locators),
                or_dash(&s.status),
                duration(e.age_secs),
            ]
        })
        .collect();
    out.push_str(&table(
        "",
        &[
            ("", 1),
            ("Source", 0),
            ("Advertiser", 0),
            ("Kind", 0),
            ("Locators", 0),
            ("Status", 0),
            ("Age", 0),
        ],
        &rows,
    ));
    out
}

/// `show lisp msx peers|agreements|subscriptions`.
pub fn render_msx(reply: &api::ShowMsxReply, what: super::parse::MsxWhat) -> String {
    use super::parse::MsxWhat;
    match what {
        MsxWhat::Peers => {
            let rows: Vec<Vec<String>> = reply
                .peers
                .iter()
                .map(|p| {
                    vec![
                        p.contact.clone(),
                        p.ms_id.to_string(),
                        p.origin_as.to_string(),
                        or_dash(&p.state),
                        or_dash(&p.agreement_id),
                        list_or_dash(&p.eid_prefixes),
                    ]
                })
                .collect();
            format!("LISP-MSX peers: {}\n\n", rows.len())
                + &table(
                    "",
                    &[
                        ("Contact", 0),
                        ("MS-ID", 0),
                        ("Origin AS", 0),
                        ("State", 0),
                        ("Agreement", 0),
                        ("EID Prefixes", 0),
                    ],
                    &rows,
                )
        }
        MsxWhat::Agreements => {
            let rows: Vec<Vec<String>> = reply
                .agreements
                .iter()
                .map(|a| {
                    let services: Vec<String> = [
                        (a.bulk, "bulk"),
                        (a.subscribe, "subscribe"),
                        (a.direct_requests, "direct"),
                    ]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, s)| s.to_string())
                    .collect();
                    vec![
                        or_dash(&a.customer_agreement_id),
                        or_dash(&a.provider_agreement_id),
                        or_dash(&a.peer),
                        or_dash(&a.role),
                        or_dash(&a.state),
                        list_or_dash(&services),
                        // 0: the agreement has no end (it is torn down when it expires).
                        if a.expires_in_secs == 0 {
                            "never".to_string()
                        } else {
                            duration(a.expires_in_secs)
                        },
                        list_or_dash(&a.eid_prefixes),
                    ]
                })
                .collect();
            format!("LISP-MSX agreements: {}\n\n", rows.len())
                + &table(
                    "",
                    &[
                        ("Customer ID", 0),
                        ("Provider ID", 0),
                        ("Peer", 0),
                        ("Role", 0),
                        ("State", 0),
                        ("Services", 0),
                        ("Expires", 0),
                        ("EID Prefixes", 0),
                    ],
                    &rows,
                )
        }
        MsxWhat::Subscriptions => {
            let rows: Vec<Vec<String>> = reply
                .subscriptions
                .iter()
                .map(|s| {
                    vec![
                        or_dash(&s.peer),
                        or_dash(&s.role),
                        duration(s.expires_in_secs),
                        or_dash(&s.state),
                        s.records.to_string(),
                        s.updates.to_string(),
                        or_dash(&s.agreement_id),
                        list_or_dash(&s.filters),
                    ]
                })
                .collect();
            format!("LISP-MSX subscriptions: {}\n\n", rows.len())
                + &table(
                    "",
                    &[
                        ("Peer", 0),
                        ("Role", 0),
                        ("Expires", 0),
                        ("State", 0),
                        ("Records", 0),
                        ("Updates", 0),
                        ("Agreement", 0),
                        ("Filters", 0),
                    ],
                    &rows,
                )
        }
    }
}

/// `show lisp sync`.
pub fn render_sync(reply: &api::ShowSyncReply) -> String {
    let mut out = format!(
        "LISP map-cache synchronization: mode {}, sync set {}\n\n",
        or_dash(&reply.mode),
        reply.sync_set
    );
    let rows: Vec<Vec<String>> = reply
        .members
        .iter()
        .map(|m| {
            vec![
                m.peer.clone(),
                or_dash(&m.state),
                duration(m.last_exchange_secs),
                format!("{}/{}", m.records_sent, m.records_received),
                format!("{}/{}", m.bytes_sent, m.bytes_received),
            ]
        })
        .collect();
    out.push_str(&table(
        "",
        &[
            ("Peer", 0),
            ("State", 0),
            ("Last Exchange", 0),
            ("Records Out/In", 0),
            ("Bytes Out/In", 0),
        ],
        &rows,
    ));
    out
}

/// `show lisp data-plane statistics`.
pub fn render_data_plane(reply: &api::DataPlaneStatistics) -> String {
    let mut out = String::from("LISP data plane statistics\n");
    let _ = writeln!(
        out,
        "  Encapsulated:      {} packets, {} bytes",
        reply.encapsulated, reply.bytes_encapsulated
    );
    let _ = writeln!(
        out,
        "  Decapsulated:      {} packets, {} bytes",
        reply.decapsulated, reply.bytes_decapsulated
    );
    let _ = writeln!(out, "  Map-cache misses:  {}", reply.misses);
    let counters: BTreeMap<_, _> = reply.counters.iter().filter(|(_, n)| **n > 0).collect();
    for (name, n) in counters {
        let _ = writeln!(out, "  {:<19}{n}", format!("{}:", capitalize(name)));
    }
    let drops: BTreeMap<_, _> = reply.drops.iter().collect();
    let total: u64 = drops.values().copied().sum();
    let _ = writeln!(out, "  Drops:             {total}");
    // Causes that never happened are left out (the JSON has them all).
    for (reason, n) in drops.into_iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(out, "    {reason:<24}{n:>12}");
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `clear lisp map-cache`.
pub fn render_clear(reply: &api::ClearMapCacheReply) -> String {
    let n = reply.removed;
    let noun = if n == 1 { "entry" } else { "entries" };
    format!("Cleared {n} map-cache {noun}\n")
}

/// Milliseconds with up to three decimals: lab RTTs are often sub-ms.
fn msecs(us: u64) -> String {
    let (ms, frac) = (us / 1000, us % 1000);
    if frac == 0 {
        ms.to_string()
    } else {
        format!("{ms}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// `lig EID`: the Map-Resolver's answer for `eid`, as IOS prints it.
pub fn render_lig(eid: &str, reply: &api::LigReply) -> String {
    let mut out = String::new();
    let from = or_dash(&reply.map_resolver);
    // A negative Map-Reply is an answer too: show its prefix and action.
    if !reply.resolved && (reply.mapping.is_none() || !reply.error.is_empty()) {
        let why = if reply.error.is_empty() {
            "no answer"
        } else {
            &reply.error
        };
        let _ = writeln!(out, "% No mapping for EID {eid} from {from}: {why}");
        return out;
    }
    let _ = writeln!(
        out,
        "Mapping information for EID {eid} from {from} with RTT {} msecs",
        msecs(reply.rtt_us)
    );
    let m = reply.mapping.clone().unwrap_or_default();
    let path = if reply.path.is_empty() {
        String::new()
    } else {
        format!(", path {}", reply.path)
    };
    let _ = writeln!(
        out,
        "{}, uptime: 00:00:00, expires: {}, via map-reply{path}",
        split_iid(&m.eid_prefix).1,
        duration(u64::from(m.ttl_minutes) * 60),
    );
    locators_or_action(&mut out, &m);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse::MsxWhat;

    fn loc(addr: &str, pri: u32, wgt: u32, state: &str, uptime: u64) -> api::Locator {
        api::Locator {
            address: addr.into(),
            priority: pri,
            weight: wgt,
            state: state.into(),
            uptime_secs: uptime,
            ..Default::default()
        }
    }

    fn mapping(prefix: &str, iid: u32, locators: Vec<api::Locator>) -> api::MappingRecord {
        api::MappingRecord {
            eid_prefix: prefix.into(),
            instance_id: iid,
            ttl_minutes: 1440,
            locators,
            ..Default::default()
        }
    }

    fn map_cache_reply() -> api::ShowMapCacheReply {
        api::ShowMapCacheReply {
            total: 3,
            entries: vec![
                api::MapCacheEntry {
                    mapping: Some(mapping(
                        "192.0.2.0/26",
                        0,
                        vec![
                            loc("203.0.113.1", 1, 100, "up", 62),
                            loc("203.0.113.2", 2, 0, "down", 5),
                        ],
                    )),
                    uptime_secs: 62,
                    expires_in_secs: 86_338,
                    source: "map-reply".into(),
                    packets: 12,
                    bytes: 3456,
                    last_used_secs: 5,
                    ..Default::default()
                },
                api::MapCacheEntry {
                    mapping: Some(api::MappingRecord {
                        eid_prefix: "198.51.100.0/24".into(),
                        ttl_minutes: 15,
                        action: "natively-forward".into(),
                        ..Default::default()
                    }),
                    uptime_secs: 10,
                    expires_in_secs: 890,
                    source: "negative".into(),
                    never_used: true,
                    ..Default::default()
                },
                api::MapCacheEntry {
                    mapping: Some(mapping(
                        "[7]2001:db8::/48",
                        7,
                        vec![loc("2001:db8:ffff::1", 1, 50, "up", 93_600)],
                    )),
                    uptime_secs: 93_600,
                    source: "static".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "00:00:00");
        assert_eq!(duration(62), "00:01:02");
        assert_eq!(duration(86_399), "23:59:59");
        assert_eq!(duration(86_400 + 2 * 3600 + 59), "1d02h");
        assert_eq!(duration(7 * 86_400 * 3 + 2 * 86_400 + 5), "3w2d");
    }

    #[test]
    fn map_cache_golden() {
        let want = "\
LISP IPv4 Mapping Cache for EID-table default (IID 0), 2 entries

192.0.2.0/26, uptime: 00:01:02, expires: 23:58:58, via map-reply
  Locator        Uptime    State  Pri/Wgt
  203.0.113.1    00:01:02  up       1/100
  203.0.113.2    00:00:05  down     2/0
198.51.100.0/24, uptime: 00:00:10, expires: 00:14:50, via negative
  Negative cache entry, action: natively-forward

LISP IPv6 Mapping Cache for EID-table (IID 7), 1 entry

2001:db8::/48, uptime: 1d02h, expires: never, via static
  Locator           Uptime    State  Pri/Wgt
  2001:db8:ffff::1  1d02h     up       1/50
";
        assert_eq!(render_map_cache(&map_cache_reply(), false), want);
    }

    #[test]
    fn map_cache_detail_golden() {
        let mut reply = map_cache_reply();
        reply.entries.truncate(2);
        reply.total = 5;
        let want = "\
LISP IPv4 Mapping Cache for EID-table default (IID 0), 2 entries

192.0.2.0/26, uptime: 00:01:02, expires: 23:58:58, via map-reply
  TTL: 1d00h, authoritative: no
  Packets out: 12 (3456 bytes), last used: 00:00:05 ago
  Locator        Uptime    State  Pri/Wgt
  203.0.113.1    00:01:02  up       1/100
  203.0.113.2    00:00:05  down     2/0
198.51.100.0/24, uptime: 00:00:10, expires: 00:14:50, via negative
  TTL: 00:15:00, authoritative: no
  Packets out: 0 (0 bytes), last used: never
  Negative cache entry, action: natively-forward

2 of 5 entries shown
";
        assert_eq!(render_map_cache(&reply, true), want);
    }

    #[test]
    fn map_cache_empty() {
        let reply = api::ShowMapCacheReply::default();
        assert_eq!(
            render_map_cache(&reply, false),
            "LISP IPv4 Mapping Cache for EID-table default (IID 0), 0 entries\n"
        );
        let reply = api::ShowMapCacheReply {
            total: 4,
            entries: vec![],
        };
        assert_eq!(
            render_map_cache(&reply, false),
            "No matching map-cache entry (4 entries in the cache)\n"
        );
    }

    fn sites_reply() -> api::ShowSitesReply {
        api::ShowSitesReply {
            sites: vec![
                api::Site {
                    name: "branch-a".into(),
                    description: "Branch A".into(),
                    key_ids: vec![1, 2],
                    auth_failures: 3,
                    prefixes: vec![
                        api::SiteEidPrefix {
                            eid_prefix: "198.51.100.0/24".into(),
                            accept_more_specifics: true,
                            registered: true,
                            registrations: vec![
                                api::Registration {
                                    etr: "192.0.2.10".into(),
                                    xtr_id: "00112233445566778899aabbccddeeff".into(),
                                    site_id: 7,
                                    last_register_secs: 23,
                                    expires_in_secs: 157,
                                    want_map_notify: true,
                                    key_id: 1,
                                    algorithm: "hmac-sha-256".into(),
                                    ttl_minutes: 1440,
                                    locators: vec![api::Locator {
                                        local: true,
                                        ..loc("192.0.2.10", 1, 100, "up", 23)
                                    }],
                                    ..Default::default()
                                },
                                api::Registration {
                                    etr: "192.0.2.11".into(),
                                    last_register_secs: 50,
                                    expires_in_secs: 130,
                                    proxy_reply: true,
                                    key_id: 2,
                                    algorithm: "hmac-sha-1-96".into(),
                                    ttl_minutes: 3,
                                    ..Default::default()
                                },
                            ],
                            registered_more_specifics: vec!["198.51.100.128/25".into()],
                        },
                        api::SiteEidPrefix {
                            eid_prefix: "[7]2001:db8:a::/48".into(),
                            ..Default::default()
                        },
                    ],
                },
                api::Site {
                    name: "lab".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn sites_golden() {
        let want = "\
LISP Site Registration Information

Site Name  Last Register  Up   Who Last Registered  Inst ID  EID Prefix
branch-a   00:00:23       yes  192.0.2.10           0        198.51.100.0/24
           --             yes  --                   0        198.51.100.128/25
           never          no   --                   7        2001:db8:a::/48
lab        never          no   --
";
        assert_eq!(render_sites(&sites_reply(), false), want);
    }

    #[test]
    fn sites_detail_golden() {
        let mut reply = sites_reply();
        reply.sites.truncate(1);
        let want = "\
LISP Site Registration Information

Site name: branch-a
Description: Branch A
Authentication key-ids: 1, 2
Authentication failures: 3
Allowed EID-prefixes:

  EID-prefix: 198.51.100.0/24 (accept-more-specifics)
    Registered:             yes
    More-specifics:         198.51.100.128/25
    ETR 192.0.2.10, last registered 00:00:23, expires 00:02:37, no proxy-reply, map-notify
        TTL 1d00h, key-id 1, hmac-sha-256
        xTR-ID 0x00112233445566778899aabbccddeeff, site-ID 7
      Locator        Local  State  Pri/Wgt
      192.0.2.10     yes    up       1/100
    ETR 192.0.2.11, last registered 00:00:50, expires 00:02:10, proxy-reply, no map-notify
        TTL 00:03:00, key-id 2, hmac-sha-1-96
        xTR-ID unspecified, site-ID unspecified
      Locator        Local  State  Pri/Wgt

  EID-prefix: 2001:db8:a::/48 instance-id 7
    Registered:             no

";
        assert_eq!(render_sites(&reply, true), want);
    }

    #[test]
    fn lig_golden() {
        let reply = api::LigReply {
            resolved: true,
            mapping: Some(mapping(
                "198.51.100.0/24",
                0,
                vec![loc("203.0.113.1", 1, 100, "up", 0)],
            )),
            rtt_us: 12_500,
            map_resolver: "192.0.2.1".into(),
            path: "msx-copy".into(),
            error: String::new(),
        };
        let want = "\
Mapping information for EID 198.51.100.7 from 192.0.2.1 with RTT 12.5 msecs
198.51.100.0/24, uptime: 00:00:00, expires: 1d00h, via map-reply, path msx-copy
  Locator        Uptime    State  Pri/Wgt
  203.0.113.1    00:00:00  up       1/100
";
        assert_eq!(render_lig("198.51.100.7", &reply), want);

        let negative = api::LigReply {
            resolved: true,
            mapping: Some(api::MappingRecord {
                eid_prefix: "10.0.0.0/8".into(),
                ttl_minutes: 15,
                action: "natively-forward".into(),
                ..Default::default()
            }),
            rtt_us: 800,
            map_resolver: "192.0.2.1".into(),
            ..Default::default()
        };
        assert_eq!(
            render_lig("10.1.2.3", &negative),
            "Mapping information for EID 10.1.2.3 from 192.0.2.1 with RTT 0.8 msecs\n\
             10.0.0.0/8, uptime: 00:00:00, expires: 00:15:00, via map-reply\n  \
             Negative cache entry, action: natively-forward\n"
        );

        let failed = api::LigReply {
            map_resolver: "192.0.2.1".into(),
            error: "timeout after 3000 ms".into(),
            ..Default::default()
        };
        assert_eq!(
            render_lig("10.1.2.3", &failed),
            "% No mapping for EID 10.1.2.3 from 192.0.2.1: timeout after 3000 ms\n"
        );
    }

    #[test]
    fn statistics_golden() {
        let counters = [
            ("map-request.rx", 10),
            ("map-request.tx", 4),
            ("map-request.rate-limited", 0),
            ("map-reply.negative.tx", 1),
            ("malformed", 3),
            ("malformed.unknown-type", 1),
            ("auth.failure", 2),
        ];
        let reply = api::ShowStatisticsReply {
            counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            uptime_secs: 93_784,
        };
        let want = "\
LISP control plane statistics, uptime 1d02h

auth
  failure                                          2

malformed                                          3
  unknown-type                                     1

map-reply
  negative.tx                                      1

map-request
  rate-limited                                     0
  rx                                              10
  tx                                               4
";
        assert_eq!(render_statistics(&reply), want);
    }

    #[test]
    fn discovery_table() {
        let reply = api::ShowDiscoveryReply {
            entries: vec![
                api::DiscoveryEntry {
                    source: "ospf".into(),
                    adapter: "ospf-msfd".into(),
                    system: Some(api::DiscoveredSystem {
                        kind: "ms+mr".into(),
                        locators: vec!["192.0.2.3".into()],
                        status: "enabled".into(),
                        advertiser: "192.0.2.3".into(),
                        ..Default::default()
                    }),
                    age_secs: 300,
                    in_use: true,
                },
                api::DiscoveryEntry {
                    source: "bgp".into(),
                    system: Some(api::DiscoveredSystem {
                        kind: "ms".into(),
                        locators: vec!["203.0.113.9".into(), "203.0.113.10".into()],
                        status: "unreachable".into(),
                        advertiser: "198.51.100.2".into(),
                        ..Default::default()
                    }),
                    age_secs: 90_000,
                    ..Default::default()
                },
            ],
        };
        let want = "\
Mapping systems discovered: 2 (* = in use)

   Source  Advertiser    Kind   Locators                   Status       Age
*  ospf    192.0.2.3     ms+mr  192.0.2.3                  enabled      00:05:00
   bgp     198.51.100.2  ms     203.0.113.9, 203.0.113.10  unreachable  1d01h
";
        assert_eq!(render_discovery(&reply), want);
    }

    #[test]
    fn other_views_render() {
        let db = api::ShowDatabaseReply {
            entries: vec![api::DatabaseEntry {
                mapping: Some(mapping(
                    "198.51.100.0/24",
                    0,
                    vec![loc("192.0.2.10", 1, 100, "up", 60)],
                )),
                map_servers: vec!["192.0.2.1".into()],
                registration_state: vec!["registered".into()],
            }],
        };
        let out = render_database(&db);
        assert!(out.starts_with(
            "LISP ETR IPv4 Mapping Database for EID-table default (IID 0), 1 entry\n\n198.51.100.0/24\n"
        ));
        assert!(out.contains("\n  192.0.2.1      registered\n"), "{out}");

        let mut served = std::collections::HashMap::new();
        served.insert("negative".to_string(), 2);
        served.insert("ms".to_string(), 9);
        let mr = api::ShowMapResolverReply {
            served_by: served,
            ..Default::default()
        };
        assert!(render_map_resolver(&mr).contains("Requests served:       ms 9, negative 2\n"));

        let msx = api::ShowMsxReply {
            agreements: vec![api::Agreement {
                customer_agreement_id: "c-1".into(),
                peer: "203.0.113.5".into(),
                role: "client".into(),
                state: "agreed".into(),
                bulk: true,
                subscribe: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = render_msx(&msx, MsxWhat::Agreements);
        assert!(
            out.contains("c-1          -            203.0.113.5  client  agreed  bulk, subscribe"),
            "{out}"
        );

        let dp = api::DataPlaneStatistics {
            encapsulated: 5,
            drops: [("no-route".to_string(), 2)].into_iter().collect(),
            ..Default::default()
        };
        assert!(render_data_plane(&dp).contains("  Drops:             2\n    no-route"));
        assert_eq!(
            render_clear(&api::ClearMapCacheReply { removed: 1 }),
            "Cleared 1 map-cache entry\n"
        );
    }
}
