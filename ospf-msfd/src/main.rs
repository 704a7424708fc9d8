use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ospf_msfd::config::Config;
use ospf_msfd::daemon::Daemon;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "ospf-msfd",
    version,
    about = "Advertise and learn LISP mapping functions in OSPF (MSFD TLV) through FRR's OSPF API"
)]
struct Args {
    #[arg(short = 'f', long = "config")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    tool: Option<Tool>,
}

#[derive(clap::Subcommand)]
enum Tool {
    /// Interop/diagnostics: originate an RI LSA with an arbitrary body (hex)
    /// through ospfd, hold it for a while, then withdraw it.
    OriginateRaw {
        #[arg(long, default_value = "127.0.0.1:2607")]
        ospfd: std::net::SocketAddr,
        #[arg(long, default_value_t = 2)]
        opaque_id: u32,
        #[arg(long, default_value = "0.0.0.0")]
        area: std::net::Ipv4Addr,
        /// The LSA body (RI TLVs), hex.
        #[arg(long)]
        body_hex: String,
        #[arg(long, default_value_t = 10)]
        hold_secs: u64,
    },
}

async fn originate_raw(
    ospfd: std::net::SocketAddr,
    opaque_id: u32,
    area: std::net::Ipv4Addr,
    body_hex: &str,
    hold: u64,
) -> anyhow::Result<()> {
    use lisp_msx_proto::ospf::lsa::{OPAQUE_TYPE_RI, OpaqueLsa};
    let body = (0..body_hex.len())
        .step_by(2)
        .map(|i| {
            body_hex
                .get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| anyhow::anyhow!("--body-hex is not hex"))?;
    let (mut api, _notes) = ospf_msfd::api_client::OspfApi::connect(ospfd, 0).await?;
    api.register_opaque_type(10, OPAQUE_TYPE_RI).await?;
    api.originate(
        area,
        OpaqueLsa::new(
            10,
            OPAQUE_TYPE_RI,
            opaque_id,
            std::net::Ipv4Addr::UNSPECIFIED,
            body,
        ),
    )
    .await?;
    println!("originated RI LSA instance {opaque_id}; holding {hold} s");
    tokio::time::sleep(std::time::Duration::from_secs(hold)).await;
    api.delete(area, 10, OPAQUE_TYPE_RI, opaque_id).await?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ospf-msfd: configuration error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    if let Some(Tool::OriginateRaw {
        ospfd,
        opaque_id,
        area,
        body_hex,
        hold_secs,
    }) = &args.tool
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        return match rt.block_on(originate_raw(
            *ospfd, *opaque_id, *area, body_hex, *hold_secs,
        )) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ospf-msfd: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("OSPF_MSFD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
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
            eprintln!("ospf-msfd: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let daemon = tokio::spawn(Daemon::new(cfg).run(stop_rx));
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return ExitCode::from(1);
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), daemon).await;
        ExitCode::SUCCESS
    })
}
