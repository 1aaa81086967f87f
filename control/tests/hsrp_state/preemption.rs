//! Preemption: waiting without it, coups, the preempt delay, priority changes, and the
//! state-change log.

use super::*;

/// R1 (100) Active, R2 (90) Standby; R3 (`p3`, preempt `preempt`) joins at 60 s.
fn late_higher_router(preempt: Option<u32>) -> Lan {
    let mut lan = converged_pair(1, 100, 90);
    let mut c3 = cfg(1, 4, 120);
    c3.preempt = preempt;
    lan.add("R3", c3);
    lan
}

#[test]
fn without_preempt_a_higher_priority_router_waits() {
    let mut lan = late_higher_router(None);
    lan.run_until(180_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Active);
    assert_eq!(
        lan.state_of(2),
        State::Standby,
        "R3 takes the standby role only"
    );
    assert_eq!(lan.state_of(1), State::Listen);
    assert_eq!(lan.routers[0].removes, 0);
}

#[test]
fn preempt_coups_at_the_first_hello_of_the_lower_active() {
    let mut lan = late_higher_router(Some(0));
    lan.run_until(63_100);
    lan.check_ownership();
    assert_eq!(lan.state_of(2), State::Active);
    let took = lan.first_time("R3", State::Active).unwrap();
    assert!(
        took <= 60_000 + 3_000 + LATENCY_MS,
        "at R1's next hello: {took}"
    );
    // R3 sent a coup before its first Active hello; R1 resigned and withdrew.
    let r3: Vec<String> = lan.routers[2]
        .sent
        .iter()
        .map(|(_, f)| describe(f))
        .collect();
    let coup = r3
        .iter()
        .position(|d| d.starts_with("Coup Speak prio 120"))
        .unwrap();
    assert!(r3[coup + 1].starts_with("Hello Active prio 120"));
    assert!(r3[coup + 2].starts_with("garp 10.1.10.1"));
    let r1: Vec<String> = lan.routers[0]
        .sent
        .iter()
        .map(|(_, f)| describe(f))
        .collect();
    assert!(
        r1.iter()
            .any(|d| d.starts_with("Resign Active prio 100 from 10.1.10.2 mac 0000.0c07.ac0a"))
    );
    assert_eq!((lan.routers[0].adds, lan.routers[0].removes), (2, 2));
    lan.run_until(120_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(0), State::Standby);
    assert_eq!(lan.state_of(1), State::Listen);
    golden("preempt_v1.trace", &lan.trace);
}

/// Log lines written on this thread while `f` runs, as the daemon's fmt subscriber would print
/// them. The subscriber is the process-wide default, installed once: a scoped one (and the
/// callsite interest cache it needs rebuilt) raced with the other tests' threads, which could
/// cache "never" for a callsite and lose a line. Lines from other threads are discarded.
fn logged(f: impl FnOnce()) -> String {
    use std::cell::RefCell;
    use std::sync::Once;
    thread_local! {
        static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }
    struct ThreadSink;
    impl std::io::Write for ThreadSink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(buf) = c.borrow_mut().as_mut() {
                    buf.extend_from_slice(b);
                }
            });
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadSink)
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    String::from_utf8(bytes).unwrap()
}

/// Every state change is logged with its cause; losing Active to another router's coup is a
/// WARN naming that router; the last change and its cause show in `show hsrp` and its JSON.
#[test]
fn state_changes_are_logged_with_their_cause_and_shown() {
    let mut lan = None;
    let log = logged(|| {
        let mut l = late_higher_router(Some(0));
        l.run_until(63_100);
        lan = Some(l);
    });
    let lan = lan.unwrap();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{log}"))
            .to_string()
    };
    let takeover = line("Vlan10 Grp 10 state Active -> Speak");
    assert!(takeover.contains("WARN"), "{takeover}");
    assert!(
        takeover.contains("coup from 10.1.10.4, priority 120")
            && takeover.contains("peer=10.1.10.4"),
        "{takeover}"
    );
    let preempt = line("state Speak -> Active (preempted lower-priority Active 10.1.10.2)");
    assert!(
        preempt.contains("INFO") && preempt.contains("notice=true"),
        "{preempt}"
    );
    let expiry = line("Active (no Standby router heard within the hold time)");
    assert!(
        expiry.contains("INFO") && expiry.contains("cause=\"hold-expired\""),
        "{expiry}"
    );
    let changes = log
        .lines()
        .filter(|l| l.contains(" state ") && l.contains(" -> "))
        .count();
    let traced = lan.trace.lines().filter(|l| l.contains(" -> ")).count();
    assert!(
        changes >= traced,
        "every change is logged: {changes} < {traced}\n{log}"
    );

    let r1 = lan.routers[0].group.status_at(62_002 + 1_000);
    let c = r1.last_change.unwrap();
    assert_eq!((c.from, c.to), (State::Active, State::Speak));
    assert!(c.is_takeover());
    let d = show::detail(&[r1]);
    assert!(
        d.text
            .contains("    Last state change Active -> Speak: coup from 10.1.10.4, priority 120\n"),
        "{}",
        d.text
    );
    assert!(
        d.text.contains(
            "  5 state changes, last state change 00:00:01\n    Last state change Active"
        ),
        "{}",
        d.text
    );
    let row = &d.json["TABLE_grp_detail"]["ROW_grp_detail"][0];
    assert_eq!(row["sh_last_state_change_reason"], "coup");
    assert_eq!(row["sh_last_state_change_peer"], "10.1.10.4");
    assert_eq!(row["sh_last_state_change_from"], "Active");
    assert_eq!(row["sh_last_state_change"], "1");
}

#[test]
fn preempt_waits_for_the_delay() {
    let mut lan = late_higher_router(Some(30));
    lan.run_until(60_000 + 3_000 + 30_000 - 1_000);
    assert_ne!(lan.state_of(2), State::Active, "not before the delay");
    lan.run_until(100_000);
    lan.check_ownership();
    assert_eq!(lan.state_of(2), State::Active);
    let took = lan.first_time("R3", State::Active).unwrap();
    // The delay starts at the first hello R3 hears from R1 (within 3 s of joining).
    assert!((90_000..=93_100).contains(&took), "took over at {took}");
}

#[test]
fn lowering_the_active_priority_lets_a_preempting_standby_take_over() {
    let mut lan = Lan::new();
    lan.add("R1", cfg(1, 2, 110));
    let mut c2 = cfg(1, 3, 100);
    c2.preempt = Some(0);
    lan.add("R2", c2);
    lan.run_until(60_000);
    assert_eq!(lan.state_of(0), State::Active);
    lan.reconfigure(0, cfg(1, 2, 90));
    lan.run_until(60_010);
    lan.check_ownership();
    assert_eq!(
        lan.state_of(1),
        State::Active,
        "the new priority is advertised at once"
    );
    lan.run_until(90_000);
    assert_eq!(lan.state_of(0), State::Standby);
}

#[test]
fn a_coup_from_a_higher_priority_router_makes_the_active_resign() {
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    let mut t = 0;
    while g.state() != State::Active {
        t = g.next_deadline();
        let _ = g.tick(t);
    }
    assert!(t <= 20_000);
    // A coup from 10.1.10.9, priority 200, built with the wire code.
    let coup = HsrpPacket::V1(common::hsrp_v1(
        HsrpOpCode::Coup,
        State::Speak,
        200,
        10,
        HsrpAuth::Text(AuthText::cisco()),
        VIP,
    ));
    let frame = build_hsrp_frame(&coup, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    let out = g.receive(&frame, t + 5);
    assert_eq!(g.state(), State::Speak);
    let vmac = default_virtual_mac(1, 10).unwrap();
    let sends: Vec<String> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) => Some(describe(f)),
            Action::Table(_) => None,
        })
        .collect();
    assert_eq!(
        sends,
        vec![
            format!("Resign Active prio 100 from 10.1.10.2 mac {vmac}"),
            format!("Hello Speak prio 100 from 10.1.10.2 mac {}", iface_mac(2)),
        ]
    );
    let removes: Vec<&TableOp> = out
        .iter()
        .filter_map(|a| match a {
            Action::Table(op) => Some(op),
            Action::Send(_) => None,
        })
        .collect();
    assert_eq!(removes.len(), 2);
    assert!(removes.iter().all(|op| op.action == OpAction::Remove));
    assert_eq!(g.status().active, Some(ip(9)));

    // A coup from a lower-priority router is ignored by an Active router.
    let (mut g, _) = Group::new(cfg(1, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let low = HsrpPacket::V1(HsrpV1Repr {
        priority: 50,
        ..match coup {
            HsrpPacket::V1(r) => r,
            _ => unreachable!(),
        }
    });
    let frame = build_hsrp_frame(&low, iface_mac(9), IpAddr::V4(ip(9)), None).unwrap();
    assert!(g.receive(&frame, 30_000).is_empty());
    assert_eq!(g.state(), State::Active);
}

#[test]
fn an_active_router_hearing_a_lower_active_sends_a_coup() {
    // Split brain healed: both Active when the link comes back.
    let (mut g, _) = Group::new(cfg(2, 2, 100), 0);
    while g.state() != State::Active {
        let d = g.next_deadline();
        let _ = g.tick(d);
    }
    let hello = HsrpPacket::V2(HsrpV2Repr {
        group_state: HsrpV2GroupState {
            op_code: HsrpOpCode::Hello,
            state: State::Active,
            group: 10,
            identifier: iface_mac(1),
            priority: 100,
            hellotime_ms: 3000,
            holdtime_ms: 10000,
            virtual_ip: IpAddr::V4(VIP),
        },
        interface_state: None,
        auth: HsrpAuth::Text(AuthText::cisco()),
    });
    let vmac = default_virtual_mac(2, 10).unwrap();
    let frame = build_hsrp_frame(&hello, vmac, IpAddr::V4(ip(1)), None).unwrap();
    let out = g.receive(&frame, 40_000);
    assert_eq!(g.state(), State::Active);
    let [Action::Send(coup)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        describe(coup),
        format!("Coup Active prio 100 from 10.1.10.2 mac {vmac}")
    );
}
