//! Issue #6, section 5 (the original paper's figure 6): how long an ITR waits
//! for a Map-Reply through LISP-MSX (MR1: a direct Map-Request to the peer
//! mapping system's Map-Server under a CPNP agreement), through DDT with the
//! root in the same LAN (MR2), and through DDT with a distant root (MR3),
//! with cold and with warm referral caches.
//!
//! The lab is `topologies/fig6.toml`; the geography behind its delays is in
//! the crate's README. Everything is real: lisp-agent processes in network
//! namespaces, CPNP over TCP, the lab's user-space wires for the delays. The
//! only thing injected is MR1's discovery of AS65002 (what frr-bgp-plugin
//! would report from BGP), through the agent API.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use lab::{Lab, Topology};
use lisp_msx_proto::api;
use lisp_msx_proto::grpc::{self, AgentClient};
use plotters::style::RGBColor;
use serde::Serialize;
use tonic::transport::Channel;

use crate::plot::{Curve, Panel, cdf_svg};
use crate::probe::{Answer, ProbeClient};
use crate::progress::Progress;
use crate::stats::{Summary, markdown, table};

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The ITR (the prober's address) and the EID it asks for.
pub const ITR: IpAddr = v4(192, 0, 2, 10);
pub const EID: IpAddr = v4(203, 0, 113, 70);
/// What the remote site's ETR registers, and AS65002's EID space.
pub const ETR_PREFIX: &str = "203.0.113.64/26";
pub const AS65002_PREFIX: &str = "203.0.113.0/25";
/// AS65002's Map-Server (the LISP-MSX provider) and its identity.
pub const MSX_MS: IpAddr = v4(198, 51, 100, 10);
pub const MSX_MS_ID: u32 = 2;
pub const MSX_AS: u32 = 65002;
/// The run-time directory named in the topology (sockets, agent state).
pub const TOPOLOGY_RUN_DIR: &str = "/run/lisp-msx-fig6/";

/// One of the three ways to resolve.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The Map-Resolver's node in the topology.
    pub node: &'static str,
    pub name: &'static str,
    pub label: &'static str,
    pub addr: IpAddr,
    color: RGBColor,
}

pub const CASES: [Case; 3] = [
    Case {
        node: "mr1",
        name: "msx",
        label: "LISP-MSX, direct to the peer MS (MR1)",
        addr: v4(192, 0, 2, 11),
        color: RGBColor(31, 119, 180),
    },
    Case {
        node: "mr2",
        name: "ddt-near",
        label: "DDT, root in the same LAN (MR2)",
        addr: v4(192, 0, 2, 12),
        color: RGBColor(255, 127, 14),
    },
    Case {
        node: "mr3",
        name: "ddt-far",
        label: "DDT, root in Barcelona (MR3)",
        addr: v4(192, 0, 2, 13),
        color: RGBColor(214, 39, 40),
    },
];

/// Nodes running lisp-agent, and the nodes the checks read.
const AGENTS: [&str; 9] = [
    "mr1", "mr2", "mr3", "root1", "bcn", "msxms", "ddtnode", "ddtms", "etr",
];
const ROOTS: [&str; 2] = ["root1", "bcn"];
const MAP_SERVERS: [&str; 2] = ["msxms", "ddtms"];

pub const CACHES: [&str; 2] = ["cold", "warm"];

#[derive(Debug, Clone)]
pub struct Options {
    /// Resolutions per case (per Map-Resolver and cache state).
    pub rounds: usize,
    pub lab_name: String,
    pub topology: PathBuf,
    /// Where `lisp-agent` is.
    pub bin_dir: PathBuf,
    /// The `fig6` executable (re-run as `fig6 probe` inside the ITR).
    pub probe_exe: PathBuf,
    /// CSV, SVG, JSON and Markdown go here.
    pub out_dir: PathBuf,
    /// Per Map-Request.
    pub timeout: Duration,
    pub progress: bool,
}

impl Options {
    /// Defaults for the crate's own layout: the topology next to the crate,
    /// results in `scenarios/results`, binaries next to `exe`.
    pub fn defaults(exe: &Path) -> Options {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Options {
            rounds: 700,
            lab_name: "fig6".into(),
            topology: crate_dir.join("topologies/fig6.toml"),
            bin_dir: exe.parent().map(Path::to_path_buf).unwrap_or_default(),
            probe_exe: exe.to_path_buf(),
            out_dir: crate_dir.join("results"),
            timeout: Duration::from_secs(2),
            progress: true,
        }
    }
}

/// How long each step took, seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub lab_up: f64,
    pub agents_ready: f64,
    pub registered: f64,
    /// From the discovery injection to the agreement on both sides.
    pub agreement: f64,
    pub first_round: f64,
    pub cold: f64,
    pub warm: f64,
    pub total: f64,
}

/// The self-measured precision of one wire.
#[derive(Debug, Clone, Serialize)]
pub struct WireInfo {
    pub link: String,
    pub delay_ms: f64,
    pub frames: u64,
    pub error_p50_us: f64,
    pub error_p99_us: f64,
}

/// Evidence that each Map-Resolver took the path it is meant to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    /// Map-Resolver node → `show lisp map-resolver` served_by counters.
    pub served_by: BTreeMap<String, BTreeMap<String, u64>>,
    /// Map-Referrals sent by each DDT root during the cold and the warm phase.
    pub root_referrals_cold: BTreeMap<String, u64>,
    pub root_referrals_warm: BTreeMap<String, u64>,
    /// MR1's agreement with AS65002 (customer/provider identifiers).
    pub agreement_id: String,
    /// MR2's referral cache after the warm phase (`prefix action -> referrals`).
    pub referral_cache_mr2: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub rounds: usize,
    pub lab: String,
    pub summaries: Vec<Summary>,
    pub timings: Timings,
    pub wires: Vec<WireInfo>,
    pub checks: Checks,
    pub files: Vec<PathBuf>,
}

impl Report {
    pub fn summary(&self, cache: &str, case: &str) -> Option<&Summary> {
        self.summaries
            .iter()
            .find(|s| s.cache == cache && s.case == case)
    }

    pub fn median(&self, cache: &str, case: &str) -> Option<f64> {
        self.summary(cache, case).map(|s| s.median_ms)
    }

    pub fn table(&self) -> String {
        table(&self.summaries)
    }
}

/// The latencies gathered for one cache state: per case, the answers in
/// round order.
type Samples = Vec<Vec<Option<Answer>>>;

/// The agent API of every agent, over its Unix socket.
struct Agents {
    rt: tokio::runtime::Runtime,
    sockets: BTreeMap<String, PathBuf>,
    clients: BTreeMap<String, AgentClient<Channel>>,
}

impl Agents {
    fn new(run_dir: &Path) -> Result<Agents> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let sockets = AGENTS
            .iter()
            .map(|n| (n.to_string(), run_dir.join(format!("{n}.sock"))))
            .collect();
        Ok(Agents {
            rt,
            sockets,
            clients: BTreeMap::new(),
        })
    }

    /// Runs one API call on `node`'s agent (connecting first if needed).
    fn call<T, F, Fut>(&mut self, node: &str, f: F) -> Result<T>
    where
        F: FnOnce(AgentClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        if !self.clients.contains_key(node) {
            let sock = self
                .sockets
                .get(node)
                .ok_or_else(|| anyhow!("no agent on `{node}`"))?
                .clone();
            let c = self
                .rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), grpc::connect(&sock)).await
                })
                .map_err(|_| anyhow!("connect to {}: timed out", sock.display()))?
                .with_context(|| format!("agent on `{node}`"))?;
            self.clients.insert(node.to_string(), c);
        }
        let client = self
            .clients
            .get(node)
            .cloned()
            .ok_or_else(|| anyhow!("no client for `{node}`"))?;
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), f(client)).await });
        match r {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => {
                // A broken channel is dialled again next time.
                self.clients.remove(node);
                Err(anyhow!("agent on `{node}`: {}", status.message()))
            }
            Err(_) => {
                self.clients.remove(node);
                Err(anyhow!("agent on `{node}`: no answer in 10 s"))
            }
        }
    }

    fn counters(&mut self, node: &str) -> Result<std::collections::HashMap<String, u64>> {
        Ok(self
            .call(node, |mut c| async move {
                c.show_statistics(api::Empty {}).await
            })?
            .counters)
    }

    fn counter(&mut self, node: &str, name: &str) -> Result<u64> {
        Ok(self.counters(node)?.get(name).copied().unwrap_or(0))
    }

    fn served_by(&mut self, node: &str) -> Result<BTreeMap<String, u64>> {
        let r = self.call(node, |mut c| async move {
            c.show_map_resolver(api::Empty {}).await
        })?;
        Ok(r.served_by.into_iter().collect())
    }

    fn registered(&mut self, node: &str, prefix: &str) -> Result<bool> {
        let r = self.call(node, |mut c| async move {
            c.show_sites(api::ShowSitesRequest::default()).await
        })?;
        Ok(r.sites
            .iter()
            .flat_map(|s| s.prefixes.iter())
            .any(|p| p.eid_prefix == prefix && p.registered && !p.registrations.is_empty()))
    }

    fn agreements(&mut self, node: &str) -> Result<Vec<api::Agreement>> {
        let r = self.call(node, |mut c| async move {
            c.show_msx(api::ShowMsxRequest {
                what: "agreements".into(),
            })
            .await
        })?;
        Ok(r.agreements)
    }

    fn referral_cache(&mut self, node: &str) -> Result<Vec<String>> {
        let r = self.call(node, |mut c| async move {
            c.show_referral_cache(api::Empty {}).await
        })?;
        Ok(r.entries
            .iter()
            .map(|e| format!("{} {} -> {}", e.eid_prefix, e.action, e.referrals.join(" ")))
            .collect())
    }

    fn clear(&mut self, node: &str) -> Result<()> {
        // What `lispctl -s SOCK clear lisp map-cache` sends: on a
        // Map-Resolver it also empties the referral cache.
        self.call(node, |mut c| async move {
            c.clear_map_cache(api::ClearMapCacheRequest::default())
                .await
        })?;
        Ok(())
    }

    /// Tells MR1 what frr-bgp-plugin would learn from BGP: AS65002's mapping
    /// system, its contact and EID space.
    fn announce_as65002(&mut self) -> Result<()> {
        let sys = api::DiscoveredSystem {
            key: format!("bgp {AS65002_PREFIX} {MSX_MS}:{MSX_MS_ID}"),
            kind: "mapping-system".into(),
            eid_prefixes: vec![AS65002_PREFIX.into()],
            contact: MSX_MS.to_string(),
            ms_id: MSX_MS_ID,
            as_path: vec![MSX_AS],
            origin_as: MSX_AS,
            reachable: true,
            status: "enabled".into(),
            ..Default::default()
        };
        self.call("mr1", |mut c| async move {
            c.update_discovery(api::DiscoveryUpdate {
                source: "bgp".into(),
                adapter: "fig6".into(),
                full_set: true,
                systems: vec![sys],
                ..Default::default()
            })
            .await
        })?;
        Ok(())
    }
}

/// Removes the scenario's run-time directory when dropped (sockets, state).
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The topology with the binaries and run-time paths of this run.
fn prepare_topology(opts: &Options, run_dir: &Path) -> Result<Topology> {
    let mut topo = Topology::from_file(&opts.topology)?.with_name(&opts.lab_name)?;
    let agent = opts.bin_dir.join("lisp-agent");
    let agent = fs::canonicalize(&agent).with_context(|| {
        format!(
            "{} not built: run `cargo build --workspace` (or scripts/fig6.sh) first",
            agent.display()
        )
    })?;
    let run_prefix = format!("{}/", run_dir.display());
    for n in &mut topo.nodes {
        for p in &mut n.processes {
            if p.argv.first().is_some_and(|a| a.ends_with("/lisp-agent")) {
                p.argv[0] = agent.display().to_string();
            }
            if let Some(lab::topology::ProcessConfig::Inline(text)) = &mut p.config {
                *text = text.replace(TOPOLOGY_RUN_DIR, &run_prefix);
            }
        }
    }
    Ok(topo)
}

fn per_request(timeout: Duration) -> Duration {
    timeout * CASES.len() as u32 + Duration::from_secs(10)
}

/// Median of the answered requests so far, ms (for the progress line).
fn running_median(answers: &[Option<Answer>]) -> String {
    let mut v: Vec<u64> = answers
        .iter()
        .flatten()
        .filter(|a| !a.negative)
        .map(|a| a.us)
        .collect();
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    format!("{:.1}", v[v.len() / 2] as f64 / 1000.0)
}

/// Runs `rounds` rounds; `cold`: the Map-Resolvers' caches are cleared before
/// each one.
fn measure(
    agents: &mut Agents,
    probe: &mut ProbeClient,
    rounds: usize,
    cold: bool,
    progress: bool,
) -> Result<Samples> {
    let label = if cold { "cold" } else { "warm" };
    let mut samples: Samples = vec![Vec::with_capacity(rounds); CASES.len()];
    let mut bar = Progress::new(&format!("fig6 {label}"), rounds, progress);
    for _ in 0..rounds {
        if cold {
            for c in &CASES {
                agents.clear(c.node)?;
            }
        }
        let r = probe.round()?;
        ensure!(
            r.len() == CASES.len(),
            "the prober answered {} results",
            r.len()
        );
        for (i, a) in r.into_iter().enumerate() {
            samples[i].push(a);
        }
        bar.step(|| {
            CASES
                .iter()
                .zip(&samples)
                .map(|(c, s)| format!("{} {} ms", c.name, running_median(s)))
                .collect::<Vec<_>>()
                .join("  ")
        });
    }
    Ok(samples)
}

fn summarize(cache: &str, samples: &Samples) -> Vec<Summary> {
    CASES
        .iter()
        .zip(samples)
        .map(|(c, s)| {
            let ok: Vec<f64> = s
                .iter()
                .flatten()
                .filter(|a| !a.negative)
                .map(|a| a.us as f64 / 1000.0)
                .collect();
            let negative = s.iter().flatten().filter(|a| a.negative).count();
            Summary::new(cache, c.name, c.node, s.len(), negative, &ok)
        })
        .collect()
}

fn write_outputs(
    opts: &Options,
    all: &[(&str, Samples)],
    summaries: &[Summary],
    report_title: &str,
) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("create {}", opts.out_dir.display()))?;
    let samples_csv = opts.out_dir.join("fig6-samples.csv");
    let mut csv = String::from("cache,case,map_resolver,round,latency_us,result\n");
    for (cache, samples) in all {
        for (c, s) in CASES.iter().zip(samples) {
            for (i, a) in s.iter().enumerate() {
                let (us, result) = match a {
                    Some(a) if a.negative => (a.us.to_string(), "negative"),
                    Some(a) => (a.us.to_string(), "ok"),
                    None => (String::new(), "lost"),
                };
                csv += &format!("{cache},{},{},{i},{us},{result}\n", c.name, c.addr);
            }
        }
    }
    fs::write(&samples_csv, csv).with_context(|| format!("write {}", samples_csv.display()))?;

    let summary_csv = opts.out_dir.join("fig6-summary.csv");
    let mut csv = String::from(
        "cache,case,map_resolver,sent,answered,negative,lost,median_ms,p5_ms,p95_ms,p99_ms,min_ms,max_ms\n",
    );
    for s in summaries {
        csv += &format!(
            "{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
            s.cache,
            s.case,
            s.map_resolver,
            s.sent,
            s.answered,
            s.negative,
            s.lost,
            s.median_ms,
            s.p5_ms,
            s.p95_ms,
            s.p99_ms,
            s.min_ms,
            s.max_ms
        );
    }
    fs::write(&summary_csv, csv).with_context(|| format!("write {}", summary_csv.display()))?;

    let md = opts.out_dir.join("fig6-summary.md");
    fs::write(&md, markdown(summaries)).with_context(|| format!("write {}", md.display()))?;

    let svg = opts.out_dir.join("fig6.svg");
    let panels: Vec<Panel> = all
        .iter()
        .map(|(cache, samples)| Panel {
            title: format!("{cache} referral caches"),
            curves: CASES
                .iter()
                .zip(samples)
                .map(|(c, s)| Curve {
                    label: c.label.to_string(),
                    color: c.color,
                    latencies_ms: s
                        .iter()
                        .flatten()
                        .filter(|a| !a.negative)
                        .map(|a| a.us as f64 / 1000.0)
                        .collect(),
                    sent: s.len(),
                })
                .collect(),
        })
        .collect();
    cdf_svg(&svg, report_title, &panels)?;
    Ok(vec![samples_csv, summary_csv, md, svg])
}

/// Brings the lab up, negotiates, measures, writes the outputs, tears down.
pub fn run(opts: &Options) -> Result<Report> {
    ensure!(opts.rounds >= 1, "at least one round");
    ensure!(
        opts.probe_exe.exists(),
        "{} not found (the prober)",
        opts.probe_exe.display()
    );
    let t_start = Instant::now();
    let run_dir = PathBuf::from(format!("/run/lisp-msx-{}", opts.lab_name));
    let topo = prepare_topology(opts, &run_dir)?;
    let wires: Vec<(String, f64)> = topo
        .links
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.impair?.delay.as_secs_f64() * 1000.0)))
        .collect();
    eprintln!(
        "fig6: lab `{}`, {} rounds per case; wires: {}",
        opts.lab_name,
        opts.rounds,
        wires
            .iter()
            .map(|(n, d)| format!("{n} {d} ms one way"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    lab::ensure_root()?;
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(run_dir.join("state"))
        .with_context(|| format!("create {}", run_dir.display()))?;
    let _run_dir_guard = RunDir(run_dir.clone());
    let mut timings = Timings::default();

    let t = Instant::now();
    let lab = Lab::up(topo)?;
    timings.lab_up = t.elapsed().as_secs_f64();
    let log_dir = lab.log_dir();
    let result = run_in_lab(opts, &lab, &run_dir, &mut timings, &wires);
    if let Err(e) = &result {
        eprintln!(
            "fig6: failed: {e:#}\nfig6: agent logs are in {}/<node>/lisp-agent.log",
            log_dir.display()
        );
    }
    let down = lab.down();
    let mut report = result?;
    down?;
    timings.total = t_start.elapsed().as_secs_f64();
    report.timings = timings;
    let json = opts.out_dir.join("fig6-report.json");
    fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", json.display()))?;
    report.files.push(json);
    Ok(report)
}

fn run_in_lab(
    opts: &Options,
    lab: &Lab,
    run_dir: &Path,
    timings: &mut Timings,
    wires: &[(String, f64)],
) -> Result<Report> {
    const LONG: Duration = Duration::from_secs(60);
    let mut agents = Agents::new(run_dir)?;

    // Every agent answers its API.
    let t = Instant::now();
    for node in AGENTS {
        ensure!(
            lab.alive(node, "lisp-agent"),
            "lisp-agent on `{node}` exited: see {}",
            lab.log_dir().join(node).join("lisp-agent.log").display()
        );
        lab::wait_until(&format!("the agent API on `{node}`"), LONG, || {
            agents.counters(node).map(|_| ())
        })?;
    }
    timings.agents_ready = t.elapsed().as_secs_f64();

    // The ETR is registered with both Map-Servers.
    let t = Instant::now();
    for ms in MAP_SERVERS {
        lab::wait_until(
            &format!("{ETR_PREFIX} to be registered on `{ms}`"),
            LONG,
            || match agents.registered(ms, ETR_PREFIX) {
                Ok(true) => Ok(()),
                Ok(false) => Err("not registered".to_string()),
                Err(e) => Err(format!("{e:#}")),
            },
        )?;
    }
    timings.registered = t.elapsed().as_secs_f64();

    // MR1 discovers AS65002 and negotiates with its Map-Server over CPNP.
    let t = Instant::now();
    agents.announce_as65002()?;
    let client = lab::wait_until("MR1's CPNP agreement with AS65002", LONG, || {
        match agents.agreements("mr1") {
            Ok(v) => v
                .into_iter()
                .find(|a| a.role == "client" && a.direct_requests && a.peer == MSX_MS.to_string())
                .ok_or_else(|| "no client agreement yet".to_string()),
            Err(e) => Err(format!("{e:#}")),
        }
    })?;
    lab::wait_until("AS65002's side of the agreement", LONG, || {
        match agents.agreements("msxms") {
            Ok(v) => v
                .into_iter()
                .find(|a| {
                    a.role == "server" && a.customer_agreement_id == client.customer_agreement_id
                })
                .map(|_| ())
                .ok_or_else(|| "no server agreement yet".to_string()),
            Err(e) => Err(format!("{e:#}")),
        }
    })?;
    timings.agreement = t.elapsed().as_secs_f64();
    let mut checks = Checks {
        agreement_id: format!(
            "{}/{}",
            client.customer_agreement_id, client.provider_agreement_id
        ),
        ..Default::default()
    };

    // The prober, inside the ITR's namespace.
    let ns = lab.netns("itr")?;
    let mut argv: Vec<String> = vec![
        opts.probe_exe.display().to_string(),
        "probe".into(),
        "--src".into(),
        ITR.to_string(),
        "--eid".into(),
        EID.to_string(),
        "--timeout-ms".into(),
        opts.timeout.as_millis().to_string(),
    ];
    for c in &CASES {
        argv.extend(["--mr".into(), c.addr.to_string()]);
    }
    let probe_log_dir = lab.log_dir().join("itr");
    fs::create_dir_all(&probe_log_dir)
        .with_context(|| format!("create {}", probe_log_dir.display()))?;
    let mut probe = ProbeClient::start(
        lab::netns::exec_cmd(&ns, &argv),
        &probe_log_dir.join("probe.log"),
        per_request(opts.timeout),
    )?;

    // A first round where every Map-Resolver answers positively (ARP, the
    // agreement's route, the referral walk all work) before measuring.
    let t = Instant::now();
    lab::wait_until(
        "a positive Map-Reply through each Map-Resolver",
        LONG,
        || {
            for c in &CASES {
                if let Err(e) = agents.clear(c.node) {
                    return Err(format!("{e:#}"));
                }
            }
            match probe.round() {
                Ok(r) if r.iter().all(|a| a.is_some_and(|a| !a.negative)) => Ok(()),
                Ok(r) => Err(format!("{r:?}")),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )?;
    // Each took its own path: MR1 straight to AS65002's Map-Server, MR2 and
    // MR3 through a DDT walk (counted once the MS-ACK is back).
    lab::wait_until("each Map-Resolver to count its path", LONG, || {
        let msx = agents.served_by("mr1").map_err(|e| format!("{e:#}"))?;
        let near = agents.served_by("mr2").map_err(|e| format!("{e:#}"))?;
        let far = agents.served_by("mr3").map_err(|e| format!("{e:#}"))?;
        let n = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        if n(&msx, "msx-direct") >= 1 && n(&near, "ddt") >= 1 && n(&far, "ddt") >= 1 {
            Ok(())
        } else {
            Err(format!("mr1 {msx:?}, mr2 {near:?}, mr3 {far:?}"))
        }
    })?;
    timings.first_round = t.elapsed().as_secs_f64();

    let root_counts = |agents: &mut Agents| -> Result<BTreeMap<String, u64>> {
        ROOTS
            .iter()
            .map(|r| Ok((r.to_string(), agents.counter(r, "map-referral.tx")?)))
            .collect()
    };
    let diff = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        b.iter()
            .map(|(k, v)| (k.clone(), v.saturating_sub(a.get(k).copied().unwrap_or(0))))
            .collect()
    };

    // Cold: every Map-Resolver forgets its referrals before each round.
    let t = Instant::now();
    let before = root_counts(&mut agents)?;
    let cold = measure(&mut agents, &mut probe, opts.rounds, true, opts.progress)?;
    let after_cold = root_counts(&mut agents)?;
    timings.cold = t.elapsed().as_secs_f64();

    // Warm: one unmeasured round fills the caches, then nothing is cleared.
    let t = Instant::now();
    for c in &CASES {
        agents.clear(c.node)?;
    }
    probe.round()?;
    let before_warm = root_counts(&mut agents)?;
    let warm = measure(&mut agents, &mut probe, opts.rounds, false, opts.progress)?;
    let after_warm = root_counts(&mut agents)?;
    timings.warm = t.elapsed().as_secs_f64();
    probe.stop();

    checks.referral_cache_mr2 = agents.referral_cache("mr2")?;
    checks.root_referrals_cold = diff(&before, &after_cold);
    checks.root_referrals_warm = diff(&before_warm, &after_warm);
    for c in &CASES {
        checks
            .served_by
            .insert(c.node.to_string(), agents.served_by(c.node)?);
    }

    let wire_info = wires
        .iter()
        .map(|(name, delay)| {
            let w = lab.wire_stats(name)?;
            Ok(WireInfo {
                link: name.clone(),
                delay_ms: *delay,
                frames: w.a_to_b.frames + w.b_to_a.frames,
                error_p50_us: w.a_to_b.error_p50_us.max(w.b_to_a.error_p50_us),
                error_p99_us: w.a_to_b.error_p99_us.max(w.b_to_a.error_p99_us),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut summaries = summarize("cold", &cold);
    summaries.extend(summarize("warm", &warm));
    let title = format!(
        "Map-Request to Map-Reply latency at a Paris ITR, {} resolutions per case",
        opts.rounds
    );
    let all = [("cold", cold), ("warm", warm)];
    let files = write_outputs(opts, &all, &summaries, &title)?;
    Ok(Report {
        rounds: opts.rounds,
        lab: opts.lab_name.clone(),
        summaries,
        timings: Timings::default(),
        wires: wire_info,
        checks,
        files,
    })
}

/// The report's text form: the table, the checks and where the files are.
pub fn describe(r: &Report) -> String {
    let mut s = r.table();
    s += &format!(
        "\nsetup: lab up {:.1} s, agents ready {:.1} s, registered {:.1} s, CPNP agreement {:.2} s after discovery ({}), first round {:.1} s\n",
        r.timings.lab_up,
        r.timings.agents_ready,
        r.timings.registered,
        r.timings.agreement,
        r.checks.agreement_id,
        r.timings.first_round
    );
    s += &format!(
        "measured: cold {:.1} s, warm {:.1} s; total {:.1} s\n",
        r.timings.cold, r.timings.warm, r.timings.total
    );
    for (node, served) in &r.checks.served_by {
        let nz: Vec<String> = served
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        s += &format!("{node} served by: {}\n", nz.join(", "));
    }
    s += &format!(
        "Map-Referrals from the DDT roots: cold {:?}, warm {:?}\n",
        r.checks.root_referrals_cold, r.checks.root_referrals_warm
    );
    s += &format!(
        "MR2's referral cache: {}\n",
        r.checks.referral_cache_mr2.join("; ")
    );
    for w in &r.wires {
        s += &format!(
            "wire {}: {} ms one way, {} frames, hold error p50 {:.1} µs, p99 {:.1} µs\n",
            w.link, w.delay_ms, w.frames, w.error_p50_us, w.error_p99_us
        );
    }
    for f in &r.files {
        s += &format!("wrote {}\n", f.display());
    }
    s
}

/// Fails unless the cold medians are ordered MSX < DDT near < DDT far.
pub fn check_order(r: &Report) -> Result<()> {
    let m = |case| {
        r.median("cold", case)
            .filter(|v| v.is_finite())
            .ok_or_else(|| anyhow!("no cold median for {case}"))
    };
    let (msx, near, far) = (m("msx")?, m("ddt-near")?, m("ddt-far")?);
    if !(msx < near && near < far) {
        bail!(
            "cold medians not ordered MSX < DDT near < DDT far: {msx:.2} / {near:.2} / {far:.2} ms"
        );
    }
    Ok(())
}
