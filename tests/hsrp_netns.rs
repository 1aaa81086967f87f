//! HSRP between two roamer instances on one LAN, with a real host pinging the virtual IP:
//! failover on SIGKILL within the hold time (same virtual MAC, the host keeps its ARP entry),
//! and preemption when the higher-priority router returns.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use common::hsrp_state as state_of;
use roamer_test_support::{self as support, Capture, Netns, Veth};

fn router(prefix: &str, n: u8, priority: u8) -> String {
    format!(
        "hostname r{n}\nroamer platform port Ethernet1/1 {prefix}r{n}\nfeature interface-vlan\nfeature hsrp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Vlan10\n  ip address 10.10.0.{}/24\n  hsrp 10\n    priority {priority}\n    preempt\n    timers 1 3\n    ip 10.10.0.1\n",
        n + 1
    )
}

/// ping's output whatever its exit status (it exits 1 when any reply was lost).
fn ping_output(ns: &str, to: &str, count: u32) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-i",
            "0.1",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            to,
        ])
        .output()
        .expect("ping");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to `secs` for the HSRP states of `routers` to satisfy `want`; fails with `what` and
/// the states otherwise.
fn assert_states(routers: [&Daemon; 2], secs: u64, want: impl Fn([String; 2]) -> bool, what: &str) {
    let states = || routers.map(state_of);
    let reached = support::wait_until(Duration::from_secs(secs), || want(states()));
    let [a, b] = states();
    assert!(reached, "{what}:\n{a}\n{b}");
}

/// Pings `to` every 100 ms for `duration`; returns (sent, received) from ping's summary.
fn ping_run(host: &Netns, to: &str, duration: Duration) -> (u32, u32) {
    let out = ping_output(host.name(), to, (duration.as_millis() / 100) as u32);
    let summary = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .expect("ping summary")
        .to_string();
    let num = |word: &str| {
        summary
            .split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (num("transmitted"), num("received"))
}

/// A bridge `br0` in `lan` and, for each `(name, ns)`, a veth pair `{prefix}{name}` (in `ns`,
/// up) / `{prefix}{name}l` (a port of the bridge).
fn lan_bridge(prefix: &str, lan: &Netns, members: &[(&str, &Netns)]) -> Vec<Veth> {
    lan.ip(&["link", "add", "br0", "type", "bridge"])
        .expect("bridge");
    lan.ip(&["link", "set", "br0", "up"]).expect("bridge up");
    let mut links = Vec::new();
    for (name, other) in members {
        let v = Veth::new(&format!("{prefix}{name}"), &format!("{prefix}{name}l")).expect("veth");
        v.move_to(&format!("{prefix}{name}"), other).expect("move");
        v.move_to(&format!("{prefix}{name}l"), lan).expect("move");
        other
            .ip(&["link", "set", &format!("{prefix}{name}"), "up"])
            .expect("up");
        lan.ip(&["link", "set", &format!("{prefix}{name}l"), "master", "br0"])
            .expect("enslave");
        lan.ip(&["link", "set", &format!("{prefix}{name}l"), "up"])
            .expect("up");
        links.push(v);
    }
    links
}

/// Capture lines until one starts with `starts[0]` (the active router's hello) and one with
/// `starts[1]` (the standby's), or until none has come for 5 s; asserts both came (`missing`
/// names them in the failure) and returns every line read.
fn active_and_standby_hellos(
    capture: &Capture,
    starts: [&str; 2],
    missing: [&str; 2],
) -> Vec<String> {
    let seen = |hellos: &[String], start: &str| hellos.iter().any(|l| l.starts_with(start));
    let mut hellos = Vec::new();
    while !(seen(&hellos, starts[0]) && seen(&hellos, starts[1])) {
        match capture.next_line(Duration::from_secs(5)) {
            Some(line) => hellos.push(line),
            None => break,
        }
    }
    let text = hellos.join("\n");
    for (start, what) in starts.iter().zip(missing) {
        assert!(seen(&hellos, start), "{what}:\n{text}");
    }
    hellos
}

#[test]
fn failover_on_kill_and_preemption_on_return() {
    let prefix = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
    let (lan, host, s1, s2) = (ns("l"), ns("h"), ns("a"), ns("b"));
    let links = lan_bridge(&prefix, &lan, &[("r1", &s1), ("r2", &s2), ("hh", &host)]);
    host.addr(&format!("{prefix}hh"), "10.10.0.5/24")
        .expect("addr");

    // Every hello on the LAN, as tshark decodes it: group, state (16 = active, 8 = standby),
    // priority, virtual IP.
    let capture = Capture::start(
        &lan,
        "br0",
        "udp port 1985",
        60,
        &[
            "hsrp.group",
            "hsrp.state",
            "hsrp.priority",
            "hsrp.virt_ip",
            "_ws.malformed",
            "_ws.expert",
        ],
        Duration::from_secs(30),
    )
    .expect("tshark on the LAN");
    let r1 = Daemon::start_in_netns(&router(&prefix, 1, 110), s1.name());
    let r2 = Daemon::start_in_netns(&router(&prefix, 2, 100), s2.name());
    let r1_active = |s: [String; 2]| s == ["Active", "Standby"];
    assert_states(
        [&r1, &r2],
        15,
        r1_active,
        "r1 (priority 110) becomes active",
    );
    let hellos = active_and_standby_hellos(
        &capture,
        ["10\t16\t110\t10.10.0.1", "10\t8\t100\t10.10.0.1"],
        [
            "an active hello from r1 decodes",
            "a standby hello from r2 decodes",
        ],
    );
    let text = hellos.join("\n");
    assert!(
        hellos
            .iter()
            .all(|l| l.split('\t').skip(4).all(str::is_empty)),
        "malformed or expert info on a hello:\n{text}"
    );
    let (sent, received) = ping_run(&host, "10.10.0.1", Duration::from_secs(2));
    assert!(
        sent >= 15 && received + 1 >= sent,
        "the virtual IP answers: {received}/{sent}\n{}\n{}\n{}\nhost: {}",
        r1.exec("show forwarding counters").stdout,
        r1.exec("show ip arp").stdout,
        r1.exec("show hsrp").stdout,
        host.ip(&["neigh"]).unwrap_or_default()
    );
    let neigh = host.ip(&["neigh", "show", "10.10.0.1"]).expect("neigh");
    assert!(
        neigh.contains("00:00:0c:07:ac:0a"),
        "the host resolved the v1 virtual MAC: {neigh}"
    );

    // Kill the active router and keep pinging through the failover.
    let pinger = {
        let host_name = host.name().to_string();
        std::thread::spawn(move || ping_output(&host_name, "10.10.0.1", 80))
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut r1 = r1;
    let killed = Instant::now();
    r1.signal("KILL");
    r1.wait_exit();
    assert!(
        support::wait_until(Duration::from_secs(6), || state_of(&r2) == "Active"),
        "r2 takes over within the hold time (3 s):\n{}",
        state_of(&r2)
    );
    let takeover = killed.elapsed();
    let out = pinger.join().expect("pinger");
    let summary = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .expect("ping summary")
        .to_string();
    eprintln!("failover after SIGKILL: r2 active {takeover:?} after the kill; pings: {summary}");
    let neigh = host.ip(&["neigh", "show", "10.10.0.1"]).expect("neigh");
    assert!(
        neigh.contains("00:00:0c:07:ac:0a"),
        "same virtual MAC after failover: {neigh}"
    );
    let (sent, received) = ping_run(&host, "10.10.0.1", Duration::from_secs(1));
    assert!(
        sent >= 8 && received + 1 >= sent,
        "the virtual IP answers after failover: {received}/{sent}"
    );

    // r1 returns with the higher priority and preempt: it takes over again.
    let r1 = Daemon::start_in_netns(&router(&prefix, 1, 110), s1.name());
    assert_states([&r1, &r2], 10, r1_active, "r1 preempts on return");
    drop(links);
}

fn site_router(prefix: &str, n: u8, filter: bool) -> String {
    let filter = if filter { "  hsrp hello-filter\n" } else { "" };
    format!(
        "hostname r{n}\nroamer platform port Ethernet1/1 {prefix}s{n}\nroamer platform port Ethernet1/2 {prefix}x{n}\n\
         feature interface-vlan\nfeature hsrp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Ethernet1/2\n  switchport\n  switchport access vlan 10\n{filter}\
         interface Vlan10\n  ip address 10.10.0.{}/24\n  hsrp 10\n    timers 1 3\n    ip 10.10.0.1\n",
        n + 1
    )
}

/// Two sites, each a router with a host, joined by a LAN extension between the routers'
/// Ethernet1/2. With `hsrp hello-filter` on the extension each site has its own active gateway
/// for the same group; without it the two routers elect one.
#[test]
fn hello_filter_on_the_lan_extension_gives_each_site_its_own_active_gateway() {
    for filter in [true, false] {
        let prefix = support::unique_prefix();
        let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
        let (r1ns, r2ns, ha, hb) = (ns("a"), ns("b"), ns("c"), ns("d"));
        let ext = Veth::between(&format!("{prefix}x1"), &r1ns, &format!("{prefix}x2"), &r2ns)
            .expect("extension");
        let mut links = vec![ext];
        for (n, r, h, addr) in [
            (1, &r1ns, &ha, "10.10.0.11/24"),
            (2, &r2ns, &hb, "10.10.0.12/24"),
        ] {
            let v = Veth::between(&format!("{prefix}s{n}"), r, &format!("{prefix}h{n}"), h)
                .expect("veth");
            h.addr(&format!("{prefix}h{n}"), addr).expect("addr");
            links.push(v);
        }
        let r1 = Daemon::start_in_netns(&site_router(&prefix, 1, filter), r1ns.name());
        let r2 = Daemon::start_in_netns(&site_router(&prefix, 2, filter), r2ns.name());
        if filter {
            assert_states(
                [&r1, &r2],
                20,
                |s| s == ["Active", "Active"],
                "both sites active with the hello filter",
            );
            // Each site's host resolves the shared virtual IP to the shared virtual MAC, locally.
            for h in [&ha, &hb] {
                let (sent, received) = ping_run(h, "10.10.0.1", Duration::from_secs(1));
                assert!(
                    sent >= 8 && received + 1 >= sent,
                    "the local gateway answers: {received}/{sent}"
                );
            }
        } else {
            assert_states(
                [&r1, &r2],
                20,
                |s| s == ["Active", "Standby"] || s == ["Standby", "Active"],
                "one active and one standby without the filter",
            );
        }
        // The extension still carries the VLAN: the two sites' hosts reach each other.
        assert!(
            support::ping(
                &ha,
                "10.10.0.12".parse().expect("ip"),
                Duration::from_secs(5)
            )
            .expect("ping"),
            "L2 across the extension"
        );
        drop(links);
    }
}

/// HSRP version 2 with millisecond timers between two roamers: tshark decodes the live hellos
/// (active 6, standby 5 in Wireshark's v2 numbering) with group, priority and virtual IP.
#[test]
fn version_2_hellos_decode_and_elect() {
    let prefix = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
    let (lan, s1, s2) = (ns("l"), ns("a"), ns("b"));
    let links = lan_bridge(&prefix, &lan, &[("r1", &s1), ("r2", &s2)]);
    let v2 = |n: u8, priority: u8| {
        format!(
            "hostname r{n}\nroamer platform port Ethernet1/1 {prefix}r{n}\nfeature interface-vlan\nfeature hsrp\nvlan 10\n\
             interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
             interface Vlan10\n  ip address 10.10.0.{}/24\n  hsrp version 2\n  hsrp 1000\n    priority {priority}\n    timers msec 300 msec 900\n    ip 10.10.0.1\n",
            n + 1
        )
    };
    let capture = Capture::start(
        &lan,
        "br0",
        "udp port 1985",
        80,
        &[
            "hsrp2.group",
            "hsrp2.state",
            "hsrp2.priority",
            "hsrp2.virt_ip",
            "_ws.malformed",
            "_ws.expert",
        ],
        Duration::from_secs(30),
    )
    .expect("tshark on the LAN");
    let _r1 = Daemon::start_in_netns(&v2(1, 120), s1.name());
    let _r2 = Daemon::start_in_netns(&v2(2, 100), s2.name());
    let hellos = active_and_standby_hellos(
        &capture,
        ["1000\t6\t120\t10.10.0.1", "1000\t5\t100\t10.10.0.1"],
        ["an active v2 hello from r1", "a standby v2 hello from r2"],
    );
    let text = hellos.join("\n");
    // tshark adds one note to every v2 hello: TTL 1 (as HSRP requires) towards 224.0.0.102 in the
    // Local Network Control Block; anything else would be a defect.
    assert!(
        hellos
            .iter()
            .all(|l| l.split('\t').nth(4).unwrap_or("").is_empty()),
        "malformed v2 hello:\n{text}"
    );
    drop(links);
}
