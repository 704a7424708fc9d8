//! The agent API client over the agent's Unix socket. gRPC normally speaks
//! TCP; the agent listens on a Unix socket so that file permissions, not a
//! network ACL, decide who may operate it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

pub use crate::api::agent_client::AgentClient;
pub use crate::api::agent_server::{Agent, AgentServer};

/// Why [`connect`] failed, worded for the operator who typed the command.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("is lisp-agent running? socket {} not found", .0.display())]
    NotFound(PathBuf),
    #[error("is lisp-agent running? socket {} refuses connections", .0.display())]
    Refused(PathBuf),
    #[error("permission denied on {} (is this user in the agent's api group?)", .0.display())]
    PermissionDenied(PathBuf),
    #[error("cannot connect to {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("gRPC over {}: {source}", path.display())]
    Transport {
        path: PathBuf,
        source: tonic::transport::Error,
    },
}

/// Connects to the agent API at `socket`.
///
/// The socket is dialled once up front so that the usual failures (agent not
/// running, stale socket, wrong group) come back as a plain sentence instead
/// of a nested transport error; that first stream then carries the channel.
/// Later reconnects dial the path again.
pub async fn connect(socket: impl AsRef<Path>) -> Result<AgentClient<Channel>, ConnectError> {
    let path = socket.as_ref().to_path_buf();
    let first = UnixStream::connect(&path)
        .await
        .map_err(|e| classify(&path, e))?;
    let first = Arc::new(Mutex::new(Some(first)));
    let dial = path.clone();
    let connector = service_fn(move |_: Uri| {
        let first = first.lock().map(|mut f| f.take()).unwrap_or(None);
        let dial = dial.clone();
        async move {
            let stream = match first {
                Some(s) => s,
                None => UnixStream::connect(&dial).await?,
            };
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    // The URI is never resolved (the connector ignores it) but must parse.
    let channel = Endpoint::from_static("http://lisp-agent.invalid")
        .connect_with_connector(connector)
        .await
        .map_err(|source| ConnectError::Transport {
            path: path.clone(),
            source,
        })?;
    Ok(AgentClient::new(channel))
}

fn classify(path: &Path, e: io::Error) -> ConnectError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::NotFound => ConnectError::NotFound(path),
        io::ErrorKind::ConnectionRefused => ConnectError::Refused(path),
        io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied(path),
        _ => ConnectError::Io { path, source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_is_a_clear_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(connect("/nonexistent/lisp-msx/agent.sock"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "is lisp-agent running? socket /nonexistent/lisp-msx/agent.sock not found"
        );
    }
}
