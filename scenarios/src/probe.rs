//! The ITR-side prober: sends one ECM Map-Request at a time to each
//! Map-Resolver and times it from the send to the Map-Reply (matched by
//! nonce), as an ITR would see it. It runs inside the ITR's namespace (the
//! `fig6 probe` subcommand) and speaks a line protocol on stdin/stdout so that
//! the scenario can clear the Map-Resolvers' caches between rounds:
//!
//! ```text
//! <- ready 40123                       (bound; the ephemeral UDP port)
//! -> round
//! <- {"results":[{"us":5123,"negative":false},{"us":10211,"negative":false},null]}
//! -> quit                              (or EOF)
//! ```
//!
//! `null` is a request that got no reply within the timeout (lost).

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use lisp_msx_proto::lisp::{CONTROL_PORT, Ecm, InnerHeader, LispMessage, MapRequest};
use lisp_msx_proto::{Addr, EidPrefix};
use serde::{Deserialize, Serialize};

/// One resolution as the ITR saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Send to Map-Reply, microseconds.
    pub us: u64,
    /// The reply carried no locator (a negative Map-Reply).
    pub negative: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct RoundLine {
    results: Vec<Option<Answer>>,
}

/// What the prober sends.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The ITR's address (ITR-RLOC and the socket's source).
    pub src: IpAddr,
    /// The EID asked for.
    pub eid: IpAddr,
    /// The Map-Resolvers, asked in this order, one outstanding at a time.
    pub map_resolvers: Vec<IpAddr>,
    /// How long to wait for each Map-Reply.
    pub timeout: Duration,
}

struct Prober {
    cfg: ProbeConfig,
    sock: UdpSocket,
    port: u16,
    buf: Vec<u8>,
    rx: Vec<u8>,
}

impl Prober {
    fn new(cfg: ProbeConfig) -> Result<Prober> {
        for a in cfg.map_resolvers.iter().chain([&cfg.src, &cfg.eid]) {
            ensure!(
                // The prober never sends outside loopback and the documentation ranges.
                lisp_msx_proto::addr::is_lab_address(*a),
                "{a} is outside loopback and the documentation ranges"
            );
            ensure!(
                a.is_ipv4() == cfg.src.is_ipv4(),
                "{a}: all addresses must be of one family"
            );
        }
        ensure!(!cfg.map_resolvers.is_empty(), "no Map-Resolver given");
        let sock = UdpSocket::bind((cfg.src, 0)).with_context(|| format!("bind {}", cfg.src))?;
        let port = sock.local_addr()?.port();
        Ok(Prober {
            cfg,
            sock,
            port,
            buf: Vec::with_capacity(128),
            rx: vec![0u8; 9216],
        })
    }

    /// One Map-Request to `mr`; `None` when no reply came in time.
    fn resolve(&mut self, mr: IpAddr) -> Result<Option<Answer>> {
        let nonce: u64 = rand::random();
        let req = MapRequest::new(
            nonce,
            EidPrefix::host(Addr::from(self.cfg.eid)),
            self.cfg.src.into(),
        );
        let inner = InnerHeader::new(self.cfg.src, self.cfg.eid, self.port, CONTROL_PORT);
        self.buf.clear();
        Ecm::new(inner, LispMessage::MapRequest(req))
            .encode(&mut self.buf)
            .map_err(|e| anyhow!("encode the ECM: {e}"))?;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.timeout;
        self.sock
            .send_to(&self.buf, SocketAddr::new(mr, CONTROL_PORT))
            .with_context(|| format!("send to {mr}"))?;
        // Bounded by the deadline: every pass either returns or waits less.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            let n = match self.sock.recv_from(&mut self.rx) {
                Ok((n, _)) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("receive"),
            };
            let at = Instant::now();
            // Anything else (a late reply to an earlier request, garbage) is ignored.
            if let Ok(LispMessage::MapReply(r)) = LispMessage::decode(&self.rx[..n])
                && r.nonce == nonce
            {
                let negative = r.records.first().is_none_or(|rec| rec.locators.is_empty());
                return Ok(Some(Answer {
                    us: (at - t0).as_micros() as u64,
                    negative,
                }));
            }
        }
    }

    fn round(&mut self) -> Result<Vec<Option<Answer>>> {
        let mrs = self.cfg.map_resolvers.clone();
        mrs.into_iter().map(|mr| self.resolve(mr)).collect()
    }
}

/// The `probe` subcommand: serves rounds until `quit` or end of input.
pub fn serve(cfg: ProbeConfig, input: impl BufRead, mut output: impl Write) -> Result<()> {
    let mut p = Prober::new(cfg)?;
    writeln!(output, "ready {}", p.port)?;
    output.flush()?;
    for line in input.lines() {
        match line?.trim() {
            "round" => {
                let results = p.round()?;
                serde_json::to_writer(&mut output, &RoundLine { results })?;
                writeln!(output)?;
                output.flush()?;
            }
            "quit" => break,
            "" => {}
            other => bail!("unknown probe command `{other}`"),
        }
    }
    Ok(())
}

/// The scenario's side: a prober process running in the ITR's namespace.
pub struct ProbeClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<std::io::Result<String>>,
    /// How long one round may take before the prober is considered stuck.
    round_timeout: Duration,
}

impl ProbeClient {
    /// Starts `cmd` (e.g. `ip netns exec NS fig6 probe ...`) and waits for `ready`.
    pub fn start(
        mut cmd: Command,
        stderr_log: &std::path::Path,
        round_timeout: Duration,
    ) -> Result<ProbeClient> {
        let log = std::fs::File::create(stderr_log)
            .with_context(|| format!("create {}", stderr_log.display()))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("start the prober")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("prober has no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines() {
                let end = l.is_err();
                if tx.send(l).is_err() || end {
                    break;
                }
            }
        });
        let mut c = ProbeClient {
            child,
            stdin,
            lines: rx,
            round_timeout,
        };
        let first = c.next_line(Duration::from_secs(30)).map_err(|e| {
            anyhow!(
                "{e:#}; prober stderr: {}",
                std::fs::read_to_string(stderr_log)
                    .unwrap_or_default()
                    .trim()
            )
        })?;
        ensure!(first.starts_with("ready "), "prober said `{first}`");
        Ok(c)
    }

    fn next_line(&mut self, timeout: Duration) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(e).context("read from the prober"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("the prober said nothing for {:.0} s", timeout.as_secs_f64())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = self.child.try_wait().ok().flatten();
                bail!("the prober exited ({st:?})")
            }
        }
    }

    /// One Map-Request to each Map-Resolver, in order.
    pub fn round(&mut self) -> Result<Vec<Option<Answer>>> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("prober already stopped"))?;
        stdin.write_all(b"round\n")?;
        stdin.flush()?;
        let line = self.next_line(self.round_timeout)?;
        let r: RoundLine =
            serde_json::from_str(&line).with_context(|| format!("prober said `{line}`"))?;
        Ok(r.results)
    }

    /// Asks the prober to exit and reaps it (killed if it does not go in 5 s).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"quit\n");
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProbeClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}
