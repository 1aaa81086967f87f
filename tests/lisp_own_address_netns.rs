//! Two roamer xTRs with static map-cache entries: a host at one site pings the SVI address of
//! the other site's xTR (inside that xTR's own EID prefix) across LISP and gets its replies; an
//! IPv4 packet with a bad header checksum from a host is dropped by its xTR and counted.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use common::Daemon;
use common::lisp_config as lisp;
use roamer_test_support::{self as support, Netns, Veth};

fn xtr_config(prefix: &str, me: u8, peer: u8) -> String {
    let underlay = format!("ip address 192.0.2.{me}/24");
    format!(
        "{}interface Vlan10\n  ip address 10.{me}0.0.1/24\n\
         ip lisp itr-etr\n\
         ip lisp database-mapping 10.{me}0.0.0/24 192.0.2.{me} priority 1 weight 100\n\
         ip lisp map-cache 10.{peer}0.0.0/24 192.0.2.{peer} priority 1 weight 100\n",
        lisp::xtr_node(prefix, &me.to_string(), 'h', &[&underlay]),
    )
}

/// The `drop bad-ip-checksum` counter of `show forwarding counters` (0 when absent).
fn bad_ip_checksum(d: &Daemon) -> u64 {
    d.exec("show forwarding counters")
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("drop bad-ip-checksum"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

/// Python (standard library only): `count` UDP packets 10.10.0.5 -> 10.20.0.5 to MAC `argv[2]`
/// out of `argv[1]`, their IPv4 header checksum wrong.
const BAD_SENDER: &str = r#"
import socket, struct, sys
iface, mac, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
src = s.getsockname()[4]
udp = struct.pack('!HHHH', 5000, 6000, 8 + 16, 0) + b'x' * 16
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0x1234,
                 socket.inet_aton('10.10.0.5'), socket.inet_aton('10.20.0.5'))
for _ in range(count):
    s.send(mac + src + b'\x08\x00' + ip + udp)
"#;

#[test]
fn a_remote_host_pings_an_xtr_svi_across_lisp_and_bad_ip_checksums_are_dropped() {
    common::require_netns_and(&[("ping", "iputils-ping"), ("python3", "python3")]);
    let prefix = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
    let (x1, x2, h1, h2) = (ns("x1"), ns("x2"), ns("a"), ns("b"));
    let (u1, u2) = (format!("{prefix}u1"), format!("{prefix}u2"));
    let underlay = Veth::between(&u1, &x1, &u2, &x2).expect("underlay");
    let mut links = Vec::new();
    for (x, h, n) in [(&x1, &h1, 1), (&x2, &h2, 2)] {
        let (port, end) = (format!("{prefix}h{n}"), format!("{prefix}e{n}"));
        let v = Veth::between(&port, x, &end, h).expect("veth");
        h.addr(&end, &format!("10.{n}0.0.5/24")).expect("addr");
        h.ip(&["route", "add", "default", "via", &format!("10.{n}0.0.1")])
            .expect("gw");
        links.push(v);
    }
    let d1 = Daemon::start_in_netns(&xtr_config(&prefix, 1, 2), x1.name());
    let d2 = Daemon::start_in_netns(&xtr_config(&prefix, 2, 1), x2.name());

    // Host to host first (the path works), then host 1 to xtr2's own SVI address.
    assert!(
        support::ping(&h1, Ipv4Addr::new(10, 20, 0, 5), Duration::from_secs(8)).expect("ping"),
        "host traffic across the LISP xTRs"
    );
    assert!(
        support::ping(&h1, Ipv4Addr::new(10, 20, 0, 1), Duration::from_secs(8)).expect("ping"),
        "the remote xTR's SVI address answers across LISP:\n{}",
        d2.exec("show forwarding counters").stdout
    );

    // A packet with a bad IPv4 header checksum, to xtr1's router MAC: dropped and counted.
    let neigh = h1.ip(&["neigh", "show", "10.10.0.1"]).expect("ip neigh");
    let mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("the gateway's MAC is known after the pings: {neigh}"))
        .to_string();
    let before = bad_ip_checksum(&d1);
    let out = Command::new("ip")
        .args(["netns", "exec", h1.name(), "python3", "-c", BAD_SENDER])
        .args([&format!("{prefix}e1"), &mac, "3"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        support::wait_until(Duration::from_secs(3), || bad_ip_checksum(&d1)
            >= before + 3),
        "bad IPv4 header checksums are dropped and counted:\n{}",
        d1.exec("show forwarding counters").stdout
    );
    drop((d1, d2));
    drop(links);
    drop(underlay);
}
