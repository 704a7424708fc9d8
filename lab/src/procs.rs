//! Processes by pid, safely: a pid is always paired with the process's start time
//! (from /proc/PID/stat) so that a recycled pid is never mistaken for ours.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sys;

/// A process identity that survives pid reuse: pid plus start time (clock ticks
/// since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: u32,
    pub start: u64,
}

/// State letter and start time of a pid, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ..." where comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of stat overall is starttime; after "pid (comm)" it is index 19.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ProcId {
    /// The identity of a running pid, `None` if it does not exist.
    pub fn of(pid: u32) -> Option<ProcId> {
        stat(pid).map(|(_, start)| ProcId { pid, start })
    }

    /// Still running (exists, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((st, start)) if start == self.start && st != 'Z' && st != 'X')
    }

    pub fn signal(&self, sig: libc::c_int) {
        if self.alive() {
            let _ = sys::kill(self.pid, sig);
        }
    }
}

/// SIGTERM to every live process, up to `grace` for them to exit, then SIGKILL to
/// the rest and up to 2 s more. Returns those still alive after that (should be
/// none: only uninterruptible sleepers survive SIGKILL for a while).
pub fn terminate(procs: &[ProcId], grace: Duration) -> Vec<ProcId> {
    let live: Vec<ProcId> = procs.iter().copied().filter(ProcId::alive).collect();
    if live.is_empty() {
        return live;
    }
    for p in &live {
        p.signal(libc::SIGTERM);
    }
    let left = wait_gone(&live, grace);
    if left.is_empty() {
        return left;
    }
    for p in &left {
        p.signal(libc::SIGKILL);
    }
    wait_gone(&left, Duration::from_secs(2))
}

fn wait_gone(procs: &[ProcId], timeout: Duration) -> Vec<ProcId> {
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let left: Vec<ProcId> = procs.iter().copied().filter(ProcId::alive).collect();
        if left.is_empty() || t0.elapsed() >= timeout {
            return left;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The argument vector of a pid (empty for kernel threads or vanished pids).
pub fn cmdline(pid: u32) -> Vec<String> {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) => b
            .split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every live process (but this one) whose argument vector satisfies `pred`.
pub fn scan(pred: impl Fn(&[String]) -> bool) -> Vec<ProcId> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| pred(&cmdline(pid)))
        .filter_map(ProcId::of)
        .filter(ProcId::alive)
        .collect()
}

/// Processes of a lab: FRR daemons and vtysh with its pathspace (`-N lmsx-LAB-r1`),
/// its wires (`--a lmsx-LAB-r1:eth0`), `ip netns exec lmsx-LAB-r1 ...` still
/// running as `ip`.
pub fn scan_lab(prefix: &str) -> Vec<ProcId> {
    scan(|argv| {
        argv.windows(2).any(|w| {
            w[1].starts_with(prefix)
                && matches!(w[0].as_str(), "-N" | "--pathspace" | "--a" | "--b" | "exec")
        })
    })
}
