//! lispctl: the operator's CLI, vtysh style, over the agent API.
//!
//! [`parse`] turns words into a [`parse::Command`], the agent answers with
//! typed state, [`render`] lays it out like IOS-XE (or `json` prints the
//! reply itself). lispctl holds no LISP logic.
//!
//! Exit codes: 0 success, 1 the command failed or was not understood,
//! 2 the agent could not be reached.

pub mod parse;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lisp_msx_proto::api;
use lisp_msx_proto::grpc::{self, AgentClient};
use tonic::transport::Channel;

use parse::{Command, Parsed};

pub const DEFAULT_SOCKET: &str = "/run/lisp-msx/agent.sock";
/// Environment variable naming the socket when `-s` is not given.
pub const SOCKET_ENV: &str = "LISPCTL_SOCKET";
pub const PROMPT: &str = "lisp# ";

/// A hung agent must not hang the operator's shell; lig's own timeout
/// is far below this.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(
    name = "lispctl",
    version,
    about = "vtysh-style CLI of lisp-agent",
    after_help = "Without a command, lispctl reads commands from a `lisp# ` prompt. Type `?` for the command list."
)]
struct Args {
    /// Agent API socket [default: $LISPCTL_SOCKET, else /run/lisp-msx/agent.sock]
    #[arg(short, long, value_name = "SOCKET")]
    socket: Option<PathBuf>,
    /// The command, e.g. `show lisp map-cache` or `sh li ma json`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Why a command produced no normal output.
#[derive(Debug)]
pub enum Failure {
    /// Not understood, refused by the agent, or failed (exit code 1).
    Command(String),
    /// The agent is not there (exit code 2).
    Unreachable(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Command(_) => 1,
            Failure::Unreachable(_) => 2,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Command(m) | Failure::Unreachable(m) => m,
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::Unavailable => {
                Failure::Unreachable(format!("% lisp-agent unavailable: {}", s.message()))
            }
            _ => Failure::Command(format!("% {}", s.message())),
        }
    }
}

/// A connection to the agent, opened on first use so that `help` works
/// without a running agent.
pub struct Session {
    socket: PathBuf,
    client: Option<AgentClient<Channel>>,
}

impl Session {
    pub fn new(socket: PathBuf) -> Self {
        Session {
            socket,
            client: None,
        }
    }

    async fn client(&mut self) -> Result<AgentClient<Channel>, Failure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = grpc::connect(&self.socket)
            .await
            .map_err(|e| Failure::Unreachable(format!("% {e}")))?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Runs a parsed command and returns what to print.
    pub async fn execute(&mut self, parsed: &Parsed) -> Result<String, Failure> {
        let result = tokio::time::timeout(RPC_TIMEOUT, self.call(parsed))
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Unreachable(format!(
                    "% no answer from lisp-agent within {} s",
                    RPC_TIMEOUT.as_secs()
                )))
            });
        if let Err(Failure::Unreachable(_)) = result {
            // Start afresh next time (interactive mode): the agent may be back.
            self.client = None;
        }
        result
    }

    async fn call(&mut self, parsed: &Parsed) -> Result<String, Failure> {
        use render::*;
        let json = parsed.json;
        if let Command::Help(lines) = &parsed.command {
            return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
        }
        let mut c = self.client().await?;
        let out = match &parsed.command {
            Command::Help(_) => unreachable!("answered above"),
            Command::ShowSites { name, detail } => {
                let req = api::ShowSitesRequest {
                    name: name.clone().unwrap_or_default(),
                    detail: *detail,
                };
                let r = c.show_sites(req).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_sites(&r, *detail)
                }
            }
            Command::ShowMapCache { eid, detail } => {
                let req = api::ShowMapCacheRequest {
                    eid: eid.clone().unwrap_or_default(),
                    detail: *detail,
                    instance_id: 0,
                };
                let r = c.show_map_cache(req).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_map_cache(&r, *detail)
                }
            }
            Command::ShowDatabase => {
                let r = c.show_database(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_database(&r)
                }
            }
            Command::ShowMapResolver => {
                let r = c.show_map_resolver(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_map_resolver(&r)
                }
            }
            Command::ShowReferralCache => {
                let r = c.show_referral_cache(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_referral_cache(&r)
                }
            }
            Command::ShowStatistics => {
                let r = c.show_statistics(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_statistics(&r)
                }
            }
            Command::ShowDiscovery => {
                let r = c.show_discovery(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_discovery(&r)
                }
            }
            Command::ShowMsx(what) => {
                let req = api::ShowMsxRequest {
                    what: what.as_str().to_string(),
                };
                let r = c.show_msx(req).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_msx(&r, *what)
                }
            }
            Command::ShowSync => {
                let r = c.show_sync(api::Empty {}).await?.into_inner();
                if json { to_json(&r) } else { render_sync(&r) }
            }
            Command::ShowDataPlane => {
                let r = c.show_data_plane(api::Empty {}).await?.into_inner();
                if json {
                    to_json(&r)
                } else {
                    render_data_plane(&r)
                }
            }
            Command::ClearMapCache { prefix } => {
                let req = api::ClearMapCacheRequest {
                    prefix: prefix.clone().unwrap_or_default(),
                };
                let r = c.clear_map_cache(req).await?.into_inner();
                if json { to_json(&r) } else { render_clear(&r) }
            }
            Command::Lig { eid, via } => {
                let req = api::LigRequest {
                    eid: eid.clone(),
                    via: via.clone().unwrap_or_default(),
                    timeout_ms: 0,
                    instance_id: 0,
                };
                let r = c.lig(req).await?.into_inner();
                let text = if json {
                    to_json(&r)
                } else {
                    render_lig(eid, &r)
                };
                if !r.resolved {
                    return Err(Failure::Command(text));
                }
                text
            }
        };
        Ok(out)
    }
}

/// Pretty JSON of an API reply. Map keys come out sorted, so the output of
/// the same state is byte-for-byte stable.
pub fn to_json<T: serde::Serialize>(reply: &T) -> String {
    let value = serde_json::to_value(reply).unwrap_or(serde_json::Value::Null);
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

/// lispctl's `main`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let socket = args
        .socket
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("% cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let mut session = Session::new(socket);
    if args.command.is_empty() {
        interactive(&rt, &mut session);
        return ExitCode::SUCCESS;
    }
    let line = args.command.join(" ");
    ExitCode::from(run_line(&rt, &mut session, &line))
}

/// Parses and runs one line, printing the result; returns the exit code.
fn run_line(rt: &tokio::runtime::Runtime, session: &mut Session, line: &str) -> u8 {
    let parsed = match parse::parse_line(line) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match rt.block_on(session.execute(&parsed)) {
        Ok(text) => {
            print!("{text}");
            let _ = std::io::stdout().flush();
            0
        }
        Err(f) => {
            let msg = f.message();
            eprint!("{msg}");
            if !msg.ends_with('\n') {
                eprintln!();
            }
            f.exit_code()
        }
    }
}

/// The `lisp# ` prompt: one command per line until `exit`, `quit` or EOF.
fn interactive(rt: &tokio::runtime::Runtime, session: &mut Session) {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut line = String::new();
    loop {
        print!("{PROMPT}");
        let _ = std::io::stdout().flush();
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                if tty {
                    println!();
                }
                return;
            }
            Ok(_) => {}
        }
        let cmd = line.trim();
        match cmd {
            "" => continue,
            "exit" | "quit" => return,
            _ => {
                run_line(rt, session, cmd);
            }
        }
    }
}
