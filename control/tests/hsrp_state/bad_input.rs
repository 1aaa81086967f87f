//! Authentication and bad input: wrong text or MD5 authentication, malformed frames, frames
//! of other groups, versions and VLANs.

use super::*;

#[test]
fn wrong_text_authentication_is_ignored_and_counted() {
    let mut lan = Lan::new();
    let mut c1 = cfg(1, 2, 110);
    c1.auth = GroupAuth::Text(b"secret".to_vec());
    lan.add("R1", c1);
    lan.add("R2", cfg(1, 3, 100));
    lan.run_until(60_000);
    // Neither hears the other: both Active (and both count the other's hellos).
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Active);
    let s1 = lan.routers[0].group.status();
    let s2 = lan.routers[1].group.status();
    assert!(s1.auth_failures > 10, "{}", s1.auth_failures);
    assert!(s2.auth_failures > 10, "{}", s2.auth_failures);
    assert_eq!((s1.malformed, s2.malformed), (0, 0));
    assert_eq!(s1.standby, None);
    assert_eq!(s1.auth, AuthSummary::Text { default: false });
    assert_eq!(s2.auth, AuthSummary::Text { default: true });
    // Debug output never shows the key.
    let dbg = format!("{:?}", lan.routers[0].group);
    assert!(
        !dbg.contains("secret") && !dbg.contains("115, 101, 99"),
        "{dbg}"
    );
}

#[test]
fn md5_authentication_converges_and_a_wrong_key_is_ignored_and_counted() {
    let mut lan = Lan::new();
    for (name, last, prio) in [("R1", 2, 110), ("R2", 3, 100)] {
        let mut c = cfg(2, last, prio);
        c.auth = GroupAuth::Md5(b"k3y-string".to_vec());
        lan.add(name, c);
    }
    let mut c3 = cfg(2, 4, 200);
    c3.auth = GroupAuth::Md5(b"wrong".to_vec());
    lan.add("R3", c3);
    lan.run_until(90_000);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.state_of(2), State::Active, "R3 hears nobody");
    for i in 0..2 {
        let s = lan.routers[i].group.status();
        assert!(s.auth_failures > 10);
        assert_eq!(s.active, Some(ip(2)), "R3's hellos never counted as Active");
        assert_eq!(s.auth, AuthSummary::Md5);
    }
    // The v1 MD5 path too.
    let mut lan = Lan::new();
    for (name, last, prio) in [("R1", 2, 110), ("R2", 3, 100)] {
        let mut c = cfg(1, last, prio);
        c.auth = GroupAuth::Md5(b"k3y".to_vec());
        lan.add(name, c);
    }
    lan.run_until(60_000);
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    assert_eq!(lan.routers[0].group.status().auth_failures, 0);
    let dbg = format!("{:?}", lan.routers[0].group);
    assert!(!dbg.contains("k3y"), "{dbg}");
}

#[test]
fn malformed_frames_are_counted_and_change_nothing() {
    let mut lan = converged_pair(1, 110, 100);
    let (_, hello) = lan.routers[0].sent.last().unwrap().clone();
    let g = &mut lan.routers[1].group;
    let before = g.status();
    let deadline = g.next_deadline();
    let mut bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 3],
        hello[..hello.len() - 1].to_vec(),
        hello[..30].to_vec(),
    ];
    // Corrupt UDP checksum, IPv4 checksum, HSRP state code, and the version octet.
    for (at, xor) in [(hello.len() - 1, 0x01), (24, 0x10), (44, 0x40), (42, 0x07)] {
        let mut f = hello.clone();
        f[at] ^= xor;
        bad.push(f);
    }
    // Every file of the fuzz corpus that is not a well-formed frame of another group (one is
    // the reference's worked v1 hello for group 10, which this group would rightly act on).
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/hsrp");
    let mut files = 0;
    for e in std::fs::read_dir(corpus).unwrap().flatten() {
        if !e.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        let ours = matches!(parse_hsrp_frame(&bytes), Ok(f)
            if matches!(f.packet, HsrpPacket::V1(r) if r.group == 10));
        if !ours {
            bad.push(bytes);
            files += 1;
        }
    }
    assert!(files > 0, "the fuzz corpus is there");
    let mut malformed = 0;
    for f in &bad {
        let out = g.receive(f, 60_500);
        assert!(out.is_empty());
        if parse_hsrp_frame(f).is_err() {
            malformed += 1;
        }
    }
    assert!(malformed >= 8);
    let after = g.status();
    assert_eq!(after.malformed, before.malformed + malformed);
    assert_eq!(stable(&after), stable(&before));
    assert_eq!(g.next_deadline(), deadline, "no timer moved");
}

#[test]
fn other_groups_versions_and_vlans_are_ignored_silently() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    let base = common::hsrp_v1(
        HsrpOpCode::Hello,
        State::Active,
        255,
        11,
        HsrpAuth::Text(AuthText::cisco()),
        VIP,
    );
    let other_group =
        build_hsrp_frame(&HsrpPacket::V1(base), iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&other_group, 100).is_empty());
    // A v2 hello for group 10 reaches a v1 group 10: ignored.
    let v2 = HsrpPacket::V2(HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: HsrpOpCode::Hello,
            state: State::Active,
            group: 10,
            identifier: iface_mac(9),
            priority: 255,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: IpAddr::V4(VIP),
        },
        interface_state: None,
        auth: HsrpAuth::Text(AuthText::cisco()),
    });
    let v2 = build_hsrp_frame(&v2, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&v2, 200).is_empty());
    // Right group, but tagged for VLAN 20.
    let mut ours = base;
    ours.group = 10;
    let f = build_hsrp_frame(&HsrpPacket::V1(ours), iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    let mut tagged = f[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 20]);
    tagged.extend_from_slice(&f[12..]);
    assert!(g.receive(&tagged, 300).is_empty());
    let s = g.status();
    assert_eq!((s.active, s.auth_failures, s.malformed), (None, 0, 0));
    // Tagged for VLAN 10 it counts: a higher-priority Active is learnt.
    tagged[15] = 10;
    let _ = g.receive(&tagged, 400);
    assert_eq!(g.status().active, Some(ip(9)));
    assert_eq!(g.state(), State::Listen);
}
