//! Longest-prefix-match tables for the IPv4 and IPv6 routing lookups of the forwarding core.
//!
//! The structure is a tree bitmap (Eatherton, Varghese & Dittia, 2004) with poptrie-style
//! (Asai & Ohara, SIGCOMM 2015) 6-bit strides, chosen because it meets three budgets at once:
//!
//! - **Lookup speed.** A node is 32 octets: a 64-bit child bitmap, a 126-bit bitmap of the
//!   prefixes ending inside the stride, and two block indices. A lookup starts from a direct
//!   table over the first 12 bits (poptrie's "direct pointing"), reads one node per further
//!   level, finds the longest local match with one AND against a precomputed mask and a
//!   leading-zero count, indexes children and values by popcount, and reads the value once at
//!   the end. The direct table covers 18 bits instead of 12 once a table holds 256 Ki prefixes,
//!   which takes a level (a dependent miss) off the lookups of the tables where the levels no
//!   longer fit the cache. [`LpmTable::lookup_batch`] runs a burst of up to 64 lookups in
//!   lock-step rounds, each lane prefetching the line it reads in the next round, so that the
//!   misses of the burst overlap; lookups use POPCNT where the CPU has it (checked at run time,
//!   see `cpu.rs`).
//! - **Memory.** Each prefix is stored once (no leaf pushing, no controlled-prefix expansion), and
//!   a subtree holding a single prefix is a *tail*: the prefix itself sits in the child slot
//!   instead of a chain of nearly empty levels, which is what keeps sparse (random or IPv6)
//!   tables within a few dozen octets per prefix.
//! - **Update speed.** Because prefixes are not pushed down, an insert or remove touches one path
//!   and rewrites one small block; no subtree is ever rebuilt.
//!
//! Blocks live in two pools (nodes, values), sized in classes about 1/8 apart so most growth
//! happens in place, with a free list per class; when free space passes an eighth of the live
//! entries the pools are rewritten breadth-first, which both bounds the waste and packs the hot
//! upper levels together.

mod cpu;
mod node;
mod table;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_hal::Prefix;

pub(crate) use cpu::prefetch;
pub use table::{BATCH_LANES, Iter, LpmTable};

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u128 {}
}

/// An address family's key: the address as an unsigned integer, most significant bit first.
pub trait LpmKey: Copy + Eq + std::fmt::Debug + sealed::Sealed {
    /// Address width in bits.
    const BITS: u8;
    /// The key left-aligned in a `u128`, so one trie serves both families.
    fn to_left(self) -> u128;
    fn from_left(key: u128) -> Self;
}

impl LpmKey for u32 {
    const BITS: u8 = 32;
    #[inline(always)]
    fn to_left(self) -> u128 {
        u128::from(self) << 96
    }
    #[inline(always)]
    fn from_left(key: u128) -> Self {
        (key >> 96) as u32
    }
}

impl LpmKey for u128 {
    const BITS: u8 = 128;
    #[inline(always)]
    fn to_left(self) -> u128 {
        self
    }
    #[inline(always)]
    fn from_left(key: u128) -> Self {
        key
    }
}

/// IPv4 table keyed by `u32::from(Ipv4Addr)`.
pub type Lpm4<V> = LpmTable<u32, V>;
/// IPv6 table keyed by `u128::from(Ipv6Addr)`.
pub type Lpm6<V> = LpmTable<u128, V>;

/// One table per family behind the HAL's types: what a VRF's routing table needs.
#[derive(Debug, Clone)]
pub struct IpLpm<V: Copy> {
    v4: Lpm4<V>,
    v6: Lpm6<V>,
}

impl<V: Copy> Default for IpLpm<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Copy> IpLpm<V> {
    pub fn new() -> Self {
        Self {
            v4: Lpm4::new(),
            v6: Lpm6::new(),
        }
    }

    pub fn v4(&self) -> &Lpm4<V> {
        &self.v4
    }

    pub fn v6(&self) -> &Lpm6<V> {
        &self.v6
    }

    /// Stores `value` for `prefix`, returning the value it replaced.
    pub fn insert(
        &mut self,
        prefix: Prefix,
        value: V,
    ) -> Result<Option<V>, crate::ForwardingError> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), prefix.len(), value),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), prefix.len(), value),
        }
    }

    pub fn remove(&mut self, prefix: &Prefix) -> Option<V> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.remove(u32::from(a), prefix.len()),
            IpAddr::V6(a) => self.v6.remove(u128::from(a), prefix.len()),
        }
    }

    /// The value stored for exactly `prefix`.
    pub fn get(&self, prefix: &Prefix) -> Option<V> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.get_exact(u32::from(a), prefix.len()),
            IpAddr::V6(a) => self.v6.get_exact(u128::from(a), prefix.len()),
        }
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<V> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }

    /// The longest prefix containing `addr`, with its value (for `trace` and `show`).
    pub fn longest_match(&self, addr: IpAddr) -> Option<(Prefix, V)> {
        match addr {
            IpAddr::V4(a) => {
                let (bits, len, v) = self.v4.longest_match(u32::from(a))?;
                Some((Prefix::new(Ipv4Addr::from(bits).into(), len).ok()?, v))
            }
            IpAddr::V6(a) => {
                let (bits, len, v) = self.v6.longest_match(u128::from(a))?;
                Some((Prefix::new(Ipv6Addr::from(bits).into(), len).ok()?, v))
            }
        }
    }

    /// Prefixes of both families, IPv4 first, each in address order.
    pub fn iter(&self) -> impl Iterator<Item = (Prefix, V)> + '_ {
        let v4 = self
            .v4
            .iter()
            .filter_map(|(b, l, v)| Some((Prefix::new(Ipv4Addr::from(b).into(), l).ok()?, v)));
        let v6 = self
            .v6
            .iter()
            .filter_map(|(b, l, v)| Some((Prefix::new(Ipv6Addr::from(b).into(), l).ok()?, v)));
        v4.chain(v6)
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }
}
