//! CPNP (RFC 8921) negotiation of mapping-system interconnections, as a
//! sans-I/O state machine: events in (a peer discovered, a message received,
//! time passing), actions out (messages to send, agreements made or torn
//! down, state to persist). The transport and the reactor drive it; tests
//! drive it directly.
//!
//! Flow: client QUOTATION → server PROCESSING + OFFER (full or partial) →
//! client ACCEPT (or DECLINE) → server ACK. Either side may WITHDRAW an
//! agreement; a client may CANCEL an order. A server refuses by policy with
//! FAIL (administratively prohibited).
//!
//! Rules kept: sequence numbers start at random and grow by one per new
//! message; a retransmission repeats the number and gets the last answer
//! again; anything older is dropped. Unanswered messages are retransmitted
//! up to three times. The offer's NONCE must come back in ACCEPT/DECLINE.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lisp_msx_proto::EidPrefix;
use lisp_msx_proto::cpnp::{
    Cpd, CpdForm, CpnpMessage, DeclineReason, FailStatus, MethodCode, MsxService, MsxServices,
    PartyDescription, Rfc3339,
};
use serde::{Deserialize, Serialize};

pub const RETRANSMIT_AFTER: Duration = Duration::from_secs(1);
pub const MAX_RETRANSMISSIONS: u32 = 3;

/// Who may interconnect with us, and whom we avoid.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Only these origin ASes (empty: any).
    pub allow_as: Vec<u32>,
    pub deny_as: Vec<u32>,
    pub deny_contacts: Vec<IpAddr>,
    /// "Avoid domains": refuse systems whose AS path crosses any of these.
    pub avoid_transit_as: Vec<u32>,
    /// Only systems serving prefixes inside these (empty: any).
    pub allow_prefixes: Vec<String>,
    /// Accept an offer with fewer services or prefixes than requested.
    pub accept_partial: bool,
}

/// What we know of a remote mapping system (from discovery, or its QUOTATION).
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub contact: IpAddr,
    pub ms_id: u16,
    pub origin_as: u32,
    pub as_path: Vec<u32>,
    pub eid_prefixes: Vec<EidPrefix>,
}

impl Policy {
    /// None when allowed, else the reason for refusing.
    pub fn refuses(&self, p: &Peer) -> Option<String> {
        if self.deny_contacts.contains(&p.contact) {
            return Some(format!("contact {} is denied", p.contact));
        }
        if self.deny_as.contains(&p.origin_as) {
            return Some(format!("AS{} is denied", p.origin_as));
        }
        if !self.allow_as.is_empty() && !self.allow_as.contains(&p.origin_as) {
            return Some(format!("AS{} is not in allow_as", p.origin_as));
        }
        if let Some(a) = p.as_path.iter().find(|a| self.avoid_transit_as.contains(a)) {
            return Some(format!("the AS path crosses avoided AS{a}"));
        }
        if !self.allow_prefixes.is_empty() {
            let allowed: Vec<EidPrefix> = self
                .allow_prefixes
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect();
            if !p
                .eid_prefixes
                .iter()
                .all(|e| allowed.iter().any(|a| a.contains(e)))
            {
                return Some("EID prefixes outside allow_prefixes".into());
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// We asked for the service (customer).
    Client,
    /// We provide it.
    Server,
}

/// An interconnection both sides agreed on; persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub customer_id: String,
    pub provider_id: String,
    pub peer: IpAddr,
    pub role: Role,
    pub service: MsxService,
    pub nonce: u64,
    /// Unix seconds; None: no end.
    pub expires_unix: Option<u64>,
}

impl Agreement {
    /// Stable key: both identifiers.
    pub fn key(&self) -> String {
        format!("{}/{}", self.customer_id, self.provider_id)
    }
}

/// What the engine asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send {
        peer: IpAddr,
        msg: Box<CpnpMessage>,
    },
    Established(Box<Agreement>),
    TornDown {
        key: String,
        peer: IpAddr,
        reason: String,
    },
    /// Declined or refused before any agreement.
    Refused {
        peer: IpAddr,
        reason: String,
    },
    /// The agreement set changed: write it (atomically) to the state file.
    Persist(Vec<Agreement>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientStep {
    QuotationSent,
    Processing,
    AcceptSent,
}

#[derive(Debug)]
struct ClientOrder {
    customer_id: String,
    provider_id: Option<String>,
    transaction_id: u32,
    step: ClientStep,
    requested: MsxService,
    offered: Option<MsxService>,
    nonce: Option<u64>,
    last: CpnpMessage,
    sent_at: Instant,
    tries: u32,
}

#[derive(Debug)]
struct ServerOrder {
    provider_id: String,
    offered: MsxService,
    nonce: u64,
    /// The last answer, repeated when the client retransmits.
    last_answer: Vec<CpnpMessage>,
    sent_at: Instant,
    tries: u32,
    peer: IpAddr,
}

/// Per-peer sequence state: ours grows; theirs must too.
#[derive(Debug, Default)]
struct SeqState {
    next_out: u32,
    last_in: Option<u32>,
}

pub struct Negotiator {
    /// What we provide to others (our contact, prefixes and services).
    pub local: MsxService,
    /// The services we ask for from others.
    pub request: MsxServices,
    pub policy: Policy,
    pub our_as: u32,
    clients: HashMap<IpAddr, ClientOrder>,
    servers: HashMap<String, ServerOrder>,
    agreements: BTreeMap<String, Agreement>,
    seq: HashMap<IpAddr, SeqState>,
}

fn rand_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Negotiator {
    pub fn new(
        local: MsxService,
        request: MsxServices,
        policy: Policy,
        our_as: u32,
        persisted: Vec<Agreement>,
    ) -> Self {
        let now = now_unix();
        Negotiator {
            local,
            request,
            policy,
            our_as,
            clients: HashMap::new(),
            servers: HashMap::new(),
            agreements: persisted
                .into_iter()
                .filter(|a| a.expires_unix.is_none_or(|e| e > now))
                .map(|a| (a.key(), a))
                .collect(),
            seq: HashMap::new(),
        }
    }

    pub fn agreements(&self) -> impl Iterator<Item = &Agreement> {
        self.agreements.values()
    }

    /// The agreement with `peer` in `role`, if any.
    pub fn agreement_with(&self, peer: IpAddr, role: Role) -> Option<&Agreement> {
        self.agreements
            .values()
            .find(|a| a.peer == peer && a.role == role)
    }

    /// Orders in progress (client side), for show commands.
    pub fn negotiating(&self) -> Vec<IpAddr> {
        self.clients.keys().copied().collect()
    }

    fn next_seq(&mut self, peer: IpAddr) -> u32 {
        let s = self.seq.entry(peer).or_insert_with(|| SeqState {
            next_out: rand::random::<u32>() >> 2,
            last_in: None,
        });
        s.next_out = s.next_out.wrapping_add(1);
        s.next_out
    }

    fn party(&self) -> PartyDescription {
        PartyDescription {
            as_number: Some(self.our_as),
            ..Default::default()
        }
    }

    /// A remote system was discovered: order an interconnection if policy allows
    /// and none exists or is under way.
    pub fn discovered(&mut self, peer: &Peer, now: Instant) -> Vec<Action> {
        if self.clients.contains_key(&peer.contact)
            || self.agreement_with(peer.contact, Role::Client).is_some()
        {
            return Vec::new();
        }
        if let Some(reason) = self.policy.refuses(peer) {
            return vec![Action::Refused {
                peer: peer.contact,
                reason: format!("local policy: {reason}"),
            }];
        }
        let requested = MsxService {
            mapping_system_contact: peer.contact,
            ms_identifier: peer.ms_id,
            as_number: peer.origin_as,
            services: self.request,
            eid_prefixes: peer.eid_prefixes.clone(),
            rate_limits: Default::default(),
            validity_seconds: None,
        };
        let customer_id = rand_id();
        let tid = rand::random();
        let seq = self.next_seq(peer.contact);
        let mut msg = CpnpMessage::new(MethodCode::Quotation, seq, tid, customer_id.clone());
        msg.cpd = Some(Cpd::new(CpdForm::Requested, requested.clone()));
        msg.customer = Some(self.party());
        self.clients.insert(
            peer.contact,
            ClientOrder {
                customer_id,
                provider_id: None,
                transaction_id: tid,
                step: ClientStep::QuotationSent,
                requested,
                offered: None,
                nonce: None,
                last: msg.clone(),
                sent_at: now,
                tries: 0,
            },
        );
        vec![Action::Send {
            peer: peer.contact,
            msg: Box::new(msg),
        }]
    }

    /// A message from `peer` (already authenticated by the transport).
    pub fn received(&mut self, peer: IpAddr, msg: CpnpMessage, now: Instant) -> Vec<Action> {
        // Sequence rule: a repeat gets the last answer again; older is dropped.
        let st = self.seq.entry(peer).or_insert_with(|| SeqState {
            next_out: rand::random::<u32>() >> 2,
            last_in: None,
        });
        if let Some(last) = st.last_in {
            if msg.sequence_number == last {
                return self.repeat_answer(peer, &msg);
            }
            if msg.sequence_number.wrapping_sub(last) > u32::MAX / 2 {
                return Vec::new();
            }
        }
        st.last_in = Some(msg.sequence_number);
        match msg.method_code {
            MethodCode::Quotation => self.on_quotation(peer, msg, now),
            MethodCode::Accept | MethodCode::Decline | MethodCode::Cancel => {
                self.on_client_answer(peer, msg)
            }
            MethodCode::Processing | MethodCode::Offer | MethodCode::Ack | MethodCode::Fail => {
                self.on_server_answer(peer, msg, now)
            }
            MethodCode::Withdraw => self.on_withdraw(peer, &msg),
            // UPDATE/ACTIVATE are not used between mapping systems yet: refuse clearly.
            _ => vec![self.fail(peer, &msg, FailStatus::Validation)],
        }
    }

    fn repeat_answer(&self, peer: IpAddr, msg: &CpnpMessage) -> Vec<Action> {
        self.servers
            .values()
            .filter(|o| {
                o.peer == peer
                    && msg.customer_agreement_identifier
                        == o.last_answer
                            .first()
                            .map_or(String::new(), |m| m.customer_agreement_identifier.clone())
            })
            .flat_map(|o| o.last_answer.iter().cloned())
            .map(|m| Action::Send {
                peer,
                msg: Box::new(m),
            })
            .collect()
    }

    fn fail(&mut self, peer: IpAddr, msg: &CpnpMessage, status: FailStatus) -> Action {
        let seq = self.next_seq(peer);
        let mut f = CpnpMessage::new(
            MethodCode::Fail,
            seq,
            msg.transaction_id,
            msg.customer_agreement_identifier.clone(),
        );
        f.provider_agreement_identifier = Some(
            msg.provider_agreement_identifier
                .clone()
                .unwrap_or_else(rand_id),
        );
        f.status_code = Some(status);
        Action::Send {
            peer,
            msg: Box::new(f),
        }
    }

    fn on_quotation(&mut self, peer: IpAddr, msg: CpnpMessage, now: Instant) -> Vec<Action> {
        let Some(requested) = msg.cpd.as_ref().and_then(|c| c.lisp_msx.clone()) else {
            return vec![self.fail(peer, &msg, FailStatus::Validation)];
        };
        let customer_as = msg.customer.as_ref().and_then(|c| c.as_number).unwrap_or(0);
        let as_peer = Peer {
            contact: peer,
            ms_id: 0,
            origin_as: customer_as,
            as_path: Vec::new(),
            eid_prefixes: Vec::new(),
        };
        if let Some(reason) = self.policy.refuses(&as_peer) {
            let f = self.fail(peer, &msg, FailStatus::AdministrativelyProhibited);
            return vec![
                f,
                Action::Refused {
                    peer,
                    reason: format!("local policy: {reason}"),
                },
            ];
        }
        // Offer what we have of what was asked: services and prefixes both intersected.
        let services = MsxServices {
            bulk: requested.services.bulk && self.local.services.bulk,
            subscribe: requested.services.subscribe && self.local.services.subscribe,
            direct_map_request: requested.services.direct_map_request
                && self.local.services.direct_map_request,
        };
        let prefixes: Vec<EidPrefix> = if requested.eid_prefixes.is_empty() {
            self.local.eid_prefixes.clone()
        } else {
            self.local
                .eid_prefixes
                .iter()
                .filter(|p| {
                    requested
                        .eid_prefixes
                        .iter()
                        .any(|r| r.contains(p) || p.contains(r))
                })
                .copied()
                .collect()
        };
        if !(services.bulk || services.subscribe || services.direct_map_request)
            || prefixes.is_empty()
        {
            return vec![self.fail(peer, &msg, FailStatus::OutOfResources)];
        }
        let offered = MsxService {
            services,
            eid_prefixes: prefixes,
            ..self.local.clone()
        };
        let provider_id = rand_id();
        let nonce: u64 = rand::random();
        let mut processing = CpnpMessage::new(
            MethodCode::Processing,
            self.next_seq(peer),
            msg.transaction_id,
            msg.customer_agreement_identifier.clone(),
        );
        processing.provider_agreement_identifier = Some(provider_id.clone());
        let mut offer = CpnpMessage::new(
            MethodCode::Offer,
            self.next_seq(peer),
            msg.transaction_id,
            msg.customer_agreement_identifier.clone(),
        );
        offer.provider_agreement_identifier = Some(provider_id.clone());
        offer.nonce = Some(nonce);
        offer.validity_offer_time = Rfc3339::from_unix(now_unix() as i64 + 300);
        offer.cpd = Some(Cpd::new(CpdForm::Offered, offered.clone()));
        offer.provider = Some(self.party());
        let answer = vec![processing, offer];
        self.servers.insert(
            msg.customer_agreement_identifier.clone(),
            ServerOrder {
                provider_id,
                offered,
                nonce,
                last_answer: answer.clone(),
                sent_at: now,
                tries: 0,
                peer,
            },
        );
        answer
            .into_iter()
            .map(|m| Action::Send {
                peer,
                msg: Box::new(m),
            })
            .collect()
    }

    fn on_client_answer(&mut self, peer: IpAddr, msg: CpnpMessage) -> Vec<Action> {
        let Some(order) = self.servers.get(&msg.customer_agreement_identifier) else {
            return vec![self.fail(peer, &msg, FailStatus::Validation)];
        };
        let ids_ok = order.peer == peer
            && msg.provider_agreement_identifier.as_deref() == Some(order.provider_id.as_str())
            && (msg.method_code == MethodCode::Cancel || msg.nonce == Some(order.nonce));
        if !ids_ok {
            return vec![self.fail(peer, &msg, FailStatus::Validation)];
        }
        let order = self
            .servers
            .remove(&msg.customer_agreement_identifier)
            .expect("present");
        match msg.method_code {
            MethodCode::Accept => {
                let a = Agreement {
                    customer_id: msg.customer_agreement_identifier.clone(),
                    provider_id: order.provider_id.clone(),
                    peer,
                    role: Role::Server,
                    service: order.offered.clone(),
                    nonce: order.nonce,
                    expires_unix: order
                        .offered
                        .validity_seconds
                        .map(|v| now_unix() + u64::from(v)),
                };
                let mut ack = CpnpMessage::new(
                    MethodCode::Ack,
                    self.next_seq(peer),
                    msg.transaction_id,
                    msg.customer_agreement_identifier.clone(),
                );
                ack.provider_agreement_identifier = Some(order.provider_id);
                ack.nonce = Some(order.nonce);
                ack.cpd = Some(Cpd::new(CpdForm::Agreed, order.offered));
                self.agreements.insert(a.key(), a.clone());
                vec![
                    Action::Send {
                        peer,
                        msg: Box::new(ack),
                    },
                    Action::Established(Box::new(a)),
                    Action::Persist(self.agreements.values().cloned().collect()),
                ]
            }
            _ => vec![Action::Refused {
                peer,
                reason: format!("the client answered {}", msg.method_code.name()),
            }],
        }
    }

    fn on_server_answer(&mut self, peer: IpAddr, msg: CpnpMessage, now: Instant) -> Vec<Action> {
        let Some(order) = self.clients.get_mut(&peer) else {
            return Vec::new();
        };
        if msg.customer_agreement_identifier != order.customer_id
            || msg.transaction_id != order.transaction_id
        {
            return Vec::new();
        }
        match msg.method_code {
            MethodCode::Processing => {
                order.step = ClientStep::Processing;
                order.provider_id = msg.provider_agreement_identifier;
                order.sent_at = now;
                Vec::new()
            }
            MethodCode::Offer => {
                let offered = msg.cpd.as_ref().and_then(|c| c.lisp_msx.clone());
                let Some(offered) = offered else {
                    return Vec::new();
                };
                let partial = (order.requested.services.bulk && !offered.services.bulk)
                    || (order.requested.services.subscribe && !offered.services.subscribe)
                    || (order.requested.services.direct_map_request
                        && !offered.services.direct_map_request)
                    || order.requested.eid_prefixes.iter().any(|r| {
                        !offered
                            .eid_prefixes
                            .iter()
                            .any(|o| o.contains(r) || r.contains(o))
                    });
                order.provider_id = msg.provider_agreement_identifier.clone();
                order.nonce = msg.nonce;
                order.offered = Some(offered.clone());
                let accept = !partial || self.policy.accept_partial;
                let seq = self.next_seq(peer);
                let order = self.clients.get_mut(&peer).expect("present");
                let mut reply = CpnpMessage::new(
                    if accept {
                        MethodCode::Accept
                    } else {
                        MethodCode::Decline
                    },
                    seq,
                    order.transaction_id,
                    order.customer_id.clone(),
                );
                reply.provider_agreement_identifier = order.provider_id.clone();
                reply.nonce = order.nonce;
                if accept {
                    reply.cpd = Some(Cpd::new(CpdForm::Agreed, offered));
                    order.step = ClientStep::AcceptSent;
                    order.last = reply.clone();
                    order.sent_at = now;
                    order.tries = 0;
                    vec![Action::Send {
                        peer,
                        msg: Box::new(reply),
                    }]
                } else {
                    reply.reason = vec![DeclineReason::Gap];
                    self.clients.remove(&peer);
                    vec![
                        Action::Send { peer, msg: Box::new(reply) },
                        Action::Refused {
                            peer,
                            reason: "the offer covers less than requested (policy: accept_partial = false)".into(),
                        },
                    ]
                }
            }
            MethodCode::Ack if order.step == ClientStep::AcceptSent && msg.nonce == order.nonce => {
                let order = self.clients.remove(&peer).expect("present");
                let service = order.offered.unwrap_or(order.requested);
                let a = Agreement {
                    customer_id: order.customer_id,
                    provider_id: order.provider_id.unwrap_or_default(),
                    peer,
                    role: Role::Client,
                    expires_unix: service.validity_seconds.map(|v| now_unix() + u64::from(v)),
                    service,
                    nonce: order.nonce.unwrap_or(0),
                };
                self.agreements.insert(a.key(), a.clone());
                vec![
                    Action::Established(Box::new(a)),
                    Action::Persist(self.agreements.values().cloned().collect()),
                ]
            }
            MethodCode::Fail => {
                self.clients.remove(&peer);
                vec![Action::Refused {
                    peer,
                    reason: format!(
                        "the provider failed the order: {}",
                        fail_text(msg.status_code)
                    ),
                }]
            }
            _ => Vec::new(),
        }
    }

    fn on_withdraw(&mut self, peer: IpAddr, msg: &CpnpMessage) -> Vec<Action> {
        let key = format!(
            "{}/{}",
            msg.customer_agreement_identifier,
            msg.provider_agreement_identifier
                .clone()
                .unwrap_or_default()
        );
        match self.agreements.get(&key) {
            Some(a) if a.peer == peer && Some(a.nonce) == msg.nonce => {
                self.agreements.remove(&key);
                vec![
                    Action::TornDown {
                        key,
                        peer,
                        reason: "withdrawn by the peer".into(),
                    },
                    Action::Persist(self.agreements.values().cloned().collect()),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Withdraws an agreement we hold (operator action, site gone, policy change).
    pub fn withdraw(&mut self, key: &str, reason: &str) -> Vec<Action> {
        let Some(a) = self.agreements.remove(key) else {
            return Vec::new();
        };
        let seq = self.next_seq(a.peer);
        let mut w = CpnpMessage::new(
            MethodCode::Withdraw,
            seq,
            rand::random(),
            a.customer_id.clone(),
        );
        w.provider_agreement_identifier = Some(a.provider_id.clone());
        w.nonce = Some(a.nonce);
        vec![
            Action::Send {
                peer: a.peer,
                msg: Box::new(w),
            },
            Action::TornDown {
                key: key.to_string(),
                peer: a.peer,
                reason: reason.to_string(),
            },
            Action::Persist(self.agreements.values().cloned().collect()),
        ]
    }

    /// Retransmissions and expiry.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let mut given_up = Vec::new();
        for (peer, o) in &mut self.clients {
            let waiting = matches!(o.step, ClientStep::QuotationSent | ClientStep::AcceptSent);
            if waiting && now.duration_since(o.sent_at) >= RETRANSMIT_AFTER {
                if o.tries >= MAX_RETRANSMISSIONS {
                    given_up.push(*peer);
                    continue;
                }
                o.tries += 1;
                o.sent_at = now;
                // Same sequence number: the server recognizes a retransmission.
                out.push(Action::Send {
                    peer: *peer,
                    msg: Box::new(o.last.clone()),
                });
            }
        }
        for peer in given_up {
            self.clients.remove(&peer);
            out.push(Action::Refused {
                peer,
                reason: "no answer from the provider".into(),
            });
        }
        self.servers.retain(|_, o| {
            now.duration_since(o.sent_at) < RETRANSMIT_AFTER * (MAX_RETRANSMISSIONS + 2)
                || o.tries > 0
        });
        let unix = now_unix();
        let expired: Vec<String> = self
            .agreements
            .values()
            .filter(|a| a.expires_unix.is_some_and(|e| e <= unix))
            .map(Agreement::key)
            .collect();
        for k in expired {
            out.extend(self.withdraw(&k, "agreement expired"));
        }
        out
    }
}

/// Writes the agreements atomically: a temporary file in the same directory,
/// fsync, rename over the old one, fsync the directory. A crash leaves either
/// the old or the new set, never a torn file.
pub fn save_agreements(path: &std::path::Path, agreements: &[Agreement]) -> std::io::Result<()> {
    save_json_atomic(path, agreements)
}

/// Writes `value` as JSON to a temporary file, syncs it and renames it over
/// `path`: a crash leaves the old or the new file, never half of one.
pub fn save_json_atomic<T: Serialize + ?Sized>(
    path: &std::path::Path,
    value: &T,
) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("agreements")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A FAIL status as operators read it.
fn fail_text(status: Option<lisp_msx_proto::cpnp::FailStatus>) -> &'static str {
    use lisp_msx_proto::cpnp::FailStatus as F;
    match status {
        Some(F::Validation) => "validation failed",
        Some(F::AuthenticationRequired) => "authentication required",
        Some(F::AuthorizationFailed) => "authorization failed",
        Some(F::AdministrativelyProhibited) => "administratively prohibited",
        Some(F::OutOfResources) => "out of resources",
        Some(F::NoNetworkPresence) => "no network presence",
        Some(F::MoreTimeRejected) => "more time rejected",
        Some(F::UnsupportedActivationType) => "unsupported activation type",
        None => "no status given",
    }
}

/// Reads the agreements; a missing file is an empty set, a corrupt one an error.
pub fn load_agreements(path: &std::path::Path) -> std::io::Result<Vec<Agreement>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lisp_msx_proto::cpnp::{decode_frame, encode_frame};

    const PSK: &[u8] = b"lab-psk";

    fn service(contact: &str, prefixes: &[&str], bulk: bool, subscribe: bool) -> MsxService {
        MsxService {
            mapping_system_contact: contact.parse().unwrap(),
            ms_identifier: 1,
            as_number: 65002,
            services: MsxServices {
                bulk,
                subscribe,
                direct_map_request: true,
            },
            eid_prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            rate_limits: Default::default(),
            validity_seconds: None,
        }
    }

    fn all_services() -> MsxServices {
        MsxServices {
            bulk: true,
            subscribe: true,
            direct_map_request: true,
        }
    }

    /// AS65001's system (client) and AS65002's (server, 198.51.100.2).
    fn pair(
        server_subscribe: bool,
        policy_c: Policy,
        policy_s: Policy,
    ) -> (Negotiator, Negotiator) {
        let client = Negotiator::new(
            service("192.0.2.10", &["192.0.2.0/24"], true, true),
            all_services(),
            policy_c,
            65001,
            Vec::new(),
        );
        let server = Negotiator::new(
            service("198.51.100.2", &["203.0.113.0/24"], true, server_subscribe),
            all_services(),
            policy_s,
            65002,
            Vec::new(),
        );
        (client, server)
    }

    fn peer_b() -> Peer {
        Peer {
            contact: "198.51.100.2".parse().unwrap(),
            ms_id: 1,
            origin_as: 65002,
            as_path: vec![65002],
            eid_prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        }
    }

    const A: &str = "192.0.2.10";
    const B: &str = "198.51.100.2";

    /// Delivers every Send through an authenticated frame; returns the other actions.
    /// With `lose_answers`, everything the server sends is lost.
    fn pump(
        c: &mut Negotiator,
        s: &mut Negotiator,
        mut pending: Vec<(bool, Action)>,
        lose_answers: bool,
    ) -> (Vec<Action>, Vec<Action>) {
        let (mut ca, mut sa) = (Vec::new(), Vec::new());
        let now = Instant::now();
        while let Some((from_client, act)) = pending.pop() {
            match act {
                Action::Send { msg, .. } => {
                    let frame = encode_frame(&msg, Some(PSK)).unwrap();
                    let (m, _) = decode_frame(&frame, Some(PSK)).unwrap().unwrap();
                    if from_client {
                        for a in s.received(A.parse().unwrap(), m, now) {
                            pending.insert(0, (false, a));
                        }
                    } else if !lose_answers {
                        for a in c.received(B.parse().unwrap(), m, now) {
                            pending.insert(0, (true, a));
                        }
                    }
                }
                other if from_client => ca.push(other),
                other => sa.push(other),
            }
        }
        (ca, sa)
    }

    fn established(actions: &[Action]) -> Option<&Agreement> {
        actions.iter().find_map(|a| match a {
            Action::Established(a) => Some(a.as_ref()),
            _ => None,
        })
    }

    #[test]
    fn full_offer_is_accepted_and_acknowledged() {
        let (mut c, mut s) = pair(true, Policy::default(), Policy::default());
        let start = c.discovered(&peer_b(), Instant::now());
        assert!(
            matches!(&start[0], Action::Send { msg, .. } if msg.method_code == MethodCode::Quotation)
        );
        let (ca, sa) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        let ac = established(&ca).expect("client agreement");
        let as_ = established(&sa).expect("server agreement");
        assert_eq!(ac.key(), as_.key(), "both sides hold the same identifiers");
        assert_eq!(ac.role, Role::Client);
        assert_eq!(as_.role, Role::Server);
        assert!(ac.service.services.subscribe && ac.service.services.bulk);
        assert_eq!(
            ac.service.eid_prefixes,
            vec!["203.0.113.0/24".parse().unwrap()]
        );
        assert!(
            ca.iter()
                .any(|a| matches!(a, Action::Persist(v) if v.len() == 1))
        );
        assert!(
            sa.iter()
                .any(|a| matches!(a, Action::Persist(v) if v.len() == 1))
        );
        // Discovering the same system again starts nothing.
        assert!(c.discovered(&peer_b(), Instant::now()).is_empty());
    }

    #[test]
    fn partial_offer_declined_or_accepted_by_policy() {
        let (mut c, mut s) = pair(false, Policy::default(), Policy::default());
        let start = c.discovered(&peer_b(), Instant::now());
        let (ca, sa) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        assert!(established(&ca).is_none() && established(&sa).is_none());
        assert!(ca.iter().any(|a| matches!(a, Action::Refused { reason, .. } if reason.contains("less than requested"))));

        let accept_partial = Policy {
            accept_partial: true,
            ..Default::default()
        };
        let (mut c, mut s) = pair(false, accept_partial, Policy::default());
        let start = c.discovered(&peer_b(), Instant::now());
        let (ca, _) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        let a = established(&ca).expect("partial agreement");
        assert!(a.service.services.bulk && !a.service.services.subscribe);
    }

    #[test]
    fn policies_refuse_on_either_side() {
        // The server denies the client's AS: FAIL (administratively prohibited).
        let deny = Policy {
            deny_as: vec![65001],
            ..Default::default()
        };
        let (mut c, mut s) = pair(true, Policy::default(), deny);
        let start = c.discovered(&peer_b(), Instant::now());
        let (ca, sa) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        assert!(established(&ca).is_none());
        assert!(ca.iter().any(|a| matches!(a, Action::Refused { reason, .. } if reason.contains("administratively prohibited"))));
        assert!(sa.iter().any(
            |a| matches!(a, Action::Refused { reason, .. } if reason.contains("AS65001 is denied"))
        ));

        // The client avoids a transit AS: no QUOTATION at all.
        let avoid = Policy {
            avoid_transit_as: vec![65002],
            ..Default::default()
        };
        let (mut c, _) = pair(true, avoid, Policy::default());
        let out = c.discovered(&peer_b(), Instant::now());
        assert!(
            matches!(&out[..], [Action::Refused { reason, .. }] if reason.contains("avoided AS65002"))
        );
    }

    #[test]
    fn lost_answers_are_retransmitted_with_the_same_sequence_number() {
        let (mut c, mut s) = pair(true, Policy::default(), Policy::default());
        let t0 = Instant::now();
        let start = c.discovered(&peer_b(), t0);
        let Action::Send { msg: quotation, .. } = &start[0] else {
            panic!()
        };
        let seq = quotation.sequence_number;
        // The server's PROCESSING + OFFER are lost on the way back.
        let (ca, _) = pump(
            &mut c,
            &mut s,
            start.clone().into_iter().map(|a| (true, a)).collect(),
            true,
        );
        assert!(established(&ca).is_none());
        let again = c.tick(t0 + RETRANSMIT_AFTER);
        assert!(
            matches!(&again[..], [Action::Send { msg, .. }] if msg.method_code == MethodCode::Quotation && msg.sequence_number == seq)
        );
        // The server recognizes the retransmission and repeats its answer.
        let (ca, sa) = pump(
            &mut c,
            &mut s,
            again.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        assert!(established(&ca).is_some() && established(&sa).is_some());

        // With no answer at all the client gives up after the retries.
        let (mut c, _) = pair(true, Policy::default(), Policy::default());
        c.discovered(&peer_b(), t0);
        let mut gave_up = false;
        for i in 1..=MAX_RETRANSMISSIONS + 1 {
            gave_up |= c.tick(t0 + RETRANSMIT_AFTER * i).iter().any(
                |a| matches!(a, Action::Refused { reason, .. } if reason.contains("no answer")),
            );
        }
        assert!(gave_up);
    }

    #[test]
    fn stale_sequence_and_wrong_nonce_are_refused() {
        let (mut c, mut s) = pair(true, Policy::default(), Policy::default());
        let now = Instant::now();
        let start = c.discovered(&peer_b(), now);
        let Action::Send { msg: q, .. } = &start[0] else {
            panic!()
        };
        let answer = s.received(A.parse().unwrap(), (**q).clone(), now);
        let offer = answer
            .iter()
            .find_map(|a| match a {
                Action::Send { msg, .. } if msg.method_code == MethodCode::Offer => {
                    Some(msg.clone())
                }
                _ => None,
            })
            .unwrap();
        // An ACCEPT with a forged nonce: FAIL, no agreement.
        let mut forged = CpnpMessage::new(
            MethodCode::Accept,
            q.sequence_number + 1,
            q.transaction_id,
            q.customer_agreement_identifier.clone(),
        );
        forged.provider_agreement_identifier = offer.provider_agreement_identifier.clone();
        forged.nonce = Some(offer.nonce.unwrap() ^ 1);
        forged.cpd = offer.cpd.clone().map(|mut c| {
            c.form = CpdForm::Agreed;
            c
        });
        let out = s.received(A.parse().unwrap(), forged, now);
        assert!(
            matches!(&out[..], [Action::Send { msg, .. }] if msg.method_code == MethodCode::Fail)
        );
        // A message older than the last one seen is dropped silently.
        let mut old = (**q).clone();
        old.sequence_number = q.sequence_number.wrapping_sub(5);
        assert!(s.received(A.parse().unwrap(), old, now).is_empty());
    }

    #[test]
    fn withdrawal_tears_both_sides_down() {
        let (mut c, mut s) = pair(true, Policy::default(), Policy::default());
        let start = c.discovered(&peer_b(), Instant::now());
        let (ca, _) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        let key = established(&ca).unwrap().key();
        let out = c.withdraw(&key, "operator");
        let (_, sa) = pump(
            &mut c,
            &mut s,
            out.into_iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .map(|a| (true, a))
                .collect(),
            false,
        );
        assert!(
            sa.iter()
                .any(|a| matches!(a, Action::TornDown { key: k, .. } if *k == key))
        );
        assert_eq!(s.agreements().count(), 0);
        assert_eq!(c.agreements().count(), 0);
    }

    #[test]
    fn agreements_persist_atomically_and_survive_a_restart() {
        let (mut c, mut s) = pair(true, Policy::default(), Policy::default());
        let start = c.discovered(&peer_b(), Instant::now());
        let (ca, _) = pump(
            &mut c,
            &mut s,
            start.into_iter().map(|a| (true, a)).collect(),
            false,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agreements.json");
        let saved: Vec<Agreement> = c.agreements().cloned().collect();
        save_agreements(&path, &saved).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let loaded = load_agreements(&path).unwrap();
        assert_eq!(loaded, saved);
        // A restarted system keeps its agreement and does not renegotiate.
        let mut restarted = Negotiator::new(
            c.local.clone(),
            all_services(),
            Policy::default(),
            65001,
            loaded,
        );
        assert_eq!(
            restarted
                .agreement_with(B.parse().unwrap(), Role::Client)
                .map(Agreement::key),
            established(&ca).map(Agreement::key)
        );
        assert!(restarted.discovered(&peer_b(), Instant::now()).is_empty());
        // Expired agreements are not loaded; a corrupt file is an error, a missing one empty.
        let mut old = saved[0].clone();
        old.expires_unix = Some(1);
        assert_eq!(
            Negotiator::new(
                c.local.clone(),
                all_services(),
                Policy::default(),
                65001,
                vec![old]
            )
            .agreements()
            .count(),
            0
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load_agreements(&path).is_err());
        assert!(
            load_agreements(&dir.path().join("none.json"))
                .unwrap()
                .is_empty()
        );
    }
}
