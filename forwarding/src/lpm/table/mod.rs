//! The generic table: a tree bitmap with 6-bit strides, popcount-indexed child and value blocks,
//! and single-prefix tails.

mod iter;
mod pool;
mod update;

use std::fmt;
use std::marker::PhantomData;

use super::LpmKey;
use super::cpu::{Kernel, prefetch, with_popcnt};
use super::node::{COVER, NONE, Node, STRIDE, chunk, mask, pos, rank64, rank128};
use crate::ForwardingError;

pub use iter::Iter;
#[cfg(test)]
use pool::class;

/// Most levels a prefix can sit below the root (128 / 6, rounded up).
const MAX_LEVELS: usize = 22;

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

    fn node(&self, idx: u32) -> Option<&Node> {
        self.nodes.get(idx as usize)
    }

    fn val(&self, idx: u32) -> Option<V> {
        self.vals.get(idx as usize).copied()
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
