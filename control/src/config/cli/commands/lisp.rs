//! LISP actions: the global `ip|ipv6 lisp …` and `lisp …` commands, dynamic-EID map mode
//! and map-server site mode.

use std::net::{IpAddr, Ipv4Addr};

use super::{Ctx, Mode, af_is_v6, arg, ip, key, missing, num, num_unless_negated, prefix};
use crate::ControlError;
use crate::config::model::{Config, DatabaseMapping, DynamicEid, LispAf, MapServerRef, SiteEid};
use crate::config::path::ConfigPath;

fn lisp_af(cfg: &mut Config, v6: bool) -> &mut LispAf {
    if v6 {
        &mut cfg.lisp.ipv6
    } else {
        &mut cfg.lisp.ipv4
    }
}

pub(super) fn lisp_role(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn lisp_itr_map_resolver(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn lisp_etr_map_server(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn lisp_etr_map_server_proxy(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn lisp_database_mapping(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    af_mapping(ctx, "database-mapping", |af| &mut af.database_mapping)
}

pub(super) fn lisp_static_map_cache(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    af_mapping(ctx, "map-cache", |af| &mut af.map_cache)
}

/// `ip|ipv6 lisp database-mapping|map-cache PREFIX LOCATOR priority P weight W`: the mapping
/// into (or, negated, out of) the address family's list at `key`.
fn af_mapping(
    ctx: &mut Ctx<'_>,
    key: &'static str,
    list: fn(&mut LispAf) -> &mut Vec<DatabaseMapping>,
) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let m = mapping(ctx)?;
    if m.eid_prefix.is_ipv4() == v6 {
        return Err(ControlError::FamilyMismatch {
            command: ctx.line.to_string(),
        });
    }
    ctx.touched = Some(
        ConfigPath::lisp_af(v6)
            .key(key)
            .elem("eid-prefix", m.eid_prefix),
    );
    let negated = ctx.negated;
    set_mapping(list(lisp_af(ctx.cfg, v6)), m, negated)
}

pub(super) fn lisp_reliable_registration(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.reliable_registration_disabled = !ctx.negated;
    ctx.touched = Some(
        ConfigPath::root()
            .key("lisp")
            .key("reliable-registration-disabled"),
    );
    Ok(())
}

pub(super) fn lisp_itr_subscribe(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let v6 = af_is_v6(ctx);
    let negated = ctx.negated;
    lisp_af(ctx.cfg, v6).itr_subscribe = !negated;
    ctx.touched = Some(ConfigPath::lisp_af(v6).key("itr-subscribe"));
    Ok(())
}

pub(super) fn lisp_rloc_probing(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.rloc_probing = !ctx.negated;
    ctx.touched = Some(ConfigPath::root().key("lisp").key("rloc-probing"));
    Ok(())
}

pub(super) fn lisp_rloc_probe_interval(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.rloc_probe_interval = num_unless_negated(ctx, "secs")?;
    ctx.touched = Some(ConfigPath::root().key("lisp").key("rloc-probe-interval"));
    Ok(())
}

pub(super) fn lisp_instance_id(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    ctx.cfg.lisp.instance_id = num_unless_negated(ctx, "iid")?;
    ctx.touched = Some(ConfigPath::root().key("lisp").key("instance-id"));
    Ok(())
}

pub(super) fn lisp_site(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn lisp_dynamic_eid(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn dyn_database_mapping(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn dyn_map_notify_group(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let group: Option<Ipv4Addr> = num_unless_negated(ctx, "group")?;
    let (name, map) = current_map(ctx)?;
    map.map_notify_group = group;
    ctx.touched = Some(ConfigPath::dynamic_eid(&name).key("map-notify-group"));
    Ok(())
}

pub(super) fn dyn_map_server(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn dyn_map_server_proxy(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn site_description(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn site_eid_prefix(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn site_max_registrations(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
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

pub(super) fn site_key(ctx: &mut Ctx<'_>) -> Result<(), ControlError> {
    let k = if ctx.negated { None } else { Some(key(ctx)?) };
    let (name, site) = current_site(ctx)?;
    site.authentication_key = k;
    ctx.touched = Some(ConfigPath::site(&name).key("authentication-key"));
    Ok(())
}
