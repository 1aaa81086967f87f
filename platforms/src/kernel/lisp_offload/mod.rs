//! LISP data path in eBPF for the kernel backend: the ITR and ETR programs of
//! `platforms/bpf/lisp_tc.c` at TC ingress (TCX links), their maps programmed from HAL table
//! operations, their events turned into [`HalEvent`]s and their per-CPU counters summed.
//!
//! The kernel backend owns the rest (links, addresses, routes — a LISP route is a kernel
//! blackhole route, which is what sends a packet to the ITR's map-cache lookup). It attaches in
//! the network namespace of the calling thread (ifindexes are that namespace's); detaching closes
//! the TCX links, from any thread, and the kernel closes them itself when the process dies.
//! Setup for the kernel backend: `load`, `attach_eid_facing` / `attach_underlay`,
//! `set_addresses`, `set_subnets` (the EID-facing subnets, for dynamic-EID detection across
//! subnets), then table operations through `apply`; poll `event_fd` and `drain_events`.
//!
//! Differences from the software core:
//! - a map-cache miss drops the packet (the software core holds it until the Map-Reply);
//! - a packet too big for the underlay MTU gets ICMP too-big (DF set, IPv6) or is cut into
//!   fragments (DF clear) as in the software core, but one fragment per pass: the rest goes back
//!   to the interface's ingress as a marked clone; IPv4 packets with options are not cut
//!   (dropped, counted `too-big-to-encapsulate`);
//! - a host that moved away is relayed to its new locators as in the software core, except a
//!   GSO packet (the kernel refuses to nest its tunnel offload): dropped, counted `no-headroom`;
//! - ICMP errors (too big, time exceeded) are rate-limited per sender (the software core limits
//!   only too-big); the inner IPv4 header checksum is checked by the kernel, not here;
//! - over an IPv6 underlay, GSO packets and inner packets whose L4 checksum does not cover them
//!   (IPv4 UDP without checksum, fragments, IPv6 extension headers, other protocols) are sent
//!   with a zero outer UDP checksum (RFC 6935/6936); the software core always computes one;
//! - the map-cache, database and away tries are keyed by EID prefix, the instance-ID being a
//!   value (as the software core's lookup by destination), so two instance-IDs with the same
//!   prefix share one slot (the last one written is used).

mod layout;
mod sys;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use aya::Ebpf;
use aya::maps::lpm_trie::Key;
use aya::maps::{Array, HashMap as BpfHashMap, LpmTrie, MapData, PerCpuArray, RingBuf};
use aya::programs::{SchedClassifier, TcAttachType};
use roamer_hal::{
    Counter, HalError, HalEvent, Iid, L3Interface, OpAction, Prefix, TableEntry, TableKey,
    TableKind, TableOp,
};

use super::tc_hook::{self, TcLink};
use crate::PlatformError;
use layout::{ADDR_LEN, CONFIG_LEN, MC_VAL_LEN};

/// Map capacities (`lisp_maps.h`), reported as "table full".
pub const MAP_CACHE_CAPACITY: u32 = 65_536;
pub const DATABASE_CAPACITY: u32 = 4_096;
pub const AWAY_CAPACITY: u32 = 16_384;
pub const DYNAMIC_RANGE_CAPACITY: u32 = 256;
pub const ADDRESS_CAPACITY: u32 = 256;
pub const SUBNET_CAPACITY: u32 = 256;

/// The software core's defaults (forwarding/src/pipeline/mod.rs).
const MISS_INTERVAL_MS: u64 = 1_000;
const EID_REFRESH_MS: u64 = 10_000;
const AWAY_REDETECT_MS: u64 = 100;
const TOO_BIG_INTERVAL_MS: u64 = 100;
const FLOW_SEED: u32 = 0x9e37_79b9;

const BACKEND: &str = "kernel";
const LISP_OBJECT: &str = "the LISP eBPF data path";
const SCOPE: &str = "the kernel eBPF data path";
const ITR: &str = "lisp_itr";
const ETR: &str = "lisp_etr";

/// Removes the `cls_bpf` filters a killed run left on `device` (TCX links go with the
/// process; these stay). Returns how many kinds were found.
pub fn remove_leftover_filters(device: &str) -> Result<usize, PlatformError> {
    tc_hook::remove_leftovers(
        device,
        &[(ITR, TcAttachType::Ingress), (ETR, TcAttachType::Ingress)],
    )
}

/// The tables this module holds.
const KINDS: [TableKind; 4] = [
    TableKind::LispDatabase,
    TableKind::LispMapCache,
    TableKind::DynamicEidRange,
    TableKind::AwayEntry,
];

pub struct LispOffload {
    ebpf: Ebpf,
    map_cache: LpmTrie<MapData, [u8; 20], [u8; MC_VAL_LEN]>,
    database: LpmTrie<MapData, [u8; 20], u32>,
    away: LpmTrie<MapData, [u8; 20], u32>,
    dyn_ranges: LpmTrie<MapData, [u8; 24], [u8; 4]>,
    subnets: LpmTrie<MapData, [u8; 24], u8>,
    own_addrs: BpfHashMap<MapData, [u8; ADDR_LEN], u32>,
    source_rloc: BpfHashMap<MapData, [u8; 8], [u8; ADDR_LEN]>,
    config: Array<MapData, [u8; CONFIG_LEN]>,
    counters: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    attached: Vec<TcLink>,
    /// EID-facing interfaces: ifindex → the HAL's name for it.
    eid_ifaces: HashMap<u32, L3Interface>,
    /// What the HAL programmed, per table (entries(), Exists/NotFound, the map name of a
    /// dynamic-EID event).
    tables: BTreeMap<TableKind, BTreeMap<TableKey, TableEntry>>,
    own_keys: BTreeSet<[u8; ADDR_LEN]>,
    source_keys: BTreeSet<[u8; 8]>,
    subnet_keys: BTreeSet<(u32, [u8; 24])>,
}

fn refused(
    what: impl Into<String>,
    feature: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> PlatformError {
    PlatformError::EbpfRefused {
        object: LISP_OBJECT,
        what: what.into(),
        feature,
        source: Box::new(e),
    }
}

fn map_error(map: &'static str, e: aya::maps::MapError) -> HalError {
    HalError::Backend {
        backend: BACKEND.into(),
        detail: format!("eBPF map {map}: {e}"),
    }
}

/// The size of each LISP table's eBPF map: the tables' capacities on this backend.
pub fn capacities() -> [(TableKind, u32); 4] {
    [
        TableKind::LispMapCache,
        TableKind::LispDatabase,
        TableKind::AwayEntry,
        TableKind::DynamicEidRange,
    ]
    .map(|k| (k, capacity(k)))
}

fn capacity(kind: TableKind) -> u32 {
    match kind {
        TableKind::LispMapCache => MAP_CACHE_CAPACITY,
        TableKind::LispDatabase => DATABASE_CAPACITY,
        TableKind::AwayEntry => AWAY_CAPACITY,
        _ => DYNAMIC_RANGE_CAPACITY,
    }
}

fn table_full(table: TableKind, capacity: u32) -> HalError {
    HalError::TableFull {
        table,
        scope: SCOPE.into(),
        capacity,
    }
}

/// The EID prefix a LISP table entry occupies in its trie.
fn lisp_prefix(entry: &TableEntry) -> Option<Prefix> {
    match entry {
        TableEntry::LispDatabase { eid, .. }
        | TableEntry::LispMapCache { eid, .. }
        | TableEntry::AwayEntry { eid, .. } => Some(*eid),
        _ => None,
    }
}

impl LispOffload {
    /// Loads programs and maps, attaches nothing.
    pub fn load() -> Result<Self, PlatformError> {
        let bytes =
            crate::bpf_objects::LISP_TC.map_err(|reason| PlatformError::EbpfObjectMissing {
                object: LISP_OBJECT,
                reason,
            })?;
        Self::load_object(bytes)
    }

    fn load_object(bytes: &[u8]) -> Result<Self, PlatformError> {
        let mut ebpf = Ebpf::load(bytes).map_err(|e| {
            refused(
                "loading the object and creating its maps",
                "BTF, LPM-trie and ring-buffer maps (Linux 5.8 or later)",
                e,
            )
        })?;
        for name in [ITR, ETR] {
            let program: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(PlatformError::EbpfObjectIncomplete { missing: name })?
                .try_into()
                .map_err(|e| refused(format!("program {name}"), "TC classifier programs", e))?;
            program.load().map_err(|e| {
                refused(
                    format!("verifying {name}"),
                    "bpf_fib_lookup, bpf_redirect_neigh and bpf_skb_adjust_room with \
                     decapsulation flags (Linux 6.3 or later)",
                    e,
                )
            })?;
        }
        fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
            ebpf: &mut Ebpf,
            name: &'static str,
        ) -> Result<T, PlatformError> {
            let map = ebpf
                .take_map(name)
                .ok_or(PlatformError::EbpfObjectIncomplete { missing: name })?;
            T::try_from(map).map_err(|e| refused(format!("map {name}"), "BPF maps", e))
        }
        let mut offload = LispOffload {
            map_cache: take(&mut ebpf, "map_cache")?,
            database: take(&mut ebpf, "database")?,
            away: take(&mut ebpf, "away")?,
            dyn_ranges: take(&mut ebpf, "dyn_ranges")?,
            subnets: take(&mut ebpf, "subnets")?,
            own_addrs: take(&mut ebpf, "own_addrs")?,
            source_rloc: take(&mut ebpf, "source_rloc")?,
            config: take(&mut ebpf, "config")?,
            counters: take(&mut ebpf, "counters")?,
            events: take(&mut ebpf, "events")?,
            ebpf,
            attached: Vec::new(),
            eid_ifaces: HashMap::new(),
            tables: KINDS.iter().map(|k| (*k, BTreeMap::new())).collect(),
            own_keys: BTreeSet::new(),
            source_keys: BTreeSet::new(),
            subnet_keys: BTreeSet::new(),
        };
        offload
            .set_intervals(MISS_INTERVAL_MS, EID_REFRESH_MS)
            .map_err(PlatformError::Hal)?;
        Ok(offload)
    }

    /// The rate limits of the events (the software core's `miss_interval_ms` and
    /// `eid_refresh_ms`); load() sets the software core's defaults.
    pub fn set_intervals(&mut self, miss_ms: u64, eid_refresh_ms: u64) -> Result<(), HalError> {
        let value = layout::config(
            miss_ms,
            eid_refresh_ms,
            AWAY_REDETECT_MS,
            TOO_BIG_INTERVAL_MS,
            FLOW_SEED,
        );
        self.config
            .set(0, value, 0)
            .map_err(|e| map_error("config", e))
    }

    fn attach(&mut self, ifindex: u32, program: &'static str) -> Result<(), PlatformError> {
        if self
            .attached
            .iter()
            .any(|a| a.ifindex == ifindex && a.program == program)
        {
            return Ok(());
        }
        let name = sys::if_name(ifindex).map_err(|source| PlatformError::NoSuchInterface {
            port: format!("ifindex {ifindex}"),
            source,
        })?;
        let link = tc_hook::attach(
            &mut self.ebpf,
            program,
            &name,
            ifindex,
            TcAttachType::Ingress,
        )?;
        self.attached.push(link);
        Ok(())
    }

    /// TC ingress of an EID-facing L3 interface (ITR encapsulation, dynamic-EID detection).
    /// Attached as a TCX link: no clsact qdisc is needed (or created).
    pub fn attach_eid_facing(
        &mut self,
        ifindex: u32,
        iface: L3Interface,
    ) -> Result<(), PlatformError> {
        self.attach(ifindex, ITR)?;
        self.eid_ifaces.insert(ifindex, iface);
        // Dynamic-EID ranges configured before the interface was attached.
        let ranges: Vec<TableEntry> = self
            .table(TableKind::DynamicEidRange)
            .values()
            .filter(|e| matches!(e, TableEntry::DynamicEidRange { iface: i, .. } if *i == iface))
            .cloned()
            .collect();
        for range in &ranges {
            self.program(range).map_err(PlatformError::Hal)?;
        }
        Ok(())
    }

    /// The EID-facing interfaces attached, by ifindex.
    pub fn eid_facing(&self) -> Vec<u32> {
        self.eid_ifaces.keys().copied().collect()
    }

    /// Stops treating `ifindex` as EID-facing: a device that is gone with its program (an
    /// SVI or an HSRP macvlan removed); its dynamic-EID range keys go too.
    pub fn forget_eid_facing(&mut self, ifindex: u32) -> Result<(), PlatformError> {
        let Some(iface) = self.eid_ifaces.get(&ifindex).copied() else {
            return Ok(());
        };
        let eids: Vec<Prefix> = self
            .table(TableKind::DynamicEidRange)
            .values()
            .filter_map(|e| match e {
                TableEntry::DynamicEidRange { iface: i, eid, .. } if *i == iface => Some(*eid),
                _ => None,
            })
            .collect();
        for eid in eids {
            let (len, data) = layout::if_key(ifindex, eid);
            match self.dyn_ranges.remove(&Key::new(len, data)) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(PlatformError::Hal(map_error("dyn_ranges", e))),
            }
        }
        self.eid_ifaces.remove(&ifindex);
        for a in std::mem::take(&mut self.attached) {
            if a.ifindex != ifindex {
                self.attached.push(a);
                continue;
            }
            // Usually the kernel took the program off with the device; a device still there
            // (an interface roamer stopped using) gets it detached now.
            let _ = tc_hook::detach(&mut self.ebpf, a);
        }
        Ok(())
    }

    /// TC ingress of an underlay interface (ETR decapsulation; TCP 4342 to our addresses
    /// dropped).
    pub fn attach_underlay(&mut self, ifindex: u32) -> Result<(), PlatformError> {
        self.attach(ifindex, ETR)
    }

    /// Whether any program is attached.
    pub fn is_attached(&self) -> bool {
        !self.attached.is_empty()
    }

    /// Whether every LISP table is empty.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }

    /// Detaches everything it attached. Also done on Drop.
    pub fn detach_all(&mut self) -> Result<(), PlatformError> {
        let mut first_error = None;
        for a in std::mem::take(&mut self.attached) {
            if let Err(e) = tc_hook::detach(&mut self.ebpf, a)
                && first_error.is_none()
            {
                first_error = Some(e);
            }
        }
        // The ranges were keyed by ifindexes that may come back as other interfaces.
        let ranges: Vec<TableEntry> = self
            .table(TableKind::DynamicEidRange)
            .values()
            .cloned()
            .collect();
        for range in &ranges {
            if let Err(e) = self.unprogram(range)
                && first_error.is_none()
            {
                first_error = Some(PlatformError::Hal(e));
            }
        }
        self.eid_ifaces.clear();
        first_error.map_or(Ok(()), Err)
    }

    /// Our addresses per interface (replaces the previous set): LISP data to any of them is
    /// decapsulated, and the lowest of a family on the interface towards an RLOC is the outer
    /// source (`source_rloc` in the software core).
    pub fn set_addresses(&mut self, addrs: &[(u32, IpAddr)]) -> Result<(), HalError> {
        let mut own: BTreeMap<[u8; ADDR_LEN], u32> = BTreeMap::new();
        let mut source: BTreeMap<[u8; 8], IpAddr> = BTreeMap::new();
        for &(ifindex, ip) in addrs {
            own.insert(layout::addr(ip), ifindex);
            let best = source.entry(layout::src_key(ifindex, ip)).or_insert(ip);
            *best = (*best).min(ip);
        }
        if own.len() > ADDRESS_CAPACITY as usize || source.len() > ADDRESS_CAPACITY as usize {
            return Err(table_full(TableKind::InterfaceAddress, ADDRESS_CAPACITY));
        }
        for stale in self.own_keys.iter().filter(|k| !own.contains_key(*k)) {
            self.own_addrs
                .remove(stale)
                .map_err(|e| map_error("own_addrs", e))?;
        }
        for stale in self.source_keys.iter().filter(|k| !source.contains_key(*k)) {
            self.source_rloc
                .remove(stale)
                .map_err(|e| map_error("source_rloc", e))?;
        }
        self.own_keys.clear();
        self.source_keys.clear();
        for (key, ifindex) in &own {
            self.own_addrs
                .insert(key, ifindex, 0)
                .map_err(|e| map_error("own_addrs", e))?;
            self.own_keys.insert(*key);
        }
        for (key, ip) in &source {
            self.source_rloc
                .insert(key, layout::addr(*ip), 0)
                .map_err(|e| map_error("source_rloc", e))?;
            self.source_keys.insert(*key);
        }
        Ok(())
    }

    /// The subnets of each EID-facing interface (replaces the previous set): across subnets, a
    /// source inside them is at home, not a dynamic EID (the software core's
    /// `in_iface_subnet`). Without them every source inside a range is reported.
    pub fn set_subnets(&mut self, subnets: &[(u32, Prefix)]) -> Result<(), HalError> {
        let new: BTreeSet<(u32, [u8; 24])> = subnets
            .iter()
            .map(|&(ifindex, p)| {
                let (len, data) = layout::if_key(ifindex, p);
                (len, data)
            })
            .collect();
        if new.len() > SUBNET_CAPACITY as usize {
            return Err(table_full(TableKind::InterfaceAddress, SUBNET_CAPACITY));
        }
        for (len, data) in self.subnet_keys.iter().filter(|k| !new.contains(*k)) {
            self.subnets
                .remove(&Key::new(*len, *data))
                .map_err(|e| map_error("subnets", e))?;
        }
        self.subnet_keys.clear();
        for (len, data) in &new {
            self.subnets
                .insert(&Key::new(*len, *data), 1, 0)
                .map_err(|e| map_error("subnets", e))?;
            self.subnet_keys.insert((*len, *data));
        }
        Ok(())
    }

    fn table(&self, kind: TableKind) -> &BTreeMap<TableKey, TableEntry> {
        static EMPTY: BTreeMap<TableKey, TableEntry> = BTreeMap::new();
        self.tables.get(&kind).unwrap_or(&EMPTY)
    }

    /// LispDatabase, LispMapCache, DynamicEidRange and AwayEntry operations.
    pub fn apply(&mut self, op: &TableOp) -> Result<(), HalError> {
        let kind = op.kind();
        if !KINDS.contains(&kind) {
            return Err(HalError::Unsupported {
                action: op.action,
                table: kind,
                backend: format!("{BACKEND} (eBPF LISP data path)"),
            });
        }
        let key = op.entry.key();
        let exists = self.table(kind).contains_key(&key);
        match op.action {
            OpAction::Add | OpAction::Update => {
                if op.action == OpAction::Add && exists {
                    return Err(HalError::Exists { table: kind, key });
                }
                if op.action == OpAction::Update && !exists {
                    return Err(HalError::NotFound { table: kind, key });
                }
                if !exists && self.table(kind).len() >= capacity(kind) as usize {
                    return Err(table_full(kind, capacity(kind)));
                }
                self.program(&op.entry)?;
                if let Some(t) = self.tables.get_mut(&kind) {
                    t.insert(key, op.entry.clone());
                }
            }
            OpAction::Remove => {
                let Some(old) = self.tables.get_mut(&kind).and_then(|t| t.remove(&key)) else {
                    return Err(HalError::NotFound { table: kind, key });
                };
                // Another instance-ID's entry for the same prefix takes the slot back.
                let heir = lisp_prefix(&old).and_then(|p| {
                    self.table(kind)
                        .values()
                        .find(|e| lisp_prefix(e) == Some(p))
                        .cloned()
                });
                let result = match heir {
                    Some(h) => self.program(&h),
                    None => self.unprogram(&old),
                };
                if let Err(e) = result {
                    if let Some(t) = self.tables.get_mut(&kind) {
                        t.insert(key, old);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn program(&mut self, entry: &TableEntry) -> Result<(), HalError> {
        match entry {
            TableEntry::LispMapCache {
                iid,
                eid,
                locators,
                negative,
            } => {
                let (len, data) = layout::eid_key(*eid);
                let value = layout::mc_value(*iid, locators, *negative)?;
                self.map_cache
                    .insert(&Key::new(len, data), value, 0)
                    .map_err(|e| map_error("map_cache", e))
            }
            TableEntry::LispDatabase { iid, eid, .. } => {
                let (len, data) = layout::eid_key(*eid);
                self.database
                    .insert(&Key::new(len, data), iid.get(), 0)
                    .map_err(|e| map_error("database", e))
            }
            TableEntry::AwayEntry { iid, eid } => {
                let (len, data) = layout::eid_key(*eid);
                self.away
                    .insert(&Key::new(len, data), iid.get(), 0)
                    .map_err(|e| map_error("away", e))
            }
            TableEntry::DynamicEidRange {
                iface,
                eid,
                extended_subnet,
                ..
            } => {
                // Programmed once its interface is attached (attach_eid_facing).
                for ifindex in self.ifindexes_of(*iface) {
                    let (len, data) = layout::if_key(ifindex, *eid);
                    self.dyn_ranges
                        .insert(
                            &Key::new(len, data),
                            [u8::from(*extended_subnet), 0, 0, 0],
                            0,
                        )
                        .map_err(|e| map_error("dyn_ranges", e))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn unprogram(&mut self, entry: &TableEntry) -> Result<(), HalError> {
        let absent_ok = |r: Result<(), aya::maps::MapError>, map| match r {
            Err(aya::maps::MapError::KeyNotFound) | Ok(()) => Ok(()),
            Err(e) => Err(map_error(map, e)),
        };
        match entry {
            TableEntry::LispMapCache { eid, .. } => {
                let (len, data) = layout::eid_key(*eid);
                absent_ok(self.map_cache.remove(&Key::new(len, data)), "map_cache")
            }
            TableEntry::LispDatabase { eid, .. } => {
                let (len, data) = layout::eid_key(*eid);
                absent_ok(self.database.remove(&Key::new(len, data)), "database")
            }
            TableEntry::AwayEntry { eid, .. } => {
                let (len, data) = layout::eid_key(*eid);
                absent_ok(self.away.remove(&Key::new(len, data)), "away")
            }
            TableEntry::DynamicEidRange { iface, eid, .. } => {
                for ifindex in self.ifindexes_of(*iface) {
                    let (len, data) = layout::if_key(ifindex, *eid);
                    absent_ok(self.dyn_ranges.remove(&Key::new(len, data)), "dyn_ranges")?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn ifindexes_of(&self, iface: L3Interface) -> Vec<u32> {
        self.eid_ifaces
            .iter()
            .filter(|(_, i)| **i == iface)
            .map(|(ifindex, _)| *ifindex)
            .collect()
    }

    pub fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        if !KINDS.contains(&kind) {
            return Err(HalError::NotSupported {
                operation: "listing this table",
                backend: format!("{BACKEND} (eBPF LISP data path)"),
                reason: "the LISP offload holds only the LISP database, map-cache, \
                         dynamic-EID range and away tables",
            });
        }
        Ok(self.table(kind).values().cloned().collect())
    }

    /// MapCacheMiss, EidNotHere, NoRoute and DynamicEidSeen events from the ring buffer.
    pub fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        loop {
            let raw = match self.events.next() {
                Some(item) => layout::parse_event(&item),
                None => break,
            };
            if let Some(event) = raw.and_then(|r| self.hal_event(r)) {
                out.push(event);
            }
        }
    }

    fn hal_event(&self, raw: layout::RawEvent) -> Option<HalEvent> {
        use layout::RawEvent as R;
        Some(match raw {
            R::MapCacheMiss { iid, dest, source } => HalEvent::MapCacheMiss {
                iid: Iid::new(iid).ok()?,
                dest,
                source,
            },
            R::EidNotHere {
                iid,
                eid,
                source_rloc,
                inner_source,
            } => HalEvent::EidNotHere {
                iid: Iid::new(iid).ok()?,
                eid,
                source_rloc,
                inner_source,
            },
            R::NoRoute {
                iid,
                eid,
                source_rloc,
                inner_source,
            } => HalEvent::NoRoute {
                iid: Iid::new(iid).ok()?,
                eid,
                source_rloc,
                inner_source,
            },
            R::DynamicEid { ifindex, eid } => {
                let iface = *self.eid_ifaces.get(&ifindex)?;
                // The range's map name: the longest range of that interface holding the source.
                let map = self
                    .table(TableKind::DynamicEidRange)
                    .values()
                    .filter_map(|e| match e {
                        TableEntry::DynamicEidRange {
                            iface: i,
                            map,
                            eid: range,
                            ..
                        } if *i == iface && range.contains(eid) => Some((range.len(), map)),
                        _ => None,
                    })
                    .max_by_key(|(len, _)| *len)
                    .map(|(_, m)| m.clone())?;
                HalEvent::DynamicEidSeen { iface, eid, map }
            }
        })
    }

    /// Per-CPU counters summed.
    pub fn counters(&self) -> Vec<Counter> {
        layout::COUNTER_NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| Counter {
                name: (*name).to_string(),
                value: u32::try_from(i)
                    .ok()
                    .and_then(|i| self.counters.get(&i, 0).ok())
                    .map(|per_cpu| per_cpu.iter().sum())
                    .unwrap_or(0),
            })
            .collect()
    }

    /// The ring buffer's fd: readable when events wait.
    pub fn event_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }

    /// The kernel ids of the loaded programs.
    pub fn program_ids(&self) -> Vec<u32> {
        [ITR, ETR]
            .iter()
            .filter_map(|name| {
                let p: &SchedClassifier = self.ebpf.program(name)?.try_into().ok()?;
                p.info().ok().map(|i| i.id())
            })
            .collect()
    }
}

impl std::fmt::Debug for LispOffload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LispOffload")
            .field("programs", &self.program_ids())
            .field("attached", &self.attached.len())
            .finish_non_exhaustive()
    }
}

impl Drop for LispOffload {
    fn drop(&mut self) {
        if let Err(e) = self.detach_all() {
            tracing::warn!("LISP offload: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_without_the_object_says_why() {
        let e = PlatformError::EbpfObjectMissing {
            object: LISP_OBJECT,
            reason: "clang was not found when roamer was built; install clang and rebuild",
        };
        assert_eq!(
            e.to_string(),
            "the LISP eBPF data path is not in this build: clang was not found when roamer \
             was built; install clang and rebuild"
        );
    }

    #[test]
    fn a_broken_object_is_a_typed_error_naming_the_step() {
        let Err(e) = LispOffload::load_object(b"not an ELF object") else {
            panic!("a broken object loaded");
        };
        assert!(matches!(e, PlatformError::EbpfRefused { .. }), "{e:?}");
        assert!(e.to_string().contains("loading the object"), "{e}");
    }

    /// The kernel backend moves the offload to its data-plane thread.
    #[test]
    fn the_offload_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<LispOffload>();
    }
}
