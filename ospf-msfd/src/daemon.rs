//! The daemon: keeps one OSPF API session (reconnecting when ospfd
//! restarts), originates the MSFD RI LSA for the agent's local functions
//! (re-originating on every change, withdrawing on shutdown), and reports
//! every other router's MSFD TLVs to the agent.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use lisp_msx_proto::api;
use lisp_msx_proto::grpc::AgentClient;
use lisp_msx_proto::ospf::api::{ApiBody, FilterOrigin, LsaFilter};
use lisp_msx_proto::ospf::lsa::{OPAQUE_TYPE_RI, OpaqueLsa};
use lisp_msx_proto::ospf::msfd::find_msfd;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use tonic::transport::Channel;
use tracing::{error, info, warn};

use crate::api_client::{ApiError, Notifications, OspfApi};
use crate::config::Config;
use crate::translate::{msfd_from_local, system_from_msfd};

/// Changes are pushed to the agent at most this often.
const PUSH_DEBOUNCE: Duration = Duration::from_millis(50);
/// After (re)connecting, wait this long for the LSDB sync before reporting,
/// so a reconnect does not make known systems flap.
const SETTLE: Duration = Duration::from_millis(700);

/// What this adapter knows, keyed by LSA and TLV index.
#[derive(Default)]
pub struct Learned {
    pub systems: BTreeMap<String, api::DiscoveredSystem>,
    pub malformed: u64,
}

fn lsa_key(adv: Ipv4Addr, area: Ipv4Addr, opaque_id: u32) -> String {
    format!("adv {adv} area {area} inst {opaque_id}")
}

impl Learned {
    /// Applies an RI LSA update; returns whether the set changed.
    pub fn update(
        &mut self,
        adv: Ipv4Addr,
        area: Ipv4Addr,
        opaque_id: u32,
        body: &[u8],
        tlv_type: u16,
    ) -> bool {
        let prefix = lsa_key(adv, area, opaque_id);
        let before: Vec<(String, api::DiscoveredSystem)> = self.remove_lsa(&prefix);
        match find_msfd(body, tlv_type) {
            Ok(list) => {
                for (i, m) in list.iter().enumerate() {
                    let key = format!("{prefix} tlv {i}");
                    self.systems
                        .insert(key.clone(), system_from_msfd(m, key, adv));
                }
            }
            Err(e) => {
                // Reported and ignored: the LSA advertises nothing usable.
                self.malformed += 1;
                warn!(%adv, %area, opaque_id, "ignoring a malformed MSFD TLV: {e}");
            }
        }
        let after: Vec<(String, api::DiscoveredSystem)> = self
            .systems
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        before != after
    }

    pub fn delete(&mut self, adv: Ipv4Addr, area: Ipv4Addr, opaque_id: u32) -> bool {
        !self.remove_lsa(&lsa_key(adv, area, opaque_id)).is_empty()
    }

    fn remove_lsa(&mut self, prefix: &str) -> Vec<(String, api::DiscoveredSystem)> {
        let keys: Vec<String> = self
            .systems
            .keys()
            .filter(|k| k.starts_with(prefix) && k[prefix.len()..].starts_with(" tlv"))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.systems.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

enum SessionEnd {
    Lost(ApiError),
    Shutdown,
}

pub struct Daemon {
    cfg: Config,
    local: watch::Receiver<Option<api::LocalFunctions>>,
    learned: Learned,
    agent: Option<AgentClient<Channel>>,
    dirty: bool,
    originated: bool,
}

impl Daemon {
    pub fn new(cfg: Config) -> Daemon {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(watch_agent(cfg.agent_socket.clone(), cfg.name.clone(), tx));
        Daemon {
            cfg,
            local: rx,
            learned: Learned::default(),
            agent: None,
            dirty: true,
            originated: false,
        }
    }

    /// Runs until `stop` fires.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *stop.borrow() {
                return;
            }
            let connected = tokio::select! {
                r = OspfApi::connect(self.cfg.ospfd, self.cfg.client_port) => r,
                _ = stop.changed() => return,
            };
            match connected {
                Ok((api, notes)) => {
                    info!(ospfd = %self.cfg.ospfd, "connected to ospfd's OSPF API");
                    backoff = Duration::from_millis(200);
                    match self.session(api, notes, &mut stop).await {
                        SessionEnd::Shutdown => return,
                        SessionEnd::Lost(ApiError::RouterInfoInUse) => {
                            error!("{}", ApiError::RouterInfoInUse);
                            backoff = Duration::from_secs(10);
                        }
                        SessionEnd::Lost(e) => warn!("OSPF API session lost: {e}; reconnecting"),
                    }
                }
                Err(e) => warn!("{e}; retrying in {backoff:?}"),
            }
            self.originated = false;
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn session(
        &mut self,
        mut api: OspfApi,
        mut notes: Notifications,
        stop: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        let c = self.cfg.clone();
        let filter = LsaFilter {
            typemask: LsaFilter::mask_for(&[c.lsa_type]),
            origin: FilterOrigin::Any,
            areas: Vec::new(),
        };
        let setup = async {
            api.register_opaque_type(c.lsa_type, OPAQUE_TYPE_RI).await?;
            api.register_event(filter.clone()).await?;
            api.sync_lsdb(filter).await
        };
        if let Err(e) = setup.await {
            return SessionEnd::Lost(e);
        }
        // Everything is re-learned from the LSDB sync.
        self.learned.systems.clear();
        let settled = Instant::now() + SETTLE;
        let mut push_at: Option<Instant> = Some(settled);
        if let Err(e) = self.originate(&mut api).await {
            warn!("originating the MSFD LSA: {e}");
        }
        loop {
            let push_deadline =
                push_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                msg = notes.next() => {
                    let msg = match msg {
                        Ok(m) => m,
                        Err(e) => return SessionEnd::Lost(e),
                    };
                    if self.on_notification(msg.body) {
                        self.dirty = true;
                    }
                    if self.dirty && push_at.is_none() {
                        push_at = Some((Instant::now() + PUSH_DEBOUNCE).max(settled));
                    }
                }
                r = self.local.changed() => {
                    if r.is_err() {
                        continue;
                    }
                    if let Err(e) = self.originate(&mut api).await {
                        if matches!(e, ApiError::Closed | ApiError::Io(_)) {
                            return SessionEnd::Lost(e);
                        }
                        warn!("originating the MSFD LSA: {e}");
                    }
                }
                _ = sleep_until(push_deadline) => {
                    push_at = None;
                    if self.dirty && !self.push().await {
                        // Agent unreachable: try again shortly.
                        push_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
                _ = stop.changed() => {
                    if self.originated {
                        let _ = api.delete(c.area, c.lsa_type, OPAQUE_TYPE_RI, c.opaque_id).await;
                        info!("withdrew the MSFD LSA");
                    }
                    return SessionEnd::Shutdown;
                }
            }
        }
    }

    /// Handles one notification; true when the learned set changed.
    fn on_notification(&mut self, body: ApiBody) -> bool {
        let c = &self.cfg;
        match body {
            ApiBody::LsaUpdateNotify(n) | ApiBody::LsaDeleteNotify(n)
                if n.lsa.header.lsa_type != c.lsa_type =>
            {
                false
            }
            ApiBody::LsaUpdateNotify(n) => {
                let h = &n.lsa.header;
                if h.opaque_type() != OPAQUE_TYPE_RI || n.is_self {
                    return false;
                }
                self.learned.update(
                    h.adv_router,
                    n.area_id,
                    h.opaque_id(),
                    &n.lsa.body,
                    c.tlv_type,
                )
            }
            ApiBody::LsaDeleteNotify(n) => {
                let h = &n.lsa.header;
                h.opaque_type() == OPAQUE_TYPE_RI
                    && !n.is_self
                    && self.learned.delete(h.adv_router, n.area_id, h.opaque_id())
            }
            _ => false,
        }
    }

    async fn originate(&mut self, api: &mut OspfApi) -> Result<(), ApiError> {
        let lf = self.local.borrow_and_update().clone();
        let c = &self.cfg;
        match lf.as_ref().and_then(msfd_from_local) {
            Some(m) => {
                let tlv = m
                    .to_tlv(c.tlv_type)
                    .map_err(|e| ApiError::Encode(format!("the MSFD TLV: {e}")))?;
                let mut body = Vec::new();
                let _ = tlv.encode(&mut body);
                let lsa = OpaqueLsa::new(
                    c.lsa_type,
                    OPAQUE_TYPE_RI,
                    c.opaque_id,
                    Ipv4Addr::UNSPECIFIED,
                    body,
                );
                api.originate(c.area, lsa).await?;
                if !self.originated {
                    info!(area = %c.area, instance = c.opaque_id, "originated the MSFD RI LSA");
                }
                self.originated = true;
            }
            None if self.originated => {
                api.delete(c.area, c.lsa_type, OPAQUE_TYPE_RI, c.opaque_id)
                    .await?;
                self.originated = false;
                info!("nothing to advertise: withdrew the MSFD LSA");
            }
            None => {}
        }
        Ok(())
    }

    /// Sends the full learned set to the agent; false when it is unreachable.
    async fn push(&mut self) -> bool {
        if self.agent.is_none() {
            self.agent = lisp_msx_proto::grpc::connect(&self.cfg.agent_socket)
                .await
                .ok();
        }
        let Some(agent) = self.agent.as_mut() else {
            return false;
        };
        let upd = api::DiscoveryUpdate {
            source: "ospf".into(),
            adapter: self.cfg.name.clone(),
            full_set: true,
            systems: self.learned.systems.values().cloned().collect(),
            withdrawn_keys: Vec::new(),
            reachability: Vec::new(),
        };
        match agent.update_discovery(upd).await {
            Ok(_) => {
                self.dirty = false;
                true
            }
            Err(e) => {
                warn!("pushing discovery to lisp-agent: {e}");
                self.agent = None;
                false
            }
        }
    }
}

/// Follows the agent's local functions; reconnects when the agent restarts.
async fn watch_agent(
    socket: std::path::PathBuf,
    name: String,
    tx: watch::Sender<Option<api::LocalFunctions>>,
) {
    loop {
        match lisp_msx_proto::grpc::connect(&socket).await {
            Ok(mut client) => match client
                .watch_local_functions(api::WatchRequest {
                    client: name.clone(),
                })
                .await
            {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    while let Ok(Some(lf)) = stream.message().await {
                        let _ = tx.send(Some(lf));
                    }
                    warn!("lost the lisp-agent watch stream; reconnecting");
                }
                Err(e) => warn!("lisp-agent refused WatchLocalFunctions: {e}"),
            },
            Err(e) => warn!("{e}"),
        }
        sleep(Duration::from_secs(1)).await;
    }
}
