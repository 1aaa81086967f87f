//! The xTR over an IPv6 underlay and dual-stack (issue 20): ITR-RLOC lists, the family of the
//! ECM's inner header, the ITR-RLOC a Map-Reply goes to.

use std::net::{IpAddr, SocketAddr};

use super::Xtr;
use super::tests::sends;
use crate::config::{self, Syntax};
use crate::wire::lisp::{Address, Ecm, EidPrefix, LispMessage, MapReply, MapRequest};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An xTR with an IPv4 and an IPv6 RLOC on its uplink, its resolver and map-server at
/// `resolver`.
fn xtr(resolver: &str) -> Xtr {
    let text = format!(
        "feature lisp\n\
         interface Ethernet1/3\n  no switchport\n  ip address 192.0.2.1/24\n  ipv6 address 2001:db8:ff::1/64\n\
         ip lisp itr-etr\nipv6 lisp itr-etr\n\
         ip lisp itr map-resolver {resolver}\n\
         ip lisp etr map-server {resolver} key roamer-key\n\
         ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:1::/48 2001:db8:ff::1 priority 1 weight 100\n"
    );
    Xtr::new(&config::parse(&text, Syntax::Cli).unwrap().0, 0)
}

/// An xTR with only an IPv6 underlay (IPv4 and IPv6 EIDs).
fn v6_only() -> Xtr {
    let text = "feature lisp\n\
         interface Ethernet1/3\n  no switchport\n  ipv6 address 2001:db8:ff::1/64\n\
         ip lisp itr-etr\n\
         ip lisp itr map-resolver 2001:db8:ff::100\n\
         ip lisp etr map-server 2001:db8:ff::100 key roamer-key\n\
         ip lisp database-mapping 10.1.0.0/24 2001:db8:ff::1 priority 1 weight 100\n";
    Xtr::new(&config::parse(text, Syntax::Cli).unwrap().0, 0)
}

/// The Map-Request, and the ECM carrying it, that a map-cache miss for `eid` (from 10.1.0.9)
/// sends: exactly one, to `resolver` port 4342.
fn miss_request(x: &mut Xtr, eid: &str, resolver: &str) -> (Ecm, MapRequest) {
    let mut out = Vec::new();
    x.map_cache_miss(ip(eid), ip("10.1.0.9"), 0, &mut out);
    let s = sends(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(s[0].0, SocketAddr::new(ip(resolver), 4342));
    let ecm = Ecm::parse(&s[0].1).unwrap();
    let LispMessage::MapRequest(req) = (*ecm.message).clone() else {
        panic!("not a Map-Request")
    };
    (ecm, req)
}

#[test]
fn a_dual_stack_itr_lists_its_ipv6_rloc_after_the_resolvers_family() {
    let (_, req) = miss_request(&mut xtr("192.0.2.100"), "10.3.0.10", "192.0.2.100");
    assert_eq!(req.itr_rlocs, vec![ip("192.0.2.1"), ip("2001:db8:ff::1")]);

    let (_, req) = miss_request(
        &mut xtr("2001:db8:ff::100"),
        "10.3.0.10",
        "2001:db8:ff::100",
    );
    assert_eq!(req.itr_rlocs, vec![ip("2001:db8:ff::1"), ip("192.0.2.1")]);
}

#[test]
fn over_an_ipv6_underlay_the_ecm_of_an_ipv4_eid_has_an_ipv4_inner_header() {
    let mut x = v6_only();
    let (ecm, req) = miss_request(&mut x, "10.3.0.10", "2001:db8:ff::100");
    assert_eq!(req.itr_rlocs, vec![ip("2001:db8:ff::1")]);
    assert_eq!(
        (ecm.inner_src, ecm.inner_dst),
        (ip("10.1.0.9"), ip("10.3.0.10"))
    );
    // An IPv6 EID without a source EID: the inner source is our IPv6 RLOC.
    let (ecm, _) = miss_request(&mut x, "2001:db8:3::10", "2001:db8:ff::100");
    assert_eq!(
        (ecm.inner_src, ecm.inner_dst),
        (ip("2001:db8:ff::1"), ip("2001:db8:3::10"))
    );
}

#[test]
fn a_request_listing_only_an_ipv6_itr_rloc_is_answered_there_by_a_dual_stack_etr() {
    let mut x = xtr("192.0.2.100");
    let req = MapRequest::query(
        0x1234,
        Address::None,
        vec![ip("2001:db8:ff::3")],
        vec![EidPrefix::from_prefix("10.1.0.5/32".parse().unwrap())],
    )
    .to_vec()
    .unwrap();
    let mut out = Vec::new();
    x.receive(
        &req,
        SocketAddr::new(ip("2001:db8:ff::100"), 4342),
        0,
        &mut out,
    );
    let s = sends(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(s[0].0.ip(), ip("2001:db8:ff::3"));
    let reply = MapReply::parse(&s[0].1).unwrap();
    assert_eq!(reply.nonce, 0x1234);
    assert_eq!(reply.records.len(), 1);
}
