//! Prometheus endpoint: `GET /metrics` in text exposition format 0.0.4.
//!
//! A scrape is one short request per interval, so a minimal HTTP/1.1
//! responder (one response per connection) does the job without pulling an
//! HTTP framework into the agent. It reads the atomics in [`Stats`]
//! directly and never talks to the reactor, so a busy reactor does not
//! stall scrapes.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::stats::{PATHS, Stats};

/// A scrape request is a few hundred bytes; anything larger is not one.
const MAX_HEAD: usize = 8 * 1024;
/// Slow or idle clients are dropped rather than holding a task.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds the tasks a misbehaving client can make us hold.
const MAX_CONNECTIONS: usize = 32;

/// Serves `/metrics` on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics: binding {addr}"))?;
    tracing::info!(%addr, "metrics listening");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (conn, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many connections");
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(conn, &stats).await {
                tracing::debug!(%peer, error = %e, "metrics: connection");
            }
            drop(slot);
        });
    }
}

async fn respond(mut conn: TcpStream, stats: &Stats) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut conn)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            return write_response(&mut conn, "431 Request Header Fields Too Large", "").await;
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let (status, body) = route(&head, stats);
    write_response(&mut conn, status, &body).await
}

/// Reads up to the blank line ending the request head; `None` when the
/// head exceeds [`MAX_HEAD`].
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Status line and body for a request head.
fn route(head: &[u8], stats: &Stats) -> (&'static str, String) {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", render(stats)),
        (_, "/metrics") => ("405 Method Not Allowed", String::new()),
        _ => ("404 Not Found", "not found; try /metrics\n".to_string()),
    }
}

async fn write_response(conn: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

/// The exposition text for the current values of `stats`.
pub fn render(stats: &Stats) -> String {
    let mut out = String::with_capacity(8 * 1024);
    for (name, help, value) in stats.counters.snapshot() {
        let metric = format!("lisp_{}_total", name.replace(['.', '-'], "_"));
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        let _ = writeln!(out, "{metric} {value}");
    }

    out.push_str(
        "# HELP lisp_resolutions_served_total Map-Resolver requests served, per resolution path\n",
    );
    out.push_str("# TYPE lisp_resolutions_served_total counter\n");
    for (path, served) in PATHS.iter().zip(&stats.served) {
        let _ = writeln!(
            out,
            "lisp_resolutions_served_total{{path=\"{path}\"}} {}",
            served.load(Relaxed)
        );
    }

    out.push_str(
        "# HELP lisp_resolution_latency_seconds Resolution latency, per resolution path\n",
    );
    out.push_str("# TYPE lisp_resolution_latency_seconds histogram\n");
    for (path, hist) in PATHS.iter().zip(&stats.resolution) {
        let (buckets, count, sum_us) = hist.snapshot();
        for (le, cum) in buckets {
            let le = le.map_or_else(|| "+Inf".to_string(), micros_as_seconds);
            let _ = writeln!(
                out,
                "lisp_resolution_latency_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {cum}"
            );
        }
        let _ = writeln!(
            out,
            "lisp_resolution_latency_seconds_sum{{path=\"{path}\"}} {}",
            micros_as_seconds(sum_us)
        );
        let _ = writeln!(
            out,
            "lisp_resolution_latency_seconds_count{{path=\"{path}\"}} {count}"
        );
    }
    out
}

/// Exact decimal seconds (no float rounding: bucket bounds must compare
/// equal across scrapes), e.g. 50 → "0.00005", 2_500_000 → "2.5".
fn micros_as_seconds(us: u64) -> String {
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    if frac == 0 {
        return secs.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{secs}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::inc;

    fn sample() -> Stats {
        let stats = Stats::default();
        inc(&stats.counters.map_request_rx);
        inc(&stats.counters.map_request_rx);
        inc(&stats.counters.replayed_nonces);
        let ms = Stats::path_index("ms").unwrap();
        inc(&stats.served[ms]);
        stats.resolution[ms].observe_us(40);
        stats.resolution[ms].observe_us(1_200);
        stats
    }

    #[test]
    fn exposition_text() {
        let text = render(&sample());
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            "# HELP lisp_map_request_rx_total Map-Requests received",
            "# TYPE lisp_map_request_rx_total counter",
            "lisp_map_request_rx_total 2",
            "lisp_auth_replayed_nonce_total 1",
            "lisp_map_reply_negative_tx_total 0",
            "lisp_malformed_total 0",
            "# TYPE lisp_resolutions_served_total counter",
            "lisp_resolutions_served_total{path=\"ms\"} 1",
            "lisp_resolutions_served_total{path=\"msx-copy\"} 0",
            "# TYPE lisp_resolution_latency_seconds histogram",
            "lisp_resolution_latency_seconds_bucket{path=\"ms\",le=\"0.00005\"} 1",
            "lisp_resolution_latency_seconds_bucket{path=\"ms\",le=\"0.001\"} 1",
            "lisp_resolution_latency_seconds_bucket{path=\"ms\",le=\"0.0025\"} 2",
            "lisp_resolution_latency_seconds_bucket{path=\"ms\",le=\"5\"} 2",
            "lisp_resolution_latency_seconds_bucket{path=\"ms\",le=\"+Inf\"} 2",
            "lisp_resolution_latency_seconds_sum{path=\"ms\"} 0.00124",
            "lisp_resolution_latency_seconds_count{path=\"ms\"} 2",
            "lisp_resolution_latency_seconds_count{path=\"ddt\"} 0",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{text}");
        }
        // Every sample line is `name[{labels}] value`, nothing else.
        for line in lines.iter().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("lisp_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(micros_as_seconds(0), "0");
        assert_eq!(micros_as_seconds(50), "0.00005");
        assert_eq!(micros_as_seconds(250_000), "0.25");
        assert_eq!(micros_as_seconds(2_500_000), "2.5");
        assert_eq!(micros_as_seconds(5_000_000), "5");
    }

    #[test]
    fn routes() {
        let stats = Stats::default();
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n", &stats).0, "200 OK");
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", &stats).0,
            "200 OK"
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n", &stats).0, "404 Not Found");
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n", &stats).0,
            "405 Method Not Allowed"
        );
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(addr, Arc::new(sample()), async {
            let _ = stopped.await;
        }));
        let mut conn = loop {
            match TcpStream::connect(addr).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("Connection: close\r\n"));
        assert!(reply.contains("\nlisp_map_request_rx_total 2\n"));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
