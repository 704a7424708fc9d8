//! lispctl against the real API server over a real Unix socket, with a fake
//! reactor answering canned replies. This checks the plumbing (socket,
//! gRPC, parsing, rendering, exit codes), not protocol behaviour.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lisp_agent::api::{Request, Response};
use lisp_agent::control::handle::{self, Input};
use lisp_msx_proto::api;

fn map_cache() -> api::ShowMapCacheReply {
    api::ShowMapCacheReply {
        total: 1,
        entries: vec![api::MapCacheEntry {
            mapping: Some(api::MappingRecord {
                eid_prefix: "192.0.2.0/26".into(),
                ttl_minutes: 1440,
                locators: vec![api::Locator {
                    address: "203.0.113.1".into(),
                    priority: 1,
                    weight: 100,
                    state: "up".into(),
                    uptime_secs: 62,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            uptime_secs: 62,
            expires_in_secs: 86_338,
            source: "map-reply".into(),
            ..Default::default()
        }],
    }
}

fn answer(request: Request) -> Response {
    match request {
        Request::ShowMapCache(r) if r.eid.is_empty() => Response::MapCache(map_cache()),
        Request::ShowMapCache(_) => Response::MapCache(api::ShowMapCacheReply {
            total: 1,
            entries: vec![],
        }),
        Request::ShowStatistics => Response::Statistics(api::ShowStatisticsReply {
            counters: [("map-request.rx".to_string(), 7)].into_iter().collect(),
            uptime_secs: 61,
        }),
        Request::ShowSites(_) => Response::Error("the Map-Server role is not enabled".into()),
        Request::Lig(r) => Response::Lig(api::LigReply {
            resolved: r.eid != "10.9.9.9",
            mapping: map_cache().entries[0].mapping.clone(),
            rtt_us: 1_500,
            map_resolver: if r.via.is_empty() {
                "192.0.2.1".into()
            } else {
                r.via
            },
            error: "timeout".into(),
            ..Default::default()
        }),
        Request::WatchEvents(tx) => {
            for i in 0..3 {
                let _ = tx.try_send(api::Event {
                    unix_ms: i,
                    kind: "registration".into(),
                    ..Default::default()
                });
            }
            Response::Watching
        }
        // Wrong variant on purpose: the server must report it, not panic.
        Request::ShowDatabase => Response::Watching,
        _ => Response::Error("not in this test".into()),
    }
}

/// The API server on a temporary socket plus a thread playing the reactor.
struct FakeAgent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl FakeAgent {
    fn start() -> Self {
        Self::start_with(true)
    }

    /// `reactor: false` drops the reactor's inbox: every call finds it gone.
    fn start_with(reactor: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/agent.sock");
        let (h, inbox) = handle::channel().unwrap();
        if reactor {
            std::thread::spawn(move || {
                for input in inbox.rx {
                    if let Input::Call(call) = input {
                        let _ = call.reply.send(answer(call.request));
                    }
                }
            });
        } else {
            drop(inbox);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let path = socket.clone();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(lisp_agent::api::server::serve(h, &path, None, async {
                let _ = stopped.await;
            }))
        });
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            assert!(!server.is_finished(), "server exited early");
            std::thread::sleep(Duration::from_millis(10));
        }
        FakeAgent {
            _dir: dir,
            socket,
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(t) => t.join().unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn lispctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lispctl"))
        .arg("-s")
        .arg(socket)
        .args(args)
        .env_remove("LISPCTL_SOCKET")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn socket_is_private_and_removed_on_shutdown() {
    let mut agent = FakeAgent::start();
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    agent.stop().unwrap();
    assert!(!agent.socket.exists());
}

#[test]
fn map_cache_json_is_the_reply() {
    let agent = FakeAgent::start();
    let out = lispctl(&agent.socket, &["show", "lisp", "map-cache", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: api::ShowMapCacheReply = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, map_cache());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["entries"][0]["mapping"]["locators"][0]["address"],
        "203.0.113.1"
    );
}

#[test]
fn map_cache_human_with_abbreviations() {
    let agent = FakeAgent::start();
    let out = lispctl(&agent.socket, &["sh", "li", "ma"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
LISP IPv4 Mapping Cache for EID-table default (IID 0), 1 entry

192.0.2.0/26, uptime: 00:01:02, expires: 23:58:58, via map-reply
  Locator        Uptime    State  Pri/Wgt
  203.0.113.1    00:01:02  up       1/100
"
    );
    let out = lispctl(&agent.socket, &["sh", "li", "ma", "10.1.1.1"]);
    assert_eq!(
        stdout(&out),
        "No matching map-cache entry (1 entry in the cache)\n"
    );
}

#[test]
fn statistics_and_lig() {
    let agent = FakeAgent::start();
    let out = lispctl(&agent.socket, &["show", "lisp", "statistics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("LISP control plane statistics, uptime 00:01:01\n"));
    assert!(stdout(&out).contains("\nmap-request\n  rx "));

    let out = lispctl(&agent.socket, &["lig", "192.0.2.7", "via", "192.0.2.2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "Mapping information for EID 192.0.2.7 from 192.0.2.2 with RTT 1.5 msecs\n"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("  203.0.113.1 "));

    // An unanswered lig fails like a failed ping.
    let out = lispctl(&agent.socket, &["lig", "10.9.9.9"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "% No mapping for EID 10.9.9.9 from 192.0.2.1: timeout\n"
    );
}

#[test]
fn agent_errors_exit_1() {
    let agent = FakeAgent::start();
    let out = lispctl(&agent.socket, &["show", "lisp", "site"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "% the Map-Server role is not enabled\n");

    let out = lispctl(&agent.socket, &["show", "lisp", "database"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ShowDatabase"), "{}", stderr(&out));
}

#[test]
fn unknown_command_exit_1_with_suggestions() {
    let agent = FakeAgent::start();
    let out = lispctl(&agent.socket, &["show", "lisp", "map-cahce"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "% Unknown command \"map-cahce\" after \"show lisp\"; did you mean: map-cache?\n"
    );
    let out = lispctl(&agent.socket, &["sh", "li", "s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Ambiguous"));
}

#[test]
fn unreachable_agent_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let out = lispctl(&socket, &["show", "lisp", "map-cache"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "% is lisp-agent running? socket {} not found\n",
            socket.display()
        )
    );
    // help needs no agent.
    let out = lispctl(&socket, &["?"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("show lisp map-cache [EID] [detail] [json]"));
}

#[test]
fn stopped_reactor_exit_2() {
    let agent = FakeAgent::start_with(false);
    let out = lispctl(&agent.socket, &["show", "lisp", "statistics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("% lisp-agent unavailable: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn interactive_prompt_and_env_socket() {
    let agent = FakeAgent::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lispctl"))
        .env("LISPCTL_SOCKET", &agent.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"sh li st\n\nshow bogus\nexit\nsh li ma\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.starts_with("lisp# LISP control plane statistics"),
        "{text}"
    );
    // Stops at `exit`: the map-cache command after it never runs.
    assert!(!text.contains("Mapping Cache"), "{text}");
    assert_eq!(text.matches("lisp# ").count(), 4, "{text}");
    assert!(stderr(&out).contains("% Unknown command \"bogus\""));
}

#[test]
fn watch_streams_events() {
    let agent = FakeAgent::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = lisp_msx_proto::grpc::connect(&agent.socket).await.unwrap();
        let mut stream = client
            .watch_events(api::WatchRequest {
                client: "test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        for i in 0..3 {
            let ev = stream.message().await.unwrap().unwrap();
            assert_eq!(ev.unix_ms, i);
        }
    });
}
