//! Rendering is canonical: render(parse(render(m))) == render(m) in both syntaxes, and the two
//! syntaxes describe the same model.

#![allow(clippy::unwrap_used)] // generators of known-valid values

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use roamer_control::config::model::*;
use roamer_control::config::secret::{AuthKey, Secret};
use roamer_control::config::{self, Syntax};
use roamer_hal::{Mac, Prefix, VlanId};

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..224, any::<u8>(), any::<u8>(), 1u8..255)
        .prop_map(|(a, b, c, d)| Ipv4Addr::new(a, b, c, d))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4().prop_map(IpAddr::V4),
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, a, b, 0, 0, 0, 1))),
    ]
}

fn prefix() -> impl Strategy<Value = Prefix> {
    prop_oneof![
        (v4(), 8u8..=32).prop_map(|(a, l)| Prefix::new(IpAddr::V4(a), l).unwrap()),
        (any::<u16>(), 32u8..=128).prop_map(|(a, l)| Prefix::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, a, 0, 0, 0, 0, 0)),
            l
        )
        .unwrap()),
    ]
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_-]{0,11}"
}

fn key() -> impl Strategy<Value = AuthKey> {
    prop_oneof![
        "[!-~]{1,20}".prop_map(|s| AuthKey::Known(Secret::new(s.into_bytes()))),
        "[0-9a-f]{16}".prop_map(AuthKey::Type3),
    ]
}

fn known_key() -> impl Strategy<Value = AuthKey> {
    "[!-~]{1,20}".prop_map(|s| AuthKey::Known(Secret::new(s.into_bytes())))
}

fn mapping() -> impl Strategy<Value = DatabaseMapping> {
    (prefix(), ip(), any::<u8>(), 0u8..=100).prop_map(|(eid_prefix, locator, priority, weight)| {
        DatabaseMapping {
            eid_prefix,
            locator,
            priority,
            weight,
        }
    })
}

fn map_server() -> impl Strategy<Value = MapServerRef> {
    (ip(), proptest::option::of(key()), any::<bool>()).prop_map(|(address, key, proxy_reply)| {
        MapServerRef {
            address,
            // A map-server line without key and without proxy-reply does not exist in the CLI.
            proxy_reply: proxy_reply || key.is_none(),
            key,
        }
    })
}

fn hsrp_group() -> impl Strategy<Value = HsrpGroup> {
    (
        0u16..=255,
        proptest::option::of(v4()),
        proptest::option::of(any::<[u8; 6]>().prop_map(Mac)),
        proptest::option::of(any::<u8>()),
        proptest::option::of(0u16..=3600),
        proptest::option::of((1u32..=254, 1u32..=255).prop_map(|(h, d)| HsrpTimers {
            hello_ms: h * 1000,
            hold_ms: d * 1000,
        })),
        proptest::option::of(prop_oneof![
            known_key().prop_map(HsrpAuth::Text),
            known_key().prop_map(HsrpAuth::Md5)
        ]),
    )
        .prop_map(
            |(group, ip, mac_address, priority, preempt, timers, authentication)| HsrpGroup {
                group,
                ip,
                mac_address,
                priority,
                preempt,
                timers,
                authentication,
            },
        )
}

fn description() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::collection::vec(word(), 1..4).prop_map(|w| w.join(" ")))
}

fn svi() -> impl Strategy<Value = (InterfaceName, Interface)> {
    (
        1u16..4095,
        description(),
        any::<bool>(),
        proptest::collection::vec((v4(), 8u8..=30), 0..3),
        any::<bool>(),
        proptest::option::of(word()),
        any::<bool>(),
        proptest::option::of(Just(2u8)),
        proptest::collection::vec(hsrp_group(), 0..3),
    )
        .prop_map(
            |(
                vlan,
                description,
                shutdown,
                addrs,
                proxy_arp,
                lisp_mobility,
                ext,
                hsrp_version,
                hsrp,
            )| {
                let iface = Interface {
                    description,
                    shutdown,
                    switchport: None,
                    ipv4: addrs
                        .into_iter()
                        .map(|(a, len)| IfAddr {
                            addr: IpAddr::V4(a),
                            len,
                        })
                        .collect(),
                    ipv6: Vec::new(),
                    proxy_arp,
                    lisp_mobility,
                    lisp_extended_subnet_mode: ext,
                    hsrp_hello_filter: false,
                    hsrp_version,
                    hsrp,
                };
                (InterfaceName::Vlan(VlanId::new(vlan).unwrap()), iface)
            },
        )
}

fn ethernet() -> impl Strategy<Value = (InterfaceName, Interface)> {
    let mode = prop_oneof![
        Just(None),
        (1u16..4095).prop_map(|v| Some(PortMode::Access {
            vlan: VlanId::new(v).unwrap()
        })),
        (
            proptest::option::of(
                "[1-9][0-9]{0,2}(,[1-9][0-9]{0,2}){0,3}"
                    .prop_map(|s| s.parse::<VlanList>().unwrap())
            ),
            1u16..4095
        )
            .prop_map(|(allowed, n)| Some(PortMode::Trunk {
                allowed,
                native: VlanId::new(n).unwrap()
            })),
        Just(Some(PortMode::Routed)),
    ];
    (
        1u8..=18,
        1u16..=48,
        description(),
        any::<bool>(),
        mode,
        proptest::collection::vec((v4(), 8u8..=31), 0..2),
        any::<bool>(),
    )
        .prop_map(
            |(slot, port, description, shutdown, switchport, addrs, hello_filter)| {
                let routed = switchport == Some(PortMode::Routed);
                let iface = Interface {
                    description,
                    shutdown,
                    ipv4: if routed {
                        addrs
                            .into_iter()
                            .map(|(a, len)| IfAddr {
                                addr: IpAddr::V4(a),
                                len,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    switchport,
                    hsrp_hello_filter: hello_filter,
                    ..Interface::default()
                };
                (InterfaceName::Ethernet { slot, port }, iface)
            },
        )
}

fn lisp_af(v6: bool) -> impl Strategy<Value = LispAf> {
    (
        any::<[bool; 5]>(),
        proptest::collection::vec(ip(), 0..3),
        proptest::collection::vec(map_server(), 0..3),
        proptest::collection::vec(mapping(), 0..3),
    )
        .prop_map(
            move |(b, itr_map_resolver, etr_map_server, database_mapping)| LispAf {
                itr: b[0],
                etr: b[1],
                map_server: b[2],
                map_resolver: b[3],
                itr_subscribe: b[4],
                itr_map_resolver,
                etr_map_server,
                map_cache: database_mapping
                    .iter()
                    .filter(|m| m.eid_prefix.is_ipv4() != v6)
                    .take(1)
                    .cloned()
                    .collect(),
                database_mapping: database_mapping
                    .into_iter()
                    .filter(|m| m.eid_prefix.is_ipv4() != v6)
                    .collect(),
            },
        )
}

fn lisp() -> impl Strategy<Value = Lisp> {
    (
        (
            proptest::option::of(0u32..=16_777_215),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(1u32..=3600),
        ),
        lisp_af(false),
        lisp_af(true),
        proptest::collection::btree_map(
            word(),
            (
                description(),
                proptest::option::of(key()),
                proptest::collection::vec((prefix(), any::<bool>()), 0..3),
                proptest::option::of(1u32..=100_000_000),
            )
                .prop_map(|(description, authentication_key, eids, max)| LispSite {
                    description,
                    authentication_key,
                    max_registrations: max,
                    eid_prefix: eids
                        .into_iter()
                        .map(|(prefix, accept_more_specifics)| SiteEid {
                            prefix,
                            accept_more_specifics,
                        })
                        .collect(),
                }),
            0..3,
        ),
        proptest::collection::btree_map(
            word(),
            (
                proptest::collection::vec(mapping(), 0..3),
                proptest::option::of(v4()),
                proptest::collection::vec(map_server(), 0..3),
            )
                .prop_map(|(database_mapping, map_notify_group, map_server)| {
                    DynamicEid {
                        database_mapping,
                        map_notify_group,
                        map_server,
                    }
                }),
            0..3,
        ),
    )
        .prop_map(
            |((instance_id, reliable_off, probing, interval), ipv4, ipv6, site, dynamic_eid)| {
                Lisp {
                    instance_id,
                    reliable_registration_disabled: reliable_off,
                    rloc_probing: probing,
                    rloc_probe_interval: interval,
                    ipv4,
                    ipv6,
                    site,
                    dynamic_eid,
                }
            },
        )
}

prop_compose! {
    fn config()(
        hostname in word(),
        features in any::<[bool; 3]>(),
        vlans in proptest::collection::vec((1u16..4095, proptest::option::of(word())), 0..4),
        svis in proptest::collection::vec(svi(), 0..3),
        ports in proptest::collection::vec(ethernet(), 0..3),
        routes in proptest::collection::vec((prefix(), ip()), 0..3),
        static_macs in proptest::collection::vec(
            (any::<[u8; 6]>(), 1u16..4095, 1u8..=4, 1u16..=48),
            0..3,
        ),
        lisp in lisp(),
    ) -> Config {
        let mut interfaces = BTreeMap::new();
        interfaces.extend(svis);
        interfaces.extend(ports);
        let mut cfg = Config {
            hostname,
            features: Features { lisp: features[0], hsrp: features[1], interface_vlan: features[2] },
            vlans: vlans.into_iter().map(|(id, name)| Vlan { id: VlanId::new(id).unwrap(), name }).collect(),
            interfaces,
            routes: routes
                .into_iter()
                .filter(|(p, nh)| p.is_ipv4() == nh.is_ipv4())
                .map(|(prefix, next_hop)| StaticRoute { prefix, next_hop })
                .collect(),
            static_macs: static_macs
                .into_iter()
                .map(|(mac, vlan, slot, port)| StaticMac {
                    mac: Mac(mac),
                    vlan: VlanId::new(vlan).unwrap(),
                    interface: InterfaceName::Ethernet { slot, port },
                })
                .collect(),
            lisp,
            ..Config::default()
        };
        cfg.normalize();
        cfg
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cli_rendering_is_canonical(cfg in config()) {
        let text = config::render(&cfg, Syntax::Cli);
        let (parsed, _) = config::parse(&text, Syntax::Cli).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(config::render(&parsed, Syntax::Cli), text.clone());
        prop_assert_eq!(&parsed, &cfg, "CLI text:\n{}", text);
    }

    #[test]
    fn toml_rendering_is_canonical(cfg in config()) {
        let text = config::render(&cfg, Syntax::Toml);
        let (parsed, _) = config::parse(&text, Syntax::Toml).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(config::render(&parsed, Syntax::Toml), text.clone());
        prop_assert_eq!(&parsed, &cfg);
    }

    #[test]
    fn cli_and_toml_agree(cfg in config()) {
        let via_cli = config::parse(&config::render(&cfg, Syntax::Cli), Syntax::Cli).map(|(c, _)| c);
        let via_toml = config::parse(&config::render(&cfg, Syntax::Toml), Syntax::Toml).map(|(c, _)| c);
        prop_assert_eq!(via_cli.ok(), via_toml.ok());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n]{0,300}") {
        let _ = config::parse(&text, Syntax::Cli);
        let _ = config::parse(&text, Syntax::Toml);
    }
}
