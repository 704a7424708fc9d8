//! Resolution load benchmark: `lisp-bench --target 127.0.0.10 --source 127.0.0.50 --eids 192.0.2.0/26`.
//! Sends ECM Map-Requests with a window outstanding (or at --rate per second)
//! for --seconds, and prints replies/s and latency percentiles: end to end
//! and server side (the client's own scheduling left out), see `bench`.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use lisp_agent::bench::{BenchConfig, run};

#[derive(Parser)]
#[command(
    name = "lisp-bench",
    about = "Map-Request→Map-Reply load benchmark over loopback"
)]
struct Args {
    /// Where the Map-Requests go.
    #[arg(long, required_unless_present = "reflect")]
    target: Option<IpAddr>,
    /// The client's address.
    #[arg(long, required_unless_present = "reflect")]
    source: Option<IpAddr>,
    /// Instead of sending: answer the benchmark's Map-Requests on this
    /// address with a fixed Map-Reply for --seconds (the machine's floor,
    /// to compare a Map-Server's latency with).
    #[arg(long, conflicts_with_all = ["target", "source"])]
    reflect: Option<IpAddr>,
    /// With --reflect: poll without sleeping for this long after a packet
    /// (as the agent's `busy_poll_us`).
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u64,
    #[arg(long, default_value = "192.0.2.0/26")]
    eids: String,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Requests per second (0: window mode, as fast as answers come).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value_t = 20_000_000)]
    max_requests: u64,
    #[arg(long)]
    json: bool,
    /// Writes every reply's times as CSV (seq,due,sent,kernel_rx,read in ns since
    /// start), then `start,<realtime ns>` and `stall,<at ns>,<us>` lines.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let duration = Duration::from_secs_f64(a.seconds.clamp(0.1, 600.0));
    if let Some(listen) = a.reflect {
        let n =
            lisp_agent::bench::reflect(listen, duration, Duration::from_micros(a.busy_poll_us))?;
        eprintln!("reflected {n} Map-Requests");
        return Ok(());
    }
    let (Some(target), Some(source)) = (a.target, a.source) else {
        anyhow::bail!("--target and --source are required");
    };
    let cfg = BenchConfig {
        target,
        source,
        eids: a.eids.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        duration,
        window: a.window,
        rate: a.rate,
        max_requests: a.max_requests,
        dump: a.dump,
    };
    let r = run(&cfg)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "sent {} answered {} lost {} in {:.2} s: {:.0} replies/s, latency p50 {} us, p90 {} us, p99 {} us, max {} us; server p50 {} p90 {} p99 {} max {} us; send late p99 {} max {} us; client stalls over 1 ms {} ({:.1} ms, max {} us)",
            r.sent,
            r.answered,
            r.lost,
            r.seconds,
            r.replies_per_sec,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.max_us,
            r.server_p50_us,
            r.server_p90_us,
            r.server_p99_us,
            r.server_max_us,
            r.send_late_p99_us,
            r.send_late_max_us,
            r.client_stalls,
            r.client_stalled_ms,
            r.client_stall_max_us
        );
    }
    Ok(())
}
