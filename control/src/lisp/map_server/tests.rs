use super::*;
use crate::config::{self, Syntax};
use crate::wire::lisp::address::EidPrefix;
use crate::wire::lisp::record::{EidRecord, LocatorRecord};
use roamer_test_support::hex;

fn ms() -> MapServer {
    let (cfg, _) = config::parse(
            "feature lisp\nip lisp map-server\nlisp site A\n eid-prefix 10.10.10.0/24\n eid-prefix 172.16.0.0/16 accept-more-specifics\n authentication-key 0 cisco\nlisp site B\n eid-prefix 10.30.30.0/24\n authentication-key 0 other\n",
            Syntax::Cli,
        )
        .unwrap();
    MapServer::new(&cfg)
}

/// Registers `prefixes` from ETR `etr` (TTL 1440, no proxy) at `now_ms`.
fn put(m: &mut MapServer, prefixes: &[&str], etr: &str, now_ms: u64) -> Result<Accepted, Refusal> {
    m.register(&reg(prefixes, etr, 1440, false), at(etr), false, now_ms)
}

fn register(prefix: &str, key: &[u8], algorithm: KeyId, notify: bool) -> Vec<u8> {
    let p: Prefix = prefix.parse().unwrap();
    let record = EidRecord::authoritative(
        EidPrefix::from_prefix(p),
        1440,
        vec![LocatorRecord::local(
            "203.0.113.11".parse().unwrap(),
            1,
            100,
        )],
    );
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
        .map(|p| {
            EidRecord::authoritative(
                EidPrefix::from_prefix(p.parse().unwrap()),
                ttl,
                vec![LocatorRecord::local(ip(rloc), 1, 100)],
            )
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
    MapRequest::query(
        nonce,
        Address::None,
        vec![ip(itr)],
        vec![EidPrefix::from_prefix(eid.parse().unwrap())],
    )
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
    assert!(matches!(m.lookup(ip("10.10.10.1")), Lookup::Registered(_, regs) if regs.len() == 2));
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
