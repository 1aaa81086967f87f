//! The running daemon's configuration: sessions over the control socket, validated changes,
//! all-or-nothing file loads, startup saves in the loaded syntax, keys never shown.

mod common;

use common::{Daemon, fixture};

const SIM_CLI: &str = "roamer platform backend sim\n";

#[test]
fn every_seed_example_pastes_into_roamer_cli() {
    let d = Daemon::start(SIM_CLI, "startup-config");
    let mut input = String::from("switch# configure terminal\n");
    for name in common::SEED_BLOCKS {
        input.push_str(&fixture(&format!("seeds/{name}")));
        // Each document starts from configuration mode again.
        input.push_str("end\nconfigure terminal\n");
    }
    input.push_str("end\nshow running-config\n");
    let out = d.cli(&input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains("warning:"))
        .collect();
    assert!(errors.is_empty(), "commands failed:\n{}", out.stderr);
    let warned = out
        .stdout
        .matches("warning: % the type-3 key of map-server 10.1.1.1")
        .count();
    assert_eq!(
        warned, 1,
        "the type-3 warning appears once, when the key is entered:\n{}",
        out.stdout
    );
    for expected in [
        "lisp dynamic-eid Roamer-1",
        "map-notify-group 239.1.1.254",
        "database-mapping 172.16.1.0/24 10.1.1.1 priority 1 weight 100",
        // 001's `map-server 10.1.1.1 key some-password` replaced 000's type-3 key.
        "map-server 10.1.1.1 key 7 ",
        "map-server 10.111.10.14 proxy-reply",
        "ip lisp database-mapping 172.16.0.0/16 172.16.1.1 priority 1 weight 100",
        "interface Ethernet2/0",
        "lisp extended-subnet-mode",
        "mac-address 0000.0e1d.010c",
        "ip 10.3.3.1",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
    for clear in ["some-password", "key 0 cisco"] {
        assert!(!out.stdout.contains(clear), "key shown in clear: {clear}");
    }
}

#[test]
fn prompts_follow_the_mode() {
    let d = Daemon::start(SIM_CLI, "startup-config");
    let out = d.cli("configure terminal\nhostname n7k-dc1\nfeature lisp\nlisp dynamic-eid Roamer-1\nmap-notify-group ?\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("A.B.C.D"),
        "help for map-notify-group: {}",
        out.stdout
    );
    let out = d.cli("show ?\n");
    assert!(
        out.stdout.contains("running-config") && out.stdout.contains("startup-config"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_file_with_a_mistake_on_line_7_changes_nothing() {
    let d = Daemon::start(
        &format!("{SIM_CLI}{}", fixture("seeds/001-hsrp.cli")),
        "startup-config",
    );
    let before = d.exec("show running-config");
    assert_eq!(before.code, 0);
    let bad = d.path("change.cli");
    std::fs::write(
        &bad,
        "hostname changed\ninterface Vlan10\n  ip proxy-arp\n  hsrp 100\n    priority 120\n    preempt\n    ip 10.99.0.1\n",
    )
    .expect("write");
    let out = d.exec(&format!("copy {} running-config", bad.display()));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(&format!("{}:7: ", bad.display())),
        "{}",
        out.stderr
    );
    assert_eq!(
        d.exec("show running-config").stdout,
        before.stdout,
        "a rejected file changed the running configuration"
    );

    // The same file without the mistake merges, all of it.
    std::fs::write(
        &bad,
        "hostname changed\ninterface Vlan10\n  ip proxy-arp\n  hsrp 100\n    priority 120\n",
    )
    .expect("write");
    let out = d.exec(&format!("copy {} running-config", bad.display()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let changed = ["hostname changed", "priority 120", "ip 10.3.3.1"];
    d.assert_shows("show running-config", &changed);
}

#[test]
fn a_rejected_command_leaves_configuration_and_mode_alone() {
    let d = Daemon::start(
        &format!("{SIM_CLI}{}", fixture("seeds/001-hsrp.cli")),
        "startup-config",
    );
    let before = d.exec("show running-config").stdout;
    let out = d.cli("configure terminal\ninterface Vlan10\nhsrp 100\nip 10.9.9.9\npriority 110\nend\nshow running-config | include priority\n");
    assert!(
        out.stderr.contains("10.9.9.9 is not in a subnet of Vlan10"),
        "{}",
        out.stderr
    );
    // `priority 110` still ran in HSRP mode after the rejected line.
    assert!(out.stdout.contains("priority 110"), "{}", out.stdout);
    let now = d.exec("show running-config").stdout;
    assert!(!now.contains("10.9.9.9"));
    assert_ne!(now, before);
}

#[test]
fn save_keeps_the_syntax_it_was_loaded_from() {
    let toml = include_str!("../examples/n7k-dc1.toml");
    let d = Daemon::start(toml, "startup.toml");
    let out =
        d.exec("configure terminal; hostname saved-toml; end; copy running-config startup-config");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Copy complete."));
    let saved = std::fs::read_to_string(&d.startup).expect("read");
    assert!(saved.contains("hostname = \"saved-toml\""), "{saved}");
    assert!(saved.contains("[[platform.linecard]]"), "{saved}");

    let d = Daemon::start(SIM_CLI, "startup-config");
    let out = d.exec("conf t; hostname saved-cli; end; copy run start");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let saved = std::fs::read_to_string(&d.startup).expect("read");
    assert!(
        saved.starts_with("hostname saved-cli\nroamer platform backend sim\n"),
        "{saved}"
    );
    assert!(
        d.exec("show startup-config")
            .stdout
            .contains("hostname saved-cli")
    );
}

#[test]
fn keys_never_reach_show_output_or_logs() {
    let d = Daemon::start(SIM_CLI, "startup-config");
    let out = d.exec("conf t; feature lisp; ip lisp etr map-server 192.0.2.1 key 0 Sup3rSecret; lisp dynamic-eid R; map-server 192.0.2.1 key Sup3rSecret; end; copy run start");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown = d.exec("show running-config").stdout
        + &d.exec("show running-config | json").stdout
        + &d.exec("show startup-config").stdout;
    assert!(!shown.contains("Sup3rSecret"), "{shown}");
    assert!(shown.contains("key 7 "), "{shown}");
    let saved = std::fs::read_to_string(&d.startup).expect("read");
    assert!(!saved.contains("Sup3rSecret"));
    let log = d.drain_log().join("\n");
    assert!(!log.contains("Sup3rSecret"), "{log}");
}

#[test]
fn show_json_is_json() {
    let d = Daemon::start(
        &format!("{SIM_CLI}{}", fixture("seeds/001-hsrp.cli")),
        "startup-config",
    );
    for cmd in [
        "show running-config | json",
        "show version | json",
        "show module | json",
        "show hardware capacity | json",
    ] {
        let out = d.exec(cmd);
        assert_eq!(out.code, 0, "{cmd}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{cmd}: {e}\n{}", out.stdout));
        assert!(!v.is_null(), "{cmd}");
    }
}

#[test]
fn killing_the_daemon_during_save_never_tears_the_startup_file() {
    // A large configuration saved back to back keeps the daemon inside a save most of the
    // time, so the kills land in the middle of writes, not between them.
    let mut big = String::from(SIM_CLI);
    for v in 2..=4000 {
        big.push_str(&format!(
            "vlan {v}\n  name tenant-{v}-with-a-rather-long-descriptive-name\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(&startup, &big).expect("write");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut interrupted = 0;
    const ROUNDS: usize = 30;
    for round in 0..ROUNDS {
        let workdir = tempfile::tempdir_in(dir.path()).expect("tempdir");
        let mut d = Daemon::spawn_in(workdir, startup.clone());
        d.wait_for_line("ready");
        let mut saves = format!("conf t; hostname r{round}; end");
        for _ in 0..400 {
            saves.push_str("; copy running-config startup-config");
        }
        let mut saver = common::roamer()
            .arg("exec")
            .arg("--socket")
            .arg(&d.socket)
            .arg(saves)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("saver");
        d.wait_for_line("startup configuration saved");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(5 + seed % 60));
        d.signal("KILL");
        d.wait_exit();
        let _ = saver.wait();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".tmp-"))
            .collect();
        if !leftovers.is_empty() {
            interrupted += 1;
        }
        for p in leftovers {
            std::fs::remove_file(p).expect("remove leftover");
        }
        let text = std::fs::read_to_string(&startup).expect("startup file exists");
        let out = common::run(common::roamer().arg("validate").arg(&startup));
        assert_eq!(
            out.code,
            0,
            "round {round}: torn startup file ({} bytes): {}",
            text.len(),
            out.stderr
        );
        assert!(
            text.contains("vlan 4000\n  name tenant-4000"),
            "round {round}: truncated"
        );
    }
    eprintln!("kills that interrupted a save in progress: {interrupted}/{ROUNDS}");
    assert!(
        interrupted > 0,
        "no kill landed inside a save: the test did not exercise the window"
    );
}

/// The data plane is opened at start: a backend or profile changed at run time is refused
/// with what to do, and nothing of the change is applied. (Ports are attached and detached at
/// run time: tests/ports_at_run_time_netns.rs.)
#[test]
fn a_backend_or_profile_change_at_run_time_is_refused_with_restart_advice() {
    let d = Daemon::start(SIM_CLI, "startup-config");
    for change in [
        "roamer platform backend software",
        "roamer platform profile clab",
    ] {
        let out = d.exec(&format!(
            "configure terminal ; hostname changed ; {change} ; end"
        ));
        assert_eq!(out.code, 1, "{change}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("the data plane takes it only at start")
                && out.stderr.contains("then restart roamer"),
            "{change}: {}",
            out.stderr
        );
        let running = d.exec("show running-config").stdout;
        assert!(
            !running.contains(change),
            "{change} must not be applied:\n{running}"
        );
    }
    // Other changes still apply.
    assert!(
        d.exec("show running-config")
            .stdout
            .contains("hostname changed")
    );
}

/// A change the data plane cannot hold (a table full on a card) is an error on the command
/// that caused it, naming the table, the card and its capacity; exit status 1.
#[test]
fn a_configure_that_overflows_a_table_prints_the_error_to_the_cli() {
    let mut config = String::from(
        "hostname ovf\nroamer platform profile n7k\nroamer platform release 8.2(1)\n\
         roamer platform license LAN_ENTERPRISE_SERVICES_PKG\nroamer platform backend sim\n\
         roamer platform linecard 3 N7K-M132XP-12 epld 186.008\nfeature interface-vlan\n",
    );
    // 15 SVIs: one router MAC each, one short of the M1 card's 16.
    for i in 10..25 {
        config.push_str(&format!(
            "vlan {i}\ninterface Vlan{i}\n  ip address 10.{i}.0.1/24\n"
        ));
    }
    let d = Daemon::start(&config, "startup-config");
    let out = d.exec(
        "configure terminal ; vlan 30 ; interface Vlan30 ; ip address 10.30.0.1/24 ; \
         vlan 31 ; interface Vlan31 ; ip address 10.31.0.1/24 ; end",
    );
    out.assert_refused("router MAC table full on slot 3 (N7K-M132XP-12): capacity 16 entries");
}
