//! The NX-OS command set: modes, patterns, and what each command does to the model.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use roamer_hal::{
    BackendKind, EpldVersion, LinecardSpec, Mac, PortIoKind, Prefix, ProfileKind, Release, SlotId,
    VlanId,
};

use super::grammar::{Args, Grammar};
use crate::ControlError;
use crate::config::model::{
    Config, DatabaseMapping, DynamicEid, HsrpAuth, HsrpGroup, HsrpTimers, IfAddr, Interface,
    InterfaceName, MapServerRef, PortMode, SiteEid, StaticMac, StaticRoute, Vlan, VlanList,
};
use crate::config::path::ConfigPath;
use crate::config::secret::AuthKey;

/// Where a command line is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Exec,
    Config,
    Interface(InterfaceName),
    Hsrp(InterfaceName, u16),
    DynamicEid(String),
    Site(String),
    Vlan(Vec<VlanId>),
}

/// The grammar a mode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ModeKind {
    Exec,
    Config,
    Interface,
    Hsrp,
    DynamicEid,
    Site,
    Vlan,
}

impl Mode {
    pub fn kind(&self) -> ModeKind {
        match self {
            Mode::Exec => ModeKind::Exec,
            Mode::Config => ModeKind::Config,
            Mode::Interface(_) => ModeKind::Interface,
            Mode::Hsrp(..) => ModeKind::Hsrp,
            Mode::DynamicEid(_) => ModeKind::DynamicEid,
            Mode::Site(_) => ModeKind::Site,
            Mode::Vlan(_) => ModeKind::Vlan,
        }
    }

    pub fn parent(&self) -> Option<Mode> {
        match self {
            Mode::Exec => None,
            Mode::Config => Some(Mode::Exec),
            Mode::Hsrp(i, _) => Some(Mode::Interface(*i)),
            _ => Some(Mode::Config),
        }
    }

    /// The prompt after the host name: `#`, `(config)#`, `(config-if)#` …
    pub fn prompt_suffix(&self) -> &'static str {
        match self {
            Mode::Exec => "#",
            Mode::Config => "(config)#",
            Mode::Interface(_) => "(config-if)#",
            Mode::Hsrp(..) => "(config-if-hsrp)#",
            Mode::DynamicEid(_) => "(config-lisp-dynamic-eid)#",
            Mode::Site(_) => "(config-lisp-site)#",
            Mode::Vlan(_) => "(config-vlan)#",
        }
    }
}

/// What a line asks of the caller beyond changing the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// `show …`, `copy …`: run by the daemon; ignored when reading a file.
    Exec(String),
}

/// The state a command action works on.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub cfg: &'a mut Config,
    pub mode: Mode,
    pub args: &'a Args,
    pub negated: bool,
    pub line: &'a str,
    /// The element the line created or changed (for positions in diagnostics).
    pub touched: Option<ConfigPath>,
    pub effect: Effect,
}

type Action = fn(&mut Ctx<'_>) -> Result<(), ControlError>;

pub struct Command {
    pub modes: &'static [ModeKind],
    pub pattern: &'static str,
    pub help: &'static str,
    pub action: Action,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.pattern)
    }
}

use ModeKind as K;
const ALL: &[ModeKind] = &[
    K::Exec,
    K::Config,
    K::Interface,
    K::Hsrp,
    K::DynamicEid,
    K::Site,
    K::Vlan,
];

/// The command table. Order matters only among parameters at the same position.
pub static COMMANDS: &[Command] = &[
    // Anywhere.
    Command {
        modes: ALL,
        pattern: "configure terminal",
        help: "Enter configuration mode",
        action: configure,
    },
    Command {
        modes: ALL,
        pattern: "end",
        help: "Return to exec mode",
        action: end,
    },
    Command {
        modes: ALL,
        pattern: "exit",
        help: "Leave the current mode",
        action: exit,
    },
    Command {
        modes: ALL,
        pattern: "show <what:line>",
        help: "Show running system information",
        action: exec,
    },
    Command {
        modes: ALL,
        pattern: "show",
        help: "Show running system information",
        action: exec,
    },
    Command {
        modes: ALL,
        pattern: "copy running-config {startup-config|start-up-config}=dst",
        help: "Copy the running configuration",
        action: exec,
    },
    Command {
        modes: ALL,
        pattern: "copy <file:word> running-config",
        help: "Merge a configuration file into the running configuration",
        action: exec,
    },
    Command {
        modes: ALL,
        pattern: "configure replace <file:word>",
        help: "Replace the running configuration with a file",
        action: exec,
    },
    // Global configuration.
    Command {
        modes: &[K::Config],
        pattern: "hostname <name:word>",
        help: "Set the system's network name",
        action: hostname,
    },
    Command {
        modes: &[K::Config],
        pattern: "feature {lisp|hsrp|interface-vlan}=feature",
        help: "Enable a feature",
        action: feature,
    },
    Command {
        modes: &[K::Config],
        pattern: "vlan <ids:vlans>",
        help: "Configure VLANs",
        action: vlan,
    },
    Command {
        modes: &[K::Config],
        pattern: "interface <name:ifname>",
        help: "Configure an interface",
        action: interface,
    },
    Command {
        modes: &[K::Config],
        pattern: "mac address-table static <mac:mac> vlan <vlan:1-4094> interface <name:ifname>",
        help: "Configure a static MAC address",
        action: static_mac,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af route <prefix:prefix> <nexthop:ip>",
        help: "Configure IP features",
        action: route,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp {itr-etr|itr|etr|map-server|map-resolver}=role",
        help: "Configure IP features",
        action: lisp_role,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp itr map-resolver <addr:ip>",
        help: "",
        action: lisp_itr_map_resolver,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp etr map-server <addr:ip> key <type:0-7> <key:word>",
        help: "",
        action: lisp_etr_map_server,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp etr map-server <addr:ip> key <key:word>",
        help: "",
        action: lisp_etr_map_server,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp etr map-server <addr:ip> proxy-reply",
        help: "",
        action: lisp_etr_map_server_proxy,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp database-mapping <eid:prefix> <rloc:ip> priority <pri:0-255> weight <wgt:0-100>",
        help: "",
        action: lisp_database_mapping,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp map-cache <eid:prefix> <rloc:ip> priority <pri:0-255> weight <wgt:0-100>",
        help: "",
        action: lisp_static_map_cache,
    },
    Command {
        modes: &[K::Config],
        pattern: "{ip|ipv6}=af lisp itr subscribe",
        help: "",
        action: lisp_itr_subscribe,
    },
    Command {
        modes: &[K::Config],
        pattern: "lisp loc-reach-algorithm rloc-probing",
        help: "Configure LISP",
        action: lisp_rloc_probing,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer lisp rloc-probe interval <secs:1-3600>",
        help: "roamer platform settings",
        action: lisp_rloc_probe_interval,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer lisp reliable-registration disable",
        help: "roamer platform settings",
        action: lisp_reliable_registration,
    },
    Command {
        modes: &[K::Config],
        pattern: "lisp instance-id <iid:0-16777215>",
        help: "Configure LISP",
        action: lisp_instance_id,
    },
    Command {
        modes: &[K::Config],
        pattern: "lisp site <name:word>",
        help: "Configure LISP",
        action: lisp_site,
    },
    Command {
        modes: &[K::Config],
        pattern: "lisp dynamic-eid <name:word>",
        help: "Configure LISP",
        action: lisp_dynamic_eid,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform profile {n7k|vm|clab|whitebox}=profile",
        help: "roamer platform settings",
        action: platform_profile,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform release <release:word>",
        help: "",
        action: platform_release,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform license <license:word>",
        help: "",
        action: platform_license,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform backend {sim|software|kernel}=backend",
        help: "",
        action: platform_backend,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform linecard <slot:1-18> <model:word> [ epld <epld:word> ]",
        help: "",
        action: platform_linecard,
    },
    Command {
        modes: &[K::Config],
        pattern: "roamer platform port <name:ifname> <device:word> [ io {af-packet|af-xdp}=io ]",
        help: "",
        action: platform_port,
    },
    // Interface.
    Command {
        modes: &[K::Interface],
        pattern: "description <text:line>",
        help: "Describe the interface",
        action: if_description,
    },
    Command {
        modes: &[K::Interface],
        pattern: "shutdown",
        help: "Disable the interface",
        action: if_shutdown,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport",
        help: "Configure switchport parameters",
        action: if_switchport,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport mode {access|trunk}=mode",
        help: "",
        action: if_switchport_mode,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport access vlan <vlan:1-4094>",
        help: "",
        action: if_access_vlan,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport trunk allowed vlan <list:vlans>",
        help: "",
        action: if_trunk_allowed,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport trunk allowed vlan {add|remove}=op <list:vlans>",
        help: "",
        action: if_trunk_allowed,
    },
    Command {
        modes: &[K::Interface],
        pattern: "switchport trunk native vlan <vlan:1-4094>",
        help: "",
        action: if_trunk_native,
    },
    Command {
        modes: &[K::Interface],
        pattern: "ip address <addr:ifaddr> [ secondary ]",
        help: "Configure IP features",
        action: if_ip_address,
    },
    Command {
        modes: &[K::Interface],
        pattern: "ip <addr:ifaddr>",
        help: "Configure IP features",
        action: if_ip_address,
    },
    Command {
        modes: &[K::Interface],
        pattern: "ipv6 address <addr:ifaddr>",
        help: "Configure IPv6 features",
        action: if_ipv6_address,
    },
    Command {
        modes: &[K::Interface],
        pattern: "ip proxy-arp",
        help: "",
        action: if_proxy_arp,
    },
    Command {
        modes: &[K::Interface],
        pattern: "lisp mobility <map:word>",
        help: "Configure LISP",
        action: if_lisp_mobility,
    },
    Command {
        modes: &[K::Interface],
        pattern: "lisp extended-subnet-mode",
        help: "Configure LISP",
        action: if_extended_subnet,
    },
    Command {
        modes: &[K::Interface],
        pattern: "hsrp version <version:1-2>",
        help: "Configure HSRP",
        action: if_hsrp_version,
    },
    Command {
        modes: &[K::Interface],
        pattern: "hsrp hello-filter",
        help: "Configure HSRP",
        action: if_hsrp_hello_filter,
    },
    Command {
        modes: &[K::Interface],
        pattern: "hsrp <group:0-4095>",
        help: "Configure HSRP",
        action: if_hsrp_group,
    },
    // HSRP group.
    Command {
        modes: &[K::Hsrp],
        pattern: "ip <vip:ipv4>",
        help: "Virtual IP address",
        action: hsrp_ip,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "mac-address <mac:mac>",
        help: "Virtual MAC address",
        action: hsrp_mac,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "priority <priority:0-255>",
        help: "Priority level",
        action: hsrp_priority,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "preempt [ delay minimum <delay:0-3600> ]",
        help: "Overthrow lower priority active routers",
        action: hsrp_preempt,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "timers <hello:1-254> <hold:1-255>",
        help: "Hello and hold timers",
        action: hsrp_timers,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "timers msec <hello:50-999> msec <hold:100-3000>",
        help: "Hello and hold timers",
        action: hsrp_timers,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "authentication text <type:0-7> <key:word>",
        help: "Authentication",
        action: hsrp_auth,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "authentication text <key:word>",
        help: "Authentication",
        action: hsrp_auth,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "authentication md5 key-string <type:0-7> <key:word>",
        help: "Authentication",
        action: hsrp_auth,
    },
    Command {
        modes: &[K::Hsrp],
        pattern: "authentication md5 key-string <key:word>",
        help: "Authentication",
        action: hsrp_auth,
    },
    // Dynamic-EID map.
    Command {
        modes: &[K::DynamicEid],
        pattern: "database-mapping <eid:prefix> <rloc:ip> priority <pri:0-255> weight <wgt:0-100>",
        help: "Dynamic-EID range and its locator",
        action: dyn_database_mapping,
    },
    Command {
        modes: &[K::DynamicEid],
        pattern: "map-notify-group <group:ipv4>",
        help: "Site multicast Map-Notify group",
        action: dyn_map_notify_group,
    },
    Command {
        modes: &[K::DynamicEid],
        pattern: "map-server <addr:ip> key <type:0-7> <key:word>",
        help: "Map-Server for this policy",
        action: dyn_map_server,
    },
    Command {
        modes: &[K::DynamicEid],
        pattern: "map-server <addr:ip> key <key:word>",
        help: "Map-Server for this policy",
        action: dyn_map_server,
    },
    Command {
        modes: &[K::DynamicEid],
        pattern: "map-server <addr:ip> proxy-reply",
        help: "Map-Server for this policy",
        action: dyn_map_server_proxy,
    },
    // Map-server site.
    Command {
        modes: &[K::Site],
        pattern: "description <text:line>",
        help: "Describe the site",
        action: site_description,
    },
    Command {
        modes: &[K::Site],
        pattern: "eid-prefix <prefix:prefix> [ accept-more-specifics ]",
        help: "EID prefix of the site",
        action: site_eid_prefix,
    },
    Command {
        modes: &[K::Site],
        pattern: "authentication-key <type:0-7> <key:word>",
        help: "Site authentication key",
        action: site_key,
    },
    Command {
        modes: &[K::Site],
        pattern: "authentication-key <key:word>",
        help: "Site authentication key",
        action: site_key,
    },
    Command {
        modes: &[K::Site],
        pattern: "roamer max-registrations <count:1-100000000>",
        help: "Registrations the site may hold (default 100000)",
        action: site_max_registrations,
    },
    // VLAN.
    Command {
        modes: &[K::Vlan],
        pattern: "name <name:word>",
        help: "VLAN name",
        action: vlan_name,
    },
];

/// The trie of every mode, built once.
pub fn grammars() -> &'static [(ModeKind, Grammar)] {
    static G: OnceLock<Vec<(ModeKind, Grammar)>> = OnceLock::new();
    G.get_or_init(|| {
        [
            K::Exec,
            K::Config,
            K::Interface,
            K::Hsrp,
            K::DynamicEid,
            K::Site,
            K::Vlan,
        ]
        .into_iter()
        .map(|kind| {
            let mut g = Grammar::default();
            for (i, c) in COMMANDS.iter().enumerate() {
                if c.modes.contains(&kind) {
                    g.add(c.pattern, i, c.help);
                }
            }
            (kind, g)
        })
        .collect()
    })
}

pub fn grammar(kind: ModeKind) -> &'static Grammar {
    grammars()
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, g)| g)
        .unwrap_or_else(|| unreachable!("every mode has a grammar"))
}

// ---- helpers ------------------------------------------------------------------------------

fn arg<'a>(ctx: &'a Ctx<'_>, name: &str) -> Result<&'a str, ControlError> {
    ctx.args
        .get(name)
        .ok_or_else(|| ControlError::IncompleteCommand {
            command: ctx.line.to_string(),
        })
}

fn num<T: std::str::FromStr>(ctx: &Ctx<'_>, name: &str) -> Result<T, ControlError> {
    let text = arg(ctx, name)?;
    text.parse().map_err(|_| ControlError::ConfigValue {
        line: 0,
        what: "number",
        value: text.to_string(),
        expected: "a number in range",
    })
}

fn ip(ctx: &Ctx<'_>, name: &str) -> Result<IpAddr, ControlError> {
    let text = arg(ctx, name)?;
    text.parse().map_err(|_| ControlError::BadAddress {
        text: text.to_string(),
    })
}

fn prefix(ctx: &Ctx<'_>, name: &str) -> Result<Prefix, ControlError> {
    let text = arg(ctx, name)?;
    text.parse().map_err(|_| ControlError::BadAddress {
        text: text.to_string(),
    })
}

fn key(ctx: &Ctx<'_>) -> Result<AuthKey, ControlError> {
    let key_type = match ctx.args.get("type") {
        Some(t) => Some(t.parse::<u8>().map_err(|_| ControlError::BadKey {
            key_type: 0,
            problem: "bad key type",
        })?),
        None => None,
    };
    AuthKey::from_parts(key_type, arg(ctx, "key")?)
}

fn missing(what: &'static str, name: impl std::fmt::Display) -> ControlError {
    ControlError::NoSuchItem {
        what,
        name: name.to_string(),
    }
}

fn current_interface<'a>(
    ctx: &'a mut Ctx<'_>,
) -> Result<(InterfaceName, &'a mut Interface), ControlError> {
    let name = match &ctx.mode {
        Mode::Interface(n) | Mode::Hsrp(n, _) => *n,
        _ => {
            return Err(ControlError::WrongMode {
                command: ctx.line.to_string(),
            });
        }
    };
    let iface = ctx.cfg.interfaces.entry(name).or_default();
    Ok((name, iface))
}

fn current_group<'a>(
    ctx: &'a mut Ctx<'_>,
) -> Result<(ConfigPath, &'a mut HsrpGroup), ControlError> {
    let Mode::Hsrp(name, group) = ctx.mode.clone() else {
        return Err(ControlError::WrongMode {
            command: ctx.line.to_string(),
        });
    };
    let iface = ctx.cfg.interfaces.entry(name).or_default();
    if iface.hsrp_group(group).is_none() {
        iface.hsrp.push(HsrpGroup::new(group));
    }
    let g = iface
        .hsrp
        .iter_mut()
        .find(|g| g.group == group)
        .ok_or_else(|| missing("HSRP group", group))?;
    Ok((ConfigPath::hsrp(name, group), g))
}

fn af_is_v6(ctx: &Ctx<'_>) -> bool {
    ctx.args.get("af") == Some("ipv6")
}

// ---- anywhere -----------------------------------------------------------------------------

fn configure(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = Mode::Config;
    Ok(())
}

fn end(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = Mode::Exec;
    Ok(())
}

fn exit(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = ctx.mode.parent().unwrap_or(Mode::Exec);
    Ok(())
}

fn exec(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.effect = Effect::Exec(ctx.line.to_string());
    Ok(())
}

// ---- global -------------------------------------------------------------------------------

fn hostname(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.hostname = if ctx.negated {
        crate::config::DEFAULT_HOSTNAME.to_string()
    } else {
        arg(ctx, "name")?.to_string()
    };
    ctx.touched = Some(ConfigPath::hostname());
    Ok(())
}

fn feature(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let on = !ctx.negated;
    let name = arg(ctx, "feature")?.to_string();
    match name.as_str() {
        "lisp" => ctx.cfg.features.lisp = on,
        "hsrp" => ctx.cfg.features.hsrp = on,
        _ => ctx.cfg.features.interface_vlan = on,
    }
    ctx.touched = Some(ConfigPath::feature(&name));
    Ok(())
}

fn vlan(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let list: VlanList = arg(ctx, "ids")?.parse()?;
    let ids: Vec<VlanId> = list.ids().filter_map(|i| VlanId::new(i).ok()).collect();
    if ctx.negated {
        ctx.cfg.vlans.retain(|v| !ids.contains(&v.id));
        return Ok(());
    }
    for id in &ids {
        if !ctx.cfg.vlans.iter().any(|v| v.id == *id) {
            ctx.cfg.vlans.push(Vlan {
                id: *id,
                name: None,
            });
        }
    }
    ctx.touched = ids.first().map(|v| ConfigPath::vlan(v.get()));
    ctx.mode = Mode::Vlan(ids);
    Ok(())
}

fn interface(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let name: InterfaceName = arg(ctx, "name")?.parse()?;
    if ctx.negated {
        ctx.cfg
            .interfaces
            .remove(&name)
            .ok_or_else(|| missing("interface", name))?;
        return Ok(());
    }
    ctx.cfg.interfaces.entry(name).or_default();
    ctx.touched = Some(ConfigPath::interface(name));
    ctx.mode = Mode::Interface(name);
    Ok(())
}

fn static_mac(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let text = arg(ctx, "mac")?;
    let mac: Mac = text.parse().map_err(|_| ControlError::ConfigValue {
        line: 0,
        what: "MAC address",
        value: text.to_string(),
        expected: "EEEE.EEEE.EEEE",
    })?;
    let vlan = VlanId::new(num(ctx, "vlan")?).map_err(|_| missing("VLAN", "0"))?;
    let interface: InterfaceName = arg(ctx, "name")?.parse()?;
    // One entry per MAC and VLAN, as a switch's MAC table has.
    let before = ctx.cfg.static_macs.len();
    ctx.cfg
        .static_macs
        .retain(|m| (m.mac, m.vlan) != (mac, vlan));
    if ctx.negated {
        if before == ctx.cfg.static_macs.len() {
            return Err(missing("static MAC address", format!("{mac} vlan {vlan}")));
        }
        return Ok(());
    }
    ctx.touched = Some(ConfigPath::static_mac(mac, vlan));
    ctx.cfg.static_macs.push(StaticMac {
        mac,
        vlan,
        interface,
    });
    Ok(())
}

fn route(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let r = StaticRoute {
        prefix: prefix(ctx, "prefix")?,
        next_hop: ip(ctx, "nexthop")?,
    };
    if r.prefix.is_ipv4() != af_is_v6(ctx) && r.prefix.is_ipv4() == r.next_hop.is_ipv4() {
        // family keyword and addresses agree
    } else {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    if ctx.negated {
        let before = ctx.cfg.routes.len();
        ctx.cfg.routes.retain(|x| *x != r);
        if before == ctx.cfg.routes.len() {
            return Err(missing("route", r.prefix));
        }
    } else {
        ctx.touched = Some(ConfigPath::route(r.prefix));
        ctx.cfg.routes.push(r);
    }
    Ok(())
}

fn lisp_af(cfg: &mut Config, v6: bool) -> &mut crate::config::model::LispAf {
    if v6 {
        &mut cfg.lisp.ipv6
    } else {
        &mut cfg.lisp.ipv4
    }
}

fn lisp_role(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let on = !ctx.negated;
    let role = arg(ctx, "role")?.to_string();
    let af = lisp_af(ctx.cfg, v6);
    match role.as_str() {
        "itr-etr" => {
            af.itr = on;
            af.etr = on;
        }
        "itr" => af.itr = on,
        "etr" => af.etr = on,
        "map-server" => af.map_server = on,
        _ => af.map_resolver = on,
    }
    ctx.touched = Some(ConfigPath::lisp_af(v6).key(if role == "itr-etr" {
        "itr"
    } else {
        role.as_str()
    }));
    Ok(())
}

fn lisp_itr_map_resolver(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let addr = ip(ctx, "addr")?;
    let negated = ctx.negated;
    let list = &mut lisp_af(ctx.cfg, v6).itr_map_resolver;
    if negated {
        let before = list.len();
        list.retain(|a| *a != addr);
        if before == list.len() {
            return Err(missing("map-resolver", addr));
        }
    } else if !list.contains(&addr) {
        list.push(addr);
    }
    ctx.touched = Some(ConfigPath::lisp_af(v6).key("itr-map-resolver"));
    Ok(())
}

fn upsert_map_server(list: &mut Vec<MapServerRef>, address: IpAddr) -> &mut MapServerRef {
    if let Some(i) = list.iter().position(|m| m.address == address) {
        &mut list[i]
    } else {
        list.push(MapServerRef {
            address,
            key: None,
            proxy_reply: false,
        });
        let last = list.len() - 1;
        &mut list[last]
    }
}

fn remove_map_server(
    list: &mut Vec<MapServerRef>,
    address: IpAddr,
    part: MapServerPart,
) -> Result<(), ControlError> {
    let i = list
        .iter()
        .position(|m| m.address == address)
        .ok_or_else(|| missing("map-server", address))?;
    match part {
        MapServerPart::Key => list[i].key = None,
        MapServerPart::ProxyReply => list[i].proxy_reply = false,
    }
    if list[i].key.is_none() && !list[i].proxy_reply {
        list.remove(i);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum MapServerPart {
    Key,
    ProxyReply,
}

fn lisp_etr_map_server(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let address = ip(ctx, "addr")?;
    ctx.touched = Some(
        ConfigPath::lisp_af(v6)
            .key("etr-map-server")
            .elem("address", address),
    );
    if ctx.negated {
        return remove_map_server(
            &mut lisp_af(ctx.cfg, v6).etr_map_server,
            address,
            MapServerPart::Key,
        );
    }
    let k = key(ctx)?;
    upsert_map_server(&mut lisp_af(ctx.cfg, v6).etr_map_server, address).key = Some(k);
    Ok(())
}

fn lisp_etr_map_server_proxy(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let address = ip(ctx, "addr")?;
    ctx.touched = Some(
        ConfigPath::lisp_af(v6)
            .key("etr-map-server")
            .elem("address", address),
    );
    if ctx.negated {
        return remove_map_server(
            &mut lisp_af(ctx.cfg, v6).etr_map_server,
            address,
            MapServerPart::ProxyReply,
        );
    }
    upsert_map_server(&mut lisp_af(ctx.cfg, v6).etr_map_server, address).proxy_reply = true;
    Ok(())
}

fn mapping(ctx: &Ctx<'_>) -> Result<DatabaseMapping, ControlError> {
    Ok(DatabaseMapping {
        eid_prefix: prefix(ctx, "eid")?,
        locator: ip(ctx, "rloc")?,
        priority: num(ctx, "pri")?,
        weight: num(ctx, "wgt")?,
    })
}

fn set_mapping(
    list: &mut Vec<DatabaseMapping>,
    m: DatabaseMapping,
    negated: bool,
) -> Result<(), ControlError> {
    // A mapping is identified by EID prefix and locator; re-entering it changes pri/wgt.
    let pos = list
        .iter()
        .position(|x| x.eid_prefix == m.eid_prefix && x.locator == m.locator);
    match (negated, pos) {
        (true, Some(i)) => {
            list.remove(i);
        }
        (true, None) => return Err(missing("database-mapping", m.eid_prefix)),
        (false, Some(i)) => list[i] = m,
        (false, None) => list.push(m),
    }
    Ok(())
}

fn lisp_database_mapping(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let m = mapping(ctx)?;
    if m.eid_prefix.is_ipv4() == v6 {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    ctx.touched = Some(
        ConfigPath::lisp_af(v6)
            .key("database-mapping")
            .elem("eid-prefix", m.eid_prefix),
    );
    let negated = ctx.negated;
    set_mapping(&mut lisp_af(ctx.cfg, v6).database_mapping, m, negated)
}

fn lisp_static_map_cache(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let m = mapping(ctx)?;
    if m.eid_prefix.is_ipv4() == v6 {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    ctx.touched = Some(
        ConfigPath::lisp_af(v6)
            .key("map-cache")
            .elem("eid-prefix", m.eid_prefix),
    );
    let negated = ctx.negated;
    set_mapping(&mut lisp_af(ctx.cfg, v6).map_cache, m, negated)
}

fn lisp_reliable_registration(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.reliable_registration_disabled = !ctx.negated;
    ctx.touched = Some(
        ConfigPath::root()
            .key("lisp")
            .key("reliable-registration-disabled"),
    );
    Ok(())
}

fn lisp_itr_subscribe(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let negated = ctx.negated;
    lisp_af(ctx.cfg, v6).itr_subscribe = !negated;
    ctx.touched = Some(ConfigPath::lisp_af(v6).key("itr-subscribe"));
    Ok(())
}

fn lisp_rloc_probing(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.rloc_probing = !ctx.negated;
    ctx.touched = Some(ConfigPath::root().key("lisp").key("rloc-probing"));
    Ok(())
}

fn lisp_rloc_probe_interval(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.rloc_probe_interval = if ctx.negated {
        None
    } else {
        Some(num(ctx, "secs")?)
    };
    ctx.touched = Some(ConfigPath::root().key("lisp").key("rloc-probe-interval"));
    Ok(())
}

fn lisp_instance_id(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.instance_id = if ctx.negated {
        None
    } else {
        Some(num(ctx, "iid")?)
    };
    ctx.touched = Some(ConfigPath::root().key("lisp").key("instance-id"));
    Ok(())
}

fn lisp_site(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let name = arg(ctx, "name")?.to_string();
    if ctx.negated {
        ctx.cfg
            .lisp
            .site
            .remove(&name)
            .ok_or_else(|| missing("lisp site", &name))?;
        return Ok(());
    }
    ctx.cfg.lisp.site.entry(name.clone()).or_default();
    ctx.touched = Some(ConfigPath::site(&name));
    ctx.mode = Mode::Site(name);
    Ok(())
}

fn lisp_dynamic_eid(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let name = arg(ctx, "name")?.to_string();
    if name.len() > 64 {
        return Err(ControlError::ConfigValue {
            line: 0,
            what: "dynamic-EID map name",
            value: name,
            expected: "at most 64 characters",
        });
    }
    if ctx.negated {
        ctx.cfg
            .lisp
            .dynamic_eid
            .remove(&name)
            .ok_or_else(|| missing("lisp dynamic-eid", &name))?;
        return Ok(());
    }
    ctx.cfg.lisp.dynamic_eid.entry(name.clone()).or_default();
    ctx.touched = Some(ConfigPath::dynamic_eid(&name));
    ctx.mode = Mode::DynamicEid(name);
    Ok(())
}

fn platform_profile(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.platform.profile = if ctx.negated {
        ProfileKind::default()
    } else {
        match arg(ctx, "profile")? {
            "n7k" => ProfileKind::N7k,
            "clab" => ProfileKind::Clab,
            "whitebox" => ProfileKind::Whitebox,
            _ => ProfileKind::Vm,
        }
    };
    // A whitebox's ASIC forwards what the kernel holds: its backend is `kernel` unless a
    // `roamer platform backend` line says otherwise.
    if ctx.cfg.platform.profile == ProfileKind::Whitebox
        && ctx.cfg.platform.backend == BackendKind::default()
    {
        ctx.cfg.platform.backend = BackendKind::Kernel;
    }
    ctx.touched = Some(ConfigPath::platform("profile"));
    Ok(())
}

fn platform_release(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.platform.release = if ctx.negated {
        None
    } else {
        let text = arg(ctx, "release")?;
        Some(
            text.parse::<Release>()
                .map_err(|_| ControlError::ConfigValue {
                    line: 0,
                    what: "release",
                    value: text.to_string(),
                    expected: "an NX-OS release such as 8.2(1)",
                })?,
        )
    };
    ctx.touched = Some(ConfigPath::platform("release"));
    Ok(())
}

fn platform_license(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let lic = arg(ctx, "license")?.to_string();
    let list = &mut ctx.cfg.platform.licenses;
    if ctx.negated {
        list.retain(|l| *l != lic);
    } else if !list.contains(&lic) {
        list.push(lic);
    }
    ctx.touched = Some(ConfigPath::platform("licenses"));
    Ok(())
}

fn platform_backend(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.platform.backend = if ctx.negated {
        BackendKind::default()
    } else {
        match arg(ctx, "backend")? {
            "sim" => BackendKind::Sim,
            "kernel" => BackendKind::Kernel,
            _ => BackendKind::Software,
        }
    };
    ctx.touched = Some(ConfigPath::platform("backend"));
    Ok(())
}

fn platform_linecard(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let slot = SlotId(num(ctx, "slot")?);
    ctx.cfg.platform.linecards.retain(|c| c.slot != slot);
    ctx.touched = Some(ConfigPath::linecard(slot.0));
    if ctx.negated {
        return Ok(());
    }
    let epld = match ctx.args.get("epld") {
        Some(text) => Some(
            text.parse::<EpldVersion>()
                .map_err(|_| ControlError::ConfigValue {
                    line: 0,
                    what: "EPLD version",
                    value: text.to_string(),
                    expected: "MAJOR.MINOR, e.g. 186.008",
                })?,
        ),
        None => None,
    };
    let model = arg(ctx, "model")?.to_string();
    ctx.cfg
        .platform
        .linecards
        .push(LinecardSpec { slot, model, epld });
    Ok(())
}

fn platform_port(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let name: InterfaceName = arg(ctx, "name")?.parse()?;
    let key = name.to_string();
    ctx.touched = Some(ConfigPath::platform("port").key(key.clone()));
    if ctx.negated {
        ctx.cfg.platform.ports.remove(&key);
        ctx.cfg.platform.port_io.remove(&key);
    } else {
        let device = arg(ctx, "device")?.to_string();
        match ctx.args.get("io") {
            Some("af-xdp") => ctx
                .cfg
                .platform
                .port_io
                .insert(key.clone(), PortIoKind::AfXdp),
            Some(_) => ctx
                .cfg
                .platform
                .port_io
                .insert(key.clone(), PortIoKind::AfPacket),
            None => ctx.cfg.platform.port_io.remove(&key),
        };
        ctx.cfg.platform.ports.insert(key, device);
    }
    Ok(())
}

// ---- interface ----------------------------------------------------------------------------

/// An interface on/off setting: set by the command, cleared by its `no` form.
fn iface_flag(
    ctx: &mut Ctx<'_>,
    key: &str,
    field: fn(&mut Interface) -> &mut bool,
) -> Result<(), ControlError> {
    let on = !ctx.negated;
    let (name, iface) = current_interface(ctx)?;
    *field(iface) = on;
    ctx.touched = Some(ConfigPath::interface(name).key(key));
    Ok(())
}

/// An interface text setting taken from argument `arg_name`, removed by the `no` form.
fn iface_text(
    ctx: &mut Ctx<'_>,
    arg_name: &str,
    key: &str,
    field: fn(&mut Interface) -> &mut Option<String>,
) -> Result<(), ControlError> {
    let text = if ctx.negated {
        None
    } else {
        Some(arg(ctx, arg_name)?.to_string())
    };
    let (name, iface) = current_interface(ctx)?;
    *field(iface) = text;
    ctx.touched = Some(ConfigPath::interface(name).key(key));
    Ok(())
}

fn if_description(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_text(ctx, "text", "description", |i| &mut i.description)
}

fn if_shutdown(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "shutdown", |i| &mut i.shutdown)
}

fn ethernet_only<'a>(
    ctx: &'a mut Ctx<'_>,
) -> Result<(InterfaceName, &'a mut Interface), ControlError> {
    let line = ctx.line.to_string();
    let (name, iface) = current_interface(ctx)?;
    if !matches!(name, InterfaceName::Ethernet { .. }) {
        return Err(ControlError::NotOnInterface {
            command: line,
            interface: name.to_string(),
        });
    }
    Ok((name, iface))
}

fn if_switchport(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let negated = ctx.negated;
    let (name, iface) = ethernet_only(ctx)?;
    iface.switchport = Some(if negated {
        PortMode::Routed
    } else {
        PortMode::default()
    });
    if !negated {
        iface.ipv4.clear();
        iface.ipv6.clear();
    }
    ctx.touched = Some(ConfigPath::interface(name).key("switchport"));
    Ok(())
}

fn switched_mode(iface: &mut Interface) -> &mut PortMode {
    let mode = iface.switchport.get_or_insert_with(PortMode::default);
    if *mode == PortMode::Routed {
        *mode = PortMode::default();
    }
    mode
}

fn if_switchport_mode(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let trunk = arg(ctx, "mode")? == "trunk" && !ctx.negated;
    let (name, iface) = ethernet_only(ctx)?;
    let mode = switched_mode(iface);
    match (trunk, &*mode) {
        (true, PortMode::Trunk { .. }) | (false, PortMode::Access { .. }) => {}
        (true, _) => {
            *mode = PortMode::Trunk {
                allowed: None,
                native: vlan1(),
            }
        }
        (false, _) => *mode = PortMode::default(),
    }
    ctx.touched = Some(ConfigPath::interface(name).key("switchport"));
    Ok(())
}

fn vlan1() -> VlanId {
    VlanId::new(1).unwrap_or_else(|_| unreachable!("VLAN 1 is valid"))
}

fn if_access_vlan(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vlan = if ctx.negated {
        vlan1()
    } else {
        VlanId::new(num(ctx, "vlan")?).map_err(|_| missing("VLAN", "0"))?
    };
    let (name, iface) = ethernet_only(ctx)?;
    match switched_mode(iface) {
        PortMode::Access { vlan: v } => *v = vlan,
        // NX-OS keeps the access VLAN while in trunk mode; roamer keeps only the active mode's.
        m @ PortMode::Trunk { .. } => *m = PortMode::Access { vlan },
        PortMode::Routed => {}
    }
    ctx.touched = Some(ConfigPath::interface(name).key("switchport"));
    Ok(())
}

fn if_trunk_allowed(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let list: VlanList = arg(ctx, "list")?.parse()?;
    let op = ctx.args.get("op").map(str::to_string);
    let negated = ctx.negated;
    let (name, iface) = ethernet_only(ctx)?;
    let mode = switched_mode(iface);
    if let PortMode::Access { .. } = mode {
        *mode = PortMode::Trunk {
            allowed: None,
            native: vlan1(),
        };
    }
    if let PortMode::Trunk { allowed, .. } = mode {
        let all: VlanList = "1-4094".parse()?;
        let current = allowed.clone().unwrap_or(all);
        *allowed = match (negated, op.as_deref()) {
            (true, _) => None,
            (false, Some("add")) => Some(current.merge(&list, false)),
            (false, Some("remove")) => Some(current.merge(&list, true)),
            _ => Some(list),
        };
    }
    ctx.touched = Some(ConfigPath::interface(name).key("switchport"));
    Ok(())
}

fn if_trunk_native(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vlan = if ctx.negated {
        vlan1()
    } else {
        VlanId::new(num(ctx, "vlan")?).map_err(|_| missing("VLAN", "0"))?
    };
    let (name, iface) = ethernet_only(ctx)?;
    match switched_mode(iface) {
        PortMode::Trunk { native, .. } => *native = vlan,
        m => {
            *m = PortMode::Trunk {
                allowed: None,
                native: vlan,
            }
        }
    }
    ctx.touched = Some(ConfigPath::interface(name).key("switchport"));
    Ok(())
}

fn routed_interface<'a>(
    ctx: &'a mut Ctx<'_>,
) -> Result<(InterfaceName, &'a mut Interface), ControlError> {
    let line = ctx.line.to_string();
    let (name, iface) = current_interface(ctx)?;
    if matches!(name, InterfaceName::Ethernet { .. }) && iface.switchport != Some(PortMode::Routed)
    {
        return Err(ControlError::NeedsRoutedPort {
            command: line,
            interface: name.to_string(),
        });
    }
    Ok((name, iface))
}

fn if_ip_address(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let addr: IfAddr = arg(ctx, "addr")?.parse()?;
    if !addr.addr.is_ipv4() {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    let secondary =
        ctx.args.has("secondary") || ctx.line.split_whitespace().any(|t| t == "secondary");
    let negated = ctx.negated;
    let (name, iface) = routed_interface(ctx)?;
    if negated {
        iface.ipv4.retain(|a| *a != addr);
    } else if secondary || iface.ipv4.is_empty() {
        if !iface.ipv4.contains(&addr) {
            iface.ipv4.push(addr);
        }
    } else {
        // A new primary address replaces the old primary.
        iface.ipv4[0] = addr;
    }
    ctx.touched = Some(ConfigPath::interface(name).key("ipv4"));
    Ok(())
}

fn if_ipv6_address(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let addr: IfAddr = arg(ctx, "addr")?.parse()?;
    if addr.addr.is_ipv4() {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    let negated = ctx.negated;
    let (name, iface) = routed_interface(ctx)?;
    if negated {
        iface.ipv6.retain(|a| *a != addr);
    } else if !iface.ipv6.contains(&addr) {
        iface.ipv6.push(addr);
    }
    ctx.touched = Some(ConfigPath::interface(name).key("ipv6"));
    Ok(())
}

fn if_proxy_arp(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "proxy-arp", |i| &mut i.proxy_arp)
}

fn if_lisp_mobility(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_text(ctx, "map", "lisp-mobility", |i| &mut i.lisp_mobility)
}

fn if_extended_subnet(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "lisp-extended-subnet-mode", |i| {
        &mut i.lisp_extended_subnet_mode
    })
}

fn if_hsrp_version(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v: u8 = if ctx.negated { 1 } else { num(ctx, "version")? };
    let (name, iface) = current_interface(ctx)?;
    iface.hsrp_version = (v == 2).then_some(2);
    ctx.touched = Some(ConfigPath::interface(name).key("hsrp-version"));
    Ok(())
}

fn if_hsrp_hello_filter(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "hsrp-hello-filter", |i| &mut i.hsrp_hello_filter)
}

fn if_hsrp_group(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let group: u16 = num(ctx, "group")?;
    let negated = ctx.negated;
    let (name, iface) = current_interface(ctx)?;
    if negated {
        let before = iface.hsrp.len();
        iface.hsrp.retain(|g| g.group != group);
        if before == iface.hsrp.len() {
            return Err(missing("HSRP group", group));
        }
        return Ok(());
    }
    if iface.hsrp_group(group).is_none() {
        iface.hsrp.push(HsrpGroup::new(group));
    }
    ctx.touched = Some(ConfigPath::hsrp(name, group));
    ctx.mode = Mode::Hsrp(name, group);
    Ok(())
}

// ---- HSRP group ---------------------------------------------------------------------------

fn hsrp_ip(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vip: Option<Ipv4Addr> = if ctx.negated {
        None
    } else {
        Some(num(ctx, "vip")?)
    };
    let (path, g) = current_group(ctx)?;
    g.ip = vip;
    ctx.touched = Some(path.key("ip"));
    Ok(())
}

fn hsrp_mac(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let mac: Option<Mac> = if ctx.negated {
        None
    } else {
        let text = arg(ctx, "mac")?;
        Some(text.parse().map_err(|_| ControlError::ConfigValue {
            line: 0,
            what: "MAC address",
            value: text.to_string(),
            expected: "EEEE.EEEE.EEEE",
        })?)
    };
    let (path, g) = current_group(ctx)?;
    g.mac_address = mac;
    ctx.touched = Some(path.key("mac-address"));
    Ok(())
}

fn hsrp_priority(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let p: Option<u8> = if ctx.negated {
        None
    } else {
        Some(num(ctx, "priority")?)
    };
    let (path, g) = current_group(ctx)?;
    g.priority = p;
    ctx.touched = Some(path.key("priority"));
    Ok(())
}

fn hsrp_preempt(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let delay: Option<u16> = if ctx.negated {
        None
    } else {
        Some(match ctx.args.get("delay") {
            Some(_) => num(ctx, "delay")?,
            None => 0,
        })
    };
    let (path, g) = current_group(ctx)?;
    g.preempt = delay;
    ctx.touched = Some(path.key("preempt"));
    Ok(())
}

fn hsrp_timers(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let msec = ctx
        .line
        .split_whitespace()
        .any(|t| t.eq_ignore_ascii_case("msec"));
    let timers = if ctx.negated {
        None
    } else {
        let hello: u32 = num(ctx, "hello")?;
        let hold: u32 = num(ctx, "hold")?;
        let scale = if msec { 1 } else { 1000 };
        Some(HsrpTimers {
            hello_ms: hello * scale,
            hold_ms: hold * scale,
        })
    };
    let (path, g) = current_group(ctx)?;
    g.timers = timers;
    ctx.touched = Some(path.key("timers"));
    Ok(())
}

fn hsrp_auth(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let md5 = ctx
        .line
        .split_whitespace()
        .any(|t| t.eq_ignore_ascii_case("md5"));
    let auth = if ctx.negated {
        None
    } else {
        let k = key(ctx)?;
        Some(if md5 {
            HsrpAuth::Md5(k)
        } else {
            HsrpAuth::Text(k)
        })
    };
    let (path, g) = current_group(ctx)?;
    g.authentication = auth;
    ctx.touched = Some(path.key("authentication"));
    Ok(())
}

// ---- dynamic-EID map ----------------------------------------------------------------------

fn current_map<'a>(ctx: &'a mut Ctx<'_>) -> Result<(String, &'a mut DynamicEid), ControlError> {
    let Mode::DynamicEid(name) = ctx.mode.clone() else {
        return Err(ControlError::WrongMode {
            command: ctx.line.to_string(),
        });
    };
    let map = ctx.cfg.lisp.dynamic_eid.entry(name.clone()).or_default();
    Ok((name, map))
}

fn dyn_database_mapping(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let m = mapping(ctx)?;
    let negated = ctx.negated;
    let prefix = m.eid_prefix;
    let (name, map) = current_map(ctx)?;
    set_mapping(&mut map.database_mapping, m, negated)?;
    ctx.touched = Some(
        ConfigPath::dynamic_eid(&name)
            .key("database-mapping")
            .elem("eid-prefix", prefix),
    );
    Ok(())
}

fn dyn_map_notify_group(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let group: Option<Ipv4Addr> = if ctx.negated {
        None
    } else {
        Some(num(ctx, "group")?)
    };
    let (name, map) = current_map(ctx)?;
    map.map_notify_group = group;
    ctx.touched = Some(ConfigPath::dynamic_eid(&name).key("map-notify-group"));
    Ok(())
}

fn dyn_map_server(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let address = ip(ctx, "addr")?;
    let negated = ctx.negated;
    let k = if negated { None } else { Some(key(ctx)?) };
    let (name, map) = current_map(ctx)?;
    if negated {
        remove_map_server(&mut map.map_server, address, MapServerPart::Key)?;
    } else {
        upsert_map_server(&mut map.map_server, address).key = k;
    }
    ctx.touched = Some(
        ConfigPath::dynamic_eid(&name)
            .key("map-server")
            .elem("address", address),
    );
    Ok(())
}

fn dyn_map_server_proxy(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let address = ip(ctx, "addr")?;
    let negated = ctx.negated;
    let (name, map) = current_map(ctx)?;
    if negated {
        remove_map_server(&mut map.map_server, address, MapServerPart::ProxyReply)?;
    } else {
        upsert_map_server(&mut map.map_server, address).proxy_reply = true;
    }
    ctx.touched = Some(
        ConfigPath::dynamic_eid(&name)
            .key("map-server")
            .elem("address", address),
    );
    Ok(())
}

// ---- map-server site ----------------------------------------------------------------------

fn current_site<'a>(
    ctx: &'a mut Ctx<'_>,
) -> Result<(String, &'a mut crate::config::model::LispSite), ControlError> {
    let Mode::Site(name) = ctx.mode.clone() else {
        return Err(ControlError::WrongMode {
            command: ctx.line.to_string(),
        });
    };
    let site = ctx.cfg.lisp.site.entry(name.clone()).or_default();
    Ok((name, site))
}

fn site_description(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let text = if ctx.negated {
        None
    } else {
        Some(arg(ctx, "text")?.to_string())
    };
    let (name, site) = current_site(ctx)?;
    site.description = text;
    ctx.touched = Some(ConfigPath::site(&name).key("description"));
    Ok(())
}

fn site_eid_prefix(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let p = prefix(ctx, "prefix")?;
    let more = ctx
        .line
        .split_whitespace()
        .any(|t| "accept-more-specifics".starts_with(&t.to_ascii_lowercase()) && t.len() > 2);
    let negated = ctx.negated;
    let (name, site) = current_site(ctx)?;
    site.eid_prefix.retain(|e| e.prefix != p);
    if !negated {
        site.eid_prefix.push(SiteEid {
            prefix: p,
            accept_more_specifics: more,
        });
    }
    ctx.touched = Some(ConfigPath::site(&name).key("eid-prefix").elem("prefix", p));
    Ok(())
}

fn site_max_registrations(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let n = if ctx.negated {
        None
    } else {
        Some(num::<u32>(ctx, "count")?)
    };
    let (name, site) = current_site(ctx)?;
    site.max_registrations = n;
    ctx.touched = Some(ConfigPath::site(&name).key("max-registrations"));
    Ok(())
}

fn site_key(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let k = if ctx.negated { None } else { Some(key(ctx)?) };
    let (name, site) = current_site(ctx)?;
    site.authentication_key = k;
    ctx.touched = Some(ConfigPath::site(&name).key("authentication-key"));
    Ok(())
}

// ---- VLAN ---------------------------------------------------------------------------------

fn vlan_name(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let name = if ctx.negated {
        None
    } else {
        Some(arg(ctx, "name")?.to_string())
    };
    let Mode::Vlan(ids) = ctx.mode.clone() else {
        return Err(ControlError::WrongMode {
            command: ctx.line.to_string(),
        });
    };
    for v in ctx.cfg.vlans.iter_mut().filter(|v| ids.contains(&v.id)) {
        v.name = name.clone();
    }
    ctx.touched = ids.first().map(|v| ConfigPath::vlan(v.get()).key("name"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_builds_and_is_reachable() {
        for (kind, g) in grammars() {
            for (i, c) in COMMANDS.iter().enumerate() {
                if !c.modes.contains(kind) {
                    continue;
                }
                // The literal prefix of each pattern must lead somewhere in its grammar.
                let words: Vec<&str> = c
                    .pattern
                    .split_whitespace()
                    .take_while(|w| {
                        !w.starts_with('<') && !w.starts_with('{') && !w.starts_with('[')
                    })
                    .collect();
                assert!(
                    !g.help(&words, "").is_empty() || g.matches(&words, false).is_ok(),
                    "{kind:?} #{i} {}",
                    c.pattern
                );
            }
        }
    }
}
