//! Helpers of frr-bgp-plugin's integration tests: binaries, agents and
//! plugins inside lab nodes, tshark, plugin logs. Tests wait on conditions
//! (lab::wait_until), never on fixed sleeps.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Generous: the machine has 2 cores and may be busy building.
pub const T: Duration = Duration::from_secs(60);

/// True when a test that needs root and FRR can run; otherwise says why not.
pub fn can_run_lab(test: &str) -> bool {
    match lab::unavailable(&["bgpd", "zebra", "staticd"]) {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
        None => true,
    }
}

/// The plugin under test.
pub fn plugin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_frr-bgp-plugin"))
}

/// A binary of another workspace crate, next to ours in the target folder
/// (`cargo test --workspace` or `cargo build -p lisp-agent` builds it).
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = plugin_bin().parent().expect("target dir").join(name);
    assert!(
        p.exists(),
        "{} not found: build it first (`cargo build -p lisp-agent`, or run `cargo test --workspace`)",
        p.display()
    );
    p
}

/// A temporary folder that outlives `lab` teardown but not the test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fbp-test-")
        .tempdir()
        .expect("temp dir")
}

/// Runs lispctl against `socket`; returns (exit code, stdout+stderr).
pub fn lispctl(socket: &Path, cmd: &str) -> (i32, String) {
    let out = Command::new(workspace_bin("lispctl"))
        .arg("-s")
        .arg(socket)
        .args(cmd.split_whitespace())
        .output()
        .expect("lispctl runs");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// `lispctl CMD json`, parsed; `Err` with what was seen when it is not JSON.
pub fn lispctl_json(socket: &Path, cmd: &str) -> Result<serde_json::Value, String> {
    let (code, text) = lispctl(socket, &format!("{cmd} json"));
    serde_json::from_str(&text).map_err(|e| format!("`{cmd} json` exited {code}: {e}: {text}"))
}

/// The BGP entries of `show lisp discovery json`.
pub fn bgp_systems(socket: &Path) -> Result<Vec<serde_json::Value>, String> {
    let v = lispctl_json(socket, "show lisp discovery")?;
    Ok(v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["source"] == "bgp")
        .map(|e| e["system"].clone())
        .collect())
}

/// Sends a signal to a pid with kill(1).
pub fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid}");
}

/// `frr-bgp-plugin print-frr-config`, split by daemon: (staticd, bgpd).
pub fn frr_snippet(plugin_cfg: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(plugin_bin())
        .arg("-f")
        .arg(plugin_cfg)
        .arg("print-frr-config")
        .args(args)
        .output()
        .expect("print-frr-config runs");
    assert!(
        out.status.success(),
        "print-frr-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (mut st, mut bgp) = (String::new(), String::new());
    for l in text.lines() {
        if l.starts_with("ip route ") || l.starts_with("ipv6 route ") {
            st.push_str(l);
            st.push('\n');
        } else {
            bgp.push_str(l);
            bgp.push('\n');
        }
    }
    (st, bgp)
}

/// Lines of a plugin or daemon log that contain `what`.
pub fn log_lines(log: &Path, what: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .map(str::to_string)
        .collect()
}

/// Seconds since midnight (UTC) of a tracing log line ("2026-...T23:37:25.535640Z ...").
pub fn log_time(line: &str) -> Option<f64> {
    let t = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Every path attribute (flags, type, length, value: the raw octets) of the
/// BGP UPDATEs in a capture, via `tshark -T json -x`.
pub fn pcap_update_attributes(pcap: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args(["-Y", "bgp.type == 2", "-T", "json", "-x"])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut attrs = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start()
            .starts_with("\"bgp.update.path_attribute_raw\"")
            && let Some(v) = lines.next()
        {
            let hex = v.trim().trim_end_matches(',').trim_matches('"');
            if let Some(bytes) = unhex(hex) {
                attrs.push(bytes);
            }
        }
    }
    attrs
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
