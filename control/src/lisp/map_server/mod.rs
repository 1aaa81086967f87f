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
mod site_detail;
pub use pubsub::{MAX_SUBSCRIPTIONS, SUBSCRIPTION_LIFETIME_MS};
pub use site_detail::{EtrRegistration, NotifyCounts, render_site_detail};

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

    /// The longest registered prefix for `eid`, else what the site configuration says.
    pub fn lookup(&self, eid: IpAddr) -> Lookup {
        match self.find(eid, |_| true) {
            Found::Registered(p, regs) => {
                Lookup::Registered(p, regs.iter().map(|r| self.table.registration(r)).collect())
            }
            Found::SiteWithoutEtr(p) => Lookup::SiteWithoutEtr(p),
            Found::NotEid => Lookup::NotEid,
        }
    }

    /// [`MapServer::lookup`] counting only the registrations `live` accepts (the resolver skips
    /// those past their lifetime that [`MapServer::expire`] has not dropped yet). The longest
    /// prefix with a live registration wins; when several sites registered it, the last site.
    /// O(L log n) for L prefix lengths in use.
    fn find(&self, eid: IpAddr, live: impl Fn(&Reg) -> bool) -> Found<'_> {
        let t = &self.table;
        let hit = t.index.find_longest(eid, |id| {
            let slot = t.slots.get(id as usize)?;
            let regs = slot.regs.as_slice();
            let site = t
                .sources
                .get(regs.iter().rev().find(|r| live(r))?.source)
                .site;
            let regs: Vec<&Reg> = regs
                .iter()
                .filter(|r| t.sources.get(r.source).site == site && live(r))
                .collect();
            Some((slot.prefix, regs))
        });
        if let Some((p, regs)) = hit {
            return Found::Registered(p, regs);
        }
        match self
            .sites
            .iter()
            .flat_map(|s| &s.eids)
            .filter(|e| e.prefix.contains(eid))
            .max_by_key(|e| e.prefix.len())
        {
            Some(e) => Found::SiteWithoutEtr(e.prefix),
            None => Found::NotEid,
        }
    }

    /// Map-Resolver: answers the Encapsulated Control Message `ecm` (a UDP 4342 payload) in
    /// RFC 9301 §8.3 order. Only the first EID record of the Map-Request is answered (senders
    /// send one).
    pub fn resolve(&mut self, ecm: &[u8], now_ms: u64) -> Result<Resolution, ResolveRefusal> {
        let result = self.try_resolve(ecm, now_ms);
        let c = &mut self.counters;
        match &result {
            Ok((_, Answer::Forwarded, _)) => c.requests_forwarded += 1,
            Ok((_, Answer::Proxy, _)) => c.proxy_replies += 1,
            Ok((_, Answer::Negative, _)) => c.negative_replies += 1,
            Err(_) => c.requests_refused += 1,
        }
        result.map(|(resolution, _, subscribe)| {
            if let Some(req) = subscribe {
                self.subscribe(req, now_ms);
            }
            resolution
        })
    }

    fn try_resolve(
        &self,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(Resolution, Answer, Option<pubsub::SubscribeRequest>), ResolveRefusal> {
        let ecm = Ecm::parse(bytes).map_err(ResolveRefusal::Malformed)?;
        let LispMessage::MapRequest(request) = &*ecm.message else {
            return Err(ResolveRefusal::NotMapRequest(ecm.message.message_type()));
        };
        // RFC 9301 §5.3: Map-Resolvers and Map-Servers drop RLOC-probes; answering them would
        // let anyone probe through the mapping system.
        if request.probe {
            return Err(ResolveRefusal::Probe);
        }
        let itr = reply_rloc(request, ecm.inner_src).ok_or(ResolveRefusal::NoItrRloc)?;
        let to = SocketAddr::new(itr, ecm.inner_src_port);
        let requested = request.records.first().ok_or(ResolveRefusal::NoEid)?;
        let eid = requested.eid.ip().ok_or(ResolveRefusal::NoEid)?;
        let sources = &self.table.sources;
        let sessions = &self.sessions;
        let live = |r: &Reg| {
            let refreshed = sessions.refreshed_ms(sources.get(r.source), r, now_ms);
            now_ms.saturating_sub(refreshed) < REGISTRATION_LIFETIME_MS
        };
        // RFC 9437: the ITR subscribes to the prefix it is answered with.
        let subscribe = |p: Prefix| pubsub::SubscribeRequest::of(request, p, to);
        let (records, answer) = match self.find(eid, live) {
            Found::NotEid => {
                // The prefix as requested, narrowed only if it would cover a site: a negative
                // entry must never hide an EID from the ITR for 15 minutes.
                let p = self.clear_prefix(eid, requested.mask_len, None);
                let record = negative(like_request(&requested.eid, p), NEGATIVE_TTL_NOT_EID);
                (vec![record], Answer::Negative)
            }
            Found::SiteWithoutEtr(site) => {
                // The site prefix, narrowed around registered more-specifics (a moved host
                // inside it) so they are not answered natively-forward.
                let p = self.clear_prefix(eid, site.len(), Some(site.len()));
                let ttl = if self.refilling(now_ms) && !self.registered_since_start.contains(&site)
                {
                    NEGATIVE_TTL_REFILLING
                } else {
                    NEGATIVE_TTL_UNREGISTERED
                };
                let record = negative(like_request(&requested.eid, p), ttl);
                (vec![record], Answer::Negative)
            }
            Found::Registered(p, regs) => {
                if !regs.iter().any(|r| sources.get(r.source).proxy_reply) {
                    // The ETR that registered last is the one most likely still there (lookup
                    // never yields an empty list; the error only keeps this free of unwrap).
                    let newest = regs
                        .iter()
                        .max_by_key(|r| r.last_ms())
                        .ok_or(ResolveRefusal::NoEid)?;
                    let forward = Resolution::Forward {
                        etr: sources.get(newest.source).registrar.ip(),
                        ecm: bytes.to_vec(),
                    };
                    return Ok((forward, Answer::Forwarded, subscribe(p)));
                }
                let records = self.proxy_records(&requested.eid, eid, p, &regs, live);
                (records, Answer::Proxy)
            }
        };
        let reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: request.nonce,
            records,
        };
        let map_reply = reply.to_vec().map_err(ResolveRefusal::Encoding)?;
        let answered = reply.records.first().and_then(|r| r.prefix.prefix());
        Ok((
            Resolution::Reply { to, map_reply },
            answer,
            answered.and_then(subscribe),
        ))
    }

    /// The records of a proxy reply for `p`. Overlap rule (protocols.md §3.5): the registered
    /// more-specifics inside `p` come along, else the ITR would send their traffic to `p`'s
    /// locators for a day. When they do not all fit in [`MAX_REPLY_LEN`], the reply is instead
    /// the part of `p` around `eid` that holds none of them, which is as correct and one record.
    ///
    /// Whether they fit does not depend on their order, so the walk stops at the first one that
    /// does not fit; those that do are then put in site order, each site's by prefix.
    fn proxy_records(
        &self,
        requested: &Address,
        eid: IpAddr,
        p: Prefix,
        regs: &[&Reg],
        live: impl Fn(&Reg) -> bool,
    ) -> Vec<EidRecord> {
        let t = &self.table;
        let first = proxy_record(like_request(requested, p), regs, &t.sources);
        let mut len = 12 + first.wire_len();
        let mut more: Vec<(u32, Prefix, EidRecord)> = Vec::new();
        let walk = t.index.each_inside(p, |id| {
            let Some(slot) = t.slots.get(id as usize) else {
                return ControlFlow::Continue(());
            };
            // One record per site with live registrations of the prefix.
            let mut rest = slot.regs.as_slice();
            while let Some(head) = rest.first() {
                let site = t.sources.get(head.source).site;
                let n = rest
                    .iter()
                    .take_while(|r| t.sources.get(r.source).site == site)
                    .count();
                let (group, tail) = rest.split_at(n);
                rest = tail;
                let q_regs: Vec<&Reg> = group.iter().filter(|r| live(r)).collect();
                if q_regs.is_empty() {
                    continue;
                }
                let record =
                    proxy_record(like_request(requested, slot.prefix), &q_regs, &t.sources);
                len += record.wire_len();
                if 1 + more.len() == MAX_COUNT || len > MAX_REPLY_LEN {
                    return ControlFlow::Break(());
                }
                more.push((site, slot.prefix, record));
            }
            ControlFlow::Continue(())
        });
        if walk.is_break() {
            let clear = self.clear_prefix(eid, p.len(), Some(p.len()));
            return vec![proxy_record(
                like_request(requested, clear),
                regs,
                &t.sources,
            )];
        }
        more.sort_by_key(|(site, q, _)| (*site, *q));
        let mut records = vec![first];
        records.extend(more.into_iter().map(|(_, _, record)| record));
        records
    }

    /// The least-specific prefix around `eid`, `start` bits or longer, that covers no configured
    /// or registered prefix longer than `floor` bits (`None`: no prefix at all). RFC 9301 §8.3
    /// asks negative replies for the widest prefix that does not match any known EID-prefix.
    ///
    /// A prefix of length `len` around `eid` covers a known `q` exactly when
    /// `len <= min(q.len, common leading bits of eid and q)`; the answer is one bit longer than
    /// the largest such minimum, which the index finds per prefix length in O(log n).
    fn clear_prefix(&self, eid: IpAddr, start: u8, floor: Option<u8>) -> Prefix {
        let max = if eid.is_ipv4() { 32 } else { 128 };
        let longer = |q: &Prefix| floor.is_none_or(|f| q.len() > f);
        let configured = self
            .sites
            .iter()
            .flat_map(|s| &s.eids)
            .map(|e| e.prefix)
            .filter(|q| q.is_ipv4() == eid.is_ipv4() && longer(q))
            .map(|q| q.len().min(common_bits(eid, q.addr())))
            .max();
        let deepest = configured.max(self.table.index.deepest(eid, floor));
        let len = match deepest {
            Some(d) => start.min(max).max(d + 1),
            None => start.min(max),
        };
        if len > max {
            return Prefix::host(eid);
        }
        Prefix::new(eid, len).unwrap_or(Prefix::host(eid))
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

/// The ITR-RLOC to answer: the first usable one of the inner source's family (for Cisco ITRs the
/// RLOC family they reached the resolver with), else the first usable one.
fn reply_rloc(request: &MapRequest, inner_src: IpAddr) -> Option<IpAddr> {
    let usable = || {
        request.itr_rlocs.iter().copied().filter(|a| match a {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast(),
        })
    };
    usable()
        .find(|a| a.is_ipv4() == inner_src.is_ipv4())
        .or_else(|| usable().next())
}

/// `p` in the same encoding as the requested EID (inside its instance-ID LCAF when it had one).
fn like_request(requested: &Address, p: Prefix) -> EidPrefix {
    let eid = match *requested {
        Address::InstanceId { iid, .. } => Address::InstanceId {
            iid,
            mask_len: 0,
            addr: Some(p.addr()),
        },
        _ => Address::Ip(p.addr()),
    };
    EidPrefix {
        eid,
        mask_len: p.len(),
    }
}

/// A negative record: no locators, Natively-Forward, not authoritative.
fn negative(prefix: EidPrefix, ttl: u32) -> EidRecord {
    EidRecord {
        ttl,
        prefix,
        action: Action::NativelyForward,
        authoritative: false,
        map_version: 0,
        locators: Vec::new(),
    }
}

/// A Map-Server's proxy record: the union of the registrations' locators (the newest
/// registration's priority and weight win for an RLOC named twice), sorted by address as §3.3
/// asks, A=0 and L=0 because the Map-Server is not the owner (protocols.md §3.3). Registrations
/// keep no R bit, so every locator is sent reachable.
fn proxy_record(prefix: EidPrefix, regs: &[&Reg], sources: &Sources) -> EidRecord {
    let mut newest_first = regs.to_vec();
    newest_first.sort_by_key(|r| Reverse(r.last_ms()));
    let mut locators: Vec<LocatorRecord> = Vec::new();
    for l in newest_first
        .iter()
        .flat_map(|r| sources.get(r.source).locators.iter())
    {
        if locators.len() == MAX_COUNT {
            break;
        }
        if !locators.iter().any(|x| x.rloc == l.rloc) {
            locators.push(LocatorRecord {
                local: false,
                ..LocatorRecord::local(l.rloc, l.priority, l.weight)
            });
        }
    }
    locators.sort_by_key(|l| l.rloc);
    EidRecord {
        ttl: PROXY_REPLY_TTL,
        prefix,
        action: Action::NoAction,
        authoritative: false,
        map_version: 0,
        locators,
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
struct Ms([u32; 2]);

impl Ms {
    fn new(ms: u64) -> Self {
        Ms([(ms >> 32) as u32, ms as u32])
    }

    fn get(self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }
}

/// One registration as stored: `source` (a [`Sources`] id) says who registered it and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reg {
    source: u32,
    first: Ms,
    last: Ms,
}

impl Reg {
    fn first_ms(&self) -> u64 {
        self.first.get()
    }

    fn last_ms(&self) -> u64 {
        self.last.get()
    }
}

/// The registrations of one prefix in (site, registrar) order: one inline, else a boxed slice
/// (empty: a free slot).
#[derive(Debug, Clone)]
enum Regs {
    One(Reg),
    Many(Box<[Reg]>),
}

impl Regs {
    fn empty() -> Self {
        Regs::Many(Box::default())
    }

    fn as_slice(&self) -> &[Reg] {
        match self {
            Regs::One(r) => std::slice::from_ref(r),
            Regs::Many(list) => list,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn from_vec(mut list: Vec<Reg>) -> Self {
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
struct Slot {
    prefix: Prefix,
    /// Bumped whenever the slot's entry in the expiry queue is replaced: older entries are stale.
    generation: u32,
    regs: Regs,
}

/// Who registered and how: the same for every prefix an ETR registers with one locator set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Source {
    site: u32,
    registrar: SocketAddr,
    locators: Box<[Locator]>,
    proxy_reply: bool,
    reliable: bool,
}

/// Interned [`Source`]s with reference counts; ids of unused ones are reused.
#[derive(Debug, Clone, Default)]
struct Sources {
    list: Vec<(Source, usize)>,
    ids: HashMap<Source, u32>,
    free: Vec<u32>,
    /// References (registrations) per site, for the site's registration limit.
    per_site: Vec<usize>,
}

impl Sources {
    /// The id of `source`, one more reference to it.
    fn intern(&mut self, source: Source) -> u32 {
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
    fn release(&mut self, id: u32) {
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

    fn get(&self, id: u32) -> &Source {
        &self.list[id as usize].0
    }

    fn site_regs(&self, site: u32) -> usize {
        self.per_site.get(site as usize).copied().unwrap_or(0)
    }
}

/// Every registration of every site.
#[derive(Clone, Default)]
struct Table {
    slots: Vec<Slot>,
    /// Slots with no registrations, to be reused.
    free: Vec<u32>,
    index: Index,
    sources: Sources,
    /// (deadline, slot, generation): a slot's deadline is at most the expiry of its oldest
    /// registration; entries whose generation is not the slot's are stale and skipped.
    queue: BinaryHeap<Reverse<(u64, u32, u32)>>,
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
    fn registration(&self, r: &Reg) -> Registration {
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

    fn regs(&self, id: u32) -> &[Reg] {
        self.slots
            .get(id as usize)
            .map_or(&[], |s| s.regs.as_slice())
    }

    /// When the slot's oldest registration was last refreshed.
    fn oldest(&self, id: u32) -> Option<u64> {
        self.regs(id).iter().map(Reg::last_ms).min()
    }

    fn has_site(&self, id: u32, site: u32) -> bool {
        self.regs(id)
            .iter()
            .any(|r| self.sources.get(r.source).site == site)
    }

    /// Sets each registration of slot `id` as last refreshed at `when(source, registration)`
    /// (never earlier than it was).
    fn refresh(&mut self, id: u32, when: impl Fn(&Source, &Reg) -> u64) {
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
    fn retain(&mut self, id: u32, mut keep: impl FnMut(&Source, &Reg) -> bool) -> usize {
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
    fn add(&mut self, prefix: Prefix, slot: Option<u32>, reg: Reg, oldest: Option<u64>) {
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
    fn alloc(&mut self, prefix: Prefix) -> u32 {
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
    fn free_if_empty(&mut self, id: u32) -> bool {
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
    fn queue(&mut self, id: u32) {
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
    fn next_due(&mut self, now_ms: u64) -> Option<u32> {
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
    fn remap(&mut self, to: impl Fn(u32, Prefix) -> Option<u32>) {
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
trait Bits: Copy + Ord {
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
struct Family<K> {
    by_len: Vec<BTreeMap<K, u32>>,
    used: [u64; 3],
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
    fn is_used(&self, len: u8) -> bool {
        (self.used[usize::from(len / 64)] >> (len % 64)) & 1 == 1
    }

    fn map(&self, len: u8) -> Option<&BTreeMap<K, u32>> {
        self.by_len.get(usize::from(len))
    }

    fn insert(&mut self, key: K, len: u8, id: u32) {
        if let Some(map) = self.by_len.get_mut(usize::from(len)) {
            map.insert(key, id);
            self.used[usize::from(len / 64)] |= 1 << (len % 64);
        }
    }

    fn remove(&mut self, key: K, len: u8) -> Option<u32> {
        let map = self.by_len.get_mut(usize::from(len))?;
        let id = map.remove(&key);
        if map.is_empty() {
            self.used[usize::from(len / 64)] &= !(1 << (len % 64));
        }
        id
    }

    fn get(&self, key: K, len: u8) -> Option<u32> {
        self.map(len)?.get(&key).copied()
    }

    /// Prefix lengths in use, longest first.
    fn lengths(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=K::WIDTH).rev().filter(|&len| self.is_used(len))
    }

    /// Slots of the prefixes containing `addr`, longest first.
    fn matching(&self, addr: K) -> impl Iterator<Item = u32> + '_ {
        self.lengths()
            .filter_map(move |len| self.get(addr.masked(len), len))
    }

    /// Slots of the prefixes inside `key/len` and longer than `len`, shortest first.
    fn inside(&self, key: K, len: u8) -> impl Iterator<Item = u32> + '_ {
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
    fn deepest(&self, addr: K, floor: Option<u8>) -> Option<u8> {
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
struct Index {
    v4: Family<u32>,
    v6: Family<u128>,
}

impl Index {
    fn insert(&mut self, p: Prefix, id: u32) {
        match p.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), p.len(), id),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), p.len(), id),
        }
    }

    fn remove(&mut self, p: &Prefix) -> Option<u32> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.remove(u32::from(a), p.len()),
            IpAddr::V6(a) => self.v6.remove(u128::from(a), p.len()),
        }
    }

    fn get(&self, p: &Prefix) -> Option<u32> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.get(u32::from(a), p.len()),
            IpAddr::V6(a) => self.v6.get(u128::from(a), p.len()),
        }
    }

    /// The first `Some` that `f` makes of the slots of the prefixes containing `ip`, longest
    /// prefix first.
    fn find_longest<R>(&self, ip: IpAddr, f: impl FnMut(u32) -> Option<R>) -> Option<R> {
        match ip {
            IpAddr::V4(a) => self.v4.matching(u32::from(a)).find_map(f),
            IpAddr::V6(a) => self.v6.matching(u128::from(a)).find_map(f),
        }
    }

    /// Runs `f` on the slot of every prefix strictly inside `p` until it breaks.
    fn each_inside(&self, p: Prefix, f: impl FnMut(u32) -> ControlFlow<()>) -> ControlFlow<()> {
        match p.addr() {
            IpAddr::V4(a) => self.v4.inside(u32::from(a), p.len()).try_for_each(f),
            IpAddr::V6(a) => self.v6.inside(u128::from(a), p.len()).try_for_each(f),
        }
    }

    /// [`Family::deepest`] in the family of `ip`.
    fn deepest(&self, ip: IpAddr, floor: Option<u8>) -> Option<u8> {
        match ip {
            IpAddr::V4(a) => self.v4.deepest(u32::from(a), floor),
            IpAddr::V6(a) => self.v6.deepest(u128::from(a), floor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use crate::wire::lisp::address::EidPrefix;
    use crate::wire::lisp::record::{EidRecord, LocatorRecord};

    fn ms() -> MapServer {
        let (cfg, _) = config::parse(
            "feature lisp\nip lisp map-server\nlisp site A\n eid-prefix 10.10.10.0/24\n eid-prefix 172.16.0.0/16 accept-more-specifics\n authentication-key 0 cisco\nlisp site B\n eid-prefix 10.30.30.0/24\n authentication-key 0 other\n",
            Syntax::Cli,
        )
        .unwrap();
        MapServer::new(&cfg)
    }

    /// Registers `prefixes` from ETR `etr` (TTL 1440, no proxy) at `now_ms`.
    fn put(
        m: &mut MapServer,
        prefixes: &[&str],
        etr: &str,
        now_ms: u64,
    ) -> Result<Accepted, Refusal> {
        m.register(&reg(prefixes, etr, 1440, false), at(etr), false, now_ms)
    }

    fn register(prefix: &str, key: &[u8], algorithm: KeyId, notify: bool) -> Vec<u8> {
        let p: Prefix = prefix.parse().unwrap();
        let record = EidRecord {
            ttl: 1440,
            prefix: EidPrefix::from_prefix(p),
            action: Default::default(),
            authoritative: true,
            map_version: 0,
            locators: vec![LocatorRecord::local(
                "203.0.113.11".parse().unwrap(),
                1,
                100,
            )],
        };
        let mut reg = MapRegister::new(vec![record]);
        reg.want_map_notify = notify;
        reg.to_signed_vec(&AuthKey::new(algorithm, key).unwrap())
            .unwrap()
    }

    fn from() -> SocketAddr {
        "203.0.113.11:4342".parse().unwrap()
    }

    #[test]
    fn accepted_registers_are_stored_and_notified() {
        let mut m = ms();
        let ok = m
            .register(
                &register("10.10.10.0/24", b"cisco", KeyId::HmacSha1, true),
                from(),
                false,
                1000,
            )
            .unwrap();
        assert_eq!(ok.site, "A");
        let notify = ok.notify.expect("M bit asks for a Map-Notify");
        let key = AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap();
        assert!(
            MapNotify::parse_verified(&notify, &key).is_ok(),
            "the notify is signed with the site key"
        );
        // SHA-256 and a more-specific inside an accept-more-specifics prefix.
        m.register(
            &register("172.16.1.10/32", b"cisco", KeyId::HmacSha256, false),
            from(),
            true,
            2000,
        )
        .unwrap();
        assert!(
            matches!(m.lookup("172.16.1.10".parse().unwrap()), Lookup::Registered(p, _) if p.to_string() == "172.16.1.10/32")
        );
        assert!(matches!(
            m.lookup("172.16.9.9".parse().unwrap()),
            Lookup::SiteWithoutEtr(_)
        ));
        assert_eq!(m.lookup("192.0.2.1".parse().unwrap()), Lookup::NotEid);
        let text = render_sites(&m.rows(62_000, 0), true);
        assert!(
            text.contains(
                "A              00:01:01  yes    203.0.113.11         0        10.10.10.0/24"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "               00:01:00  yes#   203.0.113.11         0        172.16.1.10/32"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "B              never     no     --                   0        10.30.30.0/24"
            ),
            "{text}"
        );
    }

    #[test]
    fn bad_key_unknown_site_and_outside_prefixes_are_refused_and_counted() {
        let mut m = ms();
        let bad = m.register(
            &register("10.10.10.0/24", b"wrong", KeyId::HmacSha1, true),
            from(),
            false,
            0,
        );
        assert_eq!(bad, Err(Refusal::Authentication { site: "A".into() }));
        // Another site's key does not open this site.
        assert!(
            m.register(
                &register("10.10.10.0/24", b"other", KeyId::HmacSha1, true),
                from(),
                false,
                0
            )
            .is_err()
        );
        assert!(matches!(
            m.register(
                &register("192.0.2.0/24", b"cisco", KeyId::HmacSha1, true),
                from(),
                false,
                0
            ),
            Err(Refusal::UnknownSite(_))
        ));
        assert!(matches!(
            m.register(
                &register("10.10.10.5/32", b"cisco", KeyId::HmacSha1, true),
                from(),
                false,
                0
            ),
            Err(Refusal::OutsideSite { .. })
        ));
        assert!(matches!(
            m.register(b"\x30\x00", from(), false, 0),
            Err(Refusal::Malformed(_))
        ));
        let c = m.counters;
        assert_eq!(
            (
                c.refused_authentication,
                c.refused_unknown_site,
                c.refused_outside_site,
                c.refused_malformed
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(c.registers_accepted, 0);
        assert!(
            m.rows(0, 0).iter().all(|r| !r.registered),
            "nothing refused is stored"
        );
    }

    #[test]
    fn registrations_expire_after_three_minutes() {
        let mut m = ms();
        m.register(
            &register("10.10.10.0/24", b"cisco", KeyId::HmacSha1, false),
            from(),
            false,
            0,
        )
        .unwrap();
        assert!(m.expire(REGISTRATION_LIFETIME_MS - 1).is_empty());
        assert_eq!(m.expire(REGISTRATION_LIFETIME_MS).len(), 1);
        assert_eq!(m.counters.expired, 1);
        assert!(matches!(
            m.lookup("10.10.10.1".parse().unwrap()),
            Lookup::SiteWithoutEtr(_)
        ));
    }

    /// Octets from hex text (spaces allowed), as the reference prints them.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// An ETR's register (key "cisco", SHA-1, M=1): `prefixes` with the one locator `rloc`.
    fn reg(prefixes: &[&str], rloc: &str, ttl: u32, proxy: bool) -> Vec<u8> {
        let records = prefixes
            .iter()
            .map(|p| EidRecord {
                ttl,
                prefix: EidPrefix::from_prefix(p.parse().unwrap()),
                action: Default::default(),
                authoritative: true,
                map_version: 0,
                locators: vec![LocatorRecord::local(ip(rloc), 1, 100)],
            })
            .collect();
        let mut r = MapRegister::new(records);
        r.proxy_reply = proxy;
        r.to_signed_vec(&cisco()).unwrap()
    }

    fn cisco() -> AuthKey {
        AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap()
    }

    fn at(addr: &str) -> SocketAddr {
        SocketAddr::new(ip(addr), 4342)
    }

    /// An ITR's Map-Request for `eid` with ITR-RLOC `itr` and nonce `nonce`.
    fn request(eid: &str, itr: &str, nonce: u64) -> MapRequest {
        MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked: false,
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid: Address::None,
            itr_rlocs: vec![ip(itr)],
            records: vec![EidPrefix::from_prefix(eid.parse().unwrap())],
            map_reply_record: None,
            subscribe: None,
        }
    }

    /// `message` in an ECM from 10.2.2.2 port 61000, as an ITR sends it to the resolver.
    fn ecm(message: LispMessage) -> Vec<u8> {
        Ecm {
            ddt: false,
            inner_src: ip("10.2.2.2"),
            inner_dst: ip("172.16.1.10"),
            inner_ttl: 64,
            inner_src_port: 61000,
            inner_dst_port: 4342,
            message: Box::new(message),
        }
        .to_vec()
        .unwrap()
    }

    fn ask(m: &mut MapServer, eid: &str, nonce: u64) -> Result<Resolution, ResolveRefusal> {
        m.resolve(
            &ecm(LispMessage::MapRequest(request(eid, "10.2.2.2", nonce))),
            10_000,
        )
    }

    /// The one reply of a resolution, decoded.
    fn reply(r: Result<Resolution, ResolveRefusal>) -> (SocketAddr, MapReply) {
        match r {
            Ok(Resolution::Reply { to, map_reply }) => (to, MapReply::parse(&map_reply).unwrap()),
            other => panic!("expected a Map-Reply, got {other:?}"),
        }
    }

    #[test]
    fn proxy_reply_is_the_reference_etr_reply_with_a_and_l_cleared() {
        let mut m = ms();
        m.register(
            &reg(&["172.16.1.10/32"], "10.3.3.3", 1440, true),
            at("10.3.3.3"),
            false,
            0,
        )
        .unwrap();
        // protocols.md §4.7: the SMR-invoked Map-Request of ITR-R 10.2.2.2, inner UDP 4342.
        let ecm = hex(
            "80000000 4500003c 00004000 40118193 0a020202 ac10010a 10f610f6 00289829
             10400001 4d04ab2f 99ff6ff5 0001c0a8 00160001 0a020202 00200001 ac10010a",
        );
        let Ok(Resolution::Reply { to, map_reply }) = m.resolve(&ecm, 1000) else {
            panic!("the Map-Server answers for a proxy-reply registration");
        };
        assert_eq!(to, at("10.2.2.2"), "ITR-RLOC and the inner UDP source port");
        // §4.7's reply from xTR-B, with A (0x1000) and L (0x0004) cleared: the MS is not the
        // owner of the mapping.
        assert_eq!(
            map_reply,
            hex(
                "20000001 4d04ab2f99ff6ff5 000005a0 01200000 00000001 ac10010a 0164ff00 00010001 0a030303"
            )
        );
        let decoded = MapReply::parse(&map_reply).unwrap();
        assert_eq!(decoded.nonce, 0x4d04_ab2f_99ff_6ff5);
        assert_eq!(m.counters.proxy_replies, 1);
    }

    #[test]
    fn proxy_reply_carries_every_registration_s_locators() {
        let mut m = ms();
        put(&mut m, &["10.10.10.0/24"], "10.1.1.2", 0).unwrap();
        m.register(
            &reg(&["10.10.10.0/24"], "10.1.1.1", 1440, true),
            at("10.1.1.1"),
            false,
            1,
        )
        .unwrap();
        let (to, r) = reply(ask(&mut m, "10.10.10.7/32", 7));
        assert_eq!(
            (to, r.nonce, r.records.len()),
            (SocketAddr::new(ip("10.2.2.2"), 61000), 7, 1)
        );
        let rec = &r.records[0];
        assert_eq!(rec.prefix.to_string(), "10.10.10.0/24");
        assert_eq!(
            (rec.ttl, rec.authoritative, rec.action),
            (1440, false, Action::NoAction)
        );
        let locs: Vec<(IpAddr, u8, u8, bool)> = rec
            .locators
            .iter()
            .map(|l| (l.rloc, l.priority, l.weight, l.local))
            .collect();
        assert_eq!(
            locs,
            vec![
                (ip("10.1.1.1"), 1, 100, false),
                (ip("10.1.1.2"), 1, 100, false)
            ],
            "union, sorted by address, priority and weight kept, L=0"
        );
    }

    #[test]
    fn proxy_reply_brings_the_more_specifics_or_narrows_when_they_do_not_fit() {
        let mut m = ms();
        m.register(
            &reg(&["172.16.0.0/16"], "10.1.1.1", 1440, true),
            at("10.1.1.1"),
            false,
            0,
        )
        .unwrap();
        put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 0).unwrap();
        let (_, r) = reply(ask(&mut m, "172.16.9.9/32", 1));
        let got: Vec<(String, IpAddr)> = r
            .records
            .iter()
            .map(|rec| (rec.prefix.to_string(), rec.locators[0].rloc))
            .collect();
        assert_eq!(
            got,
            vec![
                ("172.16.0.0/16".to_string(), ip("10.1.1.1")),
                ("172.16.1.10/32".to_string(), ip("10.3.3.3")),
            ],
            "the covering prefix and its more-specific, same TTL"
        );
        assert!(r.records.iter().all(|rec| rec.ttl == 1440));
        // Sixty moved hosts in 172.16.1.0/24 no longer fit in one datagram: the answer is the
        // widest part of the /16 around the EID that holds none of them.
        let hosts: Vec<String> = (20..80).map(|i| format!("172.16.1.{i}/32")).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        m.register(
            &reg(&hosts, "10.3.3.3", 1440, false),
            at("10.3.3.3"),
            false,
            0,
        )
        .unwrap();
        let (_, r) = reply(ask(&mut m, "172.16.200.1/32", 2));
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].prefix.to_string(), "172.16.128.0/17");
        assert_eq!(r.records[0].locators[0].rloc, ip("10.1.1.1"));
    }

    #[test]
    fn forward_sends_the_ecm_unchanged_to_the_etr_that_registered_last() {
        let mut m = ms();
        put(&mut m, &["10.10.10.0/24"], "10.1.1.1", 1000).unwrap();
        put(&mut m, &["10.10.10.0/24"], "10.1.1.2", 2000).unwrap();
        let bytes = ecm(LispMessage::MapRequest(request(
            "10.10.10.7/32",
            "10.2.2.2",
            9,
        )));
        assert_eq!(
            m.resolve(&bytes, 3000),
            Ok(Resolution::Forward {
                etr: ip("10.1.1.2"),
                ecm: bytes.clone()
            })
        );
        // 10.1.1.2 stops refreshing: once its registration is past its lifetime the other ETR
        // gets the request even before expire() runs.
        put(&mut m, &["10.10.10.0/24"], "10.1.1.1", 100_000).unwrap();
        assert!(matches!(
            m.resolve(&bytes, 2000 + REGISTRATION_LIFETIME_MS),
            Ok(Resolution::Forward { etr, .. }) if etr == ip("10.1.1.1")
        ));
        assert_eq!(m.counters.requests_forwarded, 2);
    }

    #[test]
    fn negative_replies_natively_forward_for_15_minutes_outside_sites_and_1_inside() {
        let mut m = ms();
        let (to, r) = reply(ask(&mut m, "192.0.2.1/32", 5));
        assert_eq!((to.ip(), r.nonce), (ip("10.2.2.2"), 5));
        let rec = &r.records[0];
        assert_eq!(
            rec.prefix.to_string(),
            "192.0.2.1/32",
            "the prefix as requested"
        );
        assert_eq!(
            (rec.ttl, rec.action, rec.authoritative, rec.locators.len()),
            (15, Action::NativelyForward, false, 0)
        );
        // A configured site nobody registered: the site prefix, 1 minute.
        let (_, r) = reply(ask(&mut m, "10.30.30.5/32", 6));
        let rec = &r.records[0];
        assert_eq!(rec.prefix.to_string(), "10.30.30.0/24");
        assert_eq!((rec.ttl, rec.action), (1, Action::NativelyForward));
        // A requested prefix covering sites is narrowed until it covers none.
        let (_, r) = reply(ask(&mut m, "10.0.0.0/8", 7));
        assert_eq!(r.records[0].prefix.to_string(), "10.0.0.0/13");
        assert_eq!(r.records[0].ttl, 15);
        // An unregistered site prefix is narrowed around a registered host inside it.
        put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 0).unwrap();
        let (_, r) = reply(ask(&mut m, "172.16.9.9/32", 8));
        assert_eq!(r.records[0].prefix.to_string(), "172.16.8.0/21");
        assert_eq!(r.records[0].ttl, 1);
        assert_eq!(m.counters.negative_replies, 4);
    }

    #[test]
    fn negative_reply_is_the_reference_fixture() {
        let (cfg, _) = config::parse(
            "feature lisp\nip lisp map-server\nlisp site A\n eid-prefix 172.16.0.0/16\n authentication-key 0 cisco\n",
            Syntax::Cli,
        )
        .unwrap();
        let mut m = MapServer::new(&cfg);
        let Ok(Resolution::Reply { map_reply, .. }) = ask(&mut m, "10.0.0.0/8", 1) else {
            panic!("10.0.0.0/8 is not an EID");
        };
        // protocols.md §4.7: Natively-Forward, TTL 15, 10.0.0.0/8, A=0.
        assert_eq!(
            map_reply,
            hex("20000001 0000000000000001 0000000f 00082000 00000001 0a000000")
        );
    }

    #[test]
    fn reply_keeps_the_instance_id_of_the_request() {
        let mut m = ms();
        let mut req = request("192.0.2.1/32", "10.2.2.2", 1);
        req.records[0] = EidPrefix::with_iid(
            roamer_hal::types::Iid::new(101).unwrap(),
            "192.0.2.1/32".parse().unwrap(),
        );
        let (_, r) = reply(m.resolve(&ecm(LispMessage::MapRequest(req)), 0));
        assert_eq!(r.records[0].prefix.eid.iid(), Some(101));
    }

    #[test]
    fn probes_unanswerable_requests_and_other_messages_are_refused_and_counted() {
        let mut m = ms();
        let mut probe = request("192.0.2.1/32", "10.2.2.2", 1);
        probe.probe = true;
        assert_eq!(
            m.resolve(&ecm(LispMessage::MapRequest(probe)), 0),
            Err(ResolveRefusal::Probe)
        );
        let nowhere = request("192.0.2.1/32", "0.0.0.0", 1);
        assert_eq!(
            m.resolve(&ecm(LispMessage::MapRequest(nowhere)), 0),
            Err(ResolveRefusal::NoItrRloc)
        );
        let mut no_eid = request("192.0.2.1/32", "10.2.2.2", 1);
        no_eid.records[0] = EidPrefix {
            eid: Address::None,
            mask_len: 0,
        };
        assert_eq!(
            m.resolve(&ecm(LispMessage::MapRequest(no_eid)), 0),
            Err(ResolveRefusal::NoEid)
        );
        let map_reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: 1,
            records: Vec::new(),
        };
        assert_eq!(
            m.resolve(&ecm(LispMessage::MapReply(map_reply)), 0),
            Err(ResolveRefusal::NotMapRequest(MessageType::MapReply))
        );
        assert!(matches!(
            m.resolve(b"\x80\x00\x00\x00\x45", 0),
            Err(ResolveRefusal::Malformed(_))
        ));
        let c = m.counters;
        assert_eq!(c.requests_refused, 5);
        assert_eq!(
            (c.negative_replies, c.proxy_replies, c.requests_forwarded),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_host_arriving_inside_another_etrs_prefix_notifies_that_etr_once() {
        // Across subnets: the home xTR registers the subnet, the visited one the moved host.
        let mut m = ms();
        put(&mut m, &["172.16.1.0/24"], "10.1.1.1", 0).unwrap();
        let arrived = put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 1000)
            .unwrap()
            .moved;
        assert_eq!(arrived.len(), 1, "the covering prefix's ETR hears of it");
        let (to, bytes) = &arrived[0];
        assert_eq!(*to, ip("10.1.1.1"));
        let notify = MapNotify::parse_verified(bytes, &cisco()).unwrap();
        assert_eq!(notify.records[0].prefix.to_string(), "172.16.1.10/32");
        assert_eq!(notify.records[0].locators[0].rloc, ip("10.3.3.3"));
        assert_eq!(m.counters.overlap_notifies, 1);
        // Refreshes do not repeat it; both registrations stay.
        let refresh = put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 61_000).unwrap();
        assert!(refresh.moved.is_empty());
        assert!(matches!(m.lookup(ip("172.16.1.99")), Lookup::Registered(p, _) if p.len() == 24));
    }

    #[test]
    fn the_notify_to_the_old_etr_is_resent_until_acknowledged() {
        let mut m = ms();
        put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 0).unwrap();
        let moved = put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 1000)
            .unwrap()
            .moved;
        assert!(m.resend_notifies(1999).is_empty());
        let again = m.resend_notifies(2000);
        assert_eq!(again, moved, "the same Map-Notify, to the same ETR");
        // An ack for something else does not stop it; the ETR's ack does.
        let notify = MapNotify::parse(&moved[0].1).unwrap();
        let mut other = MapNotify::ack_of(&notify);
        other.records.clear();
        m.notify_ack(&other.to_signed_vec(&cisco()).unwrap(), ip("10.1.1.1"));
        assert_eq!(m.resend_notifies(4000).len(), 1);
        m.notify_ack(
            &MapNotify::ack_of(&notify).to_signed_vec(&cisco()).unwrap(),
            ip("10.1.1.1"),
        );
        assert!(m.resend_notifies(10_000).is_empty());
        assert_eq!(m.counters.notifies_resent, 2);
        // Unanswered, it stops after three sendings.
        let mut m = ms();
        for (at_ms, etr) in [(0, "10.1.1.1"), (1000, "10.3.3.3")] {
            m.register(
                &reg(&["172.16.1.10/32"], etr, 1440, false),
                at(etr),
                false,
                at_ms,
            )
            .unwrap();
        }
        let resent: usize = (1..20).map(|s| m.resend_notifies(s * 1000).len()).sum();
        assert_eq!(resent, 2);
    }

    #[test]
    fn a_host_moving_to_another_etr_notifies_the_old_one() {
        let mut m = ms();
        let first = put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 0).unwrap();
        assert!(first.moved.is_empty());
        let moved = put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 1000)
            .unwrap()
            .moved;
        assert_eq!(moved.len(), 1, "one Map-Notify, to the old ETR");
        let (to, bytes) = &moved[0];
        assert_eq!(*to, ip("10.1.1.1"));
        let notify = MapNotify::parse_verified(bytes, &cisco()).expect("signed with the site key");
        assert!(!notify.ack);
        assert_ne!(notify.nonce, 0);
        assert_eq!(notify.records.len(), 1);
        assert_eq!(notify.records[0].prefix.to_string(), "172.16.1.10/32");
        assert_eq!(
            notify.records[0].locators[0].rloc,
            ip("10.3.3.3"),
            "the new locator set"
        );
        let Lookup::Registered(_, regs) = m.lookup(ip("172.16.1.10")) else {
            panic!("still registered");
        };
        assert_eq!(
            regs.iter().map(|r| r.registrar).collect::<Vec<_>>(),
            vec![at("10.3.3.3")],
            "the newest registration wins"
        );
        assert_eq!(m.counters.moves, 1);
        // The new ETR refreshing, even from another source port with another locator, is no move.
        let again = m
            .register(
                &reg(&["172.16.1.10/32"], "10.3.3.4", 1440, false),
                SocketAddr::new(ip("10.3.3.3"), 50_000),
                false,
                2000,
            )
            .unwrap();
        assert!(again.moved.is_empty());
        let Lookup::Registered(_, regs) = m.lookup(ip("172.16.1.10")) else {
            panic!("still registered");
        };
        assert_eq!(regs.len(), 1, "replaced, not doubled");
        assert_eq!(
            regs[0].first_ms, 1000,
            "the same ETR keeps its first registration time"
        );
        assert_eq!(m.counters.moves, 1);
    }

    #[test]
    fn a_multihomed_site_prefix_keeps_every_etr() {
        let mut m = ms();
        put(&mut m, &["10.10.10.0/24"], "10.1.1.1", 0).unwrap();
        let second = put(&mut m, &["10.10.10.0/24"], "10.1.1.2", 0).unwrap();
        assert!(second.moved.is_empty());
        assert!(
            matches!(m.lookup(ip("10.10.10.1")), Lookup::Registered(_, regs) if regs.len() == 2)
        );
        // Two ETRs of one site registering a host with the same locator set: no move either.
        put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 0).unwrap();
        let same = m
            .register(
                &reg(&["172.16.1.10/32"], "10.1.1.1", 1440, false),
                at("10.1.1.2"),
                false,
                0,
            )
            .unwrap();
        assert!(same.moved.is_empty());
        assert_eq!(m.counters.moves, 0);
    }

    #[test]
    fn a_record_with_ttl_0_withdraws_the_sender_s_registration() {
        let mut m = ms();
        put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 0).unwrap();
        // Another ETR's withdrawal does not touch it.
        m.register(
            &reg(&["172.16.1.10/32"], "10.3.3.3", 0, false),
            at("10.3.3.3"),
            false,
            1,
        )
        .unwrap();
        assert!(matches!(
            m.lookup(ip("172.16.1.10")),
            Lookup::Registered(..)
        ));
        let ok = m
            .register(
                &reg(&["172.16.1.10/32"], "10.1.1.1", 0, false),
                at("10.1.1.1"),
                false,
                2,
            )
            .unwrap();
        assert!(
            ok.notify.is_some(),
            "the withdrawal is acknowledged like any register"
        );
        assert!(matches!(
            m.lookup(ip("172.16.1.10")),
            Lookup::SiteWithoutEtr(_)
        ));
        assert_eq!(m.counters.withdrawals, 1);
        assert!(
            !m.rows(2, 0)
                .iter()
                .any(|r| r.prefix.to_string() == "172.16.1.10/32")
        );
    }

    #[test]
    fn map_notify_acks_are_counted() {
        let mut m = ms();
        let notify = MapNotify {
            ack: false,
            nonce: 3,
            auth: Authentication::none(),
            records: Vec::new(),
            xtr: None,
        };
        m.notify_ack(
            &MapNotify::ack_of(&notify).to_signed_vec(&cisco()).unwrap(),
            ip("10.1.1.1"),
        );
        m.notify_ack(&notify.to_signed_vec(&cisco()).unwrap(), ip("10.1.1.1"));
        m.notify_ack(b"\x50", ip("10.1.1.1"));
        assert_eq!(
            (
                m.counters.notify_acks,
                m.counters.notify_acks_refused,
                m.counters.notify_acks_malformed
            ),
            (0, 1, 2),
            "an ack for nothing outstanding is refused, a Map-Notify is no ack"
        );
    }

    #[test]
    fn only_the_notified_etr_s_signed_ack_stops_the_resending_and_each_prefix_counts_it() {
        let mut m = ms();
        put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 0).unwrap();
        let moved = put(&mut m, &["172.16.1.10/32"], "10.3.3.3", 1000)
            .unwrap()
            .moved;
        let notify = MapNotify::parse(&moved[0].1).unwrap();
        let ack = MapNotify::ack_of(&notify);
        // From another address, or signed with another key: refused.
        m.notify_ack(&ack.to_signed_vec(&cisco()).unwrap(), ip("10.9.9.9"));
        let wrong = AuthKey::new(KeyId::HmacSha1, b"not-the-site-key").unwrap();
        m.notify_ack(&ack.to_signed_vec(&wrong).unwrap(), ip("10.1.1.1"));
        assert_eq!(m.counters.notify_acks_refused, 2);
        assert_eq!(m.resend_notifies(2000).len(), 1, "still resent");
        m.notify_ack(&ack.to_signed_vec(&cisco()).unwrap(), ip("10.1.1.1"));
        assert_eq!(m.counters.notify_acks, 1);
        assert!(m.resend_notifies(10_000).is_empty());
        let row = m
            .rows(10_000, 0)
            .into_iter()
            .find(|r| r.prefix.to_string() == "172.16.1.10/32")
            .unwrap();
        assert_eq!(
            row.notifies,
            NotifyCounts {
                sent: 1,
                resent: 1,
                acked: 1,
                given_up: 0
            }
        );
        assert_eq!(row.etrs.len(), 1, "the old ETR's registration is gone");
        assert_eq!(row.etrs[0].registrar.ip(), ip("10.3.3.3"));
        // A move nobody acknowledges: three sendings, then given up, counted.
        put(&mut m, &["172.16.1.10/32"], "10.1.1.1", 20_000).unwrap();
        let resent: usize = (21..40).map(|s| m.resend_notifies(s * 1000).len()).sum();
        assert_eq!(resent, 2);
        assert_eq!(m.counters.notifies_given_up, 1);
        let rows = m.rows(40_000, 0);
        let row = rows
            .iter()
            .find(|r| r.prefix.to_string() == "172.16.1.10/32")
            .unwrap();
        assert_eq!(
            (
                row.notifies.sent,
                row.notifies.resent,
                row.notifies.given_up
            ),
            (2, 3, 1)
        );
        let text = render_site_detail(&rows);
        assert!(
            text.contains(
                "  EID-prefix: 172.16.1.10/32 instance-id 0\n\
                 \x20   First registered:     00:00:20\n\
                 \x20   Last registered:      00:00:20\n\
                 \x20   Origin:               Dynamic, more specific of 172.16.0.0/16\n\
                 \x20   Proxy reply:          No\n\
                 \x20   State:                complete\n\
                 \x20   Map-Notify to previous RLOCs: sent 2, resent 3, acknowledged 1, given up 1\n\
                 \x20   ETR 10.1.1.1:4342, last registered 00:00:20, no proxy-reply\n\
                 \x20     Locator      State      Pri/Wgt\n\
                 \x20     10.1.1.1     up           1/100\n"
            ),
            "{text}"
        );
        assert!(text.contains("Site name: "), "{text}");
    }
}
