//! Shared by the tests that run real FRR in network namespaces (the `lab`
//! crate): where the binaries are, a topology of `lab/topologies/` pointed
//! at this run's binaries, state folder and lab name, `lispctl` against a
//! node's agent, and restarting an agent from a configuration text.

use std::path::{Path, PathBuf};
use std::process::Command;

use lab::topology::ProcessConfig;
use lab::{Lab, Topology};
use serde_json::Value;

/// The folder of this crate's binaries (target/<profile>).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_lisp-agent"))
        .parent()
        .expect("target/<profile>")
        .to_path_buf()
}

/// Whether root and these FRR daemons are there; prints why not.
pub fn can_run(test: &str, frr_daemons: &[&str]) -> bool {
    match lab::unavailable(frr_daemons) {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
        None => true,
    }
}

/// `lab/topologies/FILE` with this run's debug binaries (in place of
/// "{topo_dir}/../../target/release/"), `state` in place of the topology's
/// `state_marker` folder and `lmsx-NAME-` in place of its `lab_marker`
/// namespace prefix; `edit` may change the text further before parsing.
pub fn topology(
    file: &str,
    state_marker: &str,
    lab_marker: &str,
    name: &str,
    state: &Path,
    edit: impl FnOnce(String) -> String,
) -> Topology {
    let path = topology_path(file);
    let text = std::fs::read_to_string(&path)
        .expect("read the topology")
        .replace(
            "{topo_dir}/../../target/release/",
            &format!("{}/", bin_dir().display()),
        )
        .replace(state_marker, &format!("{}/", state.display()))
        .replace(lab_marker, &format!("lmsx-{name}-"));
    Topology::parse_with(&edit(text), path.parent().unwrap(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_name(name)
        .unwrap()
}

pub fn topology_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lab/topologies")
        .join(file)
}

/// `lispctl -s SOCK CMD json`, parsed.
pub fn lispctl(sock: &Path, cmd: &str) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_lispctl"))
        .arg("-s")
        .arg(sock)
        .args(cmd.split_whitespace())
        .arg("json")
        .output()
        .map_err(|e| format!("lispctl: {e}"))?;
    // An unresolved lig exits 1 with its JSON on stderr.
    if out.stdout.is_empty()
        && let Ok(v) = serde_json::from_slice(&out.stderr)
    {
        return Ok(v);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "`{cmd} json` on {}: {e}: {}{}",
            sock.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The inline configuration of `process` on `node`.
pub fn inline_config(topo: &Topology, node: &str, process: &str) -> String {
    let p = topo
        .node(node)
        .and_then(|n| n.processes.iter().find(|p| p.name == process))
        .unwrap_or_else(|| panic!("no process {process} on {node}"));
    match &p.config {
        Some(ProcessConfig::Inline(t)) => t.clone(),
        other => panic!("{node}/{process}: inline config expected, got {other:?}"),
    }
}

/// Starts this run's lisp-agent as process `name` in `node`, from `config`
/// written to `dir/NODE-NAME.toml`.
pub fn spawn_agent(lab: &Lab, node: &str, name: &str, dir: &Path, config: &str) {
    let file = dir.join(format!("{node}-{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let argv = [
        bin_dir().join("lisp-agent").display().to_string(),
        "-f".into(),
        file.display().to_string(),
    ];
    lab.spawn(node, name, &argv).expect("spawn agent");
}
