//! The user-space wire: a 2.5 ms link must be 2.5 ms. Needs root. In its own
//! test binary so that no FRR start-up competes with the measurement.

mod common;

use std::time::Duration;

use common::{all_pids, assert_gone, can_run};
use lab::{Lab, Topology};

fn topo(name: &str) -> Topology {
    Topology::parse(&format!(
        r#"
name = "{name}"
[nodes.a]
[nodes.b]
[nodes.c]
[[links]]
name = "slow"
a = {{ node = "a", addrs = ["198.51.100.1/30", "2001:db8:ab::1/64"] }}
b = {{ node = "b", addrs = ["198.51.100.2/30", "2001:db8:ab::2/64"] }}
delay_ms = 2.5
[[links]]
name = "lossy"
a = {{ node = "a", addrs = ["198.51.100.5/30"] }}
b = {{ node = "c", addrs = ["198.51.100.6/30"] }}
loss = 30
seed = 42
"#
    ))
    .unwrap()
}

#[test]
fn a_2_5_ms_link_is_2_5_ms() {
    if !can_run("wire") {
        return;
    }
    let name = "t_wire";
    let lab = Lab::up(topo(name)).expect("lab up");
    let pids = all_pids(&lab.state());

    // One ping first so that ARP is resolved, then the measurement proper.
    lab.ping("a", "198.51.100.2", 1, Duration::from_millis(50))
        .unwrap();
    // 60 pings (bounded: 3 s): the minimum is what the path adds, once
    // scheduling noise from a busy host is out of the way.
    let p = lab
        .ping("a", "198.51.100.2", 60, Duration::from_millis(50))
        .unwrap();
    assert_eq!(p.received, 60, "{p:?}");
    let min = p.min().unwrap().as_secs_f64() * 1e3;
    let p6 = lab
        .ping("a", "2001:db8:ab::2", 60, Duration::from_millis(50))
        .unwrap();
    let min6 = p6.min().unwrap().as_secs_f64() * 1e3;

    // The same with iputils ping (kernel timestamps), when installed.
    let iputils = lab
        .exec(
            "a",
            &["ping", "-q", "-n", "-c", "20", "-i", "0.05", "198.51.100.2"],
        )
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            let l = s.lines().find(|l| l.contains("min/avg/max"))?.to_string();
            l.split('=')
                .nth(1)?
                .trim()
                .split('/')
                .next()?
                .parse::<f64>()
                .ok()
        });

    let stats = lab.wire_stats("slow").unwrap();
    eprintln!(
        "wire: RTT min {min:.3} ms (IPv6 {min6:.3}, iputils {iputils:?}), avg {:.3} ms",
        p.avg().unwrap().as_secs_f64() * 1e3
    );
    eprintln!(
        "wire stats: {}",
        serde_json::to_string_pretty(&stats).unwrap()
    );

    // End to end, a packet can never beat the configured delay (2 × 2.5 ms),
    // but the host's scheduling adds to it: a loaded 2-core machine (a CI run
    // next to builds) showed 5.21 ms. The precise ±0.1 ms criterion is the
    // wire's own hold time, asserted below from its statistics.
    for (what, m) in [("IPv4", min), ("IPv6", min6)] {
        assert!(
            (4.9..=5.5).contains(&m),
            "{what} RTT min {m:.3} ms is not within 4.9..5.5 ms of the 5.0 ms configured"
        );
    }
    if let Some(m) = iputils {
        assert!((4.9..=5.5).contains(&m), "iputils RTT min {m:.3} ms");
    }
    for (dir, d) in [("a->b", &stats.a_to_b), ("b->a", &stats.b_to_a)] {
        assert!(d.frames >= 41, "{dir}: {d:?}");
        // Per frame: the median frame is held 2.5 ms ± 0.1 ms and no frame
        // leaves early. The tail (p99, max) is reported, not asserted: it is
        // the host's, not the wire's. A CI run next to builds saw a few frames
        // of 147 held 13–30 ms (sender descheduled despite SCHED_FIFO) while
        // the median error stayed at 1 µs; a quiet host shows p99 ≈ 47 µs.
        assert!(
            d.error_p50_us <= 100.0,
            "{dir}: median error {:.1} us (mean hold {:.1} us)",
            d.error_p50_us,
            d.added_mean_us
        );
        assert!(
            d.added_min_us >= stats.delay_us - 1.0,
            "{dir}: a frame left early: held {:.1} us of {:.1} us",
            d.added_min_us,
            stats.delay_us
        );
        eprintln!(
            "{dir}: error p50 {:.1} us, p99 {:.1} us, max {:.1} us",
            d.error_p50_us, d.error_p99_us, d.error_max_us
        );
    }

    // Loss: 30 % each way, so about half the pings come back; seeded. First
    // one answered ping, so that ARP is settled.
    lab::wait_until("one reply over the lossy link", common::T, || {
        match lab.ping("a", "198.51.100.6", 1, Duration::from_millis(10)) {
            Ok(p) if p.received == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap();
    let l = lab
        .ping("a", "198.51.100.6", 100, Duration::from_millis(5))
        .unwrap();
    let ls = lab.wire_stats("lossy").unwrap();
    eprintln!(
        "lossy: {} of 100 replies; lost a->c {} b->a {}",
        l.received, ls.a_to_b.lost, ls.b_to_a.lost
    );
    assert!(
        (25..=75).contains(&l.received),
        "30% loss each way: {} replies",
        l.received
    );
    assert!(ls.a_to_b.lost > 0 && ls.b_to_a.lost > 0, "{ls:?}");

    drop(lab);
    assert_gone(name, &pids);
}
