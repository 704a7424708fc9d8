//! ITR map-cache synchronization at scale: 8 members, each a real engine
//! with its real TCP transport on its own loopback address (127.77.0.1-8,
//! one port), driven by a stand-in for its reactor (one task per member).
//! Map-Solicits, which the reactor would send over UDP 4342, are encoded,
//! signed, decoded and handed to the addressed member in-process.
//!
//! Smart: 100,000 records are loaded through member 1 and spread to all;
//! then 1% of the records change per second (1000 Map-Replies/s spread over
//! the 8 members, random keys) for 10 s: bytes per second per member (wire
//! bytes: messages + length + HMAC, digests included) and the delay until a
//! change is installed on all 7 other members. Then member 8 is killed
//! (transport and engine dropped, no goodbye) and restarted empty while the
//! changes go on: time to Ready and to hold the set's 100,000 records.
//!
//! Naive: every member holds the same 100,000 records; Map-Replies at a
//! bounded rate (see NAIVE_*), each making its member send its whole table
//! to the 7 others. Bytes per Map-Reply are measured exactly and scaled to
//! the smart run's rate (1000 Map-Replies/s, 125 per member).
//!
//! Run: cargo bench -p lisp-agent --bench sync_scale
//! (SYNC_RECORDS, SYNC_SECONDS override the scale.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lisp_agent::stats::Stats;
use lisp_agent::sync::transport::{self, SyncOutgoing};
use lisp_agent::sync::{
    Action, EngineStats, Mode, SyncConfig, SyncEngine, SyncEvent, Time, encode_solicit,
};
use lisp_msx_proto::lisp::{EidRecord, Locator};
use lisp_msx_proto::msx::{ExtCodepoints, ExtMessage};
use lisp_msx_proto::{Addr, EidPrefix, LispMessage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

const MEMBERS: u8 = 8;
const PORT: u16 = 24344;
const KEY: &str = "bench sync key";
const CHANGES_PER_SEC: u64 = 1000;
/// Naive: Map-Replies per second over the set, and for how long.
const NAIVE_RATE: u64 = 1;
const NAIVE_SECONDS: u64 = 8;
/// Every wait is bounded.
const WAIT: Duration = Duration::from_secs(120);

fn member_ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 77, 0, i))
}

/// Record `i` of the table: a /24 IPv4 EID, one locator carrying `tag`.
fn record(i: u32, tag: u32) -> EidRecord {
    EidRecord::new(
        EidPrefix::new(Addr::V4(0x0A00_0000 | (i << 8)), 24),
        60,
        vec![Locator::new(Addr::V4(tag), 1, 100)],
    )
}

/// Probe tags live in 11.0.0.0/8: an install carrying one completes a sample.
const PROBE_BASE: u32 = 0x0B00_0000;

enum In {
    Event(SyncEvent),
    Upsert { rec: EidRecord, map_reply: bool },
    Solicit { from: IpAddr, packet: Vec<u8> },
    Query(oneshot::Sender<Snap>),
    Stop,
}

#[derive(Debug, Clone, Default)]
struct Snap {
    records: usize,
    ready_at: Option<Instant>,
    bytes_sent: u64,
    bytes_received: u64,
    records_sent: u64,
    stats: EngineStats,
}

/// Change tag → (when it was handed to its member, installs seen).
type Probes = Arc<Mutex<HashMap<u32, (Instant, u8)>>>;
type Routes = Arc<Mutex<HashMap<IpAddr, mpsc::UnboundedSender<In>>>>;

struct Member {
    tx: mpsc::UnboundedSender<In>,
    out: SyncOutgoing,
    task: tokio::task::JoinHandle<()>,
}

fn config(mode: Mode, me: u8) -> SyncConfig {
    let mut c = SyncConfig::new(42, KEY);
    c.mode = mode;
    c.listen = Some(member_ip(me));
    c.port = PORT;
    c.peers = (1..=MEMBERS).filter(|m| *m != me).map(member_ip).collect();
    c.validate().expect("valid configuration");
    c
}

fn start(
    mode: Mode,
    me: u8,
    routes: &Routes,
    probes: &Probes,
    delays: &Arc<Mutex<Vec<Duration>>>,
) -> anyhow::Result<Member> {
    let cfg = config(mode, me);
    let (tx, rx) = mpsc::unbounded_channel();
    let events = tx.clone();
    let out = transport::spawn(
        &cfg,
        None,
        Arc::new(Stats::default()),
        Arc::new(move |ev| {
            let _ = events.send(In::Event(ev));
        }),
    )?;
    routes.lock().unwrap().insert(member_ip(me), tx.clone());
    let engine = SyncEngine::new(
        cfg,
        u32::from(me),
        ExtCodepoints::default().sync,
        Time::now(),
    );
    let task = tokio::spawn(run_member(
        engine,
        rx,
        out.clone(),
        member_ip(me),
        routes.clone(),
        probes.clone(),
        delays.clone(),
    ));
    Ok(Member { tx, out, task })
}

/// The reactor's part: feed the engine, carry out its actions.
async fn run_member(
    mut e: SyncEngine,
    mut rx: mpsc::UnboundedReceiver<In>,
    out: SyncOutgoing,
    me: IpAddr,
    routes: Routes,
    probes: Probes,
    delays: Arc<Mutex<Vec<Duration>>>,
) {
    let cp = ExtCodepoints::default();
    let mut ready_at = None;
    // What the engine asked for at start (connections, solicits).
    handle(&mut e, &out, me, &routes, &probes, &delays, &mut ready_at);
    loop {
        let input = tokio::select! {
            i = rx.recv() => match i {
                Some(i) => Some(i),
                None => break,
            },
            _ = tokio::time::sleep_until(e.next_wakeup().into()) => None,
        };
        let t = Time::now();
        match input {
            Some(In::Event(ev)) => e.on_event(ev, t),
            Some(In::Upsert { rec, map_reply }) => {
                e.local_upsert(rec, 0, t.unix_ms + 3_600_000, map_reply, t)
            }
            Some(In::Solicit { from, packet }) => {
                if let Ok(LispMessage::Extension(ExtMessage::Solicit(m))) =
                    LispMessage::decode_with(&packet, &cp)
                {
                    e.on_solicit(from, &m, &packet, t);
                }
            }
            Some(In::Query(reply)) => {
                let ms = e.members();
                let _ = reply.send(Snap {
                    records: e.record_count(),
                    ready_at,
                    bytes_sent: ms.iter().map(|m| m.counters.bytes_sent).sum(),
                    bytes_received: ms.iter().map(|m| m.counters.bytes_received).sum(),
                    records_sent: ms.iter().map(|m| m.counters.records_sent).sum(),
                    stats: e.stats().clone(),
                });
            }
            Some(In::Stop) => break,
            None => {}
        }
        if Instant::now() >= e.next_wakeup() {
            e.tick(Time::now());
        }
        handle(&mut e, &out, me, &routes, &probes, &delays, &mut ready_at);
    }
}

/// Carries out the engine's actions.
fn handle(
    e: &mut SyncEngine,
    out: &SyncOutgoing,
    me: IpAddr,
    routes: &Routes,
    probes: &Probes,
    delays: &Arc<Mutex<Vec<Duration>>>,
    ready_at: &mut Option<Instant>,
) {
    let cp = ExtCodepoints::default();
    for a in e.drain_actions() {
        if out.apply(&a) {
            continue;
        }
        match a {
            Action::Install { rec, .. } => {
                if let Some(Addr::V4(tag)) = rec.locators.first().map(|l| l.addr)
                    && tag & 0xFF00_0000 == PROBE_BASE
                {
                    let mut p = probes.lock().unwrap();
                    if let Some((sent, n)) = p.get_mut(&tag) {
                        *n += 1;
                        if *n == MEMBERS - 1 {
                            delays.lock().unwrap().push(sent.elapsed());
                            p.remove(&tag);
                        }
                    }
                }
            }
            Action::SendSolicit { to, msg } => {
                let packet = encode_solicit(&msg, cp.solicit, KEY).expect("encodes");
                if let Some(tx) = routes.lock().unwrap().get(&to) {
                    let _ = tx.send(In::Solicit { from: me, packet });
                }
            }
            Action::Ready => *ready_at = Some(Instant::now()),
            _ => {}
        }
    }
}

async fn snap(m: &Member) -> Snap {
    let (tx, rx) = oneshot::channel();
    let _ = m.tx.send(In::Query(tx));
    rx.await.unwrap_or_default()
}

async fn snaps(ms: &[Member]) -> Vec<Snap> {
    let mut v = Vec::new();
    for m in ms {
        v.push(snap(m).await);
    }
    v
}

/// Polls every 50 ms until `done` holds (bounded by [`WAIT`]).
async fn wait_until(
    ms: &[Member],
    what: &str,
    done: impl Fn(&[Snap]) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if done(&snaps(ms).await) {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// 1000 Map-Replies per second for `secs`, round-robin over the members,
/// random keys, each with a fresh probe tag.
async fn changes(ms: &[Member], n_records: u32, secs: u64, tag: &mut u32, probes: &Probes) {
    let mut rng = StdRng::seed_from_u64(u64::from(*tag));
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let per_tick = CHANGES_PER_SEC / 100;
    for _ in 0..secs * 100 {
        tick.tick().await;
        for _ in 0..per_tick {
            *tag += 1;
            let t = PROBE_BASE | (*tag & 0x00FF_FFFF);
            let m = &ms[*tag as usize % ms.len()];
            probes.lock().unwrap().insert(t, (Instant::now(), 0));
            let _ = m.tx.send(In::Upsert {
                rec: record(rng.random_range(0..n_records), t),
                map_reply: true,
            });
        }
    }
}

async fn stop(m: Member) {
    let _ = m.tx.send(In::Stop);
    m.out.shutdown();
    let _ = m.task.await;
}

async fn smart(n: u32, secs: u64) -> anyhow::Result<f64> {
    println!("== smart: {MEMBERS} members, {n} records, {CHANGES_PER_SEC} changes/s for {secs} s");
    let routes: Routes = Arc::default();
    let probes: Probes = Arc::default();
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut ms = Vec::new();
    for i in 1..=MEMBERS {
        ms.push(start(Mode::Smart, i, &routes, &probes, &delays)?);
    }
    wait_until(&ms, "every member ready", |s| {
        s.iter().all(|x| x.ready_at.is_some())
    })
    .await?;

    // Load the table through member 1 (10,000 records every 100 ms).
    let t = Instant::now();
    for chunk in 0..n.div_ceil(10_000) {
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(n) {
            let _ = ms[0].tx.send(In::Upsert {
                rec: record(i, 0xC000_0201),
                map_reply: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(&ms, "the table on every member", |s| {
        s.iter().all(|x| x.records == n as usize)
    })
    .await?;
    println!(
        "load: {n} records from member 1 on all 8 in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // Let the load's digests settle before measuring.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let before = snaps(&ms).await;
    let mut tag = 0u32;
    let t = Instant::now();
    changes(&ms, n, secs, &mut tag, &probes).await;
    let elapsed = t.elapsed().as_secs_f64();
    let after = snaps(&ms).await;
    let per_member: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.bytes_sent - b.bytes_sent) as f64 / elapsed)
        .collect();
    let mean = per_member.iter().sum::<f64>() / per_member.len() as f64;
    let max = per_member.iter().copied().fold(0.0, f64::max);
    let recs: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.records_sent - b.records_sent) as f64)
        .sum::<f64>()
        / elapsed
        / f64::from(MEMBERS);
    let delta = |f: fn(&EngineStats) -> u64| -> u64 {
        after.iter().map(|a| f(&a.stats)).sum::<u64>()
            - before.iter().map(|b| f(&b.stats)).sum::<u64>()
    };
    println!(
        "steady state: {mean:.0} bytes/s sent per member (max {max:.0}), {recs:.0} records/s sent per member; digests {}, mismatching {} ({} buckets requested, {} unsettled skipped)",
        delta(|s| s.digests_sent),
        delta(|s| s.digest_mismatches),
        delta(|s| s.buckets_requested),
        delta(|s| s.buckets_unsettled)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut d = std::mem::take(&mut *delays.lock().unwrap());
    d.sort();
    let incomplete = probes.lock().unwrap().len();
    println!(
        "propagation to all 7 others: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} changes; {} superseded by a later change of the same key before reaching all)",
        percentile(&d, 0.5).as_secs_f64() * 1e3,
        percentile(&d, 0.99).as_secs_f64() * 1e3,
        d.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        d.len(),
        incomplete
    );
    probes.lock().unwrap().clear();

    // Kill member 8 and bring it back empty while the changes go on.
    let last = ms.pop().expect("8 members");
    stop(last).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    ms.push(start(Mode::Smart, MEMBERS, &routes, &probes, &delays)?);
    let driver = {
        let txs: Vec<_> = ms.iter().map(|m| m.tx.clone()).collect();
        let probes = probes.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(8);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut tag = 0x0080_0000u32;
            for _ in 0..300 {
                tick.tick().await;
                for _ in 0..CHANGES_PER_SEC / 100 {
                    tag += 1;
                    let tg = PROBE_BASE | (tag & 0x00FF_FFFF);
                    probes.lock().unwrap().insert(tg, (Instant::now(), 0));
                    let _ = txs[tag as usize % txs.len()].send(In::Upsert {
                        rec: record(rng.random_range(0..n), tg),
                        map_reply: true,
                    });
                }
            }
        })
    };
    let idx = ms.len() - 1;
    let mut ready = None;
    let mut synced = None;
    while synced.is_none() {
        anyhow::ensure!(
            t.elapsed() < WAIT,
            "the restarted member did not resynchronize"
        );
        let s = snap(&ms[idx]).await;
        if ready.is_none() {
            ready = s.ready_at.map(|r| r.duration_since(t));
        }
        if s.records >= n as usize {
            synced = Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = snap(&ms[idx]).await;
    println!(
        "restart of member 8 (empty): ready after {:.0} ms, {} records after {:.0} ms (pull timeouts {}, bytes received {})",
        ready.unwrap_or_default().as_secs_f64() * 1e3,
        s.records,
        synced.unwrap_or_default().as_secs_f64() * 1e3,
        s.stats.pull_timeouts,
        s.bytes_received
    );
    let _ = driver.await;
    for m in ms {
        stop(m).await;
    }
    Ok(mean)
}

async fn naive(n: u32) -> anyhow::Result<f64> {
    println!(
        "== naive: {MEMBERS} members, {n} records, {NAIVE_RATE} Map-Reply/s for {NAIVE_SECONDS} s"
    );
    let routes: Routes = Arc::default();
    let probes: Probes = Arc::default();
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut ms = Vec::new();
    for i in 1..=MEMBERS {
        ms.push(start(Mode::Naive, i, &routes, &probes, &delays)?);
    }
    wait_until(&ms, "every member ready", |s| {
        s.iter().all(|x| x.ready_at.is_some())
    })
    .await?;
    // The same table everywhere, learned locally (no transfer).
    for m in &ms {
        for i in 0..n {
            let _ = m.tx.send(In::Upsert {
                rec: record(i, 0xC000_0201),
                map_reply: false,
            });
        }
    }
    wait_until(&ms, "the tables", |s| {
        s.iter().all(|x| x.records == n as usize)
    })
    .await?;
    let before = snaps(&ms).await;
    let t = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / NAIVE_RATE));
    let triggers = NAIVE_SECONDS * NAIVE_RATE;
    for k in 0..triggers {
        tick.tick().await;
        let _ = ms[k as usize % ms.len()].tx.send(In::Upsert {
            rec: record(k as u32, 0xC000_0202),
            map_reply: true,
        });
    }
    // Until every transfer is over: bytes stop moving for 1 s.
    let mut last = 0;
    let mut still = 0;
    while still < 20 {
        anyhow::ensure!(t.elapsed() < WAIT, "naive transfers did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now: u64 = snaps(&ms).await.iter().map(|s| s.bytes_received).sum();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    let elapsed = t.elapsed().as_secs_f64() - 1.0;
    let after = snaps(&ms).await;
    let total: u64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.bytes_sent - b.bytes_sent)
        .sum();
    let transfers: u64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.stats.full_transfers_received - b.stats.full_transfers_received)
        .sum();
    anyhow::ensure!(transfers > 0, "no naive transfer completed");
    // Transfers of one Map-Reply that overlap the next coalesce; count bytes
    // per completed transfer to one member, times the 7 members.
    let per_trigger = total as f64 / transfers as f64 * f64::from(MEMBERS - 1);
    let measured = total as f64 / elapsed / f64::from(MEMBERS);
    let per_member_rate = CHANGES_PER_SEC as f64 / f64::from(MEMBERS);
    let extrapolated = per_trigger * per_member_rate;
    println!(
        "measured: {triggers} Map-Replies, {transfers} whole-table transfers received, {:.2} MB per Map-Reply (whole table to 7 members), {measured:.0} bytes/s sent per member over {elapsed:.1} s",
        per_trigger / 1e6
    );
    println!(
        "extrapolated to {CHANGES_PER_SEC} Map-Replies/s ({per_member_rate:.0} per member): {:.2} GB/s sent per member",
        extrapolated / 1e9
    );
    for m in ms {
        stop(m).await;
    }
    Ok(extrapolated)
}

fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::var("SYNC_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let secs: u64 = std::env::var("SYNC_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let smart = smart(n, secs).await?;
        let naive = naive(n).await?;
        println!(
            "naive / smart bytes per member in steady state: {:.0}x",
            naive / smart
        );
        anyhow::Ok(())
    })
}
