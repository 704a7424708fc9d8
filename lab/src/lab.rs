//! `Lab`: a topology brought up for real, and everything needed to use it and
//! to make it disappear again (on `down`, on drop, on panic, on Ctrl-C).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::addr::Cidr;
use crate::cleanup::{self, Report};
use crate::frr;
use crate::netns::{self, ip_in, ns_name};
use crate::ping::PingStats;
use crate::procs::ProcId;
use crate::signals;
use crate::state::{
    self, DaemonRec, LanRec, LinkRec, NodeRec, ProcRec, RunState, WireRec, lock_path,
};
use crate::status::Status;
use crate::sys;
use crate::topology::{End, Link, Node, ProcessConfig, Topology};
use crate::wait::wait_until;
use crate::wire::{Wire, WireSpec, WireStats};

/// How a lab is brought up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Run wires as `EXE wire ...` processes that outlive this process (what
    /// `lab up` does); `None`: threads of this process (library default).
    pub wire_exe: Option<PathBuf>,
    /// Logs go here (default `/tmp/lisp-msx-lab/LAB`, or `$LISP_MSX_LAB_LOGS/LAB`).
    pub log_dir: Option<PathBuf>,
    /// How long to wait for another process using the same lab name.
    pub lock_timeout: Duration,
    /// How long one FRR daemon may take to start.
    pub daemon_timeout: Duration,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            wire_exe: None,
            log_dir: None,
            lock_timeout: Duration::from_secs(120),
            daemon_timeout: Duration::from_secs(30),
        }
    }
}

/// Which OSPF neighbours `wait_ospf_full` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OspfNeighbors {
    /// This neighbour (router id) is Full.
    RouterId(Ipv4Addr),
    /// At least this many adjacencies are Full.
    Count(usize),
}

impl From<Ipv4Addr> for OspfNeighbors {
    fn from(a: Ipv4Addr) -> Self {
        OspfNeighbors::RouterId(a)
    }
}

impl From<usize> for OspfNeighbors {
    fn from(n: usize) -> Self {
        OspfNeighbors::Count(n)
    }
}

/// A process started with `Lab::spawn` (or from the topology).
#[derive(Debug, Clone)]
pub struct Spawned {
    pub node: String,
    pub name: String,
    pub pid: ProcId,
    pub log: PathBuf,
}

/// A running lab. Dropping it tears everything down (also while unwinding
/// from a panic); so does SIGINT/SIGTERM/SIGHUP to this process.
pub struct Lab {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    name: String,
    g: Mutex<Guarded>,
}

struct Guarded {
    st: RunState,
    base_dir: PathBuf,
    children: Vec<Child>,
    wires: Vec<Wire>,
    lock: Option<LabLock>,
    /// Torn down or detached: nothing may be added any more.
    done: bool,
}

impl Guarded {
    fn save(&self) -> Result<()> {
        self.st.save()
    }
}

/// An exclusive lock on a lab name (`/run/lisp-msx-lab/LAB.lock`, flock).
struct LabLock {
    file: File,
    path: PathBuf,
}

impl LabLock {
    fn acquire(lab: &str, timeout: Duration) -> Result<LabLock> {
        let path = lock_path(lab);
        fs::create_dir_all(state::RUN_ROOT)
            .with_context(|| format!("create {}", state::RUN_ROOT))?;
        let t0 = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("open {}", path.display()))?;
            if sys::try_lock(&file)? {
                // The holder before us may have removed the file after we opened
                // it: only a lock on the file now at `path` counts.
                let same = fs::metadata(&path)
                    .map(|m| m.ino() == file.metadata().map(|f| f.ino()).unwrap_or(0))
                    .unwrap_or(false);
                if same {
                    return Ok(LabLock { file, path });
                }
                continue;
            }
            if t0.elapsed() >= timeout {
                bail!(
                    "lab `{lab}` is in use by another process (lock {} held for {:.0}s); \
                     give this lab another name",
                    path.display(),
                    timeout.as_secs_f64()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Removes the lock file, then unlocks (by closing).
    fn release(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
        // The root stays when other labs use it; an empty one goes.
        let _ = fs::remove_dir(state::RUN_ROOT);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks that we may make namespaces.
pub fn ensure_root() -> Result<()> {
    if sys::euid() != 0 {
        bail!("the lab needs root (network namespaces, TAP devices, FRR); run it with sudo");
    }
    Ok(())
}

/// Why a lab test cannot run here (not root, or one of the FRR daemons in
/// `frr_daemons`, e.g. `"bgpd"`, not installed), or None. Tests print the
/// reason as SKIPPED and pass.
pub fn unavailable(frr_daemons: &[&str]) -> Option<String> {
    if ensure_root().is_err() {
        return Some(
            "needs root (network namespaces, TAP devices, FRR); run scripts/test.sh as root".into(),
        );
    }
    frr_daemons
        .iter()
        .map(|d| format!("/usr/lib/frr/{d}"))
        .find(|p| !std::path::Path::new(p).exists())
        .map(|p| format!("{p} missing (Debian package frr)"))
}

/// Removes what an earlier run of lab `lab` left: what its state file records
/// (if its owner is gone, or `force`), and whatever carries its name prefix.
pub fn cleanup_lab(lab: &str, force: bool) -> Result<Report> {
    let mut r = Report::default();
    if let Some(st) = RunState::load(lab).unwrap_or_else(|e| {
        r.problems.push(format!("{e:#}"));
        None
    }) {
        if let Some(owner) = st.owner
            && owner.alive()
            && owner.pid != std::process::id()
            && !force
        {
            bail!(
                "lab `{lab}` is owned by running process {} (stop it, or force)",
                owner.pid
            );
        }
        cleanup::teardown_state(&st, &mut r);
    }
    cleanup::sweep(lab, &mut r);
    let _ = fs::remove_dir_all(state::run_dir(lab));
    Ok(r)
}

impl Lab {
    /// Brings `topology` up with default options (wires as threads).
    pub fn up(topology: Topology) -> Result<Lab> {
        Self::up_with(topology, UpOptions::default())
    }

    /// Brings `topology` up. Leftovers of an earlier run with the same name are
    /// removed first. On error everything made so far is removed again.
    pub fn up_with(topology: Topology, opts: UpOptions) -> Result<Lab> {
        ensure_root()?;
        let lab = topology.name.clone();
        let lock = LabLock::acquire(&lab, opts.lock_timeout)?;
        let report = cleanup_lab(&lab, true)?;
        if !report.removed.is_empty() {
            eprintln!(
                "lab {lab}: removed leftovers of an earlier run: {}",
                report.removed.join(", ")
            );
        }
        let log_dir = opts
            .log_dir
            .clone()
            .unwrap_or_else(|| state::default_log_dir(&lab));
        if log_dir.exists() {
            fs::remove_dir_all(&log_dir).with_context(|| format!("clear {}", log_dir.display()))?;
        }
        fs::create_dir_all(&log_dir).with_context(|| format!("create {}", log_dir.display()))?;
        let st = RunState {
            lab: lab.clone(),
            topology: topology.source.clone(),
            owner: ProcId::of(std::process::id()),
            created_unix: unix_now(),
            run_dir: state::run_dir(&lab),
            log_dir,
            namespaces: Vec::new(),
            pathspaces: Vec::new(),
            nodes: Vec::new(),
            links: Vec::new(),
            lans: Vec::new(),
            processes: Vec::new(),
        };
        st.save()?;
        let inner = Arc::new(Inner {
            name: lab.clone(),
            g: Mutex::new(Guarded {
                st,
                base_dir: topology.base_dir.clone(),
                children: Vec::new(),
                wires: Vec::new(),
                lock: Some(lock),
                done: false,
            }),
        });
        signals::register(&inner);
        let lab_handle = Lab { inner };
        let t0 = Instant::now();
        if let Err(e) = lab_handle.build(&topology, &opts) {
            let r = lab_handle.inner.teardown();
            let mut msg = format!("bringing up lab `{lab}` failed (everything made was removed)");
            if !r.is_clean() {
                msg = format!(
                    "bringing up lab `{lab}` failed; cleanup problems: {}",
                    r.problems.join("; ")
                );
            }
            return Err(e.context(msg));
        }
        tracing::info!(lab = %lab, elapsed_ms = t0.elapsed().as_millis() as u64, "lab up");
        Ok(lab_handle)
    }

    fn g(&self) -> MutexGuard<'_, Guarded> {
        self.inner.g.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lab's lock unless the lab is already torn down, then
    /// saves the state.
    fn with<R>(&self, f: impl FnOnce(&mut Guarded) -> Result<R>) -> Result<R> {
        let mut g = self.g();
        if g.done {
            bail!("lab `{}` has been torn down", self.inner.name);
        }
        let r = f(&mut g);
        g.save()?;
        r
    }

    fn build(&self, t: &Topology, opts: &UpOptions) -> Result<()> {
        for n in &t.nodes {
            self.add_node(n)
                .with_context(|| format!("node `{}`", n.name))?;
        }
        for (i, l) in t.links.iter().enumerate() {
            self.add_link(l, opts)
                .with_context(|| format!("link `{}` (links[{i}])", l.name))?;
        }
        for (i, lan) in t.lans.iter().enumerate() {
            self.add_lan(i, lan)
                .with_context(|| format!("LAN `{}`", lan.name))?;
        }
        for n in &t.nodes {
            let ns = ns_name(&t.name, &n.name);
            for (i, cmd) in n.setup.iter().enumerate() {
                netns::run(&mut netns::exec_cmd(&ns, &["sh", "-c", cmd]))
                    .with_context(|| format!("node `{}` setup[{i}]", n.name))?;
            }
            for (i, r) in n.routes.iter().enumerate() {
                let mut args: Vec<String> = vec![
                    if r.to.is_ipv4() { "-4" } else { "-6" }.into(),
                    "route".into(),
                    "add".into(),
                    r.to.to_string(),
                ];
                if let Some(v) = r.via {
                    args.extend(["via".into(), v.to_string()]);
                }
                if let Some(d) = &r.dev {
                    args.extend(["dev".into(), d.clone()]);
                }
                if let Some(m) = r.metric {
                    args.extend(["metric".into(), m.to_string()]);
                }
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                ip_in(&ns, &a).with_context(|| format!("node `{}` routes[{i}]", n.name))?;
            }
        }
        for n in &t.nodes {
            self.start_frr(n, opts)
                .with_context(|| format!("node `{}` FRR", n.name))?;
        }
        for n in &t.nodes {
            for p in &n.processes {
                let (argv, _) = self.process_argv(n, p)?;
                let env: Vec<(String, String)> = p.env.clone();
                self.spawn_env(&n.name, &p.name, &argv, &env)
                    .with_context(|| format!("node `{}` process `{}`", n.name, p.name))?;
            }
        }
        Ok(())
    }

    fn add_node(&self, n: &Node) -> Result<()> {
        let ns = ns_name(&self.inner.name, &n.name);
        self.with(|g| {
            g.st.namespaces.push(ns.clone());
            g.save()?;
            netns::ip(&["netns", "add", &ns])?;
            g.st.nodes.push(NodeRec {
                name: n.name.clone(),
                netns: ns.clone(),
                pathspace: ns.clone(),
                daemons: Vec::new(),
            });
            Ok(())
        })?;
        let mut sysctls: Vec<(String, String)> = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            // Lets the built-in ping (ICMP datagram sockets) run as root.
            ("net.ipv4.ping_group_range", "0 2147483647"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        sysctls.extend(n.sysctl.iter().cloned());
        set_sysctls(&ns, &sysctls)?;
        ip_in(&ns, &["link", "set", "lo", "up"])?;
        for a in &n.loopback {
            add_addr(&ns, "lo", a).context("loopback")?;
        }
        Ok(())
    }

    fn add_link(&self, l: &Link, opts: &UpOptions) -> Result<()> {
        let lab = self.inner.name.clone();
        let a_ns = ns_name(&lab, &l.a.node);
        let b_ns = ns_name(&lab, &l.b.node);
        match &l.impair {
            None => {
                self.with(|g| {
                    g.st.links.push(LinkRec {
                        name: l.name.clone(),
                        a_node: l.a.node.clone(),
                        a_if: l.a.ifname.clone(),
                        b_node: l.b.node.clone(),
                        b_if: l.b.ifname.clone(),
                        wire: None,
                    });
                    Ok(())
                })?;
                ip_in(
                    &a_ns,
                    &[
                        "link",
                        "add",
                        &l.a.ifname,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &l.b.ifname,
                        "netns",
                        &b_ns,
                    ],
                )?;
            }
            Some(imp) => {
                let stats = self.g().st.run_dir.join(format!("wire-{}.json", l.name));
                let spec = WireSpec {
                    link: l.name.clone(),
                    a_ns: a_ns.clone(),
                    a_if: l.a.ifname.clone(),
                    b_ns: b_ns.clone(),
                    b_if: l.b.ifname.clone(),
                    delay: imp.delay,
                    jitter: imp.jitter,
                    loss: imp.loss,
                    seed: imp.seed,
                    queue: imp.queue,
                    stats_path: Some(stats.clone()),
                };
                let mut rec = WireRec {
                    delay_us: imp.delay.as_secs_f64() * 1e6,
                    jitter_us: imp.jitter.as_secs_f64() * 1e6,
                    loss_pct: imp.loss,
                    stats,
                    process: None,
                    log: None,
                };
                match &opts.wire_exe {
                    None => {
                        let w = Wire::start(spec)?;
                        self.with(|g| {
                            g.wires.push(w);
                            g.st.links.push(LinkRec {
                                name: l.name.clone(),
                                a_node: l.a.node.clone(),
                                a_if: l.a.ifname.clone(),
                                b_node: l.b.node.clone(),
                                b_if: l.b.ifname.clone(),
                                wire: Some(rec),
                            });
                            Ok(())
                        })?;
                    }
                    Some(exe) => {
                        let log = self.g().st.log_dir.join(format!("wire-{}.log", l.name));
                        rec.log = Some(log.clone());
                        let mut cmd = Command::new(exe);
                        cmd.args(wire_args(&spec));
                        let child = self.spawn_child(cmd, &log)?;
                        let pid = ProcId::of(child.id());
                        rec.process = pid;
                        self.with(|g| {
                            g.children.push(child);
                            g.st.links.push(LinkRec {
                                name: l.name.clone(),
                                a_node: l.a.node.clone(),
                                a_if: l.a.ifname.clone(),
                                b_node: l.b.node.clone(),
                                b_if: l.b.ifname.clone(),
                                wire: Some(rec),
                            });
                            Ok(())
                        })?;
                        wait_until(
                            &format!("wire process for `{}` to create its TAPs", l.name),
                            Duration::from_secs(10),
                            || {
                                if pid.is_none_or(|p| !p.alive()) {
                                    return Ok(Err(fs::read_to_string(&log).unwrap_or_default()));
                                }
                                let a = ip_in(&a_ns, &["link", "show", &l.a.ifname]).is_ok();
                                let b = ip_in(&b_ns, &["link", "show", &l.b.ifname]).is_ok();
                                if a && b {
                                    Ok(Ok(()))
                                } else {
                                    Err(format!("a: {a}, b: {b}"))
                                }
                            },
                        )?
                        .map_err(|log| anyhow!("wire process exited: {}", log.trim()))?;
                    }
                }
            }
        }
        for (ns, e) in [(&a_ns, &l.a), (&b_ns, &l.b)] {
            if let Some(m) = l.mtu {
                ip_in(ns, &["link", "set", &e.ifname, "mtu", &m.to_string()])?;
            }
            configure_end(ns, e)?;
        }
        Ok(())
    }

    fn add_lan(&self, idx: usize, lan: &crate::topology::Lan) -> Result<()> {
        let lab = self.inner.name.clone();
        let switch_member = lan
            .switch
            .as_ref()
            .and_then(|s| lan.members.iter().find(|m| &m.node == s));
        let bridge = match switch_member {
            Some(m) => m.ifname.clone(),
            None => format!("br-{}", lan.name).chars().take(15).collect(),
        };
        let br_ns = match &lan.switch {
            Some(s) => ns_name(&lab, s),
            None => {
                let ns = ns_name(&lab, &lan.name);
                self.with(|g| {
                    g.st.namespaces.push(ns.clone());
                    g.save()?;
                    netns::ip(&["netns", "add", &ns])?;
                    Ok(())
                })?;
                ip_in(&ns, &["link", "set", "lo", "up"])?;
                ns
            }
        };
        ip_in(&br_ns, &["link", "add", &bridge, "type", "bridge"])?;
        ip_in(
            &br_ns,
            &[
                "link",
                "set",
                &bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
                "mcast_snooping",
                "0",
                "forward_delay",
                "0",
            ],
        )?;
        ip_in(&br_ns, &["link", "set", &bridge, "up"])?;
        let mut members = Vec::new();
        for (j, m) in lan.members.iter().enumerate() {
            if switch_member.is_some_and(|s| std::ptr::eq(s, m)) {
                for a in &m.addrs {
                    add_addr(&br_ns, &bridge, a)?;
                }
                members.push((m.node.clone(), bridge.clone()));
                continue;
            }
            let ns = ns_name(&lab, &m.node);
            let port: String = format!("p{idx}_{j}-{}", m.node).chars().take(15).collect();
            ip_in(
                &ns,
                &[
                    "link", "add", &m.ifname, "type", "veth", "peer", "name", &port, "netns",
                    &br_ns,
                ],
            )?;
            ip_in(&br_ns, &["link", "set", &port, "master", &bridge])?;
            ip_in(&br_ns, &["link", "set", &port, "up"])?;
            configure_end(&ns, m)?;
            members.push((m.node.clone(), m.ifname.clone()));
        }
        self.with(|g| {
            g.st.lans.push(LanRec {
                name: lan.name.clone(),
                netns: br_ns.clone(),
                bridge: bridge.clone(),
                members,
            });
            Ok(())
        })
    }

    fn start_frr(&self, n: &Node, opts: &UpOptions) -> Result<()> {
        if n.daemons.is_empty() {
            return Ok(());
        }
        let ns = ns_name(&self.inner.name, &n.name);
        let (run_dir, log_dir) = {
            let g = self.g();
            (g.st.run_dir.clone(), g.st.log_dir.clone())
        };
        let conf_dir = run_dir.join("conf").join(&n.name);
        fs::create_dir_all(&conf_dir)?;
        let node_logs = log_dir.join(&n.name);
        frr::prepare_log_dir(&node_logs)?;
        self.with(|g| {
            g.st.pathspaces.push(ns.clone());
            Ok(())
        })?;
        frr::prepare_pathspace(&ns)?;
        for d in &n.daemons {
            let conf = conf_dir.join(format!("{}.conf", d.name));
            fs::write(&conf, frr::render_config(&n.name, &d.config))
                .with_context(|| format!("write {}", conf.display()))?;
            let log = node_logs.join(format!("{}.log", d.name));
            let pid = frr::start_daemon(&ns, &d.name, &conf, &log, &d.args, opts.daemon_timeout)?;
            self.with(|g| {
                if let Some(rec) = g.st.nodes.iter_mut().find(|r| r.name == n.name) {
                    rec.daemons.push(DaemonRec {
                        name: d.name.clone(),
                        pid: Some(pid),
                        config: conf.clone(),
                        log: log.clone(),
                        args: d.args.clone(),
                    });
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn process_argv(
        &self,
        n: &Node,
        p: &crate::topology::Process,
    ) -> Result<(Vec<String>, Option<PathBuf>)> {
        let (run_dir, log_dir, base) = {
            let g = self.g();
            (
                g.st.run_dir.clone(),
                g.st.log_dir.clone(),
                g.base_dir.clone(),
            )
        };
        let config = match &p.config {
            Some(ProcessConfig::Inline(text)) => {
                let d = run_dir.join("conf").join(&n.name);
                fs::create_dir_all(&d)?;
                let path = d.join(format!("{}.conf", p.name));
                fs::write(&path, text)?;
                Some(path)
            }
            Some(ProcessConfig::File(path)) => Some(path.clone()),
            None => None,
        };
        let ns = ns_name(&self.inner.name, &n.name);
        let subst = |s: &str| {
            s.replace(
                "{config}",
                &config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
            .replace("{node}", &n.name)
            .replace("{netns}", &ns)
            .replace("{topo_dir}", &base.display().to_string())
            .replace("{log_dir}", &log_dir.display().to_string())
            .replace("{run_dir}", &run_dir.display().to_string())
        };
        let mut argv: Vec<String> = p.argv.iter().map(|a| subst(a)).collect();
        // A relative program path (with a `/`) is relative to the topology file.
        if argv[0].contains('/') && !argv[0].starts_with('/') {
            argv[0] = base.join(&argv[0]).display().to_string();
        }
        Ok((argv, config))
    }

    fn spawn_child(&self, mut cmd: Command, log: &Path) -> Result<Child> {
        if let Some(d) = log.parent() {
            fs::create_dir_all(d)?;
        }
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group: a Ctrl-C at the terminal reaches only us, and we
            // stop the children in order.
            .process_group(0);
        cmd.spawn()
            .with_context(|| format!("spawn {:?}", cmd.get_program()))
    }

    fn spawn_env(
        &self,
        node: &str,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<Spawned> {
        if argv.is_empty() {
            bail!("empty command");
        }
        let ns = self.netns(node)?;
        let (log, base) = {
            let g = self.g();
            (
                g.st.log_dir.join(node).join(format!("{name}.log")),
                g.base_dir.clone(),
            )
        };
        if self
            .g()
            .st
            .processes
            .iter()
            .any(|p| p.node == node && p.name == name)
        {
            bail!("node `{node}` already has a process named `{name}`");
        }
        let mut cmd = netns::exec_cmd(&ns, argv);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if base.is_dir() {
            cmd.current_dir(&base);
        }
        self.with(|g| {
            if g.done {
                bail!("lab torn down");
            }
            Ok(())
        })?;
        let child = self.spawn_child(cmd, &log)?;
        let pid = ProcId::of(child.id()).ok_or_else(|| {
            anyhow!(
                "`{}` exited at once: {}",
                argv.join(" "),
                fs::read_to_string(&log).unwrap_or_default().trim()
            )
        })?;
        self.with(|g| {
            g.children.push(child);
            g.st.processes.push(ProcRec {
                node: node.to_string(),
                name: name.to_string(),
                pid,
                argv: argv.to_vec(),
                log: log.clone(),
            });
            Ok(())
        })?;
        Ok(Spawned {
            node: node.into(),
            name: name.into(),
            pid,
            log,
        })
    }

    // ------------------------------------------------------------ public API

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current run state (what `lab status` reads from disk).
    pub fn state(&self) -> RunState {
        self.g().st.clone()
    }

    /// Where the logs are.
    pub fn log_dir(&self) -> PathBuf {
        self.g().st.log_dir.clone()
    }

    /// The namespace of `node`.
    pub fn netns(&self, node: &str) -> Result<String> {
        let g = self.g();
        if let Some(n) = g.st.node(node) {
            return Ok(n.netns.clone());
        }
        let known: Vec<&str> = g.st.nodes.iter().map(|n| n.name.as_str()).collect();
        bail!(
            "no node `{node}` in lab `{}` (nodes: {})",
            self.inner.name,
            known.join(", ")
        )
    }

    /// Runs a command inside `node` and returns its output, whatever its exit
    /// status.
    pub fn exec<S: AsRef<OsStr>>(&self, node: &str, argv: &[S]) -> Result<Output> {
        let ns = self.netns(node)?;
        netns::output(&mut netns::exec_cmd(&ns, argv))
    }

    /// Runs a command inside `node`; an error unless it exits 0. Returns stdout.
    pub fn exec_ok<S: AsRef<OsStr>>(&self, node: &str, argv: &[S]) -> Result<String> {
        let ns = self.netns(node)?;
        netns::run(&mut netns::exec_cmd(&ns, argv)).with_context(|| format!("on node `{node}`"))
    }

    /// Runs a shell snippet inside `node` (`sh -c`); an error unless it exits 0.
    pub fn sh(&self, node: &str, script: &str) -> Result<String> {
        self.exec_ok(node, &["sh", "-c", script])
    }

    /// Starts a tracked process inside `node`; its output goes to
    /// `LOG_DIR/NODE/NAME.log`. It is stopped at teardown.
    pub fn spawn<S: AsRef<str>>(&self, node: &str, name: &str, argv: &[S]) -> Result<Spawned> {
        let argv: Vec<String> = argv.iter().map(|s| s.as_ref().to_string()).collect();
        self.spawn_env(node, name, &argv, &[])
    }

    /// Stops a process started with `spawn` (SIGTERM, then SIGKILL after 3 s).
    pub fn stop(&self, node: &str, name: &str) -> Result<()> {
        let rec = {
            let mut g = self.g();
            let i =
                g.st.processes
                    .iter()
                    .position(|p| p.node == node && p.name == name)
                    .ok_or_else(|| anyhow!("no process `{name}` on node `{node}`"))?;
            let rec = g.st.processes.remove(i);
            g.save()?;
            rec
        };
        let left = crate::procs::terminate(&[rec.pid], Duration::from_secs(3));
        self.g()
            .children
            .retain_mut(|c| c.try_wait().map(|s| s.is_none()).unwrap_or(false));
        if !left.is_empty() {
            bail!("process `{name}` (pid {}) survived SIGKILL", rec.pid.pid);
        }
        Ok(())
    }

    /// The pid of a process started with `spawn` (or from the topology), while it runs.
    pub fn pid(&self, node: &str, name: &str) -> Option<u32> {
        let g = self.g();
        g.st.processes
            .iter()
            .find(|p| p.node == node && p.name == name && p.pid.alive())
            .map(|p| p.pid.pid)
    }

    /// Whether a process started with `spawn` (or from the topology) still runs.
    pub fn alive(&self, node: &str, name: &str) -> bool {
        let g = self.g();
        g.st.processes
            .iter()
            .any(|p| p.node == node && p.name == name && p.pid.alive())
    }

    fn daemon_rec(&self, node: &str, daemon: &str) -> Result<(String, DaemonRec)> {
        let g = self.g();
        let n = g.st.node(node).ok_or_else(|| anyhow!("no node `{node}`"))?;
        let d =
            n.daemons.iter().find(|d| d.name == daemon).ok_or_else(|| {
                anyhow!("node `{node}` has no FRR daemon `{daemon}` in its topology")
            })?;
        Ok((n.pathspace.clone(), d.clone()))
    }

    /// Stops one FRR daemon of `node` (SIGTERM, SIGKILL after 5 s), e.g. to
    /// see how others cope; `start_daemon` brings it back.
    pub fn stop_daemon(&self, node: &str, daemon: &str) -> Result<()> {
        let (_, rec) = self.daemon_rec(node, daemon)?;
        if let Some(p) = rec.pid {
            let left = crate::procs::terminate(&[p], Duration::from_secs(5));
            if !left.is_empty() {
                bail!("{daemon} on `{node}` (pid {}) survived SIGKILL", p.pid);
            }
        }
        self.with(|g| {
            if let Some(d) =
                g.st.nodes
                    .iter_mut()
                    .find(|n| n.name == node)
                    .and_then(|n| n.daemons.iter_mut().find(|d| d.name == daemon))
            {
                d.pid = None;
            }
            Ok(())
        })
    }

    /// Starts a daemon of `node` stopped with `stop_daemon` again, with the
    /// same configuration, arguments and log file; waits until it is ready.
    pub fn start_daemon(&self, node: &str, daemon: &str) -> Result<ProcId> {
        let (ps, rec) = self.daemon_rec(node, daemon)?;
        if let Some(p) = rec.pid.filter(ProcId::alive) {
            bail!("{daemon} on `{node}` is already running (pid {})", p.pid);
        }
        let pid = frr::start_daemon(
            &ps,
            daemon,
            &rec.config,
            &rec.log,
            &rec.args,
            UpOptions::default().daemon_timeout,
        )
        .with_context(|| format!("restart {daemon} on `{node}`"))?;
        self.with(|g| {
            if let Some(d) =
                g.st.nodes
                    .iter_mut()
                    .find(|n| n.name == node)
                    .and_then(|n| n.daemons.iter_mut().find(|d| d.name == daemon))
            {
                d.pid = Some(pid);
            }
            Ok(())
        })?;
        Ok(pid)
    }

    fn pathspace(&self, node: &str) -> Result<String> {
        let g = self.g();
        match g.st.node(node) {
            Some(n) if !n.daemons.is_empty() => Ok(n.pathspace.clone()),
            Some(_) => bail!("node `{node}` runs no FRR daemon"),
            None => {
                drop(g);
                self.netns(node)
            }
        }
    }

    /// `vtysh -N PATHSPACE -c ...` for `node`; several commands may be given one
    /// per line. Returns stdout.
    pub fn vtysh(&self, node: &str, cmd: &str) -> Result<String> {
        frr::vtysh(&self.pathspace(node)?, cmd)
    }

    /// `vtysh` with a `... json` command, parsed.
    pub fn vtysh_json(&self, node: &str, cmd: &str) -> Result<Value> {
        frr::vtysh_json(&self.pathspace(node)?, cmd)
    }

    /// Waits until OSPF on `node` has the given neighbour (or this many
    /// neighbours) Full. Returns how long it waited.
    pub fn wait_ospf_full(
        &self,
        node: &str,
        which: impl Into<OspfNeighbors>,
        timeout: Duration,
    ) -> Result<Duration> {
        let which = which.into();
        let ps = self.pathspace(node)?;
        let t0 = Instant::now();
        let desc = match which {
            OspfNeighbors::RouterId(r) => format!("OSPF neighbour {r} to be Full on `{node}`"),
            OspfNeighbors::Count(n) => format!("{n} OSPF neighbour(s) to be Full on `{node}`"),
        };
        wait_until(&desc, timeout, || -> Result<(), String> {
            let nbrs = frr::ospf_neighbors(&ps).map_err(|e| format!("{e:#}"))?;
            let full = |s: &str| s.starts_with("Full");
            let ok = match which {
                OspfNeighbors::RouterId(r) => nbrs
                    .iter()
                    .any(|(id, st, _)| *id == r.to_string() && full(st)),
                OspfNeighbors::Count(n) => nbrs.iter().filter(|(_, st, _)| full(st)).count() >= n,
            };
            if ok {
                Ok(())
            } else if nbrs.is_empty() {
                Err("no neighbours".into())
            } else {
                Err(nbrs
                    .iter()
                    .map(|(id, st, ifc)| format!("{id} {st} on {ifc}"))
                    .collect::<Vec<_>>()
                    .join(", "))
            }
        })?;
        Ok(t0.elapsed())
    }

    /// Waits until `node`'s BGP session with `peer` (address or interface) is
    /// Established. Returns how long it waited.
    pub fn wait_bgp_established(
        &self,
        node: &str,
        peer: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        let ps = self.pathspace(node)?;
        let t0 = Instant::now();
        wait_until(
            &format!("BGP session {node} -> {peer} to be Established"),
            timeout,
            || -> Result<(), String> {
                let v = frr::vtysh_json(&ps, &format!("show bgp neighbors {peer} json"))
                    .map_err(|e| format!("{e:#}"))?;
                match v
                    .get(peer)
                    .and_then(|p| p.get("bgpState"))
                    .and_then(Value::as_str)
                {
                    Some("Established") => Ok(()),
                    Some(s) => Err(format!("state {s}")),
                    None => Err(format!("no such peer: {v}")),
                }
            },
        )?;
        Ok(t0.elapsed())
    }

    /// Waits until exactly `prefix` is installed on `node`: in FRR's RIB and
    /// FIB when the node runs FRR (returns the RIB entries as JSON), in the
    /// kernel table otherwise (returns `ip route` output as a JSON string).
    pub fn wait_route(&self, node: &str, prefix: &str, timeout: Duration) -> Result<Value> {
        let cidr: Cidr = prefix.parse().map_err(|e: String| anyhow!(e))?;
        let net = cidr.network();
        let desc = format!("route {net} to be installed on `{node}`");
        match self.pathspace(node) {
            Ok(ps) => Ok(wait_until(&desc, timeout, || {
                match frr::installed_route(&ps, &net) {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err("not installed".into()),
                    Err(e) => Err(format!("{e:#}")),
                }
            })?),
            Err(_) => {
                let ns = self.netns(node)?;
                let fam = if net.is_ipv4() { "-4" } else { "-6" };
                let s = net.to_string();
                Ok(wait_until(&desc, timeout, || {
                    match ip_in(&ns, &[fam, "route", "show", "exact", &s]) {
                        Ok(o) if !o.trim().is_empty() => Ok(Value::String(o.trim().into())),
                        Ok(_) => Err("not in the kernel table".into()),
                        Err(e) => Err(format!("{e:#}")),
                    }
                })?)
            }
        }
    }

    /// The self-measured statistics of a wire link (delay/jitter/loss links).
    pub fn wire_stats(&self, link: &str) -> Result<WireStats> {
        let g = self.g();
        if let Some(w) = g.wires.iter().find(|w| w.spec().link == link) {
            return Ok(w.stats());
        }
        let rec =
            g.st.links
                .iter()
                .find(|l| l.name == link)
                .ok_or_else(|| anyhow!("no link `{link}`"))?;
        let w = rec
            .wire
            .as_ref()
            .ok_or_else(|| anyhow!("link `{link}` is a plain veth pair, not a wire"))?;
        WireStats::read(&w.stats)
    }

    /// Pings `dst` from `node` (built-in ICMP echo, no `ping` binary needed):
    /// `count` requests `interval` apart, each waiting up to 2 s for its reply.
    pub fn ping(&self, node: &str, dst: &str, count: u32, interval: Duration) -> Result<PingStats> {
        let ns = self.netns(node)?;
        let dst: std::net::IpAddr = dst
            .parse()
            .map_err(|_| anyhow!("`{dst}` is not an IP address"))?;
        crate::ping::ping_in(&ns, dst, count, interval, Duration::from_secs(2))
            .with_context(|| format!("ping {dst} from `{node}`"))
    }

    /// Nodes, links, processes alive, OSPF/BGP summaries.
    pub fn status(&self) -> Status {
        let st = self.state();
        let mut s = Status::collect(&st);
        let g = self.g();
        for l in &mut s.links {
            if let Some(w) = g.wires.iter().find(|w| w.spec().link == l.name) {
                l.wire = Some(w.stats());
                l.alive = true;
            }
        }
        s
    }

    /// Tears the lab down now and reports what could not be removed.
    pub fn down(self) -> Result<()> {
        let r = self.inner.teardown();
        signals::unregister(&self.inner);
        if r.is_clean() {
            Ok(())
        } else {
            Err(anyhow!(
                "lab `{}` teardown: {}",
                self.inner.name,
                r.problems.join("; ")
            ))
        }
    }

    /// Leaves the lab running after this process ends (what `lab up` does):
    /// the state on disk no longer names an owner, and `lab down` removes it.
    /// Wires must be processes (`UpOptions::wire_exe`).
    pub fn detach(self) -> Result<RunState> {
        let mut g = self.g();
        if !g.wires.is_empty() {
            bail!("cannot detach a lab whose wires are threads of this process");
        }
        g.st.owner = None;
        g.save()?;
        g.done = true;
        g.children.clear();
        if let Some(l) = g.lock.take() {
            drop(l.file);
        }
        let st = g.st.clone();
        drop(g);
        signals::unregister(&self.inner);
        Ok(st)
    }
}

impl Inner {
    /// Removes everything; idempotent; never stops half-way.
    pub(crate) fn teardown(&self) -> Report {
        let mut g = self.g.lock().unwrap_or_else(|e| e.into_inner());
        if g.done {
            return Report::default();
        }
        g.done = true;
        let mut r = Report::default();
        for w in g.wires.drain(..) {
            w.stop();
        }
        cleanup::teardown_state(&g.st, &mut r);
        for c in &mut g.children {
            let _ = c.try_wait();
        }
        g.children.clear();
        cleanup::sweep(&self.name, &mut r);
        if let Some(l) = g.lock.take() {
            l.release();
        }
        for p in &r.problems {
            eprintln!("lab {}: cleanup: {p}", self.name);
        }
        r
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.inner.teardown();
        signals::unregister(&self.inner);
    }
}

fn set_sysctls(ns: &str, kv: &[(String, String)]) -> Result<()> {
    let mut argv: Vec<String> = vec!["sysctl".into(), "-q".into(), "-w".into()];
    argv.extend(kv.iter().map(|(k, v)| format!("{k}={v}")));
    netns::run(&mut netns::exec_cmd(ns, &argv))?;
    Ok(())
}

fn add_addr(ns: &str, ifname: &str, a: &Cidr) -> Result<()> {
    let s = a.to_string();
    if a.is_ipv4() {
        ip_in(ns, &["addr", "add", &s, "dev", ifname])?;
    } else {
        ip_in(ns, &["-6", "addr", "add", &s, "dev", ifname, "nodad"])?;
    }
    Ok(())
}

fn configure_end(ns: &str, e: &End) -> Result<()> {
    ip_in(ns, &["link", "set", &e.ifname, "up"])?;
    for a in &e.addrs {
        add_addr(ns, &e.ifname, a).with_context(|| format!("{} on {}", a, e.ifname))?;
    }
    Ok(())
}

/// Arguments of the hidden `lab wire` subcommand for `spec`.
pub fn wire_args(spec: &WireSpec) -> Vec<String> {
    let mut v = vec![
        "wire".to_string(),
        "--link".into(),
        spec.link.clone(),
        "--a".into(),
        format!("{}:{}", spec.a_ns, spec.a_if),
        "--b".into(),
        format!("{}:{}", spec.b_ns, spec.b_if),
        "--delay-ns".into(),
        spec.delay.as_nanos().to_string(),
        "--jitter-ns".into(),
        spec.jitter.as_nanos().to_string(),
        "--loss".into(),
        spec.loss.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
        "--queue".into(),
        spec.queue.to_string(),
    ];
    if let Some(p) = &spec.stats_path {
        v.extend(["--stats".into(), p.display().to_string()]);
    }
    v
}
