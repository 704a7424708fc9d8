//! Tearing labs down: from a recorded state, and by name prefix for whatever a
//! crash left unrecorded. Every step is attempted whatever failed before it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns;
use crate::procs::{self, ProcId};
use crate::state::RunState;

/// FRR's run directory; pathspaces are folders in it.
pub const FRR_RUN_DIR: &str = "/var/run/frr";

/// What a cleanup removed and what it could not.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub removed: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn kill(&mut self, what: &str, procs: &[ProcId], grace: Duration) {
        let live: Vec<ProcId> = procs.iter().copied().filter(ProcId::alive).collect();
        if live.is_empty() {
            return;
        }
        let left = procs::terminate(&live, grace);
        for p in &live {
            if !left.contains(p) {
                self.removed.push(format!("{what} pid {}", p.pid));
            }
        }
        for p in left {
            self.problems
                .push(format!("{what} pid {} survived SIGKILL", p.pid));
        }
    }
}

pub fn pathspace_dir(ps: &str) -> PathBuf {
    Path::new(FRR_RUN_DIR).join(ps)
}

/// Pids written by FRR daemons in a pathspace, flagged `true` for zebra.
fn pidfiles(ps: &str) -> Vec<(bool, ProcId)> {
    let Ok(d) = fs::read_dir(pathspace_dir(ps)) else {
        return Vec::new();
    };
    d.filter_map(|e| {
        let p = e.ok()?.path();
        if p.extension()? != "pid" {
            return None;
        }
        let zebra = p.file_stem()? == "zebra";
        Some((
            zebra,
            ProcId::of(fs::read_to_string(&p).ok()?.trim().parse().ok()?)?,
        ))
    })
    .collect()
}

fn ns_procs(ns: &str) -> Vec<ProcId> {
    let me = std::process::id();
    netns::ns_pids(ns)
        .into_iter()
        .filter(|&p| p != me)
        .filter_map(ProcId::of)
        .collect()
}

fn remove_ns(ns: &str, r: &mut Report) {
    if netns::ns_exists(ns) {
        match netns::ns_delete(ns) {
            Ok(()) => r.removed.push(format!("namespace {ns}")),
            Err(e) => r.problems.push(format!("namespace {ns}: {e:#}")),
        }
    }
}

fn remove_pathspace(ps: &str, r: &mut Report) {
    let d = pathspace_dir(ps);
    if d.exists() {
        match fs::remove_dir_all(&d) {
            Ok(()) => r.removed.push(format!("{}", d.display())),
            Err(e) => r.problems.push(format!("{}: {e}", d.display())),
        }
    }
}

/// Removes everything `st` records: extra processes, FRR daemons, anything else
/// running in its namespaces, wire processes, namespaces (their veths, bridges
/// and TAPs go with them), FRR pathspaces and the run directory. Logs stay.
pub fn teardown_state(st: &RunState, r: &mut Report) {
    let procs: Vec<ProcId> = st.processes.iter().map(|p| p.pid).collect();
    r.kill("process", &procs, Duration::from_secs(3));

    // Routing daemons first, zebra last (they talk to it on the way out).
    let mut daemons: Vec<(bool, ProcId)> = st
        .nodes
        .iter()
        .flat_map(|n| {
            n.daemons
                .iter()
                .filter_map(|d| Some((d.name == "zebra", d.pid?)))
        })
        .collect();
    for ps in &st.pathspaces {
        daemons.extend(pidfiles(ps));
    }
    daemons.sort_by_key(|(z, p)| (*z, p.pid));
    daemons.dedup();
    let (zebras, others): (Vec<_>, Vec<_>) = daemons.into_iter().partition(|(z, _)| *z);
    let pids = |v: Vec<(bool, ProcId)>| v.into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    r.kill("FRR daemon", &pids(others), Duration::from_secs(5));
    r.kill("zebra", &pids(zebras), Duration::from_secs(5));

    for ns in &st.namespaces {
        r.kill(
            &format!("process in {ns}"),
            &ns_procs(ns),
            Duration::from_secs(2),
        );
    }

    let wires: Vec<ProcId> = st
        .links
        .iter()
        .filter_map(|l| l.wire.as_ref()?.process)
        .collect();
    r.kill("wire", &wires, Duration::from_secs(2));

    for ns in &st.namespaces {
        remove_ns(ns, r);
    }
    for ps in &st.pathspaces {
        remove_pathspace(ps, r);
    }
    if st.run_dir.exists()
        && let Err(e) = fs::remove_dir_all(&st.run_dir)
    {
        r.problems.push(format!("{}: {e}", st.run_dir.display()));
    }
}

/// Removes what carries the lab's name prefix `lmsx-LAB-` but no state records:
/// processes naming its namespaces or pathspaces, anything running in its
/// namespaces, the namespaces, the pathspace folders.
pub fn sweep(lab: &str, r: &mut Report) {
    let prefix = netns::lab_prefix(lab);
    let namespaces: Vec<String> = netns::ns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let pathspaces: Vec<String> = fs::read_dir(FRR_RUN_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();

    let mut victims = procs::scan_lab(&prefix);
    for ps in &pathspaces {
        victims.extend(pidfiles(ps).into_iter().map(|(_, p)| p));
    }
    for ns in &namespaces {
        victims.extend(ns_procs(ns));
    }
    victims.sort_by_key(|p| p.pid);
    victims.dedup();
    r.kill(
        &format!("leftover of {lab}:"),
        &victims,
        Duration::from_secs(3),
    );

    for ns in &namespaces {
        remove_ns(ns, r);
    }
    for ps in &pathspaces {
        remove_pathspace(ps, r);
    }
}

/// Everything that is left of a lab: namespaces, pathspaces, processes.
/// Empty when the lab is fully gone.
pub fn leftovers(lab: &str) -> Vec<String> {
    let prefix = netns::lab_prefix(lab);
    let mut v: Vec<String> = netns::ns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .map(|n| format!("namespace {n}"))
        .collect();
    if let Ok(d) = fs::read_dir(FRR_RUN_DIR) {
        v.extend(
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .map(|n| format!("{FRR_RUN_DIR}/{n}")),
        );
    }
    v.extend(
        procs::scan_lab(&prefix)
            .into_iter()
            .map(|p| format!("process {} {:?}", p.pid, procs::cmdline(p.pid))),
    );
    if crate::state::state_path(lab).exists() {
        v.push(format!("{}", crate::state::state_path(lab).display()));
    }
    v
}
