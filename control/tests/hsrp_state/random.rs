//! Invariants under random input (proptest): any sequence of clock advances, packets from
//! peers and garbage.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Input {
    /// Advance the clock and run due timers.
    Advance(u64),
    /// A packet from peer 10.1.10.(5 + peer).
    Packet {
        peer: u8,
        op: u8,
        state: u8,
        priority: u8,
        good_auth: bool,
    },
    Garbage(Vec<u8>),
    Reconfigure {
        priority: u8,
        preempt: Option<u32>,
        vip_last: u8,
    },
    Shutdown,
    Enable,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (1u64..12_000).prop_map(Input::Advance),
        4 => (0u8..3, 0u8..3, 0u8..7, any::<u8>(), proptest::bool::weighted(0.9)).prop_map(
            |(peer, op, state, priority, good_auth)| Input::Packet {
                peer,
                op,
                state,
                priority,
                good_auth
            }
        ),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Input::Garbage),
        1 => (any::<u8>(), proptest::option::of(0u32..5), 1u8..3).prop_map(
            |(priority, preempt, vip_last)| Input::Reconfigure {
                priority,
                preempt,
                vip_last
            }
        ),
        1 => Just(Input::Shutdown),
        1 => Just(Input::Enable),
    ]
}

fn packet(version: u8, peer: u8, op: u8, state: u8, priority: u8, good: bool) -> Vec<u8> {
    let op = HsrpOpCode::from_code(op).unwrap();
    let state = [
        State::Initial,
        State::Learn,
        State::Listen,
        State::Speak,
        State::Standby,
        State::Active,
        State::Active,
    ][usize::from(state)];
    let auth = HsrpAuth::Text(if good {
        AuthText::cisco()
    } else {
        AuthText::new(b"bad").unwrap()
    });
    let src = ip(5 + peer);
    let p = if version == 1 {
        HsrpPacket::V1(common::hsrp_v1(op, state, priority, 10, auth, VIP))
    } else {
        HsrpPacket::V2(HsrpV2Repr {
            group_state: HsrpV2GroupState {
                op_code: op,
                state,
                group: 10,
                identifier: iface_mac(5 + peer),
                priority: u32::from(priority),
                hellotime_ms: 3000,
                holdtime_ms: 10000,
                virtual_ip: IpAddr::V4(VIP),
            },
            interface_state: None,
            auth,
        })
    };
    build_hsrp_frame(&p, iface_mac(5 + peer), IpAddr::V4(src), None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever arrives: only an Active group owns table entries (added once, removed
    /// once), a gratuitous ARP goes with every entry into Active, hellos come from the vMAC
    /// exactly when they say Active, timers always lie in the future after `tick`, and a
    /// frame that does not parse or does not authenticate changes nothing but a counter.
    #[test]
    fn invariants_hold(version in 1u8..3, inputs in proptest::collection::vec(input(), 1..60)) {
        let mut c = cfg(version, 2, 100);
        let vmac = c.virtual_mac;
        let (mut g, first) = Group::new(c.clone(), 0);
        prop_assert!(first.is_empty());
        let mut now = 0u64;
        let mut tables = Tables::new();
        for inp in inputs {
            let before = g.status_at(now);
            let deadline = g.next_deadline();
            let (out, unchanged) = match inp {
                Input::Advance(d) => {
                    now += d;
                    let out = g.tick(now);
                    let next = g.next_deadline();
                    prop_assert!(next > now, "deadline {next} not after {now}");
                    (out, false)
                }
                Input::Packet { peer, op, state, priority, good_auth } => {
                    let f = packet(version, peer, op, state, priority, good_auth);
                    (g.receive(&f, now), !good_auth)
                }
                Input::Garbage(bytes) => {
                    let bad = parse_hsrp_frame(&bytes).is_err();
                    (g.receive(&bytes, now), bad)
                }
                Input::Reconfigure { priority, preempt, vip_last } => {
                    c.priority = priority;
                    c.preempt = preempt;
                    c.virtual_ip = Some(Ipv4Addr::new(10, 1, 10, vip_last));
                    (g.reconfigure(c.clone(), now), false)
                }
                Input::Shutdown => (g.shutdown(now), false),
                Input::Enable => (g.enable(now), false),
            };
            if unchanged {
                prop_assert!(out.is_empty());
                prop_assert_eq!(stable(&g.status_at(now)), stable(&before));
                prop_assert_eq!(g.next_deadline(), deadline);
            }
            let mut garps = 0;
            for a in &out {
                match a {
                    Action::Table(op) => apply(&mut tables, op),
                    Action::Send(f) if f[12..14] == [0x08, 0x06] => garps += 1,
                    Action::Send(f) => {
                        let p = parse_hsrp_frame(f).unwrap();
                        let said_active = match p.packet {
                            HsrpPacket::V1(r) => r.state == State::Active,
                            HsrpPacket::V2(r) => r.group_state.state == State::Active,
                            _ => false,
                        };
                        prop_assert_eq!(p.src_mac == vmac, said_active);
                    }
                }
            }
            let active = g.state() == State::Active;
            prop_assert_eq!(!tables.is_empty(), active);
            if active {
                prop_assert_eq!(tables.len(), 2);
            }
            let entered = active && before.state != State::Active;
            if entered {
                prop_assert_eq!(garps, 1);
            }
        }
    }
}
