//! The plugin binary against a raw BGP test peer built from this crate's own
//! codec, standing in for bgpd: malformed UPDATEs (RFC 7606), route refresh,
//! session reset and reconnect, and the exact UPDATE the plugin originates.
//! A real lisp-agent receives what the plugin learns. No root needed; the
//! lisp-agent binary must be built (`cargo build -p lisp-agent`).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use frr_bgp_plugin::bgp::msg::{Message, Open, split_frame};
use frr_bgp_plugin::bgp::prefix::{Family, Prefix};
use frr_bgp_plugin::bgp::update::{
    ATTR_EXT_COMMUNITIES, ATTR_MP_REACH, AsPath, Ctx, FLAG_OPTIONAL, FLAG_TRANSITIVE, PathAttrs,
    decode_update, encode_attr, encode_attrs, update_body,
};
use lisp_msx_proto::bgp::{MsTarget, MsTargetCodepoint};

const PEER_AS: u32 = 65009;

/// A child process killed when the test ends, however it ends.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- {} ----\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

fn spawn(bin: &Path, cfg: &Path, log: PathBuf, env: (&str, &str)) -> Proc {
    let f = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .arg("-f")
        .arg(cfg)
        .env(env.0, env.1)
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .unwrap();
    Proc { child, log }
}

/// The test peer's side of one connection: a reader thread hands over every
/// message; writes go through a lock (a keepalive thread writes too).
struct Session {
    tx: Arc<Mutex<TcpStream>>,
    rx: mpsc::Receiver<Message>,
    closed: Arc<Mutex<bool>>,
}

impl Session {
    fn send(&self, m: &Message) {
        self.tx
            .lock()
            .unwrap()
            .write_all(&m.encode())
            .expect("write to the plugin");
    }

    fn send_update(&self, body: Vec<u8>) {
        self.send(&Message::Update(body));
    }

    /// Next message that is not a KEEPALIVE.
    fn next(&self, what: &str) -> Message {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Message::Keepalive) => continue,
                Ok(m) => return m,
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// The End-of-RIB markers of `n` families.
    fn end_of_rib(&self, n: usize) {
        for i in 0..n {
            let Message::Update(b) = self.next("End-of-RIB") else {
                panic!("expected End-of-RIB {i}")
            };
            assert!(
                decode_update(&b, &Ctx::default()).unwrap().is_end_of_rib(),
                "End-of-RIB {i}"
            );
        }
    }

    /// Waits for `n` KEEPALIVEs and nothing else; proves the session lives.
    fn keepalives(&self, n: usize) {
        let deadline = Instant::now() + T;
        let mut seen = 0;
        while seen < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Message::Keepalive) => seen += 1,
                Ok(m) => panic!("expected only KEEPALIVEs, got {m:?}"),
                Err(_) => panic!(
                    "session died after {seen} keepalives (closed: {})",
                    self.closed.lock().unwrap()
                ),
            }
        }
    }
}

/// Accepts the plugin's connection and plays bgpd up to Established.
/// Returns the session and the plugin's OPEN.
fn establish(listener: &TcpListener) -> (Session, Open) {
    listener.set_nonblocking(false).unwrap();
    let (stream, peer) = listener.accept().expect("the plugin connects");
    assert_eq!(
        peer.ip(),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        "the plugin connects from its local_address"
    );
    establish_on(stream)
}

/// Plays bgpd on an open connection up to Established.
fn establish_on(stream: TcpStream) -> (Session, Open) {
    stream.set_nodelay(true).unwrap();
    let reader = stream.try_clone().unwrap();
    let tx = Arc::new(Mutex::new(stream));
    let closed = Arc::new(Mutex::new(false));
    let (mtx, rx) = mpsc::channel();
    {
        let closed = closed.clone();
        thread::spawn(move || read_loop(reader, mtx, closed));
    }
    {
        // bgpd's keepalives (hold time 3 s): one a second until the socket dies.
        let tx = tx.clone();
        thread::spawn(move || {
            loop {
                thread::sleep(Duration::from_secs(1));
                if tx
                    .lock()
                    .unwrap()
                    .write_all(&Message::Keepalive.encode())
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    let s = Session { tx, rx, closed };
    let Message::Open(theirs) = s.next("the plugin's OPEN") else {
        panic!("first message is not an OPEN")
    };
    s.send(&Message::Open(Open::new(
        PEER_AS,
        3,
        Ipv4Addr::new(192, 0, 2, 99),
        &[Family::Ipv4Unicast, Family::Ipv6Unicast],
    )));
    s.send(&Message::Keepalive);
    // The plugin's KEEPALIVE (OpenConfirm -> Established) is skipped by next().
    (s, theirs)
}

fn read_loop(mut s: TcpStream, tx: mpsc::Sender<Message>, closed: Arc<Mutex<bool>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Ok(Some(n)) = split_frame(&buf) {
            let frame: Vec<u8> = buf.drain(..n).collect();
            let m = Message::decode(&frame).expect("the plugin sends well-formed messages");
            if tx.send(m).is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                *closed.lock().unwrap() = true;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    agent_sock: PathBuf,
    agent_cfg: PathBuf,
    plugin_cfg: PathBuf,
    listener: TcpListener,
    agent: Proc,
    plugin: Proc,
}

/// A lisp-agent (Map-Resolver, on `agent_addr`) and the plugin, pointed at a
/// listener standing in for bgpd. The plugin originates 198.51.100.128/25.
fn setup(agent_addr: &str) -> Setup {
    setup_with(agent_addr, "")
}

fn setup_with(agent_addr: &str, extra_bgp: &str) -> Setup {
    let dir = tempdir();
    let d = dir.path();
    let agent_sock = d.join("agent.sock");
    let agent_cfg = d.join("agent.toml");
    std::fs::write(&agent_cfg, format!("[agent]\nname = \"a\"\nlisten = [\"{agent_addr}\"]\napi_socket = \"{}\"\n[map_resolver]\n", agent_sock.display())).unwrap();
    let agent = spawn(
        &workspace_bin("lisp-agent"),
        &agent_cfg,
        d.join("agent.log"),
        ("LISP_AGENT_LOG", "info"),
    );
    lab::wait_until("lisp-agent answering", T, || {
        let (code, out) = lispctl(&agent_sock, "show lisp statistics");
        if code == 0 { Ok(()) } else { Err(out) }
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = d.join("plugin.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"agent_socket = "{}"
[bgp]
local_as = {PEER_AS}
bgpd_address = "127.0.0.1"
bgpd_port = {port}
hold_time_secs = 3
connect_retry_secs = 1
next_hop_v4 = "192.0.2.254"
{extra_bgp}
[[originate.prefix]]
prefix = "198.51.100.128/25"
contact = "192.0.2.77"
ms_id = 3
[zebra]
enabled = false
"#,
            agent_sock.display()
        ),
    )
    .unwrap();
    let plugin = spawn(
        &plugin_bin(),
        &cfg,
        d.join("plugin.log"),
        ("FRR_BGP_PLUGIN_LOG", "debug"),
    );
    Setup {
        _dir: dir,
        agent_sock,
        agent_cfg,
        plugin_cfg: cfg,
        listener,
        agent,
        plugin,
    }
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn ec(contact: &str, id: u16) -> Vec<u8> {
    MsTarget::new(contact.parse::<IpAddr>().unwrap(), id).to_bytes(&MsTargetCodepoint::default())
}

/// An UPDATE from "bgpd": `prefix` learned over eBGP from AS65001, with the
/// extended communities attribute value `ext` (raw, possibly malformed).
fn learned_update(prefix: &str, ext: &[u8]) -> Vec<u8> {
    let a = PathAttrs {
        as_path: AsPath::sequence(&[65001]),
        next_hop: Some("192.0.2.1".parse().unwrap()),
        local_pref: Some(100),
        ..Default::default()
    };
    let mut raw = encode_attrs(&a, Family::Ipv4Unicast, &[], &Ctx::default());
    encode_attr(
        FLAG_OPTIONAL | FLAG_TRANSITIVE,
        ATTR_EXT_COMMUNITIES,
        ext,
        &mut raw,
    );
    update_body(&[], &raw, &[p(prefix)])
}

fn known(sock: &Path, prefix: &str) -> Result<Option<serde_json::Value>, String> {
    Ok(bgp_systems(sock)?
        .into_iter()
        .find(|s| s["eid_prefixes"][0] == prefix))
}

/// The plugin's own announcement: exact attributes, next hop, community.
fn check_origination(m: Message) {
    let Message::Update(body) = m else {
        panic!("expected an UPDATE, got {m:?}")
    };
    let u = decode_update(&body, &Ctx::default()).unwrap();
    assert_eq!(u.announced, vec![p("198.51.100.128/25")]);
    assert!(u.problems.is_empty());
    assert_eq!(u.attrs.next_hop, Some("192.0.2.254".parse().unwrap()));
    assert_eq!(u.attrs.local_pref, Some(100));
    assert!(
        u.attrs.as_path.0.is_empty(),
        "iBGP origination: empty AS_PATH"
    );
    assert_eq!(u.attrs.ext_communities, ec("192.0.2.77", 3));
    assert_eq!(u.attrs.ext_communities, [0x01, 0xB0, 192, 0, 2, 77, 0, 3]);
}

#[test]
fn malformed_extended_communities_are_treated_as_withdraw_and_the_session_stays_up() {
    let s = setup("127.0.0.31");
    let (sess, open) = establish(&s.listener);
    assert_eq!(open.asn(), PEER_AS);
    assert_eq!(open.hold_time, 3);
    assert_eq!(open.bgp_id, Ipv4Addr::new(127, 0, 0, 2));
    assert!(open.four_octet_as() && open.route_refresh());
    assert_eq!(
        open.families(),
        vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    check_origination(sess.next("the plugin's origination"));
    sess.end_of_rib(2);

    // A well-formed tagged prefix reaches the agent.
    sess.send_update(learned_update("203.0.113.0/24", &ec("192.0.2.53", 7)));
    let sys = lab::wait_until("the agent to know 203.0.113.0/24", T, || {
        known(&s.agent_sock, "203.0.113.0/24")?.ok_or_else(|| "not yet".to_string())
    })
    .unwrap();
    assert_eq!(sys["contact"], "192.0.2.53");
    assert_eq!(sys["ms_id"], 7);
    assert_eq!(sys["origin_as"], 65001);

    // The same prefix again, its extended communities attribute 9 octets long:
    // RFC 7606 §7.14 treat-as-withdraw.
    let mut bad = learned_update("203.0.113.0/24", &ec("192.0.2.53", 7));
    let at = bad
        .windows(3)
        .position(|w| w == [0xC0, 16, 8])
        .expect("the attribute");
    bad[at + 2] = 9;
    bad.insert(at + 3 + 8, 0xEE);
    let alen = u16::from_be_bytes([bad[2], bad[3]]) + 1;
    bad[2..4].copy_from_slice(&alen.to_be_bytes());
    assert!(
        decode_update(&bad, &Ctx::default())
            .unwrap()
            .treat_as_withdraw()
    );
    sess.send_update(bad);
    lab::wait_until("the agent to forget 203.0.113.0/24", T, || {
        match known(&s.agent_sock, "203.0.113.0/24")? {
            None => Ok(()),
            Some(v) => Err(v.to_string()),
        }
    })
    .unwrap();
    let logged = log_lines(&s.plugin.log, "treat-as-withdraw");
    assert!(
        logged
            .iter()
            .any(|l| l.contains("EXTENDED COMMUNITIES") && l.contains("multiple of 8")),
        "{logged:#?}"
    );
    // The session stays up: KEEPALIVEs for longer than the hold time, no NOTIFICATION.
    sess.keepalives(4);
    // ... and keeps working.
    sess.send_update(learned_update("203.0.113.128/25", &ec("192.0.2.54", 8)));
    lab::wait_until("the agent to know 203.0.113.128/25", T, || {
        known(&s.agent_sock, "203.0.113.128/25")?.ok_or_else(|| "not yet".to_string())
    })
    .unwrap();
    assert_eq!(
        log_lines(&s.plugin.log, "session with bgpd Established").len(),
        1,
        "one session all along"
    );
    assert!(log_lines(&s.plugin.log, "NOTIFICATION").is_empty());

    // lisp-agent restarts (and knows nothing): the plugin tells it again.
    let Setup {
        agent,
        agent_cfg,
        agent_sock,
        ..
    } = s;
    let log = agent.log.clone();
    drop(agent);
    let _agent = spawn(
        &workspace_bin("lisp-agent"),
        &agent_cfg,
        log,
        ("LISP_AGENT_LOG", "info"),
    );
    lab::wait_until("the restarted agent to be told again", T, || {
        known(&agent_sock, "203.0.113.128/25")?.ok_or_else(|| "not yet".to_string())
    })
    .unwrap();
    sess.keepalives(1);
}

#[test]
fn route_refresh_and_session_reset_then_reconnect() {
    let s = setup("127.0.0.32");
    let (sess, _) = establish(&s.listener);
    check_origination(sess.next("the plugin's origination"));
    sess.end_of_rib(2);

    // ROUTE-REFRESH (RFC 2918): the plugin announces its routes again.
    sess.send(&Message::RouteRefresh { afi: 1, safi: 1 });
    check_origination(sess.next("the re-announcement after ROUTE-REFRESH"));
    sess.end_of_rib(1);

    // SIGHUP with another MS-target sub-type: the plugin re-announces with
    // the new community, then asks bgpd for everything again (ROUTE-REFRESH,
    // RFC 2918), since what it kept was filtered with the old code point.
    let text = std::fs::read_to_string(&s.plugin_cfg).unwrap();
    std::fs::write(
        &s.plugin_cfg,
        format!("{text}\n[codepoint]\nsubtype = 0xB1\n"),
    )
    .unwrap();
    kill("HUP", s.plugin.child.id());
    let Message::Update(body) = sess.next("the re-announcement with sub-type 0xB1") else {
        panic!("expected an UPDATE")
    };
    let u = decode_update(&body, &Ctx::default()).unwrap();
    assert_eq!(u.announced, vec![p("198.51.100.128/25")]);
    assert_eq!(u.attrs.ext_communities, [0x01, 0xB1, 192, 0, 2, 77, 0, 3]);
    let mut refreshed = Vec::new();
    for _ in 0..2 {
        match sess.next("ROUTE-REFRESH from the plugin") {
            Message::RouteRefresh { afi, safi } => refreshed.push((afi, safi)),
            m => panic!("expected ROUTE-REFRESH, got {m:?}"),
        }
    }
    assert_eq!(refreshed, vec![(1, 1), (2, 1)]);
    // Back to the default code point for the rest.
    std::fs::write(&s.plugin_cfg, text).unwrap();
    kill("HUP", s.plugin.child.id());
    let Message::Update(body) = sess.next("the re-announcement with sub-type 0xB0") else {
        panic!("expected an UPDATE")
    };
    assert_eq!(
        decode_update(&body, &Ctx::default())
            .unwrap()
            .attrs
            .ext_communities,
        ec("192.0.2.77", 3)
    );
    for _ in 0..2 {
        assert!(matches!(
            sess.next("ROUTE-REFRESH"),
            Message::RouteRefresh { .. }
        ));
    }

    // Learn one prefix, so that the reset has something to clear.
    sess.send_update(learned_update("203.0.113.0/24", &ec("192.0.2.53", 7)));
    lab::wait_until("the agent to know 203.0.113.0/24", T, || {
        known(&s.agent_sock, "203.0.113.0/24")?.ok_or_else(|| "not yet".to_string())
    })
    .unwrap();

    // An MP_REACH_NLRI whose NLRI overruns it cannot be treated as withdraw:
    // NOTIFICATION UPDATE/Optional Attribute Error, session reset (RFC 7606 §7.11).
    let mut raw = Vec::new();
    encode_attr(
        FLAG_OPTIONAL,
        ATTR_MP_REACH,
        &[
            0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 64, 0x20,
        ],
        &mut raw,
    );
    let mut body = learned_update("192.0.2.0/25", &ec("192.0.2.53", 7));
    let alen = u16::from_be_bytes([body[2], body[3]]) as usize;
    let nlri = body.split_off(4 + alen);
    body.extend_from_slice(&raw);
    body.extend_from_slice(&nlri);
    let new_len = (alen + raw.len()) as u16;
    body[2..4].copy_from_slice(&new_len.to_be_bytes());
    sess.send_update(body);
    match sess.next("the NOTIFICATION") {
        Message::Notification(n) => assert_eq!((n.code, n.subcode), (3, 9), "{n}"),
        m => panic!("expected a NOTIFICATION, got {m:?}"),
    }
    lab::wait_until("the agent to forget after the reset", T, || {
        match known(&s.agent_sock, "203.0.113.0/24")? {
            None => Ok(()),
            Some(v) => Err(v.to_string()),
        }
    })
    .unwrap();

    // The plugin comes back by itself.
    let (sess2, _) = establish(&s.listener);
    check_origination(sess2.next("the origination on the new session"));
    assert_eq!(
        log_lines(&s.plugin.log, "session with bgpd Established").len(),
        2
    );
}

#[test]
fn passive_mode_accepts_bgpd_and_refuses_a_second_connection() {
    // A free port on 127.0.0.2 for the plugin to listen on.
    let port = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = setup_with(
        "127.0.0.33",
        &format!("mode = \"passive\"\nlisten_port = {port}"),
    );
    // "bgpd" connects (from 127.0.0.1, the address the plugin expects).
    let connect = || {
        lab::wait_until("the plugin to listen", T, || {
            TcpStream::connect(("127.0.0.2", port)).map_err(|e| e.to_string())
        })
        .unwrap()
    };
    let (sess, open) = establish_on(connect());
    assert_eq!(open.asn(), PEER_AS);
    check_origination(sess.next("the plugin's origination"));
    sess.end_of_rib(2);
    // A second connection while the session runs: closed by the plugin ...
    let mut second = connect();
    second.set_read_timeout(Some(T)).unwrap();
    let mut b = [0u8; 64];
    let n = second.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "the second connection must be closed without an OPEN");
    // ... and the first one is not disturbed.
    sess.keepalives(4);
    assert_eq!(
        log_lines(&s.plugin.log, "session with bgpd Established").len(),
        1
    );
    assert!(!log_lines(&s.plugin.log, "refusing a connection").is_empty());
}
