//! LISP-MSX interconnection between mapping systems: CPNP negotiation (the
//! engine, sans I/O), its transport, and the role state the reactor keeps.

pub mod bulk;
pub mod negotiation;
pub mod subscribe;
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

/// What an agreement covers, as Map-Bulk/Map-Subscribe filters.
fn agreement_filters(a: &negotiation::Agreement) -> Vec<lisp_msx_proto::msx::Filter> {
    a.service
        .eid_prefixes
        .iter()
        .map(|p| lisp_msx_proto::msx::Filter::Prefix(*p))
        .collect()
}

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
    pub publisher: subscribe::Publisher,
    pub subscriber: subscribe::Subscriber,
    pub psk: Vec<u8>,
    local_as: u32,
    /// Agreement key → the peer's Map-Server contact (its copy's owner).
    contacts: std::collections::HashMap<String, IpAddr>,
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
        let mut role = MsxRole {
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
            publisher: subscribe::Publisher::new(cfg.subscription),
            subscriber: subscribe::Subscriber::new(cfg.subscription),
            psk: cfg.psk.as_bytes().to_vec(),
            local_as: cfg.as_number,
            contacts: std::collections::HashMap::new(),
        };
        role.contacts = role
            .neg
            .agreements()
            .map(|a| (a.key(), a.service.mapping_system_contact))
            .collect();
        role
    }

    fn subscriptions_path(&self) -> PathBuf {
        self.path.with_file_name("subscriptions.json")
    }

    /// After a restart: our subscribers come back from disk and are told (by
    /// our new epoch) to resynchronize. A corrupt file is logged and ignored:
    /// subscribers also find us again at their next renewal.
    pub fn restore_subscriptions(&mut self, now: Instant) -> Vec<subscribe::Out> {
        let path = self.subscriptions_path();
        let saved: Vec<subscribe::SavedSubscription> = match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(v) => v,
                Err(e) => {
                    error!(path = %path.display(), "ignoring the saved subscriptions: {e}");
                    return Vec::new();
                }
            },
            Err(_) => return Vec::new(),
        };
        let keys: std::collections::HashSet<String> =
            self.neg.agreements().map(|a| a.key()).collect();
        let out = self
            .publisher
            .restore(now, saved, |k| keys.contains(k), &self.psk);
        if !out.is_empty() {
            info!(
                subscribers = out.len(),
                "LISP-MSX subscriptions restored; subscribers told to resynchronize"
            );
        }
        out
    }

    /// Writes the provider's subscriptions when they changed (atomically).
    pub fn persist_subscriptions(&mut self, now: Instant) {
        if !self.publisher.dirty {
            return;
        }
        let saved = self.publisher.saved(now);
        let path = self.subscriptions_path();
        if let Err(e) = negotiation::save_json_atomic(&path, &saved) {
            error!(path = %path.display(), "cannot persist the subscriptions: {e}");
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
            // With a subscription, the copy starts once it runs, so that no
            // change falls between the copy and the first publication.
            let contact = a.service.mapping_system_contact;
            if due && !self.subscriber.is_starting(contact) {
                self.bulk_requested.insert(a.key(), now);
                self.subscriber.bulk_requested(contact);
                let _ = jobs.send(bulk::BulkJob {
                    // The Map-Server itself serves Map-Bulk on the control port.
                    peer: contact,
                    filters: agreement_filters(a),
                });
            }
        }
    }

    /// Asks for a fresh copy of `provider`'s table now (a subscription
    /// started or lost publications).
    pub fn force_bulk(&mut self, provider: IpAddr, now: Instant) {
        let keys: Vec<String> = self
            .neg
            .agreements()
            .filter(|a| a.role == Role::Client && a.service.mapping_system_contact == provider)
            .map(|a| a.key())
            .collect();
        for k in keys {
            self.bulk_requested.remove(&k);
        }
        self.request_bulk(now);
    }

    /// The subscriptions our client agreements call for.
    fn wanted_subscriptions(&self) -> Vec<subscribe::Want> {
        self.neg
            .agreements()
            .filter(|a| a.role == Role::Client && a.service.services.subscribe)
            .map(|a| subscribe::Want {
                provider: a.service.mapping_system_contact,
                agreement: a.key(),
                filters: agreement_filters(a),
                immediate: !a.service.services.bulk,
            })
            .collect()
    }

    /// Subscribes to the systems we have agreements with (and cancels the
    /// subscriptions whose agreement ended).
    pub fn sync_subscriptions(&mut self, now: Instant, subtype: u16) -> Vec<subscribe::Out> {
        let wanted = self.wanted_subscriptions();
        self.subscriber.sync(now, wanted, subtype, &self.psk)
    }

    /// A Map-Subscribe (request) from a peer system.
    #[allow(clippy::too_many_arguments)]
    pub fn on_subscribe(
        &mut self,
        now: Instant,
        from: std::net::SocketAddr,
        via: usize,
        packet: &[u8],
        m: &lisp_msx_proto::msx::MapSubscribe,
        subtype: u16,
        snapshot: impl FnOnce() -> Vec<lisp_msx_proto::lisp::EidRecord>,
    ) -> Result<(Vec<subscribe::Out>, lisp_msx_proto::msx::SubscribeResult), subscribe::Refused>
    {
        let agreement = self.neg.agreements().find(|a| {
            a.peer == from.ip() && a.role == Role::Server && a.service.services.subscribe
        });
        let allowed = agreement.map(|a| subscribe::Allowed {
            agreement: a.key(),
            prefixes: &a.service.eid_prefixes,
            local_as: self.local_as,
        });
        let outcome = self
            .publisher
            .on_subscribe(now, from, via, packet, m, subtype, &self.psk, allowed)?;
        let mut out = outcome.out;
        if let Some(key) = outcome.snapshot_for {
            out.extend(
                self.publisher
                    .push_all(now, key, snapshot(), self.local_as, &self.psk),
            );
        }
        Ok((out, outcome.result))
    }

    /// Publishes registration changes to the subscribers they match.
    pub fn publish(&mut self, now: Instant, deltas: &[subscribe::Delta]) -> Vec<subscribe::Out> {
        if self.publisher.is_empty() {
            return Vec::new();
        }
        self.publisher
            .publish(now, deltas, self.local_as, &self.psk)
    }

    /// Subscription timers: retransmissions, renewals, expiry.
    pub fn subscription_tick(&mut self, now: Instant, subtype: u16) -> Vec<subscribe::Out> {
        let (mut out, dropped) = self.publisher.tick(now);
        for (peer, why) in dropped {
            info!(%peer, "LISP-MSX subscription dropped: {why}");
        }
        out.extend(self.subscriber.tick(now, subtype, &self.psk));
        out
    }

    pub fn subscription_deadline(&self) -> Option<Instant> {
        self.subscriber.next_deadline()
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
                    self.contacts
                        .insert(a.key(), a.service.mapping_system_contact);
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
                    self.publisher.forget(peer);
                    self.torn_down.push(peer);
                    if let Some(c) = self.contacts.remove(&key) {
                        self.torn_down.push(c);
                    }
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
        if what.is_empty() || what == "subscriptions" {
            let now = Instant::now();
            reply.subscriptions = self.subscriber.show(now);
            reply.subscriptions.extend(self.publisher.show(now));
        }
        reply
    }
}
