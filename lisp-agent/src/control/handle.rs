//! How other threads reach the reactor: a channel plus an eventfd that wakes
//! its poll loop. Cloneable; used by the gRPC server, signal handlers and the
//! TCP services.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::mpsc;

use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::sync::oneshot;

use crate::api::{Call, Request, Response};
use crate::config::Config;

/// Everything the reactor can be told from outside.
#[derive(Debug)]
pub enum Input {
    Call(Call),
    /// A validated new configuration (SIGHUP).
    Reload(Box<Config>),
    /// A peer's table copied with Map-Bulk (complete: replaces the previous copy).
    BulkCopy {
        peer: std::net::IpAddr,
        records: Vec<lisp_msx_proto::lisp::EidRecord>,
    },
    /// An authenticated CPNP message from a peer mapping system.
    Cpnp {
        peer: std::net::IpAddr,
        msg: Box<lisp_msx_proto::cpnp::CpnpMessage>,
    },
    /// Mappings copied from the Map-Server to pre-provision the map-cache.
    Preprovision(Vec<lisp_msx_proto::lisp::EidRecord>),
    /// The map-cache synchronization transport reports.
    Sync(crate::sync::SyncEvent),
    Shutdown,
}

#[derive(Clone, Debug)]
pub struct ReactorHandle {
    tx: mpsc::Sender<Input>,
    wake: Arc<EventFd>,
}

/// The reactor's side of the handle.
#[derive(Debug)]
pub struct ReactorInbox {
    pub rx: mpsc::Receiver<Input>,
    pub wake: Arc<EventFd>,
}

impl ReactorInbox {
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Clears the wake-up counter (after poll reported it readable).
    pub fn clear(&self) {
        let _ = self.wake.read();
    }
}

pub fn channel() -> std::io::Result<(ReactorHandle, ReactorInbox)> {
    let (tx, rx) = mpsc::channel();
    let wake = Arc::new(EventFd::from_flags(
        EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
    )?);
    Ok((
        ReactorHandle {
            tx,
            wake: wake.clone(),
        },
        ReactorInbox { rx, wake },
    ))
}

impl ReactorHandle {
    /// Sends an input and wakes the reactor. Fails when the reactor is gone.
    pub fn send(&self, input: Input) -> Result<(), ReactorGone> {
        self.tx.send(input).map_err(|_| ReactorGone)?;
        let _ = self.wake.write(1);
        Ok(())
    }

    /// Sends a request and waits for its answer.
    pub async fn call(&self, request: Request) -> Result<Response, ReactorGone> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::Call(Call { request, reply }))?;
        rx.await.map_err(|_| ReactorGone)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the control-plane reactor has stopped")]
pub struct ReactorGone;
