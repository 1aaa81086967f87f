//! Unit tests and property tests against a naive reference (a map probed at every length).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use roamer_hal::Prefix;

use super::node::{COVER, mask, pos, unpos};
use super::{IpLpm, Lpm4, Lpm6, LpmKey, LpmTable};

/// The obviously correct table: exact map keyed by (left-aligned masked bits, length).
struct Reference<K: LpmKey, V: Copy> {
    map: BTreeMap<(u128, u8), V>,
    _k: std::marker::PhantomData<K>,
}

impl<K: LpmKey, V: Copy> Default for Reference<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            _k: std::marker::PhantomData,
        }
    }
}

impl<K: LpmKey, V: Copy + PartialEq + std::fmt::Debug> Reference<K, V> {
    fn insert(&mut self, bits: K, len: u8, v: V) -> Option<V> {
        self.map.insert((mask(bits.to_left(), len.into()), len), v)
    }
    fn remove(&mut self, bits: K, len: u8) -> Option<V> {
        self.map.remove(&(mask(bits.to_left(), len.into()), len))
    }
    fn get(&self, bits: K, len: u8) -> Option<V> {
        self.map
            .get(&(mask(bits.to_left(), len.into()), len))
            .copied()
    }
    fn longest(&self, addr: K) -> Option<(K, u8, V)> {
        (0..=K::BITS).rev().find_map(|len| {
            let k = mask(addr.to_left(), len.into());
            self.map.get(&(k, len)).map(|v| (K::from_left(k), len, *v))
        })
    }
    fn all(&self) -> Vec<(K, u8, V)> {
        self.map
            .iter()
            .map(|(&(k, l), &v)| (K::from_left(k), l, v))
            .collect()
    }
}

fn p(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

#[test]
fn bit_helpers() {
    for r in 1..=6 {
        for b in 0..(1 << r) {
            assert_eq!(unpos(pos(r, b)), (r, b));
        }
    }
    assert_eq!(pos(6, 63), 125);
    for (c, m) in COVER.iter().enumerate() {
        assert_eq!(m.count_ones(), 6, "chunk {c}");
    }
    assert_eq!(mask(u128::MAX, 0), 0);
    assert_eq!(mask(u128::MAX, 128), u128::MAX);
    assert_eq!(mask(u128::MAX, 1), 1 << 127);
}

#[test]
fn empty_table() {
    let t: Lpm4<u32> = Lpm4::new();
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u32::MAX), None);
    assert_eq!(t.longest_match(7), None);
    assert_eq!(t.get_exact(0, 0), None);
    assert!(t.is_empty());
    assert_eq!(t.iter().count(), 0);
    t.check_invariants();
}

#[test]
fn ipv4_basics() {
    let mut t: Lpm4<u32> = Lpm4::new();
    assert_eq!(t.insert(v4("10.0.0.0"), 8, 1).unwrap(), None);
    assert_eq!(t.insert(v4("10.1.0.0"), 16, 2).unwrap(), None);
    assert_eq!(t.insert(v4("10.1.2.0"), 24, 3).unwrap(), None);
    assert_eq!(t.insert(v4("10.1.2.3"), 32, 4).unwrap(), None);
    assert_eq!(t.lookup(v4("10.9.9.9")), Some(1));
    assert_eq!(t.lookup(v4("10.1.9.9")), Some(2));
    assert_eq!(t.lookup(v4("10.1.2.9")), Some(3));
    assert_eq!(t.lookup(v4("10.1.2.3")), Some(4));
    assert_eq!(t.lookup(v4("11.0.0.0")), None);
    assert_eq!(
        t.longest_match(v4("10.1.2.200")),
        Some((v4("10.1.2.0"), 24, 3))
    );
    // Re-insert returns the old value; the count does not change.
    assert_eq!(t.insert(v4("10.1.2.0"), 24, 30).unwrap(), Some(3));
    assert_eq!(t.len(), 4);
    // Host bits are ignored.
    assert_eq!(t.get_exact(v4("10.1.2.77"), 24), Some(30));
    assert_eq!(t.remove(v4("10.1.2.0"), 24), Some(30));
    assert_eq!(t.remove(v4("10.1.2.0"), 24), None);
    assert_eq!(t.lookup(v4("10.1.2.9")), Some(2));
    assert_eq!(t.lookup(v4("10.1.2.3")), Some(4));
    assert_eq!(t.len(), 3);
    t.check_invariants();
}

#[test]
fn default_route_and_bad_lengths() {
    let mut t: Lpm4<u8> = Lpm4::new();
    assert_eq!(t.insert(0xdead_beef, 0, 9).unwrap(), None);
    assert_eq!(t.lookup(1), Some(9));
    assert_eq!(t.longest_match(1), Some((0, 0, 9)));
    assert!(t.insert(0, 33, 1).is_err());
    assert_eq!(t.remove(0, 33), None);
    assert_eq!(t.get_exact(0, 33), None);
    assert_eq!(t.insert(0x8000_0000, 1, 1).unwrap(), None);
    assert_eq!(t.lookup(0x8000_0001), Some(1));
    assert_eq!(t.lookup(0x7fff_ffff), Some(9));
    assert_eq!(t.remove(0, 0), Some(9));
    assert_eq!(t.lookup(0x7fff_ffff), None);
    assert_eq!(t.len(), 1);
    let mut t6: Lpm6<u8> = Lpm6::new();
    assert!(t6.insert(0, 129, 1).is_err());
    assert_eq!(t6.insert(u128::MAX, 128, 1).unwrap(), None);
    assert_eq!(t6.lookup(u128::MAX), Some(1));
    assert_eq!(t6.lookup(u128::MAX - 1), None);
}

#[test]
fn tails_split_and_collapse() {
    let mut t: Lpm6<u32> = Lpm6::new();
    let a = v6("2001:db8:1:2::");
    let b = v6("2001:db8:1:3::");
    t.insert(a, 64, 1).unwrap();
    t.check_invariants();
    // A second prefix sharing 63 bits splits the tail into a chain of levels.
    t.insert(b, 64, 2).unwrap();
    t.check_invariants();
    t.insert(v6("2001:db8:1:2::1"), 128, 3).unwrap();
    t.check_invariants();
    assert_eq!(t.lookup(v6("2001:db8:1:2::5")), Some(1));
    assert_eq!(t.lookup(v6("2001:db8:1:3::5")), Some(2));
    assert_eq!(t.lookup(v6("2001:db8:1:2::1")), Some(3));
    assert_eq!(t.lookup(v6("2001:db8:1:4::")), None);
    assert_eq!(t.remove(b, 64), Some(2));
    t.check_invariants();
    assert_eq!(t.remove(v6("2001:db8:1:2::1"), 128), Some(3));
    t.check_invariants();
    assert_eq!(t.lookup(v6("2001:db8:1:2::1")), Some(1));
    assert_eq!(t.remove(a, 64), Some(1));
    t.check_invariants();
    assert!(t.is_empty());
}

#[test]
fn iter_is_in_address_then_length_order() {
    let mut t: Lpm4<u32> = Lpm4::new();
    let mut r: Reference<u32, u32> = Reference::default();
    for (i, s) in [
        "10.0.0.0/8",
        "0.0.0.0/0",
        "10.0.0.0/16",
        "10.0.0.0/9",
        "192.168.1.0/24",
        "10.128.0.0/9",
        "10.0.0.1/32",
        "128.0.0.0/1",
        "10.0.0.0/32",
    ]
    .iter()
    .enumerate()
    {
        let pf = p(s);
        let IpAddr::V4(a) = pf.addr() else { panic!() };
        t.insert(u32::from(a), pf.len(), i as u32).unwrap();
        r.insert(u32::from(a), pf.len(), i as u32);
    }
    assert_eq!(t.iter().collect::<Vec<_>>(), r.all());
}

#[test]
fn ip_wrapper() {
    let mut t: IpLpm<u16> = IpLpm::new();
    t.insert(p("192.0.2.0/24"), 1).unwrap();
    t.insert(p("2001:db8::/32"), 2).unwrap();
    t.insert(p("2001:db8:0:1::/64"), 3).unwrap();
    assert_eq!(t.lookup("192.0.2.9".parse().unwrap()), Some(1));
    assert_eq!(t.lookup("2001:db8::9".parse().unwrap()), Some(2));
    assert_eq!(
        t.longest_match("2001:db8:0:1::9".parse().unwrap()),
        Some((p("2001:db8:0:1::/64"), 3))
    );
    assert_eq!(t.lookup("198.51.100.1".parse().unwrap()), None);
    assert_eq!(t.get(&p("2001:db8::/32")), Some(2));
    assert_eq!(t.len(), 3);
    let all: Vec<_> = t.iter().collect();
    assert_eq!(
        all,
        vec![
            (p("192.0.2.0/24"), 1),
            (p("2001:db8::/32"), 2),
            (p("2001:db8:0:1::/64"), 3)
        ]
    );
    assert_eq!(t.remove(&p("2001:db8::/32")), Some(2));
    assert_eq!(t.lookup("2001:db8::9".parse().unwrap()), None);
    assert!(t.memory_bytes() > 0);
}

use roamer_test_support::SplitMix64 as Rng;

/// Many random prefixes, then removal of most of them: lookups agree with the reference all
/// along, compaction keeps the pools consistent, and memory comes back down.
#[test]
fn bulk_insert_remove_with_compaction() {
    let mut rng = Rng(7);
    // Wide direct table from 30k prefixes: the table widens on the way up and narrows again
    // (below 15k) on the way down.
    let mut t: Lpm4<u32> = LpmTable::with_large_from(30_000);
    let mut r: Reference<u32, u32> = Reference::default();
    let mut keys = Vec::new();
    for i in 0..60_000u32 {
        let len = [8u8, 12, 16, 18, 20, 22, 23, 24, 24, 24, 28, 32][(rng.next() % 12) as usize];
        let bits = rng.next() as u32;
        assert_eq!(t.insert(bits, len, i).unwrap(), r.insert(bits, len, i));
        keys.push((bits, len));
    }
    t.check_invariants();
    assert_eq!(t.top_bits(), 18);
    let full = t.memory_bytes();
    for _ in 0..20_000 {
        let a = rng.next() as u32;
        assert_eq!(t.longest_match(a), r.longest(a));
    }
    for &(bits, len) in &keys[..55_000] {
        assert_eq!(t.remove(bits, len), r.remove(bits, len));
    }
    t.check_invariants();
    assert_eq!(t.top_bits(), 12);
    assert_eq!(t.len(), r.map.len());
    for _ in 0..20_000 {
        let a = rng.next() as u32;
        assert_eq!(t.longest_match(a), r.longest(a));
    }
    assert_eq!(t.iter().collect::<Vec<_>>(), r.all());
    assert!(
        t.memory_bytes() < full / 2,
        "{} vs {full}",
        t.memory_bytes()
    );
}

#[derive(Debug, Clone)]
enum Op<K> {
    Insert(K, u8, u16),
    Remove(K, u8),
    Lookup(K),
    Get(K, u8),
}

/// Keys drawn near a handful of bases so that prefixes nest, overlap and collide in slots.
fn key4() -> BoxedStrategy<u32> {
    (
        prop::sample::select(vec![0u32, 0x0a00_0000, 0x0a01_0200, 0xc0a8_0000, u32::MAX]),
        prop_oneof![
            Just(0u32),
            0u32..256,
            any::<u32>(),
            (0u32..32).prop_map(|s| 1 << s)
        ],
    )
        .prop_map(|(b, x)| b ^ x)
        .boxed()
}

fn len4() -> BoxedStrategy<u8> {
    prop_oneof![
        0u8..=32,
        prop::sample::select(vec![0u8, 6, 7, 12, 18, 24, 30, 31, 32])
    ]
    .boxed()
}

fn key6() -> BoxedStrategy<u128> {
    (
        prop::sample::select(vec![
            0u128,
            0x2001_0db8_0000_0000_0000_0000_0000_0000,
            0x2001_0db8_0001_0002_0000_0000_0000_0000,
            u128::MAX,
        ]),
        prop_oneof![
            Just(0u128),
            (0u128..256),
            any::<u128>(),
            (0u32..128).prop_map(|s| 1u128 << s),
            any::<u64>().prop_map(u128::from),
        ],
    )
        .prop_map(|(b, x)| b ^ x)
        .boxed()
}

fn len6() -> BoxedStrategy<u8> {
    prop_oneof![
        0u8..=128,
        prop::sample::select(vec![0u8, 32, 48, 56, 63, 64, 65, 120, 126, 127, 128])
    ]
    .boxed()
}

fn ops<K: std::fmt::Debug + Clone>(
    key: impl Strategy<Value = K> + Clone,
    len: impl Strategy<Value = u8> + Clone,
) -> impl Strategy<Value = Vec<Op<K>>> {
    let op = prop_oneof![
        4 => (key.clone(), len.clone(), any::<u16>()).prop_map(|(k, l, v)| Op::Insert(k, l, v)),
        2 => (key.clone(), len.clone()).prop_map(|(k, l)| Op::Remove(k, l)),
        3 => key.clone().prop_map(Op::Lookup),
        1 => (key, len).prop_map(|(k, l)| Op::Get(k, l)),
    ];
    prop::collection::vec(op, 1..300)
}

fn run<K: LpmKey>(ops: Vec<Op<K>>) {
    run_on(LpmTable::new(), ops, 1);
}

/// [`run`] on a table that switches to the wide direct table from 8 prefixes and back below 4;
/// the 256 Ki-entry direct table is checked entry by entry only every `check_every` operations.
fn run_wide<K: LpmKey>(ops: Vec<Op<K>>) {
    run_on(LpmTable::with_large_from(8), ops, 50);
}

fn run_on<K: LpmKey>(mut t: LpmTable<K, u16>, ops: Vec<Op<K>>, check_every: usize) {
    let mut r: Reference<K, u16> = Reference::default();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Insert(k, l, v) => {
                let got = t.insert(k, l, v).unwrap();
                assert_eq!(got, r.insert(k, l, v), "insert {k:?}/{l}");
            }
            Op::Remove(k, l) => assert_eq!(t.remove(k, l), r.remove(k, l), "remove {k:?}/{l}"),
            Op::Lookup(a) => {
                assert_eq!(t.longest_match(a), r.longest(a), "lookup {a:?}");
                assert_eq!(t.lookup(a), r.longest(a).map(|x| x.2));
            }
            Op::Get(k, l) => assert_eq!(t.get_exact(k, l), r.get(k, l), "get {k:?}/{l}"),
        }
        if i % check_every == 0 {
            t.check_invariants();
        }
        assert_eq!(t.len(), r.map.len());
    }
    t.check_invariants();
    assert_eq!(t.iter().collect::<Vec<_>>(), r.all());
    // Batched lookups agree with single ones (bursts of every size up to three rounds).
    let probes: Vec<K> = r.all().iter().map(|p| p.0).collect();
    let mut out = vec![None; probes.len()];
    t.lookup_batch(&probes, &mut out);
    for (a, o) in probes.iter().zip(&out) {
        assert_eq!(*o, t.lookup(*a));
    }
    // Every stored prefix is found by a lookup of its own first and last address.
    for (k, l, _) in r.all() {
        let first = k;
        let last = K::from_left(k.to_left() | u128::MAX.checked_shr(l.into()).unwrap_or(0));
        for a in [first, last] {
            assert_eq!(t.longest_match(a), r.longest(a));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ipv4_matches_reference(ops in ops(key4(), len4())) {
        run::<u32>(ops);
    }

    #[test]
    fn ipv6_matches_reference(ops in ops(key6(), len6())) {
        run::<u128>(ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ipv4_wide_top_matches_reference(ops in ops(key4(), len4())) {
        run_wide::<u32>(ops);
    }

    #[test]
    fn ipv6_wide_top_matches_reference(ops in ops(key6(), len6())) {
        run_wide::<u128>(ops);
    }
}
