//! The 32-octet trie node and the bit arithmetic shared by lookups and updates.
//!
//! Two nodes share a cache line and never straddle one (`align(32)`), so a lookup touches exactly
//! one line per level.

/// Address bits consumed per trie level: 64 children fit a `u64` bitmap, and the 2 + 4 + … + 64
/// = 126 prefixes a level can hold fit a `u128` bitmap.
pub(super) const STRIDE: u32 = 6;

/// "No block" marker for `base_node` / `base_val` and the end of an intrusive free list.
pub(super) const NONE: u32 = u32::MAX;

/// Set in `pfx` of a tail. Bits 126 and 127 are never prefix positions (those end at 125).
const TAIL: u128 = 1 << 127;

/// One trie level (a *full* node) or a single-prefix subtree (a *tail*).
///
/// Full node, at depth `d` (a multiple of [`STRIDE`]):
/// - `pfx` bit `(1 << r) - 2 + b` is set when the prefix of length `d + r` (r in 1..=6) whose
///   bits `d..d + r` equal `b` is stored here; its value is `vals[base_val + rank]`, rank being
///   the number of lower set bits.
/// - `vector` bit `c` is set when the subtree under the 6-bit chunk `c` holds prefixes longer
///   than `d + 6`; that child is `nodes[base_node + rank]`.
///
/// Tail: the whole subtree below a child slot holds one prefix, so instead of a chain of nearly
/// empty levels the slot stores the prefix itself (path compression, what keeps random IPv6
/// tables small). `pfx` = `TAIL | len << 64 | key & u64::MAX`, `vector` = `key >> 64`, the value
/// is `vals[base_val]`, and `base_node` is unused (it links free blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub(super) struct Node {
    pub(super) pfx: u128,
    pub(super) vector: u64,
    pub(super) base_node: u32,
    pub(super) base_val: u32,
}

impl Node {
    pub(super) const EMPTY: Node = Node {
        pfx: 0,
        vector: 0,
        base_node: NONE,
        base_val: NONE,
    };

    /// `key` must already have its host bits cleared.
    pub(super) fn tail(key: u128, len: u32, val: u32) -> Node {
        Node {
            pfx: TAIL | (u128::from(len) << 64) | (key & u128::from(u64::MAX)),
            vector: (key >> 64) as u64,
            base_node: NONE,
            base_val: val,
        }
    }

    #[inline(always)]
    pub(super) fn is_tail(&self) -> bool {
        self.pfx & TAIL != 0
    }

    #[inline(always)]
    pub(super) fn tail_key(&self) -> u128 {
        (u128::from(self.vector) << 64) | (self.pfx & u128::from(u64::MAX))
    }

    #[inline(always)]
    pub(super) fn tail_len(&self) -> u32 {
        ((self.pfx >> 64) & 0xff) as u32
    }

    /// Whether `key` lies inside this tail's prefix (whose length is at least `STRIDE + 1`).
    #[inline(always)]
    pub(super) fn tail_matches(&self, key: u128) -> bool {
        (key ^ self.tail_key()) >> (128 - self.tail_len()) == 0
    }

    pub(super) fn locals(&self) -> u32 {
        self.pfx.count_ones()
    }

    pub(super) fn children(&self) -> u32 {
        self.vector.count_ones()
    }
}

/// The 6-bit chunk of `key` starting at bit `depth` (< 128), zero-padded past the end.
#[inline(always)]
pub(super) fn chunk(key: u128, depth: u32) -> u32 {
    ((key << depth) >> (128 - STRIDE)) as u32
}

/// Bitmap position of the prefix of relative length `r` (1..=6) and relative bits `b`.
#[inline(always)]
pub(super) fn pos(r: u32, b: u32) -> u32 {
    (1 << r) - 2 + b
}

/// Inverse of [`pos`]: `(r, b)`.
#[inline(always)]
pub(super) fn unpos(p: u32) -> (u32, u32) {
    let r = 31 - (p + 2).leading_zeros();
    (r, p + 2 - (1 << r))
}

/// Set bits of `pfx` strictly below position `p`: the rank of `p` in the value block.
#[inline(always)]
pub(super) fn rank128(bits: u128, p: u32) -> u32 {
    (bits & ((1u128 << p) - 1)).count_ones()
}

#[inline(always)]
pub(super) fn rank64(bits: u64, c: u32) -> u32 {
    (bits & ((1u64 << c) - 1)).count_ones()
}

/// `COVER[c]`: the six positions of the prefixes (one per relative length) that contain chunk
/// `c`. They grow with the length, so the highest set bit of `pfx & COVER[c]` is the longest
/// local match: one AND and one leading-zero count instead of six probes.
pub(super) static COVER: [u128; 64] = cover_table();

const fn cover_table() -> [u128; 64] {
    let mut t = [0u128; 64];
    let mut c = 0;
    while c < 64 {
        let mut r = 1;
        while r <= STRIDE {
            let b = (c as u32) >> (STRIDE - r);
            t[c] |= 1u128 << ((1u32 << r) - 2 + b);
            r += 1;
        }
        c += 1;
    }
    t
}

/// The top `len` bits of `key` (len 0..=128).
#[inline(always)]
pub(super) fn mask(key: u128, len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        key & (u128::MAX << (128 - len))
    }
}
