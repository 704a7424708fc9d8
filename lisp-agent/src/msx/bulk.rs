//! Map-Bulk over TCP on the LISP control port (draft-boucadair-lisp-bulk):
//! the service answering Map-Bulk-Requests from the Map-Server's registered
//! mappings, for peers whose agreement includes bulk, and the client fetching
//! a peer's table into the Map-Resolver's copy. Each message is framed by a
//! u16 length; replies are paged (M bit) at 255 records or ~60 KB.
//! Who may copy is decided by the reactor from the agreements.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lisp_msx_proto::LispMessage;
use lisp_msx_proto::lisp::{CONTROL_PORT, EidRecord};
use lisp_msx_proto::msx::{
    BulkResult, ExtCodepoints, ExtMessage, Filter, MapBulkReply, MapBulkRequest, frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::{Request, Response};
use crate::control::handle::{Input, ReactorHandle};

/// Bytes of records per reply before paging (a frame holds 65535).
const PAGE_BYTES: usize = 60_000;
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// A table copy larger than this is refused (memory bound per peer).
pub const MAX_COPY: usize = 5_000_000;

/// A copy to fetch: from `peer`, the prefixes of the agreement.
#[derive(Debug, Clone)]
pub struct BulkJob {
    pub peer: IpAddr,
    pub filters: Vec<Filter>,
}

/// Serves Map-Bulk-Requests on `local`:4342 (TCP) until `shutdown`.
pub async fn serve(
    handle: ReactorHandle,
    local: IpAddr,
    cp: ExtCodepoints,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::new(local, CONTROL_PORT))
        .await
        .map_err(|e| {
            anyhow::anyhow!("Map-Bulk: cannot listen on TCP {local}:{CONTROL_PORT}: {e}")
        })?;
    info!(%local, "Map-Bulk service listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            a = listener.accept() => {
                let Ok((stream, from)) = a else { continue };
                let h = handle.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, from.ip(), h, cp).await {
                        warn!(peer = %from.ip(), "Map-Bulk: {e}");
                    }
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
    loop {
        if let Some((msg, used)) = frame::next_frame(buf)? {
            let m = msg.to_vec();
            buf.drain(..used);
            return Ok(Some(m));
        }
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await??;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: IpAddr,
    handle: ReactorHandle,
    cp: ExtCodepoints,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    while let Some(msg) = read_frame(&mut stream, &mut buf).await? {
        let req = match LispMessage::decode_with(&msg, &cp) {
            Ok(LispMessage::Extension(ExtMessage::BulkRequest(r))) => r,
            Ok(other) => anyhow::bail!("unexpected {} on the bulk channel", other.name()),
            Err(e) => anyhow::bail!("malformed Map-Bulk-Request: {e}"),
        };
        let answer = handle
            .call(Request::BulkRecords {
                peer,
                filters: req.filters.clone(),
            })
            .await?;
        let records = match answer {
            Response::BulkRecords(r) => r,
            _ => Err(BulkResult::OUT_OF_RESOURCES),
        };
        let mut out = Vec::new();
        match records {
            Err(result) => {
                warn!(%peer, "Map-Bulk-Request refused: {}", result.name());
                let reply = MapBulkReply {
                    result,
                    transaction_id: req.transaction_id,
                    ..Default::default()
                };
                frame::frame_with(&mut out, |b| reply.encode(b, cp.bulk))?;
            }
            Ok(records) => {
                let total = records.len();
                let mut page = MapBulkReply {
                    transaction_id: req.transaction_id,
                    ..Default::default()
                };
                let mut bytes = 0;
                let mut it = records.into_iter().peekable();
                while let Some(r) = it.next() {
                    bytes += r.wire_len();
                    page.records.push(r);
                    let full = page.records.len() == MapBulkReply::MAX_RECORDS
                        || it.peek().is_some_and(|n| bytes + n.wire_len() > PAGE_BYTES);
                    if full && it.peek().is_some() {
                        page.more = true;
                        frame::frame_with(&mut out, |b| page.encode(b, cp.bulk))?;
                        page.records.clear();
                        bytes = 0;
                    }
                    if out.len() > 1 << 20 {
                        stream.write_all(&out).await?;
                        out.clear();
                    }
                }
                page.more = false;
                frame::frame_with(&mut out, |b| page.encode(b, cp.bulk))?;
                info!(%peer, records = total, "Map-Bulk: table sent");
            }
        }
        stream.write_all(&out).await?;
    }
    Ok(())
}

/// Fetches a peer's table (all pages of one transaction).
pub async fn fetch(
    local: IpAddr,
    peer: IpAddr,
    filters: Vec<Filter>,
    cp: ExtCodepoints,
) -> anyhow::Result<Vec<EidRecord>> {
    let sock = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if local.is_ipv4() == peer.is_ipv4() {
        sock.bind(SocketAddr::new(local, 0))?;
    }
    let mut stream = tokio::time::timeout(
        IO_TIMEOUT,
        sock.connect(SocketAddr::new(peer, CONTROL_PORT)),
    )
    .await??;
    let tid: u32 = rand::random();
    let mut out = Vec::new();
    frame::frame_with(&mut out, |b| {
        MapBulkRequest {
            transaction_id: tid,
            filters,
        }
        .encode(b, cp.bulk)
    })?;
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    let mut records = Vec::new();
    loop {
        let Some(msg) = read_frame(&mut stream, &mut buf).await? else {
            anyhow::bail!("the peer closed the bulk channel mid-transfer");
        };
        let reply = match LispMessage::decode_with(&msg, &cp) {
            Ok(LispMessage::Extension(ExtMessage::BulkReply(r))) if r.transaction_id == tid => r,
            Ok(_) => continue,
            Err(e) => anyhow::bail!("malformed Map-Bulk-Reply: {e}"),
        };
        if reply.result != BulkResult::SUCCESS {
            anyhow::bail!(
                "refused: {} (retry after {:?} s)",
                reply.result.name(),
                reply.result.retry_after_secs()
            );
        }
        records.extend(reply.records);
        anyhow::ensure!(
            records.len() <= MAX_COPY,
            "the peer's table exceeds {MAX_COPY} records"
        );
        if !reply.more {
            return Ok(records);
        }
    }
}

/// Runs bulk jobs from the reactor and hands the copies back to it.
pub async fn run_fetcher(
    handle: ReactorHandle,
    local: IpAddr,
    cp: ExtCodepoints,
    mut jobs: mpsc::UnboundedReceiver<BulkJob>,
) {
    while let Some(job) = jobs.recv().await {
        let h = handle.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match fetch(local, job.peer, job.filters, cp).await {
                Ok(records) => {
                    info!(peer = %job.peer, records = records.len(), ms = started.elapsed().as_millis() as u64, "Map-Bulk: copied the peer's table");
                    let _ = h.send(Input::BulkCopy {
                        peer: job.peer,
                        records,
                    });
                }
                Err(e) => warn!(peer = %job.peer, "Map-Bulk: fetching the table failed: {e}"),
            }
        });
    }
}
