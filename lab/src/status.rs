//! What a lab looks like right now, from its run state: namespaces present,
//! processes alive, wires' self-measured precision, OSPF and BGP summaries.

use std::fmt;

use serde::Serialize;

use crate::frr;
use crate::netns;
use crate::state::RunState;
use crate::wire::WireStats;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub lab: String,
    /// Pid of the owning process, `None` when detached (`lab up`).
    pub owner: Option<u32>,
    pub owner_alive: bool,
    pub run_dir: String,
    pub log_dir: String,
    pub nodes: Vec<NodeStatus>,
    pub links: Vec<LinkStatus>,
    pub lans: Vec<LanStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub netns: String,
    pub netns_present: bool,
    pub daemons: Vec<ProcStatus>,
    pub processes: Vec<ProcStatus>,
    /// (router id, state, interface)
    pub ospf: Option<Vec<(String, String, String)>>,
    /// (peer, state, prefixes accepted)
    pub bgp: Option<Vec<(String, String, u64)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcStatus {
    pub name: String,
    pub pid: Option<u32>,
    pub alive: bool,
    pub log: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    pub name: String,
    pub a: String,
    pub b: String,
    /// `veth` or `wire`.
    pub kind: String,
    /// Wire process (or thread) running; always true for veth.
    pub alive: bool,
    pub wire: Option<WireStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LanStatus {
    pub name: String,
    pub netns: String,
    pub bridge: String,
    pub members: Vec<String>,
}

impl Status {
    pub fn collect(st: &RunState) -> Status {
        let nodes = st
            .nodes
            .iter()
            .map(|n| {
                let present = netns::ns_exists(&n.netns);
                let daemons: Vec<ProcStatus> = n
                    .daemons
                    .iter()
                    .map(|d| ProcStatus {
                        name: d.name.clone(),
                        pid: d.pid.map(|p| p.pid),
                        alive: d.pid.is_some_and(|p| p.alive()),
                        log: d.log.display().to_string(),
                    })
                    .collect();
                let runs = |name: &str| daemons.iter().any(|d| d.name == name && d.alive);
                Status::node(n, present, &daemons, runs("ospfd"), runs("bgpd"), st)
            })
            .collect();
        let links = st
            .links
            .iter()
            .map(|l| LinkStatus {
                name: l.name.clone(),
                a: format!("{}:{}", l.a_node, l.a_if),
                b: format!("{}:{}", l.b_node, l.b_if),
                kind: if l.wire.is_some() { "wire" } else { "veth" }.into(),
                alive: match &l.wire {
                    None => true,
                    Some(w) => w.process.is_some_and(|p| p.alive()),
                },
                wire: l.wire.as_ref().and_then(|w| WireStats::read(&w.stats).ok()),
            })
            .collect();
        let lans = st
            .lans
            .iter()
            .map(|l| LanStatus {
                name: l.name.clone(),
                netns: l.netns.clone(),
                bridge: l.bridge.clone(),
                members: l.members.iter().map(|(n, i)| format!("{n}:{i}")).collect(),
            })
            .collect();
        Status {
            lab: st.lab.clone(),
            owner: st.owner.map(|p| p.pid),
            owner_alive: st.owner.is_some_and(|p| p.alive()),
            run_dir: st.run_dir.display().to_string(),
            log_dir: st.log_dir.display().to_string(),
            nodes,
            links,
            lans,
        }
    }

    fn node(
        n: &crate::state::NodeRec,
        present: bool,
        daemons: &[ProcStatus],
        ospf: bool,
        bgp: bool,
        st: &RunState,
    ) -> NodeStatus {
        NodeStatus {
            name: n.name.clone(),
            netns: n.netns.clone(),
            netns_present: present,
            daemons: daemons.to_vec(),
            processes: st
                .processes
                .iter()
                .filter(|p| p.node == n.name)
                .map(|p| ProcStatus {
                    name: p.name.clone(),
                    pid: Some(p.pid.pid),
                    alive: p.pid.alive(),
                    log: p.log.display().to_string(),
                })
                .collect(),
            ospf: if ospf {
                frr::ospf_neighbors(&n.pathspace).ok()
            } else {
                None
            },
            bgp: if bgp {
                frr::bgp_peers(&n.pathspace).ok()
            } else {
                None
            },
        }
    }

    /// Whether every namespace is there and every process runs.
    pub fn healthy(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.netns_present
                && n.daemons.iter().all(|d| d.alive)
                && n.processes.iter().all(|p| p.alive)
        }) && self.links.iter().all(|l| l.alive)
    }
}

fn alive(b: bool) -> &'static str {
    if b { "up" } else { "DOWN" }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = match self.owner {
            None => "detached (lab down to remove)".to_string(),
            Some(p) => format!("owned by pid {p} ({})", alive(self.owner_alive)),
        };
        writeln!(f, "lab {}: {owner}", self.lab)?;
        writeln!(f, "  logs: {}", self.log_dir)?;
        writeln!(f, "nodes:")?;
        for n in &self.nodes {
            writeln!(
                f,
                "  {:<10} netns {} [{}]",
                n.name,
                n.netns,
                if n.netns_present {
                    "present"
                } else {
                    "MISSING"
                }
            )?;
            if !n.daemons.is_empty() {
                let d: Vec<String> = n
                    .daemons
                    .iter()
                    .map(|d| format!("{}({}) {}", d.name, d.pid.unwrap_or(0), alive(d.alive)))
                    .collect();
                writeln!(f, "    frr: {}", d.join(", "))?;
            }
            for p in &n.processes {
                writeln!(
                    f,
                    "    process {}({}) {}  log {}",
                    p.name,
                    p.pid.unwrap_or(0),
                    alive(p.alive),
                    p.log
                )?;
            }
            if let Some(o) = &n.ospf {
                let s: Vec<String> = o.iter().map(|(r, s, i)| format!("{r} {s} ({i})")).collect();
                writeln!(
                    f,
                    "    ospf: {}",
                    if s.is_empty() {
                        "no neighbours".into()
                    } else {
                        s.join(", ")
                    }
                )?;
            }
            if let Some(b) = &n.bgp {
                let s: Vec<String> = b
                    .iter()
                    .map(|(p, s, n)| format!("{p} {s} pfx {n}"))
                    .collect();
                writeln!(
                    f,
                    "    bgp: {}",
                    if s.is_empty() {
                        "no peers".into()
                    } else {
                        s.join(", ")
                    }
                )?;
            }
        }
        if !self.links.is_empty() {
            writeln!(f, "links:")?;
        }
        for l in &self.links {
            write!(f, "  {:<12} {} <-> {}  {}", l.name, l.a, l.b, l.kind)?;
            if l.kind == "wire" {
                write!(f, " {}", alive(l.alive))?;
            }
            writeln!(f)?;
            if let Some(w) = &l.wire {
                writeln!(
                    f,
                    "    target {:.1} us ±{:.1} loss {}%",
                    w.delay_us, w.jitter_us, w.loss_pct
                )?;
                for (dir, d) in [("a->b", &w.a_to_b), ("b->a", &w.b_to_a)] {
                    writeln!(
                        f,
                        "    {dir}: {} frames, lost {}, qdrop {}; held mean {:.1} us; |error| p50 {:.0} p99 {:.0} max {:.0} us, mean {:+.1} us{}",
                        d.frames,
                        d.lost,
                        d.queue_drops,
                        d.added_mean_us,
                        d.error_p50_us,
                        d.error_p99_us,
                        d.error_max_us,
                        d.error_mean_us,
                        if d.realtime { "" } else { " (not realtime)" }
                    )?;
                }
            }
        }
        if !self.lans.is_empty() {
            writeln!(f, "lans:")?;
        }
        for l in &self.lans {
            writeln!(
                f,
                "  {:<12} bridge {} in {}: {}",
                l.name,
                l.bridge,
                l.netns,
                l.members.join(", ")
            )?;
        }
        Ok(())
    }
}
