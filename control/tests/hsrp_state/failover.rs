//! Failover: the Standby takes over after the hold time (v1 and v2 timers) or at once on a
//! resign.

use super::*;

#[test]
fn standby_takes_over_after_the_hold_time() {
    let mut lan = converged_pair(1, 110, 100);
    let last_hello = lan.routers[0].sent.last().unwrap().0;
    lan.silence(0);
    lan.run_until(last_hello + 9_000);
    assert_eq!(lan.state_of(1), State::Standby, "not before the hold time");
    lan.run_until(last_hello + 12_000);
    assert_eq!(lan.state_of(1), State::Active);
    let took_over = lan.first_time("R2", State::Active).unwrap();
    // The last hello reached R2 1 ms after it was sent; hold time 10 s from then.
    assert_eq!(took_over, last_hello + LATENCY_MS + 10_000);
    // R2 programmed the vMAC and VIP once, and announced them with a gratuitous ARP.
    let r2 = &lan.routers[1];
    assert_eq!((r2.adds, r2.removes), (2, 0));
    let vmac = default_virtual_mac(1, 10).unwrap();
    assert!(
        r2.sent
            .iter()
            .any(|(t, f)| *t == took_over && *f == gratuitous_arp(vmac, VIP))
    );
    let r1 = &lan.routers[0];
    assert_eq!(
        r1.group.state(),
        State::Active,
        "R1 has not noticed anything"
    );
    golden("failover_v1.trace", &lan.trace);
}

#[test]
fn v2_millisecond_timers_fail_over_within_the_hold_time() {
    let mut lan = Lan::new();
    let mut c1 = cfg(2, 2, 110);
    let mut c2 = cfg(2, 3, 100);
    for c in [&mut c1, &mut c2] {
        c.hello_ms = 250;
        c.hold_ms = 750;
    }
    lan.add("R1", c1);
    lan.add("R2", c2);
    lan.run_until(5_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(lan.state_of(1), State::Standby);
    // Hellos every 250 ms while Active.
    let r1_times: Vec<u64> = lan.routers[0]
        .sent
        .iter()
        .filter(|(t, _)| *t > 3_000)
        .map(|(t, _)| *t)
        .collect();
    assert!(
        r1_times.windows(2).all(|w| w[1] - w[0] == 250),
        "{r1_times:?}"
    );
    // On the wire: v2, hello 250 ms, hold 750 ms, Active = 6, from the vMAC to 224.0.0.102.
    let (_, last) = lan.routers[0].sent.last().unwrap();
    let f = parse_hsrp_frame(last).unwrap();
    let HsrpPacket::V2(r) = &f.packet else {
        panic!("not v2")
    };
    assert_eq!(r.group_state.hellotime_ms, 250);
    assert_eq!(r.group_state.holdtime_ms, 750);
    assert_eq!(r.group_state.identifier, iface_mac(2));
    assert_eq!(f.src_mac, default_virtual_mac(2, 10).unwrap());
    assert_eq!(f.dst_ip, IpAddr::V4(Ipv4Addr::new(224, 0, 0, 102)));
    let payload = f.payload(last);
    assert_eq!(payload[..5], [0x01, 0x28, 0x02, 0x00, 0x06]);

    let last_hello = lan.routers[0].sent.last().unwrap().0;
    lan.silence(0);
    lan.run_until(last_hello + 2_000);
    assert_eq!(lan.state_of(1), State::Active);
    assert_eq!(
        lan.first_time("R2", State::Active).unwrap(),
        last_hello + LATENCY_MS + 750
    );
    lan.check_ownership();
}

#[test]
fn shutdown_resigns_and_the_standby_takes_over_at_once() {
    let mut lan = converged_pair(2, 110, 100);
    lan.shutdown(0);
    let vmac = default_virtual_mac(2, 10).unwrap();
    // The resign is sent from the vMAC, then the entries are withdrawn.
    let (t, resign) = lan.routers[0].sent.last().unwrap();
    assert_eq!(*t, 60_000);
    let f = parse_hsrp_frame(resign).unwrap();
    let HsrpPacket::V2(r) = f.packet else {
        panic!("not v2")
    };
    assert_eq!(r.group_state.op_code, HsrpOpCode::Resign);
    assert_eq!(r.group_state.state, State::Active);
    assert_eq!(f.src_mac, vmac);
    assert_eq!((lan.routers[0].adds, lan.routers[0].removes), (2, 2));
    assert!(lan.routers[0].tables.is_empty());
    assert_eq!(lan.state_of(0), State::Initial);
    assert_eq!(lan.routers[0].group.next_deadline(), u64::MAX);
    lan.run_until(60_000 + LATENCY_MS);
    assert_eq!(lan.state_of(1), State::Active, "resign → Active at once");
    lan.check_ownership();
    // Re-enabled, R1 (higher priority, no preempt) comes back as Standby.
    let out = lan.routers[0].group.enable(lan.now);
    lan.handle(0, out);
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Active);
}
