//! A hello built by scapy with a higher priority and the right authentication makes the active
//! roamer give way (coup); one with the wrong authentication does not, and is counted.

mod common;

use std::time::Duration;

use common::hsrp_state;
use roamer_test_support::{self as support, Netns, Veth};

/// As a router at 10.10.0.9 with priority 200, using scapy inside `ns`: a coup (sent from the
/// standby state), then active hellos for two seconds, with the given authentication.
fn scapy_coup(ns: &Netns, iface: &str, auth: &str) {
    let script = format!(
        "from scapy.all import Ether, IP, UDP, sendp\n\
         from scapy.layers.hsrp import HSRP\n\
         def p(op, st):\n\
         \x20   return Ether(src='02:00:00:00:00:99', dst='01:00:5e:00:00:02') / IP(src='10.10.0.9', dst='224.0.0.2', ttl=1) \
         / UDP(sport=1985, dport=1985) / HSRP(opcode=op, state=st, hellotime=1, holdtime=3, priority=200, group=10, \
         auth=b'{auth}'.ljust(8, b'\\x00'), virtualIP='10.10.0.1')\n\
         sendp(p(1, 8), iface='{iface}', verbose=False)\n\
         sendp(p(0, 16), iface='{iface}', count=10, inter=0.2, verbose=False)\n"
    );
    common::python_in(
        ns.name(),
        &script,
        &[],
        "python3 with scapy (installed by scripts/test.sh)",
        "scapy",
    );
}

#[test]
fn coup_with_the_right_key_takes_over_and_with_a_wrong_key_does_not() {
    let prefix = support::unique_prefix();
    let sw = Netns::new(&format!("{prefix}s")).expect("netns");
    let host = Netns::new(&format!("{prefix}h")).expect("netns");
    let veth =
        Veth::between(&format!("{prefix}p"), &sw, &format!("{prefix}q"), &host).expect("veth");
    let d = common::hsrp_active_alone(&format!("{prefix}p"), &sw);

    // Wrong key: ignored and counted, roamer stays active.
    scapy_coup(&host, &format!("{prefix}q"), "wrong");
    // The coup arrived (counted as an authentication failure) before roamer's state is judged.
    assert!(
        support::wait_until(Duration::from_secs(5), || {
            let detail = d.exec("show hsrp").stdout;
            detail.contains("authentication failure")
                && !detail.contains(": 0 authentication failure")
        }),
        "the wrong-key coup reached roamer:\n{}",
        d.exec("show hsrp").stdout
    );
    let detail = d.exec("show hsrp").stdout;
    assert_eq!(
        hsrp_state(&d),
        "Active",
        "a coup with the wrong key must not move roamer"
    );
    assert!(
        !detail.contains("0 authentication failure(s)"),
        "the bad hellos are counted:\n{detail}"
    );

    // Right key ("cisco", the default): roamer resigns for the higher priority.
    scapy_coup(&host, &format!("{prefix}q"), "cisco");
    assert!(
        support::wait_until(Duration::from_secs(2), || hsrp_state(&d) != "Active"),
        "a coup with the right key and priority 200 takes over:\n{}",
        d.exec("show hsrp").stdout
    );
    drop(veth);
}
