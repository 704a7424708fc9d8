//! The one mapping database of lisp-msx: EID-prefix → value, with
//! longest-prefix match over instance ids, IPv4 and IPv6.
//!
//! Every table of mappings in the project is a [`PrefixMap`]: the
//! Map-Server's site table, the Map-Resolver's tables (and the copies of a
//! peer mapping system's million entries), the DDT referral cache, the ITR
//! map-cache ([`MapCache`] = `PrefixMap<`[`CacheEntry`]`>`) and the cache
//! synchronization engine. One structure, written and measured once.
//!
//! - [`Prefix`]: the key (instance id, family, address, length), 32 bytes,
//!   host bits always clear; converts from and to [`lisp_msx_proto::EidPrefix`].
//! - [`PrefixMap`]: exact match, longest match (per packet:
//!   [`PrefixMap::lookup_v4`], [`PrefixMap::lookup_v6`]; per burst of packets:
//!   [`PrefixMap::lookup_v4_many`], [`PrefixMap::lookup_v6_many`]), the
//!   longest prefix covering a prefix, more-specifics, covering prefixes,
//!   ordered iteration, `retain`.
//! - [`CacheEntry`], [`RlocSet`], [`RlocInterner`]: the 48-byte map-cache
//!   entry and its packed, shareable locator set.
//! - [`synth`]: seeded synthetic tables for benches and tests.
//!
//! ```
//! use lisp_mapdb::{CacheEntry, MapCache, Prefix, Source};
//! use lisp_msx_proto::lisp::record::{EidRecord, Locator};
//! use lisp_msx_proto::Addr;
//!
//! let eid: Prefix = "192.0.2.0/24".parse().unwrap();
//! let rec = EidRecord::new(eid.into(), 1440, vec![Locator::new(Addr::V4(0xc633_6401), 1, 100)]);
//! let mut cache = MapCache::new();
//! cache.insert(eid, CacheEntry::from_record(&rec, Source::MapReply, 0));
//!
//! let e = cache.lookup_v4(0, 0xc000_0207).unwrap(); // 192.0.2.7
//! assert_eq!(e.locators.iter().next().unwrap().addr, Addr::V4(0xc633_6401));
//! assert_eq!(cache.longest_match(0, Addr::V4(0xc000_0207)).unwrap().0, eid);
//! assert_eq!(e.to_record(eid, 0), rec);
//! ```
//!
//! # How it is built, and why
//!
//! A tree bitmap with 6-bit strides whose nodes (32 bytes) and values live in
//! two `Vec` arenas and refer to each other by `u32` index: no `unsafe`, no
//! per-entry allocation, and prefixes are stored as they are (no expansion),
//! so an update touches one node. Three additions make it fast on large
//! tables (details in `trie.rs`):
//! - a direct table on the first 18 bits once a tree holds 65,536 prefixes,
//!   which replaces the three upper levels with one read; for IPv4 it holds
//!   copies of the depth-18 nodes (9 MiB), so a lookup of anything up to a
//!   /24 is two dependent reads, the table entry and the value; for IPv6
//!   (4 MiB) it holds the depth-18 node's child bitmap and block, so the
//!   lookup goes from the entry straight to the node at depth 24;
//! - path compression from depth 18 down: a subtree that holds one prefix is
//!   one *leaf* node (the prefix and its value index), a chain of nodes with
//!   no prefix and one child is one *jump* node. Most IPv6 prefixes are
//!   alone in their /24, so an IPv6 lookup is three dependent reads too:
//!   the table entry, the leaf, the value;
//! - breadth-first compaction when freed blocks pile up (of the nodes alone
//!   during a bulk load, of nodes and values on removals and on
//!   [`PrefixMap::shrink_to_fit`]), which keeps memory near the live size.
//!
//! A lookup is a chain of dependent memory reads (direct table, one or more
//! nodes, the value). Single lookups overlap only as far as the CPU's
//! reorder window allows; the `_many` variants walk 16 addresses level by
//! level so their cache misses overlap, which is where a data plane that
//! receives packets in bursts should go.
//!
//! # Measured
//!
//! `cargo bench -p lisp-mapdb --bench mapdb` on the project's 2-core machine
//! (AMD EPYC, baseline x86-64 code, so popcount runs in software), table of
//! 1,000,000 IPv4 + 200,000 IPv6 prefixes ([`synth`]) with [`CacheEntry`]
//! values of 1–4 locators; 65,536 random addresses inside stored prefixes:
//!
//! | what | figure |
//! |---|---|
//! | IPv4 lookup, single / burst | ≈ 8–13 M/s / ≈ 25–45 M/s |
//! | IPv6 lookup (uniform table), single / burst | ≈ 15–20 M/s / ≈ 30–45 M/s |
//! | IPv6 lookup (clustered table), single / burst | ≈ 4–6 M/s / ≈ 9–12 M/s |
//! | IPv4 uniform addresses (54% miss), single | ≈ 40–50 M/s |
//! | memory per entry, every locator set its own | ≈ 143 B (128 after `shrink_to_fit`) |
//! | memory per entry, locator sets shared (20,000 sites) | ≈ 98 B (83 after `shrink_to_fit`) |
//! | insert 1.2M entries, key order / random order | ≈ 0.15–0.2 s / ≈ 0.6–1.0 s |
//! | remove 1.2M entries, random order | ≈ 0.8–1.4 s |
//!
//! Memory counts every live heap byte the build allocated (entries, trie,
//! direct tables, locator sets, interner). Throughputs vary by ±30% or more
//! with the load of the shared machine, and halve at a load of 4–5 (the
//! figures are medians of runs interleaved with the previous version, at a
//! load of 2–3 on 2 cores). Leaf nodes and the IPv6 direct table's
//! summaries took IPv6 single lookups from ≈ 3–4 M/s to the figure above
//! (4–5× in interleaved pairs) and bursts from ≈ 11 M/s (3–3.5×).

#![forbid(unsafe_code)]

mod cache;
mod map;
mod prefix;
pub mod synth;
mod trie;

pub use cache::{CacheEntry, MapCache, NEVER, RlocInterner, RlocIter, RlocSet, Source};
pub use map::{Covering, Iter, PrefixMap};
pub use prefix::{Prefix, PrefixError};
