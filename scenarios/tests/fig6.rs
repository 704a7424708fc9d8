//! Issue #6's CI form of the experiment: 50 resolutions per case, real
//! agents in the lab, and the ordering of the cold medians
//! MSX < DDT with the root in the LAN < DDT with the root in Barcelona.
//! Needs root (network namespaces); run by scripts/test.sh, whose
//! `cargo test --workspace` builds lisp-agent next to this test first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lisp_msx_scenarios::fig6;

#[test]
fn fig6_reduced_orders_msx_before_ddt() {
    if let Some(why) = lab::unavailable(&[]) {
        eprintln!("SKIPPED fig6_reduced_orders_msx_before_ddt: {why}");
        return;
    }
    // This package's binary (the prober) and its siblings (lisp-agent) are in
    // target/<profile>.
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_fig6"));
    let bin_dir = exe.parent().expect("target/<profile>").to_path_buf();
    assert!(
        bin_dir.join("lisp-agent").exists(),
        "{} not built: run `cargo build --workspace` first (scripts/test.sh does)",
        bin_dir.join("lisp-agent").display()
    );
    let mut o = fig6::Options::defaults(&exe);
    o.rounds = 50;
    o.lab_name = "t_fig6".into();
    o.bin_dir = bin_dir;
    o.out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fig6");
    o.progress = false;

    let t0 = Instant::now();
    let report = fig6::run(&o).expect("the experiment runs");
    let took = t0.elapsed();
    println!("{}", fig6::describe(&report));

    // Nothing of the lab is left.
    let left = lab::leftovers("t_fig6");
    assert!(left.is_empty(), "lab t_fig6 left: {left:?}");
    assert!(!Path::new("/run/lisp-msx-t_fig6").exists());

    // Every Map-Resolver answered (almost) every request, positively.
    for s in &report.summaries {
        assert!(
            s.answered * 10 >= s.sent * 9 && s.negative == 0,
            "{} {}: {} of {} answered, {} negative",
            s.cache,
            s.case,
            s.answered,
            s.sent,
            s.negative
        );
    }
    // Each took its path: MR1 straight to AS65002's Map-Server, MR2 and MR3
    // through DDT, the roots asked at every cold resolution.
    let served = |mr: &str, path: &str| report.checks.served_by[mr].get(path).copied().unwrap_or(0);
    assert!(served("mr1", "msx-direct") >= 100, "{:?}", report.checks);
    assert_eq!(served("mr1", "ddt"), 0, "{:?}", report.checks);
    assert!(
        served("mr2", "ddt") >= 100 && served("mr3", "ddt") >= 100,
        "{:?}",
        report.checks
    );
    assert_eq!(
        report.checks.root_referrals_cold["root1"], 50,
        "{:?}",
        report.checks
    );
    assert_eq!(
        report.checks.root_referrals_cold["bcn"], 50,
        "{:?}",
        report.checks
    );

    // The point of the experiment.
    fig6::check_order(&report).unwrap_or_else(|e| panic!("{e:#}\n{}", report.table()));
    for f in &report.files {
        assert!(f.exists(), "{} not written", f.display());
    }
    assert!(took < Duration::from_secs(120), "took {took:?}");
}
