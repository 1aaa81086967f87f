//! One harness for the LISP instances, shared by the `lisp_instances` fuzz target and the test
//! that replays its corpus: an xTR and a Map-Server/Map-Resolver fed arbitrary bytes as every
//! kind of input they take from the network. Nothing may panic and no table may outgrow its
//! limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use roamer_hal::VlanId;

use crate::config::{self, Config, Syntax};
use crate::lisp::map_server::MapServer;
use crate::lisp::xtr::{Limits, Xtr};

const CONFIG: &str = "feature lisp\nfeature interface-vlan\nvlan 10\n\
interface Vlan10\n  ip address 10.9.0.1/24\n  lisp mobility roam\n  lisp extended-subnet-mode\n\
ip lisp itr-etr\nip lisp map-server\nip lisp map-resolver\n\
ip lisp itr map-resolver 192.0.2.100\n\
ip lisp etr map-server 192.0.2.100 key cisco\n\
ip lisp database-mapping 10.1.0.0/24 192.0.2.1 priority 1 weight 100\n\
lisp dynamic-eid roam\n  database-mapping 10.9.0.0/25 192.0.2.1 priority 1 weight 100\n  map-notify-group 239.1.1.1\n\
lisp site s\n  eid-prefix 10.0.0.0/8 accept-more-specifics\n  authentication-key cisco\n\
ip lisp itr subscribe\nlisp loc-reach-algorithm rloc-probing\nroamer lisp rloc-probe interval 1\n";

/// The instances under test, built once per process by the caller.
#[derive(Debug)]
pub struct Harness {
    xtr: Xtr,
    ms: MapServer,
    now_ms: u64,
}

impl Harness {
    pub fn new() -> Option<Harness> {
        let cfg: Config = config::parse(CONFIG, Syntax::Cli).ok()?.0;
        let limits = Limits {
            dynamic_eids: 64,
            map_cache: 64,
            pending_requests: 64,
            away: 64,
            rate_entries: 64,
        };
        Some(Harness {
            xtr: Xtr::new(&cfg, 0).with_limits(limits),
            ms: MapServer::new(&cfg),
            now_ms: 0,
        })
    }

    /// Feeds `data` to every network-facing entry point; the first octet also moves the clock.
    pub fn feed(&mut self, data: &[u8]) {
        self.now_ms += u64::from(data.first().copied().unwrap_or(0)) * 100;
        let now = self.now_ms;
        let ms: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 4342);
        let peer: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 4342);
        let mut out = Vec::new();
        self.xtr.receive(data, ms, now, &mut out);
        self.xtr.receive(data, peer, now, &mut out);
        self.xtr.site_notify(
            data,
            Ipv4Addr::new(239, 1, 1, 1),
            VlanId::new(10).ok(),
            now,
            &mut out,
        );
        self.xtr.tick(now, &mut out);
        let _ = self.ms.register(data, peer, false, now);
        let _ = self.ms.resolve(data, now);
        self.ms.notify_ack(data, peer.ip());
        let _ = self.ms.expire(now);
        assert!(
            self.xtr.map_cache().count() <= 64,
            "map-cache over its limit"
        );
        assert!(
            self.xtr.dynamic_eids().count() <= 64,
            "dynamic EIDs over their limit"
        );
        assert!(self.xtr.away().count() <= 64, "away table over its limit");
    }
}
