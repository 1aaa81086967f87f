//! A busy CLI does not stall the protocols: while 64 CLI clients run `show` commands in a loop
//! against one roamer and a host pings through it steadily, that roamer stays HSRP active with no
//! hello missing on the wire (tshark on the LAN), and as an xTR its registration with a
//! map-server stays fresh: between two roamers registration is reliable (TCP 4342), refreshed
//! by keepalives every second that must never pause towards the session's 10 s idle timeout
//! (tshark on the underlay).
//!
//! The ports are AF_PACKET (`io af-packet`): this test captures on the switch's own port
//! devices or relies on vnet-hdr large segments, which AF_XDP ports do not give
//! (tests/afxdp_netns.rs runs these paths over AF_XDP).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Daemon;
use roamer_test_support::{self as testkit, Capture, Netns, Veth};

const CLIENTS: usize = 64;
const LOAD: Duration = Duration::from_secs(30);
const SHOWS: &str = "show hsrp; show ip arp; show mac address-table; show interface brief; \
                     show running-config; show ip lisp database; show forwarding counters";

fn r1_config(p: &str) -> String {
    format!(
        "hostname r1\nroamer platform port Ethernet1/1 {p}r1 io af-packet\nroamer platform port Ethernet1/2 {p}u1 io af-packet\n\
         feature interface-vlan\nfeature hsrp\nfeature lisp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Ethernet1/2\n  no switchport\n  ip address 192.0.2.1/24\n\
         interface Vlan10\n  ip address 10.10.0.2/24\n  hsrp 10\n    priority 110\n    preempt\n    timers 1 3\n    ip 10.10.0.1\n\
         ip lisp itr-etr\nip lisp etr map-server 192.0.2.100 key busy-key\n\
         ip lisp database-mapping 10.10.0.0/24 192.0.2.1 priority 1 weight 100\n"
    )
}

fn r2_config(p: &str) -> String {
    format!(
        "hostname r2\nroamer platform port Ethernet1/1 {p}r2 io af-packet\nfeature interface-vlan\nfeature hsrp\nvlan 10\n\
         interface Ethernet1/1\n  switchport\n  switchport access vlan 10\n\
         interface Vlan10\n  ip address 10.10.0.3/24\n  hsrp 10\n    priority 100\n    preempt\n    timers 1 3\n    ip 10.10.0.1\n"
    )
}

fn ms_config(p: &str) -> String {
    format!(
        "hostname ms\nroamer platform port Ethernet1/1 {p}m1 io af-packet\nfeature lisp\n\
         interface Ethernet1/1\n  no switchport\n  ip address 192.0.2.100/24\n\
         ip lisp map-server\nip lisp map-resolver\n\
         lisp site dc\n  eid-prefix 10.10.0.0/24\n  authentication-key 0 busy-key\n"
    )
}

/// The largest gap between consecutive times, in seconds.
fn largest_gap(times: &[f64]) -> f64 {
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[test]
fn a_busy_cli_does_not_stall_hsrp_or_lisp_registration() {
    testkit::require_root("network namespaces");
    testkit::require_tool("tshark", "tshark");
    let p = testkit::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{p}{n}")).expect("netns");
    let (lan, host, s1, s2, msn) = (ns("l"), ns("h"), ns("a"), ns("b"), ns("m"));
    lan.ip(&["link", "add", "br0", "type", "bridge"])
        .expect("bridge");
    lan.ip(&["link", "set", "br0", "up"]).expect("bridge up");
    let mut links = Vec::new();
    for (name, other) in [("r1", &s1), ("r2", &s2), ("hh", &host)] {
        let v = Veth::between(&format!("{p}{name}"), other, &format!("{p}{name}l"), &lan)
            .expect("veth");
        lan.ip(&["link", "set", &format!("{p}{name}l"), "master", "br0"])
            .expect("enslave");
        links.push(v);
    }
    let underlay = Veth::between(&format!("{p}u1"), &s1, &format!("{p}m1"), &msn).expect("veth");
    host.addr(&format!("{p}hh"), "10.10.0.5/24").expect("addr");

    let hellos = Capture::start(
        &lan,
        "br0",
        "udp port 1985",
        100_000,
        &["frame.time_epoch", "ip.src", "hsrp.state", "_ws.malformed"],
        LOAD + Duration::from_secs(60),
    )
    .expect("tshark on the LAN");
    let lisp = Capture::start(
        &msn,
        &format!("{p}m1"),
        "port 4342",
        100_000,
        &["frame.time_epoch", "ip.src", "lisp.type", "tcp.len"],
        LOAD + Duration::from_secs(60),
    )
    .expect("tshark on the underlay");
    let ms = Daemon::start_in_netns(&ms_config(&p), msn.name());
    let r1 = Daemon::start_in_netns(&r1_config(&p), s1.name());
    let r2 = Daemon::start_in_netns(&r2_config(&p), s2.name());
    assert!(
        testkit::wait_until(Duration::from_secs(15), || {
            common::hsrp_state(&r1) == "Active" && common::hsrp_state(&r2) == "Standby"
        }),
        "r1 (priority 110) becomes active: {} / {}",
        common::hsrp_state(&r1),
        common::hsrp_state(&r2)
    );
    assert!(
        testkit::wait_until(Duration::from_secs(20), || {
            ms.exec("show lisp site").stdout.contains("yes")
        }),
        "r1 registers 10.10.0.0/24:\n{}",
        ms.exec("show lisp site").stdout
    );

    // The load: 64 clients in a loop, and a ping every 10 ms through the data path.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let socket = r1.socket.clone();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, served, refused, socket) = (
                stop.clone(),
                served.clone(),
                refused.clone(),
                socket.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = common::roamer()
                        .arg("exec")
                        .arg("--socket")
                        .arg(&socket)
                        .arg(SHOWS)
                        .output()
                        .expect("roamer exec");
                    if out.status.success() {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Beyond the session limit a client is refused at once and tries again.
                        refused.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let pinger = {
        let name = host.name().to_string();
        let deadline = LOAD.as_secs().to_string();
        std::thread::spawn(move || {
            std::process::Command::new("ip")
                .args([
                    "netns", "exec", &name, "ping", "-q", "-i", "0.01", "-W", "1",
                ])
                .args(["-w", &deadline, "10.10.0.1"])
                .output()
                .expect("ping")
        })
    };
    let started = Instant::now();
    let mut worst_state = String::new();
    while started.elapsed() < LOAD {
        let state = common::hsrp_state(&r2);
        if state == "Active" {
            worst_state = format!("r2 became Active at {:?}", started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let ping = pinger.join().expect("pinger");
    let ping_summary = String::from_utf8_lossy(&ping.stdout)
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("no ping summary")
        .to_string();
    let load_end = started.elapsed();

    // What the wire saw during the load.
    let mut r1_active = Vec::new();
    let mut r2_active = 0;
    let mut hello_lines = 0;
    while let Some(line) = hellos.next_line(Duration::from_millis(500)) {
        hello_lines += 1;
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(t), Some(src), Some(state)) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        assert!(
            f.get(3).is_none_or(|m| m.is_empty()),
            "malformed hello: {line}"
        );
        let t: f64 = t.parse().expect("time");
        match (*src, *state) {
            ("10.10.0.2", "16") => r1_active.push(t),
            ("10.10.0.3", "16") => r2_active += 1,
            _ => {}
        }
    }
    let mut registers = Vec::new();
    let mut tcp_segments = Vec::new();
    while let Some(line) = lisp.next_line(Duration::from_millis(500)) {
        let f: Vec<&str> = line.split('\t').collect();
        let t: f64 = f.first().and_then(|t| t.parse().ok()).unwrap_or(0.0);
        if f.get(1) != Some(&"192.0.2.1") {
            continue;
        }
        if f.get(2).is_some_and(|ty| ty.split(',').any(|x| x == "3")) {
            registers.push(t);
        } else if f.get(3).is_some_and(|l| !l.is_empty()) {
            tcp_segments.push(t);
        }
    }
    let served = served.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    let hello_gap = largest_gap(&r1_active);
    let register_gap = largest_gap(&registers);
    let tcp_gap = largest_gap(&tcp_segments);
    println!(
        "{CLIENTS} clients for {load_end:.0?}: {served} show batches served, {refused} refused \
         (session limit); data path: {ping_summary}; r1 active hellos: {} (largest gap \
         {hello_gap:.2} s); r2 active hellos: {r2_active}; Map-Registers from r1: {} (largest \
         gap {register_gap:.1} s); reliable-session segments from r1: {} (largest gap \
         {tcp_gap:.1} s)",
        r1_active.len(),
        registers.len(),
        tcp_segments.len()
    );
    assert!(hello_lines > 0, "the LAN capture saw nothing");
    assert!(served > CLIENTS as u64, "the clients were served: {served}");
    assert!(worst_state.is_empty(), "{worst_state}");
    assert_eq!(
        r2_active, 0,
        "r2 sent active hellos: r1 missed its hold time"
    );
    assert_eq!(common::hsrp_state(&r1), "Active");
    // Hello every 1 s: a gap of 2 s or more is a missing hello.
    let span = r1_active.last().unwrap_or(&0.0) - r1_active.first().unwrap_or(&0.0);
    assert!(
        span >= LOAD.as_secs_f64() && hello_gap < 2.0,
        "r1 missed hellos under load: {} over {span:.1} s, largest gap {hello_gap:.2} s",
        r1_active.len()
    );
    // The reliable session's keepalives (every 1 s) never pause towards its 10 s idle timeout.
    let tcp_span = tcp_segments.last().unwrap_or(&0.0) - tcp_segments.first().unwrap_or(&0.0);
    assert!(
        tcp_span >= LOAD.as_secs_f64() && tcp_gap < 5.0,
        "r1's registration was not refreshed on time: {} TCP segments over {tcp_span:.1} s \
         (largest gap {tcp_gap:.1} s), {} UDP Map-Registers\n{}",
        tcp_segments.len(),
        registers.len(),
        ms.exec("show lisp site").stdout
    );
    assert!(
        ms.exec("show lisp site").stdout.contains("yes"),
        "still registered after the load"
    );
    drop(links);
    drop(underlay);
}
