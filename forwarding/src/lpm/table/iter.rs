//! Iteration over a table's prefixes in address order.

use std::fmt;

use super::super::LpmKey;
use super::super::node::{STRIDE, pos, rank64, rank128};
use super::LpmTable;

impl<K: LpmKey, V: Copy> LpmTable<K, V> {
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
