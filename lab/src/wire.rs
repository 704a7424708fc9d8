//! The user-space wire: two TAP devices, one in each node's namespace, and
//! frames copied between them after a configured delay (± jitter, with loss).
//! This kernel has no netem; this is what replaces it.
//!
//! Per direction, a reader thread timestamps each frame as it is read and puts
//! it in a bounded deadline queue (a min-heap on release time); a sender thread
//! sleeps until ~200 µs before the earliest deadline (timer slack lowered to
//! 1 µs), then spins to the deadline and writes the frame. Each frame's actual
//! hold time (write − read) is compared with its target and summarized
//! (mean, p99, max error) so that the wire reports its own precision.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::netns;
use crate::sys;

/// Bounds of how long before a deadline the sender stops sleeping and spins
/// (adapted to how late timed wake-ups turn out to be).
const MARGIN_MIN: Duration = Duration::from_micros(20);
const MARGIN_MAX: Duration = Duration::from_micros(500);
/// SCHED_FIFO priorities (when permitted): readers above senders, so that a
/// spinning sender never delays the timestamp of an arriving frame.
const READER_PRIO: i32 = 30;
const SENDER_PRIO: i32 = 20;
/// Error histogram: 1 µs buckets up to 2 ms, then one overflow bucket.
const BUCKET_US: f64 = 1.0;
const BUCKETS: usize = 2000;

/// What a wire connects and how it misbehaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSpec {
    pub link: String,
    pub a_ns: String,
    pub a_if: String,
    pub b_ns: String,
    pub b_if: String,
    pub delay: Duration,
    pub jitter: Duration,
    /// Percent.
    pub loss: f64,
    pub seed: u64,
    pub queue: usize,
    /// Where the stats are written (JSON, every 250 ms while frames flow).
    pub stats_path: Option<PathBuf>,
}

/// Counters of one direction, as reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DirStats {
    /// Frames written out.
    pub frames: u64,
    pub bytes: u64,
    /// Dropped on purpose (`loss`).
    pub lost: u64,
    /// Dropped because the queue was full.
    pub queue_drops: u64,
    pub write_errors: u64,
    /// Hold time (read → write) of the frames, µs.
    pub added_mean_us: f64,
    pub added_min_us: f64,
    pub added_max_us: f64,
    /// Hold time minus the frame's target delay, µs (signed mean; median, p99
    /// and max of the absolute value).
    pub error_mean_us: f64,
    pub error_p50_us: f64,
    pub error_p99_us: f64,
    pub error_max_us: f64,
    /// The sender runs SCHED_FIFO (precise even on a busy machine).
    pub realtime: bool,
    /// How early the sender currently wakes before a deadline to spin, µs.
    pub wake_margin_us: f64,
}

/// Self-measured behaviour of a wire.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireStats {
    pub link: String,
    pub delay_us: f64,
    pub jitter_us: f64,
    pub loss_pct: f64,
    pub a_to_b: DirStats,
    pub b_to_a: DirStats,
    pub updated_unix_ms: u64,
}

impl WireStats {
    /// Worst absolute mean error of the two directions, µs.
    pub fn worst_mean_error_us(&self) -> f64 {
        self.a_to_b
            .error_mean_us
            .abs()
            .max(self.b_to_a.error_mean_us.abs())
    }

    pub fn read(path: &std::path::Path) -> Result<WireStats> {
        let s = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&s).with_context(|| format!("parse {}", path.display()))
    }
}

#[derive(Default)]
struct Acc {
    frames: u64,
    bytes: u64,
    lost: u64,
    queue_drops: u64,
    write_errors: u64,
    added_sum: f64,
    added_min: f64,
    added_max: f64,
    err_sum: f64,
    err_abs_max: f64,
    hist: Vec<u64>,
    realtime: bool,
    margin: Duration,
}

impl Acc {
    fn record(&mut self, bytes: usize, added_us: f64, err_us: f64) {
        if self.frames == 0 {
            self.added_min = added_us;
            self.added_max = added_us;
        }
        self.frames += 1;
        self.bytes += bytes as u64;
        self.added_sum += added_us;
        self.added_min = self.added_min.min(added_us);
        self.added_max = self.added_max.max(added_us);
        self.err_sum += err_us;
        self.err_abs_max = self.err_abs_max.max(err_us.abs());
        if self.hist.is_empty() {
            self.hist = vec![0; BUCKETS + 1];
        }
        let b = ((err_us.abs() / BUCKET_US) as usize).min(BUCKETS);
        self.hist[b] += 1;
    }

    /// Upper bound of the `q` quantile of |error| (bucket edge, capped by max).
    fn quantile(&self, q: f64) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        let want = ((self.frames as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.hist.iter().enumerate() {
            seen += c;
            if seen >= want {
                return if i == BUCKETS {
                    self.err_abs_max
                } else {
                    ((i + 1) as f64 * BUCKET_US).min(self.err_abs_max)
                };
            }
        }
        self.err_abs_max
    }

    fn summary(&self) -> DirStats {
        let n = self.frames.max(1) as f64;
        DirStats {
            frames: self.frames,
            bytes: self.bytes,
            lost: self.lost,
            queue_drops: self.queue_drops,
            write_errors: self.write_errors,
            added_mean_us: self.added_sum / n,
            added_min_us: self.added_min,
            added_max_us: self.added_max,
            error_mean_us: self.err_sum / n,
            error_p50_us: self.quantile(0.5),
            error_p99_us: self.quantile(0.99),
            error_max_us: self.err_abs_max,
            realtime: self.realtime,
            wake_margin_us: self.margin.as_secs_f64() * 1e6,
        }
    }
}

struct Pending {
    deadline: Instant,
    seq: u64,
    read_at: Instant,
    target: Duration,
    data: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

struct Direction {
    queue: Mutex<BinaryHeap<Reverse<Pending>>>,
    ready: Condvar,
    acc: Mutex<Acc>,
}

impl Direction {
    fn new() -> Self {
        Direction {
            queue: Mutex::new(BinaryHeap::new()),
            ready: Condvar::new(),
            acc: Mutex::new(Acc::default()),
        }
    }
}

/// splitmix64: small, seeded, good enough for loss and jitter draws.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A running wire (threads in this process). Dropping it stops it; the TAP
/// interfaces vanish with their file descriptors.
pub struct Wire {
    spec: WireSpec,
    stop: Arc<AtomicBool>,
    dirs: [Arc<Direction>; 2],
    threads: Vec<JoinHandle<()>>,
}

/// Opens a TAP named `ifname` inside namespace `ns`: a short-lived thread
/// enters the namespace (setns is per thread) and creates it there, so nothing
/// ever appears in the host namespace. The descriptor stays valid afterwards.
fn open_tap_in(ns: &str, ifname: &str) -> Result<File> {
    let path = netns::ns_path(ns);
    let name = ifname.to_string();
    let opened = thread::spawn(move || -> std::io::Result<File> {
        sys::enter_netns(&path)?;
        sys::open_tap(&name)
    })
    .join()
    .map_err(|_| anyhow!("TAP opener thread panicked"))?;
    opened.with_context(|| format!("create TAP {ifname} in namespace {ns}"))
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Wire {
    /// Creates both TAPs and starts forwarding.
    pub fn start(spec: WireSpec) -> Result<Wire> {
        let a = Arc::new(open_tap_in(&spec.a_ns, &spec.a_if)?);
        let b = Arc::new(open_tap_in(&spec.b_ns, &spec.b_if)?);
        let stop = Arc::new(AtomicBool::new(false));
        let dirs = [Arc::new(Direction::new()), Arc::new(Direction::new())];
        let mut threads = Vec::new();
        for (i, (src, dst)) in [(a.clone(), b.clone()), (b, a)].into_iter().enumerate() {
            let dir = dirs[i].clone();
            let st = stop.clone();
            let sp = spec.clone();
            let seed = spec.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            threads.push(thread::Builder::new().name(format!("wire-rx{i}")).spawn({
                let dst = dst.clone();
                move || reader(src, dst, dir, st, sp, seed)
            })?);
            let dir = dirs[i].clone();
            let st = stop.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("wire-tx{i}"))
                    .spawn(move || sender(dst, dir, st))?,
            );
        }
        let mut wire = Wire {
            spec,
            stop,
            dirs,
            threads,
        };
        if let Some(path) = wire.spec.stats_path.clone() {
            let dirs = wire.dirs.clone();
            let stop = wire.stop.clone();
            let sp = wire.spec.clone();
            wire.threads.push(
                thread::Builder::new()
                    .name("wire-stats".into())
                    .spawn(move || stats_writer(path, dirs, stop, sp))?,
            );
        }
        Ok(wire)
    }

    pub fn spec(&self) -> &WireSpec {
        &self.spec
    }

    /// The counters so far.
    pub fn stats(&self) -> WireStats {
        snapshot(&self.spec, &self.dirs)
    }

    /// Stops the threads, closes the TAPs, returns the final counters.
    pub fn stop(mut self) -> WireStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for d in &self.dirs {
            d.ready.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn snapshot(spec: &WireSpec, dirs: &[Arc<Direction>; 2]) -> WireStats {
    let s = |d: &Direction| d.acc.lock().unwrap_or_else(|e| e.into_inner()).summary();
    WireStats {
        link: spec.link.clone(),
        delay_us: spec.delay.as_secs_f64() * 1e6,
        jitter_us: spec.jitter.as_secs_f64() * 1e6,
        loss_pct: spec.loss,
        a_to_b: s(&dirs[0]),
        b_to_a: s(&dirs[1]),
        updated_unix_ms: now_unix_ms(),
    }
}

fn write_stats(path: &PathBuf, stats: &WireStats) {
    let tmp = path.with_extension("json.tmp");
    if let Ok(s) = serde_json::to_string_pretty(stats)
        && fs::write(&tmp, s).is_ok()
    {
        let _ = fs::rename(&tmp, path);
    }
}

fn stats_writer(path: PathBuf, dirs: [Arc<Direction>; 2], stop: Arc<AtomicBool>, spec: WireSpec) {
    let mut last = None;
    loop {
        let mut s = snapshot(&spec, &dirs);
        let key = (s.a_to_b.clone(), s.b_to_a.clone());
        if last.as_ref() != Some(&key) {
            write_stats(&path, &s);
            last = Some(key);
        }
        if stop.load(Ordering::SeqCst) {
            s.updated_unix_ms = now_unix_ms();
            write_stats(&path, &s);
            return;
        }
        // Sliced so that a stop is seen quickly.
        for _ in 0..5 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn reader(
    src: Arc<File>,
    dst: Arc<File>,
    dir: Arc<Direction>,
    stop: Arc<AtomicBool>,
    spec: WireSpec,
    seed: u64,
) {
    sys::set_timer_slack(Duration::from_nanos(1));
    let _ = sys::set_realtime(READER_PRIO);
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 65_536];
    let mut seq = 0u64;
    let jitter_ns = spec.jitter.as_nanos() as f64;
    let delay_ns = spec.delay.as_nanos() as f64;
    while !stop.load(Ordering::SeqCst) {
        match sys::wait_readable(&src, Duration::from_millis(100)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let n = match (&*src).read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => continue,
        };
        let read_at = Instant::now();
        if spec.loss > 0.0 && rng.unit() * 100.0 < spec.loss {
            dir.acc.lock().unwrap_or_else(|e| e.into_inner()).lost += 1;
            continue;
        }
        let target = if jitter_ns > 0.0 {
            let j = (rng.unit() * 2.0 - 1.0) * jitter_ns;
            Duration::from_nanos((delay_ns + j).max(0.0) as u64)
        } else {
            spec.delay
        };
        let mut q = dir.queue.lock().unwrap_or_else(|e| e.into_inner());
        if target.is_zero() && q.is_empty() {
            // Due now and nothing ahead of it: no hand-over to the sender.
            drop(q);
            let released = Instant::now();
            let ok = (&*dst).write(&buf[..n]).is_ok();
            let mut acc = dir.acc.lock().unwrap_or_else(|e| e.into_inner());
            if ok {
                let us = (released - read_at).as_secs_f64() * 1e6;
                acc.record(n, us, us);
            } else {
                acc.write_errors += 1;
            }
            continue;
        }
        if q.len() >= spec.queue {
            drop(q);
            dir.acc
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .queue_drops += 1;
            continue;
        }
        seq += 1;
        q.push(Reverse(Pending {
            deadline: read_at + target,
            seq,
            read_at,
            target,
            data: buf[..n].to_vec(),
        }));
        drop(q);
        dir.ready.notify_one();
    }
}

fn sender(dst: Arc<File>, dir: Arc<Direction>, stop: Arc<AtomicBool>) {
    sys::set_timer_slack(Duration::from_nanos(1));
    let rt = sys::set_realtime(SENDER_PRIO).is_ok();
    // How late timed wake-ups are (EWMA), and so how early to wake up before a
    // deadline to spin the rest of the way.
    let mut late_ns = 50_000.0f64;
    let mut margin = MARGIN_MAX.min(Duration::from_micros(200));
    {
        let mut acc = dir.acc.lock().unwrap_or_else(|e| e.into_inner());
        acc.realtime = rt;
        acc.margin = margin;
    }
    loop {
        let frame = {
            let mut q = dir.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let (wait, wake_at) = match q.peek() {
                    None => (Duration::from_millis(100), None),
                    Some(Reverse(p)) => {
                        let now = Instant::now();
                        let wake = p.deadline.checked_sub(margin).unwrap_or(p.deadline);
                        if wake <= now {
                            break;
                        }
                        (wake - now, Some(wake))
                    }
                };
                let (g, res) = dir
                    .ready
                    .wait_timeout(q, wait)
                    .unwrap_or_else(|e| e.into_inner());
                q = g;
                if res.timed_out()
                    && let Some(w) = wake_at
                {
                    let over = Instant::now().saturating_duration_since(w).as_nanos() as f64;
                    late_ns = 0.9 * late_ns + 0.1 * over.min(2e6);
                    margin = Duration::from_nanos((2.0 * late_ns) as u64 + 20_000)
                        .clamp(MARGIN_MIN, MARGIN_MAX);
                }
            }
            q.pop().expect("peeked").0
        };
        while Instant::now() < frame.deadline {
            std::hint::spin_loop();
        }
        let released = Instant::now();
        let ok = (&*dst).write(&frame.data).is_ok();
        let held = released - frame.read_at;
        let added_us = held.as_secs_f64() * 1e6;
        let err_us = added_us - frame.target.as_secs_f64() * 1e6;
        let mut acc = dir.acc.lock().unwrap_or_else(|e| e.into_inner());
        acc.margin = margin;
        if ok {
            acc.record(frame.data.len(), added_us, err_us);
        } else {
            acc.write_errors += 1;
        }
    }
}

/// Runs a wire in this process until it is killed (the `lab wire` subcommand).
pub fn run_forever(spec: WireSpec) -> Result<()> {
    let wire = Wire::start(spec)?;
    eprintln!(
        "wire {}: {}:{} <-> {}:{} delay {:?} jitter {:?} loss {}%",
        wire.spec.link,
        wire.spec.a_ns,
        wire.spec.a_if,
        wire.spec.b_ns,
        wire.spec.b_if,
        wire.spec.delay,
        wire.spec.jitter,
        wire.spec.loss
    );
    loop {
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_from_histogram() {
        let mut a = Acc::default();
        for i in 0..100 {
            a.record(100, 2500.0 + i as f64, i as f64);
        }
        let s = a.summary();
        assert_eq!(s.frames, 100);
        assert!((s.error_mean_us - 49.5).abs() < 1e-9);
        assert!(s.error_p99_us >= 98.0 && s.error_p99_us <= 99.0, "{s:?}");
        assert_eq!(s.error_max_us, 99.0);
        assert_eq!(s.added_min_us, 2500.0);
    }

    #[test]
    fn rng_is_seeded_and_uniform_enough() {
        let mut r = Rng(7);
        let mut r2 = Rng(7);
        let xs: Vec<f64> = (0..10_000).map(|_| r.unit()).collect();
        assert_eq!(xs[17], {
            for _ in 0..17 {
                r2.unit();
            }
            r2.unit()
        });
        let lost = xs.iter().filter(|x| **x * 100.0 < 10.0).count();
        assert!((900..1100).contains(&lost), "{lost}");
    }
}
