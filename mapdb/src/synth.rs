//! Deterministic synthetic tables for benches and tests: seeded, no `rand`.
//!
//! The length mixes follow the shape of today's global tables (IPv4 mostly
//! /16–/24 with a few /8–/15 and /25–/32; IPv6 mostly /32–/48 with some up
//! to /64 and /128), with addresses spread uniformly, which is the hard case
//! for a trie: little sharing of upper nodes.

use std::collections::HashSet;

use lisp_msx_proto::Addr;
use lisp_msx_proto::lisp::record::Locator;

use crate::prefix::Prefix;

/// SplitMix64: tiny, fast, good enough to spread keys.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// IPv4 lengths, per million prefixes.
const V4_MIX: &[(u8, u32)] = &[
    (8, 5),
    (9, 8),
    (10, 12),
    (11, 25),
    (12, 50),
    (13, 80),
    (14, 120),
    (15, 200),
    (16, 12_000),
    (17, 10_000),
    (18, 20_000),
    (19, 30_000),
    (20, 50_000),
    (21, 50_000),
    (22, 120_000),
    (23, 100_000),
    (24, 552_500),
    (25, 5_000),
    (26, 6_000),
    (27, 5_000),
    (28, 6_000),
    (29, 6_000),
    (30, 8_000),
    (31, 500),
    (32, 18_500),
];

/// IPv6 lengths, per million prefixes.
const V6_MIX: &[(u8, u32)] = &[
    (20, 100),
    (24, 300),
    (28, 1_000),
    (29, 3_000),
    (32, 150_000),
    (33, 5_000),
    (34, 5_000),
    (35, 5_000),
    (36, 30_000),
    (40, 40_000),
    (44, 40_000),
    (46, 10_000),
    (47, 10_000),
    (48, 505_600),
    (52, 10_000),
    (56, 45_000),
    (60, 5_000),
    (64, 110_000),
    (128, 20_000),
];

fn pick_len(rng: &mut SplitMix, mix: &[(u8, u32)]) -> u8 {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mut x = rng.below(u64::from(total)) as u32;
    for &(len, w) in mix {
        if x < w {
            return len;
        }
        x -= w;
    }
    mix[mix.len() - 1].0
}

/// `n` distinct IPv4 prefixes in 1.0.0.0–223.255.255.255 (unicast).
pub fn v4_prefixes(n: usize, iid: u32, seed: u64) -> Vec<Prefix> {
    let mut rng = SplitMix::new(seed);
    distinct(n, || {
        let len = pick_len(&mut rng, V4_MIX);
        let a = 0x0100_0000 + rng.below(0xDF00_0000) as u32;
        Prefix::v4(iid, a, len)
    })
}

/// `n` distinct IPv6 prefixes in 2000::/3.
pub fn v6_prefixes(n: usize, iid: u32, seed: u64) -> Vec<Prefix> {
    let mut rng = SplitMix::new(seed);
    distinct(n, || {
        let len = pick_len(&mut rng, V6_MIX);
        let a = (rng.next_u128() >> 3) | (1 << 125);
        Prefix::v6(iid, a, len)
    })
}

/// `n` distinct IPv6 prefixes shaped like a real table: `n / 5` provider
/// /32s inside the RIRs' blocks (2001::/16, 2400::/12, 2600::/12,
/// 2800::/12, 2a00::/12, 2c00::/12), the longer prefixes inside those /32s,
/// the shorter ones covering them.
pub fn v6_prefixes_clustered(n: usize, iid: u32, seed: u64) -> Vec<Prefix> {
    const BLOCKS: [(u128, u8); 6] = [
        (0x2001, 16),
        (0x2400, 12),
        (0x2600, 12),
        (0x2800, 12),
        (0x2a00, 12),
        (0x2c00, 12),
    ];
    let mut rng = SplitMix::new(seed);
    let allocations: Vec<u128> = (0..(n / 5).max(1))
        .map(|_| {
            let (block, len) = BLOCKS[rng.below(BLOCKS.len() as u64) as usize];
            let free = rng.next_u128() >> len >> 96 << 96;
            (block << 112) | free
        })
        .collect();
    distinct(n, || {
        let len = pick_len(&mut rng, V6_MIX);
        let a = allocations[rng.below(allocations.len() as u64) as usize] | (rng.next_u128() >> 32);
        Prefix::v6(iid, a, len)
    })
}

fn distinct(n: usize, mut gen_one: impl FnMut() -> Prefix) -> Vec<Prefix> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = gen_one();
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// A random address inside `p` (as the trie keys it: IPv4 in the low bits).
pub fn addr_inside(rng: &mut SplitMix, p: &Prefix) -> Addr {
    let host = rng.next_u128();
    match p.addr() {
        Addr::V4(a) => {
            let m = if p.len() == 0 {
                0
            } else {
                u32::MAX << (32 - p.len())
            };
            Addr::V4(a | (host as u32 & !m))
        }
        Addr::V6(a) => {
            let m = if p.len() == 0 {
                0
            } else {
                u128::MAX << (128 - p.len())
            };
            Addr::V6(a | (host & !m))
        }
        Addr::None => Addr::None,
    }
}

/// 1–4 locators with random addresses of the given family.
pub fn locators(rng: &mut SplitMix, v6: bool) -> Vec<Locator> {
    let n = 1 + rng.below(4) as usize;
    (0..n)
        .map(|i| {
            let addr = if v6 {
                Addr::V6((0x2001_0db8u128 << 96) | u128::from(rng.next_u64()))
            } else {
                Addr::V4(rng.next_u64() as u32)
            };
            Locator::new(addr, 1 + (i as u8 & 1), 100 / n as u8)
        })
        .collect()
}
