//! `roamer run` under containerlab's conventions: started before containerlab has attached its
//! data interfaces, with `CLAB_INTFS` saying how many, it waits for them and then serves; eth0
//! (management) is never a data port; SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used)]

mod lab_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roamer_test_support::Netns;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn waits_for_the_data_interfaces_containerlab_attaches_then_runs_and_stops_on_sigterm() {
    let ns = Netns::new(&format!("rlc{}", std::process::id())).unwrap();
    let n = ns.name();
    // containerlab's management interface, with its address.
    ip(&[
        "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "mgmt",
    ]);
    ip(&["-n", n, "addr", "add", "172.20.20.2/24", "dev", "eth0"]);
    ip(&["-n", n, "link", "set", "eth0", "up"]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("startup-config");
    std::fs::write(
        &cfg,
        lab_common::switch_config("roamer platform profile clab", 2),
    )
    .unwrap();
    let sock = tmp.path().join("roamer.sock");
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            n,
            env!("CARGO_BIN_EXE_roamer"),
            "run",
            "--config",
        ])
        .arg(&cfg)
        .arg("--socket")
        .arg(&sock)
        .env("CLAB_INTFS", "2")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("roamer.err")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = tmp.path().join("roamer.err");
    assert!(
        wait(Duration::from_secs(10), || log(&stderr).contains(
            "waiting for containerlab to attach the data interfaces"
        )),
        "{}",
        log(&stderr)
    );
    assert!(child.try_wait().unwrap().is_none(), "{}", log(&stderr));
    assert!(!sock.exists(), "serving before its ports are there");
    // containerlab attaches the links, one after the other.
    for (port, peer) in [("eth1", "h1"), ("eth2", "h2")] {
        std::thread::sleep(Duration::from_millis(300));
        ip(&[
            "-n", n, "link", "add", port, "type", "veth", "peer", "name", peer,
        ]);
        ip(&["-n", n, "link", "set", port, "up"]);
        ip(&["-n", n, "link", "set", peer, "up"]);
    }
    assert!(
        wait(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        }),
        "not serving after its interfaces came:\n{}",
        log(&stderr)
    );
    let brief = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(["exec", "--socket"])
        .arg(&sock)
        .arg("show interface brief")
        .output()
        .unwrap();
    let brief = String::from_utf8_lossy(&brief.stdout).into_owned();
    assert!(
        brief.contains("Eth1/1") && brief.contains("Eth1/2"),
        "{brief}"
    );
    // Management is untouched.
    let mgmt = Command::new("ip")
        .args(["-n", n, "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&mgmt.stdout).contains("172.20.20.2/24"));

    // `ip netns exec` replaced itself with roamer: this PID is the daemon's.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", log(&stderr));
    assert!(log(&stderr).contains("stopped"), "{}", log(&stderr));
    assert!(!sock.exists(), "socket left behind");
}

#[test]
fn under_containerlab_a_port_on_eth0_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("startup-config");
    std::fs::write(
        &cfg,
        "hostname sw\nroamer platform port Ethernet1/1 eth0\ninterface Ethernet1/1\n  no switchport\n  ip address 10.0.0.1/24\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--socket")
        .arg(tmp.path().join("s.sock"))
        .env("CLAB_INTFS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("management"), "{stderr}");
}

#[test]
fn the_startup_configuration_defaults_to_where_containerlab_binds_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("/etc/roamer/startup-config"), "{help}");
    // Without --config it reads that file (absent here unless a container bound one).
    if !Path::new("/etc/roamer/startup-config").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
            .args(["run", "--socket", "/nonexistent/roamer.sock"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("/etc/roamer/startup-config"),
            "{stderr}"
        );
    }
}
