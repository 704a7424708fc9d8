//! LISP-MSX interconnection between mapping systems: CPNP negotiation (the
//! engine, sans I/O), its transport, and the role state the reactor keeps.

pub mod bulk;
pub mod negotiation;
pub mod transport;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use lisp_msx_proto::api;
use lisp_msx_proto::cpnp::{CpnpMessage, MsxService};
use tracing::{error, info, warn};

use crate::config::MsxConfig;
use crate::msx::negotiation::{Action, Negotiator, Peer, Role};

/// What we know about one remote mapping system.
#[derive(Debug, Clone, Default)]
struct PeerView {
    ms_id: u16,
    origin_as: u32,
    eid_prefixes: Vec<String>,
    state: String,
    reason: String,
}

/// How often a copied table is fetched again (subscriptions will make this
/// a safety net rather than the freshness mechanism).
pub const BULK_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// The MSX role inside the reactor: owns the negotiation, tracks peers.
pub struct MsxRole {
    pub neg: Negotiator,
    out: transport::Outgoing,
    bulk_jobs: Option<tokio::sync::mpsc::UnboundedSender<bulk::BulkJob>>,
    /// Agreement key → when its table was last requested.
    bulk_requested: std::collections::HashMap<String, Instant>,
    torn_down: Vec<IpAddr>,
    path: PathBuf,
    pub require_agreement: bool,
    peers: BTreeMap<IpAddr, PeerView>,
}

impl MsxRole {
    pub fn new(
        cfg: &MsxConfig,
        local: MsxService,
        path: PathBuf,
        persisted: Vec<negotiation::Agreement>,
        out: transport::Outgoing,
        bulk_jobs: Option<tokio::sync::mpsc::UnboundedSender<bulk::BulkJob>>,
    ) -> Self {
        MsxRole {
            neg: Negotiator::new(
                local,
                cfg.request.into(),
                cfg.policy.clone(),
                cfg.as_number,
                persisted,
            ),
            out,
            bulk_jobs,
            bulk_requested: std::collections::HashMap::new(),
            torn_down: Vec::new(),
            path,
            require_agreement: cfg.require_agreement,
            peers: BTreeMap::new(),
        }
    }

    /// Asks for the tables of client agreements that include bulk: new ones
    /// at once, the others every [`BULK_REFRESH`].
    pub fn request_bulk(&mut self, now: Instant) {
        let Some(jobs) = &self.bulk_jobs else { return };
        for a in self
            .neg
            .agreements()
            .filter(|a| a.role == Role::Client && a.service.services.bulk)
        {
            let due = self
                .bulk_requested
                .get(&a.key())
                .is_none_or(|t| now.duration_since(*t) >= BULK_REFRESH);
            if due {
                self.bulk_requested.insert(a.key(), now);
                let _ = jobs.send(bulk::BulkJob {
                    peer: a.peer,
                    filters: a
                        .service
                        .eid_prefixes
                        .iter()
                        .map(|p| lisp_msx_proto::msx::Filter::Prefix(*p))
                        .collect(),
                });
            }
        }
    }

    /// Peers whose agreement ended since the last call (their copies go).
    pub fn take_torn_down(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.torn_down)
    }

    /// The server agreement allowing `peer` to copy our table, if any.
    pub fn bulk_agreement(&self, peer: IpAddr) -> Option<&negotiation::Agreement> {
        self.neg
            .agreements()
            .find(|a| a.peer == peer && a.role == Role::Server && a.service.services.bulk)
    }

    /// Applies a new configuration: policy and offer change; agreements stay.
    pub fn reload(&mut self, cfg: &MsxConfig, local: MsxService) {
        self.neg.policy = cfg.policy.clone();
        self.neg.request = cfg.request.into();
        self.neg.local = local;
        self.require_agreement = cfg.require_agreement;
    }

    /// A mapping system discovered through BGP.
    pub fn discovered(&mut self, p: &Peer, now: Instant) -> bool {
        let view = self.peers.entry(p.contact).or_default();
        view.ms_id = p.ms_id;
        view.origin_as = p.origin_as;
        view.eid_prefixes = p.eid_prefixes.iter().map(|e| e.to_string()).collect();
        if self.neg.agreement_with(p.contact, Role::Client).is_some() {
            view.state = "agreed".into();
        } else if view.state.is_empty() {
            view.state = "discovered".into();
        }
        let actions = self.neg.discovered(p, now);
        self.apply(actions)
    }

    pub fn received(&mut self, peer: IpAddr, msg: CpnpMessage, now: Instant) -> bool {
        let actions = self.neg.received(peer, msg, now);
        self.apply(actions)
    }

    pub fn tick(&mut self, now: Instant) -> bool {
        let actions = self.neg.tick(now);
        self.apply(actions)
    }

    /// Carries out the engine's actions; true when the agreement set changed
    /// (the Map-Resolver's routes must follow).
    fn apply(&mut self, actions: Vec<Action>) -> bool {
        let mut changed = false;
        for a in actions {
            match a {
                Action::Send { peer, msg } => {
                    if msg.method_code == lisp_msx_proto::cpnp::MethodCode::Quotation {
                        self.peers.entry(peer).or_default().state = "negotiating".into();
                    }
                    let _ = self.out.send((peer, *msg));
                }
                Action::Established(a) => {
                    info!(peer = %a.peer, role = ?a.role, key = %a.key(), "LISP-MSX agreement established");
                    if a.role == Role::Client {
                        let v = self.peers.entry(a.peer).or_default();
                        v.state = "agreed".into();
                        v.reason.clear();
                    }
                    changed = true;
                }
                Action::TornDown { key, peer, reason } => {
                    info!(%peer, %key, "LISP-MSX agreement torn down: {reason}");
                    self.bulk_requested.remove(&key);
                    self.torn_down.push(peer);
                    if let Some(v) = self.peers.get_mut(&peer) {
                        v.state = "withdrawn".into();
                        v.reason = reason;
                    }
                    changed = true;
                }
                Action::Refused { peer, reason } => {
                    warn!(%peer, "LISP-MSX interconnection refused: {reason}");
                    let v = self.peers.entry(peer).or_default();
                    v.state = if reason.contains("policy") {
                        "denied-by-policy".into()
                    } else {
                        "declined".into()
                    };
                    v.reason = reason;
                }
                Action::Persist(all) => {
                    if let Err(e) = negotiation::save_agreements(&self.path, &all) {
                        error!(path = %self.path.display(), "cannot persist the agreements: {e}");
                    }
                }
            }
        }
        changed
    }

    /// Routes from our client agreements: EID prefix → the peer's Map-Server.
    pub fn agreement_routes(&self) -> Vec<(lisp_mapdb::Prefix, crate::mr::Route)> {
        self.neg
            .agreements()
            .filter(|a| a.role == Role::Client && a.service.services.direct_map_request)
            .flat_map(|a| {
                a.service.eid_prefixes.iter().filter_map(move |p| {
                    lisp_mapdb::Prefix::try_from(p.normalized()).ok().map(|k| {
                        (
                            k,
                            crate::mr::Route {
                                map_servers: vec![a.service.mapping_system_contact],
                                source: "msx-agreement".into(),
                                reachable: true,
                                agreement_id: a.key(),
                            },
                        )
                    })
                })
            })
            .collect()
    }

    pub fn show(&self, what: &str) -> api::ShowMsxReply {
        let mut reply = api::ShowMsxReply::default();
        if what.is_empty() || what == "peers" {
            reply.peers = self
                .peers
                .iter()
                .map(|(ip, v)| api::MsxPeer {
                    contact: ip.to_string(),
                    ms_id: v.ms_id.into(),
                    origin_as: v.origin_as,
                    eid_prefixes: v.eid_prefixes.clone(),
                    state: if v.reason.is_empty() {
                        v.state.clone()
                    } else {
                        format!("{} ({})", v.state, v.reason)
                    },
                    agreement_id: self
                        .neg
                        .agreement_with(*ip, Role::Client)
                        .map(|a| a.key())
                        .unwrap_or_default(),
                })
                .collect();
        }
        if what.is_empty() || what == "agreements" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            reply.agreements = self
                .neg
                .agreements()
                .map(|a| api::Agreement {
                    customer_agreement_id: a.customer_id.clone(),
                    provider_agreement_id: a.provider_id.clone(),
                    peer: a.peer.to_string(),
                    role: match a.role {
                        Role::Client => "client",
                        Role::Server => "server",
                    }
                    .into(),
                    state: "agreed".into(),
                    bulk: a.service.services.bulk,
                    subscribe: a.service.services.subscribe,
                    direct_requests: a.service.services.direct_map_request,
                    eid_prefixes: a
                        .service
                        .eid_prefixes
                        .iter()
                        .map(|p| p.to_string())
                        .collect(),
                    expires_in_secs: a.expires_unix.map_or(0, |e| e.saturating_sub(now)),
                })
                .collect();
        }
        reply
    }
}
