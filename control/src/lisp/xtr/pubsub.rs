//! Publish/subscribe on the ITR (RFC 9437; `ip lisp itr subscribe`, off by default): the
//! ITR's Map-Requests carry its xTR-ID (I bit) and ask to be notified (N bit); the Map-Server
//! then sends a Map-Notify with the xTR-ID whenever the mapping changes, which the ITR applies
//! to its map-cache at once (and acknowledges: `map_notify` acks every verified Map-Notify). So
//! a remote ITR follows a move before its next packet, without waiting for an SMR.
//!
//! The notifications are verified with the key of the map-server they come from (the one this
//! xTR registers with); only prefixes the ITR caches (or more-specifics inside them) are
//! applied, so a notification cannot plant unrelated mappings.

use std::net::IpAddr;

use roamer_hal::Prefix;

use super::{CacheSource, Output, Xtr, host_len};
use crate::config::Config;
use crate::wire::lisp::{MapNotify, XtrSiteId};

/// Which families subscribe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subscriber {
    v4: bool,
    v6: bool,
}

impl Subscriber {
    pub fn configure(&mut self, cfg: &Config) {
        self.v4 = cfg.features.lisp && cfg.lisp.ipv4.itr && cfg.lisp.ipv4.itr_subscribe;
        self.v6 = cfg.features.lisp && cfg.lisp.ipv6.itr && cfg.lisp.ipv6.itr_subscribe;
    }
}

impl Xtr {
    /// Our xTR-ID: our first RLOC as 16 octets (IPv4-mapped for IPv4), stable across restarts
    /// and unique wherever RLOCs are; Site-ID 0.
    pub fn xtr_id(&self) -> Option<XtrSiteId> {
        let rloc = self.rlocs.first()?;
        let xtr_id = match rloc {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        Some(XtrSiteId { xtr_id, site_id: 0 })
    }

    /// The subscription a Map-Request for `prefix` carries (None when not subscribing).
    pub(super) fn subscription_for(&self, prefix: Prefix) -> Option<XtrSiteId> {
        let on = if prefix.addr().is_ipv4() {
            self.pubsub.v4
        } else {
            self.pubsub.v6
        };
        on.then(|| self.xtr_id()).flatten()
    }

    /// A verified Map-Notify from map-server `from`: when it carries our xTR-ID it is a
    /// publication, applied to the map-cache (TTL 0: the entry goes, the next packet asks).
    pub(super) fn pubsub_apply(
        &mut self,
        notify: &MapNotify,
        from: IpAddr,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if notify.xtr.is_none() || notify.xtr != self.xtr_id() {
            return;
        }
        self.counters.publications_received += 1;
        for record in &notify.records {
            let Some(prefix) = record.prefix.prefix() else {
                continue;
            };
            // Only what we cache: the prefix itself or a more-specific inside a cached entry.
            let followed =
                self.cache.contains_key(&prefix) || self.cache.keys().any(|c| c.covers(&prefix));
            if !followed
                || self.configured.contains(&prefix)
                || self.dynamic.contains_key(&prefix.addr()) && prefix.len() == host_len(&prefix)
                || self.away.contains_key(&prefix)
            {
                self.counters.publications_ignored += 1;
                continue;
            }
            self.apply_record(prefix, record, from, CacheSource::PubSub, now_ms, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};
    use crate::wire::lisp::auth::{AuthKey, Authentication, KeyId};
    use crate::wire::lisp::{
        Ecm, EidPrefix, EidRecord, LispMessage, LocatorRecord, MapReply, parse_message,
    };
    use roamer_hal::TableEntry;
    use roamer_hal::TableOp;
    use std::net::SocketAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms() -> SocketAddr {
        SocketAddr::new(ip("192.0.2.100"), 4342)
    }

    fn key() -> AuthKey {
        AuthKey::new(KeyId::HmacSha1, b"roamer-key").unwrap()
    }

    fn cfg(extra: &str) -> Config {
        let text = format!(
            "feature lisp\nip lisp itr-etr\n\
             ip lisp itr map-resolver 192.0.2.100\n\
             ip lisp etr map-server 192.0.2.100 key roamer-key\n\
             ip lisp database-mapping 10.3.0.0/24 192.0.2.3 priority 1 weight 100\n{extra}"
        );
        config::parse(&text, Syntax::Cli).unwrap().0
    }

    fn record(prefix: &str, rloc: &str, ttl: u32) -> EidRecord {
        EidRecord::authoritative(
            EidPrefix::from_prefix(prefix.parse().unwrap()),
            ttl,
            vec![LocatorRecord::local(ip(rloc), 1, 100)],
        )
    }

    /// The ITR asks for 10.9.0.5 and caches it at 192.0.2.1; returns its request.
    fn resolved(x: &mut Xtr) -> crate::wire::lisp::MapRequest {
        let mut out = Vec::new();
        x.map_cache_miss(ip("10.9.0.5"), ip("10.3.0.9"), 0, &mut out);
        let req = out
            .iter()
            .find_map(|o| match o {
                Output::Send { payload, .. } => match *Ecm::parse(payload).ok()?.message {
                    LispMessage::MapRequest(r) => Some(r),
                    _ => None,
                },
                _ => None,
            })
            .unwrap();
        let reply = MapReply {
            probe: false,
            echo_nonce_capable: false,
            lisp_sec: false,
            nonce: req.nonce,
            records: vec![record("10.9.0.5/32", "192.0.2.1", 1440)],
        };
        x.receive(
            &reply.to_vec().unwrap(),
            SocketAddr::new(ip("192.0.2.1"), 4342),
            0,
            &mut out,
        );
        req
    }

    fn publication(xtr: Option<XtrSiteId>, records: Vec<EidRecord>) -> Vec<u8> {
        MapNotify {
            ack: false,
            nonce: 0x55,
            auth: Authentication::none(),
            records,
            xtr,
        }
        .to_signed_vec(&key())
        .unwrap()
    }

    #[test]
    fn requests_subscribe_only_when_configured() {
        let mut plain = Xtr::new(&cfg(""), 0);
        assert_eq!(resolved(&mut plain).subscribe, None);
        let mut x = Xtr::new(&cfg("ip lisp itr subscribe\n"), 0);
        let req = resolved(&mut x);
        let id = req.subscribe.expect("subscribing");
        let mapped: std::net::Ipv6Addr = "::ffff:192.0.2.3".parse().unwrap();
        assert_eq!(id.xtr_id, mapped.octets());
        assert_eq!(Some(id), x.xtr_id());
    }

    #[test]
    fn a_publication_moves_the_cached_entry_at_once_and_is_acknowledged() {
        let mut x = Xtr::new(&cfg("ip lisp itr subscribe\n"), 0);
        resolved(&mut x);
        let mut out = Vec::new();
        // Another xTR-ID's publication: verified and acked, but not applied.
        let other = XtrSiteId {
            xtr_id: [9; 16],
            site_id: 0,
        };
        x.receive(
            &publication(Some(other), vec![record("10.9.0.5/32", "192.0.2.2", 1440)]),
            ms(),
            10,
            &mut out,
        );
        assert!(!out.iter().any(|o| matches!(o, Output::Table(_))));
        out.clear();
        x.receive(
            &publication(x.xtr_id(), vec![record("10.9.0.5/32", "192.0.2.2", 1440)]),
            ms(),
            20,
            &mut out,
        );
        let tables: Vec<&TableOp> = out
            .iter()
            .filter_map(|o| match o {
                Output::Table(op) => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(tables.len(), 1, "{out:?}");
        let TableEntry::LispMapCache { locators, .. } = &tables[0].entry else {
            panic!("{tables:?}")
        };
        assert_eq!(locators[0].rloc, ip("192.0.2.2"));
        let entry = x.map_cache().next().unwrap();
        assert_eq!(entry.source, CacheSource::PubSub);
        assert_eq!(entry.map_source, ip("192.0.2.100"));
        // The ack: a Map-Notify-Ack with the nonce, signed, to the map-server.
        let ack = out
            .iter()
            .find_map(|o| match o {
                Output::Send { to, payload, .. } if *to == ms() => Some(payload.clone()),
                _ => None,
            })
            .expect("acknowledged");
        let ack = MapNotify::parse_verified(&ack, &key()).unwrap();
        assert!(ack.ack && ack.nonce == 0x55);
        assert_eq!(x.counters.publications_received, 1);
        // A prefix we do not cache is not planted; TTL 0 removes the entry.
        out.clear();
        x.receive(
            &publication(x.xtr_id(), vec![record("10.8.0.0/24", "192.0.2.2", 1440)]),
            ms(),
            30,
            &mut out,
        );
        assert_eq!(x.counters.publications_ignored, 1);
        assert_eq!(x.map_cache().count(), 1);
        x.receive(
            &publication(x.xtr_id(), vec![record("10.9.0.5/32", "192.0.2.2", 0)]),
            ms(),
            40,
            &mut out,
        );
        assert_eq!(x.map_cache().count(), 0);
        // A forged one (wrong key) is refused whole.
        let forged = MapNotify {
            ack: false,
            nonce: 1,
            auth: Authentication::none(),
            records: vec![record("10.9.0.5/32", "192.0.2.66", 1440)],
            xtr: x.xtr_id(),
        }
        .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"wrong").unwrap())
        .unwrap();
        let refused = x.counters.map_notifies_refused;
        x.receive(&forged, ms(), 50, &mut out);
        assert_eq!(x.counters.map_notifies_refused, refused + 1);
        assert!(parse_message(&forged).is_ok());
    }
}
