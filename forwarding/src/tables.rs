//! The forwarding tables of the software data plane: the truth the pipeline reads, changed by
//! HAL table operations (from the control plane) and by learning (MAC addresses, neighbours).
//!
//! Every table is sized once; learning never grows memory past its capacity, it counts a drop.

use std::net::IpAddr;

use roamer_hal::{
    HalError, Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, OpAction, PortId, Prefix,
    TableEntry, TableKind, TableOp, VlanId,
};

use crate::keyed_hash::{KeyedMap, KeyedSet};
use crate::lpm::{BATCH_LANES as BURST, IpLpm, LpmKey, LpmTable};

/// VLANs as a 4096-bit set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanSet([u64; 64]);

impl Default for VlanSet {
    fn default() -> Self {
        VlanSet([0; 64])
    }
}

impl VlanSet {
    pub fn insert(&mut self, v: VlanId) {
        let i = usize::from(v.get());
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, v: VlanId) {
        let i = usize::from(v.get());
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub fn contains(&self, v: VlanId) -> bool {
        let i = usize::from(v.get());
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

/// How a port takes frames, derived from its VLAN memberships and addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortState {
    /// The VLAN of untagged frames (access VLAN, or a trunk's native VLAN).
    pub untagged: Option<VlanId>,
    /// VLANs carried tagged (a trunk).
    pub tagged: VlanSet,
    /// A routed port (`no switchport`): frames are not bridged.
    pub routed: bool,
}

/// A learned or static MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbEntry {
    pub port: PortId,
    pub is_static: bool,
    /// Installed through the HAL (by the control plane), not learned: learning and aging leave
    /// it alone.
    pub programmed: bool,
    pub last_seen_ms: u64,
}

/// A resolved neighbour (ARP / ND).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    pub mac: Mac,
    pub is_static: bool,
    pub last_seen_ms: u64,
}

/// An address of ours on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnAddress {
    pub iface: L3Interface,
    pub prefix_len: u8,
    /// An HSRP virtual IP, answered with this MAC.
    pub virtual_mac: Option<Mac>,
}

/// A map-cache entry: where to encapsulate, or what to do without locators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapCacheEntry {
    pub iid: Iid,
    pub eid: Prefix,
    pub locators: Vec<Locator>,
    pub negative: NegativeAction,
}

/// A dynamic-EID range bound to an interface by `lisp mobility`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicRange {
    pub map: String,
    pub eid: Prefix,
    pub extended_subnet: bool,
    pub notify_group: Option<std::net::Ipv4Addr>,
}

/// Table sizes: the most entries learning may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub fdb: usize,
    pub neighbors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fdb: 65_536,
            neighbors: 65_536,
        }
    }
}

/// Every table of the data plane.
#[derive(Debug, Clone)]
pub struct Tables {
    pub limits: Limits,
    pub vlans: VlanSet,
    pub ports: KeyedMap<PortId, PortState>,
    memberships: KeyedMap<(VlanId, PortId), bool>,
    pub fdb: KeyedMap<(VlanId, Mac), FdbEntry>,
    /// Router MACs per interface, with the virtual flag.
    pub router_macs: KeyedMap<(L3Interface, Mac), bool>,
    /// The MAC an interface sources routed frames from (its first non-virtual router MAC).
    pub iface_mac: KeyedMap<L3Interface, Mac>,
    pub addresses: KeyedMap<IpAddr, OwnAddress>,
    pub neighbors: KeyedMap<(L3Interface, IpAddr), Neighbor>,
    /// Each route's value is the index of its next hop in `next_hops`.
    routes: IpLpm<u32>,
    /// The next hops routes go through, each stored once however many routes use it (a FIB's
    /// adjacencies): a million routes through a few gateways share a few entries, which stay in
    /// the cache, so a lookup misses no more than the LPM's own reads.
    next_hops: Vec<Option<SharedNextHop>>,
    next_hop_ids: KeyedMap<NextHop, u32>,
    free_next_hops: Vec<u32>,
    /// Connected routes created from interface addresses (kept apart from configured routes).
    connected: KeyedSet<Prefix>,
    pub proxy_arp: KeyedSet<L3Interface>,
    map_cache: IpLpm<u32>,
    map_cache_slab: Vec<Option<MapCacheEntry>>,
    free_map_cache: Vec<u32>,
    pub database: Vec<(Iid, Prefix, Vec<Locator>)>,
    pub dynamic_ranges: KeyedMap<L3Interface, Vec<DynamicRange>>,
    away: IpLpm<u32>,
    /// Ports that neither take nor send HSRP hellos.
    pub hello_filter: KeyedSet<PortId>,
    /// Learning refused because a table was full.
    pub learn_drops: u64,
    /// Counts changes that may let a held packet go on (a table operation applied, a
    /// neighbour learned): the pipeline looks at its held packets again when it moves.
    pub generation: u64,
}

/// A next hop and how many routes go through it.
#[derive(Debug, Clone, Copy)]
struct SharedNextHop {
    next_hop: NextHop,
    routes: u32,
}

/// Entries from which a table is warmed before a burst ([`Tables::warm`]): about where its
/// nodes stop fitting a core's L2 cache (18.6 octets per IPv4 prefix, 52 per IPv6 prefix).
pub const WARM_MIN_ENTRIES: usize = 1 << 14;

fn warm_family<K: LpmKey, E>(
    table: &LpmTable<K, u32>,
    keys: &[K],
    found: &mut [Option<u32>; BURST],
    slab: &[E],
) {
    if keys.is_empty() || table.is_empty() {
        return;
    }
    table.lookup_batch(keys, found);
    for idx in found[..keys.len()].iter().flatten() {
        if let Some(entry) = slab.get(*idx as usize) {
            crate::lpm::prefetch(entry);
        }
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Tables {
    pub fn new(limits: Limits) -> Self {
        Tables {
            limits,
            vlans: VlanSet::default(),
            ports: KeyedMap::default(),
            memberships: KeyedMap::default(),
            fdb: KeyedMap::with_capacity_and_hasher(limits.fdb, Default::default()),
            router_macs: KeyedMap::default(),
            iface_mac: KeyedMap::default(),
            addresses: KeyedMap::default(),
            neighbors: KeyedMap::with_capacity_and_hasher(limits.neighbors, Default::default()),
            routes: IpLpm::new(),
            next_hops: Vec::new(),
            next_hop_ids: KeyedMap::default(),
            free_next_hops: Vec::new(),
            connected: KeyedSet::default(),
            proxy_arp: KeyedSet::default(),
            map_cache: IpLpm::new(),
            map_cache_slab: Vec::new(),
            free_map_cache: Vec::new(),
            database: Vec::new(),
            dynamic_ranges: KeyedMap::default(),
            away: IpLpm::new(),
            hello_filter: KeyedSet::default(),
            learn_drops: 0,
            generation: 0,
        }
    }

    // ---- lookups used by the pipeline ------------------------------------------------------

    /// The best route for `dst`: its prefix and next hop.
    pub fn route(&self, dst: IpAddr) -> Option<NextHop> {
        self.next_hop(self.routes.lookup(dst)?)
    }

    /// Whether [`Tables::warm`] would do anything: a table large enough to leave the cache.
    pub fn worth_warming(&self) -> bool {
        self.routes.len() >= WARM_MIN_ENTRIES || self.map_cache.len() >= WARM_MIN_ENTRIES
    }

    /// Brings the lines the lookups of a burst of destinations will read into the cache: one
    /// [`lookup_batch`](crate::lpm::LpmTable::lookup_batch) per family and table, whose misses
    /// overlap, then the entries found. The per-frame lookups that follow hit the cache instead
    /// of each waiting on a chain of memory reads. Tables small enough to stay in the cache
    /// anyway (under [`WARM_MIN_ENTRIES`]) are skipped. At most [`BURST`] addresses per family.
    pub fn warm(&self, v4: &[u32], v6: &[u128]) {
        let v4 = &v4[..v4.len().min(BURST)];
        let v6 = &v6[..v6.len().min(BURST)];
        let mut found = [None; BURST];
        if self.routes.len() >= WARM_MIN_ENTRIES {
            warm_family(self.routes.v4(), v4, &mut found, &self.next_hops);
            warm_family(self.routes.v6(), v6, &mut found, &self.next_hops);
        }
        if self.map_cache.len() >= WARM_MIN_ENTRIES {
            warm_family(self.map_cache.v4(), v4, &mut found, &self.map_cache_slab);
            warm_family(self.map_cache.v6(), v6, &mut found, &self.map_cache_slab);
        }
    }

    pub fn route_match(&self, dst: IpAddr) -> Option<(Prefix, NextHop)> {
        let (p, idx) = self.routes.longest_match(dst)?;
        Some((p, self.next_hop(idx)?))
    }

    pub fn map_cache(&self, dst: IpAddr) -> Option<&MapCacheEntry> {
        let idx = self.map_cache.lookup(dst)?;
        self.map_cache_slab
            .get(idx as usize)
            .and_then(Option::as_ref)
    }

    pub fn is_away(&self, eid: IpAddr) -> bool {
        self.away.lookup(eid).is_some()
    }

    /// The local database prefix covering `eid`, if any.
    pub fn local_eid(&self, eid: IpAddr) -> Option<&(Iid, Prefix, Vec<Locator>)> {
        self.database
            .iter()
            .filter(|(_, p, _)| p.contains(eid))
            .max_by_key(|(_, p, _)| p.len())
    }

    /// Ports of a VLAN and whether each carries it tagged.
    pub fn vlan_ports(&self, vlan: VlanId) -> impl Iterator<Item = (PortId, bool)> + '_ {
        self.ports.iter().filter_map(move |(p, s)| {
            if s.routed {
                None
            } else if s.untagged == Some(vlan) {
                Some((*p, false))
            } else if s.tagged.contains(vlan) {
                Some((*p, true))
            } else {
                None
            }
        })
    }

    /// Whether `port` sends `vlan` tagged (None: the port does not carry the VLAN).
    pub fn egress_tagged(&self, port: PortId, vlan: VlanId) -> Option<bool> {
        let s = self.ports.get(&port)?;
        if s.routed {
            None
        } else if s.untagged == Some(vlan) {
            Some(false)
        } else if s.tagged.contains(vlan) {
            Some(true)
        } else {
            None
        }
    }

    /// The MAC an ARP/proxy-ARP answer on `iface` carries: the virtual MAC when there is one.
    pub fn answer_mac(&self, iface: L3Interface) -> Option<Mac> {
        self.router_macs
            .iter()
            .find(|((i, _), v)| *i == iface && **v)
            .map(|((_, m), _)| *m)
            .or_else(|| self.iface_mac.get(&iface).copied())
    }

    /// Learns (or refreshes) a MAC address; false when the table is full.
    pub fn learn_mac(&mut self, vlan: VlanId, mac: Mac, port: PortId, now_ms: u64) -> bool {
        let full = self.fdb.len() >= self.limits.fdb;
        match self.fdb.get_mut(&(vlan, mac)) {
            Some(e) if e.programmed => true,
            Some(e) => {
                e.port = port;
                e.last_seen_ms = now_ms;
                true
            }
            None if full => {
                self.learn_drops += 1;
                false
            }
            None => {
                self.fdb.insert(
                    (vlan, mac),
                    FdbEntry {
                        port,
                        is_static: false,
                        programmed: false,
                        last_seen_ms: now_ms,
                    },
                );
                true
            }
        }
    }

    /// Learns a neighbour; false when the table is full.
    pub fn learn_neighbor(
        &mut self,
        iface: L3Interface,
        ip: IpAddr,
        mac: Mac,
        now_ms: u64,
    ) -> bool {
        let full = self.neighbors.len() >= self.limits.neighbors;
        match self.neighbors.get_mut(&(iface, ip)) {
            Some(n) if n.is_static => true,
            Some(n) => {
                n.mac = mac;
                n.last_seen_ms = now_ms;
                true
            }
            None if full => {
                self.learn_drops += 1;
                false
            }
            None => {
                self.generation += 1;
                self.neighbors.insert(
                    (iface, ip),
                    Neighbor {
                        mac,
                        is_static: false,
                        last_seen_ms: now_ms,
                    },
                );
                true
            }
        }
    }

    /// Forgets dynamic MAC addresses not seen for `max_age_ms`; returns how many.
    pub fn age_fdb(&mut self, now_ms: u64, max_age_ms: u64) -> Vec<(VlanId, Mac)> {
        let old: Vec<(VlanId, Mac)> = self
            .fdb
            .iter()
            .filter(|(_, e)| !e.programmed && now_ms.saturating_sub(e.last_seen_ms) > max_age_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in &old {
            self.fdb.remove(k);
        }
        old
    }

    // ---- table operations from the control plane --------------------------------------------

    /// Applies one operation; the software tables support every table kind.
    pub fn apply(&mut self, op: &TableOp) -> Result<(), HalError> {
        let kind = op.kind();
        let key = op.entry.key();
        let present = self.contains(&op.entry);
        match (op.action, present) {
            (OpAction::Add, true) => return Err(HalError::Exists { table: kind, key }),
            (OpAction::Update | OpAction::Remove, false) => {
                return Err(HalError::NotFound { table: kind, key });
            }
            _ => {}
        }
        let adding = op.action != OpAction::Remove;
        if op.action == OpAction::Update {
            self.set(&op.entry, false);
        }
        self.set(&op.entry, adding);
        self.generation += 1;
        Ok(())
    }

    fn contains(&self, e: &TableEntry) -> bool {
        match e {
            TableEntry::Vlan { vlan } => self.vlans.contains(*vlan),
            TableEntry::VlanMember { vlan, port, .. } => {
                self.memberships.contains_key(&(*vlan, *port))
            }
            TableEntry::Fdb { vlan, mac, .. } => {
                self.fdb.get(&(*vlan, *mac)).is_some_and(|e| e.programmed)
            }
            TableEntry::RouterMac { iface, mac, .. } => {
                self.router_macs.contains_key(&(*iface, *mac))
            }
            TableEntry::InterfaceAddress { iface, addr, .. } => {
                self.addresses.get(addr).is_some_and(|a| a.iface == *iface)
            }
            TableEntry::Neighbor { iface, ip, .. } => self
                .neighbors
                .get(&(*iface, *ip))
                .is_some_and(|n| n.is_static),
            TableEntry::Route { prefix, .. } => {
                self.routes.get(prefix).is_some() && !self.connected.contains(prefix)
            }
            TableEntry::ProxyArp { iface } => self.proxy_arp.contains(iface),
            TableEntry::LispDatabase { iid, eid, .. } => {
                self.database.iter().any(|(i, p, _)| i == iid && p == eid)
            }
            TableEntry::LispMapCache { eid, .. } => self.map_cache.get(eid).is_some(),
            TableEntry::DynamicEidRange { iface, eid, .. } => self
                .dynamic_ranges
                .get(iface)
                .is_some_and(|r| r.iter().any(|d| d.eid == *eid)),
            TableEntry::AwayEntry { eid, .. } => self.away.get(eid).is_some(),
            TableEntry::HelloFilter { port } => self.hello_filter.contains(port),
        }
    }

    /// Inserts (`on`) or removes the row; the caller checked presence.
    fn set(&mut self, e: &TableEntry, on: bool) {
        match e {
            TableEntry::Vlan { vlan } => {
                if on {
                    self.vlans.insert(*vlan)
                } else {
                    self.vlans.remove(*vlan)
                }
            }
            TableEntry::VlanMember { vlan, port, tagged } => {
                if on {
                    self.memberships.insert((*vlan, *port), *tagged);
                } else {
                    self.memberships.remove(&(*vlan, *port));
                }
                self.derive_port(*port);
            }
            TableEntry::Fdb {
                vlan,
                mac,
                port,
                is_static,
            } => {
                if on {
                    self.fdb.insert(
                        (*vlan, *mac),
                        FdbEntry {
                            port: *port,
                            is_static: *is_static,
                            programmed: true,
                            last_seen_ms: 0,
                        },
                    );
                } else {
                    self.fdb.remove(&(*vlan, *mac));
                }
            }
            TableEntry::RouterMac {
                iface,
                mac,
                virtual_mac,
            } => {
                if on {
                    self.router_macs.insert((*iface, *mac), *virtual_mac);
                } else {
                    self.router_macs.remove(&(*iface, *mac));
                }
                let primary = self
                    .router_macs
                    .iter()
                    .filter(|((i, _), v)| i == iface && !**v)
                    .map(|((_, m), _)| *m)
                    .min();
                match primary {
                    Some(m) => self.iface_mac.insert(*iface, m),
                    None => self.iface_mac.remove(iface),
                };
                if let L3Interface::Port(p) = iface {
                    self.derive_port(*p);
                }
            }
            TableEntry::InterfaceAddress {
                iface,
                addr,
                prefix_len,
                virtual_mac,
            } => {
                let subnet =
                    Prefix::new(*addr, *prefix_len).unwrap_or_else(|_| Prefix::host(*addr));
                if on {
                    self.addresses.insert(
                        *addr,
                        OwnAddress {
                            iface: *iface,
                            prefix_len: *prefix_len,
                            virtual_mac: *virtual_mac,
                        },
                    );
                    if virtual_mac.is_none() && !self.connected.contains(&subnet) {
                        self.add_route(subnet, NextHop::Connected(*iface));
                        self.connected.insert(subnet);
                    }
                } else {
                    self.addresses.remove(addr);
                    let still_used = self.addresses.iter().any(|(a, o)| {
                        o.virtual_mac.is_none()
                            && Prefix::new(*a, o.prefix_len).ok() == Some(subnet)
                    });
                    if !still_used
                        && self.connected.remove(&subnet)
                        && let Some(id) = self.routes.remove(&subnet)
                    {
                        self.release_next_hop(id);
                    }
                }
                if let L3Interface::Port(p) = iface {
                    self.derive_port(*p);
                }
            }
            TableEntry::Neighbor { iface, ip, mac } => {
                if on {
                    self.neighbors.insert(
                        (*iface, *ip),
                        Neighbor {
                            mac: *mac,
                            is_static: true,
                            last_seen_ms: 0,
                        },
                    );
                } else {
                    self.neighbors.remove(&(*iface, *ip));
                }
            }
            TableEntry::Route { prefix, next_hop } => {
                if on {
                    self.add_route(*prefix, *next_hop);
                } else if let Some(id) = self.routes.remove(prefix) {
                    self.release_next_hop(id);
                }
            }
            TableEntry::ProxyArp { iface } => {
                if on {
                    self.proxy_arp.insert(*iface);
                } else {
                    self.proxy_arp.remove(iface);
                }
            }
            TableEntry::LispDatabase { iid, eid, locators } => {
                self.database.retain(|(i, p, _)| !(i == iid && p == eid));
                if on {
                    self.database.push((*iid, *eid, locators.clone()));
                }
            }
            TableEntry::LispMapCache {
                iid,
                eid,
                locators,
                negative,
            } => {
                if let Some(idx) = self.map_cache.remove(eid) {
                    if let Some(slot) = self.map_cache_slab.get_mut(idx as usize) {
                        *slot = None;
                    }
                    self.free_map_cache.push(idx);
                }
                if on {
                    let entry = MapCacheEntry {
                        iid: *iid,
                        eid: *eid,
                        locators: locators.clone(),
                        negative: *negative,
                    };
                    let idx = match self.free_map_cache.pop() {
                        Some(i) => {
                            self.map_cache_slab[i as usize] = Some(entry);
                            i
                        }
                        None => {
                            self.map_cache_slab.push(Some(entry));
                            (self.map_cache_slab.len() - 1) as u32
                        }
                    };
                    let _ = self.map_cache.insert(*eid, idx);
                }
            }
            TableEntry::DynamicEidRange {
                iface,
                map,
                eid,
                extended_subnet,
                notify_group,
            } => {
                let list = self.dynamic_ranges.entry(*iface).or_default();
                list.retain(|d| d.eid != *eid);
                if on {
                    list.push(DynamicRange {
                        map: map.clone(),
                        eid: *eid,
                        extended_subnet: *extended_subnet,
                        notify_group: *notify_group,
                    });
                }
            }
            TableEntry::HelloFilter { port } => {
                if on {
                    self.hello_filter.insert(*port);
                } else {
                    self.hello_filter.remove(port);
                }
            }
            TableEntry::AwayEntry { eid, .. } => {
                if on {
                    let _ = self.away.insert(*eid, 0);
                } else {
                    self.away.remove(eid);
                }
            }
        }
    }

    fn add_route(&mut self, prefix: Prefix, nh: NextHop) {
        let id = self.hold_next_hop(nh);
        match self.routes.insert(prefix, id) {
            Ok(Some(old)) => self.release_next_hop(old),
            Ok(None) => {}
            Err(_) => self.release_next_hop(id),
        }
    }

    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.next_hops
            .get(id as usize)
            .copied()
            .flatten()
            .map(|s| s.next_hop)
    }

    /// The index of `nh` in `next_hops` for one more route (added if it is new).
    fn hold_next_hop(&mut self, nh: NextHop) -> u32 {
        if let Some(&id) = self.next_hop_ids.get(&nh)
            && let Some(Some(shared)) = self.next_hops.get_mut(id as usize)
        {
            shared.routes += 1;
            return id;
        }
        let shared = Some(SharedNextHop {
            next_hop: nh,
            routes: 1,
        });
        let id = match self.free_next_hops.pop() {
            Some(id) => {
                self.next_hops[id as usize] = shared;
                id
            }
            None => {
                self.next_hops.push(shared);
                (self.next_hops.len() - 1) as u32
            }
        };
        self.next_hop_ids.insert(nh, id);
        id
    }

    /// One route less through next hop `id`; the last one frees it.
    fn release_next_hop(&mut self, id: u32) {
        let Some(slot) = self.next_hops.get_mut(id as usize) else {
            return;
        };
        let Some(shared) = slot.as_mut() else { return };
        shared.routes = shared.routes.saturating_sub(1);
        if shared.routes == 0 {
            self.next_hop_ids.remove(&shared.next_hop);
            *slot = None;
            self.free_next_hops.push(id);
        }
    }

    fn derive_port(&mut self, port: PortId) {
        let mut state = PortState::default();
        for ((vlan, p), tagged) in &self.memberships {
            if *p != port {
                continue;
            }
            if *tagged {
                state.tagged.insert(*vlan);
            } else {
                state.untagged = Some(*vlan);
            }
        }
        let l3 = L3Interface::Port(port);
        state.routed =
            self.iface_mac.contains_key(&l3) || self.addresses.values().any(|a| a.iface == l3);
        self.ports.insert(port, state);
    }

    /// Rows of one table, for `Backend::entries` (learned entries included where they exist).
    pub fn entries(&self, kind: TableKind) -> Vec<TableEntry> {
        let mut rows: Vec<TableEntry> = match kind {
            TableKind::Vlan => (1..=4094u16)
                .filter_map(|v| VlanId::new(v).ok())
                .filter(|v| self.vlans.contains(*v))
                .map(|vlan| TableEntry::Vlan { vlan })
                .collect(),
            TableKind::VlanMember => self
                .memberships
                .iter()
                .map(|((vlan, port), tagged)| TableEntry::VlanMember {
                    vlan: *vlan,
                    port: *port,
                    tagged: *tagged,
                })
                .collect(),
            TableKind::Fdb => self
                .fdb
                .iter()
                .filter(|(_, e)| e.programmed)
                .map(|((vlan, mac), e)| TableEntry::Fdb {
                    vlan: *vlan,
                    mac: *mac,
                    port: e.port,
                    is_static: e.is_static,
                })
                .collect(),
            TableKind::RouterMac => self
                .router_macs
                .iter()
                .map(|((iface, mac), v)| TableEntry::RouterMac {
                    iface: *iface,
                    mac: *mac,
                    virtual_mac: *v,
                })
                .collect(),
            TableKind::InterfaceAddress => self
                .addresses
                .iter()
                .map(|(addr, a)| TableEntry::InterfaceAddress {
                    iface: a.iface,
                    addr: *addr,
                    prefix_len: a.prefix_len,
                    virtual_mac: a.virtual_mac,
                })
                .collect(),
            TableKind::Neighbor => self
                .neighbors
                .iter()
                .filter(|(_, n)| n.is_static)
                .map(|((iface, ip), n)| TableEntry::Neighbor {
                    iface: *iface,
                    ip: *ip,
                    mac: n.mac,
                })
                .collect(),
            TableKind::Ipv4Route | TableKind::Ipv6Route => self
                .routes
                .iter()
                .filter(|(p, _)| p.is_ipv4() == (kind == TableKind::Ipv4Route))
                .filter(|(p, _)| !self.connected.contains(p))
                .filter_map(|(prefix, idx)| {
                    let next_hop = self.next_hop(idx)?;
                    Some(TableEntry::Route { prefix, next_hop })
                })
                .collect(),
            TableKind::ProxyArp => self
                .proxy_arp
                .iter()
                .map(|iface| TableEntry::ProxyArp { iface: *iface })
                .collect(),
            TableKind::LispDatabase => self
                .database
                .iter()
                .map(|(iid, eid, locators)| TableEntry::LispDatabase {
                    iid: *iid,
                    eid: *eid,
                    locators: locators.clone(),
                })
                .collect(),
            TableKind::LispMapCache => self
                .map_cache_slab
                .iter()
                .flatten()
                .map(|m| TableEntry::LispMapCache {
                    iid: m.iid,
                    eid: m.eid,
                    locators: m.locators.clone(),
                    negative: m.negative,
                })
                .collect(),
            TableKind::DynamicEidRange => self
                .dynamic_ranges
                .iter()
                .flat_map(|(iface, list)| {
                    list.iter().map(move |d| TableEntry::DynamicEidRange {
                        iface: *iface,
                        map: d.map.clone(),
                        eid: d.eid,
                        extended_subnet: d.extended_subnet,
                        notify_group: d.notify_group,
                    })
                })
                .collect(),
            TableKind::HelloFilter => self
                .hello_filter
                .iter()
                .map(|port| TableEntry::HelloFilter { port: *port })
                .collect(),
            TableKind::AwayEntry => self
                .away
                .iter()
                .map(|(eid, _)| TableEntry::AwayEntry {
                    iid: Iid::default(),
                    eid,
                })
                .collect(),
        };
        rows.sort_by_key(|r| r.key());
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_entry(p: &str, next_hop: NextHop) -> TableEntry {
        let (a, l) = p.split_once('/').expect("prefix");
        let prefix =
            Prefix::new(a.parse().expect("address"), l.parse().expect("length")).expect("prefix");
        TableEntry::Route { prefix, next_hop }
    }

    fn route(p: &str, next_hop: NextHop) -> TableOp {
        TableOp::add(route_entry(p, next_hop))
    }

    fn gateway(via: [u8; 4]) -> NextHop {
        NextHop::Gateway {
            via: IpAddr::from(via),
            iface: None,
        }
    }

    /// Routes through one gateway share its entry; a route moved to another gateway, and the
    /// last route through a gateway removed, let go of it; lookups see each change.
    #[test]
    fn routes_through_one_next_hop_share_it_until_the_last_is_gone() {
        let mut t = Tables::default();
        let (a, b) = (gateway([10, 0, 0, 1]), gateway([10, 0, 0, 2]));
        for i in 0..100u8 {
            t.apply(&route(&format!("20.{i}.0.0/16"), a))
                .expect("route");
        }
        t.apply(&route("30.0.0.0/8", b)).expect("route");
        assert_eq!(t.next_hop_ids.len(), 2);
        assert_eq!(t.route(IpAddr::from([20, 7, 1, 1])), Some(a));

        // Moving a route to b, then removing the rest of a's routes.
        let update = TableOp {
            action: roamer_hal::OpAction::Update,
            entry: route_entry("20.7.0.0/16", b),
        };
        t.apply(&update).expect("replace");
        assert_eq!(t.route(IpAddr::from([20, 7, 1, 1])), Some(b));
        for i in (0..100u8).filter(|i| *i != 7) {
            let op = TableOp::remove(route_entry(&format!("20.{i}.0.0/16"), a));
            t.apply(&op).expect("remove");
        }
        assert_eq!(t.next_hop_ids.len(), 1, "a is gone");
        assert_eq!(t.route(IpAddr::from([20, 8, 1, 1])), None);
        assert_eq!(t.route(IpAddr::from([30, 1, 1, 1])), Some(b));

        // Its slot is used again; the routes listed are the ones left.
        t.apply(&route("40.0.0.0/8", a)).expect("route");
        assert_eq!(t.next_hops.len(), 2, "the freed slot was reused");
        let listed = t.entries(TableKind::Ipv4Route);
        assert_eq!(listed.len(), 3, "{listed:?}");
    }

    /// A configured route over a connected subnet, then the address removed: what the subnet
    /// held is let go of once (it was freed twice, and two later routes could share a slot).
    #[test]
    fn a_connected_subnet_taken_over_by_a_route_is_released_once() {
        let mut t = Tables::default();
        let iface = L3Interface::Port(PortId(1));
        let address = TableEntry::InterfaceAddress {
            iface,
            addr: IpAddr::from([10, 0, 0, 1]),
            prefix_len: 24,
            virtual_mac: None,
        };
        t.apply(&TableOp::add(address.clone())).expect("address");
        t.apply(&route("10.0.0.0/24", gateway([192, 0, 2, 9])))
            .expect("route over the subnet");
        t.apply(&TableOp::remove(address)).expect("address gone");
        assert_eq!(t.route(IpAddr::from([10, 0, 0, 5])), None);
        assert!(t.next_hop_ids.is_empty(), "{:?}", t.next_hop_ids);
        let (a, b) = (gateway([192, 0, 2, 1]), gateway([192, 0, 2, 2]));
        t.apply(&route("20.0.0.0/8", a)).expect("route");
        t.apply(&route("30.0.0.0/8", b)).expect("route");
        assert_eq!(t.route(IpAddr::from([20, 1, 1, 1])), Some(a));
        assert_eq!(t.route(IpAddr::from([30, 1, 1, 1])), Some(b));
    }
}
