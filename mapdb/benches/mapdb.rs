//! The mapping database at the scale of the acceptance criteria: 1,000,000
//! IPv4 + 200,000 IPv6 prefixes, each with a map-cache entry of 1–4 locators.
//!
//! Prints memory per entry (live heap bytes counted by a wrapping global
//! allocator, and the process RSS growth), then measures lookups, a bulk
//! load of the whole table and its removal.
//!
//! `cargo bench -p lisp-mapdb --bench mapdb`

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lisp_mapdb::synth::{self, SplitMix};
use lisp_mapdb::{CacheEntry, MapCache, Prefix, RlocInterner, RlocSet, Source};
use lisp_msx_proto::Addr;

/// Counts live heap bytes. The one piece of `unsafe` in the crate's targets:
/// `GlobalAlloc` cannot be implemented without it, and only a bench binary
/// uses it (the library itself forbids `unsafe`).
#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    pub struct Counting;
    pub static LIVE: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size(), Relaxed);
            // SAFETY: same contract as our caller's.
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size(), Relaxed);
            // SAFETY: same contract as our caller's.
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size(), Relaxed);
            // SAFETY: same contract as our caller's.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            LIVE.fetch_add(new, Relaxed);
            LIVE.fetch_sub(l.size(), Relaxed);
            // SAFETY: same contract as our caller's.
            unsafe { System.realloc(p, l, new) }
        }
    }

    pub fn live() -> usize {
        LIVE.load(Relaxed)
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const V4_PREFIXES: usize = 1_000_000;
const V6_PREFIXES: usize = 200_000;
/// Distinct xTR locator sets in the shared-locator table.
const SITES: usize = 20_000;
/// Addresses per measured batch (criterion reports per element).
const BATCH: usize = 1 << 16;

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

struct Table {
    prefixes: Vec<Prefix>,
}

fn table() -> Table {
    let t = Instant::now();
    let mut prefixes = synth::v4_prefixes(V4_PREFIXES, 0, 0x5eed_0004);
    prefixes.extend(synth::v6_prefixes(V6_PREFIXES, 0, 0x5eed_0006));
    eprintln!(
        "generated {} prefixes in {:.2?}",
        prefixes.len(),
        t.elapsed()
    );
    Table { prefixes }
}

fn entry(locators: RlocSet) -> CacheEntry {
    CacheEntry::new(locators, Source::MapReply, 86_400)
}

/// Builds the map-cache in random order and reports what it costs: every
/// byte allocated during the build and still held after it (entries,
/// trie, direct tables, locator sets, interner), per entry.
fn build_measured(t: &Table, label: &str, mut sets: impl FnMut(&Prefix) -> RlocSet) -> MapCache {
    let (heap0, rss0) = (counting::live(), rss_bytes());
    let start = Instant::now();
    let mut m = MapCache::new();
    let mut locators = 0;
    for p in &t.prefixes {
        let set = sets(p);
        locators += set.len();
        m.insert(*p, entry(set));
    }
    let took = start.elapsed();
    let (heap1, rss1) = (counting::live(), rss_bytes());
    m.shrink_to_fit();
    let (heap2, rss2) = (counting::live(), rss_bytes());
    let n = m.len() as f64;
    eprintln!(
        "{label}: {} entries ({:.2} locators each) built in {took:.2?}, locator sets included; \
         heap {:.1} B/entry, {:.1} after shrink_to_fit (trie + entries alone {:.1}); \
         RSS growth {:.1} B/entry, {:.1} after shrink_to_fit",
        m.len(),
        locators as f64 / n,
        (heap1 - heap0) as f64 / n,
        (heap2 - heap0) as f64 / n,
        m.heap_bytes() as f64 / n,
        rss1.saturating_sub(rss0) as f64 / n,
        rss2.saturating_sub(rss0) as f64 / n,
    );
    m
}

fn addrs_inside(t: &Table, v6: bool, seed: u64) -> Vec<Addr> {
    let pool: Vec<&Prefix> = t.prefixes.iter().filter(|p| p.is_v6() == v6).collect();
    let mut rng = SplitMix::new(seed);
    (0..BATCH)
        .map(|_| {
            let p = pool[rng.below(pool.len() as u64) as usize];
            synth::addr_inside(&mut rng, p)
        })
        .collect()
}

fn sum_v4(m: &MapCache, addrs: &[u32]) -> u64 {
    let mut sum = 0u64;
    for &a in addrs {
        if let Some(e) = m.lookup_v4(0, a) {
            sum += u64::from(e.expires);
        }
    }
    black_box(sum)
}

fn sum_v6(m: &MapCache, addrs: &[u128]) -> u64 {
    let mut sum = 0u64;
    for &a in addrs {
        if let Some(e) = m.lookup_v6(0, a) {
            sum += u64::from(e.expires);
        }
    }
    black_box(sum)
}

const BURST: usize = 64;

fn sum_v4_many(m: &MapCache, addrs: &[u32]) -> u64 {
    let mut sum = 0u64;
    let mut out = [None; BURST];
    for burst in addrs.chunks(BURST) {
        m.lookup_v4_many(0, burst, &mut out);
        for e in out[..burst.len()].iter().flatten() {
            sum += u64::from(e.expires);
        }
    }
    black_box(sum)
}

fn sum_v6_many(m: &MapCache, addrs: &[u128]) -> u64 {
    let mut sum = 0u64;
    let mut out = [None; BURST];
    for burst in addrs.chunks(BURST) {
        m.lookup_v6_many(0, burst, &mut out);
        for e in out[..burst.len()].iter().flatten() {
            sum += u64::from(e.expires);
        }
    }
    black_box(sum)
}

fn bench(c: &mut Criterion) {
    let t = table();

    // Memory: first with every entry owning its locator set (the worst
    // case), then with sets shared among SITES sites (an xTR serves many
    // prefixes), interned.
    let mut rng = SplitMix::new(7);
    let unique = build_measured(&t, "unique locator sets", |p| {
        let v6 = p.is_v6() && rng.below(2) == 0;
        RlocSet::new(&synth::locators(&mut rng, v6))
    });
    drop(unique);
    let mut rng = SplitMix::new(11);
    let mut interner = RlocInterner::new();
    let mut sites: Vec<RlocSet> = Vec::new();
    let m = build_measured(&t, "shared locator sets", |_| {
        if sites.len() < SITES {
            let v6 = sites.len().is_multiple_of(8);
            sites.push(interner.intern(&synth::locators(&mut rng, v6)));
        }
        sites[rng.below(sites.len() as u64) as usize].clone()
    });
    eprintln!("shared locator sets: {} distinct sets", interner.len());

    let v4_hits: Vec<u32> = addrs_inside(&t, false, 21)
        .into_iter()
        .map(|a| match a {
            Addr::V4(x) => x,
            _ => unreachable!(),
        })
        .collect();
    let v6_hits: Vec<u128> = addrs_inside(&t, true, 22)
        .into_iter()
        .map(|a| match a {
            Addr::V6(x) => x,
            _ => unreachable!(),
        })
        .collect();
    let mut rng = SplitMix::new(23);
    let v4_uniform: Vec<u32> = (0..BATCH).map(|_| rng.next_u64() as u32).collect();
    let v6_uniform: Vec<u128> = (0..BATCH)
        .map(|_| (rng.next_u128() >> 3) | (1 << 125))
        .collect();
    let hit_ratio = |n: usize| n as f64 / BATCH as f64 * 100.0;
    eprintln!(
        "uniform IPv4 addresses: {:.1}% hit a prefix; uniform 2000::/3 IPv6: {:.1}%",
        hit_ratio(
            v4_uniform
                .iter()
                .filter(|&&a| m.lookup_v4(0, a).is_some())
                .count()
        ),
        hit_ratio(
            v6_uniform
                .iter()
                .filter(|&&a| m.lookup_v6(0, a).is_some())
                .count()
        ),
    );

    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(BATCH as u64));
    // Each lookup reads the entry it finds (its expiry), as a data plane would.
    g.bench_function("v4_hit", |b| b.iter(|| sum_v4(&m, &v4_hits)));
    g.bench_function("v6_hit", |b| b.iter(|| sum_v6(&m, &v6_hits)));
    g.bench_function("v4_uniform_miss_heavy", |b| {
        b.iter(|| sum_v4(&m, &v4_uniform))
    });
    g.bench_function("v6_uniform_miss_heavy", |b| {
        b.iter(|| sum_v6(&m, &v6_uniform))
    });
    // The burst API: 64 addresses per call, as a data plane receives them.
    g.bench_function("v4_hit_burst", |b| b.iter(|| sum_v4_many(&m, &v4_hits)));
    g.bench_function("v6_hit_burst", |b| b.iter(|| sum_v6_many(&m, &v6_hits)));
    g.bench_function("v4_uniform_miss_heavy_burst", |b| {
        b.iter(|| sum_v4_many(&m, &v4_uniform))
    });
    // The ITR's per-packet work: find, count, read the first locator.
    let mut mc = m.clone();
    g.bench_function("v4_hit_touch_and_first_locator", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &a in &v4_hits {
                if let Some(e) = mc.lookup_v4_mut(0, a) {
                    e.touch(1, 1400);
                    sum += u64::from(e.locators.iter().next().map_or(0, |l| l.weight));
                }
            }
            black_box(sum)
        })
    });
    drop(mc);
    // The generic API: `Addr` in, matched `Prefix` out.
    let v4_addrs: Vec<Addr> = v4_hits.iter().map(|&a| Addr::V4(a)).collect();
    g.bench_function("v4_hit_longest_match_with_prefix", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &a in &v4_addrs {
                if let Some((p, _)) = m.longest_match(0, a) {
                    sum += u64::from(p.len());
                }
            }
            black_box(sum)
        })
    });
    // IPv6 shaped like a real table (clustered under provider /32s) rather
    // than spread uniformly: the upper nodes are shared and stay cached.
    let clustered: Vec<Prefix> = synth::v6_prefixes_clustered(V6_PREFIXES, 0, 0x5eed_0066);
    let mut mv6 = MapCache::new();
    for p in &clustered {
        mv6.insert(*p, entry(RlocSet::EMPTY));
    }
    mv6.shrink_to_fit();
    let mut rng = SplitMix::new(24);
    let v6_clustered_hits: Vec<u128> = (0..BATCH)
        .map(|_| {
            let p = &clustered[rng.below(clustered.len() as u64) as usize];
            match synth::addr_inside(&mut rng, p) {
                Addr::V6(x) => x,
                _ => unreachable!(),
            }
        })
        .collect();
    g.bench_function("v6_clustered_hit", |b| {
        b.iter(|| sum_v6(&mv6, &v6_clustered_hits))
    });
    g.bench_function("v6_clustered_hit_burst", |b| {
        b.iter(|| sum_v6_many(&mv6, &v6_clustered_hits))
    });
    drop(mv6);
    g.finish();

    // Bulk copy of a peer's table: insert everything into an empty map, and removal.
    // A peer's table arrives in its key order; a cache fills in random order.
    let sorted: Vec<(Prefix, CacheEntry)> = m.iter().map(|(p, e)| (p, e.clone())).collect();
    let mut shuffled = sorted.clone();
    let mut rng = SplitMix::new(31);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let order: Vec<Prefix> = shuffled.iter().map(|(p, _)| *p).collect();
    let mut g = c.benchmark_group("bulk");
    g.sample_size(10);
    g.throughput(Throughput::Elements(sorted.len() as u64));
    g.bench_function("insert_1.2M_key_order", |b| {
        b.iter_batched(
            || sorted.clone(),
            |es| es.into_iter().collect::<MapCache>(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("insert_1.2M_random_order", |b| {
        b.iter_batched(
            || shuffled.clone(),
            |es| es.into_iter().collect::<MapCache>(),
            BatchSize::PerIteration,
        )
    });
    drop((sorted, shuffled));
    g.bench_function("remove_1.2M_random_order", |b| {
        b.iter_batched(
            || m.clone(),
            |mut map| {
                for p in &order {
                    map.remove(p);
                }
                map
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
