//! The NX-OS command set: modes, patterns, and what each command does to the model.

use std::net::IpAddr;
use std::sync::OnceLock;

use roamer_hal::{Mac, Prefix, VlanId};

use super::grammar::{Args, Grammar};
use crate::ControlError;
use crate::config::model::{Config, InterfaceName};
use crate::config::path::ConfigPath;
use crate::config::secret::AuthKey;

mod global;
mod hsrp;
mod interface;
mod lisp;
mod platform;

use global::{
    configure, end, exec, exit, feature, hostname, interface, route, static_mac, vlan, vlan_name,
};
use hsrp::{hsrp_auth, hsrp_ip, hsrp_mac, hsrp_preempt, hsrp_priority, hsrp_timers};
use interface::{
    if_access_vlan, if_description, if_extended_subnet, if_hsrp_group, if_hsrp_hello_filter,
    if_hsrp_version, if_ip_address, if_ipv6_address, if_lisp_mobility, if_proxy_arp, if_shutdown,
    if_switchport, if_switchport_mode, if_trunk_allowed, if_trunk_native,
};
use lisp::{
    dyn_database_mapping, dyn_map_notify_group, dyn_map_server, dyn_map_server_proxy,
    lisp_database_mapping, lisp_dynamic_eid, lisp_etr_map_server, lisp_etr_map_server_proxy,
    lisp_instance_id, lisp_itr_map_resolver, lisp_itr_subscribe, lisp_reliable_registration,
    lisp_rloc_probe_interval, lisp_rloc_probing, lisp_role, lisp_site, lisp_static_map_cache,
    site_description, site_eid_prefix, site_key, site_max_registrations,
};
use platform::{
    platform_backend, platform_license, platform_linecard, platform_port, platform_profile,
    platform_release,
};

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

/// Argument `name` parsed as a `T`; a value that does not parse is a `ConfigValue` error
/// saying `what` was given and what was `expected`.
fn parsed<T: std::str::FromStr>(
    ctx: &Ctx<'_>,
    name: &str,
    what: &'static str,
    expected: &'static str,
) -> Result<T, ControlError> {
    let text = arg(ctx, name)?;
    text.parse().map_err(|_| ControlError::ConfigValue {
        line: 0,
        what,
        value: text.to_string(),
        expected,
    })
}

fn num<T: std::str::FromStr>(ctx: &Ctx<'_>, name: &str) -> Result<T, ControlError> {
    parsed(ctx, name, "number", "a number in range")
}

/// `num` of a command that sets an optional value: none for its `no` form.
fn num_unless_negated<T: std::str::FromStr>(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<Option<T>, ControlError> {
    if ctx.negated {
        Ok(None)
    } else {
        num(ctx, name).map(Some)
    }
}

/// A VLAN ID argument (the grammar has already held it to 1-4094).
fn vlan_arg(ctx: &Ctx<'_>, name: &str) -> Result<VlanId, ControlError> {
    VlanId::new(num(ctx, name)?).map_err(|_| missing("VLAN", "0"))
}

/// A MAC address argument in any form `Mac` parses (EEEE.EEEE.EEEE and the like).
fn mac_arg(ctx: &Ctx<'_>, name: &str) -> Result<Mac, ControlError> {
    parsed(ctx, name, "MAC address", "EEEE.EEEE.EEEE")
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

fn af_is_v6(ctx: &Ctx<'_>) -> bool {
    ctx.args.get("af") == Some("ipv6")
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
