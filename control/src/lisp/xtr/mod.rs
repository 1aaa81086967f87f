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
    Address, Ecm, EidPrefix, EidRecord, LISP_CONTROL_PORT, LispMessage, LocatorRecord, MapNotify,
    MapRegister, MapReply, MapRequest, parse_message,
};

#[cfg(test)]
mod dual_stack_tests;
mod itr;
mod mobility;
mod probe;
mod pubsub;
mod registration;
mod smr;
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

impl Output {
    /// `payload` to `to`, from our LISP control port.
    fn send(to: SocketAddr, payload: Vec<u8>) -> Output {
        Output::Send {
            to,
            from_port: LISP_CONTROL_PORT,
            payload,
        }
    }

    /// `payload` from our LISP control port to that of `to`.
    fn control(to: IpAddr, payload: Vec<u8>) -> Output {
        Output::send(SocketAddr::new(to, LISP_CONTROL_PORT), payload)
    }
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
    /// Nonces of our latest withdrawals to this map-server: the Map-Notify answering one is
    /// its acknowledgement, not news to act on or to acknowledge.
    withdrawn: Vec<u64>,
}

/// Withdrawal nonces remembered per map-server.
const WITHDRAWALS_REMEMBERED: usize = 16;

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
    /// Our RLOC of the family of `peer` (the first such), to send to it from.
    fn rloc_for(&self, peer: IpAddr) -> Option<IpAddr> {
        self.rlocs
            .iter()
            .find(|r| r.is_ipv4() == peer.is_ipv4())
            .copied()
    }

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
                self.add_away(p, Producer::LocalEid, true, now_ms, out);
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
        let mine = cfg.live_addresses();
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
            // `lisp mobility` on an SVI or a routed port (reconcile's dynamic-EID ranges).
            let l3 = match (name, &iface.switchport) {
                (crate::config::InterfaceName::Vlan(v), _) => Some(L3Interface::Vlan(*v)),
                (
                    crate::config::InterfaceName::Ethernet { slot, port },
                    Some(crate::config::PortMode::Routed),
                ) => Some(L3Interface::Port(crate::reconcile::port_id(*slot, *port))),
                _ => None,
            };
            if let (Some(l3), Some(map)) = (l3, iface.lisp_mobility.as_ref())
                && let Some(p) = self.maps.get_mut(map)
            {
                p.extended_subnet
                    .insert(l3, iface.lisp_extended_subnet_mode);
                if let Some(IpAddr::V4(a)) = iface.ipv4.first().map(|a| a.addr) {
                    p.sources.insert(l3, a);
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
                        withdrawn: Vec::new(),
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
            if let Some(o) = old.iter().find(|o| o.address == s.address) {
                s.withdrawn = o.withdrawn.clone();
            }
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
        EidRecord::authoritative(self.eid_prefix(prefix), ttl, locators)
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
mod tests;
