//! Startup configurations of the LISP namespace tests, built from the parts they share: a node's
//! ports and underlay address, a map-server's sites, an xTR's mapping system.

/// The authentication key of every site.
pub const KEY: &str = "roamer-key";

/// The head every LISP node shares: `hostname`, its platform ports, the features it needs and
/// its routed underlay port Ethernet1/3 (device `underlay_dev`) with the address lines
/// `underlay` (e.g. `"ip address 192.0.2.1/24"`). `access` are the devices of Ethernet1/1 and
/// Ethernet1/2, access ports of VLAN 10 (none: no VLAN and no interface-vlan feature).
pub fn node(hostname: &str, access: &[&str], underlay_dev: &str, underlay: &[&str]) -> String {
    assert!(access.len() < 3, "Ethernet1/3 is the underlay port");
    let mut c = format!("hostname {hostname}\n");
    for (i, dev) in access.iter().enumerate() {
        c += &format!("roamer platform port Ethernet1/{} {dev}\n", i + 1);
    }
    c += &format!("roamer platform port Ethernet1/3 {underlay_dev}\n");
    c += if access.is_empty() {
        "feature lisp\n"
    } else {
        "feature interface-vlan\nfeature lisp\nvlan 10\n"
    };
    for i in 1..=access.len() {
        c += &format!("interface Ethernet1/{i}\n  switchport\n  switchport access vlan 10\n");
    }
    c += "interface Ethernet1/3\n  no switchport\n";
    for line in underlay {
        c += &format!("  {line}\n");
    }
    c
}

/// A map-server and map-resolver for address family `af` (`ip` or `ipv6`): [`node`] without
/// access ports, then the two roles.
pub fn map_server(hostname: &str, underlay_dev: &str, underlay: &[&str], af: &str) -> String {
    node(hostname, &[], underlay_dev, underlay)
        + &format!("{af} lisp map-server\n{af} lisp map-resolver\n")
}

/// The `lisp site` blocks of a map-server: each site's name and its `eid-prefix` arguments,
/// all authenticated with [`KEY`].
pub fn sites(sites: &[(&str, &[&str])]) -> String {
    let mut c = String::new();
    for (name, prefixes) in sites {
        c += &format!("lisp site {name}\n");
        for prefix in *prefixes {
            c += &format!("  eid-prefix {prefix}\n");
        }
        c += &format!("  authentication-key {KEY}\n");
    }
    c
}

/// An xTR's mapping system for address family `af`: map-resolver and map-server at `ms`.
pub fn mapping_system(af: &str, ms: &str) -> String {
    format!("{af} lisp itr map-resolver {ms}\n{af} lisp etr map-server {ms} key {KEY}\n")
}

/// [`node`] of the usual xTR `xtr{name}`: the host port `{p}{host}{name}` (Ethernet1/1, VLAN 10)
/// and the underlay port `{p}u{name}`.
pub fn xtr_node(p: &str, name: &str, host: char, underlay: &[&str]) -> String {
    node(
        &format!("xtr{name}"),
        &[&format!("{p}{host}{name}")],
        &format!("{p}u{name}"),
        underlay,
    )
}

/// The usual map-server `ms`: IPv4 map-server and map-resolver at 192.0.2.100 on the device
/// `{p}um`, serving `served` ([`sites`]).
pub fn ms(p: &str, served: &[(&str, &[&str])]) -> String {
    map_server(
        "ms",
        &format!("{p}um"),
        &["ip address 192.0.2.100/24"],
        "ip",
    ) + &sites(served)
}

/// `config` with every existing-interface port forced to AF_PACKET (`io af-packet`): for tests
/// that capture on the switch's own port devices (a device an AF_XDP port owns shows a capture
/// nothing) or need vnet-hdr large segments.
pub fn af_packet(config: String) -> String {
    config
        .lines()
        .map(|l| {
            if l.starts_with("roamer platform port ") && !l.contains(" tap:") && !l.contains(" io ")
            {
                format!("{l} io af-packet\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// `config` (its first line `hostname …`) on the kernel backend (`roamer platform backend
/// kernel`).
pub fn kernel(config: String) -> String {
    match config.split_once('\n') {
        Some((hostname, rest)) => {
            format!("{hostname}\nroamer platform backend kernel\n{rest}")
        }
        None => format!("{config}\nroamer platform backend kernel\n"),
    }
}

/// [`node`] of the usual xTR `xtr{name}` on the kernel backend, whose host port Ethernet1/1
/// (`{p}{host}{name}`) is a routed port (the host kernel has no SVIs): its `interface` block is
/// open at the end, for the caller's lines.
pub fn kernel_xtr_node(p: &str, name: &str, host: char, underlay: &[&str]) -> String {
    kernel(node(
        &format!("xtr{name}"),
        &[],
        &format!("{p}u{name}"),
        underlay,
    )) + &format!(
        "roamer platform port Ethernet1/1 {p}{host}{name}\ninterface Ethernet1/1\n  no switchport\n"
    )
}
