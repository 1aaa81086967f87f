//! `roamer lab` on a containerlab topology file: a roamer switch and two linux hosts built as
//! network namespaces, hosts ping each other through the switch, `down` leaves nothing behind.
#![allow(clippy::unwrap_used)]

mod lab_common;

use std::path::PathBuf;
use std::process::Command;

use lab_common::{netns_list, roamer, run};

/// Calls `roamer lab down` when dropped, so a failed assertion leaves no namespace behind.
struct Lab {
    file: PathBuf,
    lab_dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = roamer(&self.lab_dir)
            .args(["lab", "down"])
            .arg(&self.file)
            .output();
    }
}

fn topology(lab: &str) -> String {
    format!(
        r#"name: {lab}
topology:
  nodes:
    sw:
      kind: linux
      image: roamer:latest
      binds:
        - configs/sw.cfg:/etc/roamer/startup-config
    h1:
      kind: linux
      image: alpine:3
      exec:
        - ip addr add 10.10.0.11/24 dev eth1
        - ip route add default via 10.10.0.1
    h2:
      kind: linux
      image: alpine:3
      exec:
        - ip addr add 10.10.0.12/24 dev eth1
        - ip route add default via 10.10.0.1
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
    - endpoints: ["sw:eth2", "h2:eth1"]
"#
    )
}

#[test]
fn up_exec_down_on_a_containerlab_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = format!("rl{}", std::process::id());
    std::fs::create_dir(tmp.path().join("configs")).unwrap();
    std::fs::write(
        tmp.path().join("configs/sw.cfg"),
        lab_common::switch_config("roamer platform backend software"),
    )
    .unwrap();
    let file = tmp.path().join("lab.clab.yml");
    std::fs::write(&file, topology(&lab)).unwrap();
    let lab_dir = tmp.path().join("state");
    let guard = Lab {
        file: file.clone(),
        lab_dir: lab_dir.clone(),
    };

    // Started with a path relative to its directory: what is recorded is absolute.
    let up = run(roamer(&lab_dir)
        .current_dir(tmp.path())
        .args(["lab", "up", "lab.clab.yml"]));
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab_dir.join(&lab).join("state.json")).unwrap())
            .unwrap();
    let startup = tmp.path().join("configs/sw.cfg");
    let sw = state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "sw")
        .unwrap();
    assert_eq!(
        sw["startup_config"],
        startup.display().to_string(),
        "{state}"
    );
    assert_eq!(state["topology"], file.display().to_string(), "{state}");
    let pid = state["daemons"][0]["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    assert!(
        args.contains(&startup.as_os_str().as_encoded_bytes()),
        "the daemon runs on the absolute startup path: {}",
        String::from_utf8_lossy(&cmdline)
    );
    let names = netns_list();
    for node in ["sw", "h1", "h2"] {
        assert!(
            names.contains(&format!("clab-{lab}-{node}")),
            "namespace of {node} missing: {names}"
        );
    }
    // A second `up` of the same lab is refused and changes nothing.
    let again = run(roamer(&lab_dir).args(["lab", "up"]).arg(&file));
    assert!(
        !again.ok && again.stderr.contains("already up"),
        "{}",
        again.stderr
    );

    let ping = run(roamer(&lab_dir)
        .args(["lab", "exec", "h1"])
        .args(roamer_test_support::PING_THREE)
        .arg("10.10.0.12"));
    assert!(ping.ok, "ping h1 → h2: {}{}", ping.stdout, ping.stderr);
    // containerlab's link MTU (9500): jumbo frames cross the switch whole.
    let mtu = run(roamer(&lab_dir).args(["lab", "exec", "h1", "cat", "/sys/class/net/eth1/mtu"]));
    assert_eq!(mtu.stdout.trim(), "9500");
    let jumbo = run(roamer(&lab_dir).args([
        "lab",
        "exec",
        "h1",
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "1",
        "-M",
        "do",
        "-s",
        "8000",
        "10.10.0.12",
    ]));
    assert!(
        jumbo.ok,
        "jumbo ping h1 → h2: {}{}",
        jumbo.stdout, jumbo.stderr
    );
    let gw = run(roamer(&lab_dir).args([
        "lab",
        "exec",
        "h2",
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "1",
        "10.10.0.1",
    ]));
    assert!(gw.ok, "ping h2 → SVI: {}{}", gw.stdout, gw.stderr);

    let table = run(roamer(&lab_dir).args(["lab", "exec", "sw", "show", "mac", "address-table"]));
    assert!(table.ok, "{}", table.stderr);
    let mac = |node: &str| {
        let out =
            run(roamer(&lab_dir).args(["lab", "exec", node, "cat", "/sys/class/net/eth1/address"]));
        let hex: String = out.stdout.trim().split(':').collect();
        format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12])
    };
    for node in ["h1", "h2"] {
        let m = mac(node);
        assert!(
            table.stdout.contains(&m),
            "{node} ({m}) not learned:\n{}",
            table.stdout
        );
    }
    assert!(
        table.stdout.contains("Eth1/1") && table.stdout.contains("Eth1/2"),
        "{}",
        table.stdout
    );

    // `--topo` names the lab explicitly; a node that is not there is an error.
    let named = run(roamer(&lab_dir)
        .args(["lab", "exec", "--topo"])
        .arg(&file)
        .args(["sw", "show", "version"]));
    assert!(named.ok, "{}", named.stderr);
    let code = roamer(&lab_dir)
        .args(["lab", "exec", "h1", "exit", "7"])
        .status()
        .unwrap();
    assert_eq!(
        code.code(),
        Some(7),
        "a shell command's exit status is passed on"
    );
    let missing = run(roamer(&lab_dir).args(["lab", "exec", "nope", "true"]));
    assert!(
        !missing.ok && missing.stderr.contains("no node"),
        "{}",
        missing.stderr
    );

    let down = run(roamer(&lab_dir).args(["lab", "down"]).arg(&file));
    assert!(down.ok, "down: {}{}", down.stdout, down.stderr);
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let temporary = |name: &str| {
        name.len() == 11
            && name.starts_with("rl")
            && name[2..10].chars().all(|c| c.is_ascii_hexdigit())
            && (name.ends_with('a') || name.ends_with('b'))
    };
    let left: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| temporary(n))
        .collect();
    assert!(left.is_empty(), "temporary veth ends left: {left:?}");
    assert!(!lab_dir.join(&lab).exists(), "state directory left");
    drop(guard);
}

#[test]
fn a_failed_up_removes_what_it_created() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = format!("rf{}", std::process::id());
    let file = tmp.path().join("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            "name: {lab}\ntopology:\n  nodes:\n    a:\n      kind: linux\n    b:\n      kind: linux\n      exec:\n        - ip addr add 10.0.0.1/24 dev eth1\n        - exit 3\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .unwrap();
    let lab_dir = tmp.path().join("state");
    let _guard = Lab {
        file: file.clone(),
        lab_dir: lab_dir.clone(),
    };
    let up = run(roamer(&lab_dir).args(["lab", "up"]).arg(&file));
    assert!(!up.ok && up.stderr.contains("exit 3"), "{}", up.stderr);
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
    assert!(!lab_dir.join(&lab).exists(), "state directory left");
}

const SWITCH3: &str = "hostname sw
roamer platform backend software
feature interface-vlan
vlan 10
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 10
interface Ethernet1/3
  switchport
  switchport access vlan 10
interface Vlan10
  ip address 10.10.0.1/24
";

#[test]
fn move_reattaches_a_host_with_its_mac_addresses_and_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = format!("rm{}", std::process::id());
    std::fs::write(tmp.path().join("sw.cfg"), SWITCH3).unwrap();
    let file = tmp.path().join("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            r#"name: {lab}
topology:
  nodes:
    sw: {{kind: linux, image: roamer:latest, binds: ["sw.cfg:/etc/roamer/startup-config"]}}
    h1:
      kind: linux
      exec:
        - ip addr add 10.10.0.11/24 dev eth1
        - ip -6 addr add 2001:db8:a::11/64 dev eth1 nodad
        - ip route add 10.99.0.0/16 via 10.10.0.1
    h2:
      kind: linux
      exec: ["ip addr add 10.10.0.12/24 dev eth1"]
    spare: {{kind: linux}}
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
    - endpoints: ["sw:eth2", "h2:eth1"]
    - endpoints: ["sw:eth3", "spare:eth1"]
"#
        ),
    )
    .unwrap();
    let lab_dir = tmp.path().join("state");
    let _guard = Lab {
        file: file.clone(),
        lab_dir: lab_dir.clone(),
    };
    let lab_exec = |node: &str, cmd: &str| {
        run(roamer(&lab_dir)
            .args(["lab", "exec", node])
            .args(cmd.split(' ')))
    };
    let up = run(roamer(&lab_dir).args(["lab", "up"]).arg(&file));
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let ping = "ping -c 3 -i 0.2 -W 1 10.10.0.12";
    assert!(lab_exec("h1", ping).ok, "before the move");
    let before = lab_exec("h1", "cat /sys/class/net/eth1/address").stdout;
    let spare_mac = lab_exec("spare", "cat /sys/class/net/eth1/address").stdout;

    let mv = run(roamer(&lab_dir).args(["lab", "move", "h1", "--to", "sw:eth3"]));
    assert!(mv.ok, "move: {}{}", mv.stdout, mv.stderr);

    assert_eq!(
        lab_exec("h1", "cat /sys/class/net/eth1/address").stdout,
        before
    );
    assert_eq!(
        lab_exec("spare", "cat /sys/class/net/eth1/address").stdout,
        spare_mac
    );
    let addrs = lab_exec("h1", "ip addr show dev eth1").stdout;
    assert!(
        addrs.contains("10.10.0.11/24") && addrs.contains("2001:db8:a::11/64"),
        "{addrs}"
    );
    let routes = lab_exec("h1", "ip route").stdout;
    assert!(routes.contains("10.99.0.0/16 via 10.10.0.1"), "{routes}");
    let after = lab_exec("h1", ping);
    assert!(after.ok, "after the move: {}{}", after.stdout, after.stderr);
    let hex: String = before.trim().split(':').collect();
    let nx = format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12]);
    let table = lab_exec("sw", "show mac address-table").stdout;
    let line = table.lines().find(|l| l.contains(&nx)).unwrap_or_default();
    assert!(
        line.contains("Eth1/3"),
        "h1 ({nx}) not learned on Eth1/3:\n{table}"
    );

    // The host's old link now ends at the spare node.
    let back = run(roamer(&lab_dir).args(["lab", "move", "h1", "--to", "sw:eth1"]));
    assert!(back.ok, "move back: {}{}", back.stdout, back.stderr);
    assert!(lab_exec("h1", ping).ok, "after moving back");

    let down = run(roamer(&lab_dir).args(["lab", "down"]).arg(&file));
    assert!(down.ok, "down: {}{}", down.stdout, down.stderr);
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
}

#[test]
fn up_never_takes_over_or_removes_what_it_did_not_create() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = format!("rx{}", std::process::id());
    let file = tmp.path().join("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            "name: {lab}\ntopology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n"
        ),
    )
    .unwrap();
    let lab_dir = tmp.path().join("state");
    let _guard = Lab {
        file: file.clone(),
        lab_dir: lab_dir.clone(),
    };
    // A namespace of the same name exists already (containerlab, another runner).
    let theirs = format!("clab-{lab}-b");
    assert!(
        Command::new("ip")
            .args(["netns", "add", &theirs])
            .status()
            .unwrap()
            .success()
    );
    let up = run(roamer(&lab_dir).args(["lab", "up"]).arg(&file));
    let names = netns_list();
    let _ = Command::new("ip").args(["netns", "del", &theirs]).status();
    assert!(
        !up.ok && up.stderr.contains("exists already"),
        "{}",
        up.stderr
    );
    assert!(
        names.contains(&theirs),
        "the existing namespace was removed: {names}"
    );
    assert!(!names.contains(&format!("clab-{lab}-a")), "{names}");
    assert!(!lab_dir.join(&lab).exists(), "state directory left");

    // A startup configuration with an error is reported as FILE:LINE before anything is built.
    std::fs::write(
        tmp.path().join("sw.cfg"),
        "hostname sw\nvlan 10\ninterface Vlan10\n  ip adress 10.1.1.1/24\n",
    )
    .unwrap();
    std::fs::write(
        &file,
        format!("name: {lab}\ntopology:\n  nodes:\n    sw: {{kind: linux, image: roamer, binds: [\"sw.cfg:/etc/roamer/startup-config\"]}}\n"),
    )
    .unwrap();
    let out = roamer(&lab_dir)
        .args(["lab", "up"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sw.cfg:4:"), "{stderr}");
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
}

/// A host moved to a switch port with nothing wired to it: the switch started with that port
/// down (`Link not present`) instead of waiting for its device; `lab move` removes the host's
/// old link and plugs the host in there; the port comes up and the host talks through it, and
/// the old port is down in turn.
#[test]
fn move_to_an_unwired_port_plugs_the_host_in_there() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = format!("ru{}", std::process::id());
    std::fs::write(tmp.path().join("sw.cfg"), SWITCH3).unwrap();
    let file = tmp.path().join("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            r#"name: {lab}
topology:
  nodes:
    sw: {{kind: linux, image: roamer:latest, binds: ["sw.cfg:/etc/roamer/startup-config"]}}
    h1:
      kind: linux
      exec: ["ip addr add 10.10.0.11/24 dev eth1"]
    h2:
      kind: linux
      exec: ["ip addr add 10.10.0.12/24 dev eth1"]
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
    - endpoints: ["sw:eth2", "h2:eth1"]
"#
        ),
    )
    .unwrap();
    let lab_dir = tmp.path().join("state");
    let _guard = Lab {
        file: file.clone(),
        lab_dir: lab_dir.clone(),
    };
    let lab_exec = |node: &str, cmd: &str| {
        run(roamer(&lab_dir)
            .args(["lab", "exec", node])
            .args(cmd.split(' ')))
    };
    let row = |port: &str| {
        lab_exec("sw", "show interface brief")
            .stdout
            .lines()
            .find(|l| l.starts_with(port))
            .unwrap_or_default()
            .to_string()
    };
    let up = run(roamer(&lab_dir).args(["lab", "up"]).arg(&file));
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let r3 = row("Eth1/3");
    assert!(r3.contains("Link not present"), "{r3}");
    let ping = format!(
        "{} lab ping -c 3 -i 0.2 -W 1 10.10.0.12",
        env!("CARGO_BIN_EXE_roamer")
    );
    assert!(lab_exec("h1", &ping).ok, "before the move");

    let mv = run(roamer(&lab_dir).args(["lab", "move", "h1", "--to", "sw:eth3"]));
    assert!(mv.ok, "move: {}{}", mv.stdout, mv.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !row("Eth1/3").contains(" up ") {
        assert!(
            std::time::Instant::now() < deadline,
            "Eth1/3 up: {}",
            row("Eth1/3")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let after = lab_exec("h1", &ping);
    assert!(after.ok, "after the move: {}{}", after.stdout, after.stderr);
    let r1 = row("Eth1/1");
    assert!(r1.contains("Link not present"), "the old port: {r1}");

    let down = run(roamer(&lab_dir).args(["lab", "down"]).arg(&file));
    assert!(down.ok, "down: {}{}", down.stdout, down.stderr);
    assert!(
        !netns_list().contains(&format!("clab-{lab}-")),
        "{}",
        netns_list()
    );
}
