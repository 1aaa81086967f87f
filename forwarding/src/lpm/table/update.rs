//! Inserts and removals below the root, and the direct table's upkeep after each update.

use super::super::LpmKey;
use super::super::node::{COVER, NONE, Node, STRIDE, chunk, mask, pos, rank64, rank128, unpos};
use super::{LpmTable, MAX_LEVELS, TOP_BITS_LARGE, TOP_BITS_SMALL, Top};

impl<K: LpmKey, V: Copy> LpmTable<K, V> {
    /// Compaction, width of the direct table, then `top` upkeep for whatever the update changed
    /// above its depth.
    pub(super) fn after_update(&mut self, key: u128) {
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
    pub(super) fn compute_top(&self, i: usize) -> Top {
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

    /// Inserts below the full node `idx` at `depth`; the caller has checked the pools' room.
    pub(super) fn insert_at(
        &mut self,
        mut idx: u32,
        mut depth: u32,
        key: u128,
        len: u32,
        v: V,
    ) -> Option<V> {
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

    pub(super) fn remove_key(&mut self, key: u128, len: u32) -> Option<V> {
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
}
