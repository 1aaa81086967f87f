//! HSRP group mode actions (`hsrp N` under an interface).

use std::net::Ipv4Addr;

use roamer_hal::Mac;

use super::{Ctx, Mode, key, mac_arg, missing, num, num_unless_negated};
use crate::ControlError;
use crate::config::model::{HsrpAuth, HsrpGroup, HsrpTimers};
use crate::config::path::ConfigPath;

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

// ---- HSRP group ---------------------------------------------------------------------------

pub(super) fn hsrp_ip(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let vip: Option<Ipv4Addr> = num_unless_negated(ctx, "vip")?;
    let (path, g) = current_group(ctx)?;
    g.ip = vip;
    ctx.touched = Some(path.key("ip"));
    Ok(())
}

pub(super) fn hsrp_mac(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let mac: Option<Mac> = if ctx.negated {
        None
    } else {
        Some(mac_arg(ctx, "mac")?)
    };
    let (path, g) = current_group(ctx)?;
    g.mac_address = mac;
    ctx.touched = Some(path.key("mac-address"));
    Ok(())
}

pub(super) fn hsrp_priority(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let p: Option<u8> = num_unless_negated(ctx, "priority")?;
    let (path, g) = current_group(ctx)?;
    g.priority = p;
    ctx.touched = Some(path.key("priority"));
    Ok(())
}

pub(super) fn hsrp_preempt(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn hsrp_timers(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn hsrp_auth(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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
