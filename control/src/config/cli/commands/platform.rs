//! Actions of the `roamer platform …` commands (global configuration mode).

use roamer_hal::{
    BackendKind, EpldVersion, LinecardSpec, PortIoKind, ProfileKind, Release, SlotId,
};

use super::{Ctx, arg, num};
use crate::ControlError;
use crate::config::model::InterfaceName;
use crate::config::path::ConfigPath;

pub(super) fn platform_profile(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn platform_release(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn platform_license(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn platform_backend(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn platform_linecard(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn platform_port(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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
