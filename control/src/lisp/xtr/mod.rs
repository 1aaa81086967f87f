//! The xTR control plane: ETR registration (global database mappings and detected dynamic
//! EIDs), dynamic-EID mobility, the ITR map-cache fed by Map-Requests through the map-resolver,
//! SMR and the away table (RFC 9301; protocols.md §3, §4).
//!
//! One event loop, pure: configuration, data-plane events, received control messages and the
//! clock go in (the time is an argument); messages to send and table operations for the
//! forwarding core come out. Every table this instance keeps is bounded; what does not fit is
//! counted and dropped.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use roamer_hal::{
    Iid, L3Interface, Locator, NegativeAction, NextHop, Prefix, TableEntry, TableOp, VlanId,
};
use serde::Serialize;

use crate::config::Config;
use crate::lisp::nonce::Nonces;
use crate::wire::lisp::auth::{AuthKey, KeyId};
use crate::wire::lisp::{
    Action, Address, Ecm, EidPrefix, EidRecord, LISP_CONTROL_PORT, LispMessage, LocatorRecord,
    MapNotify, MapRegister, MapReply, MapRequest, parse_message,
};

#[cfg(test)]
mod dual_stack_tests;
mod probe;
mod pubsub;
pub use probe::ProbeCounters;

/// The ETR re-registers every minute (RFC 9301 §8.2; NX-OS default).
pub const REGISTER_INTERVAL_MS: u64 = 60_000;
/// A dynamic EID from which no packet was seen for this long is withdrawn.
pub const DYNAMIC_EID_TIMEOUT_MS: u64 = 180_000;
/// Away entries age out after this long (the documents give no value; §4.6 [UNVERIFIED]).
pub const AWAY_LIFETIME_MS: u64 = 600_000;
/// A local EID without a route is withheld from registration for this long, then retried.
pub const NO_ROUTE_HOLD_MS: u64 = 60_000;
/// Registration TTL in minutes (Cisco registers 1440: "expires: 23:59:22").
const RECORD_TTL_MINUTES: u32 = 1440;
/// At most one SMR per 3 s per (destination RLOC, EID) and one SMR-invoked request per 3 s per
/// cached prefix (RFC 9301 §6.1).
const SMR_INTERVAL_MS: u64 = 3_000;
/// Map-Request retransmissions: at +1 s and +3 s, switching map-resolver after the second
/// unanswered attempt (Cisco's observed behaviour, seed 002).
const REQUEST_RETRY_MS: [u64; 2] = [1_000, 2_000];
const REQUEST_ATTEMPTS: u32 = 3;
/// Records per Map-Register, so a register stays well inside one 1500-octet packet.
const RECORDS_PER_REGISTER: usize = 20;

/// Bounds on what remote input can make this instance remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub dynamic_eids: usize,
    pub map_cache: usize,
    pub pending_requests: usize,
    pub away: usize,
    pub rate_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dynamic_eids: 16_384,
            map_cache: 65_536,
            pending_requests: 4_096,
            away: 16_384,
            rate_entries: 16_384,
        }
    }
}

/// What the xTR asks its host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A UDP datagram from our RLOC, source port `from_port`.
    Send {
        to: SocketAddr,
        from_port: u16,
        payload: Vec<u8>,
    },
    /// A change to the forwarding core's tables.
    Table(TableOp),
    /// Open (or re-open) the reliable registration session (TCP 4342) to this map-server: a
    /// UDP register to it was just acknowledged (protocols.md §5.1 step 3).
    OpenSession { map_server: IpAddr, local: IpAddr },
    /// A signed Map-Register (one record) for the map-server's reliable session.
    SendReliable {
        map_server: IpAddr,
        payload: Vec<u8>,
    },
    /// A site-based Map-Notify: UDP 4342 to `group` with IP TTL 1, from `source` (our SVI
    /// address), flooded in `vlan` (protocols.md §6).
    SiteNotify {
        vlan: VlanId,
        source: Ipv4Addr,
        group: Ipv4Addr,
        payload: Vec<u8>,
    },
}

/// What the xTR counts (`show lisp counters`-style; every drop of input has one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub registers_sent: u64,
    pub map_notifies_accepted: u64,
    pub map_notifies_refused: u64,
    pub map_requests_sent: u64,
    pub map_requests_answered: u64,
    pub map_requests_ignored: u64,
    pub map_replies_accepted: u64,
    pub map_replies_unexpected: u64,
    pub smrs_sent: u64,
    pub smrs_received: u64,
    pub smrs_ignored: u64,
    pub smr_invoked_sent: u64,
    pub malformed: u64,
    pub dynamic_eids_detected: u64,
    pub dynamic_eids_moved_away: u64,
    pub dynamic_eids_timed_out: u64,
    pub resolver_switches: u64,
    pub site_notifies_sent: u64,
    pub site_notifies_received: u64,
    pub site_notifies_refused: u64,
    pub dropped_table_full: u64,
    pub unusable_keys: u64,
    /// RLOC probing.
    #[serde(flatten)]
    pub probe: ProbeCounters,
    /// Publish/subscribe: Map-Notifies with our xTR-ID accepted.
    pub publications_received: u64,
    /// Records of those for prefixes we do not cache (not applied).
    pub publications_ignored: u64,
}

/// How a map-cache entry came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheSource {
    MapReply,
    /// The Map-Notify that moved a host away from us: its new locators, so that packets still
    /// arriving for it here are sent on (and our own ITR reaches it) until the senders follow.
    MapNotify,
    /// A publication of the Map-Server (RFC 9437 publish/subscribe).
    PubSub,
}

impl CacheSource {
    /// As `show ip lisp map-cache` names it (`via …`).
    pub fn name(self) -> &'static str {
        match self {
            CacheSource::MapReply => "map-reply",
            CacheSource::MapNotify => "map-notify",
            CacheSource::PubSub => "pub-sub",
        }
    }
}

/// One map-cache entry learned from the mapping system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheEntry {
    pub prefix: Prefix,
    pub locators: Vec<Locator>,
    /// Negative entries: what to do with matching traffic.
    pub action: Option<NegativeAction>,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub expires_ms: u64,
    /// Who answered (the ETR or map-server that sent the Map-Reply).
    pub map_source: IpAddr,
    pub source: CacheSource,
}

/// A detected dynamic EID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicEid {
    pub map: String,
    pub iface: L3Interface,
    pub first_ms: u64,
    pub last_seen_ms: u64,
    /// A host route was installed (across-subnet mode).
    pub host_route: bool,
    /// Learned from another xTR of the site (site-based Map-Notify), not from local traffic:
    /// that xTR registers it, we do not.
    pub via_map_notify: bool,
}

/// Who put a prefix in the away table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Producer {
    /// A dynamic EID that another site now registers (host moved away).
    #[serde(rename = "dyn-eid")]
    DynEid,
    /// A local EID-prefix without a route, or de-configured (generalized SMR).
    #[serde(rename = "local EID")]
    LocalEid,
    /// Another site registered a host inside one of our prefixes (overlapping prefix).
    #[serde(rename = "away table, remote EID")]
    RemoteEid,
}

impl Producer {
    pub fn name(self) -> &'static str {
        match self {
            Producer::DynEid => "dyn-eid",
            Producer::LocalEid => "local EID",
            Producer::RemoteEid => "away table, remote EID",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayEntry {
    pub producer: Producer,
    pub created_ms: u64,
    /// A removed database mapping (kept as long as a moved host's entry, not retried).
    pub deconfigured: bool,
    /// Installed in the forwarding core (dynamic EIDs; a configured prefix keeps its row).
    pub programmed: bool,
}

/// One map-server this ETR registers with.
#[derive(Debug, Clone)]
struct Server {
    address: IpAddr,
    key: Option<AuthKey>,
    proxy_reply: bool,
    /// Receives the global database mappings (`ip lisp etr map-server`).
    global: bool,
    /// Receives the dynamic EIDs of these maps.
    maps: Vec<String>,
    next_ms: u64,
    outstanding: Option<u64>,
    sent_ms: u64,
    acked_ms: Option<u64>,
    failures: u32,
    /// Registrations go over the TCP session (no periodic UDP refresh while it is up).
    reliable: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    nonce: u64,
    source_eid: Option<IpAddr>,
    smr_invoked: bool,
    attempts: u32,
    resolver: usize,
    next_ms: u64,
}

/// A dynamic-EID map's policy: its ranges and their locators.
#[derive(Debug, Clone, Default)]
struct MapPolicy {
    ranges: Vec<(Prefix, Vec<LocatorRecord>)>,
    extended_subnet: BTreeMap<L3Interface, bool>,
    notify_group: Option<Ipv4Addr>,
    /// The IPv4 address of each interface the map is applied to (site Map-Notify source).
    sources: BTreeMap<L3Interface, Ipv4Addr>,
}

/// The xTR.
#[derive(Debug, Clone)]
pub struct Xtr {
    iid: Iid,
    itr: bool,
    etr: bool,
    /// Our RLOCs (the locators of our database mappings), first one used as ITR-RLOC.
    rlocs: Vec<IpAddr>,
    /// Of those, the mapped locators that are addresses of ours (an RLOC of each family we
    /// have goes into the ITR-RLOC list of our Map-Requests).
    own_locators: Vec<IpAddr>,
    database: Vec<(Prefix, Vec<LocatorRecord>)>,
    maps: BTreeMap<String, MapPolicy>,
    servers: Vec<Server>,
    resolvers: Vec<IpAddr>,
    /// Prefixes the configuration owns in the LISP table (database, static map-cache).
    configured: Vec<Prefix>,
    limits: Limits,
    nonces: Nonces,
    dynamic: BTreeMap<IpAddr, DynamicEid>,
    away: BTreeMap<Prefix, AwayEntry>,
    cache: BTreeMap<Prefix, CacheEntry>,
    pending: BTreeMap<Prefix, Pending>,
    by_nonce: HashMap<u64, Prefix>,
    smr_sent: HashMap<(IpAddr, IpAddr), u64>,
    smr_invoked: HashMap<Prefix, u64>,
    last_expiry_ms: u64,
    /// RLOC probing of the map-cache's locators.
    probe: probe::Prober,
    /// Publish/subscribe (which families subscribe).
    pubsub: pubsub::Subscriber,
    pub counters: Counters,
}

impl Xtr {
    pub fn new(cfg: &Config, now_ms: u64) -> Self {
        let mut x = Xtr {
            iid: Iid::default(),
            itr: false,
            etr: false,
            rlocs: Vec::new(),
            own_locators: Vec::new(),
            database: Vec::new(),
            maps: BTreeMap::new(),
            servers: Vec::new(),
            resolvers: Vec::new(),
            configured: Vec::new(),
            limits: Limits::default(),
            nonces: Nonces::default(),
            dynamic: BTreeMap::new(),
            away: BTreeMap::new(),
            cache: BTreeMap::new(),
            pending: BTreeMap::new(),
            by_nonce: HashMap::new(),
            smr_sent: HashMap::new(),
            smr_invoked: HashMap::new(),
            last_expiry_ms: 0,
            probe: probe::Prober::default(),
            pubsub: pubsub::Subscriber::default(),
            counters: Counters::default(),
        };
        x.reconfigure(cfg, now_ms, &mut Vec::new());
        x
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// True when the configuration asks for an ITR or ETR.
    pub fn wanted(cfg: &Config) -> bool {
        let (v4, v6) = (&cfg.lisp.ipv4, &cfg.lisp.ipv6);
        cfg.features.lisp && (v4.itr || v4.etr || v6.itr || v6.etr)
    }

    /// Follows a configuration change; registrations are refreshed at once when what we
    /// register or where changed.
    /// Before the forwarding core takes a new configuration: a prefix in our away table that
    /// the new configuration maps again leaves the away table first (its row is the
    /// database's row again).
    pub fn release_remapped(&mut self, cfg: &Config, out: &mut Vec<Output>) {
        let (v4, v6) = (&cfg.lisp.ipv4, &cfg.lisp.ipv6);
        let mapped: Vec<Prefix> = v4
            .database_mapping
            .iter()
            .chain(&v6.database_mapping)
            .map(|m| m.eid_prefix)
            .collect();
        let back: Vec<Prefix> = self
            .away
            .iter()
            .filter(|(p, a)| a.producer == Producer::LocalEid && mapped.contains(p))
            .map(|(p, _)| *p)
            .collect();
        for p in back {
            if let Some(a) = self.away.remove(&p)
                && a.programmed
            {
                out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                    iid: self.iid,
                    eid: p,
                })));
            }
        }
    }

    /// Follows a configuration change; registrations are refreshed at once when what we
    /// register or where changed. A database mapping removed from the configuration is
    /// withdrawn and enters the away table (generalized SMR, de-configured local EID), after
    /// the forwarding core dropped its database row.
    pub fn reconfigure(&mut self, cfg: &Config, now_ms: u64, out: &mut Vec<Output>) {
        self.probe.configure(cfg);
        self.pubsub.configure(cfg);
        let (v4, v6) = (&cfg.lisp.ipv4, &cfg.lisp.ipv6);
        let new_database = group(v4.database_mapping.iter().chain(&v6.database_mapping));
        let removed: Vec<Prefix> = self
            .database
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !new_database.iter().any(|(q, _)| q == p))
            .collect();
        for p in removed {
            self.withdraw(p, |s| s.global, now_ms, out);
            if !self.away.contains_key(&p) && self.away.len() < self.limits.away {
                self.away.insert(
                    p,
                    AwayEntry {
                        producer: Producer::LocalEid,
                        created_ms: now_ms,
                        programmed: true,
                        deconfigured: true,
                    },
                );
                out.push(Output::Table(TableOp::add(TableEntry::AwayEntry {
                    iid: self.iid,
                    eid: p,
                })));
            }
        }
        self.iid = Iid::new(cfg.instance_id()).unwrap_or_default();
        self.itr = v4.itr || v6.itr;
        self.etr = v4.etr || v6.etr;
        self.resolvers = v4
            .itr_map_resolver
            .iter()
            .chain(&v6.itr_map_resolver)
            .copied()
            .collect();
        self.database = new_database;
        self.configured = self
            .database
            .iter()
            .map(|(p, _)| *p)
            .chain(
                v4.map_cache
                    .iter()
                    .chain(&v6.map_cache)
                    .map(|m| m.eid_prefix),
            )
            .collect();
        let mut rlocs: Vec<IpAddr> = v4
            .database_mapping
            .iter()
            .chain(&v6.database_mapping)
            .chain(
                cfg.lisp
                    .dynamic_eid
                    .values()
                    .flat_map(|m| &m.database_mapping),
            )
            .map(|m| m.locator)
            .collect();
        let mine: Vec<IpAddr> = cfg
            .interfaces
            .values()
            .filter(|i| !i.shutdown)
            .flat_map(|i| i.ipv4.iter().chain(&i.ipv6).map(|a| a.addr))
            .collect();
        // Mapped locators that are ours first (a multihomed site's mappings also name the other
        // xTR's locator, which must not become our ITR-RLOC).
        rlocs.sort_by_key(|a| (a.is_ipv6(), !mine.contains(a), *a));
        rlocs.dedup();
        self.own_locators = rlocs.iter().copied().filter(|a| mine.contains(a)).collect();
        // Our interface addresses after the mapped locators: an xTR whose mappings are all gone
        // (de-configured) still solicits and answers from an address of its own.
        let mut own: Vec<IpAddr> = mine
            .iter()
            .copied()
            .filter(|a| !rlocs.contains(a))
            .collect();
        own.sort_by_key(|a| (a.is_ipv6(), *a));
        own.dedup();
        rlocs.extend(own);
        self.rlocs = rlocs;

        self.maps.clear();
        for (name, m) in &cfg.lisp.dynamic_eid {
            self.maps.insert(
                name.clone(),
                MapPolicy {
                    ranges: group(m.database_mapping.iter()),
                    extended_subnet: BTreeMap::new(),
                    notify_group: m.map_notify_group,
                    sources: BTreeMap::new(),
                },
            );
        }
        for (name, iface) in &cfg.interfaces {
            if let (crate::config::InterfaceName::Vlan(v), Some(map)) =
                (name, iface.lisp_mobility.as_ref())
                && let Some(p) = self.maps.get_mut(map)
            {
                p.extended_subnet
                    .insert(L3Interface::Vlan(*v), iface.lisp_extended_subnet_mode);
                if let Some(IpAddr::V4(a)) = iface.ipv4.first().map(|a| a.addr) {
                    p.sources.insert(L3Interface::Vlan(*v), a);
                }
            }
        }

        let old: Vec<Server> = std::mem::take(&mut self.servers);
        let mut servers: Vec<Server> = Vec::new();
        let mut add = |r: &crate::config::MapServerRef, global: bool, map: Option<&str>| {
            let i = match servers.iter().position(|s| s.address == r.address) {
                Some(i) => i,
                None => {
                    servers.push(Server {
                        address: r.address,
                        key: None,
                        proxy_reply: false,
                        global: false,
                        maps: Vec::new(),
                        next_ms: now_ms,
                        outstanding: None,
                        sent_ms: 0,
                        acked_ms: None,
                        failures: 0,
                        reliable: false,
                    });
                    servers.len() - 1
                }
            };
            let s = &mut servers[i];
            if s.key.is_none() {
                s.key = r
                    .key
                    .as_ref()
                    .and_then(|k| k.secret())
                    .and_then(|secret| AuthKey::new(KeyId::HmacSha1, secret.expose()).ok());
            }
            s.proxy_reply |= r.proxy_reply;
            s.global |= global;
            if let Some(m) = map {
                s.maps.push(m.to_string());
            }
        };
        if self.etr {
            for r in v4.etr_map_server.iter().chain(&v6.etr_map_server) {
                add(r, true, None);
            }
            for (name, m) in &cfg.lisp.dynamic_eid {
                for r in &m.map_server {
                    add(r, false, Some(name));
                }
            }
        }
        // A map without its own map-servers registers through the global ones.
        let global_maps: Vec<String> = cfg
            .lisp
            .dynamic_eid
            .iter()
            .filter(|(_, m)| m.map_server.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for s in servers.iter_mut().filter(|s| s.global) {
            s.maps.extend(global_maps.iter().cloned());
        }
        for s in &mut servers {
            s.maps.sort();
            s.maps.dedup();
            // Keep the timers of a server that stays, unless what it receives changed.
            if let Some(o) = old.iter().find(|o| o.address == s.address)
                && o.global == s.global
                && o.maps == s.maps
                && o.proxy_reply == s.proxy_reply
            {
                s.next_ms = o.next_ms;
                s.outstanding = o.outstanding;
                s.sent_ms = o.sent_ms;
                s.acked_ms = o.acked_ms;
                s.failures = o.failures;
                s.reliable = o.reliable;
            }
        }
        self.servers = servers;
    }

    // ----------------------------------------------------------------- data-plane events

    /// A source inside a dynamic-EID range appeared on a `lisp mobility` interface.
    pub fn dynamic_eid_seen(
        &mut self,
        iface: L3Interface,
        eid: IpAddr,
        map: &str,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if let Some(d) = self.dynamic.get_mut(&eid) {
            if !d.via_map_notify {
                d.last_seen_ms = now_ms;
                return;
            }
            // It was at another xTR of the site; now it talks to us: ours from here on.
            self.dynamic.remove(&eid);
        }
        if !self.maps.contains_key(map) {
            return;
        }
        if self.dynamic.len() >= self.limits.dynamic_eids {
            self.counters.dropped_table_full += 1;
            return;
        }
        self.counters.dynamic_eids_detected += 1;
        let host = Prefix::host(eid);
        // The host is here now: it is no longer away, and no longer remote.
        if let Some(a) = self.away.remove(&host)
            && a.programmed
        {
            out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                iid: self.iid,
                eid: host,
            })));
        }
        if let Some(c) = self.cache.remove(&host) {
            out.push(Output::Table(TableOp::remove(self.cache_row(&c))));
        }
        let extended = self
            .maps
            .get(map)
            .and_then(|p| p.extended_subnet.get(&iface).copied())
            .unwrap_or(false);
        // Across subnets the host is outside the interface's subnet: route it there.
        let host_route = !extended;
        if host_route {
            out.push(Output::Table(TableOp::add(TableEntry::Route {
                prefix: host,
                next_hop: NextHop::Connected(iface),
            })));
        }
        self.dynamic.insert(
            eid,
            DynamicEid {
                map: map.to_string(),
                iface,
                first_ms: now_ms,
                last_seen_ms: now_ms,
                host_route,
                via_map_notify: false,
            },
        );
        for s in self
            .servers
            .iter_mut()
            .filter(|s| s.maps.iter().any(|m| m == map))
        {
            s.next_ms = now_ms;
            s.failures = 0;
        }
        if extended {
            self.announce_to_site(iface, eid, map, out);
        }
    }

    /// Extended subnet: tell the other xTRs of the site (same VLAN) that `eid` is here now.
    fn announce_to_site(
        &mut self,
        iface: L3Interface,
        eid: IpAddr,
        map: &str,
        out: &mut Vec<Output>,
    ) {
        let Some(policy) = self.maps.get(map) else {
            return;
        };
        let (Some(group), Some(source), L3Interface::Vlan(vlan)) = (
            policy.notify_group,
            policy.sources.get(&iface).copied(),
            iface,
        ) else {
            return;
        };
        let Some(key) = self.map_key(map) else {
            self.counters.unusable_keys += 1;
            return;
        };
        let Some(record) = self.record_for_prefix(Prefix::host(eid)) else {
            return;
        };
        let notify = MapNotify {
            ack: false,
            nonce: self.nonces.fresh(),
            auth: crate::wire::lisp::auth::Authentication::none(),
            records: vec![record],
            xtr: None,
        };
        let Ok(payload) = notify.to_signed_vec(&key) else {
            return;
        };
        self.counters.site_notifies_sent += 1;
        out.push(Output::SiteNotify {
            vlan,
            source,
            group,
            payload,
        });
    }

    /// The key that signs a map's messages: its map-servers' (the site's shared key).
    fn map_key(&self, map: &str) -> Option<AuthKey> {
        self.servers
            .iter()
            .filter(|s| s.maps.iter().any(|m| m == map))
            .find_map(|s| s.key.clone())
    }

    /// A site-based Map-Notify to `group` received in `vlan` from another xTR of the site:
    /// the EIDs it names are at that xTR now; we stop claiming them and list them with `*`.
    pub fn site_notify(
        &mut self,
        payload: &[u8],
        group: Ipv4Addr,
        vlan: Option<VlanId>,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some((map, iface)) = self.maps.iter().find_map(|(name, p)| {
            if p.notify_group != Some(group) {
                return None;
            }
            let iface = p
                .sources
                .keys()
                .find(|i| vlan.is_none_or(|v| **i == L3Interface::Vlan(v)))
                .copied()?;
            Some((name.clone(), iface))
        }) else {
            self.counters.site_notifies_refused += 1;
            return;
        };
        let verified = self.map_key(&map).and_then(|key| {
            let index = MapNotify::parse(payload).ok()?.auth.key_index();
            MapNotify::parse_verified(payload, &key.with_key_index(index)).ok()
        });
        let Some(notify) = verified else {
            self.counters.site_notifies_refused += 1;
            return;
        };
        self.counters.site_notifies_received += 1;
        for record in &notify.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            let eid = prefix.addr();
            let in_map = self
                .maps
                .get(&map)
                .is_some_and(|p| p.ranges.iter().any(|(r, _)| r.contains(eid)));
            let ours = record.locators.iter().any(|l| self.rlocs.contains(&l.rloc));
            if ours || !in_map || prefix.len() != host_len(&prefix) {
                continue;
            }
            if let Some(old) = self.dynamic.remove(&eid)
                && old.host_route
            {
                out.push(Output::Table(TableOp::remove(TableEntry::Route {
                    prefix,
                    next_hop: NextHop::Connected(old.iface),
                })));
            }
            // In our site, on the extended LAN: not away (whatever the map-server said first).
            if let Some(a) = self.away.remove(&prefix)
                && a.programmed
            {
                out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                    iid: self.iid,
                    eid: prefix,
                })));
            }
            if self.dynamic.len() >= self.limits.dynamic_eids {
                self.counters.dropped_table_full += 1;
                continue;
            }
            self.dynamic.insert(
                eid,
                DynamicEid {
                    map: map.clone(),
                    iface,
                    first_ms: now_ms,
                    last_seen_ms: now_ms,
                    host_route: false,
                    via_map_notify: true,
                },
            );
        }
    }

    /// A decapsulated packet for an EID that is not (or no longer) here: solicit the sender.
    pub fn eid_not_here(
        &mut self,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        self.send_smr(eid, source_rloc, inner_source, now_ms, out);
    }

    /// A decapsulated packet for a local EID without a route (generalized SMR): the prefix
    /// goes to the away table, is withdrawn from the map-servers, and the sender is solicited.
    pub fn local_eid_no_route(
        &mut self,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if let Some(prefix) = self.database_prefix(eid)
            && !self.away.contains_key(&prefix)
            && self.away.len() < self.limits.away
        {
            self.away.insert(
                prefix,
                AwayEntry {
                    producer: Producer::LocalEid,
                    created_ms: now_ms,
                    programmed: false,
                    deconfigured: false,
                },
            );
            self.withdraw(prefix, |s| s.global, now_ms, out);
        }
        self.send_smr(eid, source_rloc, inner_source, now_ms, out);
    }

    /// The ITR has no usable mapping for `dest`: ask the map-resolver.
    /// A packet from the local host `source` to `dest` found no map-cache entry: ask, with
    /// `source` as the Map-Request's Source-EID (RFC 9301 §5.3).
    pub fn map_cache_miss(
        &mut self,
        dest: IpAddr,
        source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if !self.itr {
            return;
        }
        let prefix = Prefix::host(dest);
        if self.pending.keys().any(|p| p.contains(dest)) {
            return;
        }
        // Only a unicast address of the destination's family is a Source-EID.
        let source = Some(source)
            .filter(|s| s.is_ipv4() == dest.is_ipv4() && !s.is_unspecified() && !s.is_multicast());
        self.request(prefix, source, false, now_ms, out);
    }

    // ----------------------------------------------------------------- received messages

    /// A LISP control message received on UDP 4342 from `from`.
    pub fn receive(
        &mut self,
        payload: &[u8],
        from: SocketAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let msg = match parse_message(payload) {
            Ok(m) => m,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        match msg {
            LispMessage::MapReply(r) if r.probe => self.probe_reply(&r, from, now_ms, out),
            LispMessage::MapReply(r) => self.map_reply(r, from, now_ms, out),
            LispMessage::MapRequest(r) if r.smr => self.smr_received(r, now_ms, out),
            LispMessage::MapRequest(r) => self.answer(&r, from.port(), out),
            LispMessage::Ecm(e) => match *e.message {
                // A map-server forwarding an ITR's request to us, the ETR.
                LispMessage::MapRequest(r) if !r.smr => self.answer(&r, e.inner_src_port, out),
                _ => self.counters.map_requests_ignored += 1,
            },
            LispMessage::MapNotify(n) if !n.ack => self.map_notify(payload, from, now_ms, out),
            _ => self.counters.map_requests_ignored += 1,
        }
    }

    fn map_reply(&mut self, r: MapReply, from: SocketAddr, now_ms: u64, out: &mut Vec<Output>) {
        let Some(asked) = self.by_nonce.remove(&r.nonce) else {
            self.counters.map_replies_unexpected += 1;
            return;
        };
        self.pending.remove(&asked);
        self.counters.map_replies_accepted += 1;
        for record in &r.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            // Only what was asked for: a reply cannot plant mappings for unrelated space.
            if !prefix.covers(&asked) && !asked.covers(&prefix) {
                continue;
            }
            if self.configured.contains(&prefix)
                || self.dynamic.contains_key(&prefix.addr()) && prefix.len() == host_len(&prefix)
                || self.away.contains_key(&prefix)
            {
                continue;
            }
            let locators: Vec<Locator> = record
                .locators
                .iter()
                .filter(|l| l.reachable && l.priority != 255)
                .map(|l| l.to_hal())
                .collect();
            let action = locators.is_empty().then(|| record.action.to_hal());
            if record.ttl == 0 {
                if let Some(c) = self.cache.remove(&prefix) {
                    out.push(Output::Table(TableOp::remove(self.cache_row(&c))));
                }
                continue;
            }
            let expires_ms = now_ms.saturating_add(u64::from(record.ttl) * 60_000);
            let existed = self.cache.get(&prefix).map(|c| c.created_ms);
            if existed.is_none() && self.cache.len() >= self.limits.map_cache {
                self.counters.dropped_table_full += 1;
                continue;
            }
            let entry = CacheEntry {
                prefix,
                locators,
                action,
                created_ms: existed.unwrap_or(now_ms),
                modified_ms: now_ms,
                expires_ms,
                map_source: from.ip(),
                source: CacheSource::MapReply,
            };
            let row = self.cache_row(&entry);
            out.push(Output::Table(if existed.is_some() {
                TableOp::update(row)
            } else {
                TableOp::add(row)
            }));
            self.cache.insert(prefix, entry);
        }
    }

    /// An SMR: the mapping of its Source-EID changed; ask the mapping system again.
    fn smr_received(&mut self, r: MapRequest, now_ms: u64, out: &mut Vec<Output>) {
        self.counters.smrs_received += 1;
        let Some(changed) = r.source_eid.ip() else {
            self.counters.smrs_ignored += 1;
            return;
        };
        // Only for EIDs in our cache: a forged SMR can cause at most one extra lookup.
        let Some(prefix) = self
            .cache
            .keys()
            .filter(|p| p.contains(changed))
            .max_by_key(|p| p.len())
            .copied()
        else {
            self.counters.smrs_ignored += 1;
            return;
        };
        if !self.rate_ok_prefix(prefix, now_ms) {
            self.counters.smrs_ignored += 1;
            return;
        }
        let talker = r.records.first().and_then(|e| e.eid.ip());
        // Ask for the EID that changed, not the cached prefix: a host that moved out of a
        // cached /24 is answered with its own /32 by whoever registers it now.
        let asked = Prefix::host(changed);
        self.pending.remove(&asked);
        self.request(asked, talker, true, now_ms, out);
    }

    /// Answers a Map-Request for our EIDs with a Map-Reply to its first usable ITR-RLOC.
    fn answer(&mut self, r: &MapRequest, reply_port: u16, out: &mut Vec<Output>) {
        let Some(asked) = r.records.first().and_then(|e| e.eid.ip()) else {
            self.counters.map_requests_ignored += 1;
            return;
        };
        let record = self.own_record(asked, RECORD_TTL_MINUTES);
        if record.is_none() && !r.probe {
            self.counters.map_requests_ignored += 1;
            return;
        }
        // An ITR-RLOC of the family of our first RLOC, else of a family we have an RLOC of
        // (a dual-stack ITR lists both; an IPv6-only one only its IPv6 RLOC).
        let ours = |a: &&IpAddr| self.rlocs.iter().any(|me| me.is_ipv4() == a.is_ipv4());
        let Some(itr) = r
            .itr_rlocs
            .iter()
            .find(|a| {
                self.rlocs
                    .first()
                    .is_none_or(|me| me.is_ipv4() == a.is_ipv4())
            })
            .or_else(|| r.itr_rlocs.iter().find(ours))
            .copied()
        else {
            self.counters.map_requests_ignored += 1;
            return;
        };
        // An RLOC-probe is answered even for an EID no longer here (reachability is what it
        // asks; no record then), with A=1 and our locator marked probed (RFC 9301 §7.1).
        let records: Vec<EidRecord> = record
            .into_iter()
            .map(|mut record| {
                record.authoritative = true;
                if r.probe {
                    let me = self.rlocs.iter().find(|a| a.is_ipv4() == itr.is_ipv4());
                    for l in &mut record.locators {
                        l.probed = Some(&l.rloc) == me;
                    }
                }
                record
            })
            .collect();
        let reply = MapReply {
            probe: r.probe,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: r.nonce,
            records,
        };
        let Ok(payload) = reply.to_vec() else { return };
        self.counters.map_requests_answered += 1;
        out.push(Output::Send {
            to: SocketAddr::new(itr, reply_port),
            from_port: LISP_CONTROL_PORT,
            payload,
        });
    }

    /// A Map-Notify from one of our map-servers: the acknowledgement of our register, or news
    /// that another site now registers one of our dynamic EIDs.
    fn map_notify(&mut self, payload: &[u8], from: SocketAddr, now_ms: u64, out: &mut Vec<Output>) {
        let Some(i) = self.servers.iter().position(|s| s.address == from.ip()) else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        let Some(key) = self.servers[i].key.clone() else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        let key = match MapNotify::parse(payload) {
            Ok(n) => key.with_key_index(n.auth.key_index()),
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let Ok(notify) = MapNotify::parse_verified(payload, &key) else {
            self.counters.map_notifies_refused += 1;
            return;
        };
        self.counters.map_notifies_accepted += 1;
        let s = &mut self.servers[i];
        if s.outstanding == Some(notify.nonce) {
            s.outstanding = None;
            s.acked_ms = Some(now_ms);
            s.failures = 0;
            s.next_ms = s.sent_ms.saturating_add(REGISTER_INTERVAL_MS);
            let map_server = s.address;
            if !s.reliable
                && let Some(local) = self
                    .rlocs
                    .iter()
                    .find(|r| r.is_ipv4() == map_server.is_ipv4())
                    .copied()
            {
                out.push(Output::OpenSession { map_server, local });
            }
            return;
        }
        // Unsolicited: the mapping of these prefixes changed on the map-server (a publication
        // to which we subscribed, or news about our own EIDs).
        self.pubsub_apply(&notify, from.ip(), now_ms, out);
        for record in &notify.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            let ours = record.locators.iter().any(|l| self.rlocs.contains(&l.rloc));
            if ours || prefix.len() != host_len(&prefix) {
                continue;
            }
            if self.dynamic.contains_key(&prefix.addr()) {
                self.moved_away(prefix, now_ms, out);
            } else if self.database_prefix(prefix.addr()).is_some() {
                self.remote_inside(prefix, now_ms, out);
            } else {
                continue;
            }
            self.cache_notified(prefix, record, from.ip(), now_ms, out);
        }
        if let Ok(ack) = MapNotify::ack_of(&notify).to_signed_vec(&key) {
            out.push(Output::Send {
                to: SocketAddr::new(from.ip(), LISP_CONTROL_PORT),
                from_port: LISP_CONTROL_PORT,
                payload: ack,
            });
        }
    }

    /// Another site registered a host inside one of our database prefixes: we must not deliver
    /// it locally any more (away table) — packets for it are SMR'd to their ITR instead.
    fn remote_inside(&mut self, host: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        if self.away.contains_key(&host) || self.away.len() >= self.limits.away {
            return;
        }
        self.away.insert(
            host,
            AwayEntry {
                producer: Producer::RemoteEid,
                created_ms: now_ms,
                programmed: true,
                deconfigured: false,
            },
        );
        out.push(Output::Table(TableOp::add(TableEntry::AwayEntry {
            iid: self.iid,
            eid: host,
        })));
    }

    /// A host now away: its new locators, as the Map-Notify gives them, in the map-cache (until
    /// the record's TTL, at most the away entry's lifetime).
    fn cache_notified(
        &mut self,
        host: Prefix,
        record: &EidRecord,
        map_server: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if !self.away.contains_key(&host) {
            return;
        }
        let locators: Vec<Locator> = record
            .locators
            .iter()
            .filter(|l| l.reachable && l.priority != 255 && !self.rlocs.contains(&l.rloc))
            .map(|l| l.to_hal())
            .collect();
        let existed = self.cache.get(&host).map(|c| c.created_ms);
        if locators.is_empty() || existed.is_none() && self.cache.len() >= self.limits.map_cache {
            return;
        }
        let ttl_ms = (u64::from(record.ttl) * 60_000).min(AWAY_LIFETIME_MS);
        let entry = CacheEntry {
            prefix: host,
            locators,
            action: None,
            created_ms: existed.unwrap_or(now_ms),
            modified_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            map_source: map_server,
            source: CacheSource::MapNotify,
        };
        let row = self.cache_row(&entry);
        out.push(Output::Table(if existed.is_some() {
            TableOp::update(row)
        } else {
            TableOp::add(row)
        }));
        self.cache.insert(host, entry);
    }

    /// Another site registered our dynamic EID: forget it, put it in the away table.
    fn moved_away(&mut self, host: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        // Held by another xTR of our site (site-based Map-Notify): the map-server only tells
        // us it is not ours, which we know; it stays listed.
        if self
            .dynamic
            .get(&host.addr())
            .is_none_or(|d| d.via_map_notify)
        {
            return;
        }
        let Some(d) = self.dynamic.remove(&host.addr()) else {
            return;
        };
        self.counters.dynamic_eids_moved_away += 1;
        if d.host_route {
            out.push(Output::Table(TableOp::remove(TableEntry::Route {
                prefix: host,
                next_hop: NextHop::Connected(d.iface),
            })));
        }
        if self.away.len() < self.limits.away && !self.away.contains_key(&host) {
            self.away.insert(
                host,
                AwayEntry {
                    producer: Producer::DynEid,
                    created_ms: now_ms,
                    programmed: true,
                    deconfigured: false,
                },
            );
            out.push(Output::Table(TableOp::add(TableEntry::AwayEntry {
                iid: self.iid,
                eid: host,
            })));
        }
    }

    // ----------------------------------------------------------------- timers

    /// Registrations, retransmissions and expiry that are due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        // Expiry scans whole tables: once a second is plenty.
        if now_ms.saturating_sub(self.last_expiry_ms) >= 1_000 || now_ms < self.last_expiry_ms {
            self.last_expiry_ms = now_ms;
            self.expire(now_ms, out);
        }
        for i in 0..self.servers.len() {
            if self.servers[i].next_ms <= now_ms {
                self.register(i, now_ms, out);
            }
        }
        let due: Vec<Prefix> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_ms <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for prefix in due {
            self.retransmit(prefix, now_ms, out);
        }
        self.probe_tick(now_ms, out);
    }

    fn expire(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let keep = |last: &u64| now_ms.saturating_sub(*last) < SMR_INTERVAL_MS;
        self.smr_sent.retain(|_, t| keep(t));
        self.smr_invoked.retain(|_, t| keep(t));
        let stale: Vec<Prefix> = self
            .cache
            .values()
            .filter(|c| c.expires_ms <= now_ms)
            .map(|c| c.prefix)
            .collect();
        for p in stale {
            if let Some(c) = self.cache.remove(&p) {
                out.push(Output::Table(TableOp::remove(self.cache_row(&c))));
            }
        }
        let idle: Vec<IpAddr> = self
            .dynamic
            .iter()
            .filter(|(_, d)| now_ms.saturating_sub(d.last_seen_ms) >= DYNAMIC_EID_TIMEOUT_MS)
            .map(|(a, _)| *a)
            .collect();
        for eid in idle {
            let Some(d) = self.dynamic.remove(&eid) else {
                continue;
            };
            if d.via_map_notify {
                continue;
            }
            self.counters.dynamic_eids_timed_out += 1;
            let host = Prefix::host(eid);
            if d.host_route {
                out.push(Output::Table(TableOp::remove(TableEntry::Route {
                    prefix: host,
                    next_hop: NextHop::Connected(d.iface),
                })));
            }
            let map = d.map.clone();
            self.withdraw(host, |s| s.maps.contains(&map), now_ms, out);
        }
        let old: Vec<(Prefix, AwayEntry)> = self
            .away
            .iter()
            .filter(|(_, a)| {
                let life = match a.producer {
                    Producer::DynEid | Producer::RemoteEid => AWAY_LIFETIME_MS,
                    Producer::LocalEid if a.deconfigured => AWAY_LIFETIME_MS,
                    Producer::LocalEid => NO_ROUTE_HOLD_MS,
                };
                now_ms.saturating_sub(a.created_ms) >= life
            })
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (p, a) in old {
            self.away.remove(&p);
            if a.programmed {
                out.push(Output::Table(TableOp::remove(TableEntry::AwayEntry {
                    iid: self.iid,
                    eid: p,
                })));
            }
            if a.producer == Producer::LocalEid {
                for s in self.servers.iter_mut().filter(|s| s.global) {
                    s.next_ms = now_ms;
                }
            }
        }
    }

    /// The reliable session to `map_server` is up: registrations go over it from now on.
    pub fn session_up(&mut self, map_server: IpAddr) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.reliable = true;
        }
    }

    /// The session went down: back to periodic UDP registration at once.
    ///
    /// A session that was never up (the map-server refused or did not answer: no reliable
    /// transport there) changes nothing: UDP registration goes on at its pace, and the session
    /// is tried again after the next acknowledged register — not at once, which would loop.
    pub fn session_down(&mut self, map_server: IpAddr, was_up: bool, now_ms: u64) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.reliable = false;
            if was_up {
                s.outstanding = None;
                s.failures = 0;
                s.next_ms = now_ms;
            }
        }
    }

    /// The map-server asks for our full state over the session.
    pub fn refresh_requested(&mut self, map_server: IpAddr, now_ms: u64) {
        for s in self.servers.iter_mut().filter(|s| s.address == map_server) {
            s.next_ms = now_ms;
        }
    }

    /// Sends the full registration of server `i` (in as many Map-Registers as needed).
    fn register(&mut self, i: usize, now_ms: u64, out: &mut Vec<Output>) {
        if self.servers[i].reliable {
            self.register_reliable(i, out);
            return;
        }
        let records = self.records_for(i);
        let s = &self.servers[i];
        let Some(key) = s.key.clone() else {
            self.counters.unusable_keys += 1;
            self.servers[i].next_ms = now_ms.saturating_add(REGISTER_INTERVAL_MS);
            return;
        };
        let (address, proxy) = (s.address, s.proxy_reply);
        if records.is_empty() {
            self.servers[i].next_ms = now_ms.saturating_add(REGISTER_INTERVAL_MS);
            return;
        }
        let nonce = self.nonces.fresh();
        for chunk in records.chunks(RECORDS_PER_REGISTER) {
            let mut reg = MapRegister::new(chunk.to_vec());
            reg.nonce = nonce;
            reg.want_map_notify = true;
            reg.proxy_reply = proxy;
            if let Ok(payload) = reg.to_signed_vec(&key) {
                self.counters.registers_sent += 1;
                out.push(Output::Send {
                    to: SocketAddr::new(address, LISP_CONTROL_PORT),
                    from_port: LISP_CONTROL_PORT,
                    payload,
                });
            }
        }
        let s = &mut self.servers[i];
        s.outstanding = Some(nonce);
        s.sent_ms = now_ms;
        // Until a Map-Notify confirms, retry soon (1, 2, 4 … s), never slower than the refresh.
        let backoff = 1_000u64 << s.failures.min(6);
        s.next_ms = now_ms.saturating_add(backoff.min(REGISTER_INTERVAL_MS));
        s.failures = s.failures.saturating_add(1);
    }

    /// Over the session: one Map-Register per record; nothing periodic (the session is the
    /// liveness), the next one when something changes or the map-server asks.
    fn register_reliable(&mut self, i: usize, out: &mut Vec<Output>) {
        let records = self.records_for(i);
        let s = &mut self.servers[i];
        s.next_ms = u64::MAX;
        let (address, proxy) = (s.address, s.proxy_reply);
        let Some(key) = s.key.clone() else {
            self.counters.unusable_keys += 1;
            return;
        };
        for record in records {
            let mut reg = MapRegister::new(vec![record]);
            reg.nonce = self.nonces.fresh();
            reg.want_map_notify = true;
            reg.proxy_reply = proxy;
            if let Ok(payload) = reg.to_signed_vec(&key) {
                self.counters.registers_sent += 1;
                out.push(Output::SendReliable {
                    map_server: address,
                    payload,
                });
            }
        }
    }

    /// A register with TTL 0 for `prefix` to the servers `which` selects: withdraw it.
    fn withdraw(
        &mut self,
        prefix: Prefix,
        which: impl Fn(&Server) -> bool,
        _now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(mut record) = self.record_for_prefix(prefix) else {
            return;
        };
        record.ttl = 0;
        let nonce = self.nonces.fresh();
        for s in self.servers.iter().filter(|s| which(s)) {
            let Some(key) = s.key.as_ref() else { continue };
            let mut reg = MapRegister::new(vec![record.clone()]);
            reg.nonce = nonce;
            if let Ok(payload) = reg.to_signed_vec(key) {
                self.counters.registers_sent += 1;
                out.push(if s.reliable {
                    Output::SendReliable {
                        map_server: s.address,
                        payload,
                    }
                } else {
                    Output::Send {
                        to: SocketAddr::new(s.address, LISP_CONTROL_PORT),
                        from_port: LISP_CONTROL_PORT,
                        payload,
                    }
                });
            }
        }
    }

    fn request(
        &mut self,
        prefix: Prefix,
        source_eid: Option<IpAddr>,
        smr_invoked: bool,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if self.resolvers.is_empty() {
            return;
        }
        if self.pending.len() >= self.limits.pending_requests {
            self.counters.dropped_table_full += 1;
            return;
        }
        let nonce = self.nonces.fresh();
        self.pending.insert(
            prefix,
            Pending {
                nonce,
                source_eid,
                smr_invoked,
                attempts: 0,
                resolver: 0,
                next_ms: now_ms,
            },
        );
        self.by_nonce.insert(nonce, prefix);
        self.retransmit(prefix, now_ms, out);
    }

    /// Sends (or re-sends) the Map-Request for `prefix` to the current map-resolver.
    fn retransmit(&mut self, prefix: Prefix, now_ms: u64, out: &mut Vec<Output>) {
        let Some(p) = self.pending.get_mut(&prefix) else {
            return;
        };
        if p.attempts >= REQUEST_ATTEMPTS {
            // Unanswered: give up; the next miss asks again (rate-limited by the data path).
            self.by_nonce.remove(&p.nonce);
            self.pending.remove(&prefix);
            return;
        }
        if p.attempts == 2 && self.resolvers.len() > 1 {
            p.resolver = (p.resolver + 1) % self.resolvers.len();
            self.counters.resolver_switches += 1;
        }
        // A new nonce per transmission; answers to the old ones are still accepted.
        let nonce = self.nonces.fresh();
        self.by_nonce.insert(nonce, prefix);
        p.nonce = nonce;
        let delay = REQUEST_RETRY_MS
            .get(p.attempts as usize)
            .copied()
            .unwrap_or(REQUEST_RETRY_MS[1]);
        p.attempts += 1;
        p.next_ms = now_ms.saturating_add(delay);
        let (resolver, smr_invoked, source_eid) = (
            self.resolvers.get(p.resolver).copied(),
            p.smr_invoked,
            p.source_eid,
        );
        let Some(resolver) = resolver else { return };
        let Some(itr) = self
            .rlocs
            .iter()
            .find(|r| r.is_ipv4() == resolver.is_ipv4())
            .copied()
        else {
            return;
        };
        let inner_src = source_eid
            .filter(|s| s.is_ipv4() == prefix.addr().is_ipv4())
            .or(Some(itr).filter(|i| i.is_ipv4() == prefix.addr().is_ipv4()))
            // An EID of the other family than the resolver's (IPv6 EIDs over an IPv4
            // underlay, or the reverse): the inner header is of the EID's family.
            .or_else(|| {
                self.rlocs
                    .iter()
                    .copied()
                    .find(|r| r.is_ipv4() == prefix.addr().is_ipv4())
            });
        let Some(inner_src) = inner_src else { return };
        let req = MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked,
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid: source_eid.map(|a| self.address(a)).unwrap_or(Address::None),
            itr_rlocs: self.itr_rlocs(itr),
            records: vec![self.eid_prefix(prefix)],
            map_reply_record: None,
            subscribe: self.subscription_for(prefix),
        };
        let ecm = Ecm {
            ddt: false,
            inner_src,
            inner_dst: prefix.addr(),
            inner_ttl: 64,
            inner_src_port: LISP_CONTROL_PORT,
            inner_dst_port: LISP_CONTROL_PORT,
            message: Box::new(LispMessage::MapRequest(req)),
        };
        let Ok(payload) = ecm.to_vec() else { return };
        if smr_invoked {
            self.counters.smr_invoked_sent += 1;
        }
        self.counters.map_requests_sent += 1;
        out.push(Output::Send {
            to: SocketAddr::new(resolver, LISP_CONTROL_PORT),
            from_port: LISP_CONTROL_PORT,
            payload,
        });
    }

    /// The ITR-RLOC list of a Map-Request sent from `first`: `first`, then our locator of the
    /// other address family when we have one (a dual-stack xTR can be answered over either).
    fn itr_rlocs(&self, first: IpAddr) -> Vec<IpAddr> {
        let mut v = vec![first];
        v.extend(
            self.own_locators
                .iter()
                .find(|a| a.is_ipv4() != first.is_ipv4()),
        );
        v
    }

    fn send_smr(
        &mut self,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        let key = (source_rloc, eid);
        if self
            .smr_sent
            .get(&key)
            .is_some_and(|t| now_ms.saturating_sub(*t) < SMR_INTERVAL_MS)
        {
            return;
        }
        if self.smr_sent.len() >= self.limits.rate_entries {
            self.counters.dropped_table_full += 1;
            return;
        }
        self.smr_sent.insert(key, now_ms);
        let Some(me) = self
            .rlocs
            .iter()
            .find(|r| r.is_ipv4() == source_rloc.is_ipv4())
            .copied()
        else {
            return;
        };
        // Source-EID: the EID whose mapping changed; record: who was talking to it (§4.3).
        let req = MapRequest {
            authoritative: false,
            probe: true,
            smr: true,
            pitr: false,
            smr_invoked: false,
            local_xtr: false,
            dont_map_reply: true,
            nonce: self.nonces.fresh(),
            source_eid: self.address(eid),
            itr_rlocs: vec![me],
            records: vec![self.eid_prefix(Prefix::host(inner_source))],
            map_reply_record: None,
            subscribe: None,
        };
        let Ok(payload) = req.to_vec() else { return };
        self.counters.smrs_sent += 1;
        out.push(Output::Send {
            to: SocketAddr::new(source_rloc, LISP_CONTROL_PORT),
            from_port: LISP_CONTROL_PORT,
            payload,
        });
    }

    fn rate_ok_prefix(&mut self, prefix: Prefix, now_ms: u64) -> bool {
        if self
            .smr_invoked
            .get(&prefix)
            .is_some_and(|t| now_ms.saturating_sub(*t) < SMR_INTERVAL_MS)
        {
            return false;
        }
        if self.smr_invoked.len() >= self.limits.rate_entries {
            return false;
        }
        self.smr_invoked.insert(prefix, now_ms);
        true
    }

    // ----------------------------------------------------------------- helpers

    fn address(&self, a: IpAddr) -> Address {
        if self.iid.get() == 0 {
            Address::Ip(a)
        } else {
            Address::InstanceId {
                iid: self.iid.get(),
                mask_len: 0,
                addr: Some(a),
            }
        }
    }

    fn eid_prefix(&self, p: Prefix) -> EidPrefix {
        if self.iid.get() == 0 {
            EidPrefix::from_prefix(p)
        } else {
            EidPrefix::with_iid(self.iid, p)
        }
    }

    fn database_prefix(&self, eid: IpAddr) -> Option<Prefix> {
        self.database
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| p.contains(eid))
            .max_by_key(|p| p.len())
    }

    /// The EID-record for a prefix we own (dynamic host or database mapping).
    fn record_for_prefix(&self, prefix: Prefix) -> Option<EidRecord> {
        if prefix.len() == host_len(&prefix)
            && let Some(d) = self.dynamic.get(&prefix.addr())
            && let Some(policy) = self.maps.get(&d.map)
        {
            let locs = policy
                .ranges
                .iter()
                .find(|(r, _)| r.contains(prefix.addr()))
                .map(|(_, l)| l.clone())?;
            return Some(self.record(prefix, locs, RECORD_TTL_MINUTES));
        }
        // A dynamic EID that just left: its map's locators.
        if prefix.len() == host_len(&prefix) {
            for policy in self.maps.values() {
                if let Some((_, l)) = policy
                    .ranges
                    .iter()
                    .find(|(r, _)| r.contains(prefix.addr()))
                {
                    return Some(self.record(prefix, l.clone(), RECORD_TTL_MINUTES));
                }
            }
        }
        self.database
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(p, l)| self.record(*p, l.clone(), RECORD_TTL_MINUTES))
    }

    /// The record that answers a Map-Request for `eid`: a detected dynamic EID, else the most
    /// specific registered database mapping.
    fn own_record(&self, eid: IpAddr, ttl: u32) -> Option<EidRecord> {
        if let Some(d) = self.dynamic.get(&eid) {
            return (!d.via_map_notify)
                .then(|| self.record_for_prefix(Prefix::host(eid)))
                .flatten();
        }
        let p = self.database_prefix(eid)?;
        if self.away.contains_key(&p) {
            return None;
        }
        self.database
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(q, l)| self.record(*q, l.clone(), ttl))
    }

    fn record(&self, prefix: Prefix, locators: Vec<LocatorRecord>, ttl: u32) -> EidRecord {
        EidRecord {
            ttl,
            prefix: self.eid_prefix(prefix),
            action: Action::NoAction,
            authoritative: true,
            map_version: 0,
            locators,
        }
    }

    /// Everything server `i` should hold for us.
    fn records_for(&self, i: usize) -> Vec<EidRecord> {
        let s = &self.servers[i];
        let mut records = Vec::new();
        if s.global {
            for (p, l) in &self.database {
                if !self.away.contains_key(p) {
                    records.push(self.record(*p, l.clone(), RECORD_TTL_MINUTES));
                }
            }
        }
        for (eid, d) in &self.dynamic {
            if !d.via_map_notify
                && s.maps.contains(&d.map)
                && let Some(r) = self.record_for_prefix(Prefix::host(*eid))
            {
                records.push(r);
            }
        }
        records
    }

    fn cache_row(&self, c: &CacheEntry) -> TableEntry {
        TableEntry::LispMapCache {
            iid: self.iid,
            eid: c.prefix,
            locators: self.usable_locators(&c.locators),
            negative: c.action.unwrap_or(NegativeAction::NoAction),
        }
    }

    // ----------------------------------------------------------------- views

    pub fn map_cache(&self) -> impl Iterator<Item = &CacheEntry> {
        self.cache.values()
    }

    pub fn dynamic_eids(&self) -> impl Iterator<Item = (&IpAddr, &DynamicEid)> {
        self.dynamic.iter()
    }

    pub fn away(&self) -> impl Iterator<Item = (&Prefix, &AwayEntry)> {
        self.away.iter()
    }

    pub fn instance_id(&self) -> Iid {
        self.iid
    }

    /// Map-servers with the time of their last acknowledgement.
    pub fn registrations(&self) -> Vec<(IpAddr, Option<u64>)> {
        self.servers
            .iter()
            .map(|s| (s.address, s.acked_ms))
            .collect()
    }
}

fn host_len(p: &Prefix) -> u8 {
    if p.addr().is_ipv4() { 32 } else { 128 }
}

/// Mapping lines grouped into one locator set per EID prefix.
fn group<'a>(
    lines: impl Iterator<Item = &'a crate::config::DatabaseMapping>,
) -> Vec<(Prefix, Vec<LocatorRecord>)> {
    let mut by: BTreeMap<Prefix, Vec<LocatorRecord>> = BTreeMap::new();
    for m in lines {
        let locs = by.entry(m.eid_prefix).or_default();
        if !locs.iter().any(|l| l.rloc == m.locator) {
            locs.push(LocatorRecord::local(m.locator, m.priority, m.weight));
        }
    }
    for l in by.values_mut() {
        l.sort_by_key(|l| (l.rloc.is_ipv6(), l.rloc));
    }
    by.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use roamer_hal::VlanId;

    const MS: &str = "192.0.2.100";
    const KEY: &[u8] = b"roamer-key";

    fn cfg(extra: &str) -> Config {
        let text = format!(
            "feature lisp\nfeature interface-vlan\nvlan 10\n\
             interface Vlan10\n  ip address 10.9.0.1/24\n  lisp mobility roam\n  lisp extended-subnet-mode\n\
             ip lisp itr-etr\n\
             ip lisp itr map-resolver {MS}\n\
             ip lisp etr map-server {MS} key roamer-key\n\
             ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 100\n\
             lisp dynamic-eid roam\n  database-mapping 10.9.0.0/24 192.0.2.1 priority 1 weight 100\n{extra}"
        );
        config::parse(&text, Syntax::Cli).unwrap().0
    }

    fn key() -> AuthKey {
        AuthKey::new(KeyId::HmacSha1, KEY).unwrap()
    }

    fn ms() -> SocketAddr {
        SocketAddr::new(MS.parse().unwrap(), 4342)
    }

    fn sends(out: &[Output]) -> Vec<(SocketAddr, Vec<u8>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, payload, .. } => Some((*to, payload.clone())),
                _ => None,
            })
            .collect()
    }

    fn tables(out: &[Output]) -> Vec<TableOp> {
        out.iter()
            .filter_map(|o| match o {
                Output::Table(op) => Some(op.clone()),
                _ => None,
            })
            .collect()
    }

    /// A registered-style record: `prefix` at `rloc`, priority 1 weight 100, TTL 1440.
    fn record(prefix: Prefix, rloc: &str) -> EidRecord {
        EidRecord {
            ttl: 1440,
            prefix: EidPrefix::from_prefix(prefix),
            action: Action::NoAction,
            authoritative: true,
            map_version: 0,
            locators: vec![LocatorRecord::local(rloc.parse().unwrap(), 1, 100)],
        }
    }

    fn vlan10() -> L3Interface {
        L3Interface::Vlan(VlanId::new(10).unwrap())
    }

    #[test]
    fn registers_signed_with_the_m_bit_retries_until_acknowledged_then_every_minute() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        x.tick(0, &mut out);
        let s = sends(&out);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, ms());
        let reg = MapRegister::parse_verified(&s[0].1, &key()).unwrap();
        assert!(reg.want_map_notify && !reg.proxy_reply);
        assert_eq!(reg.records.len(), 1);
        assert_eq!(
            reg.records[0].prefix.prefix(),
            Some("10.1.0.0/24".parse().unwrap())
        );
        assert_eq!(
            reg.records[0].locators[0].rloc,
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        // No answer: retried after 1 s, then 2 s.
        out.clear();
        x.tick(999, &mut out);
        assert!(out.is_empty());
        x.tick(1000, &mut out);
        assert_eq!(sends(&out).len(), 1);
        let retry = MapRegister::parse(&sends(&out)[0].1).unwrap();
        out.clear();
        x.tick(2999, &mut out);
        assert!(out.is_empty());
        // The Map-Notify acknowledging the last register: next one a minute after it.
        let notify = MapNotify::acknowledging(&retry)
            .to_signed_vec(&key())
            .unwrap();
        x.receive(&notify, ms(), 1200, &mut out);
        // No answer to an acknowledgement; the reliable session is tried next (seed 003).
        assert_eq!(
            out,
            vec![Output::OpenSession {
                map_server: ms().ip(),
                local: "192.0.2.1".parse().unwrap()
            }]
        );
        out.clear();
        assert_eq!(x.counters.map_notifies_accepted, 1);
        x.tick(60_999, &mut out);
        assert!(out.is_empty());
        x.tick(61_000, &mut out);
        assert_eq!(sends(&out).len(), 1);
        // A notify signed with another key is refused.
        let forged = MapNotify::acknowledging(&retry)
            .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"wrong").unwrap())
            .unwrap();
        x.receive(&forged, ms(), 61_001, &mut out);
        assert_eq!(x.counters.map_notifies_refused, 1);
    }

    #[test]
    fn a_dynamic_eid_is_registered_at_once_as_a_host_with_its_maps_locators_and_p_bit() {
        let c = cfg("  map-server 192.0.2.100 proxy-reply\n");
        let mut x = Xtr::new(&c, 0);
        let mut out = Vec::new();
        x.tick(0, &mut out);
        out.clear();
        let eid: IpAddr = "10.9.0.5".parse().unwrap();
        x.dynamic_eid_seen(vlan10(), eid, "roam", 100, &mut out);
        // Extended subnet: the connected route covers the host, no host route.
        assert!(tables(&out).is_empty());
        x.tick(100, &mut out);
        let s = sends(&out);
        assert_eq!(
            s.len(),
            1,
            "one register carries the global and the map's records"
        );
        let regs: Vec<MapRegister> = s
            .iter()
            .map(|(_, p)| MapRegister::parse_verified(p, &key()).unwrap())
            .collect();
        let host = regs
            .iter()
            .flat_map(|r| &r.records)
            .find(|r| r.prefix.prefix() == Some(Prefix::host(eid)))
            .expect("the /32 is registered");
        assert_eq!(
            host.locators[0].rloc,
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert!(regs.iter().all(|r| r.proxy_reply));
        // Seen again: only refreshed.
        out.clear();
        x.dynamic_eid_seen(vlan10(), eid, "roam", 200, &mut out);
        assert!(out.is_empty());
        assert_eq!(x.dynamic_eids().count(), 1);
        // Idle for the timeout: withdrawn with a TTL-0 record.
        x.tick(200 + DYNAMIC_EID_TIMEOUT_MS, &mut out);
        let withdrawn = sends(&out)
            .iter()
            .map(|(_, p)| MapRegister::parse(p).unwrap())
            .flat_map(|r| r.records)
            .any(|r| r.ttl == 0 && r.prefix.prefix() == Some(Prefix::host(eid)));
        assert!(withdrawn);
        assert_eq!(x.dynamic_eids().count(), 0);
    }

    #[test]
    fn across_subnets_a_dynamic_eid_gets_a_host_route_on_its_interface() {
        let mut c = cfg("");
        for i in c.interfaces.values_mut() {
            i.lisp_extended_subnet_mode = false;
        }
        let mut x = Xtr::new(&c, 0);
        let mut out = Vec::new();
        x.dynamic_eid_seen(vlan10(), "10.9.0.7".parse().unwrap(), "roam", 0, &mut out);
        assert_eq!(
            tables(&out),
            vec![TableOp::add(TableEntry::Route {
                prefix: "10.9.0.7/32".parse().unwrap(),
                next_hop: NextHop::Connected(vlan10()),
            })]
        );
    }

    #[test]
    fn a_miss_sends_an_encapsulated_map_request_and_the_reply_fills_the_map_cache() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let dest: IpAddr = "10.3.0.10".parse().unwrap();
        x.map_cache_miss(dest, "10.1.0.9".parse().unwrap(), 0, &mut out);
        let s = sends(&out);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, ms());
        assert_eq!(&s[0].1[..4], &[0x80, 0, 0, 0], "ECM header, no flags");
        let ecm = Ecm::parse(&s[0].1).unwrap();
        assert_eq!(ecm.inner_dst, dest);
        assert_eq!(ecm.inner_dst_port, 4342);
        let LispMessage::MapRequest(req) = *ecm.message else {
            panic!("not a Map-Request")
        };
        assert_eq!(req.itr_rlocs, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(req.records[0].prefix(), Some(Prefix::host(dest)));
        assert!(!req.smr && !req.smr_invoked && !req.probe);
        // RFC 9301 §5.3: the Source-EID is the host whose packet missed (AFI 0 is for
        // refreshes and RLOC probes), also as the ECM's inner source.
        assert_eq!(req.source_eid, Address::Ip("10.1.0.9".parse().unwrap()));
        assert_eq!(ecm.inner_src, "10.1.0.9".parse::<IpAddr>().unwrap());
        // A second miss while waiting sends nothing.
        out.clear();
        x.map_cache_miss(dest, "10.1.0.9".parse().unwrap(), 10, &mut out);
        assert!(out.is_empty());
        // A reply with an unknown nonce is counted and ignored.
        let record = record("10.3.0.0/24".parse().unwrap(), "192.0.2.3");
        let reply = |nonce| {
            MapReply {
                probe: false,
                echo_nonce_capable: false,
                lisp_sec: false,
                nonce,
                records: vec![record.clone()],
            }
            .to_vec()
            .unwrap()
        };
        let etr = SocketAddr::new("192.0.2.3".parse().unwrap(), 4342);
        x.receive(&reply(req.nonce ^ 1), etr, 20, &mut out);
        assert!(out.is_empty());
        assert_eq!(x.counters.map_replies_unexpected, 1);
        x.receive(&reply(req.nonce), etr, 30, &mut out);
        assert_eq!(
            tables(&out),
            vec![TableOp::add(TableEntry::LispMapCache {
                iid: Iid::default(),
                eid: "10.3.0.0/24".parse().unwrap(),
                locators: vec![Locator {
                    rloc: "192.0.2.3".parse().unwrap(),
                    priority: 1,
                    weight: 100
                }],
                negative: NegativeAction::NoAction,
            })]
        );
        let c: Vec<&CacheEntry> = x.map_cache().collect();
        assert_eq!(c[0].expires_ms, 30 + 1440 * 60_000);
        // Expiry removes it from the forwarding core.
        out.clear();
        x.tick(30 + 1440 * 60_000, &mut out);
        assert!(
            tables(&out)
                .iter()
                .any(|op| op.action == roamer_hal::OpAction::Remove)
        );
        assert_eq!(x.map_cache().count(), 0);
    }

    #[test]
    fn unanswered_requests_are_retried_then_switch_map_resolver_then_stop() {
        let mut x = Xtr::new(&cfg("ip lisp itr map-resolver 192.0.2.101\n"), 0);
        let mut out = Vec::new();
        // Only the Map-Requests (ECMs), not the registrations that are due too.
        let requests = |out: &[Output]| -> Vec<SocketAddr> {
            sends(out)
                .into_iter()
                .filter(|(_, p)| p[0] >> 4 == 8)
                .map(|(to, _)| to)
                .collect()
        };
        x.map_cache_miss(
            "10.3.0.10".parse().unwrap(),
            "10.1.0.9".parse().unwrap(),
            0,
            &mut out,
        );
        let first = requests(&out)[0];
        out.clear();
        x.tick(999, &mut out);
        assert!(requests(&out).is_empty());
        x.tick(1000, &mut out);
        assert_eq!(requests(&out), vec![first], "first retry: same resolver");
        out.clear();
        x.tick(3000, &mut out);
        let second = requests(&out);
        assert_eq!(second.len(), 1);
        assert_ne!(second[0], first, "second retry: the next resolver");
        assert_eq!(x.counters.resolver_switches, 1);
        out.clear();
        x.tick(5000, &mut out);
        assert!(
            requests(&out).is_empty(),
            "three attempts, then the request is dropped"
        );
        assert_eq!(x.counters.map_requests_sent, 3);
    }

    #[test]
    fn eid_not_here_sends_the_reference_smr_rate_limited() {
        // protocols.md §4.7: xTR-A (10.1.1.1) solicits ITR-R for 172.16.1.10.
        let text = "feature lisp\nip lisp itr-etr\n\
                    ip lisp database-mapping 172.16.0.0/16 10.1.1.1 priority 1 weight 100\n";
        let c = config::parse(text, Syntax::Cli).unwrap().0;
        let mut x = Xtr::new(&c, 0);
        let mut out = Vec::new();
        let (eid, itr, talker) = (
            "172.16.1.10".parse().unwrap(),
            "10.2.2.2".parse().unwrap(),
            "192.168.0.22".parse().unwrap(),
        );
        x.eid_not_here(eid, itr, talker, 0, &mut out);
        let s = sends(&out);
        assert_eq!(s[0].0, SocketAddr::new(itr, 4342));
        let want: [u8; 32] = [
            0x13, 0x00, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0xac, 0x10, 0x01, 0x0a,
            0x00, 0x01, 0x0a, 0x01, 0x01, 0x01, 0x00, 0x20, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x16,
        ];
        let mut got = s[0].1.clone();
        got[4..12].fill(0);
        assert_eq!(got, want);
        out.clear();
        x.eid_not_here(eid, itr, talker, 2_999, &mut out);
        assert!(out.is_empty(), "one SMR per 3 s per (RLOC, EID)");
        x.eid_not_here(eid, itr, talker, 3_000, &mut out);
        assert_eq!(sends(&out).len(), 1);
    }

    #[test]
    fn an_smr_for_a_cached_eid_sends_an_smr_invoked_request_through_the_resolver() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let dest: IpAddr = "10.9.0.5".parse().unwrap();
        // Uncached: ignored.
        let smr = |nonce| {
            MapRequest {
                authoritative: false,
                probe: true,
                smr: true,
                pitr: false,
                smr_invoked: false,
                local_xtr: false,
                dont_map_reply: true,
                nonce,
                source_eid: Address::Ip(dest),
                itr_rlocs: vec!["192.0.2.2".parse().unwrap()],
                records: vec![EidPrefix::from_prefix("10.1.0.9/32".parse().unwrap())],
                map_reply_record: None,
                subscribe: None,
            }
            .to_vec()
            .unwrap()
        };
        let old_etr = SocketAddr::new("192.0.2.2".parse().unwrap(), 4342);
        x.receive(&smr(7), old_etr, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(x.counters.smrs_ignored, 1);
        // Cache it through a request and reply.
        x.map_cache_miss(dest, "10.1.0.9".parse().unwrap(), 0, &mut out);
        let LispMessage::MapRequest(req) = *Ecm::parse(&sends(&out)[0].1).unwrap().message else {
            panic!()
        };
        let reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: req.nonce,
            records: vec![record(Prefix::host(dest), "192.0.2.2")],
        }
        .to_vec()
        .unwrap();
        x.receive(&reply, old_etr, 10, &mut out);
        out.clear();
        x.receive(&smr(8), old_etr, 20, &mut out);
        let s = sends(&out);
        assert_eq!(s.len(), 1, "no Map-Reply to the SMR itself (D bit)");
        assert_eq!(s[0].0, ms());
        let LispMessage::MapRequest(invoked) = *Ecm::parse(&s[0].1).unwrap().message else {
            panic!()
        };
        assert!(invoked.smr_invoked && !invoked.smr);
        assert_eq!(invoked.records[0].prefix(), Some(Prefix::host(dest)));
        assert_eq!(
            invoked.source_eid,
            Address::Ip("10.1.0.9".parse().unwrap()),
            "the local host that talks to it"
        );
        // The new location answers: the entry is updated in place.
        let moved = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: invoked.nonce,
            records: vec![record(Prefix::host(dest), "192.0.2.6")],
        }
        .to_vec()
        .unwrap();
        out.clear();
        x.receive(
            &moved,
            SocketAddr::new("192.0.2.6".parse().unwrap(), 4342),
            30,
            &mut out,
        );
        let ops = tables(&out);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].action, roamer_hal::OpAction::Update);
        // A second SMR within 3 s is not acted on.
        out.clear();
        x.receive(&smr(9), old_etr, 40, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_map_notify_naming_another_rloc_for_our_dynamic_eid_moves_it_away() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let eid: IpAddr = "10.9.0.5".parse().unwrap();
        x.dynamic_eid_seen(vlan10(), eid, "roam", 0, &mut out);
        out.clear();
        let mut notify = MapNotify::acknowledging(&MapRegister::new(vec![record(
            Prefix::host(eid),
            "192.0.2.2",
        )]));
        notify.nonce = 0x1234;
        let bytes = notify.to_signed_vec(&key()).unwrap();
        // From somebody who is not our map-server: refused.
        x.receive(
            &bytes,
            SocketAddr::new("192.0.2.66".parse().unwrap(), 4342),
            5,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(x.dynamic_eids().count(), 1);
        x.receive(&bytes, ms(), 10, &mut out);
        assert_eq!(x.dynamic_eids().count(), 0);
        // Away, and its new locator cached: packets still arriving here are sent on there.
        let ops = tables(&out);
        assert_eq!(
            ops[0],
            TableOp::add(TableEntry::AwayEntry {
                iid: Iid::default(),
                eid: Prefix::host(eid)
            })
        );
        assert!(
            matches!(&ops[1].entry, TableEntry::LispMapCache { eid: e, locators, .. }
                if *e == Prefix::host(eid) && locators[0].rloc == "192.0.2.2".parse::<IpAddr>().unwrap())
                && ops[1].action == roamer_hal::OpAction::Add,
            "{ops:?}"
        );
        assert_eq!(ops.len(), 2);
        let cached = x.map_cache().next().unwrap();
        assert_eq!(cached.source, CacheSource::MapNotify);
        assert!(cached.expires_ms <= 10 + AWAY_LIFETIME_MS);
        let s = sends(&out);
        assert_eq!(s.len(), 1);
        let ack = MapNotify::parse_verified(&s[0].1, &key()).unwrap();
        assert!(ack.ack);
        assert_eq!(ack.nonce, 0x1234);
        let away: Vec<_> = x.away().collect();
        assert_eq!(away[0].1.producer, Producer::DynEid);
        // The host comes back: no longer away.
        out.clear();
        x.dynamic_eid_seen(vlan10(), eid, "roam", 20, &mut out);
        assert!(
            tables(&out).contains(&TableOp::remove(TableEntry::AwayEntry {
                iid: Iid::default(),
                eid: Prefix::host(eid)
            }))
        );
        assert_eq!(x.away().count(), 0);
        assert_eq!(x.map_cache().count(), 0, "nor cached elsewhere");
    }

    #[test]
    fn a_host_registered_elsewhere_inside_our_prefix_goes_to_the_away_table() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let host: Prefix = "10.1.0.77/32".parse().unwrap();
        let mut notify =
            MapNotify::acknowledging(&MapRegister::new(vec![record(host, "192.0.2.2")]));
        notify.nonce = 77;
        x.receive(&notify.to_signed_vec(&key()).unwrap(), ms(), 0, &mut out);
        assert!(tables(&out).contains(&TableOp::add(TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: host
        })));
        let (p, a) = x.away().next().unwrap();
        assert_eq!((*p, a.producer.name()), (host, "away table, remote EID"));
    }

    #[test]
    fn a_deconfigured_database_mapping_is_withdrawn_and_away_until_mapped_again() {
        let with = cfg("");
        let mut without = with.clone();
        without.lisp.ipv4.database_mapping.clear();
        let mut x = Xtr::new(&with, 0);
        let mut out = Vec::new();
        x.reconfigure(&without, 10, &mut out);
        let p: Prefix = "10.1.0.0/24".parse().unwrap();
        let withdrawn = sends(&out)
            .iter()
            .flat_map(|(_, b)| MapRegister::parse_verified(b, &key()).unwrap().records)
            .any(|r| r.ttl == 0 && r.prefix.prefix() == Some(p));
        assert!(withdrawn, "a TTL-0 record to the map-server");
        let away = TableEntry::AwayEntry {
            iid: Iid::default(),
            eid: p,
        };
        assert!(tables(&out).contains(&TableOp::add(away.clone())));
        assert_eq!(x.away().next().unwrap().1.producer, Producer::LocalEid);
        // Packets still arriving for it are solicited away (the data path's EID-not-here).
        out.clear();
        x.release_remapped(&with, &mut out);
        assert_eq!(tables(&out), vec![TableOp::remove(away)]);
        x.reconfigure(&with, 20, &mut out);
        assert_eq!(x.away().count(), 0);
    }

    #[test]
    fn the_etr_answers_forwarded_requests_for_its_eids_and_ignores_others() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        let request = |eid: &str| {
            Ecm {
                ddt: false,
                inner_src: "192.0.2.3".parse().unwrap(),
                inner_dst: eid.parse().unwrap(),
                inner_ttl: 64,
                inner_src_port: 61000,
                inner_dst_port: 4342,
                message: Box::new(LispMessage::MapRequest(MapRequest {
                    authoritative: false,
                    probe: false,
                    smr: false,
                    pitr: false,
                    smr_invoked: false,
                    local_xtr: false,
                    dont_map_reply: false,
                    nonce: 42,
                    source_eid: Address::None,
                    itr_rlocs: vec!["192.0.2.3".parse().unwrap()],
                    records: vec![EidPrefix::from_prefix(Prefix::host(eid.parse().unwrap()))],
                    map_reply_record: None,
                    subscribe: None,
                })),
            }
            .to_vec()
            .unwrap()
        };
        x.receive(&request("10.1.0.7"), ms(), 0, &mut out);
        let s = sends(&out);
        assert_eq!(s[0].0, SocketAddr::new("192.0.2.3".parse().unwrap(), 61000));
        let reply = MapReply::parse(&s[0].1).unwrap();
        assert_eq!(reply.nonce, 42);
        assert_eq!(
            reply.records[0].prefix.prefix(),
            Some("10.1.0.0/24".parse().unwrap())
        );
        assert!(reply.records[0].authoritative);
        out.clear();
        x.receive(&request("10.77.0.1"), ms(), 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(x.counters.map_requests_ignored, 1);
        // Garbage is counted, not fatal.
        x.receive(&[0x10, 0, 0], ms(), 0, &mut out);
        assert_eq!(x.counters.malformed, 1);
    }

    #[test]
    fn extended_subnet_xtrs_of_a_site_agree_through_the_site_multicast_map_notify() {
        let site = |me: u8| {
            let mut c = cfg("  map-notify-group 239.1.1.1\n");
            c.lisp.dynamic_eid.get_mut("roam").unwrap().database_mapping[0].locator =
                IpAddr::from([192, 0, 2, me]);
            c.lisp.ipv4.database_mapping[0].locator = IpAddr::from([192, 0, 2, me]);
            c.interfaces.values_mut().next().unwrap().ipv4[0].addr = IpAddr::from([10, 9, 0, me]);
            Xtr::new(&c, 0)
        };
        let (mut a1, mut a2) = (site(1), site(2));
        let group = Ipv4Addr::new(239, 1, 1, 1);
        let eid: IpAddr = "10.9.0.5".parse().unwrap();
        let notify_of = |out: &[Output]| {
            out.iter()
                .find_map(|o| match o {
                    Output::SiteNotify {
                        vlan,
                        source,
                        group,
                        payload,
                    } => Some((*vlan, *source, *group, payload.clone())),
                    _ => None,
                })
                .expect("a site Map-Notify")
        };
        let mut out = Vec::new();
        a1.dynamic_eid_seen(vlan10(), eid, "roam", 0, &mut out);
        let (vlan, source, g, payload) = notify_of(&out);
        assert_eq!(
            (vlan.get(), source, g),
            (10, Ipv4Addr::new(10, 9, 0, 1), group)
        );
        let n = MapNotify::parse_verified(&payload, &key()).unwrap();
        assert_eq!(n.records[0].prefix.prefix(), Some(Prefix::host(eid)));
        assert_eq!(n.records[0].locators[0].rloc, IpAddr::from([192, 0, 2, 1]));
        // xTR-2 learns it is at xTR-1: listed, not registered, not answered for.
        out.clear();
        a2.site_notify(&payload, group, Some(VlanId::new(10).unwrap()), 5, &mut out);
        let (_, d) = a2.dynamic_eids().next().unwrap();
        assert!(d.via_map_notify);
        a2.tick(10, &mut out);
        let registered = sends(&out)
            .iter()
            .flat_map(|(_, p)| MapRegister::parse(p).unwrap().records)
            .any(|r| r.prefix.prefix() == Some(Prefix::host(eid)));
        assert!(!registered);
        // The host now talks to xTR-2: it claims it and tells xTR-1.
        out.clear();
        a2.dynamic_eid_seen(vlan10(), eid, "roam", 20, &mut out);
        let (_, _, _, back) = notify_of(&out);
        assert!(!a2.dynamic_eids().next().unwrap().1.via_map_notify);
        out.clear();
        a1.site_notify(&back, group, Some(VlanId::new(10).unwrap()), 25, &mut out);
        assert!(a1.dynamic_eids().next().unwrap().1.via_map_notify);
        // Another key, or another group: refused.
        let forged = MapNotify::parse(&back)
            .unwrap()
            .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"other").unwrap())
            .unwrap();
        a1.site_notify(&forged, group, None, 30, &mut out);
        a1.site_notify(&back, Ipv4Addr::new(239, 9, 9, 9), None, 30, &mut out);
        assert_eq!(a1.counters.site_notifies_refused, 2);
    }

    #[test]
    fn over_a_reliable_session_registrations_go_one_per_record_on_refresh_and_fall_back_to_udp() {
        let mut x = Xtr::new(&cfg(""), 0);
        let mut out = Vec::new();
        x.dynamic_eid_seen(vlan10(), "10.9.0.5".parse().unwrap(), "roam", 0, &mut out);
        x.session_up(ms().ip());
        out.clear();
        x.refresh_requested(ms().ip(), 10);
        x.tick(10, &mut out);
        let reliable: Vec<MapRegister> = out
            .iter()
            .filter_map(|o| match o {
                Output::SendReliable {
                    map_server,
                    payload,
                } if *map_server == ms().ip() => {
                    Some(MapRegister::parse_verified(payload, &key()).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(reliable.len(), 2, "the /24 and the /32, one register each");
        assert!(reliable.iter().all(|r| r.records.len() == 1));
        assert!(
            sends(&out).is_empty(),
            "nothing over UDP while the session is up"
        );
        // Nothing periodic while up.
        out.clear();
        x.tick(10 + 2 * REGISTER_INTERVAL_MS, &mut out);
        assert!(
            out.iter()
                .all(|o| !matches!(o, Output::SendReliable { .. } | Output::Send { .. }))
        );
        // Refused (never up, an old map-server): nothing changes, no loop.
        x.session_down(ms().ip(), false, 125_000);
        out.clear();
        x.tick(125_000, &mut out);
        assert!(sends(&out).is_empty());
        x.session_up(ms().ip());
        // Down: UDP at once.
        x.session_down(ms().ip(), true, 130_000);
        x.tick(130_000, &mut out);
        assert_eq!(sends(&out).len(), 1);
    }

    #[test]
    fn floods_of_misses_and_detections_stay_within_the_limits() {
        let limits = Limits {
            dynamic_eids: 8,
            map_cache: 8,
            pending_requests: 8,
            away: 8,
            rate_entries: 8,
        };
        let mut x = Xtr::new(&cfg(""), 0).with_limits(limits);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let a = IpAddr::V4((0x0a03_0000u32 + i).into());
            x.map_cache_miss(a, "10.1.0.9".parse().unwrap(), 0, &mut out);
            x.dynamic_eid_seen(
                vlan10(),
                IpAddr::V4((0x0a09_0000u32 + i).into()),
                "roam",
                0,
                &mut out,
            );
            x.eid_not_here(a, "192.0.2.9".parse().unwrap(), a, 0, &mut out);
        }
        assert_eq!(x.pending.len(), 8);
        assert_eq!(x.dynamic.len(), 8);
        assert!(x.smr_sent.len() <= 8);
        assert!(x.counters.dropped_table_full > 0);
    }
}
