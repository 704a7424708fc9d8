//! The door between the outside (gRPC: lispctl, ospf-msfd, frr-bgp-plugin)
//! and the control-plane reactor, which owns all protocol state. Every API
//! call becomes one [`Request`] sent to the reactor with a reply channel;
//! the reactor answers with typed state (proto `api` messages) that
//! renderers format. Nothing here computes protocol state.

pub mod server;

use lisp_msx_proto::api;
use tokio::sync::{mpsc, oneshot};

/// A request to the reactor.
#[derive(Debug)]
pub enum Request {
    ShowSites(api::ShowSitesRequest),
    ShowMapCache(api::ShowMapCacheRequest),
    ShowDatabase,
    ShowMapResolver,
    ShowReferralCache,
    ShowStatistics,
    ShowDiscovery,
    ShowMsx(api::ShowMsxRequest),
    ShowSync,
    ShowDataPlane,
    ClearMapCache(api::ClearMapCacheRequest),
    /// Answered when the resolution finishes or times out.
    Lig(api::LigRequest),
    UpdateDiscovery(api::DiscoveryUpdate),
    /// The current local functions; the reactor also pushes every change to
    /// the watchers registered with [`Request::WatchLocalFunctions`].
    WatchLocalFunctions(mpsc::Sender<api::LocalFunctions>),
    WatchEvents(mpsc::Sender<api::Event>),
    /// Internal (Map-Bulk service): the registered mappings `peer` may copy
    /// under its agreement, matching `filters`.
    BulkRecords {
        peer: std::net::IpAddr,
        filters: Vec<lisp_msx_proto::msx::Filter>,
    },
}

/// The reactor's answer; one variant per request kind.
#[derive(Debug)]
pub enum Response {
    Sites(api::ShowSitesReply),
    MapCache(api::ShowMapCacheReply),
    Database(api::ShowDatabaseReply),
    MapResolver(api::ShowMapResolverReply),
    ReferralCache(api::ShowReferralCacheReply),
    Statistics(api::ShowStatisticsReply),
    Discovery(api::ShowDiscoveryReply),
    Msx(api::ShowMsxReply),
    Sync(api::ShowSyncReply),
    DataPlane(api::DataPlaneStatistics),
    ClearMapCache(api::ClearMapCacheReply),
    Lig(api::LigReply),
    DiscoveryAck(api::DiscoveryAck),
    Watching,
    /// Map-Bulk: the records, or the result code refusing them.
    BulkRecords(Result<Vec<lisp_msx_proto::lisp::EidRecord>, lisp_msx_proto::msx::BulkResult>),
    /// The request was understood but cannot be served (e.g. role disabled).
    Error(String),
}

/// A request with its reply channel, as it travels to the reactor.
#[derive(Debug)]
pub struct Call {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}
