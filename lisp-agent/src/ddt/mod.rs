//! DDT node (RFC 8111): answers DDT Map-Requests (ECM with the D bit) with
//! Map-Referrals: NODE-REFERRAL / MS-REFERRAL for delegated prefixes,
//! DELEGATION-HOLE inside its authority, NOT-AUTHORITATIVE outside.

use std::net::IpAddr;

use lisp_mapdb::{Prefix, PrefixMap};
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix};

use crate::config::DdtConfig;
use crate::control::ctx::{Ctx, Incoming};
use crate::mapping::hole_prefix;
use crate::stats::inc;

#[derive(Debug, Clone)]
struct Delegation {
    to_map_servers: bool,
    referrals: Vec<IpAddr>,
}

pub struct DdtNode {
    authority: PrefixMap<()>,
    delegations: PrefixMap<Delegation>,
}

impl DdtNode {
    pub fn new(cfg: &DdtConfig) -> DdtNode {
        let mut authority = PrefixMap::new();
        for p in &cfg.authoritative_prefixes {
            if let Some(k) = p
                .parse::<EidPrefix>()
                .ok()
                .and_then(|e| Prefix::try_from(e.normalized()).ok())
            {
                authority.insert(k, ());
            }
        }
        let mut delegations = PrefixMap::new();
        for d in &cfg.delegations {
            if let Ok(k) = Prefix::try_from(d.prefix.normalized()) {
                delegations.insert(
                    k,
                    Delegation {
                        to_map_servers: d.kind == "map-server",
                        referrals: d.referrals.clone(),
                    },
                );
            }
        }
        DdtNode {
            authority,
            delegations,
        }
    }

    /// Answers one DDT Map-Request.
    pub fn handle_request(&self, ctx: &mut Ctx<'_>, inc_: &Incoming, req: &MapRequest) {
        let Some(key) = crate::mapping::request_prefix(req) else {
            inc(&ctx.stats.counters.malformed);
            return;
        };
        let rec = match self.authority.longest_match_prefix(&key) {
            None => ReferralRecord {
                ttl: 0,
                eid: EidPrefix::from(key),
                action: ReferralAction::NOT_AUTHORITATIVE,
                incomplete: true,
                ..Default::default()
            },
            Some((auth_p, _)) => match self.delegations.longest_match_prefix(&key) {
                Some((p, d)) => {
                    let action = if d.to_map_servers {
                        ReferralAction::MS_REFERRAL
                    } else {
                        ReferralAction::NODE_REFERRAL
                    };
                    ReferralRecord {
                        ttl: action.default_ttl(),
                        eid: EidPrefix::from(p),
                        action,
                        authoritative: true,
                        referrals: d
                            .referrals
                            .iter()
                            .map(|a| Locator::new(Addr::from(*a), 1, 100))
                            .collect(),
                        ..Default::default()
                    }
                }
                None => {
                    let hole = hole_prefix(&key, &self.delegations, Some(&auth_p));
                    ReferralRecord {
                        ttl: ReferralAction::DELEGATION_HOLE.default_ttl(),
                        eid: EidPrefix::from(hole),
                        action: ReferralAction::DELEGATION_HOLE,
                        authoritative: true,
                        ..Default::default()
                    }
                }
            },
        };
        let msg = LispMessage::MapReferral(MapReferral {
            nonce: req.nonce,
            records: vec![rec],
        });
        if ctx.send(inc_.src, Some(inc_.sock), &msg) {
            inc(&ctx.stats.counters.map_referral_tx);
        }
    }
}
