//! `roamer lab` on a containerlab topology file: a roamer switch and two linux hosts built as
//! network namespaces, hosts ping each other through the switch, `down` leaves nothing behind.
#![allow(clippy::unwrap_used)]

mod lab_common;

use std::path::PathBuf;
use std::process::Command;

use lab_common::{Out, netns_list, roamer, run};

/// One test's lab: `TAG<pid>`, its topology file and state directory in a temporary directory;
/// `roamer lab down` when dropped, so a failed assertion leaves no namespace behind.
struct Lab {
    name: String,
    file: PathBuf,
    lab_dir: PathBuf,
    tmp: tempfile::TempDir,
}

impl Lab {
    /// Writes `files` (name, text) and the topology `topology(name)` as `lab.clab.yml`.
    fn new(tag: &str, files: &[(&str, &str)], topology: impl FnOnce(&str) -> String) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let name = format!("{tag}{}", std::process::id());
        for (file, text) in files {
            let path = tmp.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let file = tmp.path().join("lab.clab.yml");
        std::fs::write(&file, topology(&name)).unwrap();
        Lab {
            name,
            file,
            lab_dir: tmp.path().join("state"),
            tmp,
        }
    }

    fn roamer(&self) -> Command {
        roamer(&self.lab_dir)
    }

    /// The move tests' lab: the switch `sw`, its access ports Ethernet1/1 to 1/3 in VLAN 10,
    /// and the nodes and links of `rest`, the topology after the switch's node.
    fn three_port_switch(tag: &str, rest: &str) -> Lab {
        let config = lab_common::switch_config("roamer platform backend software", 3);
        Lab::new(tag, &[("sw.cfg", &config)], |lab| {
            format!(
                "name: {lab}\ntopology:\n  nodes:\n    sw: {{kind: linux, image: roamer:latest, binds: [\"sw.cfg:/etc/roamer/startup-config\"]}}\n{rest}"
            )
        })
    }

    /// `roamer lab VERB` on this lab's file, with `args` after it.
    fn lab(&self, verb: &str, args: &[&str]) -> Out {
        run(self.roamer().args(["lab", verb]).arg(&self.file).args(args))
    }

    /// `roamer lab exec NODE CMD…`, the command's words split at spaces.
    fn exec(&self, node: &str, cmd: &str) -> Out {
        run(self
            .roamer()
            .args(["lab", "exec", node])
            .args(cmd.split(' ')))
    }

    /// `roamer lab move HOST --to TO`, which must succeed.
    fn move_host(&self, host: &str, to: &str) {
        let mv = run(self.roamer().args(["lab", "move", host, "--to", to]));
        assert!(mv.ok, "move to {to}: {}{}", mv.stdout, mv.stderr);
    }

    /// None of this lab's namespaces exists.
    fn assert_no_namespaces(&self) {
        lab_common::assert_no_namespaces_of(&self.name);
    }

    /// `roamer lab down` succeeds and leaves no namespace.
    fn assert_down(&self) {
        let down = self.lab("down", &[]);
        assert!(down.ok, "down: {}{}", down.stdout, down.stderr);
        self.assert_no_namespaces();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.lab("down", &[]);
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
    let config = lab_common::switch_config("roamer platform backend software", 2);
    let guard = Lab::new("rl", &[("configs/sw.cfg", &config)], topology);
    let (lab, file, lab_dir) = (&guard.name, &guard.file, &guard.lab_dir);

    // Started with a path relative to its directory: what is recorded is absolute.
    let up = run(guard
        .roamer()
        .current_dir(guard.tmp.path())
        .args(["lab", "up", "lab.clab.yml"]));
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let state = lab_common::lab_state(lab_dir, lab);
    let startup = guard.tmp.path().join("configs/sw.cfg");
    let sw = lab_common::state_entry(&state, "nodes", "name", "sw");
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
    let again = guard.lab("up", &[]);
    assert!(
        !again.ok && again.stderr.contains("already up"),
        "{}",
        again.stderr
    );

    let ping = run(guard
        .roamer()
        .args(["lab", "exec", "h1"])
        .args(roamer_test_support::PING_THREE)
        .arg("10.10.0.12"));
    assert!(ping.ok, "ping h1 → h2: {}{}", ping.stdout, ping.stderr);
    // containerlab's link MTU (9500): jumbo frames cross the switch whole.
    let mtu = guard.exec("h1", "cat /sys/class/net/eth1/mtu");
    assert_eq!(mtu.stdout.trim(), "9500");
    let jumbo = guard.exec("h1", "ping -c 2 -i 0.2 -W 1 -M do -s 8000 10.10.0.12");
    assert!(
        jumbo.ok,
        "jumbo ping h1 → h2: {}{}",
        jumbo.stdout, jumbo.stderr
    );
    let gw = guard.exec("h2", "ping -c 2 -i 0.2 -W 1 10.10.0.1");
    assert!(gw.ok, "ping h2 → SVI: {}{}", gw.stdout, gw.stderr);

    let table = guard.exec("sw", "show mac address-table");
    assert!(table.ok, "{}", table.stderr);
    for node in ["h1", "h2"] {
        let m = mac(&guard, node);
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
    let named = run(guard
        .roamer()
        .args(["lab", "exec", "--topo"])
        .arg(file)
        .args(["sw", "show", "version"]));
    assert!(named.ok, "{}", named.stderr);
    let code = guard
        .roamer()
        .args(["lab", "exec", "h1", "exit", "7"])
        .status()
        .unwrap();
    assert_eq!(
        code.code(),
        Some(7),
        "a shell command's exit status is passed on"
    );
    let missing = guard.exec("nope", "true");
    assert!(
        !missing.ok && missing.stderr.contains("no node"),
        "{}",
        missing.stderr
    );

    guard.assert_down();
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
    assert!(!lab_dir.join(lab).exists(), "state directory left");
    drop(guard);
}

/// The MAC address of `node`'s eth1 as `show mac address-table` writes it (`xxxx.xxxx.xxxx`).
fn mac(lab: &Lab, node: &str) -> String {
    let out = lab.exec(node, "cat /sys/class/net/eth1/address");
    let hex: String = out.stdout.trim().split(':').collect();
    format!("{}.{}.{}", &hex[0..4], &hex[4..8], &hex[8..12])
}

#[test]
fn a_failed_up_removes_what_it_created() {
    let lab = Lab::new("rf", &[], |lab| {
        format!(
            "name: {lab}\ntopology:\n  nodes:\n    a:\n      kind: linux\n    b:\n      kind: linux\n      exec:\n        - ip addr add 10.0.0.1/24 dev eth1\n        - exit 3\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        )
    });
    let up = lab.lab("up", &[]);
    assert!(!up.ok && up.stderr.contains("exit 3"), "{}", up.stderr);
    lab.assert_no_namespaces();
    assert!(
        !lab.lab_dir.join(&lab.name).exists(),
        "state directory left"
    );
}

#[test]
fn move_reattaches_a_host_with_its_mac_addresses_and_routes() {
    let lab = Lab::three_port_switch(
        "rm",
        r#"    h1:
      kind: linux
      exec:
        - ip addr add 10.10.0.11/24 dev eth1
        - ip -6 addr add 2001:db8:a::11/64 dev eth1 nodad
        - ip route add 10.99.0.0/16 via 10.10.0.1
    h2:
      kind: linux
      exec: ["ip addr add 10.10.0.12/24 dev eth1"]
    spare: {kind: linux}
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
    - endpoints: ["sw:eth2", "h2:eth1"]
    - endpoints: ["sw:eth3", "spare:eth1"]
"#,
    );
    let up = lab.lab("up", &[]);
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let ping = "ping -c 3 -i 0.2 -W 1 10.10.0.12";
    assert!(lab.exec("h1", ping).ok, "before the move");
    let before = lab.exec("h1", "cat /sys/class/net/eth1/address").stdout;
    let spare_mac = lab.exec("spare", "cat /sys/class/net/eth1/address").stdout;

    lab.move_host("h1", "sw:eth3");

    assert_eq!(
        lab.exec("h1", "cat /sys/class/net/eth1/address").stdout,
        before
    );
    assert_eq!(
        lab.exec("spare", "cat /sys/class/net/eth1/address").stdout,
        spare_mac
    );
    let addrs = lab.exec("h1", "ip addr show dev eth1").stdout;
    assert!(
        addrs.contains("10.10.0.11/24") && addrs.contains("2001:db8:a::11/64"),
        "{addrs}"
    );
    let routes = lab.exec("h1", "ip route").stdout;
    assert!(routes.contains("10.99.0.0/16 via 10.10.0.1"), "{routes}");
    let after = lab.exec("h1", ping);
    assert!(after.ok, "after the move: {}{}", after.stdout, after.stderr);
    let nx = mac(&lab, "h1");
    let table = lab.exec("sw", "show mac address-table").stdout;
    let line = table.lines().find(|l| l.contains(&nx)).unwrap_or_default();
    assert!(
        line.contains("Eth1/3"),
        "h1 ({nx}) not learned on Eth1/3:\n{table}"
    );

    // The host's old link now ends at the spare node.
    lab.move_host("h1", "sw:eth1");
    assert!(lab.exec("h1", ping).ok, "after moving back");
    lab.assert_down();
}

#[test]
fn up_never_takes_over_or_removes_what_it_did_not_create() {
    let lab = Lab::new("rx", &[], |lab| {
        format!(
            "name: {lab}\ntopology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n"
        )
    });
    // A namespace of the same name exists already (containerlab, another runner).
    let theirs = format!("clab-{}-b", lab.name);
    assert!(
        Command::new("ip")
            .args(["netns", "add", &theirs])
            .status()
            .unwrap()
            .success()
    );
    let up = lab.lab("up", &[]);
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
    assert!(!names.contains(&format!("clab-{}-a", lab.name)), "{names}");
    assert!(
        !lab.lab_dir.join(&lab.name).exists(),
        "state directory left"
    );

    // A startup configuration with an error is reported as FILE:LINE before anything is built.
    lab_common::write_one_switch_lab(lab.tmp.path(), &lab.file, &lab.name, BAD_SVI_ADDRESS);
    lab_common::assert_config_error(lab.roamer().args(["lab", "up"]).arg(&lab.file), "sw.cfg:4:");
    lab.assert_no_namespaces();
}

/// A startup configuration whose line 4 is wrong.
const BAD_SVI_ADDRESS: &str = "hostname sw\nvlan 10\ninterface Vlan10\n  ip adress 10.1.1.1/24\n";

/// A host moved to a switch port with nothing wired to it: the switch started with that port
/// down (`Link not present`) instead of waiting for its device; `lab move` removes the host's
/// old link and plugs the host in there; the port comes up and the host talks through it, and
/// the old port is down in turn.
#[test]
fn move_to_an_unwired_port_plugs_the_host_in_there() {
    let lab = Lab::three_port_switch(
        "ru",
        r#"    h1: {kind: linux, exec: ["ip addr add 10.10.0.11/24 dev eth1"]}
    h2: {kind: linux, exec: ["ip addr add 10.10.0.12/24 dev eth1"]}
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
    - endpoints: ["sw:eth2", "h2:eth1"]
"#,
    );
    let row = |port: &str| {
        lab.exec("sw", "show interface brief")
            .stdout
            .lines()
            .find(|l| l.starts_with(port))
            .unwrap_or_default()
            .to_string()
    };
    let up = lab.lab("up", &[]);
    assert!(up.ok, "up: {}{}", up.stdout, up.stderr);
    let r3 = row("Eth1/3");
    assert!(r3.contains("Link not present"), "{r3}");
    let ping = format!(
        "{} lab ping -c 3 -i 0.2 -W 1 10.10.0.12",
        env!("CARGO_BIN_EXE_roamer")
    );
    assert!(lab.exec("h1", &ping).ok, "before the move");

    lab.move_host("h1", "sw:eth3");
    assert!(
        roamer_test_support::wait_until(std::time::Duration::from_secs(5), || row("Eth1/3")
            .contains(" up ")),
        "Eth1/3 up: {}",
        row("Eth1/3")
    );
    let after = lab.exec("h1", &ping);
    assert!(after.ok, "after the move: {}{}", after.stdout, after.stderr);
    let r1 = row("Eth1/1");
    assert!(r1.contains("Link not present"), "the old port: {r1}");
    lab.assert_down();
}
