//! Topology files (TOML), parsed once into checked, typed values.
//!
//! ```toml
//! name = "two"                                   # optional, default: file stem
//!
//! [nodes.r1]
//! loopback = ["192.0.2.1/32"]
//! routes = [{ to = "203.0.113.0/24", via = "198.51.100.2" }]
//! [nodes.r1.frr.ospfd]
//! config = """
//! router ospf
//!  network 198.51.100.0/30 area 0
//! """
//! [[nodes.r1.processes]]
//! name = "msfd"
//! cmd = ["ospf-msfd", "--config", "{config}"]
//! config = "..."
//!
//! [[links]]
//! a = { node = "r1", addrs = ["198.51.100.1/30"] }
//! b = { node = "r2", addrs = ["198.51.100.2/30"] }
//! delay_ms = 2.5
//! ```
//!
//! Every error names where it is (`nodes.r1.loopback[0]`, `links[2] (r1-r2).a.addrs[0]`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::addr::{ALLOWED_RANGES, Cidr, addr_allowed, scan_text};

/// FRR daemons the lab knows how to start, in start order. zebra first.
pub const FRR_DAEMONS: &[&str] = &[
    "zebra", "staticd", "bfdd", "ospfd", "ospf6d", "isisd", "ripd", "ripngd", "bgpd", "pimd",
    "pbrd", "vrrpd",
];

/// A topology that failed to load: every problem, each naming its place.
#[derive(Debug, thiserror::Error)]
pub struct TopologyError {
    pub source_file: Option<PathBuf>,
    pub problems: Vec<String>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source_file {
            Some(p) => write!(f, "invalid topology {}:", p.display())?,
            None => write!(f, "invalid topology:")?,
        }
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- file format

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Option<String>,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    links: Vec<RawLink>,
    #[serde(default)]
    lans: Vec<RawLan>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    #[serde(default)]
    loopback: Vec<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    sysctl: BTreeMap<String, toml::Value>,
    #[serde(default)]
    setup: Vec<String>,
    #[serde(default)]
    frr: BTreeMap<String, RawDaemon>,
    #[serde(default)]
    processes: Vec<RawProcess>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    config: Option<String>,
    file: Option<PathBuf>,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: String,
    via: Option<String>,
    dev: Option<String>,
    metric: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnd {
    node: String,
    ifname: Option<String>,
    #[serde(default)]
    addrs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: Option<String>,
    a: RawEnd,
    b: RawEnd,
    mtu: Option<u32>,
    delay_ms: Option<f64>,
    jitter_ms: Option<f64>,
    loss: Option<f64>,
    seed: Option<u64>,
    queue: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLan {
    name: String,
    switch: Option<String>,
    #[serde(default)]
    members: Vec<RawEnd>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCmd {
    Argv(Vec<String>),
    Shell(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: String,
    cmd: RawCmd,
    config: Option<String>,
    config_file: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

// ---------------------------------------------------------------- checked model

/// A checked topology. Paths in it are absolute; file contents are read in.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Lab name: `[A-Za-z0-9_]`, at most 16 characters (no `-`, so that the
    /// namespace prefix `lmsx-NAME-` is unambiguous).
    pub name: String,
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Relative paths (config files, commands) are resolved against this.
    pub base_dir: PathBuf,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub lans: Vec<Lan>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub loopback: Vec<Cidr>,
    pub routes: Vec<Route>,
    /// Namespace-local sysctls (`net.*` only), applied after the defaults
    /// (forwarding on, DAD off, rp_filter off).
    pub sysctl: Vec<(String, String)>,
    /// Shell commands run inside the node after links and before FRR
    /// (e.g. the macvlan of a VRRP router).
    pub setup: Vec<String>,
    /// FRR daemons in start order (zebra first, added when any daemon is given).
    pub daemons: Vec<Daemon>,
    pub processes: Vec<Process>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    pub name: String,
    pub config: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub to: Cidr,
    pub via: Option<std::net::IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct End {
    pub node: String,
    pub ifname: String,
    pub addrs: Vec<Cidr>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub a: End,
    pub b: End,
    pub mtu: Option<u32>,
    /// Present when the link is a user-space wire (delay, jitter or loss given).
    pub impair: Option<Impairment>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    pub delay: Duration,
    pub jitter: Duration,
    /// Percent, 0..=100.
    pub loss: f64,
    pub seed: u64,
    /// Frames queued per direction at most; more are dropped.
    pub queue: usize,
}

#[derive(Debug, Clone)]
pub struct Lan {
    pub name: String,
    /// The node whose namespace holds the bridge; `None`: a namespace of its own
    /// (`lmsx-LAB-LANNAME`).
    pub switch: Option<String>,
    pub members: Vec<End>,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub name: String,
    /// Argument vector; `{config}`, `{node}`, `{netns}`, `{topo_dir}`,
    /// `{log_dir}` and `{run_dir}` are substituted at start.
    pub argv: Vec<String>,
    pub config: Option<ProcessConfig>,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum ProcessConfig {
    /// Written to the run directory; `{config}` is its path.
    Inline(String),
    /// Used in place; `{config}` is this absolute path.
    File(PathBuf),
}

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

/// Checks a lab name (used in namespace names and paths).
pub fn check_lab_name(name: &str) -> Result<(), String> {
    if valid_name(name, 16, &[]) {
        Ok(())
    } else {
        Err(format!(
            "lab name `{name}`: use 1-16 characters from A-Z a-z 0-9 _ (no `-`: it separates lab and node in namespace names)"
        ))
    }
}

fn check_ifname(s: &str) -> Result<(), String> {
    if s == "lo" || !valid_name(s, 15, &['-', '.']) {
        Err(format!(
            "interface name `{s}`: 1-15 characters from A-Z a-z 0-9 _ - . and not `lo`"
        ))
    } else {
        Ok(())
    }
}

impl Topology {
    /// Reads and checks a topology file; relative paths in it are relative to
    /// the file's folder. The lab name defaults to the file stem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        let path = path.as_ref();
        let fail = |p: String| TopologyError {
            source_file: Some(path.to_path_buf()),
            problems: vec![p],
        };
        let text = fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let abs = fs::canonicalize(path).map_err(|e| fail(format!("cannot resolve: {e}")))?;
        let base = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let stem = abs
            .file_stem()
            .map(|s| s.to_string_lossy().replace('-', "_"))
            .unwrap_or_else(|| "lab".into());
        let mut t = Self::parse_with(&text, &base, Some(&stem)).map_err(|mut e| {
            e.source_file = Some(path.to_path_buf());
            e
        })?;
        t.source = Some(abs);
        Ok(t)
    }

    /// Parses a topology from a string; relative paths are relative to the
    /// current directory. `name` must be set in the text.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self::parse_with(text, &base, None)
    }

    /// Parses with an explicit base folder and default name.
    pub fn parse_with(
        text: &str,
        base_dir: &Path,
        default_name: Option<&str>,
    ) -> Result<Topology, TopologyError> {
        let raw: RawTopology = toml::from_str(text).map_err(|e| TopologyError {
            source_file: None,
            problems: vec![e.to_string().trim_end().to_string()],
        })?;
        let mut p = Vec::new();
        let t = resolve(raw, base_dir, default_name, &mut p);
        if p.is_empty() {
            Ok(t)
        } else {
            Err(TopologyError {
                source_file: None,
                problems: p,
            })
        }
    }

    /// Gives the lab another name (tests use unique names).
    pub fn with_name(mut self, name: &str) -> Result<Topology, TopologyError> {
        check_lab_name(name).map_err(|e| TopologyError {
            source_file: self.source.clone(),
            problems: vec![e],
        })?;
        self.name = name.to_string();
        Ok(self)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

fn resolve(
    raw: RawTopology,
    base: &Path,
    default_name: Option<&str>,
    p: &mut Vec<String>,
) -> Topology {
    let name = match raw.name.as_deref().or(default_name) {
        Some(n) => {
            if let Err(e) = check_lab_name(n) {
                p.push(format!("name: {e}"));
            }
            n.to_string()
        }
        None => {
            p.push("name: missing (set `name = \"...\"`)".into());
            String::new()
        }
    };
    if raw.nodes.is_empty() {
        p.push("nodes: at least one node is needed".into());
    }

    let node_names: BTreeSet<&str> = raw.nodes.keys().map(String::as_str).collect();
    // Interface names per node, to catch duplicates.
    let mut ifnames: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();

    let mut nodes = Vec::new();
    for (nname, rn) in &raw.nodes {
        let at = format!("nodes.{nname}");
        if !valid_name(nname, 12, &['-']) {
            p.push(format!(
                "{at}: node name: use 1-12 characters from A-Z a-z 0-9 _ -"
            ));
        }
        nodes.push(resolve_node(nname, rn, base, &at, p));
    }

    let mut end = |e: &RawEnd, at: &str, default_if: String, p: &mut Vec<String>| -> End {
        if !node_names.contains(e.node.as_str()) {
            p.push(format!("{at}.node: no node `{}`", e.node));
        }
        let ifname = e.ifname.clone().unwrap_or(default_if);
        if let Err(err) = check_ifname(&ifname) {
            p.push(format!("{at}.ifname: {err}"));
        }
        if !ifnames
            .entry(e.node.clone())
            .or_default()
            .insert(ifname.clone())
        {
            p.push(format!(
                "{at}.ifname: node `{}` already has an interface `{ifname}` (set `ifname`)",
                e.node
            ));
        }
        End {
            node: e.node.clone(),
            ifname,
            addrs: addrs(&e.addrs, &format!("{at}.addrs"), p),
        }
    };

    let mut links = Vec::new();
    let mut link_names = BTreeSet::new();
    for (i, rl) in raw.links.iter().enumerate() {
        let lname = rl
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", rl.a.node, rl.b.node));
        let at = format!("links[{i}] ({lname})");
        if !link_names.insert(lname.clone()) {
            p.push(format!(
                "{at}: another link is named `{lname}` (set `name` on parallel links)"
            ));
        }
        if rl.a.node == rl.b.node {
            p.push(format!("{at}: both ends on node `{}`", rl.a.node));
        }
        let trunc = |s: String| s.chars().take(15).collect::<String>();
        let a = end(
            &rl.a,
            &format!("{at}.a"),
            trunc(format!("eth-{}", rl.b.node)),
            p,
        );
        let b = end(
            &rl.b,
            &format!("{at}.b"),
            trunc(format!("eth-{}", rl.a.node)),
            p,
        );
        if let Some(m) = rl.mtu
            && !(68..=65535).contains(&m)
        {
            p.push(format!("{at}.mtu: {m} is not within 68..=65535"));
        }
        let impair = if rl.delay_ms.is_some() || rl.jitter_ms.is_some() || rl.loss.is_some() {
            let ms = |v: Option<f64>, field: &str, p: &mut Vec<String>| -> Duration {
                let v = v.unwrap_or(0.0);
                if !(0.0..=10_000.0).contains(&v) || v.is_nan() {
                    p.push(format!("{at}.{field}: {v} is not within 0..=10000 ms"));
                    return Duration::ZERO;
                }
                Duration::from_nanos((v * 1e6).round() as u64)
            };
            let delay = ms(rl.delay_ms, "delay_ms", p);
            let jitter = ms(rl.jitter_ms, "jitter_ms", p);
            let loss = rl.loss.unwrap_or(0.0);
            if !(0.0..=100.0).contains(&loss) || loss.is_nan() {
                p.push(format!("{at}.loss: {loss} is not a percentage (0..=100)"));
            }
            let queue = rl.queue.unwrap_or(1000);
            if queue == 0 {
                p.push(format!("{at}.queue: must be at least 1"));
            }
            Some(Impairment {
                delay,
                jitter,
                loss,
                seed: rl.seed.unwrap_or(0x5eed_0000 + i as u64),
                queue,
            })
        } else {
            if rl.seed.is_some() || rl.queue.is_some() {
                p.push(format!(
                    "{at}: `seed`/`queue` only apply to wires (set delay_ms, jitter_ms or loss)"
                ));
            }
            None
        };
        links.push(Link {
            name: lname,
            a,
            b,
            mtu: rl.mtu,
            impair,
        });
    }

    let mut lans = Vec::new();
    for (i, rl) in raw.lans.iter().enumerate() {
        let at = format!("lans[{i}] ({})", rl.name);
        if !valid_name(&rl.name, 12, &['-']) {
            p.push(format!(
                "{at}.name: use 1-12 characters from A-Z a-z 0-9 _ -"
            ));
        }
        if node_names.contains(rl.name.as_str()) && rl.switch.is_none() {
            p.push(format!(
                "{at}.name: a node has the same name (its bridge namespace would clash)"
            ));
        }
        if let Some(s) = &rl.switch
            && !node_names.contains(s.as_str())
        {
            p.push(format!("{at}.switch: no node `{s}`"));
        }
        if lans.iter().any(|l: &Lan| l.name == rl.name) {
            p.push(format!("{at}.name: duplicate LAN name"));
        }
        let mut seen = BTreeSet::new();
        let members = rl
            .members
            .iter()
            .enumerate()
            .map(|(j, m)| {
                if !seen.insert(m.node.clone()) {
                    p.push(format!("{at}.members[{j}]: node `{}` listed twice", m.node));
                }
                let default_if = if rl.switch.as_deref() == Some(m.node.as_str()) {
                    format!("br-{}", rl.name)
                } else {
                    rl.name.clone()
                };
                end(
                    m,
                    &format!("{at}.members[{j}]"),
                    default_if.chars().take(15).collect(),
                    p,
                )
            })
            .collect();
        lans.push(Lan {
            name: rl.name.clone(),
            switch: rl.switch.clone(),
            members,
        });
    }

    // Routes through a named device must name one the node has.
    for n in &nodes {
        for (i, r) in n.routes.iter().enumerate() {
            if let Some(d) = &r.dev {
                let known = ifnames.get(&n.name).is_some_and(|s| s.contains(d)) || d == "lo";
                if !known {
                    p.push(format!(
                        "nodes.{}.routes[{i}].dev: node has no interface `{d}`",
                        n.name
                    ));
                }
            }
        }
    }

    Topology {
        name,
        source: None,
        base_dir: base.to_path_buf(),
        nodes,
        links,
        lans,
    }
}

fn addrs(list: &[String], at: &str, p: &mut Vec<String>) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match s.parse::<Cidr>() {
            Ok(c) => match c.check_allowed() {
                Ok(()) => out.push(c),
                Err(e) => p.push(format!("{at}[{i}]: {e}")),
            },
            Err(e) => p.push(format!("{at}[{i}]: {e}")),
        }
    }
    out
}

fn scan(text: &str, at: &str, p: &mut Vec<String>) {
    for (line, tok) in scan_text(text) {
        p.push(format!(
            "{at}, line {line}: address `{tok}` is outside {ALLOWED_RANGES}"
        ));
    }
}

fn resolve_node(name: &str, rn: &RawNode, base: &Path, at: &str, p: &mut Vec<String>) -> Node {
    let loopback = addrs(&rn.loopback, &format!("{at}.loopback"), p);

    let mut routes = Vec::new();
    for (i, r) in rn.routes.iter().enumerate() {
        let rat = format!("{at}.routes[{i}]");
        let to = match r.to.as_str() {
            "default" | "default4" => Ok("0.0.0.0/0".parse::<Cidr>().expect("literal")),
            "default6" => Ok("::/0".parse::<Cidr>().expect("literal")),
            s => s.parse::<Cidr>(),
        };
        let to = match to {
            Ok(c) if c.len == 0 || c.is_allowed() => Some(c.network()),
            Ok(c) => {
                p.push(format!("{rat}.to: {c} is outside {ALLOWED_RANGES}"));
                None
            }
            Err(e) => {
                p.push(format!("{rat}.to: {e}"));
                None
            }
        };
        let via = match &r.via {
            Some(v) => match v.parse::<std::net::IpAddr>() {
                Ok(a) if addr_allowed(a) => Some(a),
                Ok(a) => {
                    p.push(format!("{rat}.via: {a} is outside {ALLOWED_RANGES}"));
                    None
                }
                Err(_) => {
                    p.push(format!("{rat}.via: `{v}` is not an IP address"));
                    None
                }
            },
            None => None,
        };
        if r.via.is_none() && r.dev.is_none() {
            p.push(format!("{rat}: give `via` (gateway) or `dev` (interface)"));
        }
        if let (Some(to), Some(via)) = (to, via)
            && to.is_ipv4() != via.is_ipv4()
        {
            p.push(format!("{rat}: `to` and `via` are of different families"));
        }
        if let Some(to) = to {
            routes.push(Route {
                to,
                via,
                dev: r.dev.clone(),
                metric: r.metric,
            });
        }
    }

    let mut sysctl = Vec::new();
    for (k, v) in &rn.sysctl {
        if !k.starts_with("net.") || k.contains('/') || k.contains("..") {
            p.push(format!(
                "{at}.sysctl.{k}: only per-namespace `net.*` keys are allowed"
            ));
            continue;
        }
        let v = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => u8::from(*b).to_string(),
            other => {
                p.push(format!(
                    "{at}.sysctl.{k}: `{other}` is not a string or number"
                ));
                continue;
            }
        };
        sysctl.push((k.clone(), v));
    }

    for (i, s) in rn.setup.iter().enumerate() {
        scan(s, &format!("{at}.setup[{i}]"), p);
    }

    let mut daemons = Vec::new();
    for (dname, d) in &rn.frr {
        let dat = format!("{at}.frr.{dname}");
        if !FRR_DAEMONS.contains(&dname.as_str()) {
            p.push(format!(
                "{dat}: unknown FRR daemon (known: {})",
                FRR_DAEMONS.join(", ")
            ));
            continue;
        }
        let config = match (&d.config, &d.file) {
            (Some(_), Some(_)) => {
                p.push(format!("{dat}: give `config` or `file`, not both"));
                String::new()
            }
            (Some(c), None) => c.clone(),
            (None, Some(f)) => {
                let path = base.join(f);
                match fs::read_to_string(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        p.push(format!("{dat}.file: cannot read {}: {e}", path.display()));
                        String::new()
                    }
                }
            }
            (None, None) => String::new(),
        };
        scan(&config, &format!("{dat} config"), p);
        if dname == "ospfd" && has_router_info(&config) {
            p.push(format!(
                "{dat}: `router-info` makes ospfd own opaque type 4 and the OSPF API client \
                 (ospf-msfd) cannot register it; remove it (keep `capability opaque`)"
            ));
        }
        daemons.push(Daemon {
            name: dname.clone(),
            config,
            args: d.args.clone(),
        });
    }
    if !daemons.is_empty() && !daemons.iter().any(|d| d.name == "zebra") {
        daemons.push(Daemon {
            name: "zebra".into(),
            config: String::new(),
            args: Vec::new(),
        });
    }
    daemons.sort_by_key(|d| FRR_DAEMONS.iter().position(|x| *x == d.name));

    let mut processes: Vec<Process> = Vec::new();
    for (i, rp) in rn.processes.iter().enumerate() {
        let pat = format!("{at}.processes[{i}] ({})", rp.name);
        if !valid_name(&rp.name, 32, &['-', '.']) {
            p.push(format!(
                "{pat}.name: use 1-32 characters from A-Z a-z 0-9 _ - ."
            ));
        }
        if processes.iter().any(|q| q.name == rp.name) {
            p.push(format!("{pat}.name: duplicate process name on this node"));
        }
        let argv = match &rp.cmd {
            RawCmd::Argv(v) => v.clone(),
            RawCmd::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        };
        if argv.is_empty() || argv[0].is_empty() {
            p.push(format!("{pat}.cmd: empty command"));
        }
        scan(&argv.join(" "), &format!("{pat}.cmd"), p);
        let config = match (&rp.config, &rp.config_file) {
            (Some(_), Some(_)) => {
                p.push(format!("{pat}: give `config` or `config_file`, not both"));
                None
            }
            (Some(c), None) => {
                scan(c, &format!("{pat}.config"), p);
                Some(ProcessConfig::Inline(c.clone()))
            }
            (None, Some(f)) => {
                let path = base.join(f);
                match fs::read_to_string(&path) {
                    Ok(c) => scan(&c, &format!("{pat}.config_file {}", path.display()), p),
                    Err(e) => p.push(format!(
                        "{pat}.config_file: cannot read {}: {e}",
                        path.display()
                    )),
                }
                Some(ProcessConfig::File(path))
            }
            (None, None) => None,
        };
        processes.push(Process {
            name: rp.name.clone(),
            argv,
            config,
            env: rp.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        });
    }

    Node {
        name: name.to_string(),
        loopback,
        routes,
        sysctl,
        setup: rn.setup.clone(),
        daemons,
        processes,
    }
}

fn has_router_info(config: &str) -> bool {
    config.lines().any(|l| {
        let l = l.trim();
        l.starts_with("router-info") || l.starts_with("ospf router-info")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t1"
[nodes.r1]
loopback = ["192.0.2.1/32", "2001:db8::1/128"]
routes = [{ to = "203.0.113.0/24", via = "198.51.100.2" }]
[nodes.r1.frr.ospfd]
config = "router ospf\n network 198.51.100.0/30 area 0\n"
[nodes.r2]
[[links]]
a = { node = "r1", addrs = ["198.51.100.1/30"] }
b = { node = "r2", addrs = ["198.51.100.2/30"] }
delay_ms = 2.5
[[lans]]
name = "lan1"
members = [{ node = "r1", addrs = ["203.0.113.1/24"] }, { node = "r2" }]
"#;

    #[test]
    fn parses_a_good_topology() {
        let t = Topology::parse(GOOD).unwrap();
        assert_eq!(t.name, "t1");
        let r1 = t.node("r1").unwrap();
        assert_eq!(
            r1.daemons
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["zebra", "ospfd"]
        );
        let l = t.link("r1-r2").unwrap();
        assert_eq!(l.a.ifname, "eth-r2");
        assert_eq!(l.b.ifname, "eth-r1");
        assert_eq!(l.impair.unwrap().delay, Duration::from_micros(2500));
        assert_eq!(t.lans[0].members[1].ifname, "lan1");
    }

    #[test]
    fn refuses_addresses_outside_the_ranges_naming_the_place() {
        let bad = GOOD
            .replace("192.0.2.1/32", "10.0.0.1/32")
            .replace("198.51.100.2/30\"]", "198.51.100.2/16\"]")
            .replace("area 0", "area 0\\n neighbor 172.16.0.1 remote-as 1");
        let e = Topology::parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("nodes.r1.loopback[0]: 10.0.0.1/32 is outside"),
            "{e}"
        );
        assert!(
            e.contains("links[0] (r1-r2).b.addrs[0]: 198.51.100.2/16 is outside"),
            "{e}"
        );
        assert!(
            e.contains("nodes.r1.frr.ospfd config, line 3: address `172.16.0.1`"),
            "{e}"
        );
    }

    #[test]
    fn refuses_bad_names_and_router_info() {
        let e = Topology::parse(&GOOD.replace("name = \"t1\"", "name = \"t-1\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `-`"), "{e}");
        let e =
            Topology::parse(&GOOD.replace("router ospf\\n", "router ospf\\n router-info area\\n"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("router-info"), "{e}");
        let e = Topology::parse(&GOOD.replace(
            "[nodes.r2]",
            "[nodes.r2]\nsysctl = { \"kernel.pid_max\" = 5 }",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("nodes.r2.sysctl.kernel.pid_max"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Topology::parse(&GOOD.replace("delay_ms", "delay"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `delay`"), "{e}");
    }
}
