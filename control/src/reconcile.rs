//! From configuration to forwarding tables: the entries a configuration asks for, and the
//! ordered operations that move a backend from one configuration to the next.
//!
//! Protocol instances (HSRP, LISP) add their own entries at run time (virtual MACs while
//! active, map-cache, away entries); this module covers what the configuration alone decides.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use roamer_hal::{
    Iid, L3Interface, Locator, Mac, NextHop, PortId, Prefix, TableEntry, TableKind, TableOp, VlanId,
};

use crate::config::{Config, InterfaceName, PortMode};

/// A front-panel port: its id in the HAL and the host device that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub name: InterfaceName,
    pub id: PortId,
    pub device: String,
    /// The I/O the configuration forces (`… io af-xdp`); `None`: the backend chooses.
    pub io: Option<roamer_hal::PortIoKind>,
}

/// The id of `Ethernet<slot>/<port>`: stable across restarts and configurations.
pub fn port_id(slot: u8, port: u16) -> PortId {
    PortId((u32::from(slot) << 16) | u32::from(port))
}

/// The ports a configuration uses: every Ethernet interface configured or mapped, with its
/// device (`[platform.port]`, else the convention `Ethernet1/N` = `ethN`, `swpN` on the
/// `whitebox` profile).
pub fn port_bindings(cfg: &Config) -> Vec<PortBinding> {
    let mut names: BTreeSet<InterfaceName> = cfg
        .interfaces
        .keys()
        .filter(|n| matches!(n, InterfaceName::Ethernet { .. }))
        .copied()
        .collect();
    names.extend(
        cfg.platform
            .ports
            .keys()
            .filter_map(|k| k.parse::<InterfaceName>().ok()),
    );
    names
        .into_iter()
        .filter_map(|name| {
            let InterfaceName::Ethernet { slot, port } = name else {
                return None;
            };
            let device = cfg
                .platform
                .ports
                .get(&name.to_string())
                .cloned()
                .unwrap_or_else(|| match cfg.platform.profile {
                    // Cumulus/SONiC-style front-panel names.
                    roamer_hal::ProfileKind::Whitebox => format!("swp{port}"),
                    _ => format!("eth{port}"),
                });
            let io = cfg.platform.port_io.get(&name.to_string()).copied();
            Some(PortBinding {
                name,
                id: port_id(slot, port),
                device,
                io,
            })
        })
        .collect()
}

/// The switch's own MAC (NX-OS uses one VDC MAC for every SVI and routed port): locally
/// administered, derived from the host name so it is stable and differs between switches.
pub fn system_mac(hostname: &str) -> Mac {
    // FNV-1a: stable across Rust versions, unlike the standard hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hostname.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    Mac([0x02, b[1], b[2], b[3], b[4], b[5]])
}

/// Every table entry the configuration asks for, sorted by table dependency then key.
pub fn desired(cfg: &Config) -> Vec<TableEntry> {
    let mut out: Vec<TableEntry> = Vec::new();
    let mac = system_mac(&cfg.hostname);
    let vlan1 = VlanId::new(1).unwrap_or_else(|_| unreachable!("VLAN 1 is valid"));
    let mut vlans: BTreeSet<VlanId> = cfg.vlans.iter().map(|v| v.id).collect();
    vlans.insert(vlan1);
    out.extend(vlans.iter().map(|v| TableEntry::Vlan { vlan: *v }));

    let bindings: BTreeMap<InterfaceName, PortId> = port_bindings(cfg)
        .into_iter()
        .map(|b| (b.name, b.id))
        .collect();
    for (name, port) in &bindings {
        let iface = cfg.interfaces.get(name).cloned().unwrap_or_default();
        if iface.shutdown {
            continue;
        }
        if iface.hsrp_hello_filter {
            out.push(TableEntry::HelloFilter { port: *port });
        }
        match iface.switchport.clone().unwrap_or_default() {
            PortMode::Access { vlan } => {
                if vlans.contains(&vlan) {
                    out.push(TableEntry::VlanMember {
                        vlan,
                        port: *port,
                        tagged: false,
                    });
                }
            }
            PortMode::Trunk { allowed, native } => {
                for v in &vlans {
                    if allowed.as_ref().is_some_and(|a| !a.contains(*v)) {
                        continue;
                    }
                    out.push(TableEntry::VlanMember {
                        vlan: *v,
                        port: *port,
                        tagged: *v != native,
                    });
                }
            }
            PortMode::Routed => {
                let l3 = L3Interface::Port(*port);
                out.push(TableEntry::RouterMac {
                    iface: l3,
                    mac,
                    virtual_mac: false,
                });
                layer3(&mut out, l3, &iface);
                dynamic_eid_ranges(&mut out, cfg, l3, &iface);
            }
        }
    }
    for (name, iface) in &cfg.interfaces {
        let InterfaceName::Vlan(v) = name else {
            continue;
        };
        if iface.shutdown || !cfg.features.interface_vlan || !vlans.contains(v) {
            continue;
        }
        let l3 = L3Interface::Vlan(*v);
        out.push(TableEntry::RouterMac {
            iface: l3,
            mac,
            virtual_mac: false,
        });
        layer3(&mut out, l3, iface);
        dynamic_eid_ranges(&mut out, cfg, l3, iface);
    }
    for m in &cfg.static_macs {
        if let Some(port) = bindings.get(&m.interface) {
            out.push(TableEntry::Fdb {
                vlan: m.vlan,
                mac: m.mac,
                port: *port,
                is_static: true,
            });
        }
    }
    for r in &cfg.routes {
        out.push(TableEntry::Route {
            prefix: r.prefix,
            next_hop: NextHop::Gateway {
                via: r.next_hop,
                iface: None,
            },
        });
    }
    if cfg.features.lisp {
        let iid = Iid::new(cfg.instance_id()).unwrap_or_default();
        let (v4, v6) = (&cfg.lisp.ipv4, &cfg.lisp.ipv6);
        for (eid, locators) in locator_sets(v4.database_mapping.iter().chain(&v6.database_mapping))
        {
            out.push(TableEntry::LispDatabase { iid, eid, locators });
        }
        for (eid, locators) in locator_sets(v4.map_cache.iter().chain(&v6.map_cache)) {
            out.push(TableEntry::LispMapCache {
                iid,
                eid,
                locators,
                negative: roamer_hal::NegativeAction::NoAction,
            });
        }
        // An ITR sends what no route covers into LISP (Cisco's static "send-map-request" default).
        for (itr, default) in [
            (
                cfg.lisp.ipv4.itr,
                Prefix::host(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ),
            (
                cfg.lisp.ipv6.itr,
                Prefix::host(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            ),
        ] {
            let default = Prefix::new(default.addr(), 0).unwrap_or(default);
            if itr && !cfg.routes.iter().any(|r| r.prefix == default) {
                out.push(TableEntry::Route {
                    prefix: default,
                    next_hop: NextHop::Lisp,
                });
            }
        }
    }
    out.sort_by_key(|e| (order(e.kind()), e.key()));
    out.dedup_by(|a, b| a.key() == b.key() && a.kind() == b.kind());
    out
}

/// Mapping lines grouped into one locator set per EID prefix, locators in address order
/// (IPv4 first), as RFC 9301 orders them.
fn locator_sets<'a>(
    lines: impl Iterator<Item = &'a crate::config::DatabaseMapping>,
) -> BTreeMap<Prefix, Vec<Locator>> {
    let mut sets: BTreeMap<Prefix, Vec<Locator>> = BTreeMap::new();
    for m in lines {
        sets.entry(m.eid_prefix).or_default().push(Locator {
            rloc: m.locator,
            priority: m.priority,
            weight: m.weight,
        });
    }
    for locators in sets.values_mut() {
        locators.sort_by_key(|l| (l.rloc.is_ipv6(), l.rloc));
    }
    sets
}

fn layer3(out: &mut Vec<TableEntry>, l3: L3Interface, iface: &crate::config::Interface) {
    for a in iface.ipv4.iter().chain(&iface.ipv6) {
        out.push(TableEntry::InterfaceAddress {
            iface: l3,
            addr: a.addr,
            prefix_len: a.len,
            virtual_mac: None,
        });
    }
    if iface.proxy_arp {
        out.push(TableEntry::ProxyArp { iface: l3 });
    }
}

/// `lisp mobility MAP` on an L3 interface (an SVI or a routed port): the map's dynamic-EID
/// ranges on it.
fn dynamic_eid_ranges(
    out: &mut Vec<TableEntry>,
    cfg: &Config,
    l3: L3Interface,
    iface: &crate::config::Interface,
) {
    if let Some(map) = iface.lisp_mobility.as_ref().filter(|_| cfg.features.lisp)
        && let Some(policy) = cfg.lisp.dynamic_eid.get(map)
    {
        let prefixes: BTreeSet<Prefix> = policy
            .database_mapping
            .iter()
            .map(|m| m.eid_prefix)
            .collect();
        for eid in prefixes {
            out.push(TableEntry::DynamicEidRange {
                iface: l3,
                map: map.clone(),
                eid,
                extended_subnet: iface.lisp_extended_subnet_mode,
                notify_group: policy.map_notify_group,
            });
        }
    }
}

/// Tables that others depend on come first when adding (and last when removing).
fn order(kind: TableKind) -> u8 {
    match kind {
        TableKind::Vlan => 0,
        TableKind::VlanMember => 1,
        TableKind::RouterMac => 2,
        TableKind::InterfaceAddress => 3,
        TableKind::ProxyArp | TableKind::HelloFilter => 4,
        TableKind::Fdb | TableKind::Neighbor => 5,
        TableKind::Ipv4Route | TableKind::Ipv6Route => 6,
        TableKind::LispDatabase | TableKind::DynamicEidRange => 7,
        TableKind::LispMapCache | TableKind::AwayEntry => 8,
    }
}

/// The operations that turn `old` into `new`: removals (dependents first), then updates of
/// rows whose value changed, then additions (dependencies first).
pub fn diff(old: &[TableEntry], new: &[TableEntry]) -> Vec<TableOp> {
    let key = |e: &TableEntry| (order(e.kind()), e.kind(), e.key());
    let old_map: BTreeMap<_, &TableEntry> = old.iter().map(|e| (key(e), e)).collect();
    let new_map: BTreeMap<_, &TableEntry> = new.iter().map(|e| (key(e), e)).collect();
    let mut ops = Vec::new();
    for (k, e) in old_map.iter().rev() {
        if !new_map.contains_key(k) {
            ops.push(TableOp::remove((*e).clone()));
        }
    }
    for (k, e) in &new_map {
        match old_map.get(k) {
            Some(o) if o != e => ops.push(TableOp::update((*e).clone())),
            Some(_) => {}
            None => ops.push(TableOp::add((*e).clone())),
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Syntax};

    fn cfg(text: &str) -> Config {
        config::parse(text, Syntax::Cli).unwrap().0
    }

    const TWO_VLANS: &str = "hostname sw1\nfeature interface-vlan\nvlan 10,20\ninterface Ethernet1/1\n switchport\n switchport access vlan 10\ninterface Ethernet1/2\n switchport\n switchport access vlan 20\ninterface Ethernet1/3\n switchport\n switchport mode trunk\n switchport trunk allowed vlan 10,20\ninterface Vlan10\n ip address 10.10.0.1/24\n ipv6 address 2001:db8:a::1/64\n ip proxy-arp\ninterface Vlan20\n ip address 10.20.0.1/24\nip route 0.0.0.0/0 10.10.0.254\n";

    #[test]
    fn a_static_mac_is_a_static_fdb_row_after_its_vlan_member() {
        let text = format!(
            "{TWO_VLANS}mac address-table static 0200.0000.00aa vlan 10 interface Ethernet1/3\n"
        );
        let want = desired(&cfg(&text));
        let row = TableEntry::Fdb {
            vlan: VlanId::new(10).unwrap(),
            mac: Mac([2, 0, 0, 0, 0, 0xaa]),
            port: port_id(1, 3),
            is_static: true,
        };
        let at = want
            .iter()
            .position(|e| *e == row)
            .expect("the static FDB row");
        let member = want
            .iter()
            .position(
                |e| matches!(e, TableEntry::VlanMember { port, .. } if *port == port_id(1, 3)),
            )
            .unwrap();
        assert!(member < at, "the port joins the VLAN before its static MAC");
    }

    #[test]
    fn vlans_ports_svis_and_routes() {
        let want = desired(&cfg(TWO_VLANS));
        let has = |e: &TableEntry| want.contains(e);
        let v10 = VlanId::new(10).unwrap();
        assert!(has(&TableEntry::Vlan { vlan: v10 }));
        assert!(has(&TableEntry::VlanMember {
            vlan: v10,
            port: port_id(1, 1),
            tagged: false
        }));
        assert!(has(&TableEntry::VlanMember {
            vlan: v10,
            port: port_id(1, 3),
            tagged: true
        }));
        assert!(!want.iter().any(|e| matches!(e, TableEntry::VlanMember { port, vlan, .. } if *port == port_id(1, 3) && vlan.get() == 1)), "VLAN 1 not allowed on the trunk");
        let svi = L3Interface::Vlan(v10);
        assert!(has(&TableEntry::RouterMac {
            iface: svi,
            mac: system_mac("sw1"),
            virtual_mac: false
        }));
        assert!(has(&TableEntry::ProxyArp { iface: svi }));
        assert!(
            want.iter()
                .any(|e| matches!(e, TableEntry::InterfaceAddress { addr, .. } if addr.is_ipv6()))
        );
        assert!(want.iter().any(|e| matches!(
            e,
            TableEntry::Route {
                next_hop: NextHop::Gateway { .. },
                ..
            }
        )));
        // Dependencies first.
        let first_member = want
            .iter()
            .position(|e| e.kind() == TableKind::VlanMember)
            .unwrap();
        let last_vlan = want
            .iter()
            .rposition(|e| e.kind() == TableKind::Vlan)
            .unwrap();
        assert!(last_vlan < first_member);
    }

    #[test]
    fn diff_moves_between_configurations() {
        let a = desired(&cfg(TWO_VLANS));
        assert!(diff(&a, &a).is_empty());
        let b = desired(&cfg(&TWO_VLANS
            .replace(" ip proxy-arp\n", "")
            .replace("10.20.0.1/24", "10.20.0.1/16")));
        let ops = diff(&a, &b);
        assert!(
            ops.iter().any(
                |o| o.action == roamer_hal::OpAction::Remove && o.kind() == TableKind::ProxyArp
            )
        );
        // A changed prefix length is the same key with a new value.
        assert!(
            ops.iter().any(|o| o.action == roamer_hal::OpAction::Update
                && o.kind() == TableKind::InterfaceAddress)
        );
        let from_nothing = diff(&[], &a);
        assert_eq!(from_nothing.len(), a.len());
        assert!(
            from_nothing
                .iter()
                .all(|o| o.action == roamer_hal::OpAction::Add)
        );
        // Shutting a port withdraws its memberships.
        let c = desired(&cfg(&TWO_VLANS.replace(
            "interface Ethernet1/1\n",
            "interface Ethernet1/1\n shutdown\n",
        )));
        assert!(
            diff(&a, &c)
                .iter()
                .any(|o| o.action == roamer_hal::OpAction::Remove
                    && o.kind() == TableKind::VlanMember)
        );
    }

    #[test]
    fn lisp_database_dynamic_ranges_and_itr_default() {
        let text = format!(
            "{TWO_VLANS}feature lisp\nip lisp itr-etr\nip lisp database-mapping 172.16.0.0/16 192.0.2.1 priority 1 weight 50\nip lisp database-mapping 172.16.0.0/16 192.0.2.2 priority 1 weight 50\nlisp dynamic-eid R\n database-mapping 172.16.1.0/24 192.0.2.1 priority 1 weight 100\ninterface Vlan20\n lisp mobility R\n"
        );
        let want = desired(&cfg(&text));
        let db: Vec<_> = want
            .iter()
            .filter(|e| e.kind() == TableKind::LispDatabase)
            .collect();
        assert_eq!(db.len(), 1);
        assert!(matches!(db[0], TableEntry::LispDatabase { locators, .. } if locators.len() == 2));
        assert!(want.iter().any(|e| matches!(e, TableEntry::DynamicEidRange { map, extended_subnet: false, .. } if map == "R")));
        // A static default route wins over the LISP default.
        assert!(!want.iter().any(|e| matches!(e, TableEntry::Route { next_hop: NextHop::Lisp, prefix } if prefix.is_ipv4())));
        let no_default = desired(&cfg(&text.replace("ip route 0.0.0.0/0 10.10.0.254\n", "")));
        assert!(no_default.iter().any(|e| matches!(
            e,
            TableEntry::Route {
                next_hop: NextHop::Lisp,
                ..
            }
        )));
    }

    /// `lisp mobility` on a routed port (as on an SVI): its ranges on that port.
    #[test]
    fn dynamic_eid_ranges_on_a_routed_port() {
        let want = desired(&cfg("hostname x\nfeature lisp\nip lisp itr-etr\n\
             lisp dynamic-eid R\n database-mapping 10.9.0.0/25 192.0.2.1 priority 1 weight 100\n\
             interface Ethernet1/1\n no switchport\n ip address 10.9.0.1/24\n lisp mobility R\n lisp extended-subnet-mode\n"));
        assert!(want.iter().any(|e| matches!(
            e,
            TableEntry::DynamicEidRange { iface: L3Interface::Port(p), map, extended_subnet: true, .. }
                if *p == port_id(1, 1) && map == "R"
        )), "{want:?}");
    }

    #[test]
    fn port_map_and_system_mac() {
        let c = cfg(&format!(
            "{TWO_VLANS}roamer platform port Ethernet1/2 veth-b\n"
        ));
        let b = port_bindings(&c);
        assert_eq!(
            b.iter().find(|p| p.id == port_id(1, 1)).unwrap().device,
            "eth1"
        );
        assert_eq!(
            b.iter().find(|p| p.id == port_id(1, 2)).unwrap().device,
            "veth-b"
        );
        assert_ne!(system_mac("a"), system_mac("b"));
        assert!(!system_mac("a").is_multicast());
    }
}
