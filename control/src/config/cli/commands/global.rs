//! Actions of the commands valid anywhere, of global configuration mode, and of VLAN mode.

use roamer_hal::VlanId;

use super::{Ctx, Effect, Mode, af_is_v6, arg, ip, mac_arg, missing, prefix, vlan_arg};
use crate::ControlError;
use crate::config::model::{InterfaceName, StaticMac, StaticRoute, Vlan, VlanList};
use crate::config::path::ConfigPath;

// ---- anywhere -----------------------------------------------------------------------------

pub(super) fn configure(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = Mode::Config;
    Ok(())
}

pub(super) fn end(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = Mode::Exec;
    Ok(())
}

pub(super) fn exit(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.mode = ctx.mode.parent().unwrap_or(Mode::Exec);
    Ok(())
}

pub(super) fn exec(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.effect = Effect::Exec(ctx.line.to_string());
    Ok(())
}

// ---- global -------------------------------------------------------------------------------

pub(super) fn hostname(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.hostname = if ctx.negated {
        crate::config::DEFAULT_HOSTNAME.to_string()
    } else {
        arg(ctx, "name")?.to_string()
    };
    ctx.touched = Some(ConfigPath::hostname());
    Ok(())
}

pub(super) fn feature(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn vlan(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn interface(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn static_mac(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let mac = mac_arg(ctx, "mac")?;
    let vlan = vlan_arg(ctx, "vlan")?;
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

pub(super) fn route(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

// ---- VLAN ---------------------------------------------------------------------------------

pub(super) fn vlan_name(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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
