//! `roamer lab move HOST --to NODE:IFACE`: the host's interface arrives at another node's port
//! the way a migrated VM arrives: same interface name, MAC, addresses and routes.
//!
//! The switch-side devices are never replaced (a running roamer has its ports bound by ifindex):
//! the host's device and the device at the far end of the target port's link trade places. The
//! host gets the device wired to the target port, renamed to its interface name and given its
//! MAC, addresses and routes; the node that held the target port's far end (a parking node) gets
//! the host's old device, wired to the host's old port, under its own name and MAC.
//!
//! A target port with nothing wired to it (its switch runs with it down, `Link not present`)
//! gets a new link to the host instead, and the host's old link is removed: its old port goes
//! down the same way. Either way the host then announces itself (see `announce`).

use std::io::Write;

use serde_json::Value;

use super::announce::Announce;
use super::state::{LinkState, State};
use super::{ip, lab_err};
use crate::error::RoamerError;

/// An interface's MAC, addresses (`ADDR/LEN`, family) and non-kernel routes (`ip route` args).
#[derive(Debug)]
struct Identity {
    mac: String,
    addrs: Vec<(String, bool)>,
    routes: Vec<(Vec<String>, bool)>,
}

fn json(args: &[&str]) -> Result<Value, RoamerError> {
    let out = ip(args)?;
    serde_json::from_str(&out).map_err(|e| lab_err(format!("ip {}: {e}", args.join(" "))))
}

fn identity(ns: &str, dev: &str) -> Result<Identity, RoamerError> {
    let link = json(&["-n", ns, "-j", "addr", "show", "dev", dev])?;
    let v4 = json(&["-n", ns, "-j", "-4", "route", "show", "dev", dev])?;
    let v6 = json(&["-n", ns, "-j", "-6", "route", "show", "dev", dev])?;
    from_json(dev, &link, &v4, &v6).ok_or_else(|| lab_err(format!("{ns}: no {dev} with a MAC")))
}

/// The identity in `ip -j addr show dev DEV` and `ip -j -4|-6 route show dev DEV` output.
fn from_json(dev: &str, link: &Value, v4: &Value, v6: &Value) -> Option<Identity> {
    let entry = link.get(0)?;
    let mac = entry.get("address").and_then(Value::as_str)?.to_string();
    let mut addrs = Vec::new();
    for a in entry
        .get("addr_info")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let v6 = a.get("family").and_then(Value::as_str) == Some("inet6");
        // The link-local address comes back by itself from the (same) MAC.
        if v6 && a.get("scope").and_then(Value::as_str) == Some("link") {
            continue;
        }
        if let (Some(local), Some(len)) = (
            a.get("local").and_then(Value::as_str),
            a.get("prefixlen").and_then(Value::as_u64),
        ) {
            addrs.push((format!("{local}/{len}"), v6));
        }
    }
    let mut routes = Vec::new();
    for (list, v6) in [(v4, false), (v6, true)] {
        for r in list.as_array().into_iter().flatten() {
            let s = |k: &str| r.get(k).and_then(Value::as_str);
            // Kernel routes come back with the addresses; multipath routes are not a host's.
            if s("protocol") == Some("kernel")
                || s("type").is_some_and(|t| t != "unicast")
                || r.get("nexthops").is_some()
            {
                continue;
            }
            let Some(dst) = s("dst") else { continue };
            let mut args = vec![dst.to_string()];
            if let Some(gw) = s("gateway") {
                args.extend(["via".to_string(), gw.to_string()]);
            }
            args.extend(["dev".to_string(), dev.to_string()]);
            if let Some(m) = r.get("metric").and_then(Value::as_u64) {
                args.extend(["metric".to_string(), m.to_string()]);
            }
            if let Some(src) = s("prefsrc") {
                args.extend(["src".to_string(), src.to_string()]);
            }
            let flags = r.get("flags").and_then(Value::as_array);
            if flags.is_some_and(|f| f.iter().any(|x| x.as_str() == Some("onlink"))) {
                args.push("onlink".to_string());
            }
            routes.push((args, v6));
        }
    }
    // Routes without a gateway first: a gateway must be reachable when its route is added.
    routes.sort_by_key(|(args, _)| args.get(1).is_some_and(|a| a == "via"));
    Some(Identity { mac, addrs, routes })
}

/// Splits `NODE:IFACE`.
fn endpoint(s: &str) -> Result<(&str, &str), RoamerError> {
    s.split_once(':')
        .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        .ok_or_else(|| lab_err(format!("{s:?}: expected NODE:IFACE")))
}

fn netns<'a>(st: &'a State, node: &str) -> Result<&'a str, RoamerError> {
    st.nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.netns.as_str())
        .ok_or_else(|| lab_err(format!("lab {} has no node {node}", st.lab)))
}

/// Moves `host` (a node with one link, or `NODE:IFACE`) to the port `to` (`NODE:IFACE`).
pub fn move_host(
    st: &mut State,
    dir: &std::path::Path,
    host: &str,
    to: &str,
    announce: Announce,
) -> Result<(), RoamerError> {
    let (to_node, _) = endpoint(to)?;
    netns(st, to_node)?;
    let is_host = |e: &str| match host.split_once(':') {
        Some(_) => e == host,
        None => e.split_once(':').is_some_and(|(n, _)| n == host),
    };
    let mut host_links = st.links.iter().enumerate().filter_map(|(i, l)| {
        if is_host(&l.a) {
            Some((i, l.a.clone(), l.b.clone()))
        } else if is_host(&l.b) {
            Some((i, l.b.clone(), l.a.clone()))
        } else {
            None
        }
    });
    let (hi, host_end, old_port) = host_links
        .next()
        .ok_or_else(|| lab_err(format!("{host} has no link in lab {}", st.lab)))?;
    if host_links.next().is_some() {
        return Err(lab_err(format!(
            "{host} has several links; name one as {host}:IFACE"
        )));
    }
    if old_port == to {
        let _ = writeln!(std::io::stdout(), "{host_end} is already at {to}");
        return Ok(());
    }
    let wired = st.links.iter().enumerate().find_map(|(i, l)| {
        if l.a == to {
            Some((i, l.b.clone()))
        } else if l.b == to {
            Some((i, l.a.clone()))
        } else {
            None
        }
    });
    let Some((ti, park_end)) = wired else {
        return move_to_unwired(st, dir, hi, &host_end, &old_port, to, announce);
    };
    if ti == hi {
        return Err(lab_err(format!("{to} is {host_end} itself")));
    }
    let (h_node, h_if) = endpoint(&host_end)?;
    let (p_node, p_if) = endpoint(&park_end)?;
    let (h_ns, p_ns) = (
        netns(st, h_node)?.to_string(),
        netns(st, p_node)?.to_string(),
    );
    let host_id = identity(&h_ns, h_if)?;
    let park_id = identity(&p_ns, p_if)?;
    let tmp_h = format!("rlmv{}h", std::process::id() % 100_000_000);
    let tmp_p = format!("rlmv{}p", std::process::id() % 100_000_000);

    // Both devices leave their namespaces under temporary names, then trade places.
    for (ns, dev, tmp, dest) in [(&h_ns, h_if, &tmp_h, &p_ns), (&p_ns, p_if, &tmp_p, &h_ns)] {
        ip(&["-n", ns, "link", "set", dev, "down"])?;
        ip(&["-n", ns, "link", "set", dev, "name", tmp])?;
        ip(&["-n", ns, "link", "set", tmp, "netns", dest])?;
    }
    // The parking node: the host's old device under the parking name and MAC.
    ip(&["-n", &p_ns, "link", "set", &tmp_h, "name", p_if])?;
    ip(&["-n", &p_ns, "link", "set", p_if, "address", &park_id.mac])?;
    ip(&["-n", &p_ns, "link", "set", p_if, "up"])?;
    // The host: the device wired to the target port, with the host's identity.
    ip(&["-n", &h_ns, "link", "set", &tmp_p, "name", h_if])?;
    dress(&h_ns, h_if, &host_id, announce)?;
    st.links[hi] = LinkState {
        a: host_end.clone(),
        b: to.to_string(),
        tmp_a: st.links[hi].tmp_a.clone(),
        tmp_b: st.links[hi].tmp_b.clone(),
    };
    st.links[ti] = LinkState {
        a: park_end.clone(),
        b: old_port.clone(),
        tmp_a: st.links[ti].tmp_a.clone(),
        tmp_b: st.links[ti].tmp_b.clone(),
    };
    st.save(dir)?;
    // Never a panic on a closed stdout: the caller may still have a lab to tear down.
    let _ = writeln!(
        std::io::stdout(),
        "{host_end} moved from {old_port} to {to} ({park_end} now at {old_port})"
    );
    Ok(())
}

/// Gives the host's device `h_if` (in namespace `h_ns`) the host's MAC, addresses and routes,
/// brings it up, and has the host announce itself as after a live migration.
fn dress(
    h_ns: &str,
    h_if: &str,
    host_id: &Identity,
    announce: Announce,
) -> Result<(), RoamerError> {
    ip(&["-n", h_ns, "link", "set", h_if, "address", &host_id.mac])?;
    ip(&["-n", h_ns, "link", "set", h_if, "up"])?;
    for (addr, v6) in &host_id.addrs {
        let mut args = vec!["-n", h_ns, "addr", "add", addr.as_str(), "dev", h_if];
        if *v6 {
            args.push("nodad");
        }
        ip(&args)?;
    }
    for (route, v6) in &host_id.routes {
        let mut args = vec![
            "-n",
            h_ns,
            if *v6 { "-6" } else { "-4" },
            "route",
            "replace",
        ];
        args.extend(route.iter().map(String::as_str));
        ip(&args)?;
    }
    // As the hypervisor (and the guest) right after a live migration: the network sees it.
    if announce != Announce::None {
        let exe = std::env::current_exe()
            .map_err(|e| lab_err(format!("cannot find the roamer binary: {e}")))?;
        let exe = exe.to_string_lossy();
        let mut args = vec![
            "netns",
            "exec",
            h_ns,
            exe.as_ref(),
            "lab",
            "announce",
            h_if,
            "--mac",
            host_id.mac.as_str(),
            "--kind",
            match announce {
                Announce::Garp => "garp",
                Announce::Rarp => "rarp",
                _ => "both",
            },
        ];
        for (addr, v6) in &host_id.addrs {
            if !*v6 && let Some((a, _)) = addr.split_once('/') {
                args.extend(["--ip", a]);
            }
        }
        ip(&args)?;
    }
    Ok(())
}

/// The move to a port with nothing wired to it (its device absent: the switch has it down,
/// `Link not present`): the host's old link is removed (its old port goes down the same way)
/// and a new link is made between the port and the host, as a host plugged in elsewhere.
fn move_to_unwired(
    st: &mut State,
    dir: &std::path::Path,
    hi: usize,
    host_end: &str,
    old_port: &str,
    to: &str,
    announce: Announce,
) -> Result<(), RoamerError> {
    let (to_node, to_if) = endpoint(to)?;
    let (h_node, h_if) = endpoint(host_end)?;
    let to_ns = netns(st, to_node)?.to_string();
    let h_ns = netns(st, h_node)?.to_string();
    if ip(&["-n", &to_ns, "link", "show", to_if]).is_ok() {
        return Err(lab_err(format!(
            "{to} is not wired in the topology but {to_node} has an interface {to_if}"
        )));
    }
    let host_id = identity(&h_ns, h_if)?;
    let tmp_h = format!("rlmv{}h", std::process::id() % 100_000_000);
    let tmp_p = format!("rlmv{}p", std::process::id() % 100_000_000);
    // The old link goes (both ends: a veth pair), the new one is recorded before it exists
    // in the root namespace, so that `down` removes a half-made one.
    ip(&["-n", &h_ns, "link", "del", h_if])?;
    st.links[hi] = LinkState {
        a: host_end.to_string(),
        b: to.to_string(),
        tmp_a: tmp_h.clone(),
        tmp_b: tmp_p.clone(),
    };
    st.save(dir)?;
    ip(&[
        "link", "add", &tmp_h, "type", "veth", "peer", "name", &tmp_p,
    ])?;
    ip(&["link", "set", &tmp_p, "netns", &to_ns])?;
    ip(&["-n", &to_ns, "link", "set", &tmp_p, "name", to_if])?;
    ip(&["-n", &to_ns, "link", "set", to_if, "up"])?;
    ip(&["link", "set", &tmp_h, "netns", &h_ns])?;
    ip(&["-n", &h_ns, "link", "set", &tmp_h, "name", h_if])?;
    dress(&h_ns, h_if, &host_id, announce)?;
    let _ = writeln!(
        std::io::stdout(),
        "{host_end} moved from {old_port} to {to} (a new link; {old_port} is now unwired)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_mac_global_addresses_and_non_kernel_routes() {
        let link: Value = serde_json::from_str(r#"[{"ifname":"eth1","address":"96:b7:16:63:e4:f4","addr_info":[{"family":"inet","local":"10.1.1.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","nodad":true},{"family":"inet6","local":"fe80::94b7:16ff:fe63:e4f4","prefixlen":64,"scope":"link"}]}]"#).unwrap();
        let v4: Value = serde_json::from_str(r#"[{"dst":"default","gateway":"10.1.1.254","flags":[]},{"dst":"10.1.1.0/24","protocol":"kernel","scope":"link","prefsrc":"10.1.1.1","flags":[]},{"dst":"10.9.0.0/16","gateway":"10.1.1.2","metric":5,"flags":["onlink"]},{"dst":"10.8.0.0/16","flags":[]}]"#).unwrap();
        let v6: Value = serde_json::from_str(r#"[{"dst":"2001:db8::/64","protocol":"kernel","metric":256,"flags":[]},{"dst":"fe80::/64","protocol":"kernel","metric":256,"flags":[]},{"dst":"default","gateway":"2001:db8::fe","metric":1024,"flags":[]}]"#).unwrap();
        let id = from_json("eth1", &link, &v4, &v6).unwrap();
        assert_eq!(id.mac, "96:b7:16:63:e4:f4");
        assert_eq!(
            id.addrs,
            vec![
                ("10.1.1.1/24".to_string(), false),
                ("2001:db8::1/64".to_string(), true)
            ]
        );
        let routes: Vec<String> = id.routes.iter().map(|(r, _)| r.join(" ")).collect();
        assert_eq!(
            routes,
            vec![
                "10.8.0.0/16 dev eth1",
                "default via 10.1.1.254 dev eth1",
                "10.9.0.0/16 via 10.1.1.2 dev eth1 metric 5 onlink",
                "default via 2001:db8::fe dev eth1 metric 1024",
            ]
        );
        assert!(from_json("eth1", &Value::Array(vec![]), &v4, &v6).is_none());
    }
}
