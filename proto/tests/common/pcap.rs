//! Runs tshark on captures made with `lisp_msx_proto::pcap`.
#![allow(dead_code)]

#[allow(unused_imports)] // used by tshark.rs, not by every test that includes `common`
pub use lisp_msx_proto::pcap::Pcap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// tshark, or a clear failure saying how to get it.
pub fn tshark() -> PathBuf {
    for p in ["/usr/bin/tshark", "/usr/local/bin/tshark"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "tshark is not installed: run scripts/setup.sh (apt-get install tshark) before the tests"
    );
}

/// Runs `tshark -T json` on the file and returns one JSON layer tree per packet.
pub fn dissect(path: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(tshark())
        .args(["-n", "-r"])
        .arg(path)
        .args(extra)
        .args(["-T", "json", "--no-duplicate-keys"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark prints JSON");
    v.as_array()
        .expect("an array of packets")
        .iter()
        .map(|p| p["_source"]["layers"].clone())
        .collect()
}

/// Every value of `key` anywhere in the tree, in document order.
pub fn all(v: &serde_json::Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, key, &mut out);
    out
}

fn walk(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, val) in m {
                if k == key {
                    match val {
                        serde_json::Value::String(s) => out.push(s.clone()),
                        serde_json::Value::Array(a) => {
                            out.extend(a.iter().filter_map(|x| x.as_str().map(String::from)))
                        }
                        _ => {}
                    }
                }
                walk(val, key, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
        _ => {}
    }
}

pub fn first(v: &serde_json::Value, key: &str) -> String {
    all(v, key)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("tshark shows no {key} in {v:#}"))
}
