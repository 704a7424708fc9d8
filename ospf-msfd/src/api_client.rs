//! A client of FRR ospfd's OSPF API (ospfd started with `-a`): the client
//! binds a sync port P, listens on P+1, connects to ospfd's TCP 2607 from P;
//! ospfd then dials back to P+1 for the asynchronous channel, which only
//! ospfd writes (notifications). Requests get a REPLY on the sync channel.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use lisp_msx_proto::ospf::api::{ApiBody, ApiErrorCode, ApiMessage, LsaFilter, next_message};
use lisp_msx_proto::ospf::lsa::OpaqueLsa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot reach ospfd's API at {addr}: {source} (is ospfd running with -a / --apiserver?)"
    )]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("ospfd did not open the notification channel to port {port} within {secs} s")]
    NoCallback { port: u16, secs: u64 },
    #[error("ospfd closed the API connection")]
    Closed,
    #[error("I/O on the OSPF API: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message from ospfd: {0}")]
    Decode(#[from] lisp_msx_proto::DecodeError),
    #[error("ospfd refused {request}: {}", code.name())]
    Refused {
        request: &'static str,
        code: ApiErrorCode,
    },
    #[error(
        "opaque type 4 (Router Information) is already taken in this ospfd: either by its own `router-info` or Segment Routing configuration (remove them: ospfd then owns opaque type 4), or by another OSPF API client such as a second ospf-msfd"
    )]
    RouterInfoInUse,
    #[error("cannot encode {0}")]
    Encode(String),
    #[error("no reply from ospfd to {0}")]
    Timeout(&'static str),
}

/// Reads framed API messages from one TCP stream.
struct Channel {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Channel {
    fn new(stream: TcpStream) -> Self {
        Channel {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    async fn read(&mut self) -> Result<ApiMessage, ApiError> {
        loop {
            if let Some((msg, used)) = next_message(&self.buf)? {
                self.buf.drain(..used);
                return Ok(msg);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ApiError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The request side (sync channel).
pub struct OspfApi {
    sync: Channel,
    seq: u32,
}

/// The notification side (async channel), read by its own task.
pub struct Notifications {
    chan: Channel,
}

impl Notifications {
    pub async fn next(&mut self) -> Result<ApiMessage, ApiError> {
        self.chan.read().await
    }
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

impl OspfApi {
    /// Connects to ospfd at `server`. `port` 0 picks a free P in 49152..65534.
    pub async fn connect(
        server: SocketAddr,
        port: u16,
    ) -> Result<(OspfApi, Notifications), ApiError> {
        let mut last_err = None;
        for attempt in 0..32 {
            let p = if port != 0 {
                port
            } else {
                rand::random_range(49152..65534)
            };
            // The listener first: ospfd connects to P+1 as soon as it accepts us.
            let listener =
                match TcpListener::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), p + 1)).await
                {
                    Ok(l) => l,
                    Err(e) if port == 0 => {
                        last_err = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            let sock = TcpSocket::new_v4()?;
            sock.set_reuseaddr(true)?;
            if let Err(e) = sock.bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), p)) {
                if port == 0 && attempt < 31 {
                    last_err = Some(e);
                    continue;
                }
                return Err(e.into());
            }
            let stream = sock
                .connect(server)
                .await
                .map_err(|source| ApiError::Connect {
                    addr: server,
                    source,
                })?;
            stream.set_nodelay(true)?;
            let (async_stream, _) = timeout(CALLBACK_TIMEOUT, listener.accept())
                .await
                .map_err(|_| ApiError::NoCallback {
                    port: p + 1,
                    secs: CALLBACK_TIMEOUT.as_secs(),
                })??;
            return Ok((
                OspfApi {
                    sync: Channel::new(stream),
                    seq: 0,
                },
                Notifications {
                    chan: Channel::new(async_stream),
                },
            ));
        }
        Err(last_err.map_or(ApiError::Closed, ApiError::Io))
    }

    /// Sends a request and waits for its REPLY.
    async fn request(&mut self, name: &'static str, body: ApiBody) -> Result<(), ApiError> {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        let seq = self.seq;
        let bytes = ApiMessage::new(seq, body)
            .to_bytes()
            .map_err(|e| ApiError::Encode(format!("{name}: {e}")))?;
        self.sync.stream.write_all(&bytes).await?;
        loop {
            let msg = timeout(REPLY_TIMEOUT, self.sync.read())
                .await
                .map_err(|_| ApiError::Timeout(name))??;
            if let ApiBody::Reply { errcode } = msg.body
                && msg.seq == seq
            {
                return match errcode {
                    ApiErrorCode::Ok => Ok(()),
                    ApiErrorCode::OpaqueTypeInUse => Err(ApiError::RouterInfoInUse),
                    code => Err(ApiError::Refused {
                        request: name,
                        code,
                    }),
                };
            }
        }
    }

    pub async fn register_opaque_type(
        &mut self,
        lsa_type: u8,
        opaque_type: u8,
    ) -> Result<(), ApiError> {
        self.request(
            "REGISTER_OPAQUETYPE",
            ApiBody::RegisterOpaqueType {
                lsa_type,
                opaque_type,
            },
        )
        .await
    }

    pub async fn register_event(&mut self, filter: LsaFilter) -> Result<(), ApiError> {
        self.request("REGISTER_EVENT", ApiBody::RegisterEvent(filter))
            .await
    }

    pub async fn sync_lsdb(&mut self, filter: LsaFilter) -> Result<(), ApiError> {
        self.request("SYNC_LSDB", ApiBody::SyncLsdb(filter)).await
    }

    pub async fn originate(&mut self, area_id: Ipv4Addr, lsa: OpaqueLsa) -> Result<(), ApiError> {
        self.request(
            "ORIGINATE_REQUEST",
            ApiBody::OriginateRequest {
                ifaddr: Ipv4Addr::UNSPECIFIED,
                area_id,
                lsa,
            },
        )
        .await
    }

    pub async fn delete(
        &mut self,
        area_id: Ipv4Addr,
        lsa_type: u8,
        opaque_type: u8,
        opaque_id: u32,
    ) -> Result<(), ApiError> {
        self.request(
            "DELETE_REQUEST",
            ApiBody::DeleteRequest {
                addr: area_id,
                lsa_type,
                opaque_type,
                flags: 0,
                opaque_id,
            },
        )
        .await
    }
}
