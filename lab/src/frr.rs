//! FRR from the Debian package, one daemon set per node: its own binaries
//! (`/usr/lib/frr/DAEMON`, or `$LAB_FRR_DIR`), started inside the node's
//! namespace with pathspace `-N NETNS`, `-f CONFIG`, a log file, no TCP vty;
//! reached with `vtysh -N NETNS`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::addr::Cidr;
use crate::cleanup::{FRR_RUN_DIR, pathspace_dir};
use crate::netns;
use crate::procs::ProcId;
use crate::wait::wait_until;

/// Where the daemons are.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("LAB_FRR_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/frr"))
}

/// uid and gid of the `frr` user, from /etc/passwd.
pub fn frr_ids() -> Result<(u32, u32)> {
    let pw = fs::read_to_string("/etc/passwd").context("read /etc/passwd")?;
    for l in pw.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == "frr" {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("no `frr` user: is the Debian package `frr` installed? (scripts/setup.sh installs it)")
}

/// Creates `/var/run/frr/PS` owned by frr:frr.
pub fn prepare_pathspace(ps: &str) -> Result<()> {
    let (uid, gid) = frr_ids()?;
    let root = Path::new(FRR_RUN_DIR);
    if !root.exists() {
        fs::create_dir_all(root).with_context(|| format!("create {FRR_RUN_DIR}"))?;
        std::os::unix::fs::chown(root, Some(uid), Some(gid))?;
    }
    let d = pathspace_dir(ps);
    fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    std::os::unix::fs::chown(&d, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", d.display()))?;
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Makes a folder FRR (running as frr) can write logs into.
pub fn prepare_log_dir(d: &Path) -> Result<()> {
    let (uid, gid) = frr_ids()?;
    fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    std::os::unix::fs::chown(d, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", d.display()))?;
    Ok(())
}

/// The config as written for the daemon: `hostname NODE` first unless given.
pub fn render_config(node: &str, config: &str) -> String {
    let has_host = config
        .lines()
        .any(|l| l.trim_start().starts_with("hostname "));
    let mut s = String::new();
    if !has_host {
        s.push_str(&format!("hostname {node}\n"));
    }
    s.push_str(config);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Starts one daemon in namespace `ns` (pathspace `ns`) and waits until its pid
/// file and vty socket exist. ospfd always gets `-a` (the OSPF API).
pub fn start_daemon(
    ns: &str,
    daemon: &str,
    config: &Path,
    log: &Path,
    extra: &[String],
    timeout: Duration,
) -> Result<ProcId> {
    let bin = bin_dir().join(daemon);
    if !bin.exists() {
        bail!(
            "{} not found: is the Debian package `frr` installed?",
            bin.display()
        );
    }
    let dir = pathspace_dir(ns);
    let pidfile = dir.join(format!("{daemon}.pid"));
    let vty = dir.join(format!("{daemon}.vty"));
    let _ = fs::remove_file(&pidfile);
    let mut argv: Vec<String> = vec![
        bin.display().to_string(),
        "-d".into(),
        "-N".into(),
        ns.into(),
        "-f".into(),
        config.display().to_string(),
        "-i".into(),
        pidfile.display().to_string(),
        "--log".into(),
        format!("file:{}", log.display()),
        "-P".into(),
        "0".into(),
    ];
    if daemon == "ospfd" && !extra.iter().any(|a| a == "-a" || a == "--apiserver") {
        argv.push("-a".into());
    }
    argv.extend(extra.iter().cloned());
    let out = netns::output(&mut netns::exec_cmd(ns, &argv))?;
    if !out.status.success() {
        bail!(
            "{daemon} in {ns} did not start ({}): {}\n--- {} ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            log.display(),
            tail(log, 20)
        );
    }
    wait_until(
        &format!("{daemon} in {ns} to be ready ({})", vty.display()),
        timeout,
        || -> Result<ProcId, String> {
            let pid = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .ok_or("no pid file yet")?;
            let p = ProcId::of(pid)
                .filter(ProcId::alive)
                .ok_or(format!("pid {pid} is not running"))?;
            if vty.exists() {
                Ok(p)
            } else {
                Err("no vty socket yet".into())
            }
        },
    )
    .map_err(|e| anyhow!("{e}\n--- {} ---\n{}", log.display(), tail(log, 20)))
}

/// Runs `vtysh -N PS -c LINE...` (one `-c` per line of `cmd`). Errors carry
/// vtysh's words; its complaint about a missing per-pathspace vtysh.conf is
/// dropped.
pub fn vtysh(ps: &str, cmd: &str) -> Result<String> {
    let mut c = Command::new("vtysh");
    c.args(["-N", ps]);
    for l in cmd.lines().map(str::trim).filter(|l| !l.is_empty()) {
        c.args(["-c", l]);
    }
    let out = netns::output(&mut c)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("vtysh.conf"))
            .map(String::from)
            .collect();
        bail!(
            "vtysh -N {ps} -c '{cmd}' failed ({}): {} {}",
            out.status,
            stdout.trim(),
            stderr.join(" ").trim()
        );
    }
    Ok(stdout)
}

/// `vtysh` and parse the output as JSON.
pub fn vtysh_json(ps: &str, cmd: &str) -> Result<Value> {
    let s = vtysh(ps, cmd)?;
    if s.trim().is_empty() {
        bail!("vtysh -N {ps} -c '{cmd}': empty output (is the daemon running?)");
    }
    serde_json::from_str(&s).with_context(|| format!("vtysh -N {ps} -c '{cmd}': not JSON: {s}"))
}

/// OSPF neighbours: (router id, state such as `Full/-`, interface).
pub fn ospf_neighbors(ps: &str) -> Result<Vec<(String, String, String)>> {
    let v = vtysh_json(ps, "show ip ospf neighbor json")?;
    let mut out = Vec::new();
    if let Some(map) = v.get("neighbors").and_then(Value::as_object) {
        for (rid, entries) in map {
            let list = match entries {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            for e in list {
                let st = e
                    .get("nbrState")
                    .or_else(|| e.get("state"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let ifc = e
                    .get("ifaceName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                out.push((rid.clone(), st, ifc));
            }
        }
    }
    Ok(out)
}

/// BGP peers: (peer, state, prefixes received in ipv4/ipv6 unicast).
pub fn bgp_peers(ps: &str) -> Result<Vec<(String, String, u64)>> {
    let v = vtysh_json(ps, "show bgp neighbors json")?;
    let mut out = Vec::new();
    if let Some(map) = v.as_object() {
        for (peer, e) in map {
            let Some(state) = e.get("bgpState").and_then(Value::as_str) else {
                continue;
            };
            let pfx = e
                .get("addressFamilyInfo")
                .and_then(Value::as_object)
                .map(|afs| {
                    afs.values()
                        .filter_map(|af| af.get("acceptedPrefixCounter").and_then(Value::as_u64))
                        .sum()
                })
                .unwrap_or(0);
            out.push((peer.clone(), state.to_string(), pfx));
        }
    }
    Ok(out)
}

/// The RIB entries of exactly `prefix` if one is installed in the FIB.
pub fn installed_route(ps: &str, prefix: &Cidr) -> Result<Option<Value>> {
    let net = prefix.network();
    let cmd = if net.is_ipv4() {
        format!("show ip route {net} json")
    } else {
        format!("show ipv6 route {net} json")
    };
    let v = vtysh_json(ps, &cmd)?;
    let entries = v.get(net.to_string()).cloned();
    let installed = entries.as_ref().and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .any(|e| e.get("installed").and_then(Value::as_bool) == Some(true))
    });
    Ok(if installed { entries } else { None })
}
