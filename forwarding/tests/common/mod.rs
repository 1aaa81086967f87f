//! What the pipeline tests share: the ports, MACs and addresses of the test switch, and the
//! switch itself.
#![allow(dead_code)] // each test file uses its own part

use std::net::IpAddr;

use roamer_forwarding::pipeline::{Pipeline, Settings};
use roamer_forwarding::tables::Tables;
use roamer_hal::{
    Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, PortId, TableEntry, TableOp, VlanId,
};

pub const HEADROOM: usize = 128;
pub const A: PortId = PortId(1);
pub const B: PortId = PortId(2);
pub const TRUNK: PortId = PortId(3);
pub const UPLINK: PortId = PortId(4);
pub const ROUTER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
pub const HOST_A: Mac = Mac([0x02, 0, 0, 0, 0, 0x0a]);
pub const HOST_B: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);
pub const PEER_RLOC_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x99]);

pub fn v(id: u16) -> VlanId {
    VlanId::new(id).unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn add(p: &mut Pipeline, e: TableEntry) {
    p.tables.apply(&TableOp::add(e)).unwrap();
}

/// VLAN 10 on port A, VLAN 20 on port B (both also tagged on the trunk when `trunk`); SVIs
/// 10.10.0.1/24 and 10.20.0.1/24; a routed uplink 192.0.2.1/24 towards a peer xTR at 192.0.2.2
/// (resolved).
pub fn test_switch(settings: Settings, trunk: bool) -> Pipeline {
    let mut p = Pipeline::new(Tables::default(), settings);
    for (vlan, port) in [(10, A), (20, B)] {
        add(&mut p, TableEntry::Vlan { vlan: v(vlan) });
        add(
            &mut p,
            TableEntry::VlanMember {
                vlan: v(vlan),
                port,
                tagged: false,
            },
        );
        if trunk {
            add(
                &mut p,
                TableEntry::VlanMember {
                    vlan: v(vlan),
                    port: TRUNK,
                    tagged: true,
                },
            );
        }
        let svi = L3Interface::Vlan(v(vlan));
        add(
            &mut p,
            TableEntry::RouterMac {
                iface: svi,
                mac: ROUTER_MAC,
                virtual_mac: false,
            },
        );
        add(
            &mut p,
            TableEntry::InterfaceAddress {
                iface: svi,
                addr: ip(&format!("10.{vlan}.0.1")),
                prefix_len: 24,
                virtual_mac: None,
            },
        );
    }
    add_uplink(&mut p);
    p
}

/// The routed uplink: our router MAC on UPLINK, 192.0.2.1/24, the peer RLOC 192.0.2.2 at
/// PEER_RLOC_MAC.
pub fn add_uplink(p: &mut Pipeline) {
    let up = L3Interface::Port(UPLINK);
    add(
        p,
        TableEntry::RouterMac {
            iface: up,
            mac: ROUTER_MAC,
            virtual_mac: false,
        },
    );
    add(
        p,
        TableEntry::InterfaceAddress {
            iface: up,
            addr: ip("192.0.2.1"),
            prefix_len: 24,
            virtual_mac: None,
        },
    );
    add(
        p,
        TableEntry::Neighbor {
            iface: up,
            ip: ip("192.0.2.2"),
            mac: PEER_RLOC_MAC,
        },
    );
}

/// IPv6 addresses 2001:db8:{vlan}::1/64 on the SVIs of VLANs 10 and 20.
pub fn add_svi6(p: &mut Pipeline) {
    for vlan in [10u16, 20] {
        add(
            p,
            TableEntry::InterfaceAddress {
                iface: L3Interface::Vlan(v(vlan)),
                addr: ip(&format!("2001:db8:{vlan:x}::1")),
                prefix_len: 64,
                virtual_mac: None,
            },
        );
    }
}

/// `eid` in the local LISP database (an ETR's own site), with no locators of its own.
pub fn local_database(p: &mut Pipeline, eid: &str) {
    add(
        p,
        TableEntry::LispDatabase {
            iid: Iid::default(),
            eid: eid.parse().unwrap(),
            locators: vec![],
        },
    );
}

/// An ITR's tables: 172.16.0.0/16 routed to LISP, 172.16.1.0/24 in the map-cache at the peer
/// xTR 192.0.2.2.
pub fn itr(p: &mut Pipeline) {
    add(
        p,
        TableEntry::Route {
            prefix: "172.16.0.0/16".parse().unwrap(),
            next_hop: NextHop::Lisp,
        },
    );
    add(
        p,
        TableEntry::LispMapCache {
            iid: Iid::default(),
            eid: "172.16.1.0/24".parse().unwrap(),
            locators: vec![Locator {
                rloc: ip("192.0.2.2"),
                priority: 1,
                weight: 100,
            }],
            negative: NegativeAction::NoAction,
        },
    );
}
