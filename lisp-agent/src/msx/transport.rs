//! CPNP transport: TCP with length-prefixed JSON frames, each authenticated
//! with HMAC-SHA-256 under the pre-shared key. It only moves frames: received
//! messages go to the reactor (which owns the negotiation), and the reactor's
//! messages go out on the connection to that peer (opened on demand from our
//! contact address, so the peer recognizes us). A frame failing
//! authentication closes the connection and is counted and logged.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lisp_msx_proto::cpnp::{CpnpError, CpnpMessage, decode_frame, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::control::handle::{Input, ReactorHandle};
use crate::stats::{Stats, inc};

pub type Outgoing = mpsc::UnboundedSender<(IpAddr, CpnpMessage)>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BUFFER: usize = 256 * 1024;

/// Runs until `shutdown` completes.
pub async fn run(
    handle: ReactorHandle,
    local: IpAddr,
    port: u16,
    psk: Vec<u8>,
    mut out: mpsc::UnboundedReceiver<(IpAddr, CpnpMessage)>,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::new(local, port))
        .await
        .map_err(|e| {
            anyhow::anyhow!("CPNP: cannot listen on {local}:{port} (msx.cpnp_port): {e}")
        })?;
    info!(%local, port, "CPNP listening");
    let psk = Arc::new(psk);
    let mut writers: HashMap<IpAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, from)) = accepted else { continue };
                let w = spawn_connection(stream, from.ip(), handle.clone(), psk.clone(), stats.clone());
                writers.insert(from.ip(), w);
            }
            msg = out.recv() => {
                let Some((peer, msg)) = msg else { return Ok(()) };
                let frame = match encode_frame(&msg, Some(&psk)) {
                    Ok(f) => f,
                    Err(e) => {
                        warn!(%peer, "CPNP: cannot encode {}: {e}", msg.method_code.name());
                        continue;
                    }
                };
                if let Some(w) = writers.get(&peer)
                    && w.send(frame.clone()).is_ok()
                {
                    inc(&stats.counters.cpnp_tx);
                    continue;
                }
                match connect(local, SocketAddr::new(peer, port)).await {
                    Ok(stream) => {
                        let w = spawn_connection(stream, peer, handle.clone(), psk.clone(), stats.clone());
                        if w.send(frame).is_ok() {
                            inc(&stats.counters.cpnp_tx);
                        }
                        writers.insert(peer, w);
                    }
                    // The negotiation retransmits and gives up on its own schedule.
                    Err(e) => warn!(%peer, "CPNP: cannot connect to {peer}:{port}: {e}"),
                }
            }
            _ = &mut shutdown => return Ok(()),
        }
        writers.retain(|_, w| !w.is_closed());
    }
}

async fn connect(local: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // From our contact address: the peer identifies us by it.
    if local.is_ipv4() == to.is_ipv4() {
        sock.bind(SocketAddr::new(local, 0))?;
    }
    tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

fn spawn_connection(
    stream: TcpStream,
    peer: IpAddr,
    handle: ReactorHandle,
    psk: Arc<Vec<u8>>,
    stats: Arc<Stats>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(w, rx));
    tokio::spawn(read_loop(r, peer, handle, psk, stats, tx.clone()));
    tx
}

async fn write_loop(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            break;
        }
    }
}

async fn read_loop(
    mut r: OwnedReadHalf,
    peer: IpAddr,
    handle: ReactorHandle,
    psk: Arc<Vec<u8>>,
    stats: Arc<Stats>,
    keep: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match decode_frame(&buf, Some(&psk)) {
            Ok(Some((msg, used))) => {
                buf.drain(..used);
                inc(&stats.counters.cpnp_rx);
                debug!(%peer, "CPNP {} received", msg.method_code.name());
                if handle
                    .send(Input::Cpnp {
                        peer,
                        msg: Box::new(msg),
                    })
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Ok(None) => {}
            Err(CpnpError::BadMac) => {
                inc(&stats.counters.auth_failures);
                inc(&stats.counters.cpnp_refused);
                warn!(%peer, "CPNP refused: authentication failed (wrong pre-shared key?); closing the connection");
                break;
            }
            Err(e) => {
                inc(&stats.counters.cpnp_refused);
                warn!(%peer, "CPNP refused: {e}; closing the connection");
                break;
            }
        }
        if buf.len() > MAX_BUFFER {
            break;
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    // Dropping the last sender ends the writer; the connection closes.
    drop(keep);
}
