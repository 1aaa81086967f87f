//! Seeded prefix sets shared by the benchmarks (every run and every implementation sees the
//! same data):
//! - IPv4: distinct prefixes, lengths roughly as in the global table (56 % /24, 22 % /22–/23,
//!   14 % /17–/21, 3 % /8–/16, 5 % /25–/32), addresses uniformly random.
//! - IPv6: distinct prefixes inside 2000::/3, 10 % /32, 15 % /33–/47, 40 % /48, 10 % /49–/63,
//!   20 % /64, 5 % /128, addresses uniformly random below the /3.
//! - Lookup addresses: each inside a table prefix picked at random (random host bits), so every
//!   lookup resolves to a real route and walks the full depth.

#![allow(dead_code)] // each bench uses its part

use std::collections::HashSet;

/// How many prefixes and addresses to make.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Prefixes of the table.
    pub prefixes: usize,
    /// Further prefixes, distinct from those, for insert benchmarks.
    pub fresh: usize,
    /// Lookup addresses inside the table's prefixes.
    pub lookups: usize,
}

pub use roamer_test_support::SplitMix64 as Rng;

pub fn len4(rng: &mut Rng) -> u8 {
    let x = rng.below(1000);
    match x {
        0..15 => 8 + rng.below(8) as u8,
        15..30 => 16,
        30..170 => 17 + rng.below(5) as u8,
        170..290 => 22,
        290..390 => 23,
        390..950 => 24,
        _ => 25 + rng.below(8) as u8,
    }
}

pub fn len6(rng: &mut Rng) -> u8 {
    let x = rng.below(100);
    match x {
        0..10 => 32,
        10..25 => 33 + rng.below(15) as u8,
        25..65 => 48,
        65..75 => 49 + rng.below(15) as u8,
        75..95 => 64,
        _ => 128,
    }
}

pub fn mask32(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - len))
    }
}

pub fn mask128(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - len))
    }
}

/// `n` distinct prefixes not in `seen` (which they are added to).
pub fn gen_prefixes<T: Copy + Eq + std::hash::Hash>(
    n: usize,
    seen: &mut HashSet<(T, u8)>,
    mut one: impl FnMut() -> (T, u8),
) -> Vec<(T, u8)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = one();
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

pub struct Data<T> {
    pub base: Vec<(T, u8)>,
    pub fresh: Vec<(T, u8)>,
    pub lookups: Vec<T>,
}

pub fn data_v4(seed: u64, sizes: Sizes) -> Data<u32> {
    let mut rng = Rng(seed);
    let mut seen = HashSet::new();
    let mut one = || {
        let len = len4(&mut rng);
        (mask32(rng.next() as u32, len), len)
    };
    let base = gen_prefixes(sizes.prefixes, &mut seen, &mut one);
    let fresh = gen_prefixes(sizes.fresh, &mut seen, &mut one);
    let lookups = (0..sizes.lookups)
        .map(|_| {
            let (bits, len) = base[rng.below(base.len() as u64) as usize];
            bits | (rng.next() as u32 & !mask32(u32::MAX, len))
        })
        .collect();
    Data {
        base,
        fresh,
        lookups,
    }
}

pub fn data_v6(seed: u64, sizes: Sizes) -> Data<u128> {
    let mut rng = Rng(seed);
    let mut seen = HashSet::new();
    let mut one = || {
        let len = len6(&mut rng);
        let addr = (rng.u128() >> 3) | (1 << 125);
        (mask128(addr, len), len)
    };
    let base = gen_prefixes(sizes.prefixes, &mut seen, &mut one);
    let fresh = gen_prefixes(sizes.fresh, &mut seen, &mut one);
    let lookups = (0..sizes.lookups)
        .map(|_| {
            let (bits, len) = base[rng.below(base.len() as u64) as usize];
            bits | (rng.u128() & !mask128(u128::MAX, len))
        })
        .collect();
    Data {
        base,
        fresh,
        lookups,
    }
}
