//! Every `PrefixMap` operation against a naive model (an ordered map scanned
//! linearly), over random operation sequences: IPv4 and IPv6, several
//! instance ids, /0 and host routes, heavily overlapping prefixes.

use std::collections::{BTreeMap, HashMap};

use lisp_mapdb::synth::{self, SplitMix};
use lisp_mapdb::{Prefix, PrefixMap};
use lisp_msx_proto::Addr;
use proptest::prelude::*;

type Model = BTreeMap<Prefix, u32>;

const IIDS: [u32; 4] = [0, 1, 7, u32::MAX];
const V4_BASES: [u32; 4] = [0, u32::MAX, 0x0a00_0000, 0xc000_0200];
const V6_BASES: [u128; 4] = [0, u128::MAX, 0x2001_0db8 << 96, 0xfe80 << 112];
const V4_EDGES: [u8; 10] = [0, 1, 5, 6, 7, 12, 24, 30, 31, 32];
const V6_EDGES: [u8; 12] = [0, 1, 6, 7, 32, 48, 64, 120, 122, 126, 127, 128];

/// Addresses clustered around a few bases so that prefixes nest and collide.
fn addr_strategy() -> impl Strategy<Value = (u32, Addr)> {
    let iid = prop::sample::select(IIDS.to_vec());
    let v4 = (0..4usize, any::<u32>(), 0u32..33)
        .prop_map(|(b, r, s)| Addr::V4(V4_BASES[b] ^ r.checked_shr(s).unwrap_or(0)));
    let v6 = (0..4usize, any::<u128>(), 0u32..129)
        .prop_map(|(b, r, s)| Addr::V6(V6_BASES[b] ^ r.checked_shr(s).unwrap_or(0)));
    (iid, prop_oneof![v4, v6])
}

fn prefix_strategy() -> impl Strategy<Value = Prefix> {
    (addr_strategy(), any::<u8>(), any::<bool>()).prop_map(|((iid, a), l, edge)| {
        let len = match a {
            Addr::V4(_) if edge => V4_EDGES[l as usize % V4_EDGES.len()],
            Addr::V4(_) => l % 33,
            _ if edge => V6_EDGES[l as usize % V6_EDGES.len()],
            _ => l % 129,
        };
        Prefix::new(iid, a, len).unwrap()
    })
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Prefix, u32),
    Remove(Prefix),
    /// Removes the n-th stored prefix (so removals hit, covering ones included).
    RemoveNth(usize),
    Get(Prefix),
    Lookup(u32, Addr),
    LongestMatchPrefix(Prefix),
    MoreSpecifics(Prefix),
    Covering(Prefix),
    Retain(u32),
    Mutate(Prefix),
    /// `shrink_to_fit`: the arenas are compacted, every index moves.
    Compact,
    /// `lookup_v6_many` on a burst of addresses, each checked like a lookup.
    LookupV6Many(u32, Vec<u128>),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prefix_strategy(), any::<u32>()).prop_map(|(p, v)| Op::Insert(p, v)),
        1 => prefix_strategy().prop_map(Op::Remove),
        2 => any::<usize>().prop_map(Op::RemoveNth),
        1 => prefix_strategy().prop_map(Op::Get),
        3 => addr_strategy().prop_map(|(i, a)| Op::Lookup(i, a)),
        1 => prefix_strategy().prop_map(Op::LongestMatchPrefix),
        1 => prefix_strategy().prop_map(Op::MoreSpecifics),
        1 => prefix_strategy().prop_map(Op::Covering),
        1 => (2u32..5).prop_map(Op::Retain),
        1 => prefix_strategy().prop_map(Op::Mutate),
        1 => Just(Op::Compact),
    ]
}

fn model_lpm(m: &Model, iid: u32, a: Addr) -> Option<(Prefix, u32)> {
    m.iter()
        .filter(|(p, _)| p.contains_addr(iid, a))
        .max_by_key(|(p, _)| p.len())
        .map(|(p, v)| (*p, *v))
}

fn check_lookup(map: &PrefixMap<u32>, m: &Model, iid: u32, a: Addr) {
    let want = model_lpm(m, iid, a);
    let got = map.longest_match(iid, a).map(|(p, v)| (p, *v));
    assert_eq!(got, want, "longest_match({iid}, {a})");
    let fast = match a {
        Addr::V4(x) => map.lookup_v4(iid, x),
        Addr::V6(x) => map.lookup_v6(iid, x),
        Addr::None => None,
    };
    assert_eq!(
        fast.copied(),
        want.map(|w| w.1),
        "lookup fast path ({iid}, {a})"
    );
}

fn run(ops: Vec<Op>) {
    run_on(PrefixMap::new(), ops);
}

fn run_on(mut map: PrefixMap<u32>, ops: Vec<Op>) {
    let mut m = Model::new();
    for op in ops {
        match op {
            Op::Insert(p, v) => assert_eq!(map.insert(p, v), m.insert(p, v), "insert {p}"),
            Op::Remove(p) => assert_eq!(map.remove(&p), m.remove(&p), "remove {p}"),
            Op::RemoveNth(n) => {
                if let Some(&p) = m.keys().nth(n % m.len().max(1)) {
                    assert_eq!(map.remove(&p), m.remove(&p), "remove {p}");
                }
            }
            Op::Get(p) => {
                assert_eq!(map.get(&p), m.get(&p), "get {p}");
                assert_eq!(map.contains_key(&p), m.contains_key(&p));
                // A stored key is found exactly, and by a lookup of its first address.
                if let Some(&q) = m.keys().nth(p.len() as usize % m.len().max(1)) {
                    assert_eq!(map.get(&q), m.get(&q), "get {q}");
                    check_lookup(&map, &m, q.iid(), q.addr());
                }
            }
            Op::Lookup(iid, a) => check_lookup(&map, &m, iid, a),
            Op::LookupV6Many(iid, addrs) => {
                let mut out = vec![None; addrs.len()];
                map.lookup_v6_many(iid, &addrs, &mut out);
                for (&a, got) in addrs.iter().zip(out) {
                    let want = model_lpm(&m, iid, Addr::V6(a)).map(|w| w.1);
                    assert_eq!(got.copied(), want, "lookup_v6_many ({iid}, {a:#x})");
                    check_lookup(&map, &m, iid, Addr::V6(a));
                }
            }
            Op::LongestMatchPrefix(q) => {
                let want = m
                    .iter()
                    .filter(|(p, _)| p.contains(&q))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(p, v)| (*p, *v));
                let got = map.longest_match_prefix(&q).map(|(p, v)| (p, *v));
                assert_eq!(got, want, "longest_match_prefix {q}");
            }
            Op::MoreSpecifics(q) => {
                let want: Vec<_> = m
                    .iter()
                    .filter(|(p, _)| q.contains(p))
                    .map(|(p, v)| (*p, *v))
                    .collect();
                let got: Vec<_> = map.more_specifics(&q).map(|(p, v)| (p, *v)).collect();
                assert_eq!(got, want, "more_specifics {q}");
            }
            Op::Covering(q) => {
                let mut want: Vec<_> = m
                    .iter()
                    .filter(|(p, _)| p.contains(&q))
                    .map(|(p, v)| (*p, *v))
                    .collect();
                want.sort_by_key(|(p, _)| p.len());
                let got: Vec<_> = map.covering(&q).map(|(p, v)| (p, *v)).collect();
                assert_eq!(got, want, "covering {q}");
            }
            Op::Retain(k) => {
                map.retain(|p, v| {
                    *v = v.wrapping_add(u32::from(p.len()));
                    *v % k != 0
                });
                m.retain(|p, v| {
                    *v = v.wrapping_add(u32::from(p.len()));
                    *v % k != 0
                });
            }
            Op::Compact => map.shrink_to_fit(),
            Op::Mutate(p) => {
                if let Some(v) = map.get_mut(&p) {
                    *v ^= 0x5555;
                }
                if let Some(v) = m.get_mut(&p) {
                    *v ^= 0x5555;
                }
                let a = p.addr();
                let hit = match a {
                    Addr::V4(x) => map.lookup_v4_mut(p.iid(), x).map(|v| {
                        *v = v.wrapping_add(1);
                        *v
                    }),
                    Addr::V6(x) => map.lookup_v6_mut(p.iid(), x).map(|v| {
                        *v = v.wrapping_add(1);
                        *v
                    }),
                    Addr::None => None,
                };
                if let Some((q, _)) = model_lpm(&m, p.iid(), a) {
                    let v = m.get_mut(&q).unwrap();
                    *v = v.wrapping_add(1);
                    assert_eq!(hit, Some(*v));
                } else {
                    assert_eq!(hit, None);
                }
            }
        }
        assert_eq!(map.len(), m.len());
        let got: Vec<_> = map.iter().map(|(p, v)| (p, *v)).collect();
        let want: Vec<_> = m.iter().map(|(p, v)| (*p, *v)).collect();
        assert_eq!(got, want, "iteration");
        let mut iids: Vec<u32> = m.keys().map(|p| p.iid()).collect();
        iids.dedup();
        assert_eq!(map.instance_ids().collect::<Vec<_>>(), iids);
    }
    // Draining leaves nothing behind.
    let keys: Vec<Prefix> = m.keys().copied().collect();
    for p in keys.iter().rev() {
        assert_eq!(map.remove(p), m.remove(p));
    }
    assert!(map.is_empty() && map.iter().next().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn operations_match_the_model(ops in prop::collection::vec(op_strategy(), 1..200)) {
        run(ops);
    }
}

proptest! {
    // Each tree's direct table (9 MiB inline for IPv4, 2 MiB of indices for
    // IPv6: both forms are exercised) is rebuilt often here: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The same with every tree using its direct table (normally only trees
    /// of 65,536 prefixes and more have one).
    #[test]
    fn operations_match_the_model_with_direct_tables(ops in prop::collection::vec(op_strategy(), 1..200)) {
        run_on(PrefixMap::with_direct_table_from(1), ops);
    }
}

// ---- IPv6 shaped like real tables -------------------------------------------

/// Provider blocks in 2000::/3, and one elsewhere, that IPv6 prefixes
/// cluster under: nodes fill and empty, leaves split into jumps and merge
/// back, the direct table's summaries of depth-18 nodes change form.
const V6_PROVIDERS: [u128; 5] = [
    0x2001_0db8 << 96,
    0x2001_0db9 << 96,
    0x2a00_1450 << 96,
    0x2600_0000_0001 << 80,
    0xfd00_0000_0000_0001 << 64,
];
/// Lengths around the stride edges (18 = direct table, 24, 30, 36, 42, 48,
/// 60, 126) and the common /32, /48, /56, /64 and /128.
const V6_LENS: [u8; 24] = [
    12, 16, 18, 19, 23, 24, 25, 29, 30, 31, 32, 33, 36, 40, 42, 44, 47, 48, 49, 56, 60, 64, 126,
    128,
];

/// An IPv6 address near a provider block: random bits from `shift` on.
fn v6_addr_strategy() -> impl Strategy<Value = u128> {
    (0..V6_PROVIDERS.len(), any::<u128>(), 14u32..100)
        .prop_map(|(b, r, s)| V6_PROVIDERS[b] ^ (r >> s))
}

fn v6_prefix_strategy() -> impl Strategy<Value = Prefix> {
    (
        prop::sample::select(vec![0u32, 3]),
        v6_addr_strategy(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(iid, a, l, edge)| {
            let len = if edge {
                V6_LENS[l as usize % V6_LENS.len()]
            } else {
                l % 129
            };
            Prefix::v6(iid, a, len)
        })
}

fn v6_op_strategy() -> impl Strategy<Value = Op> {
    let lookup = (prop::sample::select(vec![0u32, 3]), v6_addr_strategy());
    prop_oneof![
        8 => (v6_prefix_strategy(), any::<u32>()).prop_map(|(p, v)| Op::Insert(p, v)),
        1 => v6_prefix_strategy().prop_map(Op::Remove),
        3 => any::<usize>().prop_map(Op::RemoveNth),
        1 => v6_prefix_strategy().prop_map(Op::Get),
        3 => lookup.prop_map(|(i, a)| Op::Lookup(i, Addr::V6(a))),
        1 => (
            prop::sample::select(vec![0u32, 3]),
            prop::collection::vec(v6_addr_strategy(), 0..40)
        )
            .prop_map(|(i, a)| Op::LookupV6Many(i, a)),
        1 => v6_prefix_strategy().prop_map(Op::LongestMatchPrefix),
        1 => v6_prefix_strategy().prop_map(Op::MoreSpecifics),
        1 => v6_prefix_strategy().prop_map(Op::Covering),
        1 => v6_prefix_strategy().prop_map(Op::Mutate),
        1 => Just(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// IPv6 tables shaped like real ones (prefixes clustered under
    /// provider blocks, mostly /32–/64) against the naive model, lookups
    /// of addresses inside and around the stored prefixes included.
    #[test]
    fn ipv6_operations_match_the_model(ops in prop::collection::vec(v6_op_strategy(), 1..300)) {
        run(ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The same with direct tables.
    #[test]
    fn ipv6_operations_match_the_model_with_direct_tables(
        ops in prop::collection::vec(v6_op_strategy(), 1..300)
    ) {
        run_on(PrefixMap::with_direct_table_from(1), ops);
    }
}

#[test]
fn edge_prefixes() {
    use Op::*;
    let p = |s: &str| s.parse::<Prefix>().unwrap();
    run(vec![
        Insert(p("0.0.0.0/0"), 1),
        Insert(p("::/0"), 2),
        Insert(p("255.255.255.255/32"), 3),
        Insert(p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 4),
        Insert(p("[7]10.0.0.0/8"), 5),
        Insert(p("[7]10.0.0.0/7"), 6),
        Insert(p("[7]10.1.0.0/16"), 7),
        Insert(p("[7]10.1.2.0/24"), 8),
        Insert(p("[7]10.1.2.0/30"), 9),
        Lookup(7, Addr::V4(0x0a01_0203)),
        Lookup(7, Addr::V4(0x0b00_0000)),
        Lookup(0, Addr::V4(0x0b00_0000)),
        Lookup(0, Addr::V6(u128::MAX)),
        Lookup(0, Addr::V6(u128::MAX - 1)),
        Lookup(3, Addr::V4(0)),
        Lookup(0, Addr::None),
        MoreSpecifics(p("[7]10.0.0.0/8")),
        MoreSpecifics(p("[7]0.0.0.0/0")),
        Covering(p("[7]10.1.2.1/32")),
        LongestMatchPrefix(p("[7]10.1.2.0/29")),
        LongestMatchPrefix(p("[7]10.1.2.0/23")),
        Remove(p("[7]10.0.0.0/7")),
        Remove(p("[7]10.0.0.0/8")),
        Lookup(7, Addr::V4(0x0a01_0203)),
        Lookup(7, Addr::V4(0x0a02_0203)),
        Remove(p("0.0.0.0/0")),
        Lookup(0, Addr::V4(0x0b00_0000)),
        Insert(p("[7]10.0.0.0/8"), 10),
        Remove(p("[7]10.1.2.0/24")),
        Lookup(7, Addr::V4(0x0a01_0203)),
        Lookup(7, Addr::V4(0x0a01_0208)),
    ]);
    let mut m = PrefixMap::new();
    m.insert(p("0.0.0.0/0"), 0);
    assert_eq!(m.longest_match(0, Addr::V4(1)), Some((p("0.0.0.0/0"), &0)));
    assert_eq!(m.longest_match(0, Addr::V6(1)), None);
    assert_eq!(m.lookup_v4(1, 1), None);
    assert_eq!(m.lookup_v6_mut(0, 1), None);
    *m.lookup_v4_mut(0, 9).unwrap() = 5;
    assert_eq!(m.get(&p("0.0.0.0/0")), Some(&5));
    assert_eq!(format!("{m:?}"), "{0.0.0.0/0: 5}");
    m.insert(p("[3]2001:db8::/32"), 6);
    m.clear();
    assert!(m.is_empty() && m.get(&p("[3]2001:db8::/32")).is_none());
    assert_eq!(m.heap_bytes(), 0);
}

/// Longest match by probing a hash map per length, for large tables.
struct HashModel {
    v4: HashMap<(u32, u8), u32>,
    v6: HashMap<(u128, u8), u32>,
}

impl HashModel {
    fn lpm(&self, a: Addr) -> Option<(u8, u32)> {
        match a {
            Addr::V4(x) => (0..=32u8).rev().find_map(|l| {
                let m = if l == 0 {
                    0
                } else {
                    x & (u32::MAX << (32 - l))
                };
                self.v4.get(&(m, l)).map(|v| (l, *v))
            }),
            Addr::V6(x) => (0..=128u8).rev().find_map(|l| {
                let m = if l == 0 {
                    0
                } else {
                    x & (u128::MAX << (128 - l))
                };
                self.v6.get(&(m, l)).map(|v| (l, *v))
            }),
            Addr::None => None,
        }
    }
}

/// A synthetic table at some scale, churned: block reuse, compaction and
/// pruning under load; the direct table built, maintained and dropped.
#[test]
fn large_table_matches_hash_model() {
    large_table(PrefixMap::new());
    large_table(PrefixMap::with_direct_table_from(20_000));
}

fn large_table(mut map: PrefixMap<u32>) {
    let v4 = synth::v4_prefixes(30_000, 0, 1);
    let v6 = synth::v6_prefixes(10_000, 0, 2);
    let mut model = HashModel {
        v4: HashMap::new(),
        v6: HashMap::new(),
    };
    for (i, p) in v4.iter().chain(&v6).enumerate() {
        map.insert(*p, i as u32);
        match p.addr() {
            Addr::V4(a) => model.v4.insert((a, p.len()), i as u32),
            _ => model.v6.insert((p.bits(), p.len()), i as u32),
        };
    }
    let mut rng = SplitMix::new(3);
    let check = |map: &PrefixMap<u32>, model: &HashModel, rng: &mut SplitMix| {
        let (mut a4, mut a6) = (Vec::new(), Vec::new());
        for p in v4.iter().chain(&v6).step_by(3) {
            let a = synth::addr_inside(rng, p);
            let got = map.longest_match(0, a).map(|(p, v)| (p.len(), *v));
            assert_eq!(got, model.lpm(a), "{a}");
            let miss = Addr::V4(rng.next_u64() as u32);
            assert_eq!(
                map.longest_match(0, miss).map(|(p, v)| (p.len(), *v)),
                model.lpm(miss)
            );
            match a {
                Addr::V4(x) => a4.extend([x, rng.next_u64() as u32]),
                Addr::V6(x) => a6.extend([x, x ^ 1 << 100]),
                Addr::None => {}
            }
        }
        // Bursts of every length around the lane count, output longer than input.
        let mut out = vec![Some(&0); 80];
        for n in [0, 1, 15, 16, 17, 33, 64] {
            for burst in a4.chunks(n.max(1)).take(20) {
                let burst = &burst[..n.min(burst.len())];
                map.lookup_v4_many(0, burst, &mut out);
                for (i, &a) in burst.iter().enumerate() {
                    assert_eq!(out[i], map.lookup_v4(0, a), "{a:#x}");
                }
            }
            for burst in a6.chunks(n.max(1)).take(20) {
                let burst = &burst[..n.min(burst.len())];
                map.lookup_v6_many(0, burst, &mut out);
                for (i, &a) in burst.iter().enumerate() {
                    assert_eq!(out[i], map.lookup_v6(0, a), "{a:#x}");
                }
            }
        }
        map.lookup_v4_many(9, &a4[..20], &mut out);
        assert!(out[..20].iter().all(Option::is_none));
    };
    check(&map, &model, &mut rng);
    // Remove every other prefix, then put back a third of them.
    for (i, p) in v4.iter().chain(&v6).enumerate().filter(|(i, _)| i % 2 == 0) {
        assert_eq!(map.remove(p), Some(i as u32));
        match p.addr() {
            Addr::V4(a) => model.v4.remove(&(a, p.len())),
            _ => model.v6.remove(&(p.bits(), p.len())),
        };
    }
    for (i, p) in v4.iter().chain(&v6).enumerate().filter(|(i, _)| i % 6 == 0) {
        map.insert(*p, i as u32 + 1);
        match p.addr() {
            Addr::V4(a) => model.v4.insert((a, p.len()), i as u32 + 1),
            _ => model.v6.insert((p.bits(), p.len()), i as u32 + 1),
        };
    }
    assert_eq!(map.len(), model.v4.len() + model.v6.len());
    check(&map, &model, &mut rng);
    map.shrink_to_fit();
    check(&map, &model, &mut rng);
    let mut keys: Vec<Prefix> = map.iter().map(|(p, _)| p).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    map.retain(|p, _| p.is_v6());
    assert_eq!(map.len(), model.v6.len());
    keys.retain(|p| p.is_v6());
    for p in &keys {
        assert!(map.remove(p).is_some());
    }
    assert!(map.is_empty());
    assert_eq!(map.iter().count(), 0);
}
