//! Test harness: real `lisp-agent` processes on loopback addresses, driven
//! and inspected through the real `lispctl`. Tests wait on conditions with
//! generous timeouts, never on fixed sleeps.
#![allow(dead_code)]

pub mod frr_lab;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Agent {
    pub name: String,
    pub addr: String,
    dir: tempfile::TempDir,
    body: String,
    /// Extra `[agent]` keys.
    agent_extra: String,
    child: Option<Child>,
}

impl Agent {
    /// Starts an agent listening on `addr` with `body` (roles, without [agent]).
    pub fn start(name: &str, addr: &str, body: &str) -> Agent {
        Self::start_with(name, addr, "", body)
    }

    /// Like [`Agent::start`], with extra `[agent]` keys; `state_dir` is the test's directory.
    pub fn start_with(name: &str, addr: &str, agent_extra: &str, body: &str) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut a = Agent {
            name: name.into(),
            addr: addr.into(),
            dir,
            body: String::new(),
            agent_extra: agent_extra.into(),
            child: None,
        };
        a.write_config(body);
        a.spawn();
        a
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn write_config(&mut self, body: &str) {
        self.body = body.to_string();
        let text = format!(
            "[agent]\nname = \"{}\"\nlisten = [\"{}\"]\napi_socket = \"{}\"\nstate_dir = \"{}\"\n{}\n{}\n",
            self.name,
            self.addr,
            self.socket().display(),
            self.dir.path().display(),
            self.agent_extra,
            body
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lisp-agent"))
            .arg("-f")
            .arg(self.config_path())
            .env("LISP_AGENT_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("lisp-agent starts");
        self.child = Some(child);
        let sock = self.socket();
        wait_for(
            &format!("{} API socket", self.name),
            Duration::from_secs(20),
            || sock.exists().then_some(()),
        );
        wait_for(
            &format!("{} answering", self.name),
            Duration::from_secs(20),
            || (self.ctl("show lisp statistics").0 == 0).then_some(()),
        );
    }

    /// Runs lispctl; returns (exit code, stdout + stderr).
    pub fn ctl(&self, cmd: &str) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_lispctl"))
            .arg("-s")
            .arg(self.socket())
            .args(cmd.split_whitespace())
            .output()
            .expect("lispctl runs");
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs `lispctl CMD json` and parses the output.
    pub fn json(&self, cmd: &str) -> serde_json::Value {
        let (code, text) = self.ctl(&format!("{cmd} json"));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: `{cmd} json` exited {code}: {e}\n{text}", self.name))
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.json("show lisp statistics")["counters"][name]
            .as_u64()
            .unwrap_or(0)
    }

    /// Rewrites the configuration and sends SIGHUP.
    pub fn reload(&mut self, body: &str) {
        self.write_config(body);
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "SIGHUP to {}", self.name);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.name, self.log());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 50 ms until it yields a value or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The registration rows of a site prefix in `show lisp site json`.
pub fn site_prefix<'a>(
    sites: &'a serde_json::Value,
    prefix: &str,
) -> Option<&'a serde_json::Value> {
    sites["sites"]
        .as_array()?
        .iter()
        .flat_map(|s| s["prefixes"].as_array().into_iter().flatten())
        .find(|p| p["eid_prefix"] == prefix)
}

pub fn registered(ms: &Agent, prefix: &str) -> bool {
    site_prefix(&ms.json("show lisp site"), prefix).is_some_and(|p| {
        p["registered"] == true && !p["registrations"].as_array().is_none_or(|r| r.is_empty())
    })
}

pub fn locators(v: &serde_json::Value) -> Vec<String> {
    v["locators"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["address"].as_str().map(String::from))
        .collect()
}
