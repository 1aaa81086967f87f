//! Nonces for LISP control messages: unpredictable 64-bit values without an extra dependency.
//!
//! `RandomState` draws its SipHash keys from the operating system's random source once per
//! process; hashing a counter under those keys gives values an off-path sender cannot guess,
//! which is all a Map-Request or Map-Register nonce has to be (RFC 9301 §5.2).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Clone, Default)]
pub struct Nonces {
    keys: RandomState,
    counter: u64,
}

impl Nonces {
    /// A fresh nonce, never 0 (0 reads as "no nonce" in some implementations).
    pub fn fresh(&mut self) -> u64 {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let mut h = self.keys.build_hasher();
            h.write_u64(self.counter);
            let n = h.finish();
            if n != 0 {
                return n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_between_calls_and_between_generators() {
        let (mut a, mut b) = (Nonces::default(), Nonces::default());
        let xs: Vec<u64> = (0..1000).map(|_| a.fresh()).collect();
        let mut sorted = xs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), xs.len());
        assert_ne!(a.fresh(), b.fresh());
    }
}
