//! Publish/subscribe on the Map-Server (RFC 9437): an ITR that sends its Map-Request with the
//! I and N bits (xTR-ID, Site-ID, notification requested) subscribes to the prefix it is
//! answered with; every later change of that mapping (another ETR registers it, its locators
//! change, it is withdrawn, a more-specific appears inside it) is sent to the subscriber as a
//! Map-Notify carrying its xTR-ID, resent until its Map-Notify-Ack like every unsolicited
//! Map-Notify.
//!
//! Authenticated as registrations are: a subscription is accepted only from an ITR-RLOC that
//! is the address of a live registration of a site, and its Map-Notifies are signed with that
//! site's key (which the subscriber proved to know by registering); the subscriber verifies
//! them with its map-server key and signs its ack with it. Bounded ([`MAX_SUBSCRIPTIONS`]; the
//! one expiring soonest makes room) and expiring ([`SUBSCRIPTION_LIFETIME_MS`] after the last
//! subscribing request; roamer's ITRs ask again when their entry expires, after a day).
//!
//! Deviation: no confirming Map-Notify is sent when a subscription is made; the Map-Reply (from
//! the ETR or the proxying Map-Server) is the first answer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use roamer_hal::Prefix;

use super::{MapServer, NOTIFY_RETRY_MS, Table, Unacked};
use crate::wire::lisp::address::EidPrefix;
use crate::wire::lisp::auth::{AuthKey, Authentication, KeyId};
use crate::wire::lisp::map_notify::MapNotify;
use crate::wire::lisp::map_register::XtrSiteId;
use crate::wire::lisp::map_request::MapRequest;
use crate::wire::lisp::record::{Action, EidRecord};

/// Subscriptions kept at most.
pub const MAX_SUBSCRIPTIONS: usize = 16_384;
/// A subscription lasts a day after the request that made or renewed it (the TTL roamer's
/// Map-Server and ETRs give mappings).
pub const SUBSCRIPTION_LIFETIME_MS: u64 = 1_440 * 60_000;

/// One subscription.
#[derive(Debug, Clone)]
pub(super) struct Subscription {
    /// Where the Map-Notifies go (an ITR-RLOC of the request, its UDP source port).
    itr: SocketAddr,
    /// The site key the subscriber registered with.
    key: AuthKey,
    expires_ms: u64,
}

/// The subscriptions, by (prefix, xTR-ID, Site-ID).
#[derive(Debug, Clone, Default)]
pub(super) struct Subscriptions {
    subs: BTreeMap<(Prefix, [u8; 16], u64), Subscription>,
}

/// A subscription asked for by a Map-Request (taken from the resolver's parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SubscribeRequest {
    pub(super) prefix: Prefix,
    pub(super) xtr: XtrSiteId,
    pub(super) itr: SocketAddr,
}

impl SubscribeRequest {
    pub(super) fn of(request: &MapRequest, prefix: Prefix, itr: SocketAddr) -> Option<Self> {
        request
            .subscribe
            .map(|xtr| SubscribeRequest { prefix, xtr, itr })
    }
}

impl Subscriptions {
    pub(super) fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.subs.len()
    }
}

/// A locator as a subscriber sees it: address, priority, weight.
pub(super) type Published = Vec<(IpAddr, u8, u8)>;

/// A subscriber: xTR-ID, Site-ID, address.
type SubscriberId = ([u8; 16], u64, SocketAddr);

/// The RLOCs registered for `prefix` (every site's, sorted): what a subscriber is told about.
pub(super) fn rlocs_at(table: &Table, prefix: &Prefix) -> Published {
    let Some(id) = table.index.get(prefix) else {
        return Vec::new();
    };
    let mut out: Vec<(IpAddr, u8, u8)> = table
        .regs(id)
        .iter()
        .flat_map(|r| table.sources.get(r.source).locators.iter())
        .map(|l| (l.rloc, l.priority, l.weight))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl MapServer {
    /// A Map-Request asked to subscribe: accepted when its ITR-RLOC is the address of a live
    /// registration (the site key then signs the notifications), else counted and refused.
    pub(super) fn subscribe(&mut self, req: SubscribeRequest, now_ms: u64) {
        // The registrars in use (one entry per ETR and locator set, not per registration;
        // registrations past their lifetime are removed every second by `expire`).
        let site = self
            .table
            .sources
            .list
            .iter()
            .find(|(s, refs)| *refs > 0 && s.registrar.ip() == req.itr.ip())
            .map(|(s, _)| s.site as usize);
        let key = site
            .and_then(|i| self.sites.get(i))
            .and_then(|s| s.key.as_ref())
            .and_then(|k| AuthKey::new(KeyId::HmacSha1, k.expose()).ok());
        let Some(key) = key else {
            self.counters.subscriptions_refused += 1;
            return;
        };
        let subs = &mut self.subscriptions.subs;
        let id = (req.prefix, req.xtr.xtr_id, req.xtr.site_id);
        if !subs.contains_key(&id) && subs.len() >= MAX_SUBSCRIPTIONS {
            subs.retain(|_, s| s.expires_ms > now_ms);
            if subs.len() >= MAX_SUBSCRIPTIONS
                && let Some(soonest) = subs
                    .iter()
                    .min_by_key(|(_, s)| s.expires_ms)
                    .map(|(k, _)| *k)
            {
                subs.remove(&soonest);
                self.counters.subscriptions_dropped += 1;
            }
        }
        subs.insert(
            id,
            Subscription {
                itr: req.itr,
                key,
                expires_ms: now_ms.saturating_add(SUBSCRIPTION_LIFETIME_MS),
            },
        );
        self.counters.subscriptions_accepted += 1;
    }

    /// Live subscriptions (for `show lisp statistics` and tests).
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.len()
    }

    /// The mapping of `changed` prefixes changed: a Map-Notify to every subscriber of an
    /// overlapping prefix, one per subscriber, queued for resending until acknowledged.
    /// Returns (ITR address, Map-Notify) to send now.
    pub(super) fn publish(&mut self, changed: &[Prefix], now_ms: u64) -> Vec<(IpAddr, Vec<u8>)> {
        if changed.is_empty() || self.subscriptions.is_empty() {
            return Vec::new();
        }
        self.subscriptions.subs.retain(|_, s| s.expires_ms > now_ms);
        // Per subscriber (xTR-ID, Site-ID, address): the records it must hear about.
        let mut per: BTreeMap<SubscriberId, (AuthKey, Vec<Prefix>)> = BTreeMap::new();
        for ((sub_prefix, xtr_id, site_id), s) in &self.subscriptions.subs {
            for p in changed {
                if sub_prefix.overlaps(p) {
                    let e = per
                        .entry((*xtr_id, *site_id, s.itr))
                        .or_insert_with(|| (s.key.clone(), Vec::new()));
                    if !e.1.contains(p) {
                        e.1.push(*p);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for ((xtr_id, site_id, itr), (key, prefixes)) in per {
            let records: Vec<EidRecord> = prefixes
                .iter()
                .take(super::MAX_COUNT)
                .map(|p| self.published_record(*p))
                .collect();
            let notify = MapNotify {
                ack: false,
                nonce: self.nonces.fresh(),
                auth: Authentication::none(),
                records,
                xtr: Some(XtrSiteId { xtr_id, site_id }),
            };
            let Ok(bytes) = notify.to_signed_vec(&key) else {
                continue;
            };
            self.counters.pubsub_notifies += 1;
            if self.unacked.len() < super::MAX_UNACKED {
                self.unacked.insert(
                    notify.nonce,
                    Unacked {
                        to: itr.ip(),
                        bytes: bytes.clone(),
                        sent: 1,
                        next_ms: now_ms.saturating_add(NOTIFY_RETRY_MS[0]),
                        prefixes: Vec::new(),
                        key,
                    },
                );
            }
            out.push((itr.ip(), bytes));
        }
        out
    }

    /// What a subscriber is told about `p`: its registered locators (TTL a day), or TTL 0 when
    /// nobody registers it any more (the ITR drops its entry and asks again).
    fn published_record(&self, p: Prefix) -> EidRecord {
        let t = &self.table;
        let regs: Vec<&super::Reg> = t
            .index
            .get(&p)
            .map(|id| t.regs(id).iter().collect())
            .unwrap_or_default();
        if regs.is_empty() {
            return EidRecord {
                ttl: 0,
                prefix: EidPrefix::from_prefix(p),
                action: Action::NoAction,
                authoritative: false,
                map_version: 0,
                locators: Vec::new(),
            };
        }
        super::proxy_record(EidPrefix::from_prefix(p), &regs, &t.sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use crate::lisp::map_server::{Lookup, Resolution};
    use crate::wire::lisp::address::Address;
    use crate::wire::lisp::ecm::Ecm;
    use crate::wire::lisp::map_register::MapRegister;
    use crate::wire::lisp::record::LocatorRecord;
    use crate::wire::lisp::{LispMessage, MessageType};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key() -> AuthKey {
        AuthKey::new(KeyId::HmacSha1, b"cisco").unwrap()
    }

    fn ms() -> MapServer {
        let (cfg, _) = config::parse(
            "feature lisp\nip lisp map-server\nip lisp map-resolver\nlisp site A\n eid-prefix 10.30.0.0/16 accept-more-specifics\n eid-prefix 172.16.0.0/16 accept-more-specifics\n authentication-key 0 cisco\n",
            Syntax::Cli,
        )
        .unwrap();
        MapServer::new(&cfg)
    }

    fn register(
        m: &mut MapServer,
        prefix: &str,
        rloc: &str,
        ttl: u32,
        now: u64,
    ) -> super::super::Accepted {
        let r = MapRegister::new(vec![EidRecord::authoritative(
            EidPrefix::from_prefix(prefix.parse().unwrap()),
            ttl,
            vec![LocatorRecord::local(ip(rloc), 1, 100)],
        )]);
        m.register(
            &r.to_signed_vec(&key()).unwrap(),
            SocketAddr::new(ip(rloc), 4342),
            false,
            now,
        )
        .unwrap()
    }

    const XTR: XtrSiteId = XtrSiteId {
        xtr_id: [7; 16],
        site_id: 0,
    };

    /// ITR `itr` asks for `eid`, subscribing.
    fn ask(m: &mut MapServer, eid: &str, itr: &str, subscribe: bool, now: u64) -> Resolution {
        ask_as(m, eid, itr, subscribe.then_some(XTR), now)
    }

    fn ask_as(
        m: &mut MapServer,
        eid: &str,
        itr: &str,
        subscribe: Option<XtrSiteId>,
        now: u64,
    ) -> Resolution {
        let req = MapRequest {
            subscribe,
            ..MapRequest::query(
                9,
                Address::None,
                vec![ip(itr)],
                vec![EidPrefix::from_prefix(Prefix::host(ip(eid)))],
            )
        };
        let ecm = Ecm {
            ddt: false,
            inner_src: ip(itr),
            inner_dst: ip(eid),
            inner_ttl: 64,
            inner_src_port: 4342,
            inner_dst_port: 4342,
            message: Box::new(LispMessage::MapRequest(req)),
        };
        m.resolve(&ecm.to_vec().unwrap(), now).unwrap()
    }

    #[test]
    fn a_subscriber_hears_of_a_move_signed_and_resent_until_it_acks() {
        let mut m = ms();
        // The ITR's site is registered: it is authenticated.
        register(&mut m, "10.30.3.0/24", "10.3.3.3", 1440, 0);
        register(&mut m, "172.16.1.10/32", "10.1.1.1", 1440, 0);
        // Without the N/I bits: no subscription.
        assert!(matches!(
            ask(&mut m, "172.16.1.10", "10.3.3.3", false, 10),
            Resolution::Forward { .. }
        ));
        assert_eq!(m.subscriptions(), 0);
        assert!(matches!(
            ask(&mut m, "172.16.1.10", "10.3.3.3", true, 20),
            Resolution::Forward { .. }
        ));
        assert_eq!(m.subscriptions(), 1);
        assert_eq!(m.counters.subscriptions_accepted, 1);
        // A refresh by the same ETR changes nothing: nothing published.
        assert!(
            register(&mut m, "172.16.1.10/32", "10.1.1.1", 1440, 1000)
                .published
                .is_empty()
        );
        // The host moves to 10.2.2.2: the subscriber hears of it.
        let moved = register(&mut m, "172.16.1.10/32", "10.2.2.2", 1440, 2000);
        assert_eq!(moved.published.len(), 1, "{moved:?}");
        let (to, bytes) = &moved.published[0];
        assert_eq!(*to, ip("10.3.3.3"));
        let n = MapNotify::parse_verified(bytes, &key()).expect("signed with the site key");
        assert_eq!(n.xtr, Some(XTR));
        assert_eq!(n.records.len(), 1);
        assert_eq!(n.records[0].prefix.prefix(), "172.16.1.10/32".parse().ok());
        assert_eq!(n.records[0].ttl, 1440);
        assert_eq!(n.records[0].locators.len(), 1);
        assert_eq!(n.records[0].locators[0].rloc, ip("10.2.2.2"));
        assert_eq!(m.counters.pubsub_notifies, 1);
        // Resent until the subscriber's ack.
        let again = m.resend_notifies(3000);
        assert!(
            again
                .iter()
                .any(|(t, b)| *t == ip("10.3.3.3") && b == bytes)
        );
        let ack = MapNotify::ack_of(&n).to_signed_vec(&key()).unwrap();
        m.notify_ack(&ack, ip("10.3.3.3"));
        assert!(
            m.resend_notifies(10_000)
                .iter()
                .all(|(t, _)| *t != ip("10.3.3.3"))
        );
        // Withdrawn: TTL 0.
        let gone = register(&mut m, "172.16.1.10/32", "10.2.2.2", 0, 20_000);
        let n = MapNotify::parse_verified(&gone.published[0].1, &key()).unwrap();
        assert_eq!(n.records[0].ttl, 0);
        assert!(n.records[0].locators.is_empty());
        assert!(!matches!(m.lookup(ip("172.16.1.10")), Lookup::Registered(p, _) if p.len() == 32));
    }

    #[test]
    fn a_more_specific_inside_a_subscribed_prefix_is_published_too() {
        let mut m = ms();
        register(&mut m, "10.30.3.0/24", "10.3.3.3", 1440, 0);
        register(&mut m, "172.16.1.0/24", "10.1.1.1", 1440, 0);
        ask(&mut m, "172.16.1.10", "10.3.3.3", true, 10);
        let arrived = register(&mut m, "172.16.1.10/32", "10.2.2.2", 1440, 100);
        assert_eq!(arrived.published.len(), 1);
        let n = MapNotify::parse(&arrived.published[0].1).unwrap();
        assert_eq!(n.records[0].prefix.prefix(), "172.16.1.10/32".parse().ok());
        // Unrelated prefixes are not.
        assert!(
            register(&mut m, "172.16.2.0/24", "10.1.1.1", 1440, 200)
                .published
                .is_empty()
        );
    }

    #[test]
    fn subscriptions_need_a_registered_itr_and_are_bounded_and_expire() {
        let mut m = ms();
        register(&mut m, "172.16.1.10/32", "10.1.1.1", 1440, 0);
        // 10.9.9.9 registers nothing: refused.
        ask(&mut m, "172.16.1.10", "10.9.9.9", true, 10);
        assert_eq!(
            (m.subscriptions(), m.counters.subscriptions_refused),
            (0, 1)
        );
        register(&mut m, "10.30.3.0/24", "10.3.3.3", 1440, 0);
        // Many ITRs behind one registered RLOC (one xTR-ID each).
        for i in 0..(MAX_SUBSCRIPTIONS + 5) {
            let xtr = XtrSiteId {
                xtr_id: [7; 16],
                site_id: i as u64,
            };
            ask_as(&mut m, "172.16.1.10", "10.3.3.3", Some(xtr), 20);
        }
        assert_eq!(m.subscriptions(), MAX_SUBSCRIPTIONS);
        assert_eq!(m.counters.subscriptions_dropped, 5);
        // A day later they are gone (at the next publication).
        let later = 20 + SUBSCRIPTION_LIFETIME_MS;
        register(&mut m, "10.30.3.0/24", "10.3.3.3", 1440, later);
        let moved = register(&mut m, "172.16.1.10/32", "10.2.2.2", 1440, later);
        assert!(moved.published.is_empty());
        assert_eq!(m.subscriptions(), 0);
    }

    #[test]
    fn a_subscribing_request_and_a_publication_round_trip_on_the_wire() {
        let req = MapRequest {
            subscribe: Some(XTR),
            ..MapRequest::query(
                0x0102_0304_0506_0708,
                Address::None,
                vec![ip("192.0.2.3")],
                vec![EidPrefix::from_prefix("10.9.0.5/32".parse().unwrap())],
            )
        };
        let bytes = req.to_vec().unwrap();
        assert_eq!(bytes[0] >> 4, MessageType::MapRequest as u8);
        assert_eq!(bytes[1] & 0x10, 0x10, "I bit");
        // Record: reserved octet with N after the header, nonce, AFI-0 source, ITR-RLOC.
        let rec = 4 + 8 + 2 + 6;
        assert_eq!(bytes[rec], 0x80, "N bit");
        assert_eq!(
            &bytes[bytes.len() - 24..bytes.len() - 8],
            &[7; 16],
            "xTR-ID last"
        );
        assert_eq!(MapRequest::parse(&bytes).unwrap(), req);
        // N without I, or I without N: no subscription.
        let mut no_i = bytes.clone();
        no_i[1] &= !0x10;
        assert_eq!(MapRequest::parse(&no_i).unwrap().subscribe, None);
        let mut no_n = bytes.clone();
        no_n[rec] = 0;
        assert_eq!(MapRequest::parse(&no_n).unwrap().subscribe, None);
        let notify = MapNotify {
            ack: false,
            nonce: 5,
            auth: Authentication::none(),
            records: Vec::new(),
            xtr: Some(XTR),
        };
        let signed = notify.to_signed_vec(&key()).unwrap();
        assert_eq!(
            MapNotify::parse_verified(&signed, &key()).unwrap().xtr,
            Some(XTR)
        );
    }
}
