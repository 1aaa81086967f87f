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

pub(super) fn sends(out: &[Output]) -> Vec<(SocketAddr, Vec<u8>)> {
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
    EidRecord::authoritative(
        EidPrefix::from_prefix(prefix),
        1440,
        vec![LocatorRecord::local(rloc.parse().unwrap(), 1, 100)],
    )
}

/// A Map-Reply without flags answering `nonce` with `records`, on the wire.
fn map_reply(nonce: u64, records: Vec<EidRecord>) -> Vec<u8> {
    MapReply {
        probe: false,
        echo_nonce_capable: false,
        lisp_sec: false,
        nonce,
        records,
    }
    .to_vec()
    .unwrap()
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

/// `lisp mobility` on a routed port: its `lisp extended-subnet-mode` counts as on an SVI (no
/// host route); without it, the host route points at the port.
#[test]
fn on_a_routed_port_the_interfaces_subnet_mode_applies() {
    let routed = |extended: &str| {
        let text = format!(
            "feature lisp\ninterface Ethernet1/1\n  no switchport\n  ip address 10.9.0.1/24\n  lisp mobility roam\n{extended}\
             ip lisp itr-etr\nip lisp etr map-server {MS} key roamer-key\n\
             lisp dynamic-eid roam\n  database-mapping 10.9.0.0/24 192.0.2.1 priority 1 weight 100\n"
        );
        config::parse(&text, Syntax::Cli).unwrap().0
    };
    let port = L3Interface::Port(crate::reconcile::port_id(1, 1));
    let eid: IpAddr = "10.9.0.7".parse().unwrap();
    let mut out = Vec::new();
    Xtr::new(&routed("  lisp extended-subnet-mode\n"), 0)
        .dynamic_eid_seen(port, eid, "roam", 0, &mut out);
    assert_eq!(tables(&out), vec![]);
    Xtr::new(&routed(""), 0).dynamic_eid_seen(port, eid, "roam", 0, &mut out);
    assert_eq!(
        tables(&out),
        vec![TableOp::add(TableEntry::Route {
            prefix: Prefix::host(eid),
            next_hop: NextHop::Connected(port),
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
    let reply = |nonce| map_reply(nonce, vec![record.clone()]);
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
        0x13, 0x00, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0xac, 0x10, 0x01, 0x0a, 0x00,
        0x01, 0x0a, 0x01, 0x01, 0x01, 0x00, 0x20, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x16,
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
            probe: true,
            smr: true,
            dont_map_reply: true,
            ..MapRequest::query(
                nonce,
                Address::Ip(dest),
                vec!["192.0.2.2".parse().unwrap()],
                vec![EidPrefix::from_prefix("10.1.0.9/32".parse().unwrap())],
            )
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
    let reply = map_reply(req.nonce, vec![record(Prefix::host(dest), "192.0.2.2")]);
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
    let moved = map_reply(invoked.nonce, vec![record(Prefix::host(dest), "192.0.2.6")]);
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
    let mut notify = MapNotify::acknowledging(&MapRegister::new(vec![record(host, "192.0.2.2")]));
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
            message: Box::new(LispMessage::MapRequest(MapRequest::query(
                42,
                Address::None,
                vec!["192.0.2.3".parse().unwrap()],
                vec![EidPrefix::from_prefix(Prefix::host(eid.parse().unwrap()))],
            ))),
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
