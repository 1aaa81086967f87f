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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use roamer_hal::{Locator, Prefix};
use serde::Serialize;

use crate::ControlError;
use crate::config::secret::Secret;
use crate::config::{Config, SiteEid};
use crate::lisp::nonce::Nonces;
use crate::wire::lisp::auth::{AuthKey, Authentication, KeyId};
use crate::wire::lisp::map_notify::MapNotify;
use crate::wire::lisp::map_register::MapRegister;
use crate::wire::lisp::record::EidRecord;

/// A registration expires after three periods of the ETR's 60-second refresh (RFC 9301 §8.2).
pub const REGISTRATION_LIFETIME_MS: u64 = 3 * 60_000;

/// One ETR's registration of one EID prefix.
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
    /// Registered prefixes, each with the registrations of every ETR that registered it.
    registered: BTreeMap<Prefix, BTreeMap<SocketAddr, Registration>>,
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
}

/// What the Map-Server counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub registers_accepted: u64,
    pub refused_malformed: u64,
    pub refused_unknown_site: u64,
    pub refused_outside_site: u64,
    pub refused_authentication: u64,
    pub expired: u64,
    /// Host registrations taken over by another ETR (their ETRs get an unsolicited Map-Notify).
    pub moves: u64,
    /// Registrations withdrawn by a record with TTL 0.
    pub withdrawals: u64,
    /// Map-Notify-Acks received.
    pub notify_acks: u64,
    /// Messages handed to [`MapServer::notify_ack`] that are not a Map-Notify-Ack.
    pub notify_acks_malformed: u64,
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
}

/// What the mapping system knows about an EID (for the Map-Resolver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Registered: the prefix and its registrations.
    Registered(Prefix, Vec<&'a Registration>),
    /// Inside a configured site prefix that no ETR registered (negative reply, 1 minute).
    SiteWithoutEtr(Prefix),
    /// Outside every site (negative reply, 15 minutes).
    NotEid,
}

/// The Map-Server.
#[derive(Debug, Clone, Default)]
pub struct MapServer {
    sites: Vec<Site>,
    pub counters: Counters,
    /// Nonces of the unsolicited Map-Notifies.
    nonces: Nonces,
}

impl MapServer {
    /// The sites of `cfg` (`lisp site …`), with no registrations yet.
    pub fn new(cfg: &Config) -> Self {
        let mut ms = MapServer::default();
        ms.reconfigure(cfg);
        ms
    }

    /// Follows a configuration change: sites and prefixes that remain keep their registrations.
    pub fn reconfigure(&mut self, cfg: &Config) {
        let mut old: BTreeMap<String, Site> =
            self.sites.drain(..).map(|s| (s.name.clone(), s)).collect();
        for (name, site) in &cfg.lisp.site {
            let mut registered = old.remove(name).map(|s| s.registered).unwrap_or_default();
            registered.retain(|p, _| allowed(&site.eid_prefix, *p));
            self.sites.push(Site {
                name: name.clone(),
                key: site
                    .authentication_key
                    .as_ref()
                    .and_then(|k| k.secret().cloned()),
                eids: site.eid_prefix.clone(),
                registered,
            });
        }
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
        }
        result
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
        let site = &mut self.sites[index];
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
        let register = MapRegister::parse_verified(bytes, &key).map_err(|_| refused())?;
        // Records each losing ETR must hear about, one Map-Notify per ETR address.
        let mut moved: BTreeMap<IpAddr, Vec<EidRecord>> = BTreeMap::new();
        for record in &register.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            // Only a host that roams (a more-specific admitted by accept-more-specifics) moves; a
            // configured prefix registered by several ETRs is a multihomed site and is merged.
            let roaming_host = is_host(prefix) && !site.eids.iter().any(|e| e.prefix == prefix);
            let entry = site.registered.entry(prefix).or_default();
            // The same ETR re-registering from another source port (UDP registers may use a
            // random one) replaces its registration instead of standing beside it as a second
            // registrar, which would read as a move to itself.
            let mut first_ms: Option<u64> = None;
            let before = entry.len();
            entry.retain(|addr, r| {
                let same_etr = addr.ip() == from.ip();
                if same_etr {
                    first_ms = Some(first_ms.map_or(r.first_ms, |f| f.min(r.first_ms)));
                }
                !same_etr
            });
            let had_one = entry.len() < before;
            if record.ttl == 0 {
                // TTL 0: the ETR withdraws (its dynamic EID went inactive), protocols.md §3.6.
                if had_one {
                    self.counters.withdrawals += 1;
                }
                if entry.is_empty() {
                    site.registered.remove(&prefix);
                }
                continue;
            }
            let locators: Vec<Locator> = record.locators.iter().map(|l| l.to_hal()).collect();
            if roaming_host {
                let rlocs = rloc_set(&locators);
                let before = entry.len();
                entry.retain(|addr, r| {
                    let same_place = rloc_set(&r.locators) == rlocs;
                    if !same_place {
                        let records = moved.entry(addr.ip()).or_default();
                        if !records.contains(record) {
                            records.push(record.clone());
                        }
                    }
                    same_place
                });
                self.counters.moves += (before - entry.len()) as u64;
            }
            entry.insert(
                from,
                Registration {
                    registrar: from,
                    locators,
                    first_ms: first_ms.unwrap_or(now_ms),
                    last_ms: now_ms,
                    proxy_reply: register.proxy_reply,
                    reliable,
                },
            );
        }
        // The losing ETR learns the new locator set and puts the host in its away table; the
        // notify is signed with the site key, which that ETR shares (it registered the prefix).
        let moved = moved
            .into_iter()
            .map(|(ip, records)| {
                let notify = MapNotify {
                    ack: false,
                    nonce: self.nonces.next(),
                    auth: Authentication::none(),
                    records,
                    xtr: None,
                };
                notify.to_signed_vec(&key).map(|bytes| (ip, bytes))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Refusal::Malformed)?;
        let notify = if register.want_map_notify {
            Some(
                MapNotify::acknowledging(&register)
                    .to_signed_vec(&key)
                    .map_err(Refusal::Malformed)?,
            )
        } else {
            None
        };
        Ok(Accepted {
            site: site.name.clone(),
            prefixes,
            notify,
            proxy_reply: register.proxy_reply,
            moved,
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
    /// prefixes that no ETR registers any more.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Prefix> {
        let mut gone = Vec::new();
        for site in &mut self.sites {
            for (prefix, regs) in site.registered.iter_mut() {
                let before = regs.len();
                regs.retain(|_, r| now_ms.saturating_sub(r.last_ms) < REGISTRATION_LIFETIME_MS);
                self.counters.expired += (before - regs.len()) as u64;
                if regs.is_empty() {
                    gone.push(*prefix);
                }
            }
            site.registered.retain(|_, regs| !regs.is_empty());
        }
        gone
    }

    /// The longest registered prefix for `eid`, else what the site configuration says.
    pub fn lookup(&self, eid: IpAddr) -> Lookup<'_> {
        let best = self
            .sites
            .iter()
            .flat_map(|s| s.registered.iter())
            .filter(|(p, _)| p.contains(eid))
            .max_by_key(|(p, _)| p.len());
        if let Some((p, regs)) = best {
            return Lookup::Registered(*p, regs.values().collect());
        }
        match self
            .sites
            .iter()
            .flat_map(|s| &s.eids)
            .filter(|e| e.prefix.contains(eid))
            .max_by_key(|e| e.prefix.len())
        {
            Some(e) => Lookup::SiteWithoutEtr(e.prefix),
            None => Lookup::NotEid,
        }
    }

    /// Counts a Map-Notify-Ack (type 5) an ETR sent for an unsolicited Map-Notify. Nothing is
    /// retransmitted yet, so there is nothing to match it against.
    pub fn notify_ack(&mut self, bytes: &[u8]) {
        match MapNotify::parse(bytes) {
            Ok(m) if m.ack => self.counters.notify_acks += 1,
            _ => self.counters.notify_acks_malformed += 1,
        }
    }

    /// Every configured prefix (registered or not) and every registered more-specific, per site.
    pub fn rows(&self, now_ms: u64, instance_id: u32) -> Vec<SiteRow> {
        let mut rows = Vec::new();
        for site in &self.sites {
            let mut prefixes: Vec<Prefix> = site.eids.iter().map(|e| e.prefix).collect();
            prefixes.extend(site.registered.keys().copied());
            prefixes.sort();
            prefixes.dedup();
            for prefix in prefixes {
                let last = site
                    .registered
                    .get(&prefix)
                    .and_then(|regs| regs.values().max_by_key(|r| r.last_ms));
                rows.push(SiteRow {
                    site: site.name.clone(),
                    prefix,
                    registered: last.is_some(),
                    reliable: last.is_some_and(|r| r.reliable),
                    last_register_age_ms: last.map(|r| now_ms.saturating_sub(r.last_ms)),
                    who: last.map(|r| r.registrar),
                    instance_id,
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

    #[test]
    fn a_host_moving_to_another_etr_notifies_the_old_one() {
        let mut m = ms();
        let first = m
            .register(
                &reg(&["172.16.1.10/32"], "10.1.1.1", 1440, false),
                at("10.1.1.1"),
                false,
                0,
            )
            .unwrap();
        assert!(first.moved.is_empty());
        let moved = m
            .register(
                &reg(&["172.16.1.10/32"], "10.3.3.3", 1440, false),
                at("10.3.3.3"),
                false,
                1000,
            )
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
        m.register(
            &reg(&["10.10.10.0/24"], "10.1.1.1", 1440, false),
            at("10.1.1.1"),
            false,
            0,
        )
        .unwrap();
        let second = m
            .register(
                &reg(&["10.10.10.0/24"], "10.1.1.2", 1440, false),
                at("10.1.1.2"),
                false,
                0,
            )
            .unwrap();
        assert!(second.moved.is_empty());
        assert!(
            matches!(m.lookup(ip("10.10.10.1")), Lookup::Registered(_, regs) if regs.len() == 2)
        );
        // Two ETRs of one site registering a host with the same locator set: no move either.
        m.register(
            &reg(&["172.16.1.10/32"], "10.1.1.1", 1440, false),
            at("10.1.1.1"),
            false,
            0,
        )
        .unwrap();
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
        m.register(
            &reg(&["172.16.1.10/32"], "10.1.1.1", 1440, false),
            at("10.1.1.1"),
            false,
            0,
        )
        .unwrap();
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
        m.notify_ack(&MapNotify::ack_of(&notify).to_signed_vec(&cisco()).unwrap());
        m.notify_ack(&notify.to_signed_vec(&cisco()).unwrap());
        m.notify_ack(b"\x50");
        assert_eq!(
            (m.counters.notify_acks, m.counters.notify_acks_malformed),
            (1, 2)
        );
    }
}
