//! `fig6`: the resolution-latency experiment (issue #6, section 5).
//!
//! ```sh
//! sudo scripts/fig6.sh                 # 700 resolutions per case
//! sudo target/release/fig6 -n 50       # a quick one
//! ```

use std::io::{BufReader, stdin, stdout};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use lisp_msx_scenarios::{fig6, probe};

#[derive(Parser)]
#[command(
    name = "fig6",
    about = "Resolution latency through LISP-MSX vs. DDT (near and distant root), cold and warm referral caches",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the experiment (the default).
    Run(RunArgs),
    /// The ITR-side prober (started by `run` inside the ITR's namespace).
    #[command(hide = true)]
    Probe(ProbeArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Resolutions per case (per Map-Resolver, cold and warm each).
    #[arg(short = 'n', long, default_value_t = 700)]
    rounds: usize,
    /// Where the CSV, SVG, JSON and Markdown go (default: scenarios/results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lab name (namespaces lmsx-NAME-*).
    #[arg(long, default_value = "fig6")]
    name: String,
    /// Topology file (default: scenarios/topologies/fig6.toml).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Where lisp-agent is (default: next to this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Timeout of one Map-Request, ms.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Exit non-zero unless the cold medians are ordered MSX < DDT near < DDT far.
    #[arg(long)]
    check: bool,
}

#[derive(Args)]
struct ProbeArgs {
    #[arg(long)]
    src: IpAddr,
    #[arg(long)]
    eid: IpAddr,
    /// A Map-Resolver (repeat; asked in this order).
    #[arg(long = "mr", required = true)]
    mrs: Vec<IpAddr>,
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

fn run(a: RunArgs) -> Result<()> {
    let exe = std::env::current_exe().context("this program's path")?;
    let mut o = fig6::Options::defaults(&exe);
    o.rounds = a.rounds;
    o.lab_name = a.name;
    o.timeout = Duration::from_millis(a.timeout_ms);
    o.progress = !a.quiet;
    if let Some(p) = a.out {
        o.out_dir = p;
    }
    if let Some(p) = a.topology {
        o.topology = p;
    }
    if let Some(p) = a.bin_dir {
        o.bin_dir = p;
    }
    let report = fig6::run(&o)?;
    print!("{}", fig6::describe(&report));
    if a.check {
        fig6::check_order(&report)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Probe(p)) => probe::serve(
            probe::ProbeConfig {
                src: p.src,
                eid: p.eid,
                map_resolvers: p.mrs,
                timeout: Duration::from_millis(p.timeout_ms),
            },
            BufReader::new(stdin().lock()),
            stdout().lock(),
        ),
        Some(Cmd::Run(a)) => run(a),
        None => run(cli.run),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fig6: {e:#}");
            ExitCode::FAILURE
        }
    }
}
