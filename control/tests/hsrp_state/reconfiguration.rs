//! Learning the virtual IP, the virtual MAC, and reconfiguration while running.

use super::*;

#[test]
fn a_group_without_a_virtual_ip_learns_it_from_the_active_router() {
    let mut lan = converged_pair(1, 110, 100);
    let mut c3 = cfg(1, 4, 90);
    c3.virtual_ip = None;
    let i = lan.add("R3", c3);
    assert_eq!(lan.state_of(i), State::Learn);
    assert_eq!(lan.routers[i].group.next_deadline(), 60_000 + 10_000);
    lan.run_until(64_000);
    assert_eq!(lan.state_of(i), State::Listen);
    let s = lan.routers[i].group.status();
    assert_eq!((s.vip, s.vip_learnt), (Some(VIP), true));
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(i), State::Listen);
}

#[test]
fn configuring_the_virtual_ip_moves_a_learning_group_to_listen() {
    let mut c = cfg(2, 2, 100);
    c.virtual_ip = None;
    let (mut g, _) = Group::new(c.clone(), 0);
    assert_eq!(g.state(), State::Learn);
    // Alone and without a VIP it never speaks.
    for _ in 0..5 {
        let out = g.tick(g.next_deadline().min(50_000));
        assert!(out.is_empty());
    }
    assert_eq!(g.state(), State::Learn);
    c.virtual_ip = Some(VIP);
    let out = g.reconfigure(c.clone(), 50_000);
    assert!(out.is_empty());
    assert_eq!(g.state(), State::Listen);
    let sent = drive_alone(&mut g, State::Active);
    assert_eq!(sent.len(), 2, "hello and gratuitous ARP");
    // Removing the VIP again restarts the group: resign, withdraw, Learn.
    c.virtual_ip = None;
    let out = g.reconfigure(c, 90_000);
    assert_eq!(g.state(), State::Learn);
    let removes = out
        .iter()
        .filter(|a| matches!(a, Action::Table(op) if op.action == OpAction::Remove))
        .count();
    assert_eq!(removes, 2);
    assert!(matches!(&out[0], Action::Send(f) if describe(f).starts_with("Resign Active")));
}

#[test]
fn virtual_mac_defaults_and_override() {
    assert_eq!(
        default_virtual_mac(1, 100).unwrap().to_string(),
        "0000.0c07.ac64"
    );
    assert_eq!(
        default_virtual_mac(2, 100).unwrap().to_string(),
        "0000.0c9f.f064"
    );
    assert_eq!(
        default_virtual_mac(2, 4095).unwrap().to_string(),
        "0000.0c9f.ffff"
    );
    assert_eq!(default_virtual_mac(1, 256), None);
    assert_eq!(default_virtual_mac(2, 4096), None);
    let c = GroupConfig::new(vlan(10), 100, 1, ip(2), iface_mac(2));
    assert_eq!(c.virtual_mac.to_string(), "0000.0c07.ac64");
    let c = GroupConfig::new(vlan(10), 100, 2, ip(2), iface_mac(2));
    assert_eq!(c.virtual_mac.to_string(), "0000.0c9f.f064");

    // mac-address 0000.0e1d.010c (LISP across-subnet mobility): used in tables, hellos, ARP.
    let custom = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    let mut c = cfg(2, 2, 100);
    c.virtual_mac = custom;
    let (mut g, _) = Group::new(c, 0);
    let mut out = Vec::new();
    while g.state() != State::Active {
        let d = g.next_deadline();
        out = g.tick(d);
    }
    let s = g.status();
    assert_eq!((s.vmac, s.vmac_default), (custom, false));
    let adds: Vec<&TableEntry> = out
        .iter()
        .filter_map(|a| match a {
            Action::Table(op) if op.action == OpAction::Add => Some(&op.entry),
            _ => None,
        })
        .collect();
    assert_eq!(adds.len(), 2);
    assert!(
        matches!(adds[0], TableEntry::RouterMac { mac, virtual_mac: true, .. } if *mac == custom)
    );
    assert!(
        matches!(adds[1], TableEntry::InterfaceAddress { virtual_mac: Some(m), prefix_len: 32, .. } if *m == custom)
    );
    assert!(out.contains(&Action::Send(gratuitous_arp(custom, VIP))));
    let hello = out
        .iter()
        .find_map(|a| match a {
            Action::Send(f) if f[12..14] == [0x08, 0x00] => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(parse_hsrp_frame(hello).unwrap().src_mac, custom);
}

#[test]
fn gratuitous_arp_bytes() {
    let vmac = default_virtual_mac(1, 10).unwrap();
    let garp = gratuitous_arp(vmac, Ipv4Addr::new(10, 10, 10, 1));
    let expected: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // dst broadcast
        &[0x00, 0x00, 0x0c, 0x07, 0xac, 0x0a],     // src vMAC
        &[0x08, 0x06],                             // ARP
        &[0x00, 0x01, 0x08, 0x00, 0x06, 0x04],     // Ethernet / IPv4
        &[0x00, 0x02],                             // op 2 (reply)
        &[0x00, 0x00, 0x0c, 0x07, 0xac, 0x0a],     // sender HW = vMAC
        &[10, 10, 10, 1],                          // sender IP = VIP
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],     // target HW broadcast
        &[10, 10, 10, 1],                          // target IP = VIP
    ]
    .concat();
    assert_eq!(garp, expected);
    assert_eq!(garp.len(), 42);
}

#[test]
fn exactly_one_add_on_becoming_active_and_removes_on_leaving() {
    // Preempt back and forth by changing priorities; count every op on R1.
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.preempt = Some(0);
    let mut c2 = cfg(1, 3, 100);
    c2.preempt = Some(0);
    lan.add("R1", c1.clone());
    lan.add("R2", c2);
    lan.run_until(60_000);
    for (k, prio) in [90u8, 110, 90, 110].into_iter().enumerate() {
        c1.priority = prio;
        lan.reconfigure(0, c1.clone());
        lan.run_until(60_000 + (k as u64 + 1) * 20_000);
        lan.check_ownership();
    }
    let r1 = &lan.routers[0];
    assert_eq!(r1.group.state(), State::Active);
    // Active three times (start, and twice regained), left twice.
    assert_eq!((r1.adds, r1.removes), (6, 4));
    let r2 = &lan.routers[1];
    assert_eq!((r2.adds, r2.removes), (4, 4));
    // A gratuitous ARP for every entry into Active.
    let garps = r1
        .sent
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06])
        .count();
    assert_eq!(garps, 3);
}

#[test]
fn changing_the_vip_or_mac_while_active_reprograms_and_announces() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let mut tables = Tables::new();
    let vmac = default_virtual_mac(1, 10).unwrap();
    for e in [
        TableEntry::RouterMac {
            iface: L3Interface::Vlan(vlan(10)),
            mac: vmac,
            virtual_mac: true,
        },
        TableEntry::InterfaceAddress {
            iface: L3Interface::Vlan(vlan(10)),
            addr: IpAddr::V4(VIP),
            prefix_len: 32,
            virtual_mac: Some(vmac),
        },
    ] {
        apply(&mut tables, &TableOp::add(e));
    }
    let new_vip = Ipv4Addr::new(10, 1, 10, 254);
    let custom = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    let mut c = cfg(1, 2, 100);
    c.virtual_ip = Some(new_vip);
    c.virtual_mac = custom;
    let out = g.reconfigure(c, 25_000);
    for a in &out {
        if let Action::Table(op) = a {
            apply(&mut tables, op);
        }
    }
    assert_eq!(g.state(), State::Active);
    assert_eq!(tables.len(), 2);
    assert!(tables.contains_key(&TableKey::RouterMac(L3Interface::Vlan(vlan(10)), custom)));
    assert!(tables.contains_key(&TableKey::InterfaceAddress(
        L3Interface::Vlan(vlan(10)),
        IpAddr::V4(new_vip)
    )));
    assert!(out.contains(&Action::Send(gratuitous_arp(custom, new_vip))));
    // The hello announcing the change comes from the new vMAC.
    assert!(out.iter().any(|a| matches!(a, Action::Send(f)
        if f[12..14] == [0x08, 0x00] && parse_hsrp_frame(f).unwrap().src_mac == custom)));
}

#[test]
fn invalid_configurations_leave_the_group_disabled() {
    let mut c = cfg(1, 2, 100);
    c.group = 300;
    assert!(c.validate().is_err());
    let (g, out) = Group::new(c, 0);
    assert!(out.is_empty());
    assert_eq!(g.state(), State::Disabled);
    assert_eq!(g.next_deadline(), u64::MAX);
    let mut c = cfg(1, 2, 100);
    c.auth = GroupAuth::Text(b"longer-than-8".to_vec());
    assert!(c.validate().is_err());
    let (mut g, _) = Group::new(c.clone(), 0);
    assert_eq!(g.state(), State::Disabled);
    assert!(g.status().disabled_reason.is_some());
    // Fixed by reconfiguration: the group starts.
    c.auth = GroupAuth::default();
    let _ = g.reconfigure(c, 1_000);
    assert_eq!(g.state(), State::Listen);
    assert!(cfg(2, 2, 100).validate().is_ok());
}
