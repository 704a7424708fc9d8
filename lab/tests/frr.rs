//! The lab with real FRR: OSPF adjacency and routes, eBGP, and cleanup after
//! success, failure, panic, `lab down` and Ctrl-C. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{T, all_pids, assert_gone, can_run, two_routers};
use lab::{Lab, Topology};

#[test]
fn ospf_two_routers_reach_full_and_install_loopbacks() {
    if !can_run("ospf") {
        return;
    }
    let name = "t_ospf";
    let t0 = Instant::now();
    let lab = Lab::up(two_routers(name, true, false)).expect("lab up");
    let up = t0.elapsed();
    let pids = all_pids(&lab.state());
    assert_eq!(pids.len(), 4, "zebra + ospfd on each router");

    let full = lab
        .wait_ospf_full("r1", "192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap(), T)
        .expect("r1 sees r2 Full");
    lab.wait_ospf_full("r2", 1usize, T)
        .expect("r2 has one Full neighbour");
    let route = lab
        .wait_route("r1", "192.0.2.2/32", T)
        .expect("r1 installs r2's loopback");
    let route_at = t0.elapsed();
    assert_eq!(route[0]["protocol"], "ospf", "{route}");
    assert_eq!(route[0]["nexthops"][0]["ip"], "198.51.100.2", "{route}");
    // And the kernel agrees, and the data plane works across it.
    let kernel = lab
        .exec_ok("r1", &["ip", "route", "show", "192.0.2.2"])
        .unwrap();
    assert!(kernel.contains("via 198.51.100.2"), "{kernel}");
    let p = lab
        .ping("r1", "192.0.2.2", 3, Duration::from_millis(50))
        .unwrap();
    assert!(p.received >= 1, "{p:?}");
    // The OSPF API port is open (ospfd -a).
    let ss = lab.exec_ok("r1", &["ss", "-ltn"]).unwrap_or_default();
    if !ss.is_empty() {
        assert!(ss.contains(":2607"), "ospfd -a listens on 2607: {ss}");
    }
    let status = lab.status();
    assert!(status.healthy(), "{status}");

    // Restarting one daemon: r1 loses r2, then gets it back.
    lab.stop_daemon("r2", "ospfd").unwrap();
    lab::wait_until("r1 to lose its OSPF neighbour", T, || {
        let n = lab::frr::ospf_neighbors(&lab.netns("r1").unwrap()).map_err(|e| e.to_string())?;
        if n.iter().any(|(_, st, _)| st.starts_with("Full")) {
            Err(format!("{n:?}"))
        } else {
            Ok(())
        }
    })
    .unwrap();
    assert!(lab.start_daemon("r2", "ospfd").unwrap().alive());
    lab.wait_ospf_full("r1", 1usize, T).expect("Full again");
    lab.wait_route("r1", "192.0.2.2/32", T).expect("route back");
    eprintln!(
        "ospf: lab up in {:.2}s, Full after {:.2}s more, route installed {:.2}s after start",
        up.as_secs_f64(),
        full.as_secs_f64(),
        route_at.as_secs_f64()
    );
    lab.down().expect("clean teardown");
    assert_gone(name, &pids);
}

#[test]
fn ebgp_reaches_established_and_exchanges_routes() {
    if !can_run("ebgp") {
        return;
    }
    let name = "t_bgp";
    let lab = Lab::up(two_routers(name, false, true)).expect("lab up");
    let pids = all_pids(&lab.state());
    let took = lab
        .wait_bgp_established("r1", "198.51.100.2", T)
        .expect("r1 -> r2 Established");
    lab.wait_bgp_established("r2", "198.51.100.1", T)
        .expect("r2 -> r1 Established");
    let r = lab
        .wait_route("r1", "192.0.2.2/32", T)
        .expect("r1 learns r2's loopback over eBGP");
    assert_eq!(r[0]["protocol"], "bgp", "{r}");
    let summary = lab.vtysh_json("r1", "show bgp summary json").unwrap();
    assert_eq!(
        summary["ipv4Unicast"]["peers"]["198.51.100.2"]["state"],
        "Established"
    );
    eprintln!("ebgp: Established after {:.2}s", took.as_secs_f64());
    drop(lab);
    assert_gone(name, &pids);
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    if !can_run("panic") {
        return;
    }
    let name = "t_panic";
    let mut pids = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::up(two_routers(name, true, false)).expect("lab up");
        let s = lab.spawn("r1", "sleeper", &["sleep", "1000"]).unwrap();
        assert!(lab.alive("r1", "sleeper"));
        pids = all_pids(&lab.state());
        assert!(pids.contains(&s.pid));
        panic!("deliberate panic with the lab up");
    }));
    assert!(r.is_err(), "the closure panicked");
    assert_eq!(pids.len(), 5, "4 FRR daemons + sleeper");
    assert_gone(name, &pids);
}

#[test]
fn a_failing_up_removes_what_it_made() {
    if !can_run("failing up") {
        return;
    }
    let name = "t_fail";
    // r1 starts fine; r2's ospfd gets an option it does not know and exits.
    let text = r#"
name = "t_fail"
[nodes.r1.frr.ospfd]
config = "router ospf\n"
[nodes.r2.frr.ospfd]
config = "router ospf\n"
args = ["--no-such-option"]
[[links]]
a = { node = "r1", addrs = ["198.51.100.1/30"] }
b = { node = "r2", addrs = ["198.51.100.2/30"] }
delay_ms = 1
"#;
    let e = Lab::up(Topology::parse(text).unwrap())
        .err()
        .expect("up fails");
    let msg = format!("{e:#}");
    assert!(msg.contains("node `r2` FRR"), "{msg}");
    assert!(msg.contains("everything made was removed"), "{msg}");
    assert_gone(name, &[]);

    // A bad static route fails early, naming the place.
    let text = r#"
name = "t_fail"
[nodes.r1]
routes = [{ to = "203.0.113.0/24", via = "192.0.2.99" }]
"#;
    let e = Lab::up(Topology::parse(text).unwrap())
        .err()
        .expect("up fails");
    assert!(format!("{e:#}").contains("routes[0]"), "{e:#}");
    assert_gone(name, &[]);
}

#[test]
fn addresses_outside_the_documentation_ranges_are_refused() {
    let text = r#"
name = "t_addr"
[nodes.r1]
loopback = ["10.1.1.1/32"]
[nodes.r2]
[[links]]
a = { node = "r1", addrs = ["198.51.100.1/30"] }
b = { node = "r2", addrs = ["172.16.0.2/30"] }
"#;
    let e = Topology::parse(text).unwrap_err().to_string();
    assert!(
        e.contains("nodes.r1.loopback[0]: 10.1.1.1/32 is outside"),
        "{e}"
    );
    assert!(
        e.contains("links[0] (r1-r2).b.addrs[0]: 172.16.0.2/30"),
        "{e}"
    );
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lab")
}

fn lab_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin()).args(args).output().expect("run lab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn cli_up_exec_vtysh_status_down() {
    if !can_run("cli") {
        return;
    }
    let name = "t_cli";
    let topo = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/ospf3.toml");
    let (ok, out) = lab_cli(&["up", topo, "--name", name]);
    assert!(ok, "{out}");
    assert!(out.contains("detached"), "{out}");
    let st = lab::RunState::load(name).unwrap().expect("state written");
    assert!(st.owner.is_none());
    let pids = all_pids(&st);
    assert_eq!(pids.len(), 6);

    // The lab outlives `lab up`: wait (bounded) for OSPF through the CLI.
    lab::wait_until("r2 to have 2 Full neighbours (CLI)", T, || {
        let (_, s) = lab_cli(&["vtysh", "-l", name, "r2", "show", "ip", "ospf", "neighbor"]);
        let full = s.matches("Full").count();
        if full >= 2 { Ok(()) } else { Err(s) }
    })
    .unwrap();
    lab::wait_until("r1 to reach r3's loopback", T, || {
        let (ok, s) = lab_cli(&["ping", "-l", name, "r1", "192.0.2.3", "-c", "1"]);
        if ok { Ok(()) } else { Err(s) }
    })
    .unwrap();
    let (ok, s) = lab_cli(&["exec", "-l", name, "r3", "ip", "-br", "addr", "show", "lo"]);
    assert!(ok && s.contains("192.0.2.3/32"), "{s}");
    let (ok, s) = lab_cli(&["status", name]);
    assert!(ok && s.contains("192.0.2.1 Full"), "{s}");
    let (ok, s) = lab_cli(&["status", name, "--json"]);
    assert!(ok && s.contains("\"netns_present\": true"), "{s}");

    let (ok, s) = lab_cli(&["down", name]);
    assert!(ok, "{s}");
    assert_gone(name, &pids);
}

#[test]
fn cli_wire_process_survives_up_and_goes_with_down() {
    if !can_run("cli wire") {
        return;
    }
    let name = "t_cliwire";
    let dir = std::env::temp_dir().join("lab-test-cliwire");
    std::fs::create_dir_all(&dir).unwrap();
    let topo = dir.join("w.toml");
    std::fs::write(
        &topo,
        r#"
[nodes.a]
[nodes.b]
[[links]]
a = { node = "a", addrs = ["198.51.100.1/30"] }
b = { node = "b", addrs = ["198.51.100.2/30"] }
delay_ms = 1.0
"#,
    )
    .unwrap();
    let (ok, out) = lab_cli(&["up", topo.to_str().unwrap(), "--name", name]);
    assert!(ok, "{out}");
    let st = lab::RunState::load(name).unwrap().unwrap();
    let wire = st.links[0].wire.clone().expect("a wire");
    assert!(wire.process.expect("wire process").alive());
    let (ok, s) = lab_cli(&[
        "ping",
        "-l",
        name,
        "a",
        "198.51.100.2",
        "-c",
        "5",
        "-i",
        "0.05",
    ]);
    assert!(ok, "{s}");
    let pids = all_pids(&st);
    let (ok, s) = lab_cli(&["down", name]);
    assert!(ok, "{s}");
    assert_gone(name, &pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_on_a_foreground_lab_tears_it_down() {
    if !can_run("ctrl-c") {
        return;
    }
    let name = "t_sigint";
    let topo = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/ospf3.toml");
    let mut child = Command::new(bin())
        .args(["up", "--foreground", topo, "--name", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .expect("`lab up --foreground` reports that the lab is up");
        if l.contains("Ctrl-C tears it down") {
            break;
        }
    }
    let st = lab::RunState::load(name).unwrap().unwrap();
    let pids = all_pids(&st);
    assert_eq!(pids.len(), 6);
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = lab::wait_until(
        "lab up --foreground to exit after SIGINT",
        T,
        || match child.try_wait() {
            Ok(Some(s)) => Ok(s),
            _ => Err("still running"),
        },
    )
    .unwrap();
    assert_eq!(status.code(), Some(130), "exit 128 + SIGINT");
    assert_gone(name, &pids);
}

fn vrrp_status(lab: &Lab, node: &str) -> Result<(), String> {
    let v = lab
        .vtysh_json(node, "show vrrp json")
        .map_err(|e| format!("{e:#}"))?;
    match v[0]["v4"]["status"].as_str() {
        Some("Master") => Ok(()),
        other => Err(format!("{node} is {other:?}")),
    }
}

#[test]
fn lan_with_vrrp_fails_over() {
    if !can_run("lan vrrp") {
        return;
    }
    let name = "t_lan";
    let t = Topology::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/lan-vrrp.toml"
    ))
    .unwrap()
    .with_name(name)
    .unwrap();
    let lab = Lab::up(t).expect("lab up");
    let pids = all_pids(&lab.state());
    lab::wait_until("r1 to be VRRP Master", T, || vrrp_status(&lab, "r1")).unwrap();
    let p = lab
        .ping("h1", "192.0.2.1", 3, Duration::from_millis(20))
        .unwrap();
    assert_eq!(
        p.received, 3,
        "h1 reaches r1's loopback through the virtual gateway"
    );
    lab.exec_ok("r1", &["ip", "link", "set", "lan", "down"])
        .unwrap();
    lab::wait_until("r2 to take over", T, || vrrp_status(&lab, "r2")).unwrap();
    let p = lab
        .ping("h1", "203.0.113.1", 3, Duration::from_millis(20))
        .unwrap();
    assert_eq!(p.received, 3, "the virtual address answers from r2");
    drop(lab);
    assert_gone(name, &pids);
}

#[test]
fn topology_processes_start_with_their_config_and_stop() {
    if !can_run("processes") {
        return;
    }
    let name = "t_proc";
    let text = r#"
name = "t_proc"
[nodes.n1]
loopback = ["192.0.2.1/32"]
[[nodes.n1.processes]]
name = "agent"
cmd = ["sh", "-c", "echo node={node} netns={netns}; cat {config}; exec sleep 1000"]
config = "listen = \"192.0.2.1:4342\"\n"
env = { AGENT_MODE = "test" }
[[nodes.n1.processes]]
name = "shell"
cmd = "echo mode=$AGENT_MODE; exec sleep 1000"
"#;
    let lab = Lab::up(Topology::parse(text).unwrap()).expect("lab up");
    let st = lab.state();
    assert_eq!(st.processes.len(), 2);
    let log = st.processes[0].log.clone();
    lab::wait_until("the agent to print its config", T, || {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        if s.contains("listen = \"192.0.2.1:4342\"") {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .map(|s| assert!(s.contains("node=n1 netns=lmsx-t_proc-n1"), "{s}"))
    .unwrap();
    assert!(lab.alive("n1", "agent") && lab.alive("n1", "shell"));
    // A spawned process can be stopped on its own.
    let extra = lab.spawn("n1", "extra", &["sleep", "1000"]).unwrap();
    lab.stop("n1", "extra").unwrap();
    assert!(!extra.pid.alive());
    let pids = all_pids(&lab.state());
    drop(lab);
    assert_gone(name, &pids);
}

#[test]
fn leftovers_of_a_crashed_run_are_removed_at_up() {
    if !can_run("leftovers") {
        return;
    }
    let name = "t_crash";
    // A detached lab nobody took down (as after a crash), plus a stray
    // namespace with the lab's prefix that no state records.
    let dir = std::env::temp_dir().join("lab-test-crash");
    std::fs::create_dir_all(&dir).unwrap();
    let topo = dir.join("c.toml");
    std::fs::write(
        &topo,
        "[nodes.a.frr.zebra]\n[nodes.b]\n[[links]]\na = { node = \"a\" }\nb = { node = \"b\" }\ndelay_ms = 1\n",
    )
    .unwrap();
    let (ok, out) = lab_cli(&["up", topo.to_str().unwrap(), "--name", name]);
    assert!(ok, "{out}");
    let old = all_pids(&lab::RunState::load(name).unwrap().unwrap());
    assert_eq!(old.len(), 2, "zebra and the wire process");
    let ok = Command::new("ip")
        .args(["netns", "add", "lmsx-t_crash-stray"])
        .status()
        .unwrap()
        .success();
    assert!(ok);

    let lab = Lab::up(two_routers(name, false, false)).expect("up over leftovers");
    assert!(old.iter().all(|p| !p.alive()), "old processes were stopped");
    assert!(!lab::netns::ns_exists("lmsx-t_crash-stray"));
    assert!(!lab::netns::ns_exists("lmsx-t_crash-a"));
    let pids = all_pids(&lab.state());
    drop(lab);
    assert_gone(name, &pids);
    let _ = std::fs::remove_dir_all(&dir);
}
