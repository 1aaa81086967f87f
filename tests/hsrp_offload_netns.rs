//! HSRP from a Linux peer on the same host: hellos sent from a UDP socket through a veth with
//! TX checksum offload on arrive with a partial UDP checksum (left to the "device"); roamer
//! completes it before the control plane reads the frame, so they are accepted. Hellos with a
//! genuinely wrong checksum on a complete frame are still refused and counted as malformed.

mod common;

use std::time::Duration;

use common::{Daemon, hsrp_state};
use roamer_test_support::{self as support, Netns, Veth};

/// The malformed count of `show hsrp` ("Packets ignored: N authentication failure(s), M
/// malformed").
fn malformed(d: &Daemon) -> u64 {
    let detail = d.exec("show hsrp").stdout;
    detail
        .lines()
        .find(|l| l.contains("Packets ignored:"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no malformed counter in:\n{detail}"))
}

/// Python (standard library only): an active HSRPv1 hello of group 10, priority 200, virtual IP
/// 10.10.0.1, from 10.10.0.9. `udp`: through a UDP socket (the kernel leaves the checksum to
/// the veth's offload); `bad`: a complete Ethernet frame through a packet socket whose UDP
/// checksum is wrong.
const SENDER: &str = r#"
import socket, struct, sys, time
mode, iface, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
hello = bytes([0, 0, 16, 1, 3, 200, 10, 0]) + b'cisco'.ljust(8, b'\0') + socket.inet_aton('10.10.0.1')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton('10.10.0.9'), socket.inet_aton('224.0.0.2')
if mode == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('10.10.0.9', 1985))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, src)
    for _ in range(count):
        s.sendto(hello, ('224.0.0.2', 1985))
        time.sleep(0.2)
else:
    udp = struct.pack('!HHHH', 1985, 1985, 8 + len(hello), 0) + hello
    good = csum(src + dst + struct.pack('!BBH', 0, 17, len(udp)) + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', good ^ 0x0101) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 1, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    eth = bytes.fromhex('01005e000002' '020000000099' '0800')
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for _ in range(count):
        s.send(eth + ip + udp)
        time.sleep(0.1)
"#;

fn send(ns: &str, mode: &str, iface: &str, count: u32) {
    common::python_in(
        ns,
        SENDER,
        &[mode, iface, &count.to_string()],
        "python3 is required for this test",
        &format!("python3 sender ({mode})"),
    );
}

#[test]
fn hellos_with_a_checksum_left_to_the_offload_are_accepted_bad_ones_are_counted() {
    common::require_netns_and(&[("ethtool", "ethtool"), ("python3", "python3")]);
    let prefix = support::unique_prefix();
    let sw = Netns::new(&format!("{prefix}s")).expect("netns");
    let host = Netns::new(&format!("{prefix}h")).expect("netns");
    let (p, q) = (format!("{prefix}p"), format!("{prefix}q"));
    let veth = Veth::new(&p, &q).expect("veth");
    veth.move_to(&p, &sw).expect("move");
    veth.move_to(&q, &host).expect("move");
    host.addr(&q, "10.10.0.9/24").expect("addr");
    let d = common::hsrp_active_alone(&p, &sw);
    assert_eq!(malformed(&d), 0);

    // A complete frame with a wrong UDP checksum: refused, counted, nothing changes.
    send(host.name(), "bad", &q, 5);
    assert!(
        support::wait_until(Duration::from_secs(3), || malformed(&d) >= 5),
        "bad checksums are counted as malformed:\n{}",
        d.exec("show hsrp").stdout
    );
    assert_eq!(hsrp_state(&d), "Active", "a refused hello moves nothing");
    let refused = malformed(&d);

    // The same hello from a UDP socket, its checksum left to the veth's TX offload.
    host.exec(&["ethtool", "-K", &q, "tx", "on"])
        .expect("ethtool -K tx on");
    let features = host.exec(&["ethtool", "-k", &q]).expect("ethtool -k");
    assert!(
        features.contains("tx-checksum-ip-generic: on"),
        "TX checksum offload is on:\n{features}"
    );
    // Hellos for five seconds, checked while they come (the peer's hold time is 3 s).
    let sender = {
        let (ns, q) = (host.name().to_string(), q.clone());
        std::thread::spawn(move || send(&ns, "udp", &q, 25))
    };
    let accepted = support::wait_until(Duration::from_secs(4), || {
        d.exec("show hsrp")
            .stdout
            .contains("Active router is 10.10.0.9")
            && hsrp_state(&d) != "Active"
    });
    let detail = d.exec("show hsrp").stdout;
    sender.join().expect("sender thread");
    assert!(
        accepted,
        "the peer's hellos (priority 200) are accepted:\n{detail}"
    );
    assert_eq!(
        malformed(&d),
        refused,
        "no offloaded hello is refused:\n{detail}"
    );
    drop(d);
    drop(veth);
}
