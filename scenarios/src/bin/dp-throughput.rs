//! Data-plane throughput through one ITR: brings up lab/topologies/dataplane.toml
//! (release binaries), warms the map-caches, then runs iperf3 from H1 to H2
//! (UDP with small and large datagrams, then TCP) through xa (ITR, one
//! reactor thread) and xb (ETR), and reports packets/s, Gbit/s and the CPU
//! time xa's agent used. Every run is bounded by `--seconds`.
//!
//!   cargo build --release -p lisp-agent -p lisp-msx-scenarios
//!   sudo target/release/dp-throughput --seconds 5

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use lab::{Lab, Topology, wait_until};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "iperf3 through one lisp-agent ITR in the data-plane lab")]
struct Args {
    /// Seconds per iperf3 run (1..=30).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Folder of the lisp-agent binary (default: next to this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Topology (default: lab/topologies/dataplane.toml of this checkout).
    #[arg(long)]
    topology: Option<PathBuf>,
}

const H2: &str = "203.0.113.10";

fn topology(args: &Args, state: &Path) -> Result<Topology> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = args
        .topology
        .clone()
        .unwrap_or_else(|| root.join("lab/topologies/dataplane.toml"));
    let bins = match &args.bin_dir {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary folder")?
            .to_path_buf(),
    };
    if !bins.join("lisp-agent").exists() {
        bail!(
            "{} has no lisp-agent: build it (cargo build --release -p lisp-agent)",
            bins.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("read {}", path.display()))?
        .replace(
            "{topo_dir}/../../target/release/",
            &format!("{}/", bins.display()),
        )
        .replace("/run/lisp-msx-dp/", &format!("{}/", state.display()))
        .replace("lmsx-dp-", "lmsx-dptp-");
    Topology::parse_with(&text, path.parent().context("topology folder")?, None)
        .map_err(|e| anyhow!("{e}"))?
        .with_name("dptp")
        .map_err(|e| anyhow!("{e}"))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn agent_pid(lab: &Lab, node: &str) -> Result<u32> {
    lab.pid(node, "agent")
        .with_context(|| format!("no agent process on {node}"))
}

struct Measured {
    name: String,
    pps: f64,
    gbits: f64,
    loss_pct: f64,
    itr_cpu: f64,
    etr_cpu: f64,
}

fn iperf(
    lab: &Lab,
    name: &str,
    client_args: &[&str],
    secs: u32,
    (xa, xb): (u32, u32),
) -> Result<Measured> {
    lab.spawn("h2", "iperf3-server", &["iperf3", "-s", "-1", "-B", H2])?;
    // Its output is block-buffered into the log: ask the socket table instead.
    wait_until(
        "iperf3 server listening",
        Duration::from_secs(20),
        || match lab.exec_ok("h2", &["ss", "-ltnH", "sport = :5201"]) {
            Ok(t) if !t.trim().is_empty() => Ok(()),
            Ok(_) => Err("not yet".to_string()),
            Err(e) => Err(format!("{e:#}")),
        },
    )?;
    let t = secs.to_string();
    let mut argv = vec!["iperf3", "-c", H2, "-t", &t, "-J"];
    argv.extend_from_slice(client_args);
    let (cpu0, etr0) = (cpu_secs(xa)?, cpu_secs(xb)?);
    let t0 = Instant::now();
    let out = lab.exec("h1", &argv)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_secs(xa)? - cpu0) / wall;
    let etr_cpu = (cpu_secs(xb)? - etr0) / wall;
    let _ = lab.stop("h2", "iperf3-server");
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("iperf3 JSON: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(e) = v.get("error") {
        bail!("iperf3: {e}");
    }
    let end = &v["end"];
    let m = if !client_args.contains(&"-u") {
        // TCP: what the receiver got.
        let bps = end["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        Measured {
            name: name.into(),
            pps: f64::NAN,
            gbits: bps / 1e9,
            loss_pct: 0.0,
            itr_cpu: cpu,
            etr_cpu,
        }
    } else {
        // The receiver's count (iperf3 3.12 reports it in sum_received for UDP).
        let s = if end["sum_received"].is_object() {
            &end["sum_received"]
        } else {
            &end["sum"]
        };
        let packets = s["packets"].as_f64().unwrap_or(0.0);
        let lost = s["lost_packets"].as_f64().unwrap_or(0.0);
        let secs = s["seconds"].as_f64().unwrap_or(f64::from(secs)).max(0.001);
        let size = client_args
            .windows(2)
            .find(|w| w[0] == "-l")
            .and_then(|w| w[1].parse::<f64>().ok())
            .unwrap_or(1400.0);
        let delivered = (packets - lost) / secs;
        Measured {
            name: name.into(),
            pps: delivered,
            gbits: delivered * size * 8.0 / 1e9,
            loss_pct: s["lost_percent"].as_f64().unwrap_or(0.0),
            itr_cpu: cpu,
            etr_cpu,
        }
    };
    Ok(m)
}

fn run(args: Args) -> Result<()> {
    if !(1..=30).contains(&args.seconds) {
        bail!("--seconds must be within 1..=30");
    }
    if let Some(why) = lab::unavailable(&["zebra", "staticd", "ospfd"]) {
        bail!("cannot run the lab: {why}");
    }
    lab::ensure_root()?;
    let state = std::env::temp_dir().join(format!("dptp-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    let topo = topology(&args, &state)?;
    let lab = Lab::up(topo)?;
    let long = Duration::from_secs(60);
    lab.wait_route("xa", "203.0.113.0/26", long)?;
    lab.wait_route("xb", "192.0.2.0/26", long)?;
    // Resolved both ways: three answered pings in a row.
    wait_until("H1 reaches H2 through the xTRs", long, || {
        match lab.ping("h1", H2, 3, Duration::from_millis(50)) {
            Ok(p) if p.lost.is_empty() => Ok(()),
            Ok(p) => Err(format!("lost {:?}", p.lost)),
            Err(e) => Err(format!("{e:#}")),
        }
    })?;
    let agents = (agent_pid(&lab, "xa")?, agent_pid(&lab, "xb")?);
    let s = args.seconds;
    let runs = [
        ("UDP 64-byte payload", vec!["-u", "-b", "0", "-l", "64"]),
        ("UDP 1400-byte payload", vec!["-u", "-b", "0", "-l", "1400"]),
        ("TCP (MSS from the 1464-byte TUN MTU)", vec![]),
    ];
    let mut results = Vec::new();
    for (name, a) in &runs {
        let m = iperf(&lab, name, a, s, agents)?;
        results.push(m);
    }
    println!("Data-plane throughput through one ITR (xa), {s} s per run:");
    println!("| traffic | delivered packets/s | Gbit/s (inner) | loss | ITR xa CPU | ETR xb CPU |");
    println!("|---|---|---|---|---|---|");
    for m in &results {
        let pps = if m.pps.is_nan() {
            "-".to_string()
        } else {
            format!("{:.0}", m.pps)
        };
        println!(
            "| {} | {pps} | {:.2} | {:.1} % | {:.2} | {:.2} |",
            m.name, m.gbits, m.loss_pct, m.itr_cpu, m.etr_cpu
        );
    }
    lab.down()?;
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dp-throughput: {e:#}");
            ExitCode::FAILURE
        }
    }
}
