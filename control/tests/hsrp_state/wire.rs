//! Bytes on the wire: hellos compared with reference frames and a Cisco capture.

use super::*;

#[test]
fn active_hellos_match_the_reference_frames_byte_for_byte() {
    // protocols.md §7.2 / §7.4 worked hellos (Active, prio 110, group 10, VIP 10.10.10.1,
    // from 10.10.10.2), as full frames (the same bytes as tests/hsrp_wire_vectors.rs).
    let v1_frame = hex(
        "01005e00000200000c07ac0a080045c00030000000000111c4ef0a0a0a02e0000002\
         07c107c1001c7ddc000010030a6e0a00636973636f0000000a0a0a01",
    );
    let v2_frame = hex(
        "01005e00006600000c9ff00a080045c00050000000000111c46b0a0a0a02e0000066\
         07c107c1003cfb9b012802000604000a0011223344550000006e00000bb800002710\
         0a0a0a010000000000000000000000000308636973636f000000",
    );
    for (version, expected) in [(1, v1_frame), (2, v2_frame)] {
        let mut c = GroupConfig::new(
            vlan(10),
            10,
            version,
            Ipv4Addr::new(10, 10, 10, 2),
            Mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        );
        c.virtual_ip = Some(Ipv4Addr::new(10, 10, 10, 1));
        c.priority = 110;
        let (mut g, _) = Group::new(c, 0);
        let sent = drive_alone(&mut g, State::Active);
        assert_eq!(sent[0], expected, "v{version}");
    }
}

#[test]
fn md5_hello_matches_a_cisco_capture() {
    // John the Ripper's first `hsrp` vector (Cisco IOS): v1 Speak, prio 100, group 1,
    // VIP 10.0.0.100, from 10.0.0.20, key id 0, key "password12345".
    let mut c = GroupConfig::new(vlan(1), 1, 1, Ipv4Addr::new(10, 0, 0, 20), iface_mac(20));
    c.virtual_ip = Some(Ipv4Addr::new(10, 0, 0, 100));
    c.auth = GroupAuth::Md5(b"password12345".to_vec());
    let (mut g, _) = Group::new(c, 0);
    let sent = drive_alone(&mut g, State::Speak);
    let f = parse_hsrp_frame(&sent[0]).unwrap();
    let mut expected = hex(
        "000004030a64010000000000000000000a000064041c010000000a000014000000000000000000000000\
         0000000000000000",
    );
    expected[34..50].copy_from_slice(&hex("52e1db09d18d695b8fefb3730ff8d9d6"));
    assert_eq!(f.payload(&sent[0]), expected.as_slice());
}
