//! The Map-Server's registration table (RFC 9301 §8.2, `lisp site` on NX-OS): which sites may
//! register which EID prefixes, with which key; the registrations themselves; their expiry.
//!
//! Pure: the caller hands in the Map-Register as received with its source and the time, and sends
//! the Map-Notify returned. A register that fails authentication, names no configured site or
//! strays outside its site's prefixes is refused, counted, and never stored.
//!
//! Mobility: when a host prefix (/32, /128) registered under `accept-more-specifics` is registered
//! by a new ETR with a different locator set, the newest registration wins and every ETR that
//! lost it gets an unsolicited Map-Notify with the new mapping (protocols.md §4.2 step 4). A
//! record with TTL 0 withdraws the sender's registration.
//!
//! The Map-Resolver ([`MapServer::resolve`]) answers encapsulated Map-Requests from the same
//! table in RFC 9301 §8.3 order: negative reply, proxy reply, or forward to a registered ETR.
//!
//! Scale: the registrations of all sites sit in one table indexed by prefix (one ordered map per
//! prefix length in use), so the longest-prefix match of [`MapServer::lookup`] and
//! [`MapServer::resolve`], the more-specifics of a proxy reply and the narrowing of a negative
//! reply cost O(log n) per prefix length in use, and expiry follows a time-ordered queue. With a
//! million registered host EIDs a registration costs about 80 heap octets
//! (`scripts/bench-lisp-control.sh` measures it, with registrations and Map-Requests per second).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;

use roamer_hal::{Locator, Prefix};
use serde::Serialize;

use crate::ControlError;
use crate::config::secret::Secret;
use crate::config::{Config, SiteEid};
use crate::lisp::nonce::Nonces;
use crate::wire::lisp::address::{Address, EidPrefix};
use crate::wire::lisp::auth::{AuthKey, Authentication, KeyId, verify};
use crate::wire::lisp::ecm::Ecm;
use crate::wire::lisp::map_notify::MapNotify;
use crate::wire::lisp::map_register::MapRegister;
use crate::wire::lisp::map_reply::MapReply;
use crate::wire::lisp::map_request::MapRequest;
use crate::wire::lisp::record::{Action, EidRecord, LocatorRecord};
use crate::wire::lisp::{LispMessage, MessageType};

mod pubsub;
mod resolve;
use resolve::*;
mod site_detail;
mod table;
pub use pubsub::{MAX_SUBSCRIPTIONS, SUBSCRIPTION_LIFETIME_MS};
pub use site_detail::{EtrRegistration, NotifyCounts, render_site_detail};
use table::*;

/// A registration expires after three periods of the ETR's 60-second refresh (RFC 9301 §8.2).
pub const REGISTRATION_LIFETIME_MS: u64 = 3 * 60_000;

/// Registrations one site may hold unless its configuration says otherwise
/// (`roamer max-registrations N` in the `lisp site`): a key holder cannot grow the table without
/// bound (each registration costs about 80 octets).
pub const DEFAULT_SITE_REGISTRATION_LIMIT: usize = 100_000;
/// Reliable sessions remembered after they closed (their registrations age from the close).
const MAX_CLOSED_SESSIONS: usize = 4_096;

/// Record TTL (minutes) of a negative reply for an address outside every site (RFC 9301 §8.3).
pub const NEGATIVE_TTL_NOT_EID: u32 = 15;
/// Record TTL (minutes) of a negative reply inside a site no ETR registered: short, so that the
/// ITR asks again soon after an ETR registers (RFC 9301 §8.3).
pub const NEGATIVE_TTL_UNREGISTERED: u32 = 1;
/// The same for a configured prefix not registered since the Map-Server started, during its
/// first [`REGISTRATION_LIFETIME_MS`]: it cannot yet tell a site that is down from one whose
/// ETRs have not re-registered (a prefix withdrawn since the start is down: a minute). TTL 0 is
/// "do not cache" (RFC 9301 §5.4), so the ITR asks again on a later packet (roamer's data path:
/// at most once a second per destination) and a new flow heals within about a second of the
/// site's registration instead of a minute. The record TTL counts minutes: 1 is the shortest
/// cacheable value, the one used once the table is known to be complete.
pub const NEGATIVE_TTL_REFILLING: u32 = 0;
/// Record TTL (minutes) of a proxy reply: one day, what Cisco ETRs register.
pub const PROXY_REPLY_TTL: u32 = 1440;
/// Largest Map-Reply the resolver builds when adding more-specific records (overlap rule): it
/// must cross a 1500-octet path in one UDP datagram under IPv6 (40 + 8 octets of headers) with
/// room left for tunnels.
pub const MAX_REPLY_LEN: usize = 1400;
/// Records and locators per record are counted in one octet on the wire.
const MAX_COUNT: usize = 255;

/// One ETR's registration of one EID prefix, as [`MapServer::lookup`] reports it. The table
/// stores registrations more compactly and builds these on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub registrar: SocketAddr,
    pub locators: Vec<Locator>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub proxy_reply: bool,
    pub reliable: bool,
}

#[derive(Debug, Clone)]
struct Site {
    name: String,
    key: Option<Secret>,
    eids: Vec<SiteEid>,
    max_registrations: usize,
}

/// Why a Map-Register was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed(ControlError),
    /// No site is configured for this prefix.
    UnknownSite(Prefix),
    /// The prefix is more specific than the site allows (no `accept-more-specifics`).
    OutsideSite {
        site: String,
        prefix: Prefix,
    },
    /// Records of one register belong to different sites.
    MixedSites,
    /// The HMAC did not verify with the site's key (or the site's key cannot be used).
    Authentication {
        site: String,
    },
    /// The register would take the site past its registration limit.
    SiteLimit {
        site: String,
        limit: usize,
    },
}

/// A register that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub site: String,
    pub prefixes: Vec<Prefix>,
    /// The signed Map-Notify to send back when the register asked for one (M bit).
    pub notify: Option<Vec<u8>>,
    /// The register asked the Map-Server to answer Map-Requests on the ETR's behalf.
    pub proxy_reply: bool,
    /// Unsolicited Map-Notifies (signed with the site key) for the ETRs whose host registrations
    /// this register took over: send each to the IP on UDP 4342.
    pub moved: Vec<(IpAddr, Vec<u8>)>,
    /// Map-Notifies to the subscribers of the mappings this register changed (RFC 9437):
    /// send each to the IP on UDP 4342.
    pub published: Vec<(IpAddr, Vec<u8>)>,
}

/// What the Map-Server counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub registers_accepted: u64,
    pub refused_malformed: u64,
    pub refused_unknown_site: u64,
    pub refused_outside_site: u64,
    pub refused_authentication: u64,
    /// Registers refused because their site holds its limit of registrations.
    pub refused_site_limit: u64,
    pub expired: u64,
    /// Host registrations taken over by another ETR (their ETRs get an unsolicited Map-Notify).
    pub moves: u64,
    /// Map-Notifies to ETRs of a covering prefix when a host arrives elsewhere inside it.
    pub overlap_notifies: u64,
    /// Unsolicited Map-Notifies sent again for want of an acknowledgement.
    pub notifies_resent: u64,
    /// Unsolicited Map-Notifies sent the allowed number of times, never acknowledged.
    pub notifies_given_up: u64,
    /// Registrations withdrawn by a record with TTL 0.
    pub withdrawals: u64,
    /// Map-Notify-Acks received.
    pub notify_acks: u64,
    /// Messages handed to [`MapServer::notify_ack`] that are not a Map-Notify-Ack.
    pub notify_acks_malformed: u64,
    /// Map-Notify-Acks for no outstanding Map-Notify, from another address than the notified
    /// ETR's, or not signed with the site key.
    pub notify_acks_refused: u64,
    /// Map-Resolver: encapsulated Map-Requests forwarded to a registered ETR.
    pub requests_forwarded: u64,
    /// Map-Resolver: Map-Replies sent on behalf of ETRs that asked for proxy reply.
    pub proxy_replies: u64,
    /// Map-Resolver: negative Map-Replies.
    pub negative_replies: u64,
    /// Map-Resolver: requests dropped (see [`ResolveRefusal`]).
    pub requests_refused: u64,
    /// Publish/subscribe (RFC 9437): subscriptions made or renewed.
    pub subscriptions_accepted: u64,
    /// Subscriptions refused: the ITR-RLOC holds no live registration (not authenticated).
    pub subscriptions_refused: u64,
    /// Subscriptions dropped to make room ([`MAX_SUBSCRIPTIONS`]).
    pub subscriptions_dropped: u64,
    /// Map-Notifies sent to subscribers.
    pub pubsub_notifies: u64,
}

/// One line of `show lisp site`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteRow {
    pub site: String,
    pub prefix: Prefix,
    pub registered: bool,
    pub reliable: bool,
    pub last_register_age_ms: Option<u64>,
    pub who: Option<SocketAddr>,
    pub instance_id: u32,
    /// The prefix is configured in the site (else a registered more-specific).
    pub configured: bool,
    /// Every ETR's registration of the prefix, newest first (`show lisp site detail`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub etrs: Vec<EtrRegistration>,
    /// Unsolicited Map-Notifies about the prefix to the ETRs that lost it.
    #[serde(skip_serializing_if = "NotifyCounts::is_zero")]
    pub notifies: NotifyCounts,
}

/// What the mapping system knows about an EID (for the Map-Resolver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Registered: the prefix and its registrations (those of one site, by registrar address).
    Registered(Prefix, Vec<Registration>),
    /// Inside a configured site prefix that no ETR registered (negative reply, 1 minute).
    SiteWithoutEtr(Prefix),
    /// Outside every site (negative reply, 15 minutes).
    NotEid,
}

/// [`Lookup`] as the resolver uses it: the registrations as stored, nothing copied.
enum Found<'a> {
    Registered(Prefix, Vec<&'a Reg>),
    SiteWithoutEtr(Prefix),
    NotEid,
}

/// What the Map-Resolver does with an encapsulated Map-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Send `map_reply` (a UDP payload, source port 4342) to `to`: an ITR-RLOC of the request and
    /// the inner UDP source port of the ECM.
    Reply { to: SocketAddr, map_reply: Vec<u8> },
    /// Send `ecm` (the received ECM, unchanged) to `etr` on UDP 4342; the ETR answers the ITR.
    Forward { etr: IpAddr, ecm: Vec<u8> },
}

/// Why an encapsulated Map-Request was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveRefusal {
    /// The ECM or the message inside does not parse.
    Malformed(ControlError),
    /// The ECM carries another message than a Map-Request.
    NotMapRequest(MessageType),
    /// An RLOC-probe (P bit): probes go to a locator, never to the mapping system.
    Probe,
    /// No ITR-RLOC a reply could be sent to (all unspecified, multicast or broadcast).
    NoItrRloc,
    /// The first EID record carries no IP address (AFI 0 or an instance-ID range).
    NoEid,
    /// The reply could not be encoded.
    Encoding(ControlError),
}

/// Which kind of answer, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Forwarded,
    Proxy,
    Negative,
}

/// The Map-Server.
#[derive(Debug, Clone, Default)]
pub struct MapServer {
    sites: Vec<Site>,
    /// The registrations of every site, indexed by prefix.
    table: Table,
    pub counters: Counters,
    /// Nonces of the unsolicited Map-Notifies.
    nonces: Nonces,
    /// Unsolicited Map-Notifies not acknowledged yet, by nonce: resent until their ETR
    /// acknowledges (a lost one would leave two ETRs claiming a host).
    unacked: BTreeMap<u64, Unacked>,
    /// What became of those Map-Notifies, per prefix.
    notify_log: site_detail::NotifyLog,
    /// Publish/subscribe: who follows which mapping.
    subscriptions: pubsub::Subscriptions,
    sessions: Sessions,
    /// When the Map-Server started with an empty table ([`MapServer::started`]).
    started_ms: Option<u64>,
    /// Configured site prefixes registered at least once since the start: a site prefix not
    /// among them, during the first lifetime, may just not have re-registered yet.
    registered_since_start: HashSet<Prefix>,
}

/// Reliable-transport sessions as the Map-Server sees them. Registrations received over a
/// session that is up never age (draft-ietf-lisp-map-server-reliable-transport: the session is
/// the liveness, the ETR sends no periodic refresh over it); once it closes they age from that
/// moment, as if refreshed then, so an ETR that is gone loses them one lifetime later.
#[derive(Debug, Clone, Default)]
struct Sessions {
    up: HashSet<SocketAddr>,
    closed: HashMap<SocketAddr, u64>,
}

impl Sessions {
    /// When `r` (from `s`) was last known to be current.
    fn refreshed_ms(&self, s: &Source, r: &Reg, now_ms: u64) -> u64 {
        if !s.reliable {
            return r.last_ms();
        }
        if self.up.contains(&s.registrar) {
            return now_ms.max(r.last_ms());
        }
        self.closed
            .get(&s.registrar)
            .map_or(r.last_ms(), |&t| t.max(r.last_ms()))
    }
}

/// An unsolicited Map-Notify waiting for its Map-Notify-Ack.
#[derive(Debug, Clone)]
struct Unacked {
    to: IpAddr,
    bytes: Vec<u8>,
    sent: u32,
    next_ms: u64,
    /// The prefixes of its records (counted per prefix).
    prefixes: Vec<Prefix>,
    /// The site key it was signed with: the Map-Notify-Ack must be signed with it too.
    key: AuthKey,
}

/// Resend an unacknowledged Map-Notify after 1 s, then 2 s; three sendings in all.
const NOTIFY_RETRY_MS: [u64; 2] = [1_000, 2_000];
/// Bound on unacknowledged Map-Notifies kept for resending (beyond it, one is given up).
const MAX_UNACKED: usize = 4_096;

impl MapServer {
    /// The sites of `cfg` (`lisp site …`), with no registrations yet.
    pub fn new(cfg: &Config) -> Self {
        let mut ms = MapServer::default();
        ms.reconfigure(cfg);
        ms
    }

    /// Follows a configuration change: sites and prefixes that remain keep their registrations.
    pub fn reconfigure(&mut self, cfg: &Config) {
        let old: Vec<String> = self.sites.drain(..).map(|s| s.name).collect();
        for (name, site) in &cfg.lisp.site {
            self.sites.push(Site {
                name: name.clone(),
                key: site
                    .authentication_key
                    .as_ref()
                    .and_then(|k| k.secret().cloned()),
                eids: site.eid_prefix.clone(),
                max_registrations: site
                    .max_registrations
                    .map_or(DEFAULT_SITE_REGISTRATION_LIMIT, |n| n as usize),
            });
        }
        // Where each old site's registrations go: to the site of the same name, for the
        // prefixes it still allows.
        let to: Vec<Option<u32>> = old
            .iter()
            .map(|name| {
                self.sites
                    .iter()
                    .position(|s| &s.name == name)
                    .map(|i| i as u32)
            })
            .collect();
        let sites = &self.sites;
        self.table.remap(|site, prefix| {
            let new = to.get(site as usize).copied().flatten()?;
            allowed(&sites.get(new as usize)?.eids, prefix).then_some(new)
        });
    }

    /// Handles a Map-Register received from `from` (`reliable`: over the TCP transport).
    pub fn register(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        reliable: bool,
        now_ms: u64,
    ) -> Result<Accepted, Refusal> {
        let result = self.try_register(bytes, from, reliable, now_ms);
        let c = &mut self.counters;
        match &result {
            Ok(_) => c.registers_accepted += 1,
            Err(Refusal::Malformed(_) | Refusal::MixedSites) => c.refused_malformed += 1,
            Err(Refusal::UnknownSite(_)) => c.refused_unknown_site += 1,
            Err(Refusal::OutsideSite { .. }) => c.refused_outside_site += 1,
            Err(Refusal::Authentication { .. }) => c.refused_authentication += 1,
            Err(Refusal::SiteLimit { .. }) => c.refused_site_limit += 1,
        }
        result
    }

    /// The Map-Server starts at `now_ms` with an empty table: until one registration lifetime
    /// has passed, a configured site without registrations may just not have re-registered yet
    /// (see [`NEGATIVE_TTL_REFILLING`]).
    pub fn started(&mut self, now_ms: u64) {
        self.started_ms = Some(now_ms);
        self.registered_since_start.clear();
    }

    fn refilling(&self, now_ms: u64) -> bool {
        self.started_ms
            .is_some_and(|s| now_ms < s.saturating_add(REGISTRATION_LIFETIME_MS))
    }

    /// A reliable registration session from `peer` is up: what it registers stays registered
    /// while it lasts.
    pub fn session_up(&mut self, peer: SocketAddr) {
        self.sessions.closed.remove(&peer);
        self.sessions.up.insert(peer);
    }

    /// The session from `peer` closed at `now_ms`: its registrations age from now on.
    pub fn session_down(&mut self, peer: SocketAddr, now_ms: u64) {
        if self.sessions.up.remove(&peer) {
            if self.sessions.closed.len() >= MAX_CLOSED_SESSIONS {
                let oldest = self.sessions.closed.iter().min_by_key(|(_, t)| **t);
                if let Some(oldest) = oldest.map(|(p, _)| *p) {
                    self.sessions.closed.remove(&oldest);
                }
            }
            self.sessions.closed.insert(peer, now_ms);
        }
    }

    /// Registrations site `name` holds (every prefix of every ETR).
    pub fn site_registrations(&self, name: &str) -> usize {
        self.sites
            .iter()
            .position(|s| s.name == name)
            .map_or(0, |i| self.table.sources.site_regs(i as u32))
    }

    fn try_register(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        reliable: bool,
        now_ms: u64,
    ) -> Result<Accepted, Refusal> {
        let unverified = MapRegister::parse(bytes).map_err(Refusal::Malformed)?;
        let mut site_index = None;
        let mut prefixes = Vec::new();
        for record in &unverified.records {
            let prefix =
                record
                    .prefix
                    .prefix()
                    .ok_or(Refusal::Malformed(ControlError::BadValue {
                        what: "EID-record prefix",
                        value: u64::from(record.prefix.mask_len),
                    }))?;
            let index = self.site_for(prefix)?;
            if site_index.is_some_and(|i| i != index) {
                return Err(Refusal::MixedSites);
            }
            site_index = Some(index);
            prefixes.push(prefix);
        }
        let Some(index) = site_index else {
            return Err(Refusal::Malformed(ControlError::BadValue {
                what: "Map-Register record count",
                value: 0,
            }));
        };
        let site = &self.sites[index];
        let site_id = index as u32;
        let refused = || Refusal::Authentication {
            site: site.name.clone(),
        };
        // The register names its algorithm; the site's secret signs with it.
        let algorithm = unverified.auth.algorithm().map_err(|_| refused())?;
        if algorithm == KeyId::None {
            return Err(refused());
        }
        let secret = site.key.as_ref().ok_or_else(refused)?;
        let key = AuthKey::new(algorithm, secret.expose())
            .map_err(|_| refused())?
            .with_key_index(unverified.auth.key_index());
        // `MapRegister::parse_verified` would parse the same octets a second time.
        verify(bytes, &key).map_err(|_| refused())?;
        let register = unverified;
        let table = &mut self.table;
        // New registrations (not refreshes by the same ETR, not withdrawals) must fit the
        // site's limit; a register that does not fit is refused whole.
        let new = register
            .records
            .iter()
            .filter(|r| r.ttl != 0)
            .filter_map(|r| r.prefix.prefix())
            .filter(|p| {
                table.index.get(p).is_none_or(|id| {
                    !table.regs(id).iter().any(|r| {
                        let s = table.sources.get(r.source);
                        s.site == site_id && s.registrar.ip() == from.ip()
                    })
                })
            })
            .count();
        if new > 0 && table.sources.site_regs(site_id) + new > site.max_registrations {
            return Err(Refusal::SiteLimit {
                site: site.name.clone(),
                limit: site.max_registrations,
            });
        }
        // What subscribers were told of these prefixes, to notice a change (RFC 9437).
        let before: Vec<(Prefix, pubsub::Published)> = if self.subscriptions.is_empty() {
            Vec::new()
        } else {
            prefixes
                .iter()
                .map(|p| (*p, pubsub::rlocs_at(&self.table, p)))
                .collect()
        };
        let table = &mut self.table;
        // Records each losing ETR must hear about, one Map-Notify per ETR address.
        let mut moved: BTreeMap<IpAddr, Vec<EidRecord>> = BTreeMap::new();
        for record in &register.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            // Only a host that roams (a more-specific admitted by accept-more-specifics) moves; a
            // configured prefix registered by several ETRs is a multihomed site and is merged.
            let roaming_host = is_host(prefix) && !site.eids.iter().any(|e| e.prefix == prefix);
            let slot = table.index.get(&prefix);
            let oldest = slot.and_then(|id| table.oldest(id));
            // The same ETR re-registering from another source port (UDP registers may use a
            // random one) replaces its registration instead of standing beside it as a second
            // registrar, which would read as a move to itself.
            let mut first_ms: Option<u64> = None;
            let mut had_one = false;
            if let Some(id) = slot {
                had_one = table.retain(id, |s, r| {
                    let same_etr = s.site == site_id && s.registrar.ip() == from.ip();
                    if same_etr {
                        first_ms = Some(first_ms.map_or(r.first_ms(), |f| f.min(r.first_ms())));
                    }
                    !same_etr
                }) > 0;
            }
            if record.ttl != 0 && site.eids.iter().any(|e| e.prefix == prefix) {
                self.registered_since_start.insert(prefix);
            }
            if record.ttl == 0 {
                // TTL 0: the ETR withdraws (its dynamic EID went inactive), protocols.md §3.6.
                if had_one {
                    self.counters.withdrawals += 1;
                }
                if let Some(id) = slot {
                    table.free_if_empty(id);
                }
                continue;
            }
            let locators: Box<[Locator]> = record.locators.iter().map(|l| l.to_hal()).collect();
            if let (true, Some(id)) = (roaming_host, slot) {
                let rlocs = rloc_set(&locators);
                let lost = table.retain(id, |s, _| {
                    if s.site != site_id {
                        return true;
                    }
                    let same_place = rloc_set(&s.locators) == rlocs;
                    if !same_place {
                        let records = moved.entry(s.registrar.ip()).or_default();
                        if !records.contains(record) {
                            records.push(record.clone());
                        }
                    }
                    same_place
                });
                self.counters.moves += lost as u64;
            }
            // Generalized SMR, overlapping prefix (seed 002): a host newly registered here inside
            // a prefix another ETR of the site registers makes that ETR stop delivering it
            // locally (its away table); notified once, when the host arrives, not per refresh.
            if roaming_host && !had_one {
                let rlocs = rloc_set(&locators);
                let covering = table.index.find_longest(prefix.addr(), |id| {
                    let p = table.slots.get(id as usize)?.prefix;
                    (p.len() < prefix.len()).then_some(id)
                });
                if let Some(id) = covering {
                    for r in table.regs(id) {
                        let s = table.sources.get(r.source);
                        if s.site == site_id && rloc_set(&s.locators) != rlocs {
                            let records = moved.entry(s.registrar.ip()).or_default();
                            if !records.contains(record) {
                                records.push(record.clone());
                            }
                            self.counters.overlap_notifies += 1;
                        }
                    }
                }
            }
            let source = table.sources.intern(Source {
                site: site_id,
                registrar: from,
                locators,
                proxy_reply: register.proxy_reply,
                reliable,
            });
            let reg = Reg {
                source,
                first: Ms::new(first_ms.unwrap_or(now_ms)),
                last: Ms::new(now_ms),
            };
            table.add(prefix, slot, reg, oldest);
        }
        // The losing ETR learns the new locator set and puts the host in its away table; the
        // notify is signed with the site key, which that ETR shares (it registered the prefix).
        let moved = moved
            .into_iter()
            .map(|(ip, records)| {
                let notify = MapNotify {
                    ack: false,
                    nonce: self.nonces.fresh(),
                    auth: Authentication::none(),
                    records,
                    xtr: None,
                };
                notify.to_signed_vec(&key).map(|bytes| (ip, bytes))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Refusal::Malformed)?;
        for (to, bytes) in &moved {
            let Ok(n) = MapNotify::parse(bytes) else {
                continue;
            };
            if self.unacked.len() >= MAX_UNACKED
                && let Some(oldest) = self.unacked.keys().next().copied()
                && let Some(u) = self.unacked.remove(&oldest)
            {
                self.notify_log.count(&u.prefixes, |c| c.given_up += 1);
                self.counters.notifies_given_up += 1;
            }
            let prefixes: Vec<Prefix> =
                n.records.iter().filter_map(|r| r.prefix.prefix()).collect();
            self.notify_log.count(&prefixes, |c| c.sent += 1);
            self.unacked.insert(
                n.nonce,
                Unacked {
                    to: *to,
                    bytes: bytes.clone(),
                    sent: 1,
                    next_ms: now_ms.saturating_add(NOTIFY_RETRY_MS[0]),
                    prefixes,
                    key: key.clone(),
                },
            );
        }
        let changed: Vec<Prefix> = before
            .into_iter()
            .filter(|(p, was)| pubsub::rlocs_at(&self.table, p) != *was)
            .map(|(p, _)| p)
            .collect();
        let notify = if register.want_map_notify {
            Some(
                MapNotify::acknowledging(&register)
                    .to_signed_vec(&key)
                    .map_err(Refusal::Malformed)?,
            )
        } else {
            None
        };
        let accepted = Accepted {
            site: site.name.clone(),
            prefixes,
            notify,
            proxy_reply: register.proxy_reply,
            moved,
            published: Vec::new(),
        };
        let published = self.publish(&changed, now_ms);
        Ok(Accepted {
            published,
            ..accepted
        })
    }

    /// The site allowed to register `prefix`.
    fn site_for(&self, prefix: Prefix) -> Result<usize, Refusal> {
        if let Some(i) = self.sites.iter().position(|s| allowed(&s.eids, prefix)) {
            return Ok(i);
        }
        match self
            .sites
            .iter()
            .find(|s| s.eids.iter().any(|e| e.prefix.covers(&prefix)))
        {
            Some(s) => Err(Refusal::OutsideSite {
                site: s.name.clone(),
                prefix,
            }),
            None => Err(Refusal::UnknownSite(prefix)),
        }
    }

    /// Drops registrations not refreshed within [`REGISTRATION_LIFETIME_MS`]; returns the
    /// prefixes that a site no longer has any registration for, by site and prefix.
    ///
    /// Cost: only prefixes whose oldest registration may have expired are looked at (a queue
    /// ordered by that time), so a call with nothing due is O(1) and each expiry O(log n).
    pub fn expire(&mut self, now_ms: u64) -> Vec<Prefix> {
        let mut gone: Vec<(u32, Prefix)> = Vec::new();
        let table = &mut self.table;
        while let Some(id) = table.next_due(now_ms) {
            let Some(slot) = table.slots.get(id as usize) else {
                continue;
            };
            let prefix = slot.prefix;
            let mut sites: Vec<u32> = slot
                .regs
                .as_slice()
                .iter()
                .map(|r| table.sources.get(r.source).site)
                .collect();
            sites.dedup();
            let sessions = &self.sessions;
            table.refresh(id, |s, r| sessions.refreshed_ms(s, r, now_ms));
            let expired = table.retain(id, |_, r| {
                now_ms.saturating_sub(r.last_ms()) < REGISTRATION_LIFETIME_MS
            });
            self.counters.expired += expired as u64;
            if expired > 0 {
                gone.extend(
                    sites
                        .into_iter()
                        .filter(|&s| !table.has_site(id, s))
                        .map(|s| (s, prefix)),
                );
            }
            if !table.free_if_empty(id) {
                table.queue(id);
            }
        }
        // A closed session's registrations have all aged out (or been replaced) one lifetime
        // after it closed.
        self.sessions
            .closed
            .retain(|_, t| now_ms.saturating_sub(*t) < REGISTRATION_LIFETIME_MS);
        gone.sort_unstable();
        gone.into_iter().map(|(_, p)| p).collect()
    }

    /// A Map-Notify-Ack (type 5) from `from`: it ends the resending of the unsolicited
    /// Map-Notify with its nonce when it comes from the notified ETR's address, carries the same
    /// records and is signed with the site key (RFC 9301 §5.7); anything else is counted and
    /// dropped.
    pub fn notify_ack(&mut self, bytes: &[u8], from: IpAddr) {
        match MapNotify::parse(bytes) {
            Ok(m) if m.ack => {
                let matching = self.unacked.get(&m.nonce).is_some_and(|u| {
                    u.to == from
                        && MapNotify::parse(&u.bytes).is_ok_and(|n| n.records == m.records)
                        && MapNotify::parse_verified(
                            bytes,
                            &u.key.clone().with_key_index(m.auth.key_index()),
                        )
                        .is_ok()
                });
                match matching.then(|| self.unacked.remove(&m.nonce)).flatten() {
                    Some(u) => {
                        self.counters.notify_acks += 1;
                        self.notify_log.count(&u.prefixes, |c| c.acked += 1);
                    }
                    None => self.counters.notify_acks_refused += 1,
                }
            }
            _ => self.counters.notify_acks_malformed += 1,
        }
    }

    /// Unsolicited Map-Notifies to send again at `now_ms` (to the ETR's address, UDP 4342).
    pub fn resend_notifies(&mut self, now_ms: u64) -> Vec<(IpAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let log = &mut self.notify_log;
        let mut given_up = 0;
        self.unacked.retain(|_, u| {
            if u.next_ms > now_ms {
                return true;
            }
            let Some(delay) = NOTIFY_RETRY_MS.get(u.sent as usize - 1) else {
                log.count(&u.prefixes, |c| c.given_up += 1);
                given_up += 1;
                return false;
            };
            out.push((u.to, u.bytes.clone()));
            log.count(&u.prefixes, |c| c.resent += 1);
            u.sent += 1;
            u.next_ms = now_ms.saturating_add(*delay);
            true
        });
        self.counters.notifies_given_up += given_up;
        self.counters.notifies_resent += out.len() as u64;
        out
    }

    /// Every configured prefix (registered or not) and every registered more-specific, per site.
    pub fn rows(&self, now_ms: u64, instance_id: u32) -> Vec<SiteRow> {
        let t = &self.table;
        let mut registered: Vec<Vec<Prefix>> = vec![Vec::new(); self.sites.len()];
        for slot in &t.slots {
            for r in slot.regs.as_slice() {
                let site = t.sources.get(r.source).site as usize;
                if let Some(list) = registered.get_mut(site)
                    && list.last() != Some(&slot.prefix)
                {
                    list.push(slot.prefix);
                }
            }
        }
        let mut rows = Vec::new();
        for ((index, site), mut prefixes) in self.sites.iter().enumerate().zip(registered) {
            prefixes.extend(site.eids.iter().map(|e| e.prefix));
            prefixes.sort();
            prefixes.dedup();
            for prefix in prefixes {
                let last = t
                    .index
                    .get(&prefix)
                    .and_then(|id| t.slots.get(id as usize))
                    .and_then(|slot| {
                        slot.regs
                            .as_slice()
                            .iter()
                            .filter(|r| t.sources.get(r.source).site == index as u32)
                            .max_by_key(|r| r.last_ms())
                    })
                    .map(|r| (r, t.sources.get(r.source)));
                rows.push(SiteRow {
                    site: site.name.clone(),
                    prefix,
                    registered: last.is_some(),
                    reliable: last.is_some_and(|(_, s)| s.reliable),
                    last_register_age_ms: last.map(|(r, _)| now_ms.saturating_sub(r.last_ms())),
                    who: last.map(|(_, s)| s.registrar),
                    instance_id,
                    configured: site.eids.iter().any(|e| e.prefix == prefix),
                    etrs: self.etr_registrations(&prefix, index as u32, now_ms),
                    notifies: self.notify_log.get(&prefix),
                });
            }
        }
        rows
    }
}

/// A /32 or /128.
fn is_host(p: Prefix) -> bool {
    p.len() == if p.is_ipv4() { 32 } else { 128 }
}

/// The RLOCs of a locator set, in order and without repeats: two registrations are at the same
/// place when they name the same RLOCs, whatever their priorities.
fn rloc_set(locators: &[Locator]) -> Vec<IpAddr> {
    let mut rlocs: Vec<IpAddr> = locators.iter().map(|l| l.rloc).collect();
    rlocs.sort_unstable();
    rlocs.dedup();
    rlocs
}

/// A site configured with `eids` may register `prefix`.
fn allowed(eids: &[SiteEid], prefix: Prefix) -> bool {
    eids.iter()
        .any(|e| e.prefix == prefix || (e.accept_more_specifics && e.prefix.covers(&prefix)))
}

/// `show lisp site` in the layout of the reference (§10.4; columns at 0, 15, 25, 32, 53, 62).
pub fn render_sites(rows: &[SiteRow], reliable_supported: bool) -> String {
    let mut out = String::from(
        "LISP Site Registration Information\n* = Some locators are down or unreachable\n",
    );
    if reliable_supported {
        out.push_str("# = Some registrations are sourced by reliable transport\n");
    }
    out.push_str("\nSite Name      Last      Up     Who Last             Inst     EID Prefix\n               Register         Registered           ID\n");
    let mut last_site = "";
    for r in rows {
        let name = if r.site == last_site {
            ""
        } else {
            r.site.as_str()
        };
        last_site = &r.site;
        let (last, up, who) = match (r.last_register_age_ms, r.who) {
            (Some(age), Some(who)) => (
                crate::show::age(age / 1000),
                format!("yes{}", if r.reliable { "#" } else { "" }),
                who.ip().to_string(),
            ),
            _ => ("never".to_string(), "no".to_string(), "--".to_string()),
        };
        out.push_str(&format!(
            "{name:<15}{last:<10}{up:<7}{who:<21}{:<9}{}\n",
            r.instance_id, r.prefix
        ));
    }
    out
}

/// Leading bits two addresses of one family share (0 across families).
fn common_bits(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a).common(u32::from(b)),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a).common(u128::from(b)),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
