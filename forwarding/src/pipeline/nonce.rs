//! The LISP data header's nonce: random per packet (RFC 9300 §5.3), from a cheap generator
//! seeded once (no system call per packet). The UDP source port stays the flow hash (ECMP
//! entropy); the nonce must not be predictable from the flow, nor shared between xTRs.

use std::hash::{BuildHasher, Hasher};

/// wyrand: a 64-bit state, one multiply per number.
#[derive(Debug, Clone)]
pub(super) struct Nonces {
    state: u64,
}

impl Nonces {
    pub(super) fn new(seed: u64) -> Self {
        Nonces { state: seed }
    }

    /// Seeded from the system's randomness (std's `RandomState` keys are drawn from it once per
    /// thread and then advanced, so two pipelines never start alike).
    pub(super) fn from_entropy() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6c69_7370_6e6f_6e63);
        Nonces::new(h.finish())
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A 24-bit nonce.
    pub(super) fn next_24(&mut self) -> u32 {
        (self.next_u64() >> 40) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_per_packet_and_per_generator() {
        let mut a = Nonces::from_entropy();
        let mut b = Nonces::from_entropy();
        let xs: Vec<u32> = (0..64).map(|_| a.next_24()).collect();
        let ys: Vec<u32> = (0..64).map(|_| b.next_24()).collect();
        assert!(xs.iter().all(|n| *n <= 0x00ff_ffff));
        let mut distinct = xs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 60, "{xs:?}");
        assert_ne!(
            xs, ys,
            "two generators from the system's randomness start alike"
        );
        // Seeded: reproducible.
        let mut c = Nonces::new(7);
        let mut d = Nonces::new(7);
        assert_eq!(c.next_24(), d.next_24());
    }
}
