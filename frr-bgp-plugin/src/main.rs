use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use frr_bgp_plugin::config::Config;
use frr_bgp_plugin::daemon::{Control, Daemon};
use frr_bgp_plugin::frrconf::{EbgpPolicy, SnippetOptions, snippet};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "frr-bgp-plugin",
    version,
    about = "Announce and discover LISP mapping systems between domains through FRR bgpd (MS-target extended community) and zebra"
)]
struct Args {
    #[arg(short = 'f', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    tool: Option<Tool>,
}

#[derive(clap::Subcommand)]
enum Tool {
    /// Print the bgpd/zebra configuration lines the plugin needs.
    PrintFrrConfig {
        /// eBGP neighbors of this bgpd towards other domains (repeatable).
        #[arg(long = "ebgp-neighbor")]
        ebgp_neighbors: Vec<IpAddr>,
        /// iBGP neighbors that should get the prefixes with bgpd as next hop.
        #[arg(long = "ibgp-neighbor")]
        ibgp_neighbors: Vec<IpAddr>,
        /// How to satisfy `bgp ebgp-requires-policy`: route-maps (permit-all
        /// maps on the eBGP neighbors), disable (`no bgp ebgp-requires-policy`),
        /// keep (your own policies permit the EID prefixes).
        #[arg(long, default_value = "route-maps")]
        ebgp_policy: String,
        /// Leave out the static discard routes for the next hops.
        #[arg(long)]
        no_discard_routes: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("frr-bgp-plugin: configuration error: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            eprintln!("frr-bgp-plugin: -f CONFIG is required (see README for the keys)");
            return ExitCode::from(2);
        }
    };
    if let Some(Tool::PrintFrrConfig {
        ebgp_neighbors,
        ibgp_neighbors,
        ebgp_policy,
        no_discard_routes,
    }) = args.tool
    {
        let policy = match ebgp_policy.as_str() {
            "route-maps" => EbgpPolicy::RouteMaps,
            "disable" => EbgpPolicy::Disable,
            "keep" => EbgpPolicy::Keep,
            other => {
                eprintln!(
                    "frr-bgp-plugin: --ebgp-policy {other}: want route-maps, disable or keep"
                );
                return ExitCode::from(2);
            }
        };
        print!(
            "{}",
            snippet(
                &cfg,
                &SnippetOptions {
                    ebgp_neighbors,
                    ibgp_neighbors,
                    ebgp_policy: policy,
                    discard_routes: !no_discard_routes,
                }
            )
        );
        return ExitCode::SUCCESS;
    }
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRR_BGP_PLUGIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if cfg.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("frr-bgp-plugin: {e}");
            return ExitCode::from(1);
        }
    };
    let path = args.config.clone();
    rt.block_on(async move {
        let (ctl_tx, ctl_rx) = tokio::sync::mpsc::channel(8);
        let daemon = tokio::spawn(Daemon::new(cfg).run(ctl_rx));
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup())) else {
            return ExitCode::from(1);
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    let Some(p) = &path else { continue };
                    match Config::load(p) {
                        Ok(c) => {
                            let _ = ctl_tx.send(Control::Reload(Box::new(c))).await;
                        }
                        Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
                    }
                }
            }
        }
        let _ = ctl_tx.send(Control::Stop).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), daemon).await;
        ExitCode::SUCCESS
    })
}
