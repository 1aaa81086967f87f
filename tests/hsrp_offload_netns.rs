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
    common::send_hsrp_hellos(host.name(), "bad", &q, 5);
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
        std::thread::spawn(move || common::send_hsrp_hellos(&ns, "udp", &q, 25))
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
