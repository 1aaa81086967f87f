//! Checks on a whole configuration. Each finding names the model element it is about, so the
//! caller can point at the line in whichever syntax the configuration came from.

use roamer_hal::Prefix;

use super::model::{Config, HsrpAuth, InterfaceName, MapServerRef, PortMode};
use super::path::ConfigPath;
use crate::ControlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: ConfigPath,
    pub severity: Severity,
    pub error: ControlError,
    /// A second element the finding is about (the other of two conflicting lines).
    pub also: Option<ConfigPath>,
}

/// Everything wrong (errors) or doubtful (warnings) in a configuration.
pub fn validate(cfg: &Config) -> Vec<Issue> {
    let mut v = Validator { issues: Vec::new() };
    v.hostname(cfg);
    v.platform(cfg);
    v.features(cfg);
    v.interfaces(cfg);
    v.static_macs(cfg);
    v.lisp(cfg);
    v.issues
}

/// True when no issue is an error.
pub fn is_valid(issues: &[Issue]) -> bool {
    issues.iter().all(|i| i.severity == Severity::Warning)
}

struct Validator {
    issues: Vec<Issue>,
}

impl Validator {
    fn error(&mut self, path: ConfigPath, error: ControlError) {
        self.issue(path, Severity::Error, error);
    }

    fn warn(&mut self, path: ConfigPath, error: ControlError) {
        self.issue(path, Severity::Warning, error);
    }

    fn issue(&mut self, path: ConfigPath, severity: Severity, error: ControlError) {
        self.issues.push(Issue {
            path,
            severity,
            error,
            also: None,
        });
    }

    fn hostname(&mut self, cfg: &Config) {
        let n = &cfg.hostname;
        let ok = (1..=63).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            self.error(
                ConfigPath::hostname(),
                ControlError::InvalidHostname { name: n.clone() },
            );
        }
    }

    fn platform(&mut self, cfg: &Config) {
        for port in cfg.platform.port_io.keys() {
            if !cfg.platform.ports.contains_key(port) {
                self.error(
                    ConfigPath::platform("port-io").key(port.clone()),
                    ControlError::PortIoWithoutDevice { port: port.clone() },
                );
            }
        }
    }

    fn features(&mut self, cfg: &Config) {
        let f = cfg.features;
        if !f.lisp
            && let Some((path, what)) = first_lisp_element(cfg)
        {
            self.error(
                path,
                ControlError::FeatureRequired {
                    feature: "lisp",
                    what,
                },
            );
        }

        for (name, iface) in &cfg.interfaces {
            if name.is_svi() && !f.interface_vlan {
                self.error(
                    ConfigPath::interface(name),
                    ControlError::FeatureRequired {
                        feature: "interface-vlan",
                        what: format!("interface {name}"),
                    },
                );
            }
            if !f.hsrp
                && let Some(g) = iface.hsrp.first()
            {
                self.error(
                    ConfigPath::hsrp(name, g.group),
                    ControlError::FeatureRequired {
                        feature: "hsrp",
                        what: format!("hsrp {} on {name}", g.group),
                    },
                );
            }
        }
    }

    fn interfaces(&mut self, cfg: &Config) {
        for (name, iface) in &cfg.interfaces {
            let version = iface.hsrp_version.unwrap_or(1);
            let max_group = if version == 2 { 4095 } else { 255 };
            for g in &iface.hsrp {
                let path = ConfigPath::hsrp(name, g.group);
                if g.group > max_group {
                    self.error(
                        path.clone(),
                        ControlError::HsrpGroupRange {
                            group: g.group,
                            version,
                            max: max_group,
                        },
                    );
                }
                if let Some(vip) = g.ip {
                    let inside = iface.ipv4.iter().any(|a| a.subnet().contains(vip.into()));
                    if !inside {
                        self.error(
                            path.clone().key("ip"),
                            ControlError::VipOutsideSubnet {
                                vip: vip.to_string(),
                                interface: name.to_string(),
                            },
                        );
                    }
                }
                if let Some(t) = g.timers
                    && t.hello_ms >= t.hold_ms
                {
                    self.error(
                        path.clone().key("timers"),
                        ControlError::TimersInvalid {
                            hello_ms: t.hello_ms,
                            hold_ms: t.hold_ms,
                        },
                    );
                }

                if let Some(HsrpAuth::Text(k) | HsrpAuth::Md5(k)) = &g.authentication
                    && k.secret().is_none()
                {
                    self.error(
                        path.clone().key("authentication"),
                        ControlError::BadKey {
                            key_type: 3,
                            problem: "HSRP authentication needs a type 0 or 7 key",
                        },
                    );
                }
            }
            if let Some(map) = &iface.lisp_mobility
                && !cfg.lisp.dynamic_eid.contains_key(map)
            {
                self.error(
                    ConfigPath::interface(name).key("lisp-mobility"),
                    ControlError::UndefinedMap { name: map.clone() },
                );
            }
        }
    }

    /// A static MAC needs its VLAN, and an interface that is a switchport carrying it.
    fn static_macs(&mut self, cfg: &Config) {
        for m in &cfg.static_macs {
            let mode = cfg
                .interfaces
                .get(&m.interface)
                .map(|i| i.switchport.clone().unwrap_or_default())
                .unwrap_or_default();
            let problem = if m.vlan.get() != 1 && !cfg.vlans.iter().any(|v| v.id == m.vlan) {
                Some("the VLAN is not configured")
            } else if !matches!(m.interface, InterfaceName::Ethernet { .. }) {
                Some("only an Ethernet interface holds MAC addresses")
            } else {
                match mode {
                    PortMode::Routed => Some("the interface is not a switchport"),
                    PortMode::Access { vlan } if vlan != m.vlan => {
                        Some("the interface is an access port of another VLAN")
                    }
                    PortMode::Trunk {
                        allowed: Some(list),
                        ..
                    } if !list.contains(m.vlan) => Some("the VLAN is not allowed on the trunk"),
                    _ => None,
                }
            };
            if let Some(problem) = problem {
                self.error(
                    ConfigPath::static_mac(m.mac, m.vlan),
                    ControlError::StaticMacInvalid {
                        mac: m.mac.to_string(),
                        vlan: m.vlan.get(),
                        interface: m.interface.to_string(),
                        problem,
                    },
                );
            }
        }
    }

    fn lisp(&mut self, cfg: &Config) {
        for (v6, af) in [(false, &cfg.lisp.ipv4), (true, &cfg.lisp.ipv6)] {
            let base = ConfigPath::lisp_af(v6);
            for ms in &af.etr_map_server {
                self.map_server(
                    base.clone()
                        .key("etr-map-server")
                        .elem("address", ms.address),
                    ms,
                );
            }
        }
        for (name, site) in &cfg.lisp.site {
            let path = ConfigPath::site(name);
            match &site.authentication_key {
                None => self.error(
                    path.clone(),
                    ControlError::SiteWithoutKey { site: name.clone() },
                ),
                Some(k) if k.secret().is_none() => self.warn(
                    path.clone().key("authentication-key"),
                    ControlError::Type3KeyUnusable {
                        peer: format!("lisp site {name}"),
                    },
                ),
                Some(_) => {}
            }
        }
        self.site_prefixes(cfg);
        let globals: Vec<Prefix> = cfg
            .lisp
            .ipv4
            .database_mapping
            .iter()
            .chain(&cfg.lisp.ipv6.database_mapping)
            .map(|m| m.eid_prefix)
            .collect();
        for (name, map) in &cfg.lisp.dynamic_eid {
            let path = ConfigPath::dynamic_eid(name);
            if let Some(g) = map.map_notify_group
                && !g.is_multicast()
            {
                self.error(
                    path.clone().key("map-notify-group"),
                    ControlError::NotMulticast {
                        group: g.to_string(),
                    },
                );
            }

            for ms in &map.map_server {
                self.map_server(
                    path.clone().key("map-server").elem("address", ms.address),
                    ms,
                );
            }
            let svis: Vec<(InterfaceName, Prefix)> = cfg
                .interfaces
                .iter()
                .filter(|(_, i)| i.lisp_mobility.as_deref() == Some(name.as_str()))
                .flat_map(|(n, i)| i.ipv4.iter().chain(&i.ipv6).map(move |a| (*n, a.subnet())))
                .collect();
            for m in &map.database_mapping {
                let at = path
                    .clone()
                    .key("database-mapping")
                    .elem("eid-prefix", m.eid_prefix);
                let dynamic = m.eid_prefix;
                for global in globals.iter().filter(|g| g.overlaps(&dynamic)) {
                    if !(global.covers(&dynamic) && dynamic.len() > global.len()) {
                        self.error(
                            at.clone(),
                            ControlError::NotMoreSpecific {
                                dynamic: dynamic.to_string(),
                                other: global.to_string(),
                                context: "the global database-mapping",
                            },
                        );
                    }
                }
                for (svi, subnet) in svis.iter().filter(|(_, s)| s.overlaps(&dynamic)) {
                    if !(subnet.covers(&dynamic) && dynamic.len() > subnet.len()) {
                        self.error(
                            at.clone(),
                            ControlError::NotMoreSpecific {
                                dynamic: dynamic.to_string(),
                                other: format!("{subnet} on {svi}"),
                                context: "the subnet of the interface it is applied to",
                            },
                        );
                    }
                }
            }
        }
    }

    /// An EID prefix belongs to one site: the same prefix in a second site is refused, naming
    /// both (the first site in name order is taken as the one that has it).
    fn site_prefixes(&mut self, cfg: &Config) {
        let mut owner: std::collections::BTreeMap<Prefix, &str> = Default::default();
        for (name, site) in &cfg.lisp.site {
            for e in &site.eid_prefix {
                let at = |site: &str| {
                    ConfigPath::site(site)
                        .key("eid-prefix")
                        .elem("prefix", e.prefix)
                };
                match owner.get(&e.prefix) {
                    Some(first) if *first != name.as_str() => self.issues.push(Issue {
                        path: at(name),
                        severity: Severity::Error,
                        error: ControlError::EidPrefixInTwoSites {
                            prefix: e.prefix.to_string(),
                            site: name.clone(),
                            other: (*first).to_string(),
                        },
                        also: Some(at(first)),
                    }),
                    Some(_) => {}
                    None => {
                        owner.insert(e.prefix, name);
                    }
                }
            }
        }
    }

    fn map_server(&mut self, path: ConfigPath, ms: &MapServerRef) {
        match &ms.key {
            None => self.error(
                path,
                ControlError::MapServerWithoutKey {
                    address: ms.address.to_string(),
                },
            ),
            Some(k) if k.secret().is_none() => self.warn(
                path,
                ControlError::Type3KeyUnusable {
                    peer: format!("map-server {}", ms.address),
                },
            ),
            Some(_) => {}
        }
    }
}

/// The first LISP element of a configuration and how an operator would name it.
fn first_lisp_element(cfg: &Config) -> Option<(ConfigPath, String)> {
    let l = &cfg.lisp;
    if let Some((name, _)) = l.dynamic_eid.iter().next() {
        return Some((
            ConfigPath::dynamic_eid(name),
            format!("lisp dynamic-eid {name}"),
        ));
    }
    if let Some((name, _)) = l.site.iter().next() {
        return Some((ConfigPath::site(name), format!("lisp site {name}")));
    }
    if l.instance_id.is_some() {
        return Some((
            ConfigPath::root().key("lisp").key("instance-id"),
            "lisp instance-id".into(),
        ));
    }
    for (v6, af) in [(false, &l.ipv4), (true, &l.ipv6)] {
        if *af != Default::default() {
            let word = if v6 { "ipv6" } else { "ip" };
            return Some((ConfigPath::lisp_af(v6), format!("{word} lisp")));
        }
    }
    cfg.interfaces.iter().find_map(|(n, i)| {
        if i.lisp_mobility.is_some() {
            Some((
                ConfigPath::interface(n).key("lisp-mobility"),
                format!("lisp mobility on {n}"),
            ))
        } else if i.lisp_extended_subnet_mode {
            Some((
                ConfigPath::interface(n).key("lisp-extended-subnet-mode"),
                format!("lisp extended-subnet-mode on {n}"),
            ))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli;

    fn issues(text: &str) -> Vec<Issue> {
        let (cfg, _) = cli::parse(text).unwrap();
        validate(&cfg)
    }

    const BASE: &str = "feature lisp\nfeature interface-vlan\nfeature hsrp\n";

    #[test]
    fn port_io_is_one_model_in_both_syntaxes_and_needs_a_device() {
        use crate::config::{SourceMap, Syntax, parse, render};
        use roamer_hal::PortIoKind;
        let cli_text = "roamer platform port Ethernet1/1 veth1 io af-xdp\n\
                        roamer platform port Ethernet1/2 veth2 io af-packet\n\
                        roamer platform port Ethernet1/3 veth3\n";
        let (cfg, _) = parse(cli_text, Syntax::Cli).unwrap();
        assert_eq!(
            cfg.platform.port_io.get("Ethernet1/1"),
            Some(&PortIoKind::AfXdp)
        );
        assert_eq!(
            cfg.platform.port_io.get("Ethernet1/2"),
            Some(&PortIoKind::AfPacket)
        );
        assert_eq!(cfg.platform.port_io.get("Ethernet1/3"), None);
        assert!(validate(&cfg).is_empty());
        let toml = render(&cfg, Syntax::Toml);
        assert!(toml.contains("[platform.port-io]"), "{toml}");
        let (again, _) = parse(&toml, Syntax::Toml).unwrap();
        assert_eq!(again, cfg);
        let cli_again = render(&again, Syntax::Cli);
        assert!(
            cli_again.contains("roamer platform port Ethernet1/1 veth1 io af-xdp"),
            "{cli_again}"
        );
        let (back, _) = parse(&cli_again, Syntax::Cli).unwrap();
        assert_eq!(back, cfg);
        // `no` takes the io with the device; giving the port again without io clears it.
        let (cfg2, _) = parse(
            &format!("{cli_text}no roamer platform port Ethernet1/1 veth1\nroamer platform port Ethernet1/2 veth2\n"),
            Syntax::Cli,
        )
        .unwrap();
        assert!(cfg2.platform.port_io.is_empty());

        // An io for a port without a device is an error at its TOML line; a bad value too.
        let bad = "[platform]\nbackend = \"software\"\n\n[platform.port-io]\n\"Ethernet1/4\" = \"af-xdp\"\n";
        let (cfg, map) = parse(bad, Syntax::Toml).unwrap();
        let found = validate(&cfg);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(matches!(
            &found[0].error,
            ControlError::PortIoWithoutDevice { port } if port == "Ethernet1/4"
        ));
        assert!(matches!(map, SourceMap::Toml(_)));
        assert_eq!(map.line(&found[0].path), Some(5));
        let errs = parse(
            "[platform.port]\n\"Ethernet1/1\" = \"v1\"\n[platform.port-io]\n\"Ethernet1/1\" = \"af-rdma\"\n",
            Syntax::Toml,
        )
        .unwrap_err();
        assert_eq!(errs[0].line(), Some(4), "{errs:?}");
    }

    #[test]
    fn feature_lisp_is_required() {
        let found = issues("lisp dynamic-eid R\n");
        assert!(matches!(
            found[0].error,
            ControlError::FeatureRequired {
                feature: "lisp",
                ..
            }
        ));
    }

    #[test]
    fn dynamic_prefix_must_be_more_specific_where_it_overlaps() {
        let ok = format!(
            "{BASE}ip lisp database-mapping 172.16.0.0/16 172.16.1.1 priority 1 weight 100\nlisp dynamic-eid R\n database-mapping 172.16.1.0/24 10.1.1.1 priority 1 weight 100\n map-server 10.1.1.1 key 0 k\n"
        );
        assert!(is_valid(&issues(&ok)), "{:?}", issues(&ok));
        let bad = ok.replace("172.16.1.0/24", "172.0.0.0/8");
        let found = issues(&bad);
        assert!(
            found
                .iter()
                .any(|i| matches!(i.error, ControlError::NotMoreSpecific { .. })),
            "{found:?}"
        );
        // Across subnets the dynamic range need not overlap the SVI at all.
        let across = format!("{ok}interface Vlan20\n ip address 10.20.0.1/24\n lisp mobility R\n");
        assert!(is_valid(&issues(&across)));
        let equal = format!("{ok}interface Vlan20\n ip address 172.16.1.1/24\n lisp mobility R\n");
        assert!(!is_valid(&issues(&equal)));
    }

    #[test]
    fn vip_must_be_in_the_svi_subnet() {
        let text = format!("{BASE}interface Vlan10\n ip 10.3.3.5/24\n hsrp 100\n  ip 10.3.4.1\n");
        let found = issues(&text);
        assert!(matches!(
            found[0].error,
            ControlError::VipOutsideSubnet { .. }
        ));
        assert_eq!(found[0].path, ConfigPath::hsrp("Vlan10", 100).key("ip"));
    }

    #[test]
    fn mobility_names_a_defined_map_and_map_servers_need_keys() {
        let found = issues(&format!("{BASE}interface Vlan10\n lisp mobility Nope\n"));
        assert!(matches!(found[0].error, ControlError::UndefinedMap { .. }));
        let found = issues(&format!(
            "{BASE}lisp dynamic-eid R\n map-server 10.1.1.1 proxy-reply\n"
        ));
        assert!(matches!(
            found[0].error,
            ControlError::MapServerWithoutKey { .. }
        ));
    }

    #[test]
    fn type3_keys_warn() {
        let found = issues(&format!(
            "{BASE}lisp dynamic-eid R\n map-server 10.1.1.1 key 3 1c27564ab1212434\n"
        ));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(
            found[0]
                .error
                .to_string()
                .contains("cannot be authenticated")
        );
    }

    #[test]
    fn a_static_mac_needs_its_vlan_on_a_switchport() {
        let ports = "vlan 10\ninterface Ethernet1/1\n switchport\n switchport access vlan 10\n\
                     interface Ethernet1/2\n no switchport\n";
        let ok = format!(
            "{ports}mac address-table static 0200.0000.00aa vlan 10 interface Ethernet1/1\n"
        );
        assert!(is_valid(&issues(&ok)), "{:?}", issues(&ok));
        for (line, problem) in [
            (
                "0200.0000.00aa vlan 20 interface Ethernet1/1",
                "the VLAN is not configured",
            ),
            (
                "0200.0000.00aa vlan 1 interface Ethernet1/1",
                "access port of another VLAN",
            ),
            (
                "0200.0000.00aa vlan 10 interface Ethernet1/2",
                "not a switchport",
            ),
            (
                "0200.0000.00aa vlan 10 interface Vlan10",
                "only an Ethernet interface",
            ),
        ] {
            let text = format!("{ports}mac address-table static {line}\n");
            let found = issues(&text);
            assert!(
                found.iter().any(
                    |i| matches!(&i.error, ControlError::StaticMacInvalid { .. })
                        && i.error.to_string().contains(problem)
                        && i.path.to_string().contains("static-mac")
                ),
                "{line}: {found:?}"
            );
        }
    }

    #[test]
    fn hsrp_v1_groups_stop_at_255() {
        let text = format!("{BASE}interface Vlan10\n ip 10.3.3.5/24\n hsrp 300\n");
        assert!(matches!(
            issues(&text)[0].error,
            ControlError::HsrpGroupRange { .. }
        ));
        let v2 = format!("{BASE}interface Vlan10\n ip 10.3.3.5/24\n hsrp version 2\n hsrp 300\n");
        assert!(is_valid(&issues(&v2)));
    }
}
