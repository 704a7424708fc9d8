//! The UPDATE message: path attributes, IPv4 NLRI and MP_REACH/MP_UNREACH
//! (RFC 4271, RFC 4760), with RFC 7606 "revised error handling".
//!
//! Decoding classifies every problem the way RFC 7606 asks:
//! - **treat-as-withdraw**: a malformed attribute whose meaning matters for
//!   the route (ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES,
//!   EXTENDED COMMUNITIES and their IPv6 form, ORIGINATOR_ID, CLUSTER_LIST, a
//!   missing mandatory attribute, wrong flags): every prefix the UPDATE
//!   announces is withdrawn instead, the session stays up;
//! - **attribute discard**: ATOMIC_AGGREGATE, AGGREGATOR, a duplicate
//!   attribute, an unknown optional one we cannot use;
//! - **session reset** (a NOTIFICATION): the NLRI cannot be located reliably
//!   (lengths that overrun the message or the attribute area, malformed NLRI,
//!   a malformed or repeated MP_REACH/MP_UNREACH), or an unrecognized
//!   well-known attribute.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::msg::{
    BgpError, UPD_ATTR_LENGTH, UPD_INVALID_NETWORK, UPD_MALFORMED_ATTR_LIST, UPD_OPTIONAL_ATTR,
    UPD_UNRECOGNIZED_WELL_KNOWN,
};
use super::prefix::{AFI_IPV4, AFI_IPV6, Family, Prefix};

pub const ATTR_ORIGIN: u8 = 1;
pub const ATTR_AS_PATH: u8 = 2;
pub const ATTR_NEXT_HOP: u8 = 3;
pub const ATTR_MED: u8 = 4;
pub const ATTR_LOCAL_PREF: u8 = 5;
pub const ATTR_ATOMIC_AGGREGATE: u8 = 6;
pub const ATTR_AGGREGATOR: u8 = 7;
pub const ATTR_COMMUNITIES: u8 = 8;
pub const ATTR_ORIGINATOR_ID: u8 = 9;
pub const ATTR_CLUSTER_LIST: u8 = 10;
pub const ATTR_MP_REACH: u8 = 14;
pub const ATTR_MP_UNREACH: u8 = 15;
pub const ATTR_EXT_COMMUNITIES: u8 = 16;
pub const ATTR_AS4_PATH: u8 = 17;
pub const ATTR_AS4_AGGREGATOR: u8 = 18;
pub const ATTR_IPV6_EXT_COMMUNITIES: u8 = 25;
pub const ATTR_LARGE_COMMUNITIES: u8 = 32;

pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// What the session negotiated that changes how an UPDATE reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// 4-octet AS numbers in AS_PATH and AGGREGATOR (RFC 6793).
    pub four_octet_as: bool,
    pub ipv4: bool,
    pub ipv6: bool,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            four_octet_as: true,
            ipv4: true,
            ipv6: true,
        }
    }
}

impl Ctx {
    fn accepts(&self, f: Family) -> bool {
        match f {
            Family::Ipv4Unicast => self.ipv4,
            Family::Ipv6Unicast => self.ipv6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

impl SegmentKind {
    fn code(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }

    fn from_code(c: u8) -> Option<SegmentKind> {
        Some(match c {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// AS_PATH as a list of segments.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AsPath(pub Vec<Segment>);

impl AsPath {
    pub fn sequence(asns: &[u32]) -> AsPath {
        if asns.is_empty() {
            AsPath(Vec::new())
        } else {
            AsPath(vec![Segment {
                kind: SegmentKind::Sequence,
                asns: asns.to_vec(),
            }])
        }
    }

    /// Every AS of the path, left to right (confederation segments left out).
    pub fn flatten(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter(|s| matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set))
            .flat_map(|s| s.asns.iter().copied())
            .collect()
    }

    /// The AS that originated the route: the last AS of a trailing
    /// AS_SEQUENCE; `None` for an empty path or one ending in an AS_SET.
    pub fn origin_as(&self) -> Option<u32> {
        let last = self
            .0
            .iter()
            .rev()
            .find(|s| matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set))?;
        match last.kind {
            SegmentKind::Sequence => last.asns.last().copied(),
            _ => None,
        }
    }

    fn encode(&self, four: bool, out: &mut Vec<u8>) {
        for s in &self.0 {
            for chunk in s.asns.chunks(255) {
                out.push(s.kind.code());
                out.push(chunk.len() as u8);
                for a in chunk {
                    if four {
                        out.extend_from_slice(&a.to_be_bytes());
                    } else {
                        out.extend_from_slice(&u16::try_from(*a).unwrap_or(23456).to_be_bytes());
                    }
                }
            }
        }
    }

    fn decode(mut v: &[u8], four: bool) -> Result<AsPath, String> {
        let w = if four { 4 } else { 2 };
        let mut segs = Vec::new();
        while !v.is_empty() {
            let [t, n, rest @ ..] = v else {
                return Err("segment header truncated".into());
            };
            let kind =
                SegmentKind::from_code(*t).ok_or_else(|| format!("unknown segment type {t}"))?;
            if *n == 0 {
                return Err("zero-length segment".into());
            }
            let need = usize::from(*n) * w;
            let body = rest
                .get(..need)
                .ok_or_else(|| format!("segment of {n} ASes overruns the attribute"))?;
            let asns = body
                .chunks_exact(w)
                .map(|c| {
                    if four {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u32::from(u16::from_be_bytes([c[0], c[1]]))
                    }
                })
                .collect();
            segs.push(Segment { kind, asns });
            v = &rest[need..];
        }
        Ok(AsPath(segs))
    }
}

/// The path attributes of an announcement (those this speaker understands;
/// other optional transitive ones are kept raw in `unknown`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PathAttrs {
    pub origin: Origin,
    pub as_path: AsPath,
    /// NEXT_HOP (IPv4 NLRI) or the MP_REACH next hop (global address).
    pub next_hop: Option<IpAddr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    /// Value of the Extended Communities attribute (16): 8-octet units.
    pub ext_communities: Vec<u8>,
    /// Value of the IPv6 Address Specific EC attribute (25): 20-octet units.
    pub ipv6_ext_communities: Vec<u8>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Unknown optional attributes: (flags, type, value).
    pub unknown: Vec<(u8, u8, Vec<u8>)>,
}

/// One RFC 7606 finding: which attribute, what was done, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrProblem {
    pub attr: u8,
    pub action: Rfc7606Action,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rfc7606Action {
    TreatAsWithdraw,
    AttributeDiscard,
}

impl std::fmt::Display for AttrProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let act = match self.action {
            Rfc7606Action::TreatAsWithdraw => "treat-as-withdraw",
            Rfc7606Action::AttributeDiscard => "attribute discarded",
        };
        write!(
            f,
            "attribute {} ({}): {} ({act})",
            self.attr,
            attr_name(self.attr),
            self.reason
        )
    }
}

pub fn attr_name(t: u8) -> &'static str {
    match t {
        ATTR_ORIGIN => "ORIGIN",
        ATTR_AS_PATH => "AS_PATH",
        ATTR_NEXT_HOP => "NEXT_HOP",
        ATTR_MED => "MULTI_EXIT_DISC",
        ATTR_LOCAL_PREF => "LOCAL_PREF",
        ATTR_ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        ATTR_AGGREGATOR => "AGGREGATOR",
        ATTR_COMMUNITIES => "COMMUNITIES",
        ATTR_ORIGINATOR_ID => "ORIGINATOR_ID",
        ATTR_CLUSTER_LIST => "CLUSTER_LIST",
        ATTR_MP_REACH => "MP_REACH_NLRI",
        ATTR_MP_UNREACH => "MP_UNREACH_NLRI",
        ATTR_EXT_COMMUNITIES => "EXTENDED COMMUNITIES",
        ATTR_AS4_PATH => "AS4_PATH",
        ATTR_AS4_AGGREGATOR => "AS4_AGGREGATOR",
        ATTR_IPV6_EXT_COMMUNITIES => "IPv6 ADDRESS SPECIFIC EXTENDED COMMUNITY",
        ATTR_LARGE_COMMUNITIES => "LARGE_COMMUNITY",
        _ => "unknown",
    }
}

/// A decoded UPDATE.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Update {
    /// Withdrawn prefixes (IPv4 field and MP_UNREACH).
    pub withdrawn: Vec<Prefix>,
    /// Announced prefixes (IPv4 NLRI and MP_REACH).
    pub announced: Vec<Prefix>,
    /// Attributes of `announced` (default when nothing is announced).
    pub attrs: PathAttrs,
    /// RFC 7606 findings. When any is treat-as-withdraw, `announced` must be
    /// applied as withdrawals: see [`Update::treat_as_withdraw`].
    pub problems: Vec<AttrProblem>,
    /// MP attributes of families not negotiated, ignored.
    pub ignored_families: Vec<(u16, u8)>,
}

impl Update {
    pub fn treat_as_withdraw(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.action == Rfc7606Action::TreatAsWithdraw)
    }

    /// An End-of-RIB marker (RFC 4724): nothing withdrawn or announced.
    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.is_empty()
    }
}

/// Expected (optional, transitive) flags of the attributes we know.
fn expected_flags(t: u8) -> Option<(bool, bool)> {
    Some(match t {
        ATTR_ORIGIN | ATTR_AS_PATH | ATTR_NEXT_HOP | ATTR_LOCAL_PREF | ATTR_ATOMIC_AGGREGATE => {
            (false, true)
        }
        ATTR_MED | ATTR_ORIGINATOR_ID | ATTR_CLUSTER_LIST | ATTR_MP_REACH | ATTR_MP_UNREACH => {
            (true, false)
        }
        ATTR_AGGREGATOR
        | ATTR_COMMUNITIES
        | ATTR_EXT_COMMUNITIES
        | ATTR_AS4_PATH
        | ATTR_AS4_AGGREGATOR
        | ATTR_IPV6_EXT_COMMUNITIES
        | ATTR_LARGE_COMMUNITIES => (true, true),
        _ => return None,
    })
}

/// RFC 7606 action for a malformed attribute of type `t`.
fn malformed_action(t: u8) -> Rfc7606Action {
    match t {
        ATTR_ATOMIC_AGGREGATE | ATTR_AGGREGATOR | ATTR_AS4_PATH | ATTR_AS4_AGGREGATOR => {
            Rfc7606Action::AttributeDiscard
        }
        _ => Rfc7606Action::TreatAsWithdraw,
    }
}

fn u32_of(v: &[u8]) -> Option<u32> {
    let a: [u8; 4] = v.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

/// Decodes an UPDATE body (after the header). `Err` means session reset.
pub fn decode_update(body: &[u8], ctx: &Ctx) -> Result<Update, BgpError> {
    let mut u = Update::default();
    let malformed_list = |why: String| BgpError::update(UPD_MALFORMED_ATTR_LIST, why);
    // RFC 7606 §4: the lengths must delimit the message exactly, else reset.
    let wlen = body
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| malformed_list("withdrawn routes length truncated".into()))?;
    let withdrawn = body.get(2..2 + wlen).ok_or_else(|| {
        malformed_list(format!(
            "withdrawn routes length {wlen} overruns the message"
        ))
    })?;
    let rest = &body[2 + wlen..];
    let alen = rest
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| malformed_list("total path attribute length truncated".into()))?;
    let attrs = rest.get(2..2 + alen).ok_or_else(|| {
        malformed_list(format!(
            "total path attribute length {alen} overruns the message"
        ))
    })?;
    let nlri = &rest[2 + alen..];

    let nlri_err = |e| BgpError::update(UPD_INVALID_NETWORK, format!("IPv4 NLRI: {e}"));
    let w4 = Prefix::decode_all(withdrawn, Family::Ipv4Unicast)
        .map_err(|e| BgpError::update(UPD_INVALID_NETWORK, format!("withdrawn routes: {e}")))?;
    let a4 = Prefix::decode_all(nlri, Family::Ipv4Unicast).map_err(nlri_err)?;
    if ctx.ipv4 {
        u.withdrawn.extend(w4);
        u.announced.extend(a4.iter().copied());
    } else if !w4.is_empty() || !a4.is_empty() {
        u.ignored_families.push((AFI_IPV4, 1));
    }

    // Walk the attributes; the first occurrence of each type counts.
    let mut seen = [false; 256];
    let mut p = attrs;
    let mut have_next_hop_attr = false;
    while !p.is_empty() {
        let [flags, typ, rest @ ..] = p else {
            return Err(malformed_list("attribute header truncated".into()));
        };
        let (flags, typ) = (*flags, *typ);
        let (len, hdr) = if flags & FLAG_EXTENDED_LENGTH != 0 {
            let l = rest
                .get(..2)
                .ok_or_else(|| malformed_list(format!("attribute {typ}: length truncated")))?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), 4)
        } else {
            let l = rest
                .first()
                .ok_or_else(|| malformed_list(format!("attribute {typ}: length truncated")))?;
            (usize::from(*l), 3)
        };
        let value = p.get(hdr..hdr + len).ok_or_else(|| {
            BgpError::update(
                UPD_ATTR_LENGTH,
                format!(
                    "attribute {typ} ({}): length {len} overruns the attribute area",
                    attr_name(typ)
                ),
            )
        })?;
        p = &p[hdr + len..];

        if seen[usize::from(typ)] {
            if typ == ATTR_MP_REACH || typ == ATTR_MP_UNREACH {
                return Err(malformed_list(format!("{} appears twice", attr_name(typ))));
            }
            u.problems.push(AttrProblem {
                attr: typ,
                action: Rfc7606Action::AttributeDiscard,
                reason: "repeated; the first occurrence is used".into(),
            });
            continue;
        }
        seen[usize::from(typ)] = true;

        let optional = flags & FLAG_OPTIONAL != 0;
        let transitive = flags & FLAG_TRANSITIVE != 0;
        let Some((want_opt, want_trans)) = expected_flags(typ) else {
            if !optional {
                return Err(BgpError::Update {
                    subcode: UPD_UNRECOGNIZED_WELL_KNOWN,
                    reason: format!("unrecognized well-known attribute {typ}"),
                    data: p_attr_bytes(flags, typ, value),
                });
            }
            u.attrs.unknown.push((flags, typ, value.to_vec()));
            continue;
        };
        let mut problem = |reason: String| {
            u.problems.push(AttrProblem {
                attr: typ,
                action: malformed_action(typ),
                reason,
            })
        };
        if (optional, transitive) != (want_opt, want_trans) {
            if typ == ATTR_MP_REACH || typ == ATTR_MP_UNREACH {
                return Err(BgpError::update(
                    super::msg::UPD_ATTR_FLAGS,
                    format!("{}: wrong attribute flags {flags:#04x}", attr_name(typ)),
                ));
            }
            problem(format!("wrong attribute flags {flags:#04x}"));
            continue;
        }
        let a = &mut u.attrs;
        match typ {
            ATTR_ORIGIN => match value {
                [0] => a.origin = Origin::Igp,
                [1] => a.origin = Origin::Egp,
                [2] => a.origin = Origin::Incomplete,
                _ => problem(format!("value {value:02x?} is not 1 octet of 0, 1 or 2")),
            },
            ATTR_AS_PATH => match AsPath::decode(value, ctx.four_octet_as) {
                Ok(path) => a.as_path = path,
                Err(e) => problem(e),
            },
            ATTR_NEXT_HOP => match <[u8; 4]>::try_from(value) {
                Ok(o) => {
                    have_next_hop_attr = true;
                    if !a4.is_empty() {
                        a.next_hop = Some(IpAddr::V4(Ipv4Addr::from(o)));
                    }
                }
                Err(_) => problem(format!("length {len}, want 4")),
            },
            ATTR_MED => match u32_of(value) {
                Some(v) => a.med = Some(v),
                None => problem(format!("length {len}, want 4")),
            },
            ATTR_LOCAL_PREF => match u32_of(value) {
                Some(v) => a.local_pref = Some(v),
                None => problem(format!("length {len}, want 4")),
            },
            ATTR_ATOMIC_AGGREGATE => {
                if value.is_empty() {
                    a.atomic_aggregate = true;
                } else {
                    problem(format!("length {len}, want 0"));
                }
            }
            ATTR_AGGREGATOR => {
                let want = if ctx.four_octet_as { 8 } else { 6 };
                if value.len() == want {
                    let (asn, ip) = value.split_at(want - 4);
                    let asn = if want == 8 {
                        u32_of(asn).unwrap_or(0)
                    } else {
                        u32::from(u16::from_be_bytes([asn[0], asn[1]]))
                    };
                    a.aggregator = Some((asn, Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])));
                } else {
                    problem(format!("length {len}, want {want}"));
                }
            }
            ATTR_COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    problem(format!("length {len} is not a non-zero multiple of 4"));
                } else {
                    a.communities = value
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                }
            }
            ATTR_ORIGINATOR_ID => match <[u8; 4]>::try_from(value) {
                Ok(o) => a.originator_id = Some(Ipv4Addr::from(o)),
                Err(_) => problem(format!("length {len}, want 4")),
            },
            ATTR_CLUSTER_LIST => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    problem(format!("length {len} is not a non-zero multiple of 4"));
                } else {
                    a.cluster_list = value
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        .collect();
                }
            }
            ATTR_EXT_COMMUNITIES => {
                // RFC 7606 §7.14.
                if value.is_empty() || !value.len().is_multiple_of(8) {
                    problem(format!("length {len} is not a non-zero multiple of 8"));
                } else {
                    a.ext_communities = value.to_vec();
                }
            }
            ATTR_IPV6_EXT_COMMUNITIES => {
                // RFC 5701 §3 with RFC 7606.
                if value.is_empty() || !value.len().is_multiple_of(20) {
                    problem(format!("length {len} is not a non-zero multiple of 20"));
                } else {
                    a.ipv6_ext_communities = value.to_vec();
                }
            }
            ATTR_MP_REACH => decode_mp_reach(value, ctx, &mut u)?,
            ATTR_MP_UNREACH => decode_mp_unreach(value, ctx, &mut u)?,
            // AS4_PATH / AS4_AGGREGATOR only matter between a 2-octet and a
            // 4-octet speaker; bgpd speaks 4-octet to us. Ignored.
            ATTR_AS4_PATH | ATTR_AS4_AGGREGATOR | ATTR_LARGE_COMMUNITIES => {}
            _ => {}
        }
    }

    // Mandatory attributes (RFC 4271 §5; RFC 7606 §3.d: treat-as-withdraw).
    if !u.announced.is_empty() {
        let mut missing = Vec::new();
        if !seen[usize::from(ATTR_ORIGIN)] {
            missing.push(ATTR_ORIGIN);
        }
        if !seen[usize::from(ATTR_AS_PATH)] {
            missing.push(ATTR_AS_PATH);
        }
        if !a4.is_empty() && ctx.ipv4 && !have_next_hop_attr && !seen[usize::from(ATTR_NEXT_HOP)] {
            missing.push(ATTR_NEXT_HOP);
        }
        for m in missing {
            u.problems.push(AttrProblem {
                attr: m,
                action: Rfc7606Action::TreatAsWithdraw,
                reason: "missing well-known mandatory attribute".into(),
            });
        }
    }
    Ok(u)
}

fn p_attr_bytes(flags: u8, typ: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_attr(flags, typ, value, &mut out);
    out
}

fn mp_family(afi: u16, safi: u8, ctx: &Ctx, u: &mut Update) -> Option<Family> {
    match Family::from_afi_safi(afi, safi) {
        Some(f) if ctx.accepts(f) => Some(f),
        _ => {
            u.ignored_families.push((afi, safi));
            None
        }
    }
}

fn decode_mp_reach(v: &[u8], ctx: &Ctx, u: &mut Update) -> Result<(), BgpError> {
    let reset = |why: String| BgpError::update(UPD_OPTIONAL_ATTR, format!("MP_REACH_NLRI: {why}"));
    let [a0, a1, safi, nhlen, rest @ ..] = v else {
        return Err(reset(format!("{} octets, at least 5 needed", v.len())));
    };
    let afi = u16::from_be_bytes([*a0, *a1]);
    let nhlen = usize::from(*nhlen);
    let nh = rest
        .get(..nhlen)
        .ok_or_else(|| reset(format!("next hop length {nhlen} overruns the attribute")))?;
    // One reserved octet (RFC 4760 §3), then the NLRI.
    let nlri = rest
        .get(nhlen + 1..)
        .ok_or_else(|| reset("reserved octet missing".into()))?;
    let Some(family) = mp_family(afi, *safi, ctx, u) else {
        return Ok(());
    };
    let prefixes = Prefix::decode_all(nlri, family).map_err(|e| reset(format!("NLRI: {e}")))?;
    let next_hop = match (family, nhlen) {
        (Family::Ipv6Unicast, 16 | 32) => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&nh[..16]).unwrap_or([0; 16]),
        ))),
        (Family::Ipv4Unicast, 4) => Some(IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3]))),
        (Family::Ipv4Unicast, 16 | 32) => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&nh[..16]).unwrap_or([0; 16]),
        ))),
        _ => None,
    };
    match next_hop {
        Some(nh) => u.attrs.next_hop = Some(nh),
        None => u.problems.push(AttrProblem {
            attr: ATTR_MP_REACH,
            action: Rfc7606Action::TreatAsWithdraw,
            reason: format!("next hop length {nhlen} is invalid for {family}"),
        }),
    }
    u.announced.extend(prefixes);
    Ok(())
}

fn decode_mp_unreach(v: &[u8], ctx: &Ctx, u: &mut Update) -> Result<(), BgpError> {
    let reset =
        |why: String| BgpError::update(UPD_OPTIONAL_ATTR, format!("MP_UNREACH_NLRI: {why}"));
    let [a0, a1, safi, nlri @ ..] = v else {
        return Err(reset(format!("{} octets, at least 3 needed", v.len())));
    };
    let afi = u16::from_be_bytes([*a0, *a1]);
    let Some(family) = mp_family(afi, *safi, ctx, u) else {
        return Ok(());
    };
    let prefixes =
        Prefix::decode_all(nlri, family).map_err(|e| reset(format!("withdrawn NLRI: {e}")))?;
    u.withdrawn.extend(prefixes);
    Ok(())
}

/// Appends one path attribute; the extended-length flag is set when needed.
pub fn encode_attr(flags: u8, typ: u8, value: &[u8], out: &mut Vec<u8>) {
    if value.len() > 255 || flags & FLAG_EXTENDED_LENGTH != 0 {
        out.push(flags | FLAG_EXTENDED_LENGTH);
        out.push(typ);
        out.extend_from_slice(&(value.len().min(65535) as u16).to_be_bytes());
    } else {
        out.push(flags);
        out.push(typ);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(&value[..value.len().min(65535)]);
}

/// Encodes the attributes of an announcement of `family`. For IPv6 the
/// MP_REACH_NLRI with `nlri` is included; for IPv4 the NEXT_HOP attribute
/// (the caller puts the prefixes in the NLRI field).
pub fn encode_attrs(a: &PathAttrs, family: Family, nlri: &[Prefix], ctx: &Ctx) -> Vec<u8> {
    let mut out = Vec::new();
    encode_attr(FLAG_TRANSITIVE, ATTR_ORIGIN, &[a.origin.code()], &mut out);
    let mut path = Vec::new();
    a.as_path.encode(ctx.four_octet_as, &mut path);
    encode_attr(FLAG_TRANSITIVE, ATTR_AS_PATH, &path, &mut out);
    if family == Family::Ipv4Unicast
        && let Some(IpAddr::V4(nh)) = a.next_hop
    {
        encode_attr(FLAG_TRANSITIVE, ATTR_NEXT_HOP, &nh.octets(), &mut out);
    }
    if let Some(m) = a.med {
        encode_attr(FLAG_OPTIONAL, ATTR_MED, &m.to_be_bytes(), &mut out);
    }
    if let Some(lp) = a.local_pref {
        encode_attr(
            FLAG_TRANSITIVE,
            ATTR_LOCAL_PREF,
            &lp.to_be_bytes(),
            &mut out,
        );
    }
    if a.atomic_aggregate {
        encode_attr(FLAG_TRANSITIVE, ATTR_ATOMIC_AGGREGATE, &[], &mut out);
    }
    if !a.communities.is_empty() {
        let v: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        encode_attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_COMMUNITIES,
            &v,
            &mut out,
        );
    }
    if family == Family::Ipv6Unicast {
        let mut mp = Vec::new();
        mp.extend_from_slice(&AFI_IPV6.to_be_bytes());
        mp.push(1);
        match a.next_hop {
            Some(IpAddr::V6(nh)) => {
                mp.push(16);
                mp.extend_from_slice(&nh.octets());
            }
            Some(IpAddr::V4(nh)) => {
                // IPv4-mapped (RFC 4291) when only an IPv4 next hop exists.
                mp.push(16);
                mp.extend_from_slice(&nh.to_ipv6_mapped().octets());
            }
            None => mp.push(0),
        }
        mp.push(0);
        for p in nlri {
            p.encode(&mut mp);
        }
        encode_attr(FLAG_OPTIONAL, ATTR_MP_REACH, &mp, &mut out);
    }
    if !a.ext_communities.is_empty() {
        encode_attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_EXT_COMMUNITIES,
            &a.ext_communities,
            &mut out,
        );
    }
    if !a.ipv6_ext_communities.is_empty() {
        encode_attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_IPV6_EXT_COMMUNITIES,
            &a.ipv6_ext_communities,
            &mut out,
        );
    }
    out
}

/// An UPDATE body from its three raw parts.
pub fn update_body(withdrawn_v4: &[Prefix], attrs: &[u8], nlri_v4: &[Prefix]) -> Vec<u8> {
    let mut w = Vec::new();
    for p in withdrawn_v4 {
        p.encode(&mut w);
    }
    let mut out = Vec::with_capacity(4 + w.len() + attrs.len() + 5 * nlri_v4.len());
    out.extend_from_slice(&(w.len() as u16).to_be_bytes());
    out.extend_from_slice(&w);
    out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    out.extend_from_slice(attrs);
    for p in nlri_v4 {
        p.encode(&mut out);
    }
    out
}

/// Room for NLRI in one message after the header, both length fields and
/// the attributes.
fn room(attrs_len: usize) -> usize {
    super::msg::MAX_MESSAGE_LEN - super::msg::HEADER_LEN - 4 - attrs_len
}

/// UPDATE bodies announcing `prefixes` (all of one family) with `attrs`,
/// split so that each fits in 4096 octets.
pub fn announce_bodies(
    attrs: &PathAttrs,
    family: Family,
    prefixes: &[Prefix],
    ctx: &Ctx,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let base = encode_attrs(attrs, family, &[], ctx).len();
    // The MP_REACH attribute may switch to extended length: keep 1 spare octet.
    let budget = room(base + 1);
    let mut chunk: Vec<Prefix> = Vec::new();
    let mut used = 0;
    let mut flush = |chunk: &mut Vec<Prefix>| {
        if chunk.is_empty() {
            return;
        }
        let body = match family {
            Family::Ipv4Unicast => update_body(&[], &encode_attrs(attrs, family, &[], ctx), chunk),
            Family::Ipv6Unicast => update_body(&[], &encode_attrs(attrs, family, chunk, ctx), &[]),
        };
        out.push(body);
        chunk.clear();
    };
    for p in prefixes {
        let n = 1 + p.wire_octets();
        if used + n > budget {
            flush(&mut chunk);
            used = 0;
        }
        chunk.push(*p);
        used += n;
    }
    flush(&mut chunk);
    out
}

/// UPDATE bodies withdrawing `prefixes` (any mix of families).
pub fn withdraw_bodies(prefixes: &[Prefix]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (v4, v6): (Vec<Prefix>, Vec<Prefix>) = prefixes
        .iter()
        .partition(|p| p.family() == Family::Ipv4Unicast);
    for chunk in chunks_fitting(&v4, room(0)) {
        out.push(update_body(&chunk, &[], &[]));
    }
    for chunk in chunks_fitting(&v6, room(8)) {
        let mut mp = Vec::new();
        mp.extend_from_slice(&AFI_IPV6.to_be_bytes());
        mp.push(1);
        for p in &chunk {
            p.encode(&mut mp);
        }
        let mut attrs = Vec::new();
        encode_attr(FLAG_OPTIONAL, ATTR_MP_UNREACH, &mp, &mut attrs);
        out.push(update_body(&[], &attrs, &[]));
    }
    out
}

/// End-of-RIB markers (RFC 4724) for a family.
pub fn end_of_rib(family: Family) -> Vec<u8> {
    match family {
        Family::Ipv4Unicast => update_body(&[], &[], &[]),
        Family::Ipv6Unicast => {
            let mut attrs = Vec::new();
            encode_attr(FLAG_OPTIONAL, ATTR_MP_UNREACH, &[0, 2, 1], &mut attrs);
            update_body(&[], &attrs, &[])
        }
    }
}

fn chunks_fitting(prefixes: &[Prefix], budget: usize) -> Vec<Vec<Prefix>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let n = 1 + p.wire_octets();
        if used + n > budget && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(*p);
        used += n;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::msg::{UPD_ATTR_FLAGS, UPD_MALFORMED_ATTR_LIST};

    fn ctx() -> Ctx {
        Ctx::default()
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn attrs_v4() -> PathAttrs {
        PathAttrs {
            origin: Origin::Igp,
            as_path: AsPath::sequence(&[65002, 4_200_000_000]),
            next_hop: Some("192.0.2.254".parse().unwrap()),
            local_pref: Some(100),
            med: Some(7),
            communities: vec![0xFDEA_0001],
            ext_communities: vec![0x01, 0xB0, 198, 51, 100, 2, 0, 1],
            ..Default::default()
        }
    }

    #[test]
    fn ipv4_announcement_round_trip() {
        let a = attrs_v4();
        let bodies = announce_bodies(
            &a,
            Family::Ipv4Unicast,
            &[p("203.0.113.0/24"), p("192.0.2.128/25")],
            &ctx(),
        );
        assert_eq!(bodies.len(), 1);
        let u = decode_update(&bodies[0], &ctx()).unwrap();
        assert_eq!(u.announced, vec![p("203.0.113.0/24"), p("192.0.2.128/25")]);
        assert_eq!(u.attrs, a);
        assert!(u.problems.is_empty() && !u.treat_as_withdraw());
        assert_eq!(u.attrs.as_path.origin_as(), Some(4_200_000_000));
    }

    #[test]
    fn ipv6_announcement_and_withdrawal_round_trip() {
        let a = PathAttrs {
            next_hop: Some("2001:db8:ffff::fe".parse().unwrap()),
            local_pref: Some(100),
            ipv6_ext_communities: {
                let mut v = vec![0x00, 0xB0];
                v.extend_from_slice(&"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets());
                v.extend_from_slice(&[0, 3]);
                v
            },
            ..Default::default()
        };
        let bodies = announce_bodies(&a, Family::Ipv6Unicast, &[p("2001:db8:a::/48")], &ctx());
        let u = decode_update(&bodies[0], &ctx()).unwrap();
        assert_eq!(u.announced, vec![p("2001:db8:a::/48")]);
        assert_eq!(u.attrs, a);
        let w = withdraw_bodies(&[p("2001:db8:a::/48"), p("203.0.113.0/24")]);
        assert_eq!(w.len(), 2);
        let all: Vec<Prefix> = w
            .iter()
            .flat_map(|b| decode_update(b, &ctx()).unwrap().withdrawn)
            .collect();
        assert_eq!(all, vec![p("203.0.113.0/24"), p("2001:db8:a::/48")]);
    }

    /// bgpd 8.4.4 (AS65002) passing the plugin's route on over eBGP, as
    /// tshark saw it on the link: AS_PATH with the extended-length flag,
    /// next-hop-self, the community unchanged.
    #[test]
    fn update_of_frr_8_4_golden() {
        let hex = "ffffffffffffffffffffffffffffffff003b0200000020400101005002000602010000fdea400304c6336402c0100801b0c6336406000118cb0071";
        let b: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let crate::bgp::msg::Message::Update(body) = crate::bgp::msg::Message::decode(&b).unwrap()
        else {
            panic!("not an UPDATE")
        };
        let u = decode_update(&body, &ctx()).unwrap();
        assert!(u.problems.is_empty(), "{:?}", u.problems);
        assert_eq!(u.announced, vec![p("203.0.113.0/24")]);
        assert_eq!(u.attrs.as_path.flatten(), vec![65002]);
        assert_eq!(u.attrs.next_hop, Some("198.51.100.2".parse().unwrap()));
        assert_eq!(u.attrs.ext_communities, [0x01, 0xB0, 198, 51, 100, 6, 0, 1]);
        assert_eq!(u.attrs.med, None);
    }

    #[test]
    fn end_of_rib_markers() {
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let u = decode_update(&end_of_rib(f), &ctx()).unwrap();
            assert!(u.is_end_of_rib(), "{f}");
        }
    }

    #[test]
    fn large_announcements_are_split_below_4096() {
        let prefixes: Vec<Prefix> = (0..2000u32)
            .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0xC633_0000 + (i << 8))), 24).unwrap())
            .collect();
        let bodies = announce_bodies(&attrs_v4(), Family::Ipv4Unicast, &prefixes, &ctx());
        assert!(bodies.len() > 1);
        let mut back = Vec::new();
        for b in &bodies {
            assert!(b.len() + 19 <= 4096, "{}", b.len());
            back.extend(decode_update(b, &ctx()).unwrap().announced);
        }
        assert_eq!(back, prefixes);
        let v6: Vec<Prefix> = (0..600u32)
            .map(|i| {
                Prefix::new(
                    IpAddr::V6(Ipv6Addr::from(
                        (0x2001_0db8_u128 << 96) | (u128::from(i) << 64),
                    )),
                    64,
                )
                .unwrap()
            })
            .collect();
        let mut a = attrs_v4();
        a.next_hop = Some("2001:db8::1".parse().unwrap());
        let bodies = announce_bodies(&a, Family::Ipv6Unicast, &v6, &ctx());
        let mut back = Vec::new();
        for b in &bodies {
            assert!(b.len() + 19 <= 4096);
            back.extend(decode_update(b, &ctx()).unwrap().announced);
        }
        assert_eq!(back, v6);
        for b in withdraw_bodies(&v6) {
            assert!(b.len() + 19 <= 4096);
        }
    }

    /// An UPDATE with the attributes of `attrs_v4` but the extended
    /// communities replaced by `ec` (raw value, flags 0xC0).
    fn with_ec(ec: &[u8]) -> Vec<u8> {
        let mut a = attrs_v4();
        a.ext_communities.clear();
        let mut raw = encode_attrs(&a, Family::Ipv4Unicast, &[], &ctx());
        encode_attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_EXT_COMMUNITIES,
            ec,
            &mut raw,
        );
        update_body(&[p("198.51.100.0/24")], &raw, &[p("203.0.113.0/24")])
    }

    #[test]
    fn malformed_extended_communities_is_treat_as_withdraw() {
        let u = decode_update(&with_ec(&[0x01, 0xB0, 198, 51, 100, 2, 0, 1, 0]), &ctx()).unwrap();
        assert!(u.treat_as_withdraw());
        assert_eq!(u.announced, vec![p("203.0.113.0/24")]);
        assert_eq!(u.withdrawn, vec![p("198.51.100.0/24")]);
        assert_eq!(u.problems[0].attr, ATTR_EXT_COMMUNITIES);
        assert!(
            u.problems[0]
                .to_string()
                .contains("not a non-zero multiple of 8"),
            "{}",
            u.problems[0]
        );
        // Empty is malformed too.
        assert!(
            decode_update(&with_ec(&[]), &ctx())
                .unwrap()
                .treat_as_withdraw()
        );
        // A good one is not.
        assert!(
            !decode_update(&with_ec(&[0x01, 0xB0, 198, 51, 100, 2, 0, 1]), &ctx())
                .unwrap()
                .treat_as_withdraw()
        );
    }

    #[test]
    fn malformed_ipv6_extended_communities_is_treat_as_withdraw() {
        let mut raw = encode_attrs(&attrs_v4(), Family::Ipv4Unicast, &[], &ctx());
        encode_attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_IPV6_EXT_COMMUNITIES,
            &[0; 21],
            &mut raw,
        );
        let u = decode_update(&update_body(&[], &raw, &[p("203.0.113.0/24")]), &ctx()).unwrap();
        assert!(u.treat_as_withdraw());
        assert_eq!(u.problems[0].attr, ATTR_IPV6_EXT_COMMUNITIES);
    }

    fn body_with(attr_bytes: &[u8]) -> Vec<u8> {
        let mut raw = Vec::new();
        encode_attr(FLAG_TRANSITIVE, ATTR_ORIGIN, &[0], &mut raw);
        encode_attr(FLAG_TRANSITIVE, ATTR_AS_PATH, &[], &mut raw);
        encode_attr(FLAG_TRANSITIVE, ATTR_NEXT_HOP, &[192, 0, 2, 1], &mut raw);
        raw.extend_from_slice(attr_bytes);
        update_body(&[], &raw, &[p("203.0.113.0/24")])
    }

    fn attr(flags: u8, typ: u8, v: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        encode_attr(flags, typ, v, &mut o);
        o
    }

    #[test]
    fn rfc7606_classification() {
        let twa = |b: &[u8]| {
            let u = decode_update(&body_with(b), &ctx()).unwrap();
            assert!(u.treat_as_withdraw(), "{b:02x?}: {:?}", u.problems);
        };
        let discard = |b: &[u8]| {
            let u = decode_update(&body_with(b), &ctx()).unwrap();
            assert!(
                !u.treat_as_withdraw() && !u.problems.is_empty(),
                "{b:02x?}: {:?}",
                u.problems
            );
        };
        twa(&attr(FLAG_OPTIONAL, ATTR_MED, &[0, 0, 1]));
        twa(&attr(FLAG_TRANSITIVE, ATTR_LOCAL_PREF, &[0; 5]));
        twa(&attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_COMMUNITIES,
            &[0; 6],
        ));
        twa(&attr(FLAG_OPTIONAL, ATTR_ORIGINATOR_ID, &[0; 3]));
        twa(&attr(FLAG_OPTIONAL, ATTR_CLUSTER_LIST, &[0; 5]));
        // Wrong flags on extended communities (non-transitive).
        twa(&attr(FLAG_OPTIONAL, ATTR_EXT_COMMUNITIES, &[0; 8]));
        discard(&attr(FLAG_TRANSITIVE, ATTR_ATOMIC_AGGREGATE, &[1]));
        discard(&attr(
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_AGGREGATOR,
            &[1, 2, 3],
        ));
        // A repeated attribute: the second is discarded.
        discard(&attr(FLAG_TRANSITIVE, ATTR_ORIGIN, &[1]));
        // Unknown optional transitive attributes are kept.
        let u = decode_update(
            &body_with(&attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, 99, &[1, 2])),
            &ctx(),
        )
        .unwrap();
        assert!(u.problems.is_empty());
        assert_eq!(
            u.attrs.unknown,
            vec![(FLAG_OPTIONAL | FLAG_TRANSITIVE, 99, vec![1, 2])]
        );
        // Bad ORIGIN / AS_PATH.
        let mut raw = Vec::new();
        encode_attr(FLAG_TRANSITIVE, ATTR_ORIGIN, &[3], &mut raw);
        encode_attr(FLAG_TRANSITIVE, ATTR_AS_PATH, &[2, 2, 0, 0, 1], &mut raw);
        encode_attr(FLAG_TRANSITIVE, ATTR_NEXT_HOP, &[192, 0, 2], &mut raw);
        let u = decode_update(&update_body(&[], &raw, &[p("203.0.113.0/24")]), &ctx()).unwrap();
        assert_eq!(u.problems.len(), 3);
        assert!(u.treat_as_withdraw());
        // Missing mandatory attributes.
        let u = decode_update(&update_body(&[], &[], &[p("203.0.113.0/24")]), &ctx()).unwrap();
        assert_eq!(
            u.problems.iter().map(|p| p.attr).collect::<Vec<_>>(),
            vec![ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP]
        );
    }

    #[test]
    fn session_level_errors() {
        let code = |b: &[u8]| match decode_update(b, &ctx()) {
            Err(BgpError::Update { subcode, .. }) => subcode,
            other => panic!("{other:?}"),
        };
        // Withdrawn length overruns.
        assert_eq!(code(&[0, 9, 24, 1, 2, 3, 0, 0]), UPD_MALFORMED_ATTR_LIST);
        // Attribute length overruns the attribute area.
        let mut b = body_with(&[]);
        b[2..4].copy_from_slice(&2u16.to_be_bytes());
        assert!(decode_update(&b, &ctx()).is_err());
        let bad = [0u8, 0, 0, 4, 0x40, 1, 5, 0];
        assert_eq!(code(&bad), UPD_ATTR_LENGTH);
        // Invalid IPv4 NLRI.
        assert_eq!(
            code(
                &update_body(&[], &[], &[])
                    .iter()
                    .copied()
                    .chain([40, 1, 2, 3, 4, 5])
                    .collect::<Vec<_>>()
            ),
            UPD_INVALID_NETWORK
        );
        // Unrecognized well-known attribute.
        assert_eq!(
            code(&body_with(&attr(FLAG_TRANSITIVE, 99, &[]))),
            UPD_UNRECOGNIZED_WELL_KNOWN
        );
        // MP_REACH twice / with wrong flags / truncated.
        let mp = attr(
            FLAG_OPTIONAL,
            ATTR_MP_REACH,
            &[
                0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
            ],
        );
        let mut twice = mp.clone();
        twice.extend_from_slice(&mp);
        assert_eq!(code(&body_with(&twice)), UPD_MALFORMED_ATTR_LIST);
        assert_eq!(
            code(&body_with(&attr(
                FLAG_OPTIONAL | FLAG_TRANSITIVE,
                ATTR_MP_REACH,
                &[0, 2, 1, 0, 0]
            ))),
            UPD_ATTR_FLAGS
        );
        assert_eq!(
            code(&body_with(&attr(FLAG_OPTIONAL, ATTR_MP_REACH, &[0, 2, 1]))),
            UPD_OPTIONAL_ATTR
        );
        assert_eq!(
            code(&body_with(&attr(
                FLAG_OPTIONAL,
                ATTR_MP_REACH,
                &[0, 2, 1, 0, 0, 200, 1]
            ))),
            UPD_OPTIONAL_ATTR
        );
        // Every truncation of a good UPDATE is an error or a value, never a panic.
        let good = announce_bodies(
            &attrs_v4(),
            Family::Ipv4Unicast,
            &[p("203.0.113.0/24")],
            &ctx(),
        )
        .remove(0);
        for n in 0..good.len() {
            let _ = decode_update(&good[..n], &ctx());
        }
    }

    #[test]
    fn unnegotiated_families_are_ignored() {
        let a = PathAttrs {
            next_hop: Some("2001:db8::1".parse().unwrap()),
            ..Default::default()
        };
        let b = announce_bodies(&a, Family::Ipv6Unicast, &[p("2001:db8::/32")], &ctx()).remove(0);
        let only_v4 = Ctx {
            ipv6: false,
            ..ctx()
        };
        let u = decode_update(&b, &only_v4).unwrap();
        assert!(u.announced.is_empty());
        assert_eq!(u.ignored_families, vec![(2, 1)]);
    }

    #[test]
    fn two_octet_as_paths() {
        let c2 = Ctx {
            four_octet_as: false,
            ..ctx()
        };
        let a = PathAttrs {
            as_path: AsPath::sequence(&[65001, 65002]),
            next_hop: Some("192.0.2.1".parse().unwrap()),
            ..Default::default()
        };
        let b = announce_bodies(&a, Family::Ipv4Unicast, &[p("203.0.113.0/24")], &c2).remove(0);
        let u = decode_update(&b, &c2).unwrap();
        assert_eq!(u.attrs.as_path.flatten(), vec![65001, 65002]);
        // Read as 4-octet, the same bytes are a malformed path.
        assert!(decode_update(&b, &ctx()).unwrap().treat_as_withdraw());
    }

    #[test]
    fn as_path_helpers() {
        let path = AsPath(vec![
            Segment {
                kind: SegmentKind::ConfedSequence,
                asns: vec![1],
            },
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![65001, 65003],
            },
        ]);
        assert_eq!(path.flatten(), vec![65001, 65003]);
        assert_eq!(path.origin_as(), Some(65003));
        assert_eq!(AsPath::default().origin_as(), None);
        let set = AsPath(vec![Segment {
            kind: SegmentKind::Set,
            asns: vec![1, 2],
        }]);
        assert_eq!(set.origin_as(), None);
        assert!(AsPath::decode(&[9, 1, 0, 0, 0, 1], true).is_err());
        assert!(AsPath::decode(&[2, 0], true).is_err());
        assert!(AsPath::decode(&[2], true).is_err());
    }
}
