//! TCP for the BGP session: connecting from our address, accepting in
//! passive mode, and a reader task that frames the stream. These tasks only
//! send events; the FSM in the daemon loop decides.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::msg::{BgpError, split_frame};

/// Events of one connection, tagged with its generation so that late events
/// of an old connection are recognized and dropped.
#[derive(Debug)]
pub enum NetEvent {
    Connected(TcpStream),
    ConnectFailed(String),
    Accepted(TcpStream, SocketAddr),
    Frame(Vec<u8>),
    Framing(BgpError),
    Closed(String),
}

pub type Tagged = (u64, NetEvent);

/// Connects from `local` (port chosen by the kernel) to `remote`.
pub fn spawn_connect(
    conn_id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    limit: Duration,
    tx: mpsc::Sender<Tagged>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let attempt = async {
            let sock = if remote.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.bind(local)?;
            let s = sock.connect(remote).await?;
            s.set_nodelay(true)?;
            Ok::<TcpStream, std::io::Error>(s)
        };
        let ev = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(s)) => NetEvent::Connected(s),
            Ok(Err(e)) => NetEvent::ConnectFailed(format!("connect {local} -> {remote}: {e}")),
            Err(_) => NetEvent::ConnectFailed(format!(
                "connect {local} -> {remote}: no answer within {limit:?}"
            )),
        };
        let _ = tx.send((conn_id, ev)).await;
    })
}

/// Accepts connections forever (passive mode); each goes to the daemon,
/// which checks the peer address.
pub fn spawn_listener(listener: TcpListener, tx: mpsc::Sender<Tagged>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, peer)) => {
                    let _ = s.set_nodelay(true);
                    if tx.send((0, NetEvent::Accepted(s, peer))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("accept on the BGP listener: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
}

/// Reads whole messages until the stream ends or cannot be framed.
pub fn spawn_reader(
    conn_id: u64,
    mut rd: OwnedReadHalf,
    tx: mpsc::Sender<Tagged>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            loop {
                match split_frame(&buf) {
                    Ok(Some(n)) => {
                        let frame: Vec<u8> = buf.drain(..n).collect();
                        if tx.send((conn_id, NetEvent::Frame(frame))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send((conn_id, NetEvent::Framing(e))).await;
                        return;
                    }
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) => {
                    let _ = tx
                        .send((conn_id, NetEvent::Closed("closed by the peer".into())))
                        .await;
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    let _ = tx.send((conn_id, NetEvent::Closed(e.to_string()))).await;
                    return;
                }
            }
        }
    })
}
