//! `lab`: bring a topology up, look at it, use it, tear it down.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};

use lab::{Lab, RunState, Status, Topology, UpOptions, WireSpec};

#[derive(Parser)]
#[command(
    name = "lab",
    about = "Network-namespace lab: topologies (TOML) -> namespaces, veth/TAP wires, FRR, our daemons",
    after_help = "Run as root. State: /run/lisp-msx-lab/LAB/, logs: /tmp/lisp-msx-lab/LAB/."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring a topology up and return (processes keep running; `lab down` removes it).
    Up {
        /// Topology file (TOML).
        topology: PathBuf,
        /// Lab name (default: the topology's `name`, else the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Stay in the foreground and tear down on Ctrl-C / SIGTERM.
        #[arg(long)]
        foreground: bool,
        /// Log folder (default /tmp/lisp-msx-lab/LAB).
        #[arg(long)]
        logs: Option<PathBuf>,
    },
    /// Tear a lab down (with no name: the only lab that is up).
    Down {
        lab: Option<String>,
        /// Every lab, and any namespace or FRR pathspace named lmsx-*.
        #[arg(long)]
        all: bool,
    },
    /// Run a command inside a node (default: a shell).
    Exec {
        #[arg(short, long)]
        lab: Option<String>,
        node: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Run a vtysh command on a node (no command: interactive vtysh).
    Vtysh {
        #[arg(short, long)]
        lab: Option<String>,
        node: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Ping from a node (built-in ICMP echo; no `ping` binary needed).
    Ping {
        #[arg(short, long)]
        lab: Option<String>,
        node: String,
        dst: std::net::IpAddr,
        #[arg(short, long, default_value_t = 5)]
        count: u32,
        /// Seconds between requests.
        #[arg(short, long, default_value_t = 0.2)]
        interval: f64,
    },
    /// Nodes, links, processes, OSPF/BGP summaries, wire precision.
    Status {
        lab: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a topology file without bringing it up.
    Check { topology: PathBuf },
    /// (internal) run a user-space wire between two TAP devices.
    #[command(hide = true)]
    Wire {
        #[arg(long)]
        link: String,
        /// NETNS:IFNAME
        #[arg(long)]
        a: String,
        /// NETNS:IFNAME
        #[arg(long)]
        b: String,
        #[arg(long, default_value_t = 0)]
        delay_ns: u64,
        #[arg(long, default_value_t = 0)]
        jitter_ns: u64,
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        queue: usize,
        #[arg(long)]
        stats: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The lab a command is about: the one named, or the only one up.
fn pick_lab(name: Option<String>) -> Result<RunState> {
    let name = match name {
        Some(n) => n,
        None => {
            let labs = RunState::list();
            match labs.as_slice() {
                [] => bail!("no lab is up"),
                [one] => one.clone(),
                many => bail!("several labs are up ({}); name one", many.join(", ")),
            }
        }
    };
    RunState::load(&name)?.ok_or_else(|| anyhow!("lab `{name}` is not up"))
}

fn node_rec(st: &RunState, node: &str) -> Result<lab::state::NodeRec> {
    st.node(node).cloned().ok_or_else(|| {
        let known: Vec<&str> = st.nodes.iter().map(|n| n.name.as_str()).collect();
        anyhow!(
            "no node `{node}` in lab `{}` (nodes: {})",
            st.lab,
            known.join(", ")
        )
    })
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)
}

fn split_end(s: &str) -> Result<(String, String)> {
    let (ns, ifn) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("`{s}`: expected NETNS:IFNAME"))?;
    Ok((ns.to_string(), ifn.to_string()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Check { topology } => {
            let t = Topology::from_file(&topology)?;
            println!(
                "{}: lab `{}`, {} nodes, {} links ({} wires), {} LANs: ok",
                topology.display(),
                t.name,
                t.nodes.len(),
                t.links.len(),
                t.links.iter().filter(|l| l.impair.is_some()).count(),
                t.lans.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Up {
            topology,
            name,
            foreground,
            logs,
        } => {
            let mut t = Topology::from_file(&topology)?;
            if let Some(n) = name {
                t = t.with_name(&n)?;
            }
            let opts = UpOptions {
                wire_exe: if foreground {
                    None
                } else {
                    Some(std::env::current_exe().context("own executable")?)
                },
                log_dir: logs,
                // A person waits for an answer, not for another process.
                lock_timeout: Duration::from_secs(5),
                ..UpOptions::default()
            };
            let name = t.name.clone();
            let l = Lab::up_with(t, opts)?;
            if foreground {
                print!("{}", l.status());
                println!("lab {name} is up; Ctrl-C tears it down");
                loop {
                    std::thread::park();
                }
            }
            let st = l.detach()?;
            print!("{}", Status::collect(&st));
            println!(
                "lab {name} is up. Try: lab exec NODE ip addr | lab vtysh NODE show ip ospf neighbor | lab status | lab down {name}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Down { lab, all } => {
            let mut names: Vec<String> = if all {
                let mut v = RunState::list();
                let prefix = lab::netns::NS_PREFIX;
                let from_ns = lab::netns::ns_list().into_iter().chain(
                    std::fs::read_dir(lab::cleanup::FRR_RUN_DIR)
                        .map(|d| {
                            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                );
                for n in from_ns {
                    if let Some(rest) = n.strip_prefix(prefix)
                        && let Some((labname, _)) = rest.split_once('-')
                    {
                        v.push(labname.to_string());
                    }
                }
                v
            } else {
                match lab {
                    Some(l) => vec![l],
                    None if RunState::list().is_empty() => {
                        println!("no lab is up (`lab down --all` also sweeps strays)");
                        return Ok(ExitCode::SUCCESS);
                    }
                    None => vec![pick_lab(None)?.lab],
                }
            };
            names.sort();
            names.dedup();
            if names.is_empty() {
                println!("nothing to remove");
            }
            let mut ok = true;
            for n in names {
                if let Some(st) = RunState::load(&n)?
                    && let Some(o) = st.owner
                    && o.alive()
                {
                    eprintln!(
                        "lab {n}: its owner (pid {}) is still running; removing anyway",
                        o.pid
                    );
                }
                let r = lab::cleanup_lab(&n, true)?;
                let _ = std::fs::remove_file(lab::state::lock_path(&n));
                let _ = std::fs::remove_dir(lab::state::RUN_ROOT);
                println!("lab {n}: removed {} item(s)", r.removed.len());
                for p in &r.problems {
                    eprintln!("lab {n}: {p}");
                    ok = false;
                }
                let left = lab::leftovers(&n);
                if !left.is_empty() {
                    eprintln!("lab {n}: still there: {}", left.join(", "));
                    ok = false;
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Exec { lab, node, cmd } => {
            let st = pick_lab(lab)?;
            let n = node_rec(&st, &node)?;
            let cmd = if cmd.is_empty() {
                vec![std::env::var("SHELL").unwrap_or_else(|_| "bash".into())]
            } else {
                cmd
            };
            let status = Command::new("ip")
                .args(["netns", "exec", &n.netns])
                .args(&cmd)
                .env("LAB_NODE", &node)
                .status()
                .context("run ip netns exec")?;
            Ok(exit_code(status))
        }
        Cmd::Vtysh { lab, node, cmd } => {
            let st = pick_lab(lab)?;
            let n = node_rec(&st, &node)?;
            let mut c = Command::new("vtysh");
            c.args(["-N", &n.pathspace]);
            if cmd.is_empty() {
                return Ok(exit_code(c.status().context("run vtysh")?));
            }
            // vtysh complains about a missing per-pathspace vtysh.conf on
            // stderr; keep everything else.
            let out = c
                .args(["-c", &cmd.join(" ")])
                .stdin(std::process::Stdio::null())
                .output()
                .context("run vtysh")?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            for l in String::from_utf8_lossy(&out.stderr).lines() {
                if !l.contains("vtysh.conf") {
                    eprintln!("{l}");
                }
            }
            Ok(exit_code(out.status))
        }
        Cmd::Ping {
            lab,
            node,
            dst,
            count,
            interval,
        } => {
            let st = pick_lab(lab)?;
            let n = node_rec(&st, &node)?;
            let interval = Duration::from_secs_f64(interval.clamp(0.001, 60.0));
            let p = lab::ping::ping_in(&n.netns, dst, count, interval, Duration::from_secs(2))?;
            for (i, r) in p.rtts.iter().enumerate() {
                println!("reply {}: {:.3} ms", i + 1, r.as_secs_f64() * 1e3);
            }
            let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN);
            println!(
                "{node} -> {dst}: {} sent, {} received, rtt min/avg/max = {:.3}/{:.3}/{:.3} ms",
                p.sent,
                p.received,
                ms(p.min()),
                ms(p.avg()),
                ms(p.max())
            );
            Ok(if p.received > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Status { lab, json } => {
            let states: Vec<RunState> = match lab {
                Some(l) => vec![pick_lab(Some(l))?],
                None => RunState::list()
                    .into_iter()
                    .filter_map(|n| RunState::load(&n).ok().flatten())
                    .collect(),
            };
            if states.is_empty() && !json {
                println!("no lab is up");
            }
            let all: Vec<Status> = states.iter().map(Status::collect).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for s in &all {
                    print!("{s}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Wire {
            link,
            a,
            b,
            delay_ns,
            jitter_ns,
            loss,
            seed,
            queue,
            stats,
        } => {
            let (a_ns, a_if) = split_end(&a)?;
            let (b_ns, b_if) = split_end(&b)?;
            lab::wire::run_forever(WireSpec {
                link,
                a_ns,
                a_if,
                b_ns,
                b_if,
                delay: Duration::from_nanos(delay_ns),
                jitter: Duration::from_nanos(jitter_ns),
                loss,
                seed,
                queue,
                stats_path: stats,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
