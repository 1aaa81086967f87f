//! The hasher of the data plane's hash tables: a keyed folded-multiply hash (the construction
//! of aHash's portable fallback) instead of the standard library's SipHash-1-3, which took
//! about a tenth of the forwarding CPU in profiles of the AF_XDP data path.
//!
//! The tables hold keys that hosts choose (MAC and IP addresses), so the hash is keyed with
//! per-table random keys: without them a sender could pick addresses that all land in one
//! bucket. Learning is bounded by the tables' capacities whatever the hash does.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` with the keyed hash.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;
/// A `HashSet` with the keyed hash.
pub type KeyedSet<T> = HashSet<T, KeyedState>;

/// An odd constant with well-mixed bits (the 64-bit golden ratio).
const MULTIPLE: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of the 128-bit product, folded: every input bit reaches the output.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Random keys, drawn once per table from the standard library's per-process randomness.
#[derive(Debug, Clone, Copy)]
pub struct KeyedState {
    seed: u64,
    finish: u64,
}

impl Default for KeyedState {
    fn default() -> Self {
        let random = RandomState::new();
        KeyedState {
            seed: random.hash_one(0x5eed_u64),
            finish: random.hash_one(0xf1_u64) | 1,
        }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    #[inline]
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            acc: self.seed,
            finish: self.finish,
        }
    }
}

/// The running state of one hash.
#[derive(Debug, Clone, Copy)]
pub struct KeyedHasher {
    acc: u64,
    finish: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.acc = folded_multiply(self.acc ^ i, MULTIPLE);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mixed = folded_multiply(self.acc, self.finish);
        mixed.rotate_left((self.acc & 63) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_with<T: std::hash::Hash>(state: &KeyedState, value: T) -> u64 {
        state.hash_one(value)
    }

    #[test]
    fn equal_keys_hash_alike_and_near_keys_apart() {
        let s = KeyedState::default();
        let mac = (10u16, [0x02u8, 0, 0, 0, 0, 1]);
        assert_eq!(hash_with(&s, mac), hash_with(&s, mac));
        let near = (10u16, [0x02u8, 0, 0, 0, 0, 2]);
        assert_ne!(hash_with(&s, mac), hash_with(&s, near));
        assert_ne!(
            hash_with(&s, b"ab".as_slice()),
            hash_with(&s, b"ab\0".as_slice())
        );
    }

    #[test]
    fn tables_are_keyed_apart() {
        let (a, b) = (KeyedState::default(), KeyedState::default());
        let key = std::net::IpAddr::from([10, 0, 0, 1]);
        assert_ne!(hash_with(&a, key), hash_with(&b, key));
    }

    /// Sequential addresses (a host scan, a MAC flood) spread over the buckets: the low bits
    /// the table indexes with take about as many values as a random hash gives.
    #[test]
    fn sequential_keys_spread_over_the_low_bits() {
        let s = KeyedState::default();
        let buckets = 1usize << 10;
        let mut used = vec![false; buckets];
        for i in 0..buckets as u32 {
            let key = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            used[(hash_with(&s, key) as usize) & (buckets - 1)] = true;
        }
        let filled = used.iter().filter(|u| **u).count();
        // A random function fills 1 - 1/e (63 %) of the buckets.
        assert!(filled > buckets * 55 / 100, "{filled} of {buckets}");
    }
}
