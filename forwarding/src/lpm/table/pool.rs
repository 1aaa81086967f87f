//! The node and value pools: blocks by size class with a free list per class, and compaction.

use super::super::LpmKey;
use super::super::node::{NONE, Node};
use super::LpmTable;

/// Free space that triggers a compaction, as a fraction (1 / N) of the live entries: bounds the
/// waste of per-class free lists while keeping the copy cost amortised over many updates.
const COMPACT_FRACTION: usize = 8;

/// Below this many free entries compaction is never worth it.
const COMPACT_MIN: usize = 4096;

impl<K: LpmKey, V: Copy> LpmTable<K, V> {
    pub(super) fn alloc_nodes(&mut self, n: u32) -> u32 {
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
    pub(super) fn free_nodes_block(&mut self, at: u32, n: u32) {
        let cap = class(n) as usize;
        self.nodes[at as usize].base_node = self.free_nodes[cap];
        self.free_nodes[cap] = at;
        self.free_node_entries += cap;
    }

    /// The block `base[..n]` with `new` inserted at `rank`: in place when its size class has
    /// room, else copied into a block of the next class.
    pub(super) fn grow_nodes(&mut self, base: u32, n: u32, rank: u32, new: Node) -> u32 {
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
    pub(super) fn shrink_nodes(&mut self, base: u32, n: u32, rank: u32) -> u32 {
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
    pub(super) fn alloc_vals(&mut self, n: u32, filler: V) -> u32 {
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
    pub(super) fn free_vals(&mut self, at: u32, n: u32) {
        let cap = class(n) as usize;
        if self.free_vals.len() <= cap {
            self.free_vals.resize_with(cap + 1, Vec::new);
        }
        self.free_vals[cap].push(at);
        self.free_val_entries += cap;
    }

    pub(super) fn grow_vals(&mut self, base: u32, k: u32, rank: u32, v: V) -> u32 {
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

    pub(super) fn shrink_vals(&mut self, base: u32, k: u32, rank: u32) -> u32 {
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
    pub(super) fn maybe_compact(&mut self) -> bool {
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
}

/// Slots a block of `n` entries occupies: exact up to 8 (most blocks, so most of the memory),
/// then steps of about 1/8 of the size, so that a growing block usually has room in place (no
/// copy, no allocation) for at most ~6 % padding on average, and freed blocks fall into a few
/// dozen lists where they are soon reused.
pub(super) const fn class(n: u32) -> u32 {
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
