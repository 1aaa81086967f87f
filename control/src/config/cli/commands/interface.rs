//! Interface-mode actions: description, shutdown, switchport, addresses, LISP mobility and
//! the interface's HSRP settings.

use roamer_hal::VlanId;

use super::{Ctx, Mode, arg, missing, num, vlan_arg};
use crate::ControlError;
use crate::config::model::{HsrpGroup, IfAddr, Interface, InterfaceName, PortMode, VlanList};
use crate::config::path::ConfigPath;

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

pub(super) fn if_description(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_text(ctx, "text", "description", |i| &mut i.description)
}

pub(super) fn if_shutdown(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_switchport(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_switchport_mode(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_access_vlan(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vlan = if ctx.negated {
        vlan1()
    } else {
        vlan_arg(ctx, "vlan")?
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

pub(super) fn if_trunk_allowed(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_trunk_native(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vlan = if ctx.negated {
        vlan1()
    } else {
        vlan_arg(ctx, "vlan")?
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

pub(super) fn if_ip_address(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_ipv6_address(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn if_proxy_arp(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "proxy-arp", |i| &mut i.proxy_arp)
}

pub(super) fn if_lisp_mobility(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_text(ctx, "map", "lisp-mobility", |i| &mut i.lisp_mobility)
}

pub(super) fn if_extended_subnet(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "lisp-extended-subnet-mode", |i| {
        &mut i.lisp_extended_subnet_mode
    })
}

pub(super) fn if_hsrp_version(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v: u8 = if ctx.negated { 1 } else { num(ctx, "version")? };
    let (name, iface) = current_interface(ctx)?;
    iface.hsrp_version = (v == 2).then_some(2);
    ctx.touched = Some(ConfigPath::interface(name).key("hsrp-version"));
    Ok(())
}

pub(super) fn if_hsrp_hello_filter(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    iface_flag(ctx, "hsrp-hello-filter", |i| &mut i.hsrp_hello_filter)
}

pub(super) fn if_hsrp_group(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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
