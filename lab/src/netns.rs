//! Thin wrappers around iproute2 (`ip`) and network namespace handles.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// Where `ip netns` keeps namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// Namespace names start with this, then the lab name and a dash.
pub const NS_PREFIX: &str = "lmsx-";

/// `lmsx-LAB-`: every namespace and FRR pathspace of lab `lab` starts with it.
pub fn lab_prefix(lab: &str) -> String {
    format!("{NS_PREFIX}{lab}-")
}

/// The namespace (and FRR pathspace) of `node` in `lab`.
pub fn ns_name(lab: &str, node: &str) -> String {
    format!("{NS_PREFIX}{lab}-{node}")
}

pub fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(ns)
}

pub fn ns_exists(ns: &str) -> bool {
    ns_path(ns).exists()
}

/// All named namespaces.
pub fn ns_list() -> Vec<String> {
    match fs::read_dir(NETNS_DIR) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; an error (with the command line and stderr)
/// unless it exits 0. Returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command to completion, whatever its exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))
}

/// `ip ARGS...`
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// `ip -n NS ARGS...`
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

/// A command that runs `argv` inside namespace `ns` (`ip netns exec`, which
/// execs in place: the child's pid is the command's).
pub fn exec_cmd<S: AsRef<std::ffi::OsStr>>(ns: &str, argv: &[S]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c
}

/// Pids of processes whose network namespace is `ns`.
pub fn ns_pids(ns: &str) -> Vec<u32> {
    match output(Command::new("ip").args(["netns", "pids", ns])) {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Deletes a namespace handle (its interfaces go once no process holds it).
pub fn ns_delete(ns: &str) -> Result<()> {
    if ns_exists(ns) {
        ip(&["netns", "del", ns])?;
    }
    Ok(())
}
