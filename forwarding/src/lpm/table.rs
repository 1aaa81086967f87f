//! The generic table: a tree bitmap with 6-bit strides, popcount-indexed child and value blocks,
//! and single-prefix tails.

use std::fmt;
use std::marker::PhantomData;

use super::LpmKey;
use super::cpu::{Kernel, prefetch, with_popcnt};
use super::node::{COVER, NONE, Node, STRIDE, chunk, mask, pos, rank64, rank128, unpos};
use crate::ForwardingError;

/// Most levels a prefix can sit below the root (128 / 6, rounded up).
const MAX_LEVELS: usize = 22;

/// Free space that triggers a compaction, as a fraction (1 / N) of the live entries: bounds the
/// waste of per-class free lists while keeping the copy cost amortised over many updates.
const COMPACT_FRACTION: usize = 8;

/// Below this many free entries compaction is never worth it.
const COMPACT_MIN: usize = 4096;

/// Block indices are `u32`; refuse an insert before any pool could reach [`NONE`].
const POOL_LIMIT: usize = (u32::MAX as usize) - 64 * (MAX_LEVELS + 2);

/// Longest-prefix-match table from prefixes of a `K`-bit address family to `V`.
///
/// A lookup reads one entry of a direct table for the first 12 bits (18 bits in a table of
/// [`LARGE_FROM`] prefixes or more), then one 32-octet node per further 6 bits (for IPv4 at most
/// 3, typically 1 or 2), and the value once at the end; it never allocates. Memory is one node per
/// populated level plus one `V` per prefix, with free space bounded by periodic compaction, plus
/// the direct table (48 KiB, or 3 MiB in a large table).
pub struct LpmTable<K: LpmKey, V: Copy> {
    /// `nodes[0]` is the root (depth 0, always a full node); other blocks are allocated per size.
    nodes: Vec<Node>,
    vals: Vec<V>,
    /// Head of the intrusive free list of node blocks of each size (linked via `base_node`).
    free_nodes: [u32; 65],
    /// Free value blocks, by size (index = size).
    free_vals: Vec<Vec<u32>>,
    free_node_entries: usize,
    free_val_entries: usize,
    /// The /0 route, kept apart because a node only holds lengths 1..=6 past its depth.
    default: Option<V>,
    len: usize,
    /// Direct table over the first `top_bits` bits: a lookup starts at that depth instead of
    /// walking the upper levels, whose popcounts would still sit on its critical path.
    top: Vec<Top>,
    /// [`TOP_BITS_SMALL`], or [`TOP_BITS_LARGE`] once the table holds [`LARGE_FROM`] prefixes.
    top_bits: u32,
    /// Prefix count at which the direct table widens (a field so tests can lower it).
    large_from: usize,
    /// Shallowest depth whose node changed during the current update (for `top` upkeep).
    touched: u32,
    _key: PhantomData<K>,
}

/// Lookups [`LpmTable::lookup_batch`] keeps in flight at once: each waits on one prefetched
/// line per round, so this many misses overlap. 64 is the software data path's receive batch;
/// on this machine 16 lanes were ~50 % slower per lookup than 32, and 64 a few percent faster.
pub const BATCH_LANES: usize = 64;

/// Bits resolved by [`LpmTable::top`] in a small table: two levels, 48 KiB.
const TOP_BITS_SMALL: u32 = 2 * STRIDE;

/// Bits resolved by [`LpmTable::top`] in a large table: three levels, 3 MiB, which is under
/// 12 octets per prefix from [`LARGE_FROM`] on and saves large tables a dependent miss per lookup.
const TOP_BITS_LARGE: u32 = 3 * STRIDE;

/// Prefix count from which the direct table is [`TOP_BITS_LARGE`] wide; it narrows again below
/// half of that (hysteresis, so a table hovering at the threshold does not rebuild it each time).
const LARGE_FROM: usize = 1 << 18;

/// What the first two levels say about one 12-bit start: the longest match among prefixes of
/// length 1..=12 and the node covering the start at depth 12 (a tail may cover it from depth
/// 6 or 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Top {
    node: u32,
    val: u32,
    len: u32,
}

impl Top {
    const EMPTY: Top = Top {
        node: NONE,
        val: NONE,
        len: 0,
    };
}

impl<K: LpmKey, V: Copy> Default for LpmTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: LpmKey, V: Copy> fmt::Debug for LpmTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LpmTable")
            .field("bits", &K::BITS)
            .field("len", &self.len)
            .field("nodes", &self.nodes.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

impl<K: LpmKey, V: Copy> Clone for LpmTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            nodes: self.nodes.clone(),
            vals: self.vals.clone(),
            free_nodes: self.free_nodes,
            free_vals: self.free_vals.clone(),
            free_node_entries: self.free_node_entries,
            free_val_entries: self.free_val_entries,
            default: self.default,
            len: self.len,
            top: self.top.clone(),
            top_bits: self.top_bits,
            large_from: self.large_from,
            touched: self.touched,
            _key: PhantomData,
        }
    }
}

impl<K: LpmKey, V: Copy> LpmTable<K, V> {
    pub fn new() -> Self {
        Self {
            nodes: vec![Node::EMPTY],
            vals: Vec::new(),
            free_nodes: [NONE; 65],
            free_vals: Vec::new(),
            free_node_entries: 0,
            free_val_entries: 0,
            default: None,
            len: 0,
            top: vec![Top::EMPTY; 1 << TOP_BITS_SMALL],
            top_bits: TOP_BITS_SMALL,
            large_from: LARGE_FROM,
            touched: NONE,
            _key: PhantomData,
        }
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Heap octets held (node and value pools at their capacity, free lists included): the
    /// figure to divide by [`len`](Self::len) for bytes per prefix.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
            + self.vals.capacity() * size_of::<V>()
            + self.top.capacity() * size_of::<Top>()
            + self.free_vals.capacity() * size_of::<Vec<u32>>()
            + self
                .free_vals
                .iter()
                .map(|s| s.capacity() * size_of::<u32>())
                .sum::<usize>()
    }

    /// Stores `value` for `bits/len` (host bits are ignored) and returns the value it replaced.
    /// Errors only for a length past the family's width (or a table of 4 G entries).
    pub fn insert(&mut self, bits: K, len: u8, value: V) -> Result<Option<V>, ForwardingError> {
        if len > K::BITS {
            return Err(ForwardingError::BadValue {
                what: "prefix length",
                value: u64::from(len),
            });
        }
        let len = u32::from(len);
        let key = mask(bits.to_left(), len);
        let old = if len == 0 {
            self.default.replace(value)
        } else {
            if self.nodes.len() > POOL_LIMIT || self.vals.len() > POOL_LIMIT {
                return Err(ForwardingError::BadValue {
                    what: "LPM table size",
                    value: self.len as u64,
                });
            }
            self.touched = NONE;
            let old = self.insert_at(0, 0, key, len, value);
            self.after_update(key);
            old
        };
        if old.is_none() {
            self.len += 1;
        }
        Ok(old)
    }

    /// Removes `bits/len` (host bits ignored) and returns its value; `None` when absent.
    pub fn remove(&mut self, bits: K, len: u8) -> Option<V> {
        if len > K::BITS {
            return None;
        }
        let len = u32::from(len);
        let key = mask(bits.to_left(), len);
        let old = if len == 0 {
            self.default.take()
        } else {
            self.touched = NONE;
            let old = self.remove_key(key, len);
            self.after_update(key);
            old
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The value stored for exactly `bits/len` (host bits ignored).
    pub fn get_exact(&self, bits: K, len: u8) -> Option<V> {
        if len > K::BITS {
            return None;
        }
        let len = u32::from(len);
        if len == 0 {
            return self.default;
        }
        let key = mask(bits.to_left(), len);
        let mut node = self.nodes.first()?;
        let mut depth = 0;
        loop {
            if len <= depth + STRIDE {
                let r = len - depth;
                let p = pos(r, chunk(key, depth) >> (STRIDE - r));
                if node.pfx & (1 << p) == 0 {
                    return None;
                }
                return self.val(node.base_val + rank128(node.pfx, p));
            }
            let c = chunk(key, depth);
            if node.vector & (1 << c) == 0 {
                return None;
            }
            node = self.node(node.base_node + rank64(node.vector, c))?;
            depth += STRIDE;
            if node.is_tail() {
                if node.tail_len() == len && node.tail_key() == key {
                    return self.val(node.base_val);
                }
                return None;
            }
        }
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: K) -> Option<V> {
        let (_, idx) = with_popcnt(Find(self, addr.to_left()));
        if idx == NONE {
            self.default
        } else {
            self.vals.get(idx as usize).copied()
        }
    }

    /// [`lookup`](Self::lookup) for a burst of addresses (`out[i]` for `addrs[i]`; extra
    /// elements of either slice are left alone).
    ///
    /// A single lookup is a chain of dependent cache misses, so it runs at memory latency. Here
    /// [`BATCH_LANES`] lookups advance one level each per round, so their misses overlap: the
    /// way to use this table from a burst-oriented datapath.
    pub fn lookup_batch(&self, addrs: &[K], out: &mut [Option<V>]) {
        with_popcnt(Batch(self, addrs, out));
    }

    /// Up to [`BATCH_LANES`] lookups in lock-step rounds. Each round every live lane reads the
    /// line it prefetched in the previous round and prefetches the next one (a node, or its
    /// value once it is done), so a round costs about one memory latency for all lanes together.
    #[inline(always)]
    fn lookup_lanes(&self, addrs: &[K], out: &mut [Option<V>]) {
        let n = addrs.len().min(out.len()).min(BATCH_LANES);
        let nodes = self.nodes.as_slice();
        let top_bits = self.top_bits;
        let mut key = [0u128; BATCH_LANES];
        let mut slot = [0usize; BATCH_LANES];
        let mut depth = [top_bits; BATCH_LANES];
        let mut best_idx = [NONE; BATCH_LANES];
        // The node each live lane reads next (already prefetched); NONE once the lane is done.
        let mut next = [NONE; BATCH_LANES];
        for i in 0..n {
            key[i] = addrs[i].to_left();
            slot[i] = (key[i] >> (128 - top_bits)) as usize;
            if let Some(t) = self.top.get(slot[i]) {
                prefetch(t);
            }
        }
        // A lane that is done asks for its value at once, overlapping the lanes still walking.
        let prefetch_val = |idx: u32| {
            if let Some(v) = self.vals.get(idx as usize) {
                prefetch(v);
            }
        };
        let mut live = 0;
        for i in 0..n {
            if let Some(t) = self.top.get(slot[i]) {
                best_idx[i] = t.val;
                if let Some(node) = nodes.get(t.node as usize) {
                    prefetch(node);
                    next[i] = t.node;
                    live += 1;
                } else {
                    prefetch_val(t.val);
                }
            }
        }
        while live > 0 {
            live = 0;
            for i in 0..n {
                let Some(node) = nodes.get(next[i] as usize) else {
                    continue;
                };
                next[i] = NONE;
                if node.is_tail() {
                    if node.tail_matches(key[i]) {
                        best_idx[i] = node.base_val;
                    }
                    prefetch_val(best_idx[i]);
                    continue;
                }
                let c = chunk(key[i], depth[i]);
                let m = node.pfx & COVER[c as usize];
                if m != 0 {
                    let p = 127 - m.leading_zeros();
                    best_idx[i] = node.base_val + rank128(node.pfx, p);
                }
                let bit = 1u64 << c;
                if node.vector & bit != 0 {
                    let child = node.base_node + (node.vector & (bit - 1)).count_ones();
                    if let Some(n) = nodes.get(child as usize) {
                        prefetch(n);
                        next[i] = child;
                        depth[i] += STRIDE;
                        live += 1;
                        continue;
                    }
                }
                prefetch_val(best_idx[i]);
            }
        }
        for i in 0..n {
            out[i] = if best_idx[i] == NONE {
                self.default
            } else {
                self.vals.get(best_idx[i] as usize).copied()
            };
        }
    }

    /// The longest prefix containing `addr`, as `(bits, len, value)`.
    pub fn longest_match(&self, addr: K) -> Option<(K, u8, V)> {
        let key = addr.to_left();
        let (len, idx) = with_popcnt(Find(self, key));
        if idx == NONE {
            return self.default.map(|v| (K::from_left(0), 0, v));
        }
        let v = self.vals.get(idx as usize).copied()?;
        Some((K::from_left(mask(key, len)), len as u8, v))
    }

    /// Every prefix as `(bits, len, value)`, ordered by address and then by length (a covering
    /// prefix before the prefixes it covers): the order of `show ip route`.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            table: self,
            default: self.default,
            stack: vec![Frame {
                idx: 0,
                depth: 0,
                base: 0,
                slot: 0,
                r: 1,
            }],
        }
    }

    /// `(length, value index)` of the longest match; index `NONE` when only the default (if
    /// any) matches.
    #[inline(always)]
    fn find(&self, key: u128) -> (u32, u32) {
        let Some(top) = self.top.get((key >> (128 - self.top_bits)) as usize) else {
            return (0, NONE);
        };
        let (mut best_len, mut best_idx) = (top.len, top.val);
        let nodes = self.nodes.as_slice();
        let Some(mut node) = nodes.get(top.node as usize) else {
            return (best_len, best_idx);
        };
        if node.is_tail() {
            if node.tail_matches(key) {
                return (node.tail_len(), node.base_val);
            }
            return (best_len, best_idx);
        }
        let mut depth = self.top_bits;
        loop {
            let c = chunk(key, depth);
            let m = node.pfx & COVER[c as usize];
            if m != 0 {
                let p = 127 - m.leading_zeros();
                best_idx = node.base_val + rank128(node.pfx, p);
                best_len = depth + (31 - (p + 2).leading_zeros());
            }
            let bit = 1u64 << c;
            if node.vector & bit == 0 {
                return (best_len, best_idx);
            }
            let child = node.base_node + (node.vector & (bit - 1)).count_ones();
            let Some(next) = nodes.get(child as usize) else {
                return (best_len, best_idx);
            };
            node = next;
            depth += STRIDE;
            if node.is_tail() {
                if node.tail_matches(key) {
                    return (node.tail_len(), node.base_val);
                }
                return (best_len, best_idx);
            }
        }
    }

    /// Compaction, width of the direct table, then `top` upkeep for whatever the update changed
    /// above its depth.
    fn after_update(&mut self, key: u128) {
        let want = if self.len >= self.large_from {
            TOP_BITS_LARGE
        } else if self.len < self.large_from / 2 {
            TOP_BITS_SMALL
        } else {
            self.top_bits
        };
        let compacted = self.maybe_compact();
        if want != self.top_bits {
            self.top_bits = want;
            self.top = vec![Top::EMPTY; 1 << want];
            self.fill_top(0, 0);
        } else if compacted {
            self.fill_top(0, 0);
        } else if self.touched < self.top_bits {
            self.fill_top(key, self.touched);
        }
    }

    /// Rewrites the `top` entries of every start beginning with the first `depth` bits of `key`
    /// (all of them for depth 0) in one walk of the levels above the direct table's depth.
    fn fill_top(&mut self, key: u128, depth: u32) {
        let mut best = Top::EMPTY;
        let mut idx = 0u32;
        let mut d = 0;
        // Down to the node at `depth`, collecting the best match above it.
        while d < depth {
            let node = self.nodes[idx as usize];
            if node.is_tail() {
                break;
            }
            let c = chunk(key, d);
            let m = node.pfx & COVER[c as usize];
            if m != 0 {
                let p = 127 - m.leading_zeros();
                best.val = node.base_val + rank128(node.pfx, p);
                best.len = d + unpos(p).0;
            }
            if node.vector & (1 << c) == 0 {
                idx = NONE;
                break;
            }
            idx = node.base_node + rank64(node.vector, c);
            d += STRIDE;
        }
        let first = if depth == 0 {
            0
        } else {
            ((key >> (128 - depth)) as usize) << (self.top_bits - depth)
        };
        // Stopped early (a tail, or no node), `idx` covers the whole range as it is.
        self.fill_from(first, depth, idx, best);
    }

    /// Writes the `1 << (top_bits - depth)` entries from `first` below node `idx` (a full
    /// node, a tail, or NONE) at `depth`, `best` being the longest match above it.
    fn fill_from(&mut self, first: usize, depth: u32, idx: u32, best: Top) {
        let count = 1usize << (self.top_bits - depth);
        // At the direct table's depth the node is not read (upkeep would miss on each).
        let full = if depth < self.top_bits {
            self.nodes.get(idx as usize).filter(|n| !n.is_tail())
        } else {
            None
        };
        let node = match full {
            Some(n) => *n,
            None => {
                let entry = Top { node: idx, ..best };
                self.top[first..first + count].fill(entry);
                return;
            }
        };
        // Expand the node's prefixes over its 64 chunks, shortest first so longer ones
        // overwrite them (positions ascend with the length), value ranks counted on the way.
        self.top[first..first + count].fill(Top { node: NONE, ..best });
        let per_chunk = count >> STRIDE;
        let mut bits = node.pfx;
        let mut rank = 0;
        while bits != 0 {
            let (r, b) = unpos(bits.trailing_zeros());
            let span = per_chunk << (STRIDE - r);
            let at = first + b as usize * span;
            for e in &mut self.top[at..at + span] {
                e.val = node.base_val + rank;
                e.len = depth + r;
            }
            rank += 1;
            bits &= bits - 1;
        }
        let mut children = node.vector;
        let mut child = node.base_node;
        while children != 0 {
            let at = first + children.trailing_zeros() as usize * per_chunk;
            if per_chunk == 1 {
                self.top[at].node = child;
            } else {
                let b = self.top[at];
                self.fill_from(at, depth + STRIDE, child, b);
            }
            child += 1;
            children &= children - 1;
        }
    }

    /// `top[i]` walked from the root (the reference [`fill_top`](Self::fill_top) is checked
    /// against).
    #[cfg(test)]
    fn compute_top(&self, i: usize) -> Top {
        let key = (i as u128) << (128 - self.top_bits);
        let mut t = Top::EMPTY;
        let mut idx = 0u32;
        let mut depth = 0;
        loop {
            let node = self.nodes[idx as usize];
            if node.is_tail() {
                t.node = idx;
                return t;
            }
            let c = chunk(key, depth);
            let m = node.pfx & COVER[c as usize];
            if m != 0 {
                let p = 127 - m.leading_zeros();
                t.val = node.base_val + rank128(node.pfx, p);
                t.len = depth + unpos(p).0;
            }
            if node.vector & (1 << c) == 0 {
                return t;
            }
            idx = node.base_node + rank64(node.vector, c);
            depth += STRIDE;
            if depth == self.top_bits {
                t.node = idx;
                return t;
            }
        }
    }

    fn node(&self, idx: u32) -> Option<&Node> {
        self.nodes.get(idx as usize)
    }

    fn val(&self, idx: u32) -> Option<V> {
        self.vals.get(idx as usize).copied()
    }

    /// Inserts below the full node `idx` at `depth`; the caller has checked the pools' room.
    fn insert_at(&mut self, mut idx: u32, mut depth: u32, key: u128, len: u32, v: V) -> Option<V> {
        loop {
            let node = self.nodes[idx as usize];
            if len <= depth + STRIDE {
                let r = len - depth;
                let p = pos(r, chunk(key, depth) >> (STRIDE - r));
                let rank = rank128(node.pfx, p);
                if node.pfx & (1 << p) != 0 {
                    let slot = &mut self.vals[(node.base_val + rank) as usize];
                    return Some(std::mem::replace(slot, v));
                }
                let nb = self.grow_vals(node.base_val, node.locals(), rank, v);
                let n = &mut self.nodes[idx as usize];
                n.pfx |= 1 << p;
                n.base_val = nb;
                self.touched = self.touched.min(depth);
                return None;
            }
            let c = chunk(key, depth);
            let rank = rank64(node.vector, c);
            if node.vector & (1 << c) == 0 {
                let vi = self.alloc_vals(1, v);
                self.vals[vi as usize] = v;
                let tail = Node::tail(key, len, vi);
                let nb = self.grow_nodes(node.base_node, node.children(), rank, tail);
                let n = &mut self.nodes[idx as usize];
                n.vector |= 1 << c;
                n.base_node = nb;
                self.touched = self.touched.min(depth);
                return None;
            }
            let child = node.base_node + rank;
            depth += STRIDE;
            let cn = self.nodes[child as usize];
            if cn.is_tail() {
                if cn.tail_len() == len && cn.tail_key() == key {
                    let slot = &mut self.vals[cn.base_val as usize];
                    return Some(std::mem::replace(slot, v));
                }
                let full = self.push_down(cn, depth);
                self.nodes[child as usize] = full;
                self.touched = self.touched.min(depth);
            }
            idx = child;
        }
    }

    /// A full node at `depth` holding the tail's one prefix, reusing its value block (and the
    /// tail itself one level further down when the prefix is longer than this level).
    fn push_down(&mut self, tail: Node, depth: u32) -> Node {
        let (key, len) = (tail.tail_key(), tail.tail_len());
        let mut full = Node::EMPTY;
        if len <= depth + STRIDE {
            let r = len - depth;
            full.pfx = 1 << pos(r, chunk(key, depth) >> (STRIDE - r));
            full.base_val = tail.base_val;
        } else {
            let nb = self.alloc_nodes(1);
            self.nodes[nb as usize] = tail;
            full.vector = 1 << chunk(key, depth);
            full.base_node = nb;
        }
        full
    }

    fn remove_key(&mut self, key: u128, len: u32) -> Option<V> {
        let mut path = [0u32; MAX_LEVELS + 1];
        let mut level = 0;
        let mut idx = 0u32;
        let mut depth = 0;
        let old;
        loop {
            let node = *self.node(idx)?;
            if len <= depth + STRIDE {
                let r = len - depth;
                let p = pos(r, chunk(key, depth) >> (STRIDE - r));
                if node.pfx & (1 << p) == 0 {
                    return None;
                }
                let rank = rank128(node.pfx, p);
                old = self.val(node.base_val + rank)?;
                let nb = self.shrink_vals(node.base_val, node.locals(), rank);
                let n = &mut self.nodes[idx as usize];
                n.pfx &= !(1 << p);
                n.base_val = nb;
                self.touched = depth;
                break;
            }
            let c = chunk(key, depth);
            if node.vector & (1 << c) == 0 {
                return None;
            }
            let rank = rank64(node.vector, c);
            let child = node.base_node + rank;
            let cn = *self.node(child)?;
            if cn.is_tail() {
                if cn.tail_len() != len || cn.tail_key() != key {
                    return None;
                }
                old = self.val(cn.base_val)?;
                self.free_vals(cn.base_val, 1);
                let nb = self.shrink_nodes(node.base_node, node.children(), rank);
                let n = &mut self.nodes[idx as usize];
                n.vector &= !(1 << c);
                n.base_node = nb;
                self.touched = depth;
                break;
            }
            path[level] = idx;
            level += 1;
            idx = child;
            depth += STRIDE;
        }
        // Restore the shape every non-root full node has (two or more prefixes below it), so
        // that memory follows the table back down after removals.
        while level > 0 {
            let parent = path[level - 1];
            let pdepth = depth - STRIDE;
            let node = self.nodes[idx as usize];
            let (k, n) = (node.locals(), node.children());
            if k + n == 0 {
                let pn = self.nodes[parent as usize];
                let c = chunk(key, pdepth);
                let nb = self.shrink_nodes(pn.base_node, pn.children(), rank64(pn.vector, c));
                let p = &mut self.nodes[parent as usize];
                p.vector &= !(1 << c);
                p.base_node = nb;
            } else if k == 1 && n == 0 {
                let (r, b) = unpos(127 - node.pfx.leading_zeros());
                let tkey = mask(key, depth) | (u128::from(b) << (128 - depth - r));
                self.nodes[idx as usize] = Node::tail(tkey, depth + r, node.base_val);
            } else if k == 0 && n == 1 && self.nodes[node.base_node as usize].is_tail() {
                let t = self.nodes[node.base_node as usize];
                self.free_nodes_block(node.base_node, 1);
                self.nodes[idx as usize] = t;
            } else {
                break;
            }
            // Either this node or (first case) its parent changed.
            self.touched = pdepth;
            idx = parent;
            depth = pdepth;
            level -= 1;
        }
        Some(old)
    }

    // ---- pools ----------------------------------------------------------------------------

    fn alloc_nodes(&mut self, n: u32) -> u32 {
        let cap = class(n) as usize;
        let head = self.free_nodes[cap];
        if head != NONE {
            self.free_nodes[cap] = self.nodes[head as usize].base_node;
            self.free_node_entries -= cap;
            return head;
        }
        let at = self.nodes.len();
        reserve_some(&mut self.nodes, cap);
        self.nodes.resize(at + cap, Node::EMPTY);
        at as u32
    }

    /// Frees the block at `at` that holds `n` entries.
    fn free_nodes_block(&mut self, at: u32, n: u32) {
        let cap = class(n) as usize;
        self.nodes[at as usize].base_node = self.free_nodes[cap];
        self.free_nodes[cap] = at;
        self.free_node_entries += cap;
    }

    /// The block `base[..n]` with `new` inserted at `rank`: in place when its size class has
    /// room, else copied into a block of the next class.
    fn grow_nodes(&mut self, base: u32, n: u32, rank: u32, new: Node) -> u32 {
        let (b, r, nu) = (base as usize, rank as usize, n as usize);
        if n > 0 && n < class(n) {
            self.nodes.copy_within(b + r..b + nu, b + r + 1);
            self.nodes[b + r] = new;
            return base;
        }
        let nb = self.alloc_nodes(n + 1);
        let nbu = nb as usize;
        if n > 0 {
            self.nodes.copy_within(b..b + r, nbu);
            self.nodes.copy_within(b + r..b + nu, nbu + r + 1);
            self.free_nodes_block(base, n);
        }
        self.nodes[nbu + r] = new;
        nb
    }

    /// The block `base[..n]` without the entry at `rank` (`NONE` when that empties it).
    fn shrink_nodes(&mut self, base: u32, n: u32, rank: u32) -> u32 {
        let (b, r, nu) = (base as usize, rank as usize, n as usize);
        if n > 1 && class(n - 1) == class(n) {
            self.nodes.copy_within(b + r + 1..b + nu, b + r);
            return base;
        }
        let nb = if n > 1 {
            let nb = self.alloc_nodes(n - 1);
            let nbu = nb as usize;
            self.nodes.copy_within(b..b + r, nbu);
            self.nodes.copy_within(b + r + 1..b + nu, nbu + r);
            nb
        } else {
            NONE
        };
        self.free_nodes_block(base, n);
        nb
    }

    /// A block for `n` values; new pool slots are filled with `filler` (overwritten by the
    /// caller).
    fn alloc_vals(&mut self, n: u32, filler: V) -> u32 {
        let cap = class(n) as usize;
        if let Some(at) = self.free_vals.get_mut(cap).and_then(Vec::pop) {
            self.free_val_entries -= cap;
            return at;
        }
        let at = self.vals.len();
        reserve_some(&mut self.vals, cap);
        self.vals.resize(at + cap, filler);
        at as u32
    }

    /// Frees the block at `at` that holds `n` values.
    fn free_vals(&mut self, at: u32, n: u32) {
        let cap = class(n) as usize;
        if self.free_vals.len() <= cap {
            self.free_vals.resize_with(cap + 1, Vec::new);
        }
        self.free_vals[cap].push(at);
        self.free_val_entries += cap;
    }

    fn grow_vals(&mut self, base: u32, k: u32, rank: u32, v: V) -> u32 {
        let (b, r, ku) = (base as usize, rank as usize, k as usize);
        if k > 0 && k < class(k) {
            self.vals.copy_within(b + r..b + ku, b + r + 1);
            self.vals[b + r] = v;
            return base;
        }
        let nb = self.alloc_vals(k + 1, v);
        let nbu = nb as usize;
        if k > 0 {
            self.vals.copy_within(b..b + r, nbu);
            self.vals.copy_within(b + r..b + ku, nbu + r + 1);
            self.free_vals(base, k);
        }
        self.vals[nbu + r] = v;
        nb
    }

    fn shrink_vals(&mut self, base: u32, k: u32, rank: u32) -> u32 {
        let (b, r, ku) = (base as usize, rank as usize, k as usize);
        if k > 1 && class(k - 1) == class(k) {
            self.vals.copy_within(b + r + 1..b + ku, b + r);
            return base;
        }
        let nb = if k > 1 {
            let filler = self.vals[b];
            let nb = self.alloc_vals(k - 1, filler);
            let nbu = nb as usize;
            self.vals.copy_within(b..b + r, nbu);
            self.vals.copy_within(b + r + 1..b + ku, nbu + r);
            nb
        } else {
            NONE
        };
        self.free_vals(base, k);
        nb
    }

    /// Whether it compacted (which moves every block).
    fn maybe_compact(&mut self) -> bool {
        let live_nodes = self.nodes.len() - self.free_node_entries;
        let live_vals = self.vals.len() - self.free_val_entries;
        let due = self.free_node_entries > COMPACT_MIN.max(live_nodes / COMPACT_FRACTION)
            || self.free_val_entries > COMPACT_MIN.max(live_vals / COMPACT_FRACTION);
        if due {
            self.compact();
        }
        due
    }

    /// Rewrites both pools without free blocks, in breadth-first order (so the upper levels,
    /// which every lookup reads, end up packed together).
    fn compact(&mut self) {
        let live_nodes = self.nodes.len() - self.free_node_entries;
        let live_vals = self.vals.len() - self.free_val_entries;
        let mut nodes: Vec<Node> = Vec::with_capacity(live_nodes + live_nodes / 16 + 1);
        let mut vals: Vec<V> = Vec::with_capacity(live_vals + live_vals / 16 + 1);
        nodes.push(self.nodes[0]);
        let mut i = 0;
        while i < nodes.len() {
            let mut n = nodes[i];
            if n.is_tail() {
                let v = self.vals[n.base_val as usize];
                n.base_val = vals.len() as u32;
                vals.push(v);
            } else {
                // Blocks keep their size class (it is derived from the entry count); the
                // padding is inert: empty nodes, copies of a value.
                let k = n.locals();
                if k > 0 {
                    let b = n.base_val as usize;
                    n.base_val = vals.len() as u32;
                    vals.extend_from_slice(&self.vals[b..b + k as usize]);
                    let pad = self.vals[b];
                    vals.resize(vals.len() + (class(k) - k) as usize, pad);
                }
                let c = n.children();
                if c > 0 {
                    let b = n.base_node as usize;
                    n.base_node = nodes.len() as u32;
                    nodes.extend_from_slice(&self.nodes[b..b + c as usize]);
                    nodes.resize(nodes.len() + (class(c) - c) as usize, Node::EMPTY);
                }
            }
            nodes[i] = n;
            i += 1;
        }
        self.nodes = nodes;
        self.vals = vals;
        self.free_nodes = [NONE; 65];
        self.free_vals = Vec::new();
        self.free_node_entries = 0;
        self.free_val_entries = 0;
    }

    /// A table whose direct table widens from `large_from` prefixes (tests reach both widths
    /// with small tables this way).
    #[cfg(test)]
    pub(super) fn with_large_from(large_from: usize) -> Self {
        Self {
            large_from,
            ..Self::new()
        }
    }

    #[cfg(test)]
    pub(super) fn top_bits(&self) -> u32 {
        self.top_bits
    }

    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let mut count = usize::from(self.default.is_some());
        let mut stack = vec![(0u32, 0u32, true)];
        let mut reachable_nodes = 1usize;
        let mut reachable_vals = 0usize;
        while let Some((idx, depth, is_root)) = stack.pop() {
            let n = self.nodes[idx as usize];
            if n.is_tail() {
                assert!(!is_root);
                assert!(n.tail_len() > depth && n.tail_len() <= K::BITS as u32);
                assert_eq!(mask(n.tail_key(), n.tail_len()), n.tail_key());
                count += 1;
                reachable_vals += 1;
                continue;
            }
            assert_eq!(n.pfx >> 126, 0);
            let (k, c) = (n.locals(), n.children());
            if !is_root {
                let single_tail = k == 0 && c == 1 && self.nodes[n.base_node as usize].is_tail();
                assert!(k + c >= 2 || (c == 1 && !single_tail), "non-canonical node");
            }
            assert_eq!(k == 0, n.base_val == NONE);
            assert_eq!(c == 0, n.base_node == NONE);
            count += k as usize;
            reachable_vals += class(k) as usize;
            reachable_nodes += class(c) as usize;
            for i in 0..c {
                stack.push((n.base_node + i, depth + STRIDE, false));
            }
        }
        assert_eq!(count, self.len);
        for i in 0..self.top.len() {
            assert_eq!(self.top[i], self.compute_top(i), "top[{i}]");
        }
        assert_eq!(reachable_nodes + self.free_node_entries, self.nodes.len());
        assert_eq!(reachable_vals + self.free_val_entries, self.vals.len());
    }
}

/// [`LpmTable::find`] as a [`Kernel`].
struct Find<'a, K: LpmKey, V: Copy>(&'a LpmTable<K, V>, u128);

impl<K: LpmKey, V: Copy> Kernel for Find<'_, K, V> {
    type Output = (u32, u32);
    #[inline(always)]
    fn run(self) -> (u32, u32) {
        self.0.find(self.1)
    }
}

/// [`LpmTable::lookup_batch`]'s rounds as a [`Kernel`].
struct Batch<'a, K: LpmKey, V: Copy>(&'a LpmTable<K, V>, &'a [K], &'a mut [Option<V>]);

impl<K: LpmKey, V: Copy> Kernel for Batch<'_, K, V> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Batch(table, addrs, out) = self;
        for (a, o) in addrs.chunks(BATCH_LANES).zip(out.chunks_mut(BATCH_LANES)) {
            table.lookup_lanes(a, o);
        }
    }
}

/// Slots a block of `n` entries occupies: exact up to 8 (most blocks, so most of the memory),
/// then steps of about 1/8 of the size, so that a growing block usually has room in place (no
/// copy, no allocation) for at most ~6 % padding on average, and freed blocks fall into a few
/// dozen lists where they are soon reused.
const fn class(n: u32) -> u32 {
    match n {
        0..=8 => n,
        9..=16 => (n + 1) & !1,
        17..=32 => (n + 3) & !3,
        33..=64 => (n + 7) & !7,
        _ => (n + 15) & !15,
    }
}

/// Grows a pool by an eighth: doubling would leave up to half of a large table's pool idle,
/// which alone would blow the bytes-per-prefix budget (an eighth keeps a random IPv6 table under
/// it even with the compaction threshold's free space on top).
fn reserve_some<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n.max(v.len() / 8).max(64));
    }
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    idx: u32,
    depth: u32,
    /// Address bits above `depth`.
    base: u128,
    /// Next chunk to visit, and the next relative length at that chunk (7 = its child).
    slot: u32,
    r: u32,
}

/// Iterator over an [`LpmTable`]'s prefixes; see [`LpmTable::iter`].
pub struct Iter<'a, K: LpmKey, V: Copy> {
    table: &'a LpmTable<K, V>,
    default: Option<V>,
    stack: Vec<Frame>,
}

impl<K: LpmKey, V: Copy> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<K: LpmKey, V: Copy> Iterator for Iter<'_, K, V> {
    type Item = (K, u8, V);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(v) = self.default.take() {
            return Some((K::from_left(0), 0, v));
        }
        let t = self.table;
        loop {
            let f = self.stack.last_mut()?;
            let node = *t.node(f.idx)?;
            if node.is_tail() {
                self.stack.pop();
                return Some((
                    K::from_left(node.tail_key()),
                    node.tail_len() as u8,
                    t.val(node.base_val)?,
                ));
            }
            if f.slot == 64 {
                self.stack.pop();
                continue;
            }
            while f.r <= STRIDE {
                let r = f.r;
                f.r += 1;
                if f.slot & ((1 << (STRIDE - r)) - 1) != 0 {
                    continue;
                }
                let b = f.slot >> (STRIDE - r);
                let p = pos(r, b);
                if node.pfx & (1 << p) != 0 {
                    let key = f.base | (u128::from(b) << (128 - f.depth - r));
                    let v = t.val(node.base_val + rank128(node.pfx, p))?;
                    return Some((K::from_left(key), (f.depth + r) as u8, v));
                }
            }
            let s = f.slot;
            f.slot += 1;
            f.r = 1;
            if node.vector & (1 << s) != 0 {
                let child = Frame {
                    idx: node.base_node + rank64(node.vector, s),
                    depth: f.depth + STRIDE,
                    base: f.base | (u128::from(s) << (128 - STRIDE - f.depth)),
                    slot: 0,
                    r: 1,
                };
                self.stack.push(child);
            }
        }
    }
}
