//! The daemon with `roamer platform backend kernel` (issue 17) in network namespaces, with real
//! frames: routed ports forwarded by the kernel, `show` commands through the HAL, and nothing
//! of roamer's left after SIGTERM or after SIGKILL + restart + SIGTERM. The LISP data path
//! (xTR to xTR over the eBPF offload) is written here too; it waits for the LISP offload
//! (`platforms/src/kernel/lisp_offload.rs` is a placeholder until then).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::Daemon;
use roamer_test_support::{self as support, Netns, Veth, require_root, unique_prefix};

fn router_config(p: &str) -> String {
    format!(
        "hostname kr\n\
         roamer platform backend kernel\n\
         roamer platform port Ethernet1/1 {p}r1\n\
         roamer platform port Ethernet1/2 {p}r2\n\
         interface Ethernet1/1\n  no switchport\n  ip address 10.1.0.1/24\n  ipv6 address 2001:db8:1::1/64\n\
         interface Ethernet1/2\n  no switchport\n  ip address 10.2.0.1/24\n  ipv6 address 2001:db8:2::1/64\n"
    )
}

struct Lab {
    // Veths before namespaces: deleting a namespace deletes its ends anyway.
    _v: Vec<Veth>,
    r: Netns,
    h1: Netns,
    _h2: Netns,
    p: String,
}

fn lab() -> Lab {
    require_root("network namespaces");
    let p = unique_prefix();
    let r = Netns::new(&format!("{p}R")).expect("netns");
    let h1 = Netns::new(&format!("{p}H1")).expect("netns");
    let h2 = Netns::new(&format!("{p}H2")).expect("netns");
    let v1 = Veth::between(&format!("{p}r1"), &r, &format!("{p}e1"), &h1).expect("veth");
    let v2 = Veth::between(&format!("{p}r2"), &r, &format!("{p}e2"), &h2).expect("veth");
    for (h, n) in [(&h1, 1), (&h2, 2)] {
        h.dual_stack(
            &format!("{p}e{n}"),
            &format!("10.{n}.0.5/24"),
            &format!("10.{n}.0.1"),
            &format!("2001:db8:{n}::5/64"),
            &format!("2001:db8:{n}::1"),
        )
        .expect("host addresses");
    }
    Lab {
        _v: vec![v1, v2],
        r,
        h1,
        _h2: h2,
        p,
    }
}

/// What roamer may have left in the router namespace: its routes, its addresses, TC filters
/// (the LISP programs) on the ports, devices of its own (`rmr…` names other than the test's).
fn leftovers(r: &Netns, p: &str) -> Vec<String> {
    let mut left = Vec::new();
    for dev in [format!("{p}r1"), format!("{p}r2")] {
        for hook in ["ingress", "egress"] {
            let tc = support::run("tc", &["-n", r.name(), "filter", "show", "dev", &dev, hook])
                .unwrap_or_default();
            if !tc.trim().is_empty() {
                left.push(format!("tc filter on {dev} {hook}: {tc}"));
            }
        }
    }
    let links = r.ip(&["-br", "link", "show"]).expect("links");
    for l in links.lines() {
        let name = l.split_whitespace().next().unwrap_or("");
        if name.starts_with("rmr") && !name.starts_with(p) {
            left.push(format!("device {name}"));
        }
    }
    let routes = r.ip(&["route", "show", "proto", "194"]).expect("routes");
    let routes6 = r
        .ip(&["-6", "route", "show", "proto", "194"])
        .expect("routes");
    for l in routes.lines().chain(routes6.lines()) {
        left.push(format!("route {l}"));
    }
    let addrs = r.ip(&["addr", "show"]).expect("addr");
    for a in [
        "10.1.0.1/24",
        "10.2.0.1/24",
        "2001:db8:1::1/64",
        "2001:db8:2::1/64",
    ] {
        if addrs.contains(a) {
            left.push(format!("address {a}"));
        }
    }
    left
}

#[test]
fn routed_ports_forward_in_the_kernel_and_show_through_the_hal() {
    let lab = lab();
    let p = &lab.p;
    // Someone else's address: roamer must leave it alone.
    lab.r
        .ip(&["addr", "add", "192.0.2.77/32", "dev", &format!("{p}r2")])
        .expect("foreign address");
    let mut d = Daemon::start_in_netns(&router_config(p), lab.r.name());
    assert!(
        support::ping(&lab.h1, Ipv4Addr::new(10, 2, 0, 5), Duration::from_secs(10)).expect("ping"),
        "no echo reply across the kernel-routed ports"
    );
    let six = [
        "-6",
        "-n",
        "-c",
        "2",
        "-i",
        "0.2",
        "-w",
        "8",
        "2001:db8:2::5",
    ];
    let text = common::iputils_ping(&lab.h1, &six);
    assert!(
        text.contains("bytes from 2001:db8:2::5"),
        "IPv6 across the kernel-routed ports:\n{text}"
    );
    let nd = d.exec("show ipv6 neighbor").stdout;
    assert!(nd.contains("2001:db8:1::5"), "the kernel's ND entry: {nd}");
    // The trace is the kernel's FIB answer, said as such.
    let trace = d
        .exec(
            "show forwarding trace interface Ethernet1/1 src-mac 0200.0000.0001 \
             dst-mac 0200.0000.0002 src-ip 10.1.0.5 dst-ip 10.2.0.5",
        )
        .stdout;
    assert!(
        trace.contains("kernel FIB lookup") && trace.contains(&format!("Unicast dev {p}r2")),
        "{trace}"
    );
    d.assert_shows("show ip route", &["10.1.0.0/24", "10.2.0.0/24"]);
    // The kernel's bounds: the LISP tables are eBPF maps of fixed size.
    let capacity = d.exec("show hardware capacity").stdout;
    assert!(
        capacity.lines().any(|l| l.contains("the kernel backend")
            && l.contains("LISP map-cache")
            && l.trim_end().ends_with(" 65536")),
        "{capacity}"
    );
    let arp = d.exec("show ip arp").stdout;
    assert!(arp.contains("10.1.0.5"), "the kernel's neighbour: {arp}");
    let brief = d.exec("show interface brief").stdout;
    let eth1 = brief
        .lines()
        .find(|l| l.contains("Eth1/1") || l.contains("Ethernet1/1"))
        .unwrap_or_else(|| panic!("Ethernet1/1 missing: {brief}"));
    assert!(eth1.contains("up"), "{eth1}");
    let addrs = lab
        .r
        .ip(&["addr", "show", "dev", &format!("{p}r1")])
        .expect("addr");
    assert!(addrs.contains("10.1.0.1/24"), "{addrs}");
    d.signal("TERM");
    d.wait_exit();
    let left = leftovers(&lab.r, &lab.p);
    assert!(left.is_empty(), "left behind after SIGTERM: {left:?}");
    let addrs = lab.r.ip(&["addr", "show"]).expect("addr");
    assert!(
        addrs.contains("192.0.2.77/32"),
        "foreign address removed: {addrs}"
    );
}

#[test]
fn a_killed_daemon_leaves_nothing_after_restart_and_stop() {
    killed_daemon_leaves_nothing(router_config, &[]);
}

/// A router with LISP tables (a database mapping and a static map-cache entry) and an HSRP
/// hello filter: the ITR and ETR programs, and the hello filter's, are attached while it runs.
fn lisp_router_config(p: &str) -> String {
    format!(
        "{}feature lisp\nfeature hsrp\nip lisp itr-etr\n\
         ip lisp database-mapping 10.1.0.0/24 10.2.0.1 priority 1 weight 100\n\
         ip lisp map-cache 10.9.0.0/24 10.2.0.9 priority 1 weight 100\n\
         interface Ethernet1/2\n  hsrp hello-filter\n",
        router_config(p)
    )
}

/// Kernels before 6.6 have no TCX links: the LISP and hello-filter programs go on as `cls_bpf` filters on a
/// `clsact` qdisc, which a SIGKILL leaves behind (forced here with `ROAMER_TC_ATTACH=netlink`);
/// the next start removes them, and a clean stop leaves none.
#[test]
fn lisp_filters_of_a_killed_daemon_go_at_restart_on_kernels_without_tcx() {
    killed_daemon_leaves_nothing(
        lisp_router_config,
        &[(roamer_platforms::kernel::tc_hook::TC_ATTACH_ENV, "netlink")],
    );
}

fn killed_daemon_leaves_nothing(config: fn(&str) -> String, env: &[(&str, &str)]) {
    let lab = lab();
    let mut d = Daemon::start_in_netns_with_env(&config(&lab.p), lab.r.name(), env);
    support::wait_until(Duration::from_secs(10), || {
        !leftovers(&lab.r, &lab.p).is_empty()
    });
    d.signal("KILL");
    d.wait_exit();
    let left = leftovers(&lab.r, &lab.p);
    assert!(
        !left.is_empty(),
        "SIGKILL left nothing: the crash case is not exercised"
    );
    if !env.is_empty() {
        for program in ["lisp_itr", "hello_filter_in", "hello_filter_out"] {
            assert!(
                left.iter()
                    .any(|l| l.contains("tc filter") && l.contains(program)),
                "the {program} filter stays after SIGKILL: {left:?}"
            );
        }
    }
    let mut d = Daemon::start_in_netns_with_env(&config(&lab.p), lab.r.name(), env);
    assert!(
        support::ping(&lab.h1, Ipv4Addr::new(10, 2, 0, 5), Duration::from_secs(10)).expect("ping"),
        "no echo reply after the restart"
    );
    d.signal("TERM");
    d.wait_exit();
    let left = leftovers(&lab.r, &lab.p);
    assert!(
        left.is_empty(),
        "left behind after SIGKILL + restart + SIGTERM: {left:?}"
    );
}

/// VLANs need a VLAN-filtering bridge and 802.1Q devices, which this host's kernel lacks: the
/// daemon refuses to start, naming the missing feature and the configuration line that needs
/// it, and programs nothing.
#[test]
fn a_vlan_config_names_the_missing_kernel_feature_and_line() {
    let lab = lab();
    let config = format!(
        "hostname kv\n\
         roamer platform backend kernel\n\
         roamer platform port Ethernet1/1 {p}r1\n\
         feature interface-vlan\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Vlan10\n  ip address 10.1.0.1/24\n",
        p = lab.p
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let startup = dir.path().join("startup-config");
    std::fs::write(&startup, &config).expect("write");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.r.name(),
            env!("CARGO_BIN_EXE_roamer"),
            "run",
        ])
        .arg("--config")
        .arg(&startup)
        .arg("--socket")
        .arg(dir.path().join("roamer.sock"))
        .output()
        .expect("run roamer");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with VLANs on this kernel: {err}"
    );
    let line = format!("{}:4:", startup.display());
    assert!(
        err.lines().any(|l| l.contains(&line)
            && l.contains("feature interface-vlan")
            && l.contains("VLAN-filtering bridge")),
        "no error at {line} naming the missing feature: {err}"
    );
    let left = leftovers(&lab.r, &lab.p);
    assert!(left.is_empty(), "programmed before refusing: {left:?}");
    let links = lab.r.ip(&["link", "show"]).expect("links");
    assert!(!links.contains("rmrprob"), "probe devices left: {links}");
}

/// `roamer platform profile whitebox` alone: the kernel backend, ports `swpN`.
#[test]
fn the_whitebox_profile_runs_the_kernel_backend_on_swp_ports() {
    require_root("network namespaces");
    let p = unique_prefix();
    let r = Netns::new(&format!("{p}W")).expect("netns");
    // swp1/swp2 exist only inside the namespace (no clash with other tests).
    r.ip(&[
        "link", "add", "swp1", "type", "veth", "peer", "name", "swp2",
    ])
    .expect("veth");
    for d in ["swp1", "swp2"] {
        r.ip(&["link", "set", d, "up"]).expect("up");
    }
    let config = "hostname wb\n\
         roamer platform profile whitebox\n\
         interface Ethernet1/1\n  no switchport\n  ip address 10.1.0.1/24\n";
    let mut d = Daemon::start_in_netns(config, r.name());
    let addrs = r.ip(&["addr", "show", "dev", "swp1"]).expect("addr");
    assert!(addrs.contains("10.1.0.1/24"), "{addrs}");
    let version = d.exec("show running-config").stdout;
    assert!(
        version.contains("roamer platform backend kernel"),
        "{version}"
    );
    d.signal("TERM");
    d.wait_exit();
    let addrs = r.ip(&["addr", "show", "dev", "swp1"]).expect("addr");
    assert!(!addrs.contains("10.1.0.1/24"), "{addrs}");
}
