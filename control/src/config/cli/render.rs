//! Canonical CLI rendering: `show running-config`. Keys only ever appear as type 7 or type 3.

use std::fmt::Write;

use roamer_hal::{BackendKind, ProfileKind};

use crate::config::model::{
    Config, DatabaseMapping, HsrpAuth, HsrpGroup, Interface, InterfaceName, LispAf, PortMode,
};

/// Renders the whole configuration in NX-OS order, two-space indentation per sub-mode.
pub fn render(cfg: &Config) -> String {
    let mut out = String::new();
    let o = &mut out;
    line(o, 0, &format!("hostname {}", cfg.hostname));
    render_platform(o, cfg);
    let f = &cfg.features;
    for (on, name) in [
        (f.lisp, "lisp"),
        (f.hsrp, "hsrp"),
        (f.interface_vlan, "interface-vlan"),
    ] {
        if on {
            line(o, 0, &format!("feature {name}"));
        }
    }
    for v in &cfg.vlans {
        line(o, 0, &format!("vlan {}", v.id));
        if let Some(n) = &v.name {
            line(o, 1, &format!("name {n}"));
        }
    }
    for m in &cfg.static_macs {
        line(
            o,
            0,
            &format!(
                "mac address-table static {} vlan {} interface {}",
                m.mac, m.vlan, m.interface
            ),
        );
    }
    for r in &cfg.routes {
        let af = if r.prefix.is_ipv4() { "ip" } else { "ipv6" };
        line(o, 0, &format!("{af} route {} {}", r.prefix, r.next_hop));
    }
    if let Some(iid) = cfg.lisp.instance_id {
        line(o, 0, &format!("lisp instance-id {iid}"));
    }
    if cfg.lisp.reliable_registration_disabled {
        line(o, 0, "roamer lisp reliable-registration disable");
    }
    if cfg.lisp.rloc_probing {
        line(o, 0, "lisp loc-reach-algorithm rloc-probing");
    }
    if let Some(secs) = cfg.lisp.rloc_probe_interval {
        line(o, 0, &format!("roamer lisp rloc-probe interval {secs}"));
    }
    render_lisp_af(o, "ip", &cfg.lisp.ipv4);
    render_lisp_af(o, "ipv6", &cfg.lisp.ipv6);
    for (name, site) in &cfg.lisp.site {
        line(o, 0, &format!("lisp site {name}"));
        if let Some(d) = &site.description {
            line(o, 1, &format!("description {d}"));
        }
        for e in &site.eid_prefix {
            let more = if e.accept_more_specifics {
                " accept-more-specifics"
            } else {
                ""
            };
            line(o, 1, &format!("eid-prefix {}{more}", e.prefix));
        }
        if let Some(k) = &site.authentication_key {
            line(o, 1, &format!("authentication-key {k}"));
        }
        if let Some(n) = site.max_registrations {
            line(o, 1, &format!("roamer max-registrations {n}"));
        }
    }
    for (name, map) in &cfg.lisp.dynamic_eid {
        line(o, 0, &format!("lisp dynamic-eid {name}"));
        for m in &map.database_mapping {
            line(o, 1, &mapping("database-mapping", m));
        }
        if let Some(g) = map.map_notify_group {
            line(o, 1, &format!("map-notify-group {g}"));
        }
        for ms in &map.map_server {
            if let Some(k) = &ms.key {
                line(o, 1, &format!("map-server {} key {k}", ms.address));
            }
            if ms.proxy_reply {
                line(o, 1, &format!("map-server {} proxy-reply", ms.address));
            }
        }
    }
    for (name, iface) in &cfg.interfaces {
        render_interface(o, *name, iface);
    }
    out
}

fn line(out: &mut String, depth: usize, text: &str) {
    let _ = writeln!(out, "{}{}", "  ".repeat(depth), text);
}

fn mapping(cmd: &str, m: &DatabaseMapping) -> String {
    format!(
        "{cmd} {} {} priority {} weight {}",
        m.eid_prefix, m.locator, m.priority, m.weight
    )
}

fn render_platform(o: &mut String, cfg: &Config) {
    let p = &cfg.platform;
    if p.profile != ProfileKind::default() {
        line(o, 0, &format!("roamer platform profile {}", p.profile));
    }
    if let Some(r) = &p.release {
        line(o, 0, &format!("roamer platform release {r}"));
    }
    for l in &p.licenses {
        line(o, 0, &format!("roamer platform license {l}"));
    }
    // (A whitebox defaults to `kernel`: its `software` backend is written out.)
    if p.backend != BackendKind::default() || p.profile == ProfileKind::Whitebox {
        line(o, 0, &format!("roamer platform backend {}", p.backend));
    }
    for (name, device) in &p.ports {
        let io = p
            .port_io
            .get(name)
            .map(|io| format!(" io {io}"))
            .unwrap_or_default();
        line(o, 0, &format!("roamer platform port {name} {device}{io}"));
    }
    for c in &p.linecards {
        let epld = c
            .epld
            .as_ref()
            .map(|e| format!(" epld {e}"))
            .unwrap_or_default();
        line(
            o,
            0,
            &format!("roamer platform linecard {} {}{epld}", c.slot.0, c.model),
        );
    }
}

fn render_lisp_af(o: &mut String, af: &str, l: &LispAf) {
    match (l.itr, l.etr) {
        (true, true) => line(o, 0, &format!("{af} lisp itr-etr")),
        (true, false) => line(o, 0, &format!("{af} lisp itr")),
        (false, true) => line(o, 0, &format!("{af} lisp etr")),
        (false, false) => {}
    }
    if l.map_server {
        line(o, 0, &format!("{af} lisp map-server"));
    }
    if l.map_resolver {
        line(o, 0, &format!("{af} lisp map-resolver"));
    }
    for m in &l.database_mapping {
        line(o, 0, &mapping(&format!("{af} lisp database-mapping"), m));
    }
    for m in &l.map_cache {
        line(o, 0, &mapping(&format!("{af} lisp map-cache"), m));
    }
    for mr in &l.itr_map_resolver {
        line(o, 0, &format!("{af} lisp itr map-resolver {mr}"));
    }
    if l.itr_subscribe {
        line(o, 0, &format!("{af} lisp itr subscribe"));
    }
    for ms in &l.etr_map_server {
        if let Some(k) = &ms.key {
            line(
                o,
                0,
                &format!("{af} lisp etr map-server {} key {k}", ms.address),
            );
        }
        if ms.proxy_reply {
            line(
                o,
                0,
                &format!("{af} lisp etr map-server {} proxy-reply", ms.address),
            );
        }
    }
}

fn render_interface(o: &mut String, name: InterfaceName, i: &Interface) {
    line(o, 0, "");
    line(o, 0, &format!("interface {name}"));
    if let Some(d) = &i.description {
        line(o, 1, &format!("description {d}"));
    }
    match &i.switchport {
        Some(PortMode::Routed) => line(o, 1, "no switchport"),
        Some(PortMode::Access { vlan }) => {
            line(o, 1, "switchport");
            line(o, 1, "switchport mode access");
            if vlan.get() != 1 {
                line(o, 1, &format!("switchport access vlan {vlan}"));
            }
        }
        Some(PortMode::Trunk { allowed, native }) => {
            line(o, 1, "switchport");
            line(o, 1, "switchport mode trunk");
            if native.get() != 1 {
                line(o, 1, &format!("switchport trunk native vlan {native}"));
            }
            if let Some(a) = allowed {
                line(o, 1, &format!("switchport trunk allowed vlan {a}"));
            }
        }
        None => {}
    }
    for (n, a) in i.ipv4.iter().enumerate() {
        let secondary = if n > 0 { " secondary" } else { "" };
        line(o, 1, &format!("ip address {a}{secondary}"));
    }
    for a in &i.ipv6 {
        line(o, 1, &format!("ipv6 address {a}"));
    }
    if i.proxy_arp {
        line(o, 1, "ip proxy-arp");
    }
    if let Some(m) = &i.lisp_mobility {
        line(o, 1, &format!("lisp mobility {m}"));
    }
    if i.lisp_extended_subnet_mode {
        line(o, 1, "lisp extended-subnet-mode");
    }
    if i.hsrp_hello_filter {
        line(o, 1, "hsrp hello-filter");
    }
    if let Some(v) = i.hsrp_version {
        line(o, 1, &format!("hsrp version {v}"));
    }
    for g in &i.hsrp {
        render_hsrp(o, g);
    }
    line(
        o,
        1,
        if i.shutdown {
            "shutdown"
        } else {
            "no shutdown"
        },
    );
}

fn render_hsrp(o: &mut String, g: &HsrpGroup) {
    line(o, 1, &format!("hsrp {}", g.group));
    match &g.authentication {
        Some(HsrpAuth::Text(k)) => line(o, 2, &format!("authentication text {k}")),
        Some(HsrpAuth::Md5(k)) => line(o, 2, &format!("authentication md5 key-string {k}")),
        None => {}
    }
    if let Some(m) = g.mac_address {
        line(o, 2, &format!("mac-address {m}"));
    }
    if let Some(d) = g.preempt {
        if d == 0 {
            line(o, 2, "preempt");
        } else {
            line(o, 2, &format!("preempt delay minimum {d}"));
        }
    }
    if let Some(p) = g.priority {
        line(o, 2, &format!("priority {p}"));
    }
    if let Some(t) = g.timers {
        if t.hello_ms % 1000 == 0 && t.hold_ms % 1000 == 0 {
            line(
                o,
                2,
                &format!("timers {} {}", t.hello_ms / 1000, t.hold_ms / 1000),
            );
        } else {
            line(
                o,
                2,
                &format!("timers msec {} msec {}", t.hello_ms, t.hold_ms),
            );
        }
    }
    if let Some(ip) = g.ip {
        line(o, 2, &format!("ip {ip}"));
    }
}
