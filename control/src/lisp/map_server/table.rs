//! The registration table: slab of slots, interned sources, per-family index and expiry queue.

use super::*;

// --- The registration table ------------------------------------------------------------------
//
// Sized for a million registered host EIDs: a registration is 20 octets (who registered it and
// with which locators is interned once per ETR, see `Sources`), a prefix's registrations sit in
// one 48-octet slot of a slab (one registration inline, more in a boxed slice), and the index is
// one ordered map per prefix length from address to slot (about 12–20 octets a prefix), which
// answers exact, longest-prefix and range queries in O(log n) per length in use. Expiry is a
// queue of (deadline, slot) ordered by time (16 octets a prefix).

/// A time in milliseconds as two `u32` halves, so that a [`Reg`] packs into 20 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ms([u32; 2]);

impl Ms {
    pub(super) fn new(ms: u64) -> Self {
        Ms([(ms >> 32) as u32, ms as u32])
    }

    pub(super) fn get(self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }
}

/// One registration as stored: `source` (a [`Sources`] id) says who registered it and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reg {
    pub(super) source: u32,
    pub(super) first: Ms,
    pub(super) last: Ms,
}

impl Reg {
    pub(super) fn first_ms(&self) -> u64 {
        self.first.get()
    }

    pub(super) fn last_ms(&self) -> u64 {
        self.last.get()
    }
}

/// The registrations of one prefix in (site, registrar) order: one inline, else a boxed slice
/// (empty: a free slot).
#[derive(Debug, Clone)]
pub(super) enum Regs {
    One(Reg),
    Many(Box<[Reg]>),
}

impl Regs {
    pub(super) fn empty() -> Self {
        Regs::Many(Box::default())
    }

    pub(super) fn as_slice(&self) -> &[Reg] {
        match self {
            Regs::One(r) => std::slice::from_ref(r),
            Regs::Many(list) => list,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub(super) fn from_vec(mut list: Vec<Reg>) -> Self {
        match (list.pop(), list.is_empty()) {
            (Some(one), true) => Regs::One(one),
            (Some(last), false) => {
                list.push(last);
                Regs::Many(list.into_boxed_slice())
            }
            (None, _) => Regs::empty(),
        }
    }
}

/// A registered prefix.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) prefix: Prefix,
    /// Bumped whenever the slot's entry in the expiry queue is replaced: older entries are stale.
    pub(super) generation: u32,
    pub(super) regs: Regs,
}

/// Who registered and how: the same for every prefix an ETR registers with one locator set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Source {
    pub(super) site: u32,
    pub(super) registrar: SocketAddr,
    pub(super) locators: Box<[Locator]>,
    pub(super) proxy_reply: bool,
    pub(super) reliable: bool,
}

/// Interned [`Source`]s with reference counts; ids of unused ones are reused.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources {
    pub(super) list: Vec<(Source, usize)>,
    pub(super) ids: HashMap<Source, u32>,
    pub(super) free: Vec<u32>,
    /// References (registrations) per site, for the site's registration limit.
    pub(super) per_site: Vec<usize>,
}

impl Sources {
    /// The id of `source`, one more reference to it.
    pub(super) fn intern(&mut self, source: Source) -> u32 {
        let site = source.site as usize;
        if self.per_site.len() <= site {
            self.per_site.resize(site + 1, 0);
        }
        self.per_site[site] += 1;
        if let Some(&id) = self.ids.get(&source) {
            if let Some(entry) = self.list.get_mut(id as usize) {
                entry.1 += 1;
            }
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(entry) = self.list.get_mut(id as usize) {
                    *entry = (source.clone(), 1);
                }
                id
            }
            None => {
                self.list.push((source.clone(), 1));
                (self.list.len() - 1) as u32
            }
        };
        self.ids.insert(source, id);
        id
    }

    /// One reference less to `id`.
    pub(super) fn release(&mut self, id: u32) {
        let Some((source, refs)) = self.list.get_mut(id as usize) else {
            return;
        };
        if let Some(n) = self.per_site.get_mut(source.site as usize) {
            *n = n.saturating_sub(1);
        }
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.ids.remove(source);
            source.locators = Box::default();
            self.free.push(id);
        }
    }

    pub(super) fn get(&self, id: u32) -> &Source {
        &self.list[id as usize].0
    }

    pub(super) fn site_regs(&self, site: u32) -> usize {
        self.per_site.get(site as usize).copied().unwrap_or(0)
    }
}

/// Every registration of every site.
#[derive(Clone, Default)]
pub(super) struct Table {
    pub(super) slots: Vec<Slot>,
    /// Slots with no registrations, to be reused.
    pub(super) free: Vec<u32>,
    pub(super) index: Index,
    pub(super) sources: Sources,
    /// (deadline, slot, generation): a slot's deadline is at most the expiry of its oldest
    /// registration; entries whose generation is not the slot's are stale and skipped.
    pub(super) queue: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("prefixes", &(self.slots.len() - self.free.len()))
            .field("sources", &self.sources.ids.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Table {
    /// The registration as [`MapServer::lookup`] reports it.
    pub(super) fn registration(&self, r: &Reg) -> Registration {
        let s = self.sources.get(r.source);
        Registration {
            registrar: s.registrar,
            locators: s.locators.to_vec(),
            first_ms: r.first_ms(),
            last_ms: r.last_ms(),
            proxy_reply: s.proxy_reply,
            reliable: s.reliable,
        }
    }

    pub(super) fn regs(&self, id: u32) -> &[Reg] {
        self.slots
            .get(id as usize)
            .map_or(&[], |s| s.regs.as_slice())
    }

    /// When the slot's oldest registration was last refreshed.
    pub(super) fn oldest(&self, id: u32) -> Option<u64> {
        self.regs(id).iter().map(Reg::last_ms).min()
    }

    pub(super) fn has_site(&self, id: u32, site: u32) -> bool {
        self.regs(id)
            .iter()
            .any(|r| self.sources.get(r.source).site == site)
    }

    /// Sets each registration of slot `id` as last refreshed at `when(source, registration)`
    /// (never earlier than it was).
    pub(super) fn refresh(&mut self, id: u32, when: impl Fn(&Source, &Reg) -> u64) {
        let Table { slots, sources, .. } = self;
        let Some(slot) = slots.get_mut(id as usize) else {
            return;
        };
        let update = |r: &mut Reg| {
            let t = when(sources.get(r.source), r);
            if t > r.last_ms() {
                r.last = Ms::new(t);
            }
        };
        match &mut slot.regs {
            Regs::One(r) => update(r),
            Regs::Many(list) => list.iter_mut().for_each(update),
        }
    }

    /// Keeps the registrations of slot `id` that `keep` accepts; returns how many it dropped.
    /// A slot left empty stays allocated until [`Table::free_if_empty`].
    pub(super) fn retain(&mut self, id: u32, mut keep: impl FnMut(&Source, &Reg) -> bool) -> usize {
        let Table { slots, sources, .. } = self;
        let Some(slot) = slots.get_mut(id as usize) else {
            return 0;
        };
        let verdicts: Vec<bool> = match &slot.regs {
            Regs::One(r) => vec![keep(sources.get(r.source), r)],
            Regs::Many(list) => list
                .iter()
                .map(|r| keep(sources.get(r.source), r))
                .collect(),
        };
        let dropped = verdicts.iter().filter(|k| !**k).count();
        if dropped == 0 {
            return 0;
        }
        let mut kept = Vec::with_capacity(verdicts.len() - dropped);
        for (r, k) in slot.regs.as_slice().iter().zip(verdicts) {
            if k {
                kept.push(*r);
            } else {
                sources.release(r.source);
            }
        }
        slot.regs = Regs::from_vec(kept);
        dropped
    }

    /// Adds `reg` to `prefix` (slot `slot` if it has one), in (site, registrar) order; `oldest`
    /// is [`Table::oldest`] of the slot as it was before this register changed it.
    pub(super) fn add(&mut self, prefix: Prefix, slot: Option<u32>, reg: Reg, oldest: Option<u64>) {
        let (id, new) = match slot {
            Some(id) => (id, false),
            None => (self.alloc(prefix), true),
        };
        let Table { slots, sources, .. } = self;
        let Some(s) = slots.get_mut(id as usize) else {
            return;
        };
        let key = |r: &Reg| {
            let source = sources.get(r.source);
            (source.site, source.registrar)
        };
        s.regs = match std::mem::replace(&mut s.regs, Regs::empty()) {
            Regs::Many(list) if list.is_empty() => Regs::One(reg),
            Regs::One(r) if key(&r) < key(&reg) => Regs::Many(Box::new([r, reg])),
            Regs::One(r) => Regs::Many(Box::new([reg, r])),
            Regs::Many(list) => {
                let mut list = list.into_vec();
                let at = list.partition_point(|r| key(r) < key(&reg));
                list.insert(at, reg);
                Regs::Many(list.into_boxed_slice())
            }
        };
        // The queued deadline stays early enough unless this registration is older than the
        // slot's oldest was (a clock that went back) or the slot is new.
        if new || oldest.is_none_or(|o| reg.last_ms() < o) {
            self.queue(id);
        }
    }

    /// A slot for `prefix`, indexed.
    pub(super) fn alloc(&mut self, prefix: Prefix) -> u32 {
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(s) = self.slots.get_mut(id as usize) {
                    s.prefix = prefix;
                }
                id
            }
            None => {
                self.slots.push(Slot {
                    prefix,
                    generation: 0,
                    regs: Regs::empty(),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(prefix, id);
        id
    }

    /// Frees slot `id` if it has no registrations left; true if it did.
    pub(super) fn free_if_empty(&mut self, id: u32) -> bool {
        let Some(s) = self.slots.get(id as usize) else {
            return false;
        };
        if !s.regs.is_empty() {
            return false;
        }
        if self.index.remove(&s.prefix) == Some(id) {
            self.free.push(id);
        }
        true
    }

    /// Queues slot `id` at the expiry of its oldest registration, replacing its queued entry.
    pub(super) fn queue(&mut self, id: u32) {
        let Some(oldest) = self.oldest(id) else {
            return;
        };
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        s.generation = s.generation.wrapping_add(1);
        let deadline = oldest.saturating_add(REGISTRATION_LIFETIME_MS);
        self.queue.push(Reverse((deadline, id, s.generation)));
    }

    /// Takes the next slot whose queued deadline is `now_ms` or earlier (stale entries are
    /// dropped on the way); the caller re-queues it if it keeps registrations.
    pub(super) fn next_due(&mut self, now_ms: u64) -> Option<u32> {
        while let Some(&Reverse((deadline, id, generation))) = self.queue.peek() {
            if deadline > now_ms {
                return None;
            }
            self.queue.pop();
            if self
                .slots
                .get(id as usize)
                .is_some_and(|s| s.generation == generation && !s.regs.is_empty())
            {
                return Some(id);
            }
        }
        None
    }

    /// Follows a site change: `to(old site, prefix)` is the registration's new site, or `None`
    /// to drop it. O(n); configuration changes are rare.
    pub(super) fn remap(&mut self, to: impl Fn(u32, Prefix) -> Option<u32>) {
        let old = std::mem::take(&mut self.sources);
        for id in 0..self.slots.len() as u32 {
            let Some(slot) = self.slots.get(id as usize) else {
                continue;
            };
            if slot.regs.is_empty() {
                continue;
            }
            let prefix = slot.prefix;
            let mut kept: Vec<Reg> = Vec::new();
            for r in slot.regs.as_slice() {
                let source = old.get(r.source);
                if let Some(site) = to(source.site, prefix) {
                    let source = self.sources.intern(Source {
                        site,
                        ..source.clone()
                    });
                    kept.push(Reg { source, ..*r });
                }
            }
            let sources = &self.sources;
            kept.sort_by_key(|r| {
                let s = sources.get(r.source);
                (s.site, s.registrar)
            });
            if let Some(slot) = self.slots.get_mut(id as usize) {
                slot.regs = Regs::from_vec(kept);
            }
            self.free_if_empty(id);
        }
    }
}

/// An address family's address as an unsigned integer, most significant bit first.
pub(super) trait Bits: Copy + Ord {
    const WIDTH: u8;
    /// The first `len` bits, the rest cleared.
    fn masked(self, len: u8) -> Self;
    /// The first `len` bits, the rest set: the last address of the prefix.
    fn last(self, len: u8) -> Self;
    /// Leading bits `self` and `other` share.
    fn common(self, other: Self) -> u8;
}

/// One implementation for both address widths (IPv4 as u32, IPv6 as u128).
macro_rules! impl_bits {
    ($t:ty, $width:expr) => {
        impl Bits for $t {
            const WIDTH: u8 = $width;

            fn masked(self, len: u8) -> Self {
                match len {
                    0 => 0,
                    1..$width => self & (<$t>::MAX << ($width - len)),
                    _ => self,
                }
            }

            fn last(self, len: u8) -> Self {
                match len {
                    0 => <$t>::MAX,
                    1..$width => self | (<$t>::MAX >> len),
                    _ => self,
                }
            }

            fn common(self, other: Self) -> u8 {
                (self ^ other).leading_zeros() as u8
            }
        }
    };
}

impl_bits!(u32, 32);
impl_bits!(u128, 128);

/// The registered prefixes of one family: per prefix length, an ordered map from the prefix's
/// address to its slot, and which lengths are in use.
#[derive(Debug, Clone)]
pub(super) struct Family<K> {
    pub(super) by_len: Vec<BTreeMap<K, u32>>,
    pub(super) used: [u64; 3],
}

impl<K: Bits> Default for Family<K> {
    fn default() -> Self {
        Self {
            by_len: (0..=K::WIDTH).map(|_| BTreeMap::new()).collect(),
            used: [0; 3],
        }
    }
}

impl<K: Bits> Family<K> {
    pub(super) fn is_used(&self, len: u8) -> bool {
        (self.used[usize::from(len / 64)] >> (len % 64)) & 1 == 1
    }

    pub(super) fn map(&self, len: u8) -> Option<&BTreeMap<K, u32>> {
        self.by_len.get(usize::from(len))
    }

    pub(super) fn insert(&mut self, key: K, len: u8, id: u32) {
        if let Some(map) = self.by_len.get_mut(usize::from(len)) {
            map.insert(key, id);
            self.used[usize::from(len / 64)] |= 1 << (len % 64);
        }
    }

    pub(super) fn remove(&mut self, key: K, len: u8) -> Option<u32> {
        let map = self.by_len.get_mut(usize::from(len))?;
        let id = map.remove(&key);
        if map.is_empty() {
            self.used[usize::from(len / 64)] &= !(1 << (len % 64));
        }
        id
    }

    pub(super) fn get(&self, key: K, len: u8) -> Option<u32> {
        self.map(len)?.get(&key).copied()
    }

    /// Prefix lengths in use, longest first.
    pub(super) fn lengths(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=K::WIDTH).rev().filter(|&len| self.is_used(len))
    }

    /// Slots of the prefixes containing `addr`, longest first.
    pub(super) fn matching(&self, addr: K) -> impl Iterator<Item = u32> + '_ {
        self.lengths()
            .filter_map(move |len| self.get(addr.masked(len), len))
    }

    /// Slots of the prefixes inside `key/len` and longer than `len`, shortest first.
    pub(super) fn inside(&self, key: K, len: u8) -> impl Iterator<Item = u32> + '_ {
        let (low, high) = (key.masked(len), key.last(len));
        let mut lengths: Vec<u8> = self.lengths().filter(|&l| l > len).collect();
        lengths.reverse();
        lengths
            .into_iter()
            .filter_map(move |l| self.map(l))
            .flat_map(move |map| map.range(low..=high).map(|(_, &id)| id))
    }

    /// The largest `min(q.len, bits q shares with addr)` over the prefixes `q` longer than
    /// `floor`: per length, only the neighbours of `addr` in address order can be largest.
    pub(super) fn deepest(&self, addr: K, floor: Option<u8>) -> Option<u8> {
        let mut best: Option<u8> = None;
        for len in self.lengths() {
            if floor.is_some_and(|f| len <= f) || best.is_some_and(|b| len <= b) {
                break;
            }
            let Some(map) = self.map(len) else {
                continue;
            };
            let key = addr.masked(len);
            let below = map.range(..=key).next_back();
            let above = map.range(key..).next();
            for (q, _) in below.into_iter().chain(above) {
                let depth = len.min(addr.common(*q));
                best = best.max(Some(depth));
            }
        }
        best
    }
}

/// The registered prefixes of both families.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    pub(super) v4: Family<u32>,
    pub(super) v6: Family<u128>,
}

impl Index {
    pub(super) fn insert(&mut self, p: Prefix, id: u32) {
        match p.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), p.len(), id),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), p.len(), id),
        }
    }

    pub(super) fn remove(&mut self, p: &Prefix) -> Option<u32> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.remove(u32::from(a), p.len()),
            IpAddr::V6(a) => self.v6.remove(u128::from(a), p.len()),
        }
    }

    pub(super) fn get(&self, p: &Prefix) -> Option<u32> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.get(u32::from(a), p.len()),
            IpAddr::V6(a) => self.v6.get(u128::from(a), p.len()),
        }
    }

    /// The first `Some` that `f` makes of the slots of the prefixes containing `ip`, longest
    /// prefix first.
    pub(super) fn find_longest<R>(&self, ip: IpAddr, f: impl FnMut(u32) -> Option<R>) -> Option<R> {
        match ip {
            IpAddr::V4(a) => self.v4.matching(u32::from(a)).find_map(f),
            IpAddr::V6(a) => self.v6.matching(u128::from(a)).find_map(f),
        }
    }

    /// Runs `f` on the slot of every prefix strictly inside `p` until it breaks.
    pub(super) fn each_inside(
        &self,
        p: Prefix,
        f: impl FnMut(u32) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.inside(u32::from(a), p.len()).try_for_each(f),
            IpAddr::V6(a) => self.v6.inside(u128::from(a), p.len()).try_for_each(f),
        }
    }

    /// [`Family::deepest`] in the family of `ip`.
    pub(super) fn deepest(&self, ip: IpAddr, floor: Option<u8>) -> Option<u8> {
        match ip {
            IpAddr::V4(a) => self.v4.deepest(u32::from(a), floor),
            IpAddr::V6(a) => self.v6.deepest(u128::from(a), floor),
        }
    }
}
