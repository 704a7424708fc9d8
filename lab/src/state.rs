//! The run state of a lab, kept in `/run/lisp-msx-lab/LAB/state.json` so that
//! other invocations (`lab status`, `lab down`, a later `lab up` after a crash)
//! find every namespace, process and wire it made. Written before each thing is
//! created, so a crash leaves a record of what to remove.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::procs::ProcId;

/// Root of run states (one folder per lab, plus `LAB.lock`).
pub const RUN_ROOT: &str = "/run/lisp-msx-lab";
/// Default root of logs (one folder per lab; kept after `down`, wiped at the
/// next `up` of the same lab). Override with `LISP_MSX_LAB_LOGS`.
pub const LOG_ROOT: &str = "/tmp/lisp-msx-lab";

pub fn run_dir(lab: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(lab)
}

pub fn state_path(lab: &str) -> PathBuf {
    run_dir(lab).join("state.json")
}

pub fn lock_path(lab: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(format!("{lab}.lock"))
}

pub fn default_log_dir(lab: &str) -> PathBuf {
    let root = std::env::var_os("LISP_MSX_LAB_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(LOG_ROOT));
    root.join(lab)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub lab: String,
    pub topology: Option<PathBuf>,
    /// The process whose `Lab` owns this lab (tears it down when it ends);
    /// `None` once detached by `lab up`.
    pub owner: Option<ProcId>,
    pub created_unix: u64,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Every namespace created, nodes and LAN bridges.
    pub namespaces: Vec<String>,
    /// Every /var/run/frr/PATHSPACE created.
    pub pathspaces: Vec<String>,
    pub nodes: Vec<NodeRec>,
    pub links: Vec<LinkRec>,
    pub lans: Vec<LanRec>,
    pub processes: Vec<ProcRec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRec {
    pub name: String,
    pub netns: String,
    /// FRR pathspace (`vtysh -N PATHSPACE`); same as the namespace.
    pub pathspace: String,
    pub daemons: Vec<DaemonRec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonRec {
    pub name: String,
    /// `None` while stopped (`Lab::stop_daemon`).
    pub pid: Option<ProcId>,
    pub config: PathBuf,
    pub log: PathBuf,
    /// Extra arguments from the topology.
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRec {
    pub name: String,
    pub a_node: String,
    pub a_if: String,
    pub b_node: String,
    pub b_if: String,
    pub wire: Option<WireRec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRec {
    pub delay_us: f64,
    pub jitter_us: f64,
    pub loss_pct: f64,
    pub stats: PathBuf,
    /// `Some` for a `lab wire` process, `None` for a thread of the owner.
    pub process: Option<ProcId>,
    pub log: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LanRec {
    pub name: String,
    /// Namespace holding the bridge.
    pub netns: String,
    pub bridge: String,
    pub members: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcRec {
    pub node: String,
    pub name: String,
    pub pid: ProcId,
    pub argv: Vec<String>,
    pub log: PathBuf,
}

impl RunState {
    pub fn node(&self, name: &str) -> Option<&NodeRec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Writes the state atomically (temp file + rename).
    pub fn save(&self) -> Result<()> {
        fs::create_dir_all(&self.run_dir)
            .with_context(|| format!("create {}", self.run_dir.display()))?;
        let path = self.run_dir.join("state.json");
        let tmp = self.run_dir.join("state.json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
        Ok(())
    }

    /// The saved state of `lab`, `None` if there is none.
    pub fn load(lab: &str) -> Result<Option<RunState>> {
        let path = state_path(lab);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(
                serde_json::from_str(&s).with_context(|| format!("parse {}", path.display()))?,
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Names of labs with a saved state.
    pub fn list() -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(RUN_ROOT) {
            Ok(d) => d
                .filter_map(|e| {
                    let e = e.ok()?;
                    e.path().join("state.json").exists().then_some(())?;
                    e.file_name().into_string().ok()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}
