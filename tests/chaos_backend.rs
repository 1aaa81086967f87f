//! The daemon over the chaos backend (`ROAMER_CHAOS`, wrapping the sim): refused table
//! operations reach the operator, the daemon keeps serving `show`, and once the operations
//! succeed again the tables converge to the configuration on the daemon's retry timer.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Daemon, Output, roamer, run_args};

const BASE: &str = "hostname chaos\nroamer platform backend sim\nfeature interface-vlan\n";

/// Starts a daemon on `config` with `ROAMER_CHAOS=spec`; `{dir}` in the spec is the daemon's
/// own directory.
fn start(config: &str, spec: &str) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(&startup, config).expect("write startup");
    let socket = dir.path().join("roamer.sock");
    let spec = spec.replace("{dir}", &dir.path().display().to_string());
    let mut command = roamer();
    run_args(&mut command, &startup, &socket).env("ROAMER_CHAOS", spec);
    let d = Daemon::spawn_command(&mut command, dir, startup, socket);
    d.wait_for_line("chaos backend");
    d.wait_for_line("ready");
    d
}

fn heal_file(d: &Daemon) -> std::path::PathBuf {
    d.dir.path().join("heal")
}

fn ok(d: &Daemon, command: &str) -> Output {
    let out = d.exec(command);
    assert_eq!(
        out.code, 0,
        "{command} while the backend fails: {}{}",
        out.stdout, out.stderr
    );
    out
}

fn counter(d: &Daemon, name: &str) -> u64 {
    let out = ok(d, "show forwarding counters");
    out.stdout
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no counter {name}:\n{}", out.stdout))
}

/// Polls `show mac address-table` until every VLAN in `vlans` has its gateway (router MAC) row.
fn wait_for_gateways(d: &Daemon, vlans: &[u16], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let table = ok(d, "show mac address-table").stdout;
        let missing: Vec<u16> = vlans
            .iter()
            .copied()
            .filter(|v| {
                !table.lines().any(|l| {
                    l.starts_with("G") && l.split_whitespace().nth(1) == Some(&v.to_string())
                })
            })
            .collect();
        if missing.is_empty() && counter(d, "table-ops-pending") == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "gateway MACs of VLANs {missing:?} still missing after {within:?}:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn svis(vlans: impl IntoIterator<Item = u16>) -> String {
    let mut s = String::from("configure terminal");
    for v in vlans {
        s.push_str(&format!(
            " ; vlan {v} ; interface Vlan{v} ; ip address 10.{}.{}.1/24",
            v / 256,
            v % 256
        ));
    }
    s.push_str(" ; end");
    s
}

#[test]
fn refused_svi_ops_reach_the_cli_and_converge_once_the_backend_heals() {
    let d = start(
        BASE,
        "tables=router-mac,interface-address;healthy-when={dir}/heal",
    );
    let out = d.exec(&svis([10, 20]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("injected failure of add on the router MAC table")
            && out
                .stderr
                .contains("injected failure of add on the interface address table"),
        "{}",
        out.stderr
    );
    // The configuration is the operator's; the tables lag behind it.
    let running = ok(&d, "show running-config").stdout;
    assert!(running.contains("interface Vlan20"), "{running}");
    // The daemon keeps serving while the backend refuses, and retries (rounds counted).
    for command in ["show version", "show ip route", "show interface brief"] {
        ok(&d, command);
    }
    let table = ok(&d, "show mac address-table").stdout;
    assert!(
        !table.lines().any(|l| l.starts_with("G")),
        "no gateway MAC may be installed yet:\n{table}"
    );
    assert_eq!(counter(&d, "table-ops-pending"), 4);
    d.wait_for_line("table operations retried: some still fail");
    assert!(counter(&d, "table-retry-rounds") >= 1);

    std::fs::write(heal_file(&d), b"").expect("heal");
    let took = wait_for_gateways(&d, &[10, 20], Duration::from_secs(10));
    d.wait_for_line("tables match the configuration");
    eprintln!("converged {took:?} after healing");
    // Healthy now: a further change applies at once.
    let out = d.exec(&svis([30]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_for_gateways(&d, &[10, 20, 30], Duration::from_secs(1));
}

#[test]
fn a_fraction_of_failed_ops_converges_without_healing() {
    let d = start(BASE, "fraction=0.3;seed=5");
    let vlans: Vec<u16> = (100..130).collect();
    let out = d.exec(&svis(vlans.iter().copied()));
    assert_eq!(
        out.code, 1,
        "0.3 of ~90 ops fails some: {}{}",
        out.stdout, out.stderr
    );
    let refused = out.stderr.matches("injected failure").count();
    assert!(refused > 5, "{}", out.stderr);
    wait_for_gateways(&d, &vlans, Duration::from_secs(20));
    assert_eq!(
        ok(&d, "show running-config")
            .stdout
            .matches("ip address 10.0.")
            .count(),
        vlans.len()
    );
}

#[test]
fn a_data_path_that_does_not_answer_is_an_error_not_an_empty_table() {
    let d = start(BASE, "reads=fail;healthy-when={dir}/heal");
    for command in [
        "show mac address-table",
        "show ip arp",
        "show forwarding counters",
        "show interface brief",
    ] {
        let out = d.exec(command);
        assert_eq!(out.code, 1, "{command}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("% data path not answering: ")
                || out
                    .stderr
                    .contains("% chaos(sim) backend: injected failure"),
            "{command}: {}",
            out.stderr
        );
    }
    assert!(
        d.exec("show mac address-table")
            .stderr
            .contains("% data path not answering: the chaos(sim) backend did not answer"),
        "learned() refused as not answering"
    );
    ok(&d, "show version");
    ok(&d, "show running-config");
    std::fs::write(heal_file(&d), b"").expect("heal");
    ok(&d, "show mac address-table");
    assert!(Path::new(&heal_file(&d)).exists());
}

/// A backend without a forwarding pipeline refuses a trace with its typed error, printed to
/// the operator, rather than an empty trace.
#[test]
fn a_trace_on_a_backend_without_a_pipeline_says_so() {
    let d = Daemon::start(
        &format!(
            "{BASE}vlan 10\ninterface Ethernet1/1\n  switchport\n  switchport access vlan 10\n"
        ),
        "startup-config",
    );
    let out = d.exec(
        "show forwarding trace interface Ethernet1/1 src-mac 0200.0000.0001 dst-mac 0200.0000.0002 src-ip 10.0.0.1 dst-ip 10.0.0.2",
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "% forwarding trace is not supported by the sim backend: it has no forwarding pipeline"
        ),
        "{}",
        out.stderr
    );
}
