//! `show hsrp brief` and `show hsrp detail` against golden output.

use super::*;

fn show_groups() -> Vec<GroupStatus> {
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.preempt = Some(0);
    lan.add("R1", c1);
    lan.add("R2", cfg(1, 3, 90));
    let mut v2 = GroupConfig::new(vlan(20), 20, 2, Ipv4Addr::new(10, 1, 20, 2), iface_mac(2));
    v2.virtual_ip = Some(Ipv4Addr::new(10, 1, 20, 1));
    v2.priority = 90;
    v2.virtual_mac = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
    v2.hello_ms = 250;
    v2.hold_ms = 750;
    v2.preempt = Some(300);
    v2.auth = GroupAuth::Md5(b"hidden-key".to_vec());
    let mut peer = GroupConfig::new(vlan(20), 20, 2, Ipv4Addr::new(10, 1, 20, 3), iface_mac(3));
    peer.virtual_ip = v2.virtual_ip;
    peer.virtual_mac = v2.virtual_mac;
    peer.hello_ms = 250;
    peer.hold_ms = 750;
    peer.auth = v2.auth.clone();
    lan.add("R1v20", v2);
    lan.add("R2v20", peer);
    lan.run_until(61_234);
    let mut out = vec![lan.routers[2].group.status(), lan.routers[0].group.status()];
    // A group that has learnt nothing yet.
    let mut learn = GroupConfig::new(vlan(30), 30, 1, Ipv4Addr::new(10, 1, 30, 2), iface_mac(2));
    learn.auth = GroupAuth::None;
    let (g, _) = Group::new(learn, 61_000);
    out.push(g.status_at(61_234));
    out
}

#[test]
fn show_hsrp_brief_golden() {
    let groups = show_groups();
    let b = show::brief(&groups);
    golden("show_hsrp_brief.txt", &b.text);
    let rows = b.json["TABLE_grp_detail"]["ROW_grp_detail"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["sh_if_index"], "Vlan10");
    assert_eq!(rows[0]["sh_group_state"], "Active");
    assert_eq!(rows[0]["sh_standby_router_addr"], "10.1.10.3");
    assert_eq!(rows[1]["sh_group_version"], "v2");
    assert_eq!(rows[2]["sh_vip"], "0.0.0.0");
    // Column layout of the reference template.
    let header = b.text.lines().nth(3).unwrap();
    assert_eq!(
        header,
        " Interface   Grp  Prio P State    Active addr      Standby addr     Group addr"
    );
    let row = b.text.lines().nth(4).unwrap();
    assert_eq!(
        row,
        "  Vlan10     10   110  P Active   local            10.1.10.3        10.1.10.1       (conf)"
    );
}

#[test]
fn show_hsrp_detail_golden() {
    let groups = show_groups();
    let d = show::detail(&groups);
    golden("show_hsrp.txt", &d.text);
    assert!(!d.text.contains("hidden-key"));
    assert!(!d.json.to_string().contains("hidden-key"));
    let rows = d.json["TABLE_grp_detail"]["ROW_grp_detail"]
        .as_array()
        .unwrap();
    assert_eq!(rows[0]["sh_authentication_type"], "text");
    assert_eq!(rows[0]["sh_authentication_data"], "cisco");
    assert_eq!(rows[0]["sh_vmac"], "0000.0c07.ac0a");
    assert_eq!(rows[0]["sh_vmac_attr"], "(Default MAC)");
    assert_eq!(rows[1]["sh_authentication_type"], "md5");
    assert_eq!(rows[1]["sh_keystring_attr"], "hidden");
    assert_eq!(rows[1]["sh_cur_hello"], "250");
    assert_eq!(rows[1]["sh_cur_hello_attr"], "msec");
    assert_eq!(rows[1]["sh_ip_redund_name"], "hsrp-Vlan20-20");
    assert_eq!(rows[0]["sh_auth_failures"], "0");
}
