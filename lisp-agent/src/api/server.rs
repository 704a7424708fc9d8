//! The gRPC side of the API: each RPC becomes one [`Request`] to the
//! reactor, and its [`Response`] goes back as the RPC reply. The server holds
//! no state of its own, so it cannot disagree with the reactor.
//!
//! It listens on a Unix socket only: access control is the socket's mode
//! and group, the same model as FRR's vtysh sockets.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use anyhow::{Context, bail};
use lisp_msx_proto::api::{self, agent_server};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Status, transport::Server};

use crate::api::{Request, Response};
use crate::control::handle::{ReactorGone, ReactorHandle};

/// Queue depth of a watch stream: a slow watcher loses the connection
/// (the reactor drops it) rather than stalling the reactor.
const WATCH_QUEUE: usize = 64;

/// Serves the agent API on `socket` until `shutdown` completes, then removes
/// the socket file.
///
/// The socket is created mode 0600, or 0660 owned by `group` when given, so
/// that members of that group (operators, discovery adapters) may use it.
pub async fn serve(
    handle: ReactorHandle,
    socket: &Path,
    group: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (listener, guard) = bind(socket, group)?;
    tracing::info!(socket = %socket.display(), "API listening");
    let result = Server::builder()
        .add_service(agent_server::AgentServer::new(AgentService { handle }))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .with_context(|| format!("API server on {}", socket.display()));
    drop(guard);
    result
}

/// Removes the socket file when the server stops, however it stops, but only
/// if the file is still the one we bound (a newer agent may own the path).
struct SocketGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && m.dev() == self.dev
            && m.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds under a temporary name, sets mode and group, then renames into
/// place: the socket never appears at its public path with looser
/// permissions than configured.
fn bind(socket: &Path, group: Option<&str>) -> anyhow::Result<(UnixListener, SocketGuard)> {
    let gid = match group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .with_context(|| format!("looking up API group {name:?}"))?
                .with_context(|| format!("API group {name:?} does not exist"))?
                .gid,
        ),
    };
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating socket directory {}", dir.display()))?;
    }
    check_stale(socket)?;

    let mut tmp = socket.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("binding {}", socket.display()))?;
    let placed = (|| -> anyhow::Result<()> {
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting mode of {}", socket.display()))?;
        if let (Some(gid), Some(name)) = (gid, group) {
            nix::unistd::chown(&tmp, None, Some(gid))
                .with_context(|| format!("giving {} to group {name:?}", socket.display()))?;
        }
        std::fs::rename(&tmp, socket).with_context(|| format!("placing {}", socket.display()))
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let m = std::fs::symlink_metadata(socket)
        .with_context(|| format!("checking {}", socket.display()))?;
    let guard = SocketGuard {
        path: socket.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    };
    Ok((listener, guard))
}

/// A socket left by an agent that died may be replaced; a live agent's
/// socket or any other kind of file must not be.
fn check_stale(socket: &Path) -> anyhow::Result<()> {
    let Ok(m) = std::fs::symlink_metadata(socket) else {
        return Ok(());
    };
    if !m.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            socket.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!(
            "another process (a running lisp-agent?) is listening on {}",
            socket.display()
        );
    }
    tracing::debug!(socket = %socket.display(), "replacing stale socket");
    Ok(())
}

struct AgentService {
    handle: ReactorHandle,
}

impl AgentService {
    async fn ask(&self, request: Request) -> Result<Response, Status> {
        match self.handle.call(request).await {
            Ok(Response::Error(msg)) => Err(Status::failed_precondition(msg)),
            Ok(r) => Ok(r),
            Err(ReactorGone) => Err(Status::unavailable(ReactorGone.to_string())),
        }
    }

    async fn watch<T: Send + 'static>(
        &self,
        client: &str,
        request: impl FnOnce(mpsc::Sender<T>) -> Request,
    ) -> Result<tonic::Response<WatchStream<T>>, Status> {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        match self.ask(request(tx)).await? {
            Response::Watching => {}
            other => return Err(wrong("watch", &other)),
        }
        tracing::debug!(client, "watcher registered");
        let stream: WatchStream<T> = Box::pin(ReceiverStream::new(rx).map(Ok));
        Ok(tonic::Response::new(stream))
    }
}

type WatchStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A reactor answering with the wrong variant is a bug in the agent, not in
/// the caller.
fn wrong(rpc: &str, got: &Response) -> Status {
    let kind = format!("{got:?}");
    let kind = kind.split(['(', ' ']).next().unwrap_or("");
    Status::internal(format!("{rpc}: the reactor answered with {kind}"))
}

/// One unary RPC: the request to send and the reply variant expected.
macro_rules! unary {
    ($self:ident, $rpc:literal, $req:expr, $variant:ident) => {
        match $self.ask($req).await? {
            Response::$variant(reply) => Ok(tonic::Response::new(reply)),
            other => Err(wrong($rpc, &other)),
        }
    };
}

type Rpc<T> = Result<tonic::Response<T>, Status>;

#[tonic::async_trait]
impl agent_server::Agent for AgentService {
    async fn show_sites(
        &self,
        r: tonic::Request<api::ShowSitesRequest>,
    ) -> Rpc<api::ShowSitesReply> {
        unary!(self, "ShowSites", Request::ShowSites(r.into_inner()), Sites)
    }

    async fn show_map_cache(
        &self,
        r: tonic::Request<api::ShowMapCacheRequest>,
    ) -> Rpc<api::ShowMapCacheReply> {
        unary!(
            self,
            "ShowMapCache",
            Request::ShowMapCache(r.into_inner()),
            MapCache
        )
    }

    async fn show_database(&self, _: tonic::Request<api::Empty>) -> Rpc<api::ShowDatabaseReply> {
        unary!(self, "ShowDatabase", Request::ShowDatabase, Database)
    }

    async fn show_map_resolver(
        &self,
        _: tonic::Request<api::Empty>,
    ) -> Rpc<api::ShowMapResolverReply> {
        unary!(
            self,
            "ShowMapResolver",
            Request::ShowMapResolver,
            MapResolver
        )
    }

    async fn show_referral_cache(
        &self,
        _: tonic::Request<api::Empty>,
    ) -> Rpc<api::ShowReferralCacheReply> {
        unary!(
            self,
            "ShowReferralCache",
            Request::ShowReferralCache,
            ReferralCache
        )
    }

    async fn show_statistics(
        &self,
        _: tonic::Request<api::Empty>,
    ) -> Rpc<api::ShowStatisticsReply> {
        unary!(self, "ShowStatistics", Request::ShowStatistics, Statistics)
    }

    async fn show_discovery(&self, _: tonic::Request<api::Empty>) -> Rpc<api::ShowDiscoveryReply> {
        unary!(self, "ShowDiscovery", Request::ShowDiscovery, Discovery)
    }

    async fn show_msx(&self, r: tonic::Request<api::ShowMsxRequest>) -> Rpc<api::ShowMsxReply> {
        unary!(self, "ShowMsx", Request::ShowMsx(r.into_inner()), Msx)
    }

    async fn show_sync(&self, _: tonic::Request<api::Empty>) -> Rpc<api::ShowSyncReply> {
        unary!(self, "ShowSync", Request::ShowSync, Sync)
    }

    async fn show_data_plane(
        &self,
        _: tonic::Request<api::Empty>,
    ) -> Rpc<api::DataPlaneStatistics> {
        unary!(self, "ShowDataPlane", Request::ShowDataPlane, DataPlane)
    }

    async fn clear_map_cache(
        &self,
        r: tonic::Request<api::ClearMapCacheRequest>,
    ) -> Rpc<api::ClearMapCacheReply> {
        unary!(
            self,
            "ClearMapCache",
            Request::ClearMapCache(r.into_inner()),
            ClearMapCache
        )
    }

    async fn lig(&self, r: tonic::Request<api::LigRequest>) -> Rpc<api::LigReply> {
        unary!(self, "Lig", Request::Lig(r.into_inner()), Lig)
    }

    async fn update_discovery(
        &self,
        r: tonic::Request<api::DiscoveryUpdate>,
    ) -> Rpc<api::DiscoveryAck> {
        unary!(
            self,
            "UpdateDiscovery",
            Request::UpdateDiscovery(r.into_inner()),
            DiscoveryAck
        )
    }

    type WatchLocalFunctionsStream = WatchStream<api::LocalFunctions>;

    async fn watch_local_functions(
        &self,
        r: tonic::Request<api::WatchRequest>,
    ) -> Rpc<Self::WatchLocalFunctionsStream> {
        self.watch(&r.into_inner().client, Request::WatchLocalFunctions)
            .await
    }

    type WatchEventsStream = WatchStream<api::Event>;

    async fn watch_events(
        &self,
        r: tonic::Request<api::WatchRequest>,
    ) -> Rpc<Self::WatchEventsStream> {
        self.watch(&r.into_inner().client, Request::WatchEvents)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_group_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _inbox) = crate::control::handle::channel().unwrap();
        let err = serve(
            handle,
            &dir.path().join("agent.sock"),
            Some("no-such-group-lispmsx"),
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("\"no-such-group-lispmsx\""),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn group_socket_is_0660_and_owned_by_the_group() {
        let gid = nix::unistd::getgid();
        let Some(group) = nix::unistd::Group::from_gid(gid).ok().flatten() else {
            return; // no name for our group in this sandbox
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let (listener, guard) = bind(&path, Some(&group.name)).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o660);
        assert_eq!(m.gid(), gid.as_raw());
        drop((listener, guard));
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        std::fs::write(&path, b"not a socket").unwrap();
        let (handle, _inbox) = crate::control::handle::channel().unwrap();
        let err = serve(handle, &path, None, std::future::pending())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err:#}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    }

    #[tokio::test]
    async fn replaces_a_stale_socket_and_removes_it_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/agent.sock");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let (handle, _inbox) = crate::control::handle::channel().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn({
            let path = path.clone();
            async move {
                serve(handle, &path, None, async {
                    let _ = stopped.await;
                })
                .await
            }
        });
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(!path.exists());
    }
}
