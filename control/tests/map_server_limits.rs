//! The Map-Server's bounds and recovery behaviour: a site's registration limit, the negative
//! reply's TTL while the table refills after a start, and registrations kept by a live reliable
//! session but aged once it closes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{IpAddr, SocketAddr};

use roamer_control::config::{self, Syntax};
use roamer_control::lisp::map_server::{
    Lookup, MapServer, NEGATIVE_TTL_REFILLING, NEGATIVE_TTL_UNREGISTERED, REGISTRATION_LIFETIME_MS,
    Refusal, Resolution,
};
use roamer_control::wire::lisp::{
    Address, AuthKey, Ecm, EidPrefix, EidRecord, KeyId, LispMessage, LocatorRecord, MapRegister,
    MapReply, MapRequest,
};
use roamer_hal::Prefix;

const ETR: &str = "203.0.113.11";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn register(prefixes: &[String], ttl: u32) -> Vec<u8> {
    let records = prefixes
        .iter()
        .map(|p| {
            EidRecord::authoritative(
                EidPrefix::from_prefix(p.parse().unwrap()),
                ttl,
                vec![LocatorRecord::local(ip(ETR), 1, 100)],
            )
        })
        .collect();
    MapRegister::new(records)
        .to_signed_vec(&AuthKey::new(KeyId::HmacSha1, b"k").unwrap())
        .unwrap()
}

fn map_server(extra: &str) -> MapServer {
    let text = format!(
        "feature lisp\nip lisp map-server\nip lisp map-resolver\nlisp site A\n \
         eid-prefix 10.9.0.0/16 accept-more-specifics\n authentication-key 0 k\n{extra}"
    );
    MapServer::new(&config::parse(&text, Syntax::Cli).unwrap().0)
}

fn from() -> SocketAddr {
    SocketAddr::new(ip(ETR), 4342)
}

fn hosts(range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|i| format!("10.9.{}.{}/32", i / 250, 1 + i % 250))
        .collect()
}

#[test]
fn a_site_is_refused_beyond_its_registration_limit_and_refreshes_still_pass() {
    let mut ms = map_server(" roamer max-registrations 100\n");
    ms.register(&register(&hosts(0..60), 1440), from(), false, 0)
        .unwrap();
    ms.register(&register(&hosts(60..100), 1440), from(), false, 0)
        .unwrap();
    assert_eq!(ms.site_registrations("A"), 100);
    let refused = ms.register(&register(&hosts(100..101), 1440), from(), false, 0);
    assert_eq!(
        refused.unwrap_err(),
        Refusal::SiteLimit {
            site: "A".into(),
            limit: 100
        }
    );
    assert_eq!(ms.counters.refused_site_limit, 1);
    assert_eq!(ms.site_registrations("A"), 100, "nothing half-stored");
    // A refresh of what is registered is not new: accepted at the limit.
    ms.register(&register(&hosts(0..60), 1440), from(), false, 1_000)
        .unwrap();
    // A withdrawal makes room.
    ms.register(&register(&hosts(0..1), 0), from(), false, 2_000)
        .unwrap();
    assert_eq!(ms.site_registrations("A"), 99);
    ms.register(&register(&hosts(100..101), 1440), from(), false, 3_000)
        .unwrap();
    // Expiry gives the room back too.
    ms.expire(3_000 + REGISTRATION_LIFETIME_MS);
    assert_eq!(ms.site_registrations("A"), 0);
}

#[test]
fn without_configuration_a_site_holds_the_default_limit() {
    let text = "feature lisp\nip lisp map-server\nlisp site A\n \
                eid-prefix 10.0.0.0/8 accept-more-specifics\n authentication-key 0 k\n";
    let mut ms = MapServer::new(&config::parse(text, Syntax::Cli).unwrap().0);
    let limit = roamer_control::lisp::map_server::DEFAULT_SITE_REGISTRATION_LIMIT as u32;
    let batch = 250u32;
    let mut n = 0u32;
    let refusal = loop {
        let prefixes: Vec<String> = (n..n + batch)
            .map(|i| format!("10.{}.{}.{}/32", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff))
            .collect();
        match ms.register(&register(&prefixes, 1440), from(), false, 0) {
            Ok(_) => n += batch,
            Err(e) => break e,
        }
        assert!(n <= limit, "accepted past the limit");
    };
    assert!(matches!(refusal, Refusal::SiteLimit { limit: l, .. } if l == limit as usize));
    assert_eq!(n, limit, "filled exactly to the limit");
    assert_eq!(ms.site_registrations("A"), limit as usize);
}

fn negative_ttl(ms: &mut MapServer, eid: &str, now: u64) -> u32 {
    let request = MapRequest::query(
        7,
        Address::None,
        vec![ip("198.51.100.1")],
        vec![EidPrefix::from_prefix(Prefix::host(ip(eid)))],
    );
    let ecm = Ecm {
        ddt: false,
        inner_src: ip("198.51.100.1"),
        inner_dst: ip(eid),
        inner_ttl: 64,
        inner_src_port: 61000,
        inner_dst_port: 4342,
        message: Box::new(LispMessage::MapRequest(request)),
    }
    .to_vec()
    .unwrap();
    match ms.resolve(&ecm, now).unwrap() {
        Resolution::Reply { map_reply, .. } => {
            let reply = MapReply::parse(&map_reply).unwrap();
            assert!(reply.records[0].locators.is_empty(), "negative");
            reply.records[0].ttl
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn while_the_table_refills_after_a_start_unregistered_sites_are_answered_with_ttl_zero() {
    let mut ms = map_server("");
    ms.started(5_000);
    assert_eq!(
        negative_ttl(&mut ms, "10.9.1.1", 6_000),
        NEGATIVE_TTL_REFILLING
    );
    assert_eq!(NEGATIVE_TTL_REFILLING, 0, "do not cache");
    assert_eq!(
        negative_ttl(&mut ms, "10.9.1.1", 5_000 + REGISTRATION_LIFETIME_MS),
        NEGATIVE_TTL_UNREGISTERED,
        "after one lifetime the table is complete: the seed's minute"
    );
}

/// Generalized SMR right after a start (seed 002): a site prefix registered and then withdrawn
/// is known to be down, and gets the seed's minute, refilling or not.
#[test]
fn a_site_prefix_withdrawn_since_the_start_is_answered_for_a_minute() {
    let text = "feature lisp\nip lisp map-server\nip lisp map-resolver\nlisp site A\n \
                eid-prefix 10.9.1.0/24\n eid-prefix 10.9.2.0/24\n authentication-key 0 k\n";
    let mut ms = MapServer::new(&config::parse(text, Syntax::Cli).unwrap().0);
    ms.started(0);
    let site = ["10.9.1.0/24".to_string()];
    ms.register(&register(&site, 1440), from(), false, 1_000)
        .unwrap();
    ms.register(&register(&site, 0), from(), false, 2_000)
        .unwrap();
    assert_eq!(
        negative_ttl(&mut ms, "10.9.1.1", 3_000),
        NEGATIVE_TTL_UNREGISTERED
    );
    // The other prefix has not come back yet since the start: TTL 0.
    assert_eq!(
        negative_ttl(&mut ms, "10.9.2.1", 3_000),
        NEGATIVE_TTL_REFILLING
    );
}

#[test]
fn a_live_reliable_session_keeps_its_registrations_and_a_closed_one_ages_them_from_the_close() {
    let mut ms = map_server("");
    let peer = SocketAddr::new(ip(ETR), 50_000);
    ms.session_up(peer);
    ms.register(&register(&hosts(0..1), 1440), peer, true, 0)
        .unwrap();
    let registered = |ms: &MapServer| matches!(ms.lookup(ip("10.9.0.1")), Lookup::Registered(..));
    // Ten lifetimes with the session up: still there, nothing expired.
    for t in (0..10 * REGISTRATION_LIFETIME_MS).step_by(1_000) {
        ms.expire(t);
    }
    assert!(registered(&ms));
    assert_eq!(ms.counters.expired, 0);
    // Closed: one more lifetime from the close, then gone.
    let closed = 10 * REGISTRATION_LIFETIME_MS;
    ms.session_down(peer, closed);
    ms.expire(closed + REGISTRATION_LIFETIME_MS - 1_000);
    assert!(registered(&ms));
    ms.expire(closed + REGISTRATION_LIFETIME_MS);
    assert!(!registered(&ms));
    assert_eq!(ms.counters.expired, 1);
}
