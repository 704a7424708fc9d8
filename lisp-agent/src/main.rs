//! lisp-agent: starts the control-plane reactor on its own thread and the
//! API, metrics and signal handling on a small tokio runtime.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use lisp_agent::config::Config;
use lisp_agent::control::handle::{self, Input};
use lisp_agent::control::io::ControlSocket;
use lisp_agent::control::reactor::Reactor;
use lisp_agent::stats::Stats;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "lisp-agent",
    version,
    about = "LISP control plane: Map-Server, Map-Resolver, DDT node, xTR"
)]
struct Args {
    /// Configuration file (TOML).
    #[arg(
        short = 'f',
        long = "config",
        default_value = "/etc/lisp-msx/agent.toml"
    )]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LISP_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lisp-agent: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // The TLS files are part of the configuration: a bad one is named now,
    // and what is loaded here is what the transport uses.
    let tls = match cfg.msx.as_ref().and_then(|m| m.tls.as_ref()) {
        Some(t) => match lisp_agent::msx::transport::Tls::load(t) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!(
                    "lisp-agent: configuration error: {}: {e}",
                    args.config.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if args.check {
        println!("{}: configuration OK", args.config.display());
        return ExitCode::SUCCESS;
    }
    init_logging(&cfg.agent.log_format);
    match run(cfg, args.config, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("lisp-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(
    cfg: Config,
    path: PathBuf,
    tls: Option<lisp_agent::msx::transport::Tls>,
) -> anyhow::Result<()> {
    let mut socks = Vec::new();
    for addr in &cfg.agent.listen {
        let s = ControlSocket::bind(*addr, cfg.agent.control_port).map_err(|e| {
            anyhow::anyhow!(
                "cannot bind UDP {addr}:{} (agent.listen): {e}",
                cfg.agent.control_port
            )
        })?;
        socks.push(s);
    }
    let stats = Arc::new(Stats::default());
    let (handle, inbox) = handle::channel()?;
    let api_socket = cfg.agent.api_socket.clone();
    let api_group = cfg.agent.api_group.clone();
    let metrics = cfg.agent.metrics_listen;
    // LISP-MSX: agreements from disk (a corrupt file stops the start, naming it),
    // and the channel to the CPNP transport.
    let mut msx_transport = None;
    let msx = match (
        &cfg.msx,
        cfg.agreements_path(),
        cfg.map_server.as_ref().and_then(|m| m.contact),
    ) {
        (Some(m), Some(path), Some(contact)) => {
            let persisted = lisp_agent::msx::negotiation::load_agreements(&path)
                .map_err(|e| anyhow::anyhow!("cannot read the LISP-MSX agreements: {e}"))?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
            msx_transport = Some((
                contact,
                m.cpnp_port,
                m.psk.clone().into_bytes(),
                tls,
                rx,
                jobs_rx,
            ));
            Some((tx, persisted, Some(jobs_tx)))
        }
        _ => None,
    };
    let ext_codepoints = cfg.agent.extensions;
    let first_listen = cfg
        .agent
        .listen
        .iter()
        .copied()
        .find(|a| !a.is_unspecified());
    let bulk_for_itrs = cfg
        .map_server
        .as_ref()
        .filter(|m| !m.bulk_clients.is_empty())
        .and_then(|m| m.contact.or(first_listen));
    let preprovision = cfg
        .data_plane
        .as_ref()
        .and_then(|d| d.preprovision.clone())
        .map(|p| (first_listen.unwrap_or(p.map_server), p));
    let reactor_stats = stats.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // Map-cache synchronization: the transport runs on tokio and reports to
    // the reactor, which owns the engine.
    let sync_out = match &cfg.sync {
        Some(sy) => {
            let tls = match &sy.tls {
                Some(t) => Some(
                    lisp_agent::msx::transport::Tls::load_section(t, "sync.tls")
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                ),
                None => None,
            };
            let h = handle.clone();
            let deliver: lisp_agent::sync::transport::Deliver = Arc::new(move |ev| {
                let _ = h.send(Input::Sync(ev));
            });
            let _rt = rt.enter();
            Some(lisp_agent::sync::transport::spawn(
                sy,
                tls,
                stats.clone(),
                deliver,
            )?)
        }
        None => None,
    };
    // Built on its own thread: the batched-I/O headers are not Send. The
    // data plane (TUN device, UDP 4341) starts there too; a failure stops the start.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let control = std::thread::Builder::new()
        .name("lisp-control".into())
        .spawn(move || {
            let dp = match &cfg.data_plane {
                Some(d) => match lisp_agent::dataplane::DataPlane::start(
                    d,
                    &cfg.agent.listen,
                    reactor_stats.clone(),
                ) {
                    Ok(dp) => Some(dp),
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                },
                None => None,
            };
            let _ = started_tx.send(Ok(()));
            Reactor::new(cfg, socks, inbox, reactor_stats, msx, dp, sync_out).run()
        })?;
    started_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the control thread stopped while starting"))??;

    let result = rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let api = {
            let (h, stop) = (handle.clone(), wait_stop(stop_rx.clone()));
            tokio::spawn(async move { lisp_agent::api::server::serve(h, &api_socket, api_group.as_deref(), stop).await })
        };
        let cp = ext_codepoints;
        let cpnp_task = msx_transport.map(|(local, port, psk, tls, rx, jobs)| {
            tokio::spawn(lisp_agent::msx::bulk::run_fetcher(handle.clone(), local, cp, jobs));
            tokio::spawn(lisp_agent::msx::bulk::serve(handle.clone(), local, cp, wait_stop(stop_rx.clone())));
            tokio::spawn(lisp_agent::msx::transport::run(handle.clone(), local, port, psk, tls, rx, stats.clone(), wait_stop(stop_rx.clone())))
        });
        // Map-Bulk for site ITRs pre-provisioning (LISP-MSX serves it already).
        if cpnp_task.is_none()
            && let Some(local) = bulk_for_itrs
        {
            tokio::spawn(lisp_agent::msx::bulk::serve(handle.clone(), local, cp, wait_stop(stop_rx.clone())));
        }
        if let Some((local, p)) = preprovision {
            tokio::spawn(preprovision_loop(handle.clone(), local, p, cp));
        }
        let metrics_task = metrics.map(|addr| tokio::spawn(lisp_agent::metrics::serve(addr, stats.clone(), wait_stop(stop_rx.clone()))));
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = hup.recv() => match Config::load(&path) {
                    Ok(new) => {
                        info!("SIGHUP: reloading {}", path.display());
                        let _ = handle.send(Input::Reload(Box::new(new)));
                    }
                    // A bad file keeps the running configuration.
                    Err(e) => warn!("SIGHUP: configuration error, keeping the running configuration: {e}"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = handle.send(Input::Shutdown);
        if let Ok(Err(e)) = api.await {
            warn!("API server: {e:#}");
        }
        if let Some(m) = metrics_task
            && let Ok(Err(e)) = m.await
        {
            warn!("metrics server: {e:#}");
        }
        if let Some(c) = cpnp_task
            && let Ok(Err(e)) = c.await
        {
            warn!("CPNP: {e:#}");
        }
        anyhow::Ok(())
    });
    let _ = control.join();
    result
}

/// Pre-provisioning: copies the Map-Server's mappings (Map-Bulk with the
/// configured filters) into the map-cache at start and every `refresh_secs`;
/// a failed copy is retried after 1 s, doubling up to the refresh interval.
async fn preprovision_loop(
    handle: lisp_agent::control::handle::ReactorHandle,
    local: std::net::IpAddr,
    cfg: lisp_agent::dataplane::PreprovisionConfig,
    cp: lisp_msx_proto::msx::ExtCodepoints,
) {
    let filters: Vec<_> = cfg
        .filters
        .iter()
        .filter_map(|f| lisp_msx_proto::msx::Filter::parse(f).ok())
        .collect();
    let refresh = std::time::Duration::from_secs(cfg.refresh_secs);
    let mut retry = std::time::Duration::from_secs(1);
    loop {
        let wait = match lisp_agent::msx::bulk::fetch(local, cfg.map_server, filters.clone(), cp)
            .await
        {
            Ok(records) => {
                info!(map_server = %cfg.map_server, records = records.len(), "pre-provisioned the map-cache (Map-Bulk)");
                if handle.send(Input::Preprovision(records)).is_err() {
                    return;
                }
                retry = std::time::Duration::from_secs(1);
                refresh
            }
            Err(e) => {
                warn!(map_server = %cfg.map_server, "pre-provisioning: Map-Bulk failed: {e}");
                let w = retry;
                retry = (retry * 2).min(refresh);
                w
            }
        };
        tokio::time::sleep(wait).await;
    }
}
