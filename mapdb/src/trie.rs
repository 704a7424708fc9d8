//! The longest-prefix-match engine: a tree bitmap (Eatherton, Varghese and
//! Dittia, 2004) with 6-bit strides, its nodes and values in `Vec` arenas.
//!
//! Why this shape:
//! - A node covers 6 address bits. `internal` (126 bits) says which prefixes
//!   of relative length 1..=6 end in the node, `external` (64 bits) which of
//!   the 64 slots has a child. Both fit one 32-byte node, two to a cache line.
//! - A node's children are contiguous in `nodes`, its values contiguous in
//!   `values`; a popcount of the bitmap below a bit gives the offset. Nodes
//!   and values are `u32` indices, not pointers: half the size, no `unsafe`,
//!   one allocation per arena whatever the table size.
//! - Prefixes are stored once, not expanded (no leaf pushing): an insert or a
//!   removal touches one node and at most its ancestors' child blocks, so
//!   updates cost a few hundred nanoseconds whatever the prefix length, and
//!   exact match, more-specifics and iteration read the prefixes as stored.
//! - Values live in the arena itself, not behind a further index: a lookup is
//!   a chain of node reads and one value read.
//! - Large trees get a direct table for their first 18 bits (see [`Tree`]).
//!   An IPv4 tree's table holds copies of the depth-18 nodes themselves, so
//!   a lookup that ends there (every prefix up to /24) reads the table and
//!   the value, nothing else.
//! - From depth 18 down, a subtree that holds a single prefix is one *leaf*
//!   node (the prefix and its value index), and a chain of nodes that hold
//!   no prefix and have one child is one *jump* node (path compression, as
//!   in a Patricia trie). Most IPv6 prefixes (/32–/64) are alone in their
//!   /24, so an IPv6 lookup is the direct table, a leaf and the value:
//!   without leaves an isolated /48 cost a jump and the node at depth 42
//!   (one more dependent read, and the node's popcount), and without jumps
//!   three or four nodes.
//!
//! A node at depth `d` stores prefixes of length `d+1..=d+6`; a prefix of
//! relative length `r` with `r` leading bits `b` sits at bit `2^r - 2 + b`
//! (heap order, so a longer prefix has a higher bit). `/0` is held by the
//! caller. IPv4 uses depths 0..=30 (6 levels), IPv6 0..=126 (22 levels).
//!
//! A jump node at depth `d` holds no prefix: its `internal` is the key (the
//! address bits above its target depth `t`, left-aligned), `values` is
//! `JUMP | t`, and `children` is a block of one node, the regular node at
//! depth `t`. A leaf at depth `d` stands for a subtree whose only prefix is
//! `key/len` (`len > d`): `internal` is the key, `values` is
//! `JUMP | LEAF | len` and `children` the value index. Both are checked the
//! same way (does the address agree with the key on its first `t` or `len`
//! bits), and both exist only at depth 18 or deeper, so the nodes above the
//! direct table are always regular. The form is canonical, kept by every
//! update on its path ([`Arena::compress`]): no regular node at depth 18 or
//! deeper holds a single prefix and nothing else, or nothing but one child.

/// No value / end of a free list.
pub(crate) const NIL: u32 = u32::MAX;
/// Node 0 is a permanent empty node, so 0 can mean "no node".
pub(crate) const NO_NODE: u32 = 0;
/// Flag in `Node::values` marking a compressed node (a jump or a leaf);
/// arenas stay below 2^31 slots.
const JUMP: u32 = 1 << 31;
/// With [`JUMP`]: the compressed node is a leaf.
const LEAF: u32 = 1 << 30;
const STRIDE: u8 = 6;
/// Deepest IPv6 walk: nodes at depths 0, 6, .., 126.
pub(crate) const MAX_LEVELS: usize = 22;

/// Address bits resolved by a tree's direct table (a multiple of the stride).
const DIR_BITS: u8 = 18;
const DIR_SIZE: usize = 1 << DIR_BITS;
/// Jumps (path compression) start at this depth.
const JUMP_FROM: u8 = DIR_BITS;
/// A tree gets its direct table (2 MiB) at this many prefixes, and loses it
/// below the second figure (hysteresis, so churn at the edge does not flap).
const DIR_ON: usize = 1 << 16;
const DIR_OFF: usize = 1 << 15;

/// One instance's IPv4 or IPv6 prefixes (but /0, which the map holds).
///
/// A large tree also has a direct table, as in poptrie (Asai and Ohara,
/// 2015): the first 18 address bits index an array that gives the depth-18
/// node and the longest prefix of at most 18 bits, which replaces the three
/// upper levels of the walk with one read. Kept exact on every update
/// ([`Arena::update_dir`]), rebuilt by a compaction. Two forms:
///
/// - *inline* (IPv4): the entry is a copy of the depth-18 node itself (an
///   empty node when there is none), so the walk does not read the arena
///   for it either. Most IPv4 prefixes are /19–/24, held by depth-18 nodes,
///   so most lookups are two dependent reads: this table, then the value.
///   It costs 8 MiB + 1 MiB against 2 MiB for indices, about 6 bytes per
///   entry of a 1.2M-entry table. A copy stays exact because a node's
///   content changes only when an update walks through it (a node moved
///   with its parent's child block keeps every field); each update
///   refreshes the copy on its path.
/// - *indexed* (IPv6): the entry ([`DirEntry`], 16 bytes, 4 MiB) is the
///   node's child bitmap and child block when it holds no prefix, which is
///   the rule for IPv6 (prefixes of /19–/24 are rare), and its index
///   otherwise. A lookup then reads the entry and goes straight to the
///   node at depth 24, usually a leaf: three dependent reads with the
///   value. IPv6 tables sit in 2000::/3, an eighth of the table, whose
///   entries stay cached (512 KiB), and copies would cost 9 MiB, which a
///   table of 200,000 IPv6 prefixes alone could not afford (47 bytes per
///   prefix).
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub(crate) top: u32,
    /// Prefixes held.
    pub(crate) len: usize,
    /// Copies of the depth-18 nodes, by the first 18 bits (inline tables).
    dir: Vec<Node>,
    /// Value index of the longest prefix of 1..=18 bits covering each
    /// entry of `dir`, or NIL.
    dir_best: Vec<u32>,
    /// The depth-18 nodes' summaries and longest prefixes (other tables).
    dir_idx: Vec<DirEntry>,
    /// Whether the table holds node copies (`dir`) or summaries (`dir_idx`).
    inline: bool,
    /// Size at which the direct table is built ([`DIR_ON`] but in tests).
    dir_on: usize,
}

/// An entry of an indexed direct table: the depth-18 node for these 18
/// bits in summary form. A node that holds no prefix (an IPv6 depth-18 node
/// nearly always) is its child bitmap and block, so a lookup goes from the
/// entry straight to the node at depth 24; any other is its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirEntry {
    /// The node's `external` (summary form), or 0.
    external: u64,
    /// The node's `children` (summary form), or `JUMP |` the node's index.
    /// No node: 0 and 0.
    children: u32,
    /// Value index of the longest prefix of 1..=18 bits covering them, or NIL.
    best: u32,
}

impl DirEntry {
    const EMPTY: DirEntry = DirEntry {
        external: 0,
        children: 0,
        best: NIL,
    };
}

impl Tree {
    /// A tree whose direct table, once built, holds node copies (`inline`)
    /// or node summaries.
    pub(crate) fn new(dir_on: Option<usize>, inline: bool) -> Tree {
        Tree {
            top: NO_NODE,
            len: 0,
            dir: Vec::new(),
            dir_idx: Vec::new(),
            dir_best: Vec::new(),
            inline,
            dir_on: dir_on.unwrap_or(DIR_ON),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.dir.capacity() * size_of::<Node>()
            + self.dir_best.capacity() * 4
            + self.dir_idx.capacity() * size_of::<DirEntry>()
    }

    fn has_dir(&self) -> bool {
        !self.dir_best.is_empty() || !self.dir_idx.is_empty()
    }

    /// The longest prefix of at most 18 bits covering direct-table entry `i`.
    #[inline(always)]
    fn dir_above(&self, i: usize) -> Option<u32> {
        let b = if self.inline {
            self.dir_best.get(i).copied()
        } else {
            self.dir_idx.get(i).map(|e| e.best)
        };
        b.filter(|&b| b != NIL)
    }
}

/// An address family's integer: `u32` for IPv4, `u128` for IPv6.
pub(crate) trait Bits: Copy {
    /// The 6 bits starting at bit `depth` (from the top), zero-padded past the end.
    fn slot(self, depth: u8) -> u32;
    /// The address left-aligned in 128 bits (the walkers' common form).
    fn to_left(self) -> u128;
    /// The top [`DIR_BITS`] bits.
    fn dir_index(self) -> usize;
    /// How many leading bits the address shares with `key` (left-aligned),
    /// at most the family's width.
    fn agree(self, key: u128) -> u32;
}

impl Bits for u32 {
    #[inline(always)]
    fn slot(self, depth: u8) -> u32 {
        (self << depth) >> 26
    }
    #[inline(always)]
    fn to_left(self) -> u128 {
        u128::from(self) << 96
    }
    #[inline(always)]
    fn dir_index(self) -> usize {
        (self >> (32 - DIR_BITS)) as usize
    }
    #[inline(always)]
    fn agree(self, key: u128) -> u32 {
        (self ^ (key >> 96) as u32).leading_zeros()
    }
}

impl Bits for u128 {
    #[inline(always)]
    fn slot(self, depth: u8) -> u32 {
        ((self << depth) >> 122) as u32
    }
    #[inline(always)]
    fn to_left(self) -> u128 {
        self
    }
    #[inline(always)]
    fn dir_index(self) -> usize {
        (self >> (128 - DIR_BITS)) as usize
    }
    #[inline(always)]
    fn agree(self, key: u128) -> u32 {
        (self ^ key).leading_zeros()
    }
}

/// Slot `v` of a node at `depth`, placed in a left-aligned 128-bit address.
#[inline]
fn place(v: u32, depth: u8) -> u128 {
    if depth <= 122 {
        u128::from(v) << (122 - depth)
    } else {
        u128::from(v) >> (depth - 122)
    }
}

/// True when `x` and `y` (left-aligned) agree on their first `bits` bits.
#[inline(always)]
fn same_top(x: u128, y: u128, bits: u8) -> bool {
    bits == 0 || (x ^ y) >> (128 - u32::from(bits)) == 0
}

/// The first `bits` bits of a left-aligned address.
#[inline]
fn top_bits(x: u128, bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        x & (u128::MAX << (128 - u32::from(bits)))
    }
}

/// Bit of the prefix of relative length `r` (1..=6) through slot `v`.
#[inline(always)]
const fn pos(r: u32, v: u32) -> u32 {
    (1 << r) - 2 + (v >> (6 - r))
}

/// Relative length of the prefix at bit `p`.
#[inline(always)]
fn rel_len(p: u32) -> u8 {
    (31 - (p + 2).leading_zeros()) as u8
}

/// For each slot, the bits of the six prefixes that cover it.
static MATCH: [u128; 64] = {
    let mut t = [0u128; 64];
    let mut v = 0;
    while v < 64 {
        let mut r = 1;
        while r <= 6 {
            t[v as usize] |= 1 << pos(r, v);
            r += 1;
        }
        v += 1;
    }
    t
};

/// Bits of the prefixes of relative length at most `r`.
static UPTO: [u128; 7] = {
    let mut t = [0u128; 7];
    let mut r = 1;
    while r <= 6 {
        t[r] = (1u128 << ((1 << (r + 1)) - 2)) - 1;
        r += 1;
    }
    t
};

/// `x.count_ones()`. Without the `popcnt` instruction (baseline x86-64),
/// the two halves share the last steps of the software count (one multiply
/// instead of two): fewer instructions per lookup leave room in the
/// reorder window for the next lookups' cache misses.
#[inline(always)]
fn popcount128(x: u128) -> u32 {
    if cfg!(target_feature = "popcnt") || !cfg!(target_arch = "x86_64") {
        return x.count_ones();
    }
    const M1: u64 = 0x5555_5555_5555_5555;
    const M2: u64 = 0x3333_3333_3333_3333;
    const M4: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    const H01: u64 = 0x0101_0101_0101_0101;
    let (a, b) = (x as u64, (x >> 64) as u64);
    let a = a - ((a >> 1) & M1);
    let b = b - ((b >> 1) & M1);
    // Nibbles of at most 4 each, so their sum fits a nibble.
    let s = (a & M2) + ((a >> 2) & M2) + (b & M2) + ((b >> 2) & M2);
    let s = (s & M4) + ((s >> 4) & M4);
    (s.wrapping_mul(H01) >> 56) as u32
}

#[inline(always)]
fn below64(v: u32) -> u64 {
    (1u64 << v) - 1
}

#[inline(always)]
fn below128(p: u32) -> u128 {
    (1u128 << p) - 1
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// Prefixes ending in this node, heap-ordered (bits 0..126); in a jump
    /// or a leaf, the key.
    internal: u128,
    /// Slots with a child node.
    external: u64,
    /// First child in `nodes` (meaningless when `external == 0`); in a
    /// jump, its target; in a leaf, its value.
    children: u32,
    /// First value in `values` (meaningless when `internal == 0`), or
    /// `JUMP | target depth`, or `JUMP | LEAF | prefix length`.
    values: u32,
}

/// A node with nothing: where a lookup starts in an empty tree.
static EMPTY: Node = Node {
    internal: 0,
    external: 0,
    children: 0,
    values: 0,
};

/// What a lookup does after reading a node (see [`Arena::step`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Read this node.
    Node(u32),
    /// A leaf matched: this value is the longest match.
    Value(u32),
    /// The path ends; the longest match is the best one seen so far.
    End,
}

impl Node {
    /// A jump to the node at depth `target`, held in block `child`.
    fn jump(key: u128, target: u8, child: u32) -> Node {
        Node {
            internal: top_bits(key, target),
            external: 0,
            children: child,
            values: JUMP | u32::from(target),
        }
    }

    /// A leaf: the one prefix `key/len` of its subtree, and its value.
    fn leaf(key: u128, len: u8, value: u32) -> Node {
        Node {
            internal: top_bits(key, len),
            external: 0,
            children: value,
            values: JUMP | LEAF | u32::from(len),
        }
    }

    /// A jump or a leaf.
    #[inline(always)]
    fn is_compressed(&self) -> bool {
        self.values & JUMP != 0
    }

    #[inline(always)]
    fn is_jump(&self) -> bool {
        self.values & (JUMP | LEAF) == JUMP
    }

    #[inline(always)]
    fn is_leaf(&self) -> bool {
        self.values & (JUMP | LEAF) == JUMP | LEAF
    }

    /// Depth of a jump's target, or length of a leaf's prefix: how many
    /// bits of the key count.
    #[inline(always)]
    fn target(&self) -> u8 {
        self.values as u8
    }

    /// True when a jump's or a leaf's key agrees with `left` on its bits.
    #[inline(always)]
    fn jump_matches(&self, left: u128) -> bool {
        same_top(left, self.internal, self.target())
    }

    /// True when leaf `self` holds exactly `a/len`.
    #[inline]
    fn leaf_is<B: Bits>(&self, a: B, len: u8) -> bool {
        self.target() == len && self.internal == top_bits(a.to_left(), len)
    }

    /// A leaf's prefix: (length, left-aligned address, value index).
    #[inline]
    fn leaf_entry(&self) -> (u8, u128, u32) {
        (self.target(), self.internal, self.children)
    }

    /// A regular node with no prefix and no child (a jump never is).
    #[inline]
    fn is_empty(&self) -> bool {
        self.internal == 0 && self.external == 0 && !self.is_compressed()
    }

    #[inline(always)]
    fn child(&self, v: u32) -> Option<u32> {
        if self.external >> v & 1 == 0 {
            None
        } else {
            Some(self.children + (self.external & below64(v)).count_ones())
        }
    }

    #[inline(always)]
    fn value_at(&self, p: u32) -> u32 {
        self.values + popcount128(self.internal & below128(p))
    }

    /// Slots where a stored prefix starts, so a walk can visit them in order.
    fn starts(&self) -> u64 {
        let mut m = self.internal;
        let mut s = 0u64;
        while m != 0 {
            let p = m.trailing_zeros();
            m &= m - 1;
            let r = u32::from(rel_len(p));
            let b = p + 2 - (1 << r);
            s |= 1 << (b << (6 - r));
        }
        s
    }
}

/// The value index of a lookup's best match (node, matching prefixes; none
/// matching: no match): the longest of the matching prefixes.
#[inline(always)]
fn value_of((node, m): (&Node, u128)) -> Option<u32> {
    (m != 0).then(|| node.value_at(127 - m.leading_zeros()))
}

/// A value slot; free slots chain the free list of their block size.
#[derive(Clone, Debug)]
pub(crate) enum Slot<V> {
    Full(V),
    Free(u32),
}

/// Size classes: node blocks hold 1..=64 nodes, value blocks 1..=126 values.
const NODE_CLASSES: usize = 65;
const VALUE_CLASSES: usize = 127;

#[derive(Clone, Debug)]
pub(crate) struct Arena<V> {
    pub(crate) nodes: Vec<Node>,
    pub(crate) values: Vec<Slot<V>>,
    /// Free-list heads: node blocks by size, then value blocks by size.
    /// Empty until the first free, so an unused map allocates nothing.
    free: Vec<u32>,
    /// Slots in use (the rest of each arena is free blocks).
    live_nodes: usize,
    live_values: usize,
}

impl<V> Default for Arena<V> {
    fn default() -> Self {
        Arena {
            nodes: Vec::new(),
            values: Vec::new(),
            free: Vec::new(),
            live_nodes: 0,
            live_values: 0,
        }
    }
}

/// Grows by an eighth instead of doubling: a table then wastes at most 12.5%
/// of its arenas on spare capacity. The extra reallocations are cheap: at
/// these sizes the allocator moves pages (mremap) rather than bytes.
fn reserve_gently<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n.max(v.len() / 8).max(16));
    }
}

impl<V> Arena<V> {
    #[inline]
    pub(crate) fn value(&self, idx: u32) -> Option<&V> {
        match self.values.get(idx as usize) {
            Some(Slot::Full(v)) => Some(v),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn value_mut(&mut self, idx: u32) -> Option<&mut V> {
        match self.values.get_mut(idx as usize) {
            Some(Slot::Full(v)) => Some(v),
            _ => None,
        }
    }

    /// Heap bytes held by the arenas (capacity, not length).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
            + self.values.capacity() * size_of::<Slot<V>>()
            + self.free.capacity() * 4
    }

    /// Live nodes and values (tests).
    #[cfg(test)]
    fn live(&self) -> (usize, usize) {
        (self.live_nodes, self.live_values)
    }

    // ---- block allocation -------------------------------------------------

    fn free_head(&self, class: usize) -> u32 {
        self.free.get(class).copied().unwrap_or(NIL)
    }

    fn set_free_head(&mut self, class: usize, head: u32) {
        if self.free.is_empty() {
            self.free.resize(NODE_CLASSES + VALUE_CLASSES, NIL);
        }
        self.free[class] = head;
    }

    fn alloc_nodes(&mut self, n: usize) -> u32 {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        self.live_nodes += n;
        let head = self.free_head(n);
        if head != NIL {
            let next = self.nodes[head as usize].children;
            self.set_free_head(n, next);
            return head;
        }
        let start = self.nodes.len();
        reserve_gently(&mut self.nodes, n);
        self.nodes.resize(start + n, Node::default());
        index(start)
    }

    fn free_nodes(&mut self, start: u32, n: usize) {
        if n == 0 {
            return;
        }
        self.live_nodes -= n;
        if start as usize + n == self.nodes.len() {
            self.nodes.truncate(start as usize);
            return;
        }
        self.nodes[start as usize].children = self.free_head(n);
        self.set_free_head(n, start);
    }

    fn alloc_values(&mut self, n: usize) -> u32 {
        self.live_values += n;
        let class = NODE_CLASSES + n;
        let head = self.free_head(class);
        if head != NIL {
            let next = match self.values[head as usize] {
                Slot::Free(next) => next,
                Slot::Full(_) => unreachable!("free list points at a full slot"),
            };
            self.set_free_head(class, next);
            return head;
        }
        let start = self.values.len();
        reserve_gently(&mut self.values, n);
        self.values.resize_with(start + n, || Slot::Free(NIL));
        index(start)
    }

    /// The block's slots must already be emptied.
    fn free_values(&mut self, start: u32, n: usize) {
        if n == 0 {
            return;
        }
        self.live_values -= n;
        if start as usize + n == self.values.len() {
            self.values.truncate(start as usize);
            return;
        }
        let class = NODE_CLASSES + n;
        self.values[start as usize] = Slot::Free(self.free_head(class));
        self.set_free_head(class, start);
    }

    #[inline]
    fn take_value(&mut self, i: u32) -> Slot<V> {
        std::mem::replace(&mut self.values[i as usize], Slot::Free(NIL))
    }

    /// Gives node `n` a new empty child at slot `v`; returns the child.
    fn add_child(&mut self, n: u32, v: u32) -> u32 {
        let node = self.nodes[n as usize];
        let count = node.external.count_ones() as usize;
        let rank = (node.external & below64(v)).count_ones() as usize;
        let new = self.alloc_nodes(count + 1);
        let (old, newu) = (node.children as usize, new as usize);
        self.nodes.copy_within(old..old + rank, newu);
        self.nodes[newu + rank] = Node::default();
        self.nodes
            .copy_within(old + rank..old + count, newu + rank + 1);
        self.free_nodes(node.children, count);
        let node = &mut self.nodes[n as usize];
        node.children = new;
        node.external |= 1 << v;
        new + rank as u32
    }

    /// Drops node `n`'s (empty) child at slot `v`.
    fn remove_child(&mut self, n: u32, v: u32) {
        let node = self.nodes[n as usize];
        let count = node.external.count_ones() as usize;
        let rank = (node.external & below64(v)).count_ones() as usize;
        let new = if count == 1 {
            0
        } else {
            let new = self.alloc_nodes(count - 1);
            let (old, newu) = (node.children as usize, new as usize);
            self.nodes.copy_within(old..old + rank, newu);
            self.nodes
                .copy_within(old + rank + 1..old + count, newu + rank);
            new
        };
        self.free_nodes(node.children, count);
        let node = &mut self.nodes[n as usize];
        node.children = new;
        node.external &= !(1 << v);
    }

    // ---- compaction ---------------------------------------------------------

    /// Whether free blocks exceed `1/slack` of the live ones: time to
    /// [`Arena::compact`] the nodes (`Some(false)`), or the nodes and the
    /// values (`Some(true)`).
    ///
    /// Blocks are freed in exact sizes and reused only at the same size, so
    /// nodes growing side by side (a bulk load) leave many small holes.
    /// Inserts compact at 50% waste, which keeps a loaded table within the
    /// memory budget; removals wait for 100%, so that draining a table
    /// copies it about twice in all rather than three times. A bulk load
    /// fragments the nodes only (a value block grows only when its node
    /// gains a prefix), and moving the nodes alone costs a third of a full
    /// copy.
    pub(crate) fn fragmented(&self, slack: usize) -> Option<bool> {
        if self.values.len() > self.live_values + self.live_values / slack + 4096 {
            Some(true)
        } else if self.nodes.len() > self.live_nodes + self.live_nodes / slack + 4097 {
            Some(false)
        } else {
            None
        }
    }

    /// Copies the live nodes, and the values if `with_values`, into fresh,
    /// exactly sized arenas, breadth first (Cheney's copy), so the upper
    /// levels that every lookup reads end up contiguous. Rebuilds the
    /// trees' direct tables.
    pub(crate) fn compact(&mut self, trees: &mut [&mut Tree], with_values: bool) {
        let mut nodes: Vec<Node> = Vec::with_capacity(self.live_nodes + 1);
        nodes.push(Node::default());
        let mut values: Vec<Slot<V>> =
            Vec::with_capacity(if with_values { self.live_values } else { 0 });
        for t in trees.iter_mut() {
            if t.top != NO_NODE {
                nodes.push(self.nodes[t.top as usize]);
                t.top = index(nodes.len() - 1);
            }
        }
        let mut scan = 1;
        while scan < nodes.len() {
            let n = nodes[scan];
            let from = n.children as usize;
            if n.is_leaf() {
                if with_values {
                    nodes[scan].children = index(values.len());
                    values.push(self.take_value(n.children));
                }
            } else if n.is_jump() {
                nodes[scan].children = index(nodes.len());
                nodes.push(self.nodes[from]);
            } else {
                let k = n.internal.count_ones();
                if with_values && k > 0 {
                    nodes[scan].values = index(values.len());
                    for i in 0..k {
                        values.push(self.take_value(n.values + i));
                    }
                }
                let c = n.external.count_ones() as usize;
                if c > 0 {
                    nodes[scan].children = index(nodes.len());
                    nodes.extend_from_slice(&self.nodes[from..from + c]);
                }
            }
            scan += 1;
        }
        self.live_nodes = nodes.len() - 1;
        self.nodes = nodes;
        if with_values {
            self.live_values = values.len();
            self.values = values;
            self.free = Vec::new();
        } else {
            // The node blocks' free lists went with the old arena.
            for head in self.free.iter_mut().take(NODE_CLASSES) {
                *head = NIL;
            }
        }
        for t in trees.iter_mut() {
            if t.has_dir() {
                self.build_dir(t);
            }
        }
    }

    // ---- direct table -------------------------------------------------------

    /// Fills the entries from `first` under node `n` at `depth` (< 18;
    /// NO_NODE: no node), given `above`, the longest prefix above `depth`
    /// covering them.
    fn fill_dir(&self, t: &mut Tree, first: usize, n: u32, depth: u8, above: u32) {
        let span = 1usize << (DIR_BITS - depth);
        if n == NO_NODE {
            if t.inline {
                t.dir[first..first + span].fill(Node::default());
                t.dir_best[first..first + span].fill(above);
            } else {
                t.dir_idx[first..first + span].fill(DirEntry {
                    best: above,
                    ..DirEntry::EMPTY
                });
            }
            return;
        }
        let node = self.nodes[n as usize];
        let per_slot = span / 64;
        for v in 0..64 {
            let m = node.internal & MATCH[v as usize];
            let b = if m != 0 {
                node.value_at(127 - m.leading_zeros())
            } else {
                above
            };
            let child = node.child(v).unwrap_or(NO_NODE);
            let at = first + v as usize * per_slot;
            if depth + STRIDE == DIR_BITS {
                if t.inline {
                    t.dir[at] = self.nodes[child as usize];
                    t.dir_best[at] = b;
                } else {
                    t.dir_idx[at] = self.dir_entry(child, b);
                }
            } else {
                self.fill_dir(t, at, child, depth + STRIDE, b);
            }
        }
    }

    fn build_dir(&self, t: &mut Tree) {
        if t.inline {
            t.dir = vec![Node::default(); DIR_SIZE];
            t.dir_best = vec![NIL; DIR_SIZE];
        } else {
            t.dir_idx = vec![DirEntry::EMPTY; DIR_SIZE];
        }
        self.fill_dir(t, 0, t.top, 0, NIL);
    }

    fn drop_dir(t: &mut Tree) {
        t.dir = Vec::new();
        t.dir_idx = Vec::new();
        t.dir_best = Vec::new();
    }

    /// Refreshes the entries under the node at `depth` (≤ 12) on `a`'s path,
    /// after its values moved or its prefixes changed.
    fn refresh_dir_span<B: Bits>(&self, t: &mut Tree, a: B, depth: u8) {
        let span = 1usize << (DIR_BITS - depth);
        let first = a.dir_index() & !(span - 1);
        let above = self.lpm_upto(t.top, a, depth).map_or(NIL, |(_, v)| v);
        let n = self.node_at(t, a, depth);
        self.fill_dir(t, first, n, depth, above);
    }

    /// The regular node at `depth` (≤ 18) on `a`'s path, or NO_NODE.
    fn node_at<B: Bits>(&self, t: &Tree, a: B, depth: u8) -> u32 {
        let mut n = t.top;
        let mut d = 0;
        while d < depth && n != NO_NODE {
            n = self.nodes[n as usize].child(a.slot(d)).unwrap_or(NO_NODE);
            d += STRIDE;
        }
        n
    }

    /// The indexed direct-table entry for depth-18 node `n` (NO_NODE: none).
    fn dir_entry(&self, n: u32, best: u32) -> DirEntry {
        let node = self.node(n);
        if n == NO_NODE {
            DirEntry {
                best,
                ..DirEntry::EMPTY
            }
        } else if !node.is_compressed() && node.internal == 0 {
            DirEntry {
                external: node.external,
                children: node.children,
                best,
            }
        } else {
            DirEntry {
                external: 0,
                children: JUMP | n,
                best,
            }
        }
    }

    /// Refreshes the entry of the depth-18 node on `a`'s path after an
    /// update walked through it: its copy, or its summary and the indices
    /// of its siblings held by index (their block may have moved; nothing
    /// else of theirs changed).
    fn refresh_dir_node<B: Bits>(&self, t: &mut Tree, a: B) {
        if t.inline {
            let n = self.node_at(t, a, DIR_BITS);
            t.dir[a.dir_index()] = self.nodes[n as usize];
            return;
        }
        let first = a.dir_index() & !63;
        let parent = self.node_at(t, a, DIR_BITS - STRIDE);
        let node = self.nodes[parent as usize];
        let mut c = node.children;
        let on_path = a.slot(DIR_BITS - STRIDE) as usize;
        for (v, e) in t.dir_idx[first..first + 64].iter_mut().enumerate() {
            let n = if parent != NO_NODE && node.external >> v & 1 == 1 {
                c += 1;
                c - 1
            } else {
                NO_NODE
            };
            if v == on_path {
                *e = self.dir_entry(n, e.best);
            } else if e.children & JUMP != 0 {
                e.children = JUMP | n;
            }
        }
    }

    /// Brings the direct table up to date after an update of `a/len` (whose
    /// node is at depth `target`), and turns it on or off as the tree
    /// crosses the size thresholds.
    fn update_dir<B: Bits>(&self, t: &mut Tree, a: B, len: u8, target: u8) {
        if !t.has_dir() {
            if t.len >= t.dir_on {
                self.build_dir(t);
            }
        } else if t.len < t.dir_on.min(DIR_OFF) {
            Self::drop_dir(t);
        } else if len <= DIR_BITS {
            self.refresh_dir_span(t, a, target);
        } else {
            self.refresh_dir_node(t, a);
        }
    }

    // ---- lookups ------------------------------------------------------------

    /// Where a lookup of `a` starts: (node, its depth). With an inline
    /// direct table, that is the copy of the depth-18 node, which costs no
    /// read of the arena; with an indexed one, the depth-18 node or, when
    /// the entry summarizes it, its child on `a`'s path. The longest match
    /// above that depth is [`Tree::dir_above`], read only when the walk
    /// finds none.
    #[inline(always)]
    fn start<'a, B: Bits>(&'a self, t: &'a Tree, a: B) -> (&'a Node, u8) {
        let i = a.dir_index();
        let n = if t.inline {
            match t.dir.get(i) {
                Some(n) => return (n, DIR_BITS),
                None => t.top,
            }
        } else {
            match t.dir_idx.get(i) {
                Some(e) if e.children & JUMP != 0 => {
                    return (self.node(e.children & !JUMP), DIR_BITS);
                }
                Some(e) => {
                    let v = a.slot(DIR_BITS);
                    let c = if e.external >> v & 1 == 0 {
                        NO_NODE
                    } else {
                        e.children + (e.external & below64(v)).count_ones()
                    };
                    return (self.node(c), DIR_BITS + STRIDE);
                }
                None => t.top,
            }
        };
        (self.node(n), 0)
    }

    /// Node `n` (NO_NODE: an empty node, even before the arena has one).
    #[inline(always)]
    fn node(&self, n: u32) -> &Node {
        self.nodes.get(n as usize).unwrap_or(&EMPTY)
    }

    /// One step of a lookup of `a` at node `node` (at `depth`): records a
    /// match of a regular node in `best` (the node, its matching prefixes)
    /// and says what to read next. A jump and a leaf cost the same test:
    /// does `a` agree with the key on the key's bits.
    #[inline(always)]
    fn step<'a, B: Bits>(
        node: &'a Node,
        depth: &mut u8,
        a: B,
        best: &mut (&'a Node, u128),
    ) -> Next {
        if node.is_compressed() {
            let bits = node.target();
            if a.agree(node.internal) < u32::from(bits) {
                return Next::End;
            }
            if node.values & LEAF != 0 {
                return Next::Value(node.children);
            }
            *depth = bits;
            return Next::Node(node.children);
        }
        let v = a.slot(*depth);
        let m = node.internal & MATCH[v as usize];
        if m != 0 {
            *best = (node, m);
        }
        *depth += STRIDE;
        match node.child(v) {
            Some(c) => Next::Node(c),
            None => Next::End,
        }
    }

    /// Value index of the longest match of `a`: the per-packet path.
    #[inline(always)]
    pub(crate) fn lpm_value<B: Bits>(&self, t: &Tree, a: B) -> Option<u32> {
        let (mut node, mut depth) = self.start(t, a);
        // The best match so far; its value index (a popcount, done in
        // software on baseline x86-64) is taken once.
        let mut best = (&EMPTY, 0);
        loop {
            match Self::step(node, &mut depth, a, &mut best) {
                Next::Node(c) => node = &self.nodes[c as usize],
                Next::Value(v) => return Some(v),
                Next::End => return value_of(best).or_else(|| t.dir_above(a.dir_index())),
            }
        }
    }

    /// [`Arena::lpm_value`] for `N` addresses at once, level by level: the
    /// `N` reads of each level are independent, so their cache misses
    /// overlap however deep the walk (software pipelining, as in DPDK's
    /// `rte_lpm_lookupx4` or VPP's vector loops).
    #[inline(always)]
    pub(crate) fn lpm_values<B: Bits, const N: usize>(&self, t: &Tree, a: &[B; N]) -> [u32; N] {
        let mut n = [NO_NODE; N];
        let mut out = [NIL; N];
        let mut depth = [0u8; N];
        // The first level apart: all its reads (copies) first, then the steps.
        let mut first = [(EMPTY, 0u8); N];
        for i in 0..N {
            let (node, d) = self.start(t, a[i]);
            first[i] = (*node, d);
        }
        let mut best = [(&EMPTY, 0); N];
        let mut more = false;
        for i in 0..N {
            let (node, d) = &first[i];
            depth[i] = *d;
            match Self::step(node, &mut depth[i], a[i], &mut best[i]) {
                Next::Node(c) => {
                    n[i] = c;
                    more = true;
                }
                Next::Value(v) => out[i] = v,
                Next::End => {}
            }
        }
        while more {
            more = false;
            for i in 0..N {
                if n[i] == NO_NODE {
                    continue;
                }
                let node = &self.nodes[n[i] as usize];
                n[i] = NO_NODE;
                match Self::step(node, &mut depth[i], a[i], &mut best[i]) {
                    Next::Node(c) => {
                        n[i] = c;
                        more = true;
                    }
                    Next::Value(v) => out[i] = v,
                    Next::End => {}
                }
            }
        }
        for i in 0..N {
            if out[i] == NIL {
                out[i] = value_of(best[i])
                    .or_else(|| t.dir_above(a[i].dir_index()))
                    .unwrap_or(NIL);
            }
        }
        out
    }

    /// Longest match of `a`: (length, value index).
    pub(crate) fn lpm<B: Bits>(&self, t: &Tree, a: B) -> Option<(u8, u32)> {
        let (mut node, mut depth) = self.start(t, a);
        let mut best = None;
        loop {
            let at = depth;
            let mut m = (&EMPTY, 0);
            let next = Self::step(node, &mut depth, a, &mut m);
            if let Some(v) = value_of(m) {
                best = Some((at + rel_len(127 - m.1.leading_zeros()), v));
            }
            match next {
                Next::Node(c) => node = &self.nodes[c as usize],
                Next::Value(v) => return Some((node.target(), v)),
                Next::End => break,
            }
        }
        match best {
            None if t.has_dir() => self.lpm_upto(t.top, a, DIR_BITS),
            _ => best,
        }
    }

    /// The child of regular node `node` (at `depth`) on `a`'s path, past any
    /// jump, if it can hold prefixes no longer than `max_len`: (node, depth).
    /// The node is a regular node or a leaf.
    fn descend<B: Bits>(&self, node: &Node, depth: u8, a: B, max_len: u8) -> Option<(u32, u8)> {
        if max_len <= depth + STRIDE {
            return None;
        }
        let mut n = node.child(a.slot(depth))?;
        let mut depth = depth + STRIDE;
        loop {
            let node = &self.nodes[n as usize];
            if !node.is_jump() {
                return Some((n, depth));
            }
            depth = node.target();
            if max_len <= depth || !node.jump_matches(a.to_left()) {
                return None;
            }
            n = node.children;
        }
    }

    /// Longest match of `a` among prefixes no longer than `max_len`.
    pub(crate) fn lpm_upto<B: Bits>(&self, top: u32, a: B, max_len: u8) -> Option<(u8, u32)> {
        let mut best = None;
        let mut at = (top != NO_NODE && max_len > 0).then_some((top, 0u8));
        while let Some((n, depth)) = at {
            let node = &self.nodes[n as usize];
            if node.is_leaf() {
                if node.target() <= max_len && node.jump_matches(a.to_left()) {
                    best = Some((node.target(), node.children));
                }
                break;
            }
            let v = a.slot(depth);
            let m = node.internal & MATCH[v as usize] & UPTO[usize::from((max_len - depth).min(6))];
            if m != 0 {
                let p = 127 - m.leading_zeros();
                best = Some((depth + rel_len(p), node.value_at(p)));
            }
            at = self.descend(node, depth, a, max_len);
        }
        best
    }

    /// Where prefix `a/len` (`len` ≥ 1) would be stored.
    fn locate<B: Bits>(&self, top: u32, a: B, len: u8) -> Place {
        let target = (len - 1) / STRIDE * STRIDE;
        let mut n = top;
        if n == NO_NODE {
            return Place::Absent;
        }
        let mut depth = 0;
        loop {
            let node = &self.nodes[n as usize];
            if node.is_leaf() {
                // The subtree holds one prefix; `a/len` and its
                // more-specifics can only be that one.
                return Place::Leaf(n);
            }
            if node.is_jump() {
                let t = node.target();
                if t <= target {
                    if !node.jump_matches(a.to_left()) {
                        return Place::Absent;
                    }
                    n = node.children;
                    depth = t;
                    continue;
                }
                // The jump skips the level of `a/len`: nothing is stored
                // there, but if the jump's key lies inside `a/len`, so does
                // everything below it.
                return if same_top(a.to_left(), node.internal, len) {
                    Place::Below(node.children, t, node.internal)
                } else {
                    Place::Absent
                };
            }
            if depth == target {
                return Place::Node(n);
            }
            match node.child(a.slot(depth)) {
                Some(c) => n = c,
                None => return Place::Absent,
            }
            depth += STRIDE;
        }
    }

    /// Value index of the exact prefix `a/len` (`len` ≥ 1).
    pub(crate) fn find<B: Bits>(&self, t: &Tree, a: B, len: u8) -> Option<u32> {
        let n = match self.locate(t.top, a, len) {
            Place::Node(n) => n,
            Place::Leaf(n) => {
                let leaf = &self.nodes[n as usize];
                return leaf.leaf_is(a, len).then_some(leaf.children);
            }
            Place::Absent | Place::Below(..) => return None,
        };
        let depth = (len - 1) / STRIDE * STRIDE;
        let p = pos(u32::from(len - depth), a.slot(depth));
        let node = &self.nodes[n as usize];
        (node.internal >> p & 1 == 1).then(|| node.value_at(p))
    }

    // ---- updates ------------------------------------------------------------

    /// Turns jump node `n` at `depth` back into a regular node with one
    /// child: the jump's target, or a shorter jump to it.
    fn expand_jump(&mut self, n: u32, depth: u8) {
        let j = self.nodes[n as usize];
        let v = j.internal.slot(depth);
        let child = if j.target() == depth + STRIDE {
            j.children
        } else {
            let c = self.alloc_nodes(1);
            self.nodes[c as usize] = Node::jump(j.internal, j.target(), j.children);
            c
        };
        self.nodes[n as usize] = Node {
            internal: 0,
            external: 1 << v,
            children: child,
            values: 0,
        };
    }

    /// Turns leaf node `n` at `depth` back into a regular node: one that
    /// holds the leaf's prefix, or one whose only child is the leaf.
    fn expand_leaf(&mut self, n: u32, depth: u8) {
        let leaf = self.nodes[n as usize];
        let (len, key, value) = leaf.leaf_entry();
        let v = key.slot(depth);
        self.nodes[n as usize] = if len <= depth + STRIDE {
            Node {
                internal: 1 << pos(u32::from(len - depth), v),
                external: 0,
                children: 0,
                values: value,
            }
        } else {
            let c = self.alloc_nodes(1);
            self.nodes[c as usize] = leaf;
            Node {
                internal: 0,
                external: 1 << v,
                children: c,
                values: 0,
            }
        };
    }

    /// Path compression after an update, for node `n` at `depth` on `a`'s
    /// path: a node whose subtree holds one prefix becomes a leaf, a node
    /// with no prefix and one child a jump, and a jump to a jump or to a
    /// leaf takes the place of its target.
    fn compress<B: Bits>(&mut self, n: u32, depth: u8, a: B) {
        if depth < JUMP_FROM {
            return;
        }
        let node = self.nodes[n as usize];
        if node.is_leaf() {
            return;
        }
        if !node.is_jump() && node.external == 0 {
            if node.internal.count_ones() == 1 {
                let p = node.internal.trailing_zeros();
                let r = rel_len(p);
                let b = p + 2 - (1 << r);
                let key = top_bits(a.to_left(), depth) | place(b << (6 - r), depth);
                self.nodes[n as usize] = Node::leaf(key, depth + r, node.values);
            }
            return;
        }
        let (child, key) = if node.is_jump() {
            (node.children, node.internal)
        } else if node.internal == 0 && node.external.count_ones() == 1 {
            let v = node.external.trailing_zeros();
            (
                node.children,
                top_bits(a.to_left(), depth) | place(v, depth),
            )
        } else {
            return;
        };
        let c = self.nodes[child as usize];
        if c.is_compressed() {
            self.nodes[n as usize] = c;
            self.free_nodes(child, 1);
        } else if !node.is_jump() {
            self.nodes[n as usize] = Node::jump(key, depth + STRIDE, child);
        }
    }

    /// Inserts `a/len` (`len` ≥ 1, host bits clear); returns the old value.
    pub(crate) fn insert<B: Bits>(&mut self, t: &mut Tree, a: B, len: u8, value: V) -> Option<V> {
        if t.top == NO_NODE {
            t.top = self.alloc_nodes(1);
            self.nodes[t.top as usize] = Node::default();
        }
        let target = (len - 1) / STRIDE * STRIDE;
        // Nodes walked, for path compression on the way back.
        let mut path = [(NO_NODE, 0u8); MAX_LEVELS];
        let mut k = 0;
        let mut n = t.top;
        let mut depth = 0;
        loop {
            let node = self.nodes[n as usize];
            if node.is_leaf() {
                if node.leaf_is(a, len) {
                    let slot = &mut self.values[node.children as usize];
                    return match std::mem::replace(slot, Slot::Full(value)) {
                        Slot::Full(old) => Some(old),
                        Slot::Free(_) => unreachable!("leaf names an empty slot"),
                    };
                }
                self.expand_leaf(n, depth);
            } else if node.is_jump() {
                if node.target() <= target && node.jump_matches(a.to_left()) {
                    depth = node.target();
                    n = node.children;
                    continue;
                }
                self.expand_jump(n, depth);
            }
            path[k] = (n, depth);
            k += 1;
            if depth == target {
                break;
            }
            let v = a.slot(depth);
            if let Some(c) = self.nodes[n as usize].child(v) {
                n = c;
                depth += STRIDE;
                continue;
            }
            let c = self.add_child(n, v);
            if depth + STRIDE >= JUMP_FROM {
                // A new branch deep in the tree: one leaf.
                let at = self.alloc_values(1);
                self.values[at as usize] = Slot::Full(value);
                self.nodes[c as usize] = Node::leaf(a.to_left(), len, at);
                t.len += 1;
                self.compress_path(&path[..k], a);
                self.update_dir(t, a, len, target);
                return None;
            }
            n = c;
            depth += STRIDE;
        }
        let p = pos(u32::from(len - target), a.slot(target));
        let node = self.nodes[n as usize];
        let at = node.value_at(p);
        if node.internal >> p & 1 == 1 {
            return match std::mem::replace(&mut self.values[at as usize], Slot::Full(value)) {
                Slot::Full(old) => Some(old),
                Slot::Free(_) => unreachable!("bitmap names an empty slot"),
            };
        }
        let count = node.internal.count_ones();
        let rank = at - node.values;
        let new = self.alloc_values(count as usize + 1);
        for i in 0..rank {
            self.values[(new + i) as usize] = self.take_value(node.values + i);
        }
        self.values[(new + rank) as usize] = Slot::Full(value);
        for i in rank..count {
            self.values[(new + i + 1) as usize] = self.take_value(node.values + i);
        }
        self.free_values(node.values, count as usize);
        let node = &mut self.nodes[n as usize];
        node.values = new;
        node.internal |= 1 << p;
        t.len += 1;
        // Jumps and leaves expanded above the new prefix leave nodes to
        // compress behind.
        self.compress_path(&path[..k], a);
        self.update_dir(t, a, len, target);
        None
    }

    /// [`Arena::compress`] on the nodes of `a`'s path, deepest first.
    fn compress_path<B: Bits>(&mut self, path: &[(u32, u8)], a: B) {
        for &(n, depth) in path.iter().rev() {
            self.compress(n, depth, a);
        }
    }

    /// Removes `a/len` (`len` ≥ 1), pruning nodes left empty.
    pub(crate) fn remove<B: Bits>(&mut self, t: &mut Tree, a: B, len: u8) -> Option<V> {
        if t.top == NO_NODE {
            return None;
        }
        let target = (len - 1) / STRIDE * STRIDE;
        // Every node walked, jumps included, with its depth.
        let mut path = [(NO_NODE, 0u8); MAX_LEVELS];
        let mut k = 0;
        let mut n = t.top;
        let mut depth = 0;
        let old = loop {
            let node = self.nodes[n as usize];
            path[k] = (n, depth);
            k += 1;
            if node.is_leaf() {
                if !node.leaf_is(a, len) {
                    return None;
                }
                let old = self.take_value(node.children);
                self.free_values(node.children, 1);
                // An empty node, pruned below.
                self.nodes[n as usize] = Node::default();
                break old;
            }
            if node.is_jump() {
                if node.target() > target || !node.jump_matches(a.to_left()) {
                    return None;
                }
                depth = node.target();
                n = node.children;
                continue;
            }
            if depth == target {
                break self.remove_at(n, a, len, target)?;
            }
            n = node.child(a.slot(depth))?;
            depth += STRIDE;
        };
        let Slot::Full(old) = old else {
            unreachable!("bitmap names an empty slot")
        };
        t.len -= 1;
        // Prune empty nodes upwards; a jump whose target went goes too.
        while k > 1 && self.nodes[path[k - 1].0 as usize].is_empty() {
            let (parent, pdepth) = path[k - 2];
            if self.nodes[parent as usize].is_jump() {
                self.free_nodes(self.nodes[parent as usize].children, 1);
                self.nodes[parent as usize] = Node::default();
            } else {
                self.remove_child(parent, a.slot(pdepth));
            }
            k -= 1;
        }
        if k == 1 && self.nodes[t.top as usize].is_empty() {
            self.free_nodes(t.top, 1);
            t.top = NO_NODE;
        } else {
            self.compress_path(&path[..k], a);
        }
        self.update_dir(t, a, len, target);
        Some(old)
    }

    /// Takes `a/len` out of regular node `n` (at depth `target`), if there.
    fn remove_at<B: Bits>(&mut self, n: u32, a: B, len: u8, target: u8) -> Option<Slot<V>> {
        let p = pos(u32::from(len - target), a.slot(target));
        let node = self.nodes[n as usize];
        if node.internal >> p & 1 == 0 {
            return None;
        }
        let count = node.internal.count_ones();
        let rank = node.value_at(p) - node.values;
        let old = self.take_value(node.values + rank);
        let new = if count == 1 {
            0
        } else {
            let new = self.alloc_values(count as usize - 1);
            for i in 0..rank {
                self.values[(new + i) as usize] = self.take_value(node.values + i);
            }
            for i in rank + 1..count {
                self.values[(new + i - 1) as usize] = self.take_value(node.values + i);
            }
            new
        };
        self.free_values(node.values, count as usize);
        let node = &mut self.nodes[n as usize];
        node.values = new;
        node.internal &= !(1 << p);
        Some(old)
    }
}

/// Where a prefix would sit (see [`Arena::locate`]).
enum Place {
    Absent,
    /// A leaf on the path, above or at the prefix's level: its prefix is
    /// the only candidate.
    Leaf(u32),
    /// The node that holds prefixes of its length.
    Node(u32),
    /// Nothing at its level, but the subtree of this node (at this depth,
    /// with this left-aligned key) lies inside it.
    Below(u32, u8, u128),
}

fn index(i: usize) -> u32 {
    u32::try_from(i)
        .ok()
        .filter(|&i| i < JUMP)
        .expect("mapping database arena exceeds 2^31 slots")
}

// ---- walkers ----------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Frame {
    base: u128,
    node: u32,
    /// Slots still to visit.
    todo: u64,
    depth: u8,
    /// Slot being visited and the next relative length to report in it
    /// (7: its prefixes are done, its child is next).
    v: u8,
    r: u8,
    active: bool,
    /// Shortest relative length to report (the first frame of a
    /// more-specifics walk starts mid-node).
    min_r: u8,
}

/// Depth-first walk in key order: (length, left-aligned address, value index).
///
/// It borrows nothing, so `retain` can hold the values mutably while it walks
/// the nodes, and it never allocates (the stack is a fixed array).
#[derive(Clone)]
pub(crate) struct Walk {
    stack: [Frame; MAX_LEVELS],
    sp: usize,
    /// A leaf's prefix to report before going on.
    leaf: Option<(u8, u128, u32)>,
}

impl Walk {
    pub(crate) fn empty() -> Walk {
        Walk {
            stack: [Frame::default(); MAX_LEVELS],
            sp: 0,
            leaf: None,
        }
    }

    /// Every prefix under root `top`.
    pub(crate) fn all(nodes: &[Node], top: u32) -> Walk {
        let mut w = Walk::empty();
        if top != NO_NODE {
            w.push_node(nodes, top, 0, 0, u64::MAX, 1);
        }
        w
    }

    /// Prefixes inside `a/len` (`len` ≥ 1), `a/len` itself included.
    pub(crate) fn within<V, B: Bits>(arena: &Arena<V>, top: u32, a: B, len: u8) -> Walk {
        let mut w = Walk::empty();
        match arena.locate(top, a, len) {
            Place::Absent => {}
            Place::Leaf(n) => {
                let leaf = &arena.nodes[n as usize];
                if leaf.target() >= len && same_top(a.to_left(), leaf.internal, len) {
                    w.leaf = Some(leaf.leaf_entry());
                }
            }
            Place::Below(n, depth, key) => w.push_subtree(&arena.nodes, n, depth, key),
            Place::Node(n) => {
                let depth = (len - 1) / STRIDE * STRIDE;
                let r = len - depth;
                let span = 1u32 << (6 - r);
                let first = a.slot(depth) & !(span - 1);
                let range = if span == 64 {
                    u64::MAX
                } else {
                    below64(span) << first
                };
                w.push_node(
                    &arena.nodes,
                    n,
                    depth,
                    top_bits(a.to_left(), depth),
                    range,
                    r,
                );
            }
        }
        w
    }

    /// Starts on the subtree at node `n` (at `depth`, with this key): a
    /// regular node is pushed, past any jump; a leaf is reported next.
    fn push_subtree(&mut self, nodes: &[Node], mut n: u32, mut depth: u8, mut base: u128) {
        loop {
            let node = &nodes[n as usize];
            if node.is_leaf() {
                self.leaf = Some(node.leaf_entry());
                return;
            }
            if !node.is_jump() {
                return self.push_node(nodes, n, depth, base, u64::MAX, 1);
            }
            (n, depth, base) = (node.children, node.target(), node.internal);
        }
    }

    /// Pushes regular node `n`, visiting only the slots in `range`.
    fn push_node(&mut self, nodes: &[Node], n: u32, depth: u8, base: u128, range: u64, min_r: u8) {
        let node = &nodes[n as usize];
        self.stack[self.sp] = Frame {
            base,
            node: n,
            todo: (node.starts() | node.external) & range,
            depth,
            v: 0,
            r: 0,
            active: false,
            min_r,
        };
        self.sp += 1;
    }

    pub(crate) fn next(&mut self, nodes: &[Node]) -> Option<(u8, u128, u32)> {
        if let Some(leaf) = self.leaf.take() {
            return Some(leaf);
        }
        while self.sp > 0 {
            let f = &mut self.stack[self.sp - 1];
            let node = &nodes[f.node as usize];
            if f.active {
                let v = u32::from(f.v);
                while f.r <= 6 {
                    let r = u32::from(f.r);
                    f.r += 1;
                    if v & ((1 << (6 - r)) - 1) == 0 {
                        let p = pos(r, v);
                        if node.internal >> p & 1 == 1 {
                            return Some((
                                f.depth + r as u8,
                                f.base | place(v, f.depth),
                                node.value_at(p),
                            ));
                        }
                    }
                }
                f.active = false;
                if let Some(c) = node.child(v) {
                    let (depth, base) = (f.depth + STRIDE, f.base | place(v, f.depth));
                    self.push_subtree(nodes, c, depth, base);
                    if let Some(leaf) = self.leaf.take() {
                        return Some(leaf);
                    }
                }
                continue;
            }
            if f.todo == 0 {
                self.sp -= 1;
                continue;
            }
            f.v = f.todo.trailing_zeros() as u8;
            f.todo &= f.todo - 1;
            f.r = f.min_r;
            f.active = true;
        }
        None
    }
}

/// Walk down one address's path: every prefix covering `a/max_len`,
/// shortest first, as (length, value index).
#[derive(Clone)]
pub(crate) struct PathWalk<B> {
    a: B,
    max_len: u8,
    at: Option<(u32, u8)>,
    pending: u128,
}

impl<B: Bits> PathWalk<B> {
    pub(crate) fn new<V>(arena: &Arena<V>, top: u32, a: B, max_len: u8) -> PathWalk<B> {
        let mut w = PathWalk {
            a,
            max_len,
            at: (top != NO_NODE).then_some((top, 0)),
            pending: 0,
        };
        w.load(arena);
        w
    }

    fn load<V>(&mut self, arena: &Arena<V>) {
        self.pending = match self.at {
            Some((n, depth)) if self.max_len > depth && !arena.nodes[n as usize].is_leaf() => {
                let node = &arena.nodes[n as usize];
                let lim = UPTO[usize::from((self.max_len - depth).min(6))];
                node.internal & MATCH[self.a.slot(depth) as usize] & lim
            }
            _ => 0,
        };
    }

    pub(crate) fn next<V>(&mut self, arena: &Arena<V>) -> Option<(u8, u32)> {
        loop {
            let (n, depth) = self.at?;
            let node = &arena.nodes[n as usize];
            if node.is_leaf() {
                self.at = None;
                let (len, key, value) = node.leaf_entry();
                return (len <= self.max_len && same_top(self.a.to_left(), key, len))
                    .then_some((len, value));
            }
            if self.pending != 0 {
                let p = self.pending.trailing_zeros();
                self.pending &= self.pending - 1;
                return Some((depth + rel_len(p), node.value_at(p)));
            }
            self.at = arena.descend(node, depth, self.a, self.max_len);
            self.load(arena);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_positions() {
        assert_eq!(pos(1, 0), 0);
        assert_eq!(pos(1, 63), 1);
        assert_eq!(pos(6, 0), 62);
        assert_eq!(pos(6, 63), 125);
        for p in 0..126 {
            let r = rel_len(p);
            assert!((1..=6).contains(&r));
            assert!(p >= (1 << r) - 2 && p < (1 << (r + 1)) - 2);
        }
        assert_eq!(MATCH[0].count_ones(), 6);
        assert_eq!(UPTO[6].count_ones(), 126);
        assert_eq!(UPTO[1], 0b11);
    }

    #[test]
    fn software_popcount() {
        let mut x = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C834u128;
        for _ in 0..1000 {
            assert_eq!(popcount128(x), x.count_ones());
            assert_eq!(
                popcount128(x & below128(x as u32 % 128)),
                (x & below128(x as u32 % 128)).count_ones()
            );
            x = x.rotate_left(7).wrapping_mul(0x2545_F491_4F6C_DD1D);
        }
        assert_eq!(popcount128(u128::MAX), 128);
        assert_eq!(popcount128(0), 0);
    }

    #[test]
    fn slots_pad_with_zeros() {
        assert_eq!(0xFFFF_FFFFu32.slot(30), 0b11_0000);
        assert_eq!(u128::MAX.slot(126), 0b11_0000);
        assert_eq!(0x8000_0000u32.slot(0), 32);
        assert_eq!(place(0b11_0000, 126), 3);
        assert_eq!(place(1, 0), 1 << 122);
    }

    /// Checks the tree's form (see the module docs) and returns its prefix
    /// count: regular nodes above depth 18, no regular node at 18 or
    /// deeper that should be a leaf or a jump, jumps to regular nodes,
    /// keys that agree with the path.
    fn check_form(a: &Arena<u32>, n: u32, depth: u8, key: u128) -> usize {
        let node = a.nodes[n as usize];
        assert!(same_top(key, node.internal, depth) || !node.is_compressed());
        if node.is_leaf() {
            assert!(
                depth >= JUMP_FROM && node.target() > depth,
                "{node:?} at {depth}"
            );
            assert!(a.value(node.children).is_some());
            return 1;
        }
        if node.is_jump() {
            let t = node.target();
            assert!(
                depth >= JUMP_FROM && t > depth && t.is_multiple_of(STRIDE),
                "{node:?}"
            );
            let c = a.nodes[node.children as usize];
            assert!(!c.is_compressed() && !c.is_empty(), "jump to {c:?}");
            return check_form(a, node.children, t, node.internal);
        }
        assert!(!node.is_empty() || depth == 0, "empty node at {depth}");
        if depth >= JUMP_FROM {
            assert!(
                node.external != 0 || node.internal.count_ones() > 1,
                "{node:?}"
            );
            assert!(
                node.internal != 0 || node.external.count_ones() > 1,
                "{node:?}"
            );
        }
        let mut count = node.internal.count_ones() as usize;
        for v in 0..64 {
            if let Some(c) = node.child(v) {
                count += check_form(a, c, depth + STRIDE, key | place(v, depth));
            }
        }
        count
    }

    #[test]
    fn blocks_are_reused() {
        let mut a: Arena<u32> = Arena::default();
        let mut t = Tree::new(Some(1), true);
        for i in 0..64u32 {
            a.insert(&mut t, i << 26, 6, i);
            a.insert(&mut t, (i << 26) | (1 << 16), 16, i);
        }
        let nodes = a.nodes.len();
        let values = a.values.len();
        for i in 0..64u32 {
            assert_eq!(a.remove(&mut t, (i << 26) | (1 << 16), 16), Some(i));
            a.insert(&mut t, (i << 26) | (1 << 16), 16, i);
        }
        assert!(a.nodes.len() <= nodes + 64 && a.values.len() <= values + 64);
        for i in 0..64u32 {
            assert_eq!(a.remove(&mut t, i << 26, 6), Some(i));
            assert_eq!(a.remove(&mut t, (i << 26) | (1 << 16), 16), Some(i));
        }
        assert_eq!(t.top, NO_NODE);
        assert_eq!(a.live(), (0, 0));
    }

    /// After every update, the direct table (inline copies for IPv4, node
    /// indices for IPv6) equals one built from scratch, and lookups agree
    /// with a tree that has none.
    #[test]
    fn direct_tables_stay_exact() {
        fn run<B: Bits + std::fmt::Debug>(inline: bool, mk: impl Fn(u128) -> B, width: u8) {
            let mut rng = crate::synth::SplitMix::new(u64::from(width));
            let mut a: Arena<u32> = Arena::default();
            let mut t = Tree::new(Some(1), inline);
            let mut plain = Tree::new(Some(usize::MAX), inline);
            let mut keys = Vec::new();
            for i in 0..3000u32 {
                // Keys vary in a few bits only, so that prefixes nest and
                // nodes, above and below depth 18, fill and empty.
                let mask = [(0, 6), (14, 22), (26, 32), (40, 44), (100, 104)]
                    .iter()
                    .fold(0u128, |m, &(from, to)| {
                        m | (u128::MAX >> from) & !(u128::MAX >> to)
                    });
                let base = rng.next_u128() & mask;
                if rng.below(3) == 0 && !keys.is_empty() {
                    let (k, len) = keys.swap_remove(rng.below(keys.len() as u64) as usize);
                    assert_eq!(
                        a.remove(&mut t, mk(k), len),
                        a.remove(&mut plain, mk(k), len)
                    );
                } else {
                    let len = 1 + rng.below(u64::from(width)) as u8;
                    let k = top_bits(base, len);
                    if a.insert(&mut t, mk(k), len, i).is_none() {
                        a.insert(&mut plain, mk(k), len, i);
                        keys.push((k, len));
                    } else {
                        a.insert(&mut plain, mk(k), len, i);
                    }
                }
                if i % 250 == 249 {
                    // Both kinds of compaction; every index moves.
                    a.compact(&mut [&mut t, &mut plain], i % 500 == 499);
                }
                if t.top != NO_NODE {
                    assert_eq!(check_form(&a, t.top, 0, 0), t.len, "form after update {i}");
                }
                if t.has_dir() && (i % 97 == 0 || i < 50) {
                    let mut fresh = t.clone();
                    a.build_dir(&mut fresh);
                    // (Not assert_eq: the tables are 2^18 entries long.)
                    assert!(fresh.dir == t.dir, "inline copies after update {i}");
                    assert!(fresh.dir_best == t.dir_best, "inline best after update {i}");
                    assert!(fresh.dir_idx == t.dir_idx, "indices after update {i}");
                }
                let probe = mk(base ^ (rng.next_u128() >> (rng.below(128) as u32)));
                let (x, y) = (a.lpm_value(&t, probe), a.lpm_value(&plain, probe));
                assert_eq!(
                    x.map(|v| a.value(v)),
                    y.map(|v| a.value(v)),
                    "lookup {probe:?}"
                );
                let many = a.lpm_values(&t, &[probe; 4]);
                assert_eq!(many[0], x.unwrap_or(NIL));
            }
            assert!(t.has_dir());
        }
        run(true, |k| (k >> 96) as u32, 32);
        run(false, |k| k, 128);
        run(true, |k| k, 128);
        run(false, |k| (k >> 96) as u32, 32);
    }

    #[test]
    fn deep_branches_are_leaves_and_jumps() {
        let mut a: Arena<u32> = Arena::default();
        let mut t = Tree::new(None, false);
        let p48 = 0x2001_0db8_0001u128 << 80;
        a.insert(&mut t, p48, 48, 1);
        // 0, 6, 12 regular; a leaf at 18 holds the /48.
        assert_eq!(a.live(), (4, 1));
        assert_eq!(a.find(&t, p48, 48), Some(0));
        assert_eq!(a.find(&t, p48, 47), None);
        assert_eq!(a.find(&t, p48 | 1 << 79, 49), None);
        assert_eq!(a.lpm_value(&t, p48 | 77), Some(0));
        assert_eq!(a.lpm(&t, p48 | 77), Some((48, 0)));
        assert_eq!(a.lpm_value(&t, p48 ^ (1 << 100)), None);
        // A /40 inside: a jump at 18 to the node at 36 that holds the /40,
        // whose child at 42 is a leaf; its removal merges them back.
        let p40 = p48 & !(u128::MAX >> 40);
        a.insert(&mut t, p40, 40, 2);
        assert_eq!(a.live(), (6, 2));
        assert_eq!(a.lpm_value(&t, p48 | 77), Some(0));
        assert_eq!(a.lpm_value(&t, p40 | (1 << 82)), Some(1));
        assert_eq!(a.lpm_upto(t.top, p48, 47), Some((40, 1)));
        assert_eq!(a.remove(&mut t, p40, 40), Some(2));
        assert_eq!(a.live(), (4, 1));
        // A second /48 that shares 47 bits: a jump at 18 to the node at 42,
        // which holds both.
        let q48 = p48 ^ 1 << 80;
        a.insert(&mut t, q48, 48, 3);
        assert_eq!(a.live(), (5, 2));
        let get = |x| a.lpm_value(&t, x).and_then(|v| a.value(v)).copied();
        assert_eq!(
            (get(q48 | 5), get(p48 | 5), get(p48 ^ 1 << 81)),
            (Some(3), Some(1), None)
        );
        assert_eq!(a.remove(&mut t, p48, 48), Some(1));
        assert_eq!(a.live(), (4, 1));
        assert_eq!(a.remove(&mut t, q48, 48), Some(3));
        assert_eq!(a.live(), (0, 0));
    }
}
