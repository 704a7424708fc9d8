//! The zebra session: connects to zserv.api, says HELLO, asks for the
//! router-id and the interfaces, keeps the nexthop registrations equal to
//! the wanted set, and reconnects (re-registering everything) when zebra
//! restarts. It only reports; the daemon owns what follows from it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, info, warn};

use super::msg::{self, AddressMsg, InterfaceMsg, ZapiError, ZebraMsg, cmd};

#[derive(Clone, Debug)]
pub struct ZebraConfig {
    /// zebra's API socket, e.g. /var/run/frr/zserv.api (or
    /// /var/run/frr/NS/zserv.api for `zebra -N NS`).
    pub socket: PathBuf,
    /// Let zebra resolve registered contacts through a default route.
    pub resolve_via_default: bool,
    /// Longest wait between reconnect attempts.
    pub reconnect_max: Duration,
}

/// What zebra said, for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZebraEvent {
    /// Session up (HELLO answered).
    Up,
    /// Session lost; reconnecting.
    Down(String),
    /// zebra speaks something we do not: the session will not come up.
    Incompatible(String),
    RouterId(Option<IpAddr>),
    Interface(InterfaceMsg),
    Address(AddressMsg),
    /// Nexthop tracking result for a registered contact.
    Nexthop {
        addr: IpAddr,
        reachable: bool,
        detail: String,
    },
}

/// How long zebra may take to answer HELLO with CAPABILITIES.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until `tx` is closed. `want` is the set of addresses to track.
pub async fn run(
    cfg: ZebraConfig,
    mut want: watch::Receiver<BTreeSet<IpAddr>>,
    tx: mpsc::Sender<ZebraEvent>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut was_up = false;
    let mut last_err = String::new();
    loop {
        if tx.is_closed() {
            return;
        }
        let started = Instant::now();
        let end = session(&cfg, &mut want, &tx, &mut was_up).await;
        if tx.is_closed() {
            return;
        }
        let reason = end.to_string();
        if was_up {
            warn!(socket = %cfg.socket.display(), "zebra session lost: {reason}; reconnecting");
            let _ = tx.send(ZebraEvent::Down(reason.clone())).await;
            was_up = false;
            backoff = Duration::from_millis(200);
        } else if reason != last_err {
            warn!(socket = %cfg.socket.display(), "zebra: {reason}; retrying");
        } else {
            debug!("zebra: {reason}");
        }
        if matches!(end, SessionEnd::Incompatible(_) | SessionEnd::NoHelloAnswer) {
            let _ = tx.send(ZebraEvent::Incompatible(end.to_string())).await;
            backoff = cfg.reconnect_max.max(Duration::from_secs(10));
        }
        last_err = reason;
        // A session that lived a while restarts the backoff.
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(cfg.reconnect_max);
    }
}

#[derive(Debug)]
enum SessionEnd {
    Connect(std::io::Error),
    Io(std::io::Error),
    Closed,
    Incompatible(ZapiError),
    NoHelloAnswer,
    Stopped,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Connect(e) => write!(f, "cannot connect ({e}); is zebra running?"),
            SessionEnd::Io(e) => write!(f, "I/O error: {e}"),
            SessionEnd::Closed => write!(f, "zebra closed the connection"),
            SessionEnd::Incompatible(e) => write!(f, "{e}"),
            SessionEnd::NoHelloAnswer => write!(
                f,
                "zebra did not answer HELLO with CAPABILITIES (command {}) within {} s: its ZAPI command numbering is not that of FRR 8.2 to 8.5",
                cmd::CAPABILITIES,
                HELLO_TIMEOUT.as_secs()
            ),
            SessionEnd::Stopped => write!(f, "stopped"),
        }
    }
}

async fn session(
    cfg: &ZebraConfig,
    want: &mut watch::Receiver<BTreeSet<IpAddr>>,
    tx: &mpsc::Sender<ZebraEvent>,
    was_up: &mut bool,
) -> SessionEnd {
    let mut sock = match UnixStream::connect(&cfg.socket).await {
        Ok(s) => s,
        Err(e) => return SessionEnd::Connect(e),
    };
    let mut hello = msg::hello(0, 0);
    hello.extend(msg::router_id_add(1));
    hello.extend(msg::interface_request());
    if let Err(e) = sock.write_all(&hello).await {
        return SessionEnd::Io(e);
    }
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut registered: BTreeSet<IpAddr> = BTreeSet::new();
    let hello_deadline = Instant::now() + HELLO_TIMEOUT;
    let mut up = false;
    loop {
        // Keep the registrations equal to the wanted set (only once zebra
        // has answered HELLO, so that they are not lost).
        if up {
            let wanted = want.borrow_and_update().clone();
            let add: Vec<IpAddr> = wanted.difference(&registered).copied().collect();
            let del: Vec<IpAddr> = registered.difference(&wanted).copied().collect();
            let mut out = Vec::new();
            if !add.is_empty() {
                debug!(?add, "zebra: registering nexthops");
                out.extend(msg::nexthop(true, &add, cfg.resolve_via_default));
            }
            if !del.is_empty() {
                debug!(?del, "zebra: unregistering nexthops");
                out.extend(msg::nexthop(false, &del, cfg.resolve_via_default));
            }
            if !out.is_empty() {
                if let Err(e) = sock.write_all(&out).await {
                    return SessionEnd::Io(e);
                }
                registered = wanted;
            }
        }
        let mut chunk = [0u8; 8192];
        let read = async {
            if up {
                Ok(sock.read(&mut chunk).await)
            } else {
                timeout(
                    hello_deadline.saturating_duration_since(Instant::now()),
                    sock.read(&mut chunk),
                )
                .await
            }
        };
        tokio::select! {
            r = read => {
                let n = match r {
                    Err(_) => return SessionEnd::NoHelloAnswer,
                    Ok(Err(e)) => return SessionEnd::Io(e),
                    Ok(Ok(0)) => return SessionEnd::Closed,
                    Ok(Ok(n)) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    let (h, len) = match msg::split_frame(&buf) {
                        Ok(Some(x)) => x,
                        Ok(None) => break,
                        Err(e) => return SessionEnd::Incompatible(e),
                    };
                    let frame: Vec<u8> = buf.drain(..len).collect();
                    if std::env::var_os("FRR_BGP_PLUGIN_ZAPI_TRACE").is_some() {
                        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
                        info!(command = h.command, "zapi frame {hex}");
                    }
                    let m = match msg::decode(&h, &frame[msg::HEADER_LEN..]) {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(command = h.command, "ignoring a zebra message: {e}");
                            continue;
                        }
                    };
                    let ev = match m {
                        ZebraMsg::Capabilities { .. } => {
                            if !up {
                                up = true;
                                *was_up = true;
                                info!(socket = %cfg.socket.display(), "zebra session up (ZAPI 6)");
                                Some(ZebraEvent::Up)
                            } else {
                                None
                            }
                        }
                        ZebraMsg::RouterId(id) => Some(ZebraEvent::RouterId(id)),
                        ZebraMsg::Interface(i) => Some(ZebraEvent::Interface(i)),
                        ZebraMsg::Address(a) => Some(ZebraEvent::Address(a)),
                        ZebraMsg::Nexthop(u) => {
                            let addr = u.registered.addr();
                            let reachable = u.nexthops > 0;
                            let detail = if reachable {
                                format!("via {} route {} ({} nexthops)", msg::route_type_name(u.route_type), u.resolved_by, u.nexthops)
                            } else {
                                "no route".to_string()
                            };
                            Some(ZebraEvent::Nexthop { addr, reachable, detail })
                        }
                        ZebraMsg::VrfAdd { .. } | ZebraMsg::Other { .. } => None,
                    };
                    if let Some(ev) = ev
                        && tx.send(ev).await.is_err()
                    {
                        return SessionEnd::Stopped;
                    }
                }
                if buf.len() > msg::MAX_LEN * 4 {
                    return SessionEnd::Incompatible(ZapiError::BadLength(0));
                }
            }
            r = want.changed(), if up => {
                if r.is_err() {
                    return SessionEnd::Stopped;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zapi::msg::{frame, split_frame};
    use tokio::net::UnixListener;

    /// Reads one whole ZAPI message from a fake zebra's side.
    async fn read_msg(s: &mut UnixStream, buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
        loop {
            if let Some((h, n)) = split_frame(buf).unwrap() {
                let m: Vec<u8> = buf.drain(..n).collect();
                return (h.command, m[msg::HEADER_LEN..].to_vec());
            }
            let mut c = [0u8; 1024];
            let n = s.read(&mut c).await.unwrap();
            assert!(n > 0, "client closed");
            buf.extend_from_slice(&c[..n]);
        }
    }

    async fn next_event(rx: &mut mpsc::Receiver<ZebraEvent>) -> ZebraEvent {
        timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event")
            .expect("channel open")
    }

    fn capabilities() -> Vec<u8> {
        frame(cmd::CAPABILITIES, 0, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    fn nexthop_update(addr: [u8; 4], nexthops: u8) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 2, 32];
        b.extend_from_slice(&addr);
        b.extend_from_slice(&[0, 2, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, nexthops]);
        if nexthops > 0 {
            b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 3]);
        }
        frame(cmd::NEXTHOP_UPDATE, 0, &b)
    }

    #[tokio::test]
    async fn hello_registration_updates_and_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zserv.api");
        let listener = UnixListener::bind(&path).unwrap();
        let (want_tx, want_rx) =
            watch::channel(BTreeSet::from(["198.51.100.6".parse::<IpAddr>().unwrap()]));
        let (tx, mut rx) = mpsc::channel(16);
        let cfg = ZebraConfig {
            socket: path.clone(),
            resolve_via_default: false,
            reconnect_max: Duration::from_millis(200),
        };
        let task = tokio::spawn(run(cfg, want_rx, tx));
        for round in 0..2 {
            let (mut z, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            // HELLO, ROUTER_ID_ADD (IPv4), INTERFACE_ADD request, in that order.
            assert_eq!(
                read_msg(&mut z, &mut buf).await,
                (cmd::HELLO, vec![0, 0, 0, 0, 0, 0, 0, 0, 0])
            );
            assert_eq!(
                read_msg(&mut z, &mut buf).await,
                (cmd::ROUTER_ID_ADD, vec![0, 1])
            );
            assert_eq!(read_msg(&mut z, &mut buf).await.0, cmd::INTERFACE_ADD);
            z.write_all(&capabilities()).await.unwrap();
            assert_eq!(next_event(&mut rx).await, ZebraEvent::Up);
            // The wanted contact is registered (again, after a reconnect).
            let (c, body) = read_msg(&mut z, &mut buf).await;
            assert_eq!(
                (c, body),
                (
                    cmd::NEXTHOP_REGISTER,
                    vec![0, 0, 0, 1, 0, 2, 32, 198, 51, 100, 6]
                ),
                "round {round}"
            );
            z.write_all(&nexthop_update([198, 51, 100, 6], 1))
                .await
                .unwrap();
            assert!(matches!(
                next_event(&mut rx).await,
                ZebraEvent::Nexthop {
                    reachable: true,
                    ..
                }
            ));
            z.write_all(&nexthop_update([198, 51, 100, 6], 0))
                .await
                .unwrap();
            assert!(matches!(
                next_event(&mut rx).await,
                ZebraEvent::Nexthop {
                    reachable: false,
                    ..
                }
            ));
            if round == 0 {
                // A new contact, and the old one dropped.
                want_tx
                    .send(BTreeSet::from(["192.0.2.9".parse::<IpAddr>().unwrap()]))
                    .unwrap();
                assert_eq!(read_msg(&mut z, &mut buf).await.0, cmd::NEXTHOP_REGISTER);
                assert_eq!(
                    read_msg(&mut z, &mut buf).await,
                    (
                        cmd::NEXTHOP_UNREGISTER,
                        vec![0, 0, 0, 1, 0, 2, 32, 198, 51, 100, 6]
                    )
                );
                want_tx
                    .send(BTreeSet::from(["198.51.100.6".parse::<IpAddr>().unwrap()]))
                    .unwrap();
                assert_eq!(read_msg(&mut z, &mut buf).await.0, cmd::NEXTHOP_REGISTER);
                assert_eq!(read_msg(&mut z, &mut buf).await.0, cmd::NEXTHOP_UNREGISTER);
                // zebra goes away: Down, then the client comes back.
                drop(z);
                assert!(matches!(next_event(&mut rx).await, ZebraEvent::Down(_)));
            }
        }
        task.abort();
    }

    #[tokio::test]
    async fn an_unknown_zapi_version_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zserv.api");
        let listener = UnixListener::bind(&path).unwrap();
        let (_want_tx, want_rx) = watch::channel(BTreeSet::new());
        let (tx, mut rx) = mpsc::channel(16);
        let cfg = ZebraConfig {
            socket: path.clone(),
            resolve_via_default: false,
            reconnect_max: Duration::from_millis(200),
        };
        let task = tokio::spawn(run(cfg, want_rx, tx));
        let (mut z, _) = listener.accept().await.unwrap();
        // A zebra of ZAPI version 5 (FRR 4/5): marker 254, version 5, 8-octet header.
        z.write_all(&[0, 8, 254, 5, 0, 0, 0, 19]).await.unwrap();
        match next_event(&mut rx).await {
            ZebraEvent::Incompatible(e) => {
                assert!(
                    e.contains("ZAPI version 5") && e.contains("FRR 8.2 to 8.5"),
                    "{e}"
                );
            }
            e => panic!("{e:?}"),
        }
        task.abort();
    }

    #[tokio::test]
    async fn a_zebra_that_does_not_answer_hello() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zserv.api");
        let listener = UnixListener::bind(&path).unwrap();
        let (_want_tx, want_rx) = watch::channel(BTreeSet::new());
        let (tx, mut rx) = mpsc::channel(16);
        let cfg = ZebraConfig {
            socket: path.clone(),
            resolve_via_default: false,
            reconnect_max: Duration::from_millis(200),
        };
        let task = tokio::spawn(run(cfg, want_rx, tx));
        let (_z, _) = listener.accept().await.unwrap();
        match timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ZebraEvent::Incompatible(e) => assert!(e.contains("did not answer HELLO"), "{e}"),
            e => panic!("{e:?}"),
        }
        task.abort();
    }
}
