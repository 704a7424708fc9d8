//! CPNP transport: TCP with length-prefixed JSON frames, each authenticated
//! with HMAC-SHA-256 under the pre-shared key. It only moves frames: received
//! messages go to the reactor (which owns the negotiation), and the reactor's
//! messages go out on the connection to that peer (opened on demand from our
//! contact address, so the peer recognizes us). A frame failing
//! authentication closes the connection and is counted and logged.
//!
//! With `[msx.tls]` the connections run TLS 1.2/1.3 (rustls) with client
//! certificates: both sides must present a certificate signed by the
//! configured CA, naming the address the peer talks from (IP SAN). The
//! frame HMAC stays (the same PSK also authenticates the UDP subscription
//! messages, which TLS does not cover).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lisp_msx_proto::cpnp::{CpnpError, CpnpMessage, decode_frame, encode_frame};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::control::handle::{Input, ReactorHandle};
use crate::stats::{Stats, inc};

pub type Outgoing = mpsc::UnboundedSender<(IpAddr, CpnpMessage)>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BUFFER: usize = 256 * 1024;

/// TLS material, loaded once at start.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    verify_peer_address: bool,
}

impl Tls {
    /// Loads `[msx.tls]`; the error names the field and the reason.
    pub fn load(cfg: &crate::config::TlsConfig) -> Result<Tls, String> {
        Self::load_section(cfg, "msx.tls")
    }

    /// Loads a TLS table; errors name it (`section`, e.g. "sync.tls").
    pub fn load_section(cfg: &crate::config::TlsConfig, section: &str) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{section}.cert: {}: {e}", cfg.cert.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{section}.cert: {}: no certificate in the file",
                cfg.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&cfg.key)
            .map_err(|e| format!("{section}.key: {}: {e}", cfg.key.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.ca)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{section}.ca: {}: {e}", cfg.ca.display()))?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| format!("{section}.ca: {}: {e}", cfg.ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "{section}.ca: {}: no certificate in the file",
                cfg.ca.display()
            ));
        }
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("{section}.ca: {e}"))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{section}: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("{section}.key: {}: {e}", cfg.key.display()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{section}: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("{section}.key: {}: {e}", cfg.key.display()))?;
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            verify_peer_address: cfg.verify_peer_address,
        })
    }
}

/// Why a TLS connection was not established.
#[derive(Debug)]
pub enum TlsRefused {
    /// The handshake or the peer's certificate failed (an authentication failure).
    Auth(String),
    Timeout,
}

impl Tls {
    /// Server side: handshake (bounded in time), then the client
    /// certificate must name `peer` when `verify_peer_address` is on.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: IpAddr,
    ) -> Result<tokio_rustls::server::TlsStream<TcpStream>, TlsRefused> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(s)) => {
                let names = client_names(peer, s.get_ref().1.peer_certificates());
                match (self.verify_peer_address, names) {
                    (true, Err(e)) => Err(TlsRefused::Auth(format!("TLS client certificate: {e}"))),
                    _ => Ok(s),
                }
            }
            Ok(Err(e)) => Err(TlsRefused::Auth(format!("TLS handshake failed: {e}"))),
            Err(_) => Err(TlsRefused::Timeout),
        }
    }

    /// Client side: the server's certificate must name the address we dial.
    pub async fn connect(
        &self,
        stream: TcpStream,
        peer: IpAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TlsRefused> {
        let name = ServerName::IpAddress(peer.into());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, stream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(TlsRefused::Auth(format!("TLS handshake failed: {e}"))),
            Err(_) => Err(TlsRefused::Timeout),
        }
    }
}

/// The client's certificate (already verified against the CA by rustls)
/// must name the address it connects from.
fn client_names(peer: IpAddr, certs: Option<&[CertificateDer<'_>]>) -> Result<(), String> {
    let cert = certs
        .and_then(|c| c.first())
        .ok_or("no client certificate")?;
    let ee = rustls::server::ParsedCertificate::try_from(cert).map_err(|e| e.to_string())?;
    rustls::client::verify_server_name(&ee, &ServerName::IpAddress(peer.into()))
        .map_err(|e| format!("the certificate does not name {peer}: {e}"))
}

/// Runs until `shutdown` completes.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    handle: ReactorHandle,
    local: IpAddr,
    port: u16,
    psk: Vec<u8>,
    tls: Option<Tls>,
    mut out: mpsc::UnboundedReceiver<(IpAddr, CpnpMessage)>,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::new(local, port))
        .await
        .map_err(|e| {
            anyhow::anyhow!("CPNP: cannot listen on {local}:{port} (msx.cpnp_port): {e}")
        })?;
    info!(%local, port, tls = tls.is_some(), "CPNP listening");
    let psk = Arc::new(psk);
    let mut writers: HashMap<IpAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    // TLS handshakes of accepted connections run in their own tasks and hand
    // the connection's writer back here.
    let (accepted_tx, mut accepted_rx) = mpsc::unbounded_channel();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, from)) = accepted else { continue };
                match &tls {
                    None => {
                        let w = spawn_connection(stream, from.ip(), handle.clone(), psk.clone(), stats.clone());
                        writers.insert(from.ip(), w);
                    }
                    Some(t) => {
                        let (t, h, p, st, back) = (t.clone(), handle.clone(), psk.clone(), stats.clone(), accepted_tx.clone());
                        tokio::spawn(async move {
                            let peer = from.ip();
                            let _ = stream.set_nodelay(true);
                            match t.accept(stream, peer).await {
                                Ok(s) => {
                                    let w = spawn_connection(s, peer, h, p, st);
                                    let _ = back.send((peer, w));
                                }
                                Err(TlsRefused::Auth(e)) => {
                                    inc(&st.counters.auth_failures);
                                    inc(&st.counters.cpnp_refused);
                                    warn!(%peer, "CPNP refused: {e}");
                                }
                                Err(TlsRefused::Timeout) => {
                                    inc(&st.counters.cpnp_refused);
                                    warn!(%peer, "CPNP refused: TLS handshake timed out");
                                }
                            }
                        });
                    }
                }
            }
            Some((peer, w)) = accepted_rx.recv() => {
                writers.insert(peer, w);
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
                let w = match connect(Some(local), SocketAddr::new(peer, port)).await {
                    Ok(stream) => match &tls {
                        None => Ok(spawn_connection(stream, peer, handle.clone(), psk.clone(), stats.clone())),
                        Some(t) => match t.connect(stream, peer).await {
                            Ok(s) => Ok(spawn_connection(s, peer, handle.clone(), psk.clone(), stats.clone())),
                            Err(TlsRefused::Auth(e)) => {
                                inc(&stats.counters.auth_failures);
                                Err(e)
                            }
                            Err(TlsRefused::Timeout) => Err("TLS handshake timed out".to_string()),
                        },
                    },
                    Err(e) => Err(e.to_string()),
                };
                match w {
                    Ok(w) => {
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

/// A TCP connection to `to`, from `local` when it is of the same family
/// (the peer identifies us by that address), Nagle off, within 3 s. Shared
/// with the sync transport.
pub(crate) async fn connect(local: Option<IpAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(l) = local.filter(|l| l.is_ipv4() == to.is_ipv4()) {
        sock.bind(SocketAddr::new(l, 0))?;
    }
    let s = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

fn spawn_connection<S>(
    stream: S,
    peer: IpAddr,
    handle: ReactorHandle,
    psk: Arc<Vec<u8>>,
    stats: Arc<Stats>,
) -> mpsc::UnboundedSender<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(w, rx));
    tokio::spawn(read_loop(r, peer, handle, psk, stats, tx.clone()));
    tx
}

async fn write_loop<S: AsyncWrite>(mut w: WriteHalf<S>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
}

async fn read_loop<S: AsyncRead>(
    mut r: ReadHalf<S>,
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
