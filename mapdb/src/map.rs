//! [`PrefixMap`]: the generic longest-prefix-match table.

use std::fmt;

use lisp_msx_proto::Addr;

use crate::prefix::{Prefix, mask32, mask128};
use crate::trie::{Arena, Bits, PathWalk, Tree, Walk};

/// A map from [`Prefix`] (instance id + IPv4/IPv6 prefix) to `V`, with
/// longest-prefix match.
///
/// One table serves every instance and both families; the first (lowest)
/// instance id in use is found without a search, so the common single-instance
/// deployment pays nothing for instance ids.
///
/// Lookups do not allocate. Iteration is in key order ([`Prefix`]'s `Ord`).
#[derive(Clone)]
pub struct PrefixMap<V> {
    arena: Arena<V>,
    /// Sorted by instance id; an instance with no prefix left is dropped.
    spaces: Vec<Space<V>>,
    len: usize,
    /// Test hook: direct tables from this size on (None: the default).
    dir_on: Option<usize>,
}

#[derive(Clone)]
struct Space<V> {
    iid: u32,
    v4: Root<V>,
    v6: Root<V>,
}

#[derive(Clone)]
struct Root<V> {
    tree: Tree,
    /// The /0 prefix, which no trie node holds.
    default: Option<V>,
}

impl<V> Root<V> {
    fn new(dir_on: Option<usize>, inline: bool) -> Self {
        Root {
            tree: Tree::new(dir_on, inline),
            default: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.tree.len == 0 && self.default.is_none()
    }
}

impl<V> Space<V> {
    #[inline(always)]
    fn root(&self, v6: bool) -> &Root<V> {
        if v6 { &self.v6 } else { &self.v4 }
    }

    #[inline(always)]
    fn root_mut(&mut self, v6: bool) -> &mut Root<V> {
        if v6 { &mut self.v6 } else { &mut self.v4 }
    }
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap::new()
    }
}

impl<V> PrefixMap<V> {
    /// An empty map; allocates nothing until the first insert.
    pub fn new() -> Self {
        PrefixMap {
            arena: Arena::default(),
            spaces: Vec::new(),
            len: 0,
            dir_on: None,
        }
    }

    /// A map whose trees build their direct table from `n` prefixes on
    /// (normally 65,536), so tests can exercise it on small tables.
    #[doc(hidden)]
    pub fn with_direct_table_from(n: usize) -> Self {
        PrefixMap {
            dir_on: Some(n.max(1)),
            ..PrefixMap::new()
        }
    }

    /// Number of prefixes stored.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes everything and releases the memory.
    pub fn clear(&mut self) {
        *self = PrefixMap {
            dir_on: self.dir_on,
            ..PrefixMap::new()
        };
    }

    /// Instance ids that hold at least one prefix, ascending.
    pub fn instance_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.spaces.iter().map(|s| s.iid)
    }

    /// Heap bytes held by the table itself (arena capacities), excluding
    /// whatever the values own. For show commands and capacity planning.
    pub fn heap_bytes(&self) -> usize {
        self.arena.heap_bytes()
            + self.spaces.capacity() * size_of::<Space<V>>()
            + self
                .spaces
                .iter()
                .map(|s| s.v4.tree.heap_bytes() + s.v6.tree.heap_bytes())
                .sum::<usize>()
    }

    #[inline]
    fn maybe_compact(&mut self, slack: usize) {
        if let Some(with_values) = self.arena.fragmented(slack) {
            self.compact(with_values);
        }
    }

    fn compact(&mut self, with_values: bool) {
        let mut trees: Vec<&mut Tree> = self
            .spaces
            .iter_mut()
            .flat_map(|s| [&mut s.v4.tree, &mut s.v6.tree])
            .collect();
        self.arena.compact(&mut trees, with_values);
    }

    /// Returns all spare memory: the arenas are rebuilt exactly sized, in
    /// breadth-first order (after a bulk load; updates keep working after it).
    pub fn shrink_to_fit(&mut self) {
        self.compact(true);
        self.spaces.shrink_to_fit();
    }

    // ---- instance lookup ----------------------------------------------------

    #[inline(always)]
    fn space(&self, iid: u32) -> Option<&Space<V>> {
        match self.spaces.first() {
            Some(s) if s.iid == iid => Some(s),
            _ => self.space_slow(iid),
        }
    }

    #[inline(never)]
    fn space_slow(&self, iid: u32) -> Option<&Space<V>> {
        let i = self.spaces.binary_search_by_key(&iid, |s| s.iid).ok()?;
        Some(&self.spaces[i])
    }

    fn space_index(&self, iid: u32) -> Result<usize, usize> {
        match self.spaces.first() {
            Some(s) if s.iid == iid => Ok(0),
            _ => self.spaces.binary_search_by_key(&iid, |s| s.iid),
        }
    }

    // ---- exact match ----------------------------------------------------------

    /// Stores `value` under `key`; returns the value it replaces.
    pub fn insert(&mut self, key: Prefix, value: V) -> Option<V> {
        let i = match self.space_index(key.iid()) {
            Ok(i) => i,
            Err(i) => {
                self.spaces.insert(
                    i,
                    Space {
                        iid: key.iid(),
                        v4: Root::new(self.dir_on, true),
                        v6: Root::new(self.dir_on, false),
                    },
                );
                i
            }
        };
        let root = self.spaces[i].root_mut(key.is_v6());
        let old = if key.len() == 0 {
            root.default.replace(value)
        } else if key.is_v6() {
            self.arena
                .insert(&mut root.tree, key.bits(), key.len(), value)
        } else {
            self.arena
                .insert(&mut root.tree, key.bits() as u32, key.len(), value)
        };
        if old.is_none() {
            self.len += 1;
        }
        self.maybe_compact(2);
        old
    }

    /// Removes `key` exactly (not its more-specifics); returns its value.
    pub fn remove(&mut self, key: &Prefix) -> Option<V> {
        let i = self.space_index(key.iid()).ok()?;
        let space = &mut self.spaces[i];
        let root = space.root_mut(key.is_v6());
        let old = if key.len() == 0 {
            root.default.take()
        } else if key.is_v6() {
            self.arena.remove(&mut root.tree, key.bits(), key.len())
        } else {
            self.arena
                .remove(&mut root.tree, key.bits() as u32, key.len())
        }?;
        self.len -= 1;
        if space.v4.is_empty() && space.v6.is_empty() {
            self.spaces.remove(i);
        }
        self.maybe_compact(1);
        Some(old)
    }

    fn find(&self, key: &Prefix) -> Option<Result<u32, &Root<V>>> {
        let root = self.space(key.iid())?.root(key.is_v6());
        if key.len() == 0 {
            return Some(Err(root));
        }
        let idx = if key.is_v6() {
            self.arena.find(&root.tree, key.bits(), key.len())
        } else {
            self.arena.find(&root.tree, key.bits() as u32, key.len())
        }?;
        Some(Ok(idx))
    }

    /// The value stored under exactly `key`.
    pub fn get(&self, key: &Prefix) -> Option<&V> {
        match self.find(key)? {
            Ok(idx) => self.arena.value(idx),
            Err(root) => root.default.as_ref(),
        }
    }

    pub fn get_mut(&mut self, key: &Prefix) -> Option<&mut V> {
        match self.find(key)? {
            Ok(idx) => self.arena.value_mut(idx),
            Err(_) => {
                let i = self.space_index(key.iid()).ok()?;
                self.spaces[i].root_mut(key.is_v6()).default.as_mut()
            }
        }
    }

    pub fn contains_key(&self, key: &Prefix) -> bool {
        self.get(key).is_some()
    }

    // ---- longest match ----------------------------------------------------

    #[inline(always)]
    fn lpm<B: Bits>(&self, iid: u32, v6: bool, a: B) -> Option<(u8, Result<u32, &Root<V>>)> {
        let root = self.space(iid)?.root(v6);
        match self.arena.lpm(&root.tree, a) {
            Some((len, idx)) => Some((len, Ok(idx))),
            None if root.default.is_some() => Some((0, Err(root))),
            None => None,
        }
    }

    /// The value of the longest prefix covering IPv4 address `addr`: the
    /// per-packet path (no allocation, no key built).
    #[inline]
    pub fn lookup_v4(&self, iid: u32, addr: u32) -> Option<&V> {
        let root = self.space(iid)?.root(false);
        match self.arena.lpm_value(&root.tree, addr) {
            Some(idx) => self.arena.value(idx),
            None => root.default.as_ref(),
        }
    }

    /// The value of the longest prefix covering IPv6 address `addr`.
    #[inline]
    pub fn lookup_v6(&self, iid: u32, addr: u128) -> Option<&V> {
        let root = self.space(iid)?.root(true);
        match self.arena.lpm_value(&root.tree, addr) {
            Some(idx) => self.arena.value(idx),
            None => root.default.as_ref(),
        }
    }

    /// [`lookup_v4`](Self::lookup_v4) for a burst of packets: `out[i]` gets
    /// the value for `addrs[i]`. Several times faster per address than
    /// single lookups on tables that do not fit the cache, because the
    /// lookups of a burst wait for memory together (see the crate docs).
    ///
    /// # Panics
    /// If `out` is shorter than `addrs`.
    pub fn lookup_v4_many<'a>(&'a self, iid: u32, addrs: &[u32], out: &mut [Option<&'a V>]) {
        self.lookup_many(iid, false, addrs, out)
    }

    /// [`lookup_v6`](Self::lookup_v6) for a burst of packets; see
    /// [`lookup_v4_many`](Self::lookup_v4_many).
    ///
    /// # Panics
    /// If `out` is shorter than `addrs`.
    pub fn lookup_v6_many<'a>(&'a self, iid: u32, addrs: &[u128], out: &mut [Option<&'a V>]) {
        self.lookup_many(iid, true, addrs, out)
    }

    #[inline(always)]
    fn lookup_many<'a, B: Bits>(
        &'a self,
        iid: u32,
        v6: bool,
        addrs: &[B],
        out: &mut [Option<&'a V>],
    ) {
        const LANES: usize = 16;
        assert!(
            out.len() >= addrs.len(),
            "lookup_many: output shorter than input"
        );
        let out = &mut out[..addrs.len()];
        let Some(space) = self.space(iid) else {
            out.fill(None);
            return;
        };
        let root = space.root(v6);
        let default = root.default.as_ref();
        let mut chunks = addrs.chunks_exact(LANES);
        let mut outs = out.chunks_exact_mut(LANES);
        for (a, o) in (&mut chunks).zip(&mut outs) {
            let a: &[B; LANES] = a.try_into().expect("chunks_exact");
            let idx = self.arena.lpm_values(&root.tree, a);
            for (slot, i) in o.iter_mut().zip(idx) {
                *slot = self.arena.value(i).or(default);
            }
        }
        let rest = chunks.remainder();
        for (slot, &a) in outs.into_remainder().iter_mut().zip(rest) {
            *slot = self
                .arena
                .lpm_value(&root.tree, a)
                .and_then(|i| self.arena.value(i))
                .or(default);
        }
    }

    /// [`lookup_v4`](Self::lookup_v4) for updating the entry (per-packet counters).
    #[inline]
    pub fn lookup_v4_mut(&mut self, iid: u32, addr: u32) -> Option<&mut V> {
        let root = self.space(iid)?.root(false);
        match self.arena.lpm_value(&root.tree, addr) {
            Some(idx) => self.arena.value_mut(idx),
            None => self.default_mut(iid, false),
        }
    }

    /// [`lookup_v6`](Self::lookup_v6) for updating the entry.
    #[inline]
    pub fn lookup_v6_mut(&mut self, iid: u32, addr: u128) -> Option<&mut V> {
        let root = self.space(iid)?.root(true);
        match self.arena.lpm_value(&root.tree, addr) {
            Some(idx) => self.arena.value_mut(idx),
            None => self.default_mut(iid, true),
        }
    }

    fn default_mut(&mut self, iid: u32, v6: bool) -> Option<&mut V> {
        let i = self.space_index(iid).ok()?;
        self.spaces[i].root_mut(v6).default.as_mut()
    }

    fn lpm_addr(&self, iid: u32, addr: Addr) -> Option<(Prefix, Result<u32, &Root<V>>)> {
        match addr {
            Addr::None => None,
            Addr::V4(a) => {
                let (len, r) = self.lpm(iid, false, a)?;
                Some((
                    Prefix::from_parts(iid, false, u128::from(mask32(a, len)), len),
                    r,
                ))
            }
            Addr::V6(a) => {
                let (len, r) = self.lpm(iid, true, a)?;
                Some((Prefix::from_parts(iid, true, mask128(a, len), len), r))
            }
        }
    }

    /// The longest stored prefix covering `addr` in instance `iid`, and its value.
    pub fn longest_match(&self, iid: u32, addr: Addr) -> Option<(Prefix, &V)> {
        let (p, r) = self.lpm_addr(iid, addr)?;
        let v = match r {
            Ok(idx) => self.arena.value(idx)?,
            Err(root) => root.default.as_ref()?,
        };
        Some((p, v))
    }

    pub fn longest_match_mut(&mut self, iid: u32, addr: Addr) -> Option<(Prefix, &mut V)> {
        let (p, r) = self.lpm_addr(iid, addr)?;
        let v = match r {
            Ok(idx) => self.arena.value_mut(idx)?,
            Err(_) => self.default_mut(iid, p.is_v6())?,
        };
        Some((p, v))
    }

    /// The longest stored prefix that covers all of `p` (`p` itself when
    /// stored): the Map-Server/Resolver question for a requested prefix.
    pub fn longest_match_prefix(&self, p: &Prefix) -> Option<(Prefix, &V)> {
        let root = self.space(p.iid())?.root(p.is_v6());
        let hit = if p.is_v6() {
            self.arena.lpm_upto(root.tree.top, p.bits(), p.len())
        } else {
            self.arena.lpm_upto(root.tree.top, p.bits() as u32, p.len())
        };
        match hit {
            Some((len, idx)) => Some((truncate(p, len), self.arena.value(idx)?)),
            None => Some((truncate(p, 0), root.default.as_ref()?)),
        }
    }

    // ---- walks ----------------------------------------------------------------

    /// All entries in key order.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter {
            map: self,
            next_root: 0,
            end_root: self.spaces.len() * 2,
            cur: None,
            pending_default: None,
            walk: Walk::empty(),
            remaining: Some(self.len),
        }
    }

    /// `p` and every stored prefix inside it, in key order: what a Map-Reply
    /// returns beside the best match, what accept-more-specifics checks.
    pub fn more_specifics(&self, p: &Prefix) -> Iter<'_, V> {
        let mut it = Iter {
            map: self,
            next_root: 0,
            end_root: 0,
            cur: Some((p.iid(), p.is_v6())),
            pending_default: None,
            walk: Walk::empty(),
            remaining: None,
        };
        let Some(space) = self.space(p.iid()) else {
            return it;
        };
        let root = space.root(p.is_v6());
        if p.len() == 0 {
            it.pending_default = root.default.as_ref();
            it.walk = Walk::all(&self.arena.nodes, root.tree.top);
        } else if p.is_v6() {
            it.walk = Walk::within(&self.arena, root.tree.top, p.bits(), p.len());
        } else {
            it.walk = Walk::within(&self.arena, root.tree.top, p.bits() as u32, p.len());
        }
        it
    }

    /// Every stored prefix that covers `p` (`p` itself included when stored),
    /// shortest first: the less-specifics a Map-Server checks registrations against.
    pub fn covering(&self, p: &Prefix) -> Covering<'_, V> {
        let mut c = Covering {
            map: self,
            prefix: *p,
            default: None,
            walk: CoverWalk::Done,
        };
        let Some(space) = self.space(p.iid()) else {
            return c;
        };
        let root = space.root(p.is_v6());
        c.default = root.default.as_ref();
        c.walk = if p.is_v6() {
            CoverWalk::V6(PathWalk::new(&self.arena, root.tree.top, p.bits(), p.len()))
        } else {
            CoverWalk::V4(PathWalk::new(
                &self.arena,
                root.tree.top,
                p.bits() as u32,
                p.len(),
            ))
        };
        c
    }

    /// Keeps the entries for which `f` returns true; `f` may also update them
    /// (an expiry sweep ages and drops in one pass).
    pub fn retain(&mut self, mut f: impl FnMut(&Prefix, &mut V) -> bool) {
        let mut dead = Vec::new();
        for space in &mut self.spaces {
            let iid = space.iid;
            for v6 in [false, true] {
                let root = space.root_mut(v6);
                if let Some(v) = root.default.as_mut()
                    && !f(&key_of(iid, v6, 0, 0), v)
                {
                    dead.push(key_of(iid, v6, 0, 0));
                }
                let mut walk = Walk::all(&self.arena.nodes, root.tree.top);
                while let Some((len, left, idx)) = walk.next(&self.arena.nodes) {
                    let k = key_of(iid, v6, left, len);
                    if let Some(v) = self.arena.value_mut(idx)
                        && !f(&k, v)
                    {
                        dead.push(k);
                    }
                }
            }
        }
        for k in &dead {
            self.remove(k);
        }
    }
}

/// The key of a walked prefix (the walker works on left-aligned addresses).
#[inline]
fn key_of(iid: u32, v6: bool, left: u128, len: u8) -> Prefix {
    let bits = if v6 { left } else { left >> 96 };
    Prefix::from_parts(iid, v6, bits, len)
}

/// `p` cut to `len` bits.
fn truncate(p: &Prefix, len: u8) -> Prefix {
    if p.is_v6() {
        Prefix::v6(p.iid(), p.bits(), len)
    } else {
        Prefix::v4(p.iid(), p.bits() as u32, len)
    }
}

/// Iterator over entries in key order; see [`PrefixMap::iter`] and
/// [`PrefixMap::more_specifics`]. Never allocates.
#[derive(Clone)]
pub struct Iter<'a, V> {
    map: &'a PrefixMap<V>,
    /// Roots still to start (2 per instance: IPv4, IPv6), for a full walk.
    next_root: usize,
    end_root: usize,
    /// Instance and family of the current walk.
    cur: Option<(u32, bool)>,
    pending_default: Option<&'a V>,
    walk: Walk,
    remaining: Option<usize>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (Prefix, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((iid, v6)) = self.cur {
                if let Some(v) = self.pending_default.take() {
                    self.remaining = self.remaining.map(|n| n - 1);
                    return Some((key_of(iid, v6, 0, 0), v));
                }
                if let Some((len, left, idx)) = self.walk.next(&self.map.arena.nodes) {
                    self.remaining = self.remaining.map(|n| n - 1);
                    return Some((key_of(iid, v6, left, len), self.map.arena.value(idx)?));
                }
            }
            if self.next_root == self.end_root {
                return None;
            }
            let space = &self.map.spaces[self.next_root / 2];
            let v6 = self.next_root % 2 == 1;
            self.next_root += 1;
            let root = space.root(v6);
            self.cur = Some((space.iid, v6));
            self.pending_default = root.default.as_ref();
            self.walk = Walk::all(&self.map.arena.nodes, root.tree.top);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(n) => (n, Some(n)),
            None => (0, Some(self.map.len)),
        }
    }
}

impl<V> std::iter::FusedIterator for Iter<'_, V> {}

/// Iterator over the prefixes covering a prefix, shortest first; see
/// [`PrefixMap::covering`]. Never allocates.
#[derive(Clone)]
pub struct Covering<'a, V> {
    map: &'a PrefixMap<V>,
    prefix: Prefix,
    default: Option<&'a V>,
    walk: CoverWalk,
}

#[derive(Clone)]
enum CoverWalk {
    Done,
    V4(PathWalk<u32>),
    V6(PathWalk<u128>),
}

impl<'a, V> Iterator for Covering<'a, V> {
    type Item = (Prefix, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(v) = self.default.take() {
            return Some((truncate(&self.prefix, 0), v));
        }
        let arena = &self.map.arena;
        let (len, idx) = match &mut self.walk {
            CoverWalk::Done => None,
            CoverWalk::V4(w) => w.next(arena),
            CoverWalk::V6(w) => w.next(arena),
        }?;
        Some((truncate(&self.prefix, len), arena.value(idx)?))
    }
}

impl<V> std::iter::FusedIterator for Covering<'_, V> {}

impl<'a, V> IntoIterator for &'a PrefixMap<V> {
    type Item = (Prefix, &'a V);
    type IntoIter = Iter<'a, V>;
    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V> FromIterator<(Prefix, V)> for PrefixMap<V> {
    fn from_iter<I: IntoIterator<Item = (Prefix, V)>>(iter: I) -> Self {
        let mut m = PrefixMap::new();
        m.extend(iter);
        m
    }
}

impl<V> Extend<(Prefix, V)> for PrefixMap<V> {
    fn extend<I: IntoIterator<Item = (Prefix, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for PrefixMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
