//! `roamer lab up` waits until the lab works: every roamer node's HSRP groups elected (an
//! Active per virtual IP, the others Standby), every map-server's configured sites registered
//! (over the reliable session where it takes them), every ETR's registrations acknowledged and
//! its reliable sessions up to the lab's map-servers that take them. Read from the daemons'
//! show commands in JSON (`| json`) through their control sockets. One status line per node.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab_err;
use super::state::State;
use crate::client::Connection;
use crate::error::RoamerError;
use crate::protocol::Request;

/// How long `lab up` waits by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn show_json(socket: &Path, cmd: &str) -> Result<Value, RoamerError> {
    let mut conn = Connection::open(socket)?;
    let resp = conn.call(&Request::Line {
        line: format!("{cmd} | json"),
    })?;
    if !resp.ok {
        return Err(lab_err(format!("{cmd}: {}", resp.output.trim())));
    }
    serde_json::from_str(&resp.output).map_err(|e| lab_err(format!("{cmd} | json: {e}")))
}

/// What a node's configuration asks to converge.
#[derive(Debug, Default)]
struct Roles {
    map_server: bool,
    reliable: bool,
    etr: bool,
    /// The map-servers the ETR registers with.
    map_servers: Vec<String>,
    /// Its interfaces' IPv4/IPv6 addresses (without the prefix length).
    addresses: Vec<String>,
    /// The EID prefixes it registers as configured (`database-mapping`); dynamic EIDs are
    /// registered only once a host is detected, so nothing is waited for them.
    mappings: Vec<String>,
}

fn roles(cfg: &Value) -> Roles {
    let lisp = &cfg["lisp"];
    let afs = [&lisp["ipv4"], &lisp["ipv6"]];
    let mut map_servers: Vec<String> = afs
        .iter()
        .flat_map(|af| af["etr-map-server"].as_array().into_iter().flatten())
        .filter_map(|m| m["address"].as_str().map(str::to_string))
        .collect();
    map_servers.sort();
    map_servers.dedup();
    let mappings = afs
        .iter()
        .flat_map(|af| af["database-mapping"].as_array().into_iter().flatten())
        .filter_map(|m| m["eid-prefix"].as_str().map(str::to_string))
        .collect();
    let addresses = cfg["interface"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, i)| {
            ["ipv4", "ipv6"]
                .into_iter()
                .flat_map(move |k| i[k].as_array().into_iter().flatten())
        })
        .filter_map(|a| a.as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .collect();
    Roles {
        map_server: afs
            .iter()
            .any(|af| af["map-server"].as_bool() == Some(true)),
        reliable: lisp["reliable-registration-disabled"].as_bool() != Some(true),
        etr: afs.iter().any(|af| af["etr"].as_bool() == Some(true)),
        map_servers,
        addresses,
        mappings,
    }
}

/// An HSRP group row: (interface/group, virtual IP, state).
fn hsrp_rows(brief: &Value) -> Vec<(String, String, String)> {
    let rows = &brief["TABLE_grp_detail"]["ROW_grp_detail"];
    let list: Vec<&Value> = match rows {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![rows],
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                format!("{}/{}", s("sh_if_index"), s("sh_group_num")),
                s("sh_vip"),
                s("sh_group_state"),
            )
        })
        .collect()
}

/// One node's state: what is converged, what is missing.
#[derive(Debug, Default)]
struct Check {
    ok: Vec<String>,
    missing: Vec<String>,
}

struct Node<'a> {
    name: &'a str,
    socket: &'a Path,
    roles: Roles,
}

/// The HSRP, registration and session state of one node.
fn check(
    node: &Node<'_>,
    active_vips: &BTreeSet<String>,
    reliable_ms: &[String],
    mappings: &BTreeSet<String>,
) -> Check {
    let mut c = Check::default();
    let fail = |c: &mut Check, e: RoamerError| c.missing.push(format!("no answer ({e})"));
    match show_json(node.socket, "show hsrp brief") {
        Ok(brief) => {
            let rows = hsrp_rows(&brief);
            let unelected: Vec<String> = rows
                .iter()
                .filter(|(_, vip, state)| {
                    !(state == "Active" || (state == "Standby" && active_vips.contains(vip)))
                })
                .map(|(g, _, state)| format!("HSRP {g} {state}"))
                .collect();
            if !rows.is_empty() && unelected.is_empty() {
                let states: Vec<String> = rows.iter().map(|(g, _, s)| format!("{g} {s}")).collect();
                c.ok.push(format!("HSRP {}", states.join(", ")));
            }
            c.missing.extend(unelected);
        }
        Err(e) => fail(&mut c, e),
    }
    if node.roles.map_server {
        match show_json(node.socket, "show lisp site") {
            Ok(site) => {
                let rows: Vec<&Value> = site["TABLE_site"]["ROW_site"]
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let prefix = |r: &Value| r["prefix"].as_str().unwrap_or("?").to_string();
                // Waited for: the prefixes the lab's ETRs have as database-mapping (a site
                // prefix only dynamic EIDs register under stays unregistered until a host is
                // detected).
                let registered = |r: &&Value| r["registered"].as_bool() == Some(true);
                let unregistered: Vec<String> = rows
                    .iter()
                    .filter(|r| !registered(r) && mappings.contains(&prefix(r)))
                    .map(|r| prefix(r))
                    .collect();
                let unreliable: Vec<String> = rows
                    .iter()
                    .filter(|r| {
                        registered(r)
                            && node.roles.reliable
                            && r["reliable"].as_bool() != Some(true)
                    })
                    .map(|r| prefix(r))
                    .collect();
                let rows: Vec<&&Value> = rows.iter().filter(|r| registered(r)).collect();
                if !unregistered.is_empty() {
                    c.missing
                        .push(format!("not registered: {}", unregistered.join(" ")));
                } else if !unreliable.is_empty() {
                    c.missing.push(format!(
                        "registered, not yet over a reliable session: {}",
                        unreliable.join(" ")
                    ));
                } else {
                    c.ok.push(format!(
                        "{} prefix(es) registered{}",
                        rows.len(),
                        if node.roles.reliable {
                            " (reliable)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Err(e) => fail(&mut c, e),
        }
    }
    // An ETR with only dynamic EIDs registers (and opens its sessions) once a host is detected.
    if node.roles.etr && !node.roles.map_servers.is_empty() && !node.roles.mappings.is_empty() {
        match show_json(node.socket, "show lisp statistics") {
            Ok(stats) => {
                let acks = stats["xtr"]["map_notifies_accepted"].as_u64().unwrap_or(0)
                    + stats["reliable"]["etr"]["acks"].as_u64().unwrap_or(0);
                if acks == 0 {
                    c.missing.push(format!(
                        "registration not acknowledged by {}",
                        node.roles.map_servers.join(" ")
                    ));
                } else {
                    c.ok.push("registration acknowledged".into());
                }
            }
            Err(e) => fail(&mut c, e),
        }
        let want: Vec<&String> = node
            .roles
            .map_servers
            .iter()
            .filter(|m| reliable_ms.contains(m))
            .collect();
        if !want.is_empty() {
            match show_json(node.socket, "show lisp session") {
                Ok(sessions) => {
                    let up: BTreeSet<String> = sessions["sessions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|s| s["state"].as_str() == Some("Up"))
                        .filter_map(|s| s["peer"].as_str())
                        .map(|p| p.rsplit_once(':').map_or(p, |(a, _)| a).to_string())
                        .collect();
                    let down: Vec<&str> = want
                        .iter()
                        .filter(|m| !up.contains(m.as_str()))
                        .map(|m| m.as_str())
                        .collect();
                    if down.is_empty() {
                        c.ok.push(format!("{} reliable session(s) up", want.len()));
                    } else {
                        c.missing
                            .push(format!("reliable session to {} not up", down.join(" ")));
                    }
                }
                Err(e) => fail(&mut c, e),
            }
        }
    }
    c
}

/// Waits until every roamer node of the lab has converged (or `timeout`); prints one status
/// line per node; an error names what is missing.
pub fn wait(st: &State, timeout: Duration) -> Result<(), RoamerError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut nodes = Vec::new();
    for n in &st.nodes {
        let Some(socket) = &n.socket else { continue };
        let cfg = loop {
            match show_json(socket, "show running-config") {
                Ok(cfg) => break cfg,
                Err(e) if Instant::now() >= deadline => {
                    return Err(lab_err(format!("node {}: {e}", n.name)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        nodes.push(Node {
            name: &n.name,
            socket,
            roles: roles(&cfg),
        });
    }
    // The lab's map-servers that take reliable registrations, by address.
    let reliable_ms: Vec<String> = nodes
        .iter()
        .filter(|n| n.roles.map_server && n.roles.reliable)
        .flat_map(|n| n.roles.addresses.iter().cloned())
        .collect();
    let mappings: BTreeSet<String> = nodes
        .iter()
        .flat_map(|n| n.roles.mappings.iter().cloned())
        .collect();
    loop {
        let active_vips: BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| show_json(n.socket, "show hsrp brief").ok())
            .flat_map(|b| hsrp_rows(&b))
            .filter(|(_, _, state)| state == "Active")
            .map(|(_, vip, _)| vip)
            .collect();
        let checks: Vec<Check> = nodes
            .iter()
            .map(|n| check(n, &active_vips, &reliable_ms, &mappings))
            .collect();
        let converged = checks.iter().all(|c| c.missing.is_empty());
        if converged || Instant::now() >= deadline {
            let secs = started.elapsed().as_secs_f64();
            for (n, c) in nodes.iter().zip(&checks) {
                let what = if c.missing.is_empty() {
                    if c.ok.is_empty() {
                        "ready".to_string()
                    } else {
                        format!("ready: {}", c.ok.join("; "))
                    }
                } else {
                    format!("WAITING: {}", c.missing.join("; "))
                };
                println!("  {:<10} {what}", n.name);
            }
            if converged {
                println!("lab {}: converged in {secs:.1} s", st.lab);
                return Ok(());
            }
            let missing: Vec<String> = nodes
                .iter()
                .zip(&checks)
                .filter(|(_, c)| !c.missing.is_empty())
                .map(|(n, c)| format!("{}: {}", n.name, c.missing.join("; ")))
                .collect();
            return Err(lab_err(format!(
                "lab {} not converged after {:.0} s (it stays up; `roamer lab down` removes it): {}",
                st.lab,
                secs,
                missing.join(" | ")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_come_from_the_running_configuration() {
        let cfg: Value = serde_json::from_str(r#"{"interface":{"Ethernet1/1":{"ipv4":["209.165.201.41/24"]}},"lisp":{"ipv4":{"map-resolver":true,"map-server":true},"reliable-registration-disabled":true}}"#).unwrap();
        let r = roles(&cfg);
        assert!(r.map_server && !r.reliable && !r.etr);
        assert_eq!(r.addresses, vec!["209.165.201.41"]);
        let cfg: Value = serde_json::from_str(r#"{"lisp":{"ipv4":{"etr":true,"etr-map-server":[{"address":"209.165.201.31"},{"address":"209.165.201.41"}]}}}"#).unwrap();
        let r = roles(&cfg);
        assert!(r.etr && !r.map_server && r.reliable);
        assert_eq!(r.map_servers, vec!["209.165.201.31", "209.165.201.41"]);
    }

    #[test]
    fn hsrp_rows_are_read_from_the_nxos_json() {
        let brief: Value = serde_json::from_str(r#"{"TABLE_grp_detail":{"ROW_grp_detail":[{"sh_group_num":"1","sh_group_state":"Listen","sh_if_index":"Vlan10","sh_vip":"10.1.1.1"}]}}"#).unwrap();
        assert_eq!(
            hsrp_rows(&brief),
            vec![("Vlan10/1".into(), "10.1.1.1".into(), "Listen".into())]
        );
    }
}
