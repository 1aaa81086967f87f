//! LISP with `roamer platform backend kernel` (issue 17) in network namespaces.
//!
//! - The control plane through the kernel backend's sockets (runs now): two kernel-backend
//!   xTRs register their EID prefixes with a software-backend map-server over UDP 4342: their
//!   Map-Registers leave through the raw routed-injection socket and the map-server's answers
//!   come back through the raw control sockets; each xTR keeps a reliable-registration session
//!   (the daemon's TCP, which the kernel's TCP must leave alone) with the map-server, also
//!   when the map-server runs the kernel backend; a software-backend ITR resolves the
//!   kernel-backend site's EIDs through the mapping system.
//! - The data path (the TC-eBPF programs of `platforms/bpf/lisp_tc.c`): hosts ping each other
//!   over LISP, IPv4 and IPv6 EIDs, a TCP transfer arrives byte for byte, tshark decodes the
//!   LISP packets on the underlay; a kernel-backend xTR talks to a software-backend xTR (whose
//!   ETR takes the kernel ITR's encapsulated TSO segments whole).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::{Daemon, wait_for};
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{self as support, Capture, Netns, Veth, require_root, require_tool};

const KEY: &str = "roamer-key";

fn ms_config(p: &str, backend: &str) -> String {
    format!(
        "hostname ms\n\
         roamer platform backend {backend}\n\
         roamer platform port Ethernet1/3 {p}um\n\
         feature lisp\n\
         interface Ethernet1/3\n  no switchport\n  ip address 192.0.2.100/24\n\
         ip lisp map-server\nip lisp map-resolver\n\
         lisp site one\n  eid-prefix 10.1.0.0/24\n  eid-prefix 2001:db8:1::/64\n  authentication-key {KEY}\n\
         lisp site two\n  eid-prefix 10.2.0.0/24\n  eid-prefix 2001:db8:2::/64\n  authentication-key {KEY}\n"
    )
}

/// xTR `n` with the given backend: its site 10.n.0.0/24 and 2001:db8:n::/64 on a routed port.
fn xtr_config(p: &str, n: u8, backend: &str) -> String {
    format!(
        "hostname xtr{n}\n\
         roamer platform backend {backend}\n\
         roamer platform port Ethernet1/1 {p}h{n}\n\
         roamer platform port Ethernet1/3 {p}u{n}\n\
         feature lisp\n\
         interface Ethernet1/1\n  no switchport\n  ip address 10.{n}.0.1/24\n  ipv6 address 2001:db8:{n}::1/64\n\
         interface Ethernet1/3\n  no switchport\n  ip address 192.0.2.{n}/24\n\
         ip lisp itr-etr\nipv6 lisp itr-etr\n\
         ip lisp itr map-resolver 192.0.2.100\n\
         ip lisp etr map-server 192.0.2.100 key {KEY}\n\
         ipv6 lisp itr map-resolver 192.0.2.100\n\
         ipv6 lisp etr map-server 192.0.2.100 key {KEY}\n\
         ip lisp database-mapping 10.{n}.0.0/24 192.0.2.{n} priority 1 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:{n}::/64 192.0.2.{n} priority 1 weight 100\n"
    )
}

struct Sites {
    /// tshark on xTR 1's underlay port, started before the daemons (UDP 4342).
    control: Option<Capture>,
    _links: Vec<Veth>,
    ms: Daemon,
    x1: Daemon,
    x2: Daemon,
    x1_ns: Netns,
    a: Netns,
    b: Netns,
    _ns: Vec<Netns>,
    p: String,
}

/// A map-server (software backend), xTR 1 (kernel backend), xTR 2 (`backend2`), host `a`
/// behind xTR 1 and host `b` behind xTR 2.
fn sites(backend2: &str, capture_control: bool) -> Sites {
    sites_over(backend2, capture_control, 1500)
}

/// As [`sites`], the underlay (both xTRs' links and the bridge between them) at `underlay_mtu`.
fn sites_over(backend2: &str, capture_control: bool, underlay_mtu: u32) -> Sites {
    sites_with("software", backend2, capture_control, underlay_mtu)
}

/// As [`sites_over`], the map-server on `ms_backend`.
fn sites_with(ms_backend: &str, backend2: &str, capture_control: bool, underlay_mtu: u32) -> Sites {
    require_root("network namespaces");
    let p = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{p}{n}")).expect("netns");
    let (core, ms_ns, x1_ns, x2_ns, a, b) =
        (ns("k"), ns("m"), ns("x1"), ns("x2"), ns("a"), ns("b"));
    let mut links =
        common::bridged_underlay(&core, &p, &[("m", &ms_ns), ("1", &x1_ns), ("2", &x2_ns)]);
    let mtu = underlay_mtu.to_string();
    for (n, x) in [(1u8, &x1_ns), (2, &x2_ns)] {
        x.ip(&["link", "set", &format!("{p}u{n}"), "mtu", &mtu])
            .expect("underlay mtu");
        core.ip(&["link", "set", &format!("{p}k{n}"), "mtu", &mtu])
            .expect("underlay mtu");
    }
    for (n, x, h) in [(1u8, &x1_ns, &a), (2, &x2_ns, &b)] {
        let v = Veth::between(&format!("{p}h{n}"), x, &format!("{p}e{n}"), h).expect("veth");
        let e = format!("{p}e{n}");
        h.dual_stack(
            &e,
            &format!("10.{n}.0.5/24"),
            &format!("10.{n}.0.1"),
            &format!("2001:db8:{n}::5/64"),
            &format!("2001:db8:{n}::1"),
        )
        .expect("host addresses");
        links.push(v);
    }
    let control = capture_control.then(|| {
        require_tool("tshark", "tshark");
        Capture::start_with(
            &x1_ns,
            &format!("{p}u1"),
            "udp port 4342",
            4,
            &[
                "ip.src",
                "ip.dst",
                "ip.checksum.status",
                "udp.checksum.status",
                "frame.protocols",
                "_ws.expert.message",
            ],
            &CHECK_CHECKSUMS[..],
            Duration::from_secs(30),
        )
        .expect("tshark on the underlay")
    });
    let ms = Daemon::start_in_netns(&ms_config(&p, ms_backend), ms_ns.name());
    let x1 = Daemon::start_in_netns(&xtr_config(&p, 1, "kernel"), x1_ns.name());
    let x2 = Daemon::start_in_netns(&xtr_config(&p, 2, backend2), x2_ns.name());
    Sites {
        control,
        _links: links,
        ms,
        x1,
        x2,
        x1_ns,
        a,
        b,
        _ns: vec![core, ms_ns, x2_ns],
        p,
    }
}

fn both_registered(s: &Sites) -> String {
    wait_for("both sites registered", Duration::from_secs(30), || {
        let site = s.ms.exec("show lisp site").stdout;
        (site.lines().filter(|l| l.contains(" yes")).count() >= 2).then_some(site)
    })
}

#[test]
fn kernel_backend_xtrs_register_with_a_map_server() {
    let s = sites("kernel", true);
    let site = both_registered(&s);
    assert!(
        site.contains("one") && site.contains("two"),
        "both sites: {site}"
    );
    // What xTR 1 sent (through the raw socket) and received decodes with good checksums.
    let capture = s.control.as_ref().unwrap();
    let text = capture.first_lines(4, Duration::from_secs(5)).join("\n");
    eprintln!("UDP 4342 on xTR 1's underlay:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.0.2.1\t192.0.2.100\t")),
        "no Map-Register from the kernel-backend xTR:\n{text}"
    );
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        // checksum.status: 1 = good.
        assert_eq!(
            (f.get(2), f.get(3)),
            (Some(&"1"), Some(&"1")),
            "checksums: {l}"
        );
        assert!(f.get(4).is_some_and(|p| p.ends_with("udp:lisp")), "{l}");
        assert!(f.get(5).is_none_or(|e| e.is_empty()), "tshark expert: {l}");
    }
    // The Map-Notifies came back through the raw control sockets: the xTRs count them as punts.
    for d in [&s.x1, &s.x2] {
        let counters = d.exec("show forwarding counters").stdout;
        assert!(
            common::counter(d, "punted") > 0,
            "no punt through the control sockets:\n{counters}"
        );
    }
    reliable_sessions_up(&s);
}

/// Both xTRs keep a reliable-registration session with the map-server, and register over it
/// (`yes#`): the daemon's TCP, on both ends, undisturbed by the kernel's.
fn reliable_sessions_up(s: &Sites) {
    let sessions =
        s.ms.wait_show("two sessions up", 30, "show lisp session", |t| {
            t.starts_with("Sessions for VRF default, total: 2, established: 2\n")
        });
    eprintln!("{sessions}");
    s.ms.wait_show(
        "registrations over the sessions",
        30,
        "show lisp site",
        |t| t.matches("yes#").count() >= 2,
    );
    for x in [&s.x1, &s.x2] {
        x.wait_show("session up", 10, "show lisp session", |t| {
            t.starts_with("Sessions for VRF default, total: 1, established: 1\n")
        });
    }
}

#[test]
fn a_kernel_backend_map_server_keeps_reliable_sessions_with_kernel_backend_xtrs() {
    let s = sites_with("kernel", "kernel", false, 1500);
    both_registered(&s);
    reliable_sessions_up(&s);
}

fn ping(from: &Netns, to: &str) -> String {
    common::iputils_ping(from, &["-n", "-c", "3", "-i", "0.2", "-w", "8", to])
}

fn lisp_traffic_both_ways(s: &Sites) {
    require_tool("tshark", "tshark");
    both_registered(s);
    let capture = common::lisp_data_capture(&s.x1_ns, &format!("{}u1", s.p));
    for (from, to) in [
        (&s.a, "10.2.0.5"),
        (&s.b, "10.1.0.5"),
        (&s.a, "2001:db8:2::5"),
    ] {
        let text = ping(from, to);
        if !(text.contains(" 0% packet loss") || text.contains("3 received")) {
            for d in [&s.x1, &s.x2] {
                eprintln!("log:\n{}", d.drain_log().join("\n"));
                eprintln!("{}", d.exec("show forwarding counters").stdout);
                eprintln!("{}", d.exec("show ip lisp map-cache").stdout);
            }
        }
        assert!(
            text.contains(" 0% packet loss") || text.contains("3 received"),
            "ping {to} over LISP:\n{text}"
        );
    }
    // xTR 1's ETR program (kernel backend) forwarded the decapsulated pings itself: their
    // next hop was resolved.
    assert!(
        common::counter(&s.x1, "lisp-decapsulated-forwarded") > 0,
        "{}",
        s.x1.exec("show forwarding counters").stdout
    );
    let text = capture
        .first_lines(4, Duration::from_millis(500))
        .join("\n");
    assert!(
        common::has_lisp_icmp(&text, "192.0.2.1,10.1.0.5", "192.0.2.2,10.2.0.5"),
        "no LISP data packet decoded:\n{text}"
    );
    assert!(
        !text.to_lowercase().contains("malformed") && !text.contains("Bad checksum"),
        "{text}"
    );
    let t0 = std::time::Instant::now();
    // A TCP transfer from a to b arrives byte for byte.
    const SIZE: usize = 1 << 20;
    let server = s.b.spawn(|| -> std::io::Result<Vec<u8>> {
        let l = std::net::TcpListener::bind("10.2.0.5:5001")?;
        let (mut c, _) = l.accept()?;
        // A transfer that stalls is an error, not a test that never ends.
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut got = Vec::new();
        c.read_to_end(&mut got)?;
        Ok(got)
    });
    s.a.enter(|| -> std::io::Result<()> {
        let mut c =
            support::connect_within("10.2.0.5:5001".parse().unwrap(), Duration::from_secs(10))?;
        c.set_write_timeout(Some(Duration::from_secs(30)))?;
        let data: Vec<u8> = (0..SIZE).map(support::pattern).collect();
        c.write_all(&data)
    })
    .unwrap()
    .expect("send over LISP");
    let got = server.join().unwrap().unwrap().expect("receive");
    eprintln!("1 MiB over LISP in {:?}", t0.elapsed());
    assert_eq!(got.len(), SIZE);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, b)| *b == support::pattern(i)),
        "bytes differ"
    );
}

#[test]
fn two_kernel_xtrs_carry_host_traffic_over_lisp() {
    let s = sites("kernel", false);
    lisp_traffic_both_ways(&s);
}

/// Over a jumbo underlay the ITR encapsulates full-sized host packets whole, and the ETR must
/// still decapsulate them: its route lookup for the inner destination sees the packet with
/// the LISP overhead, larger than the EID-facing port's MTU (this once dropped them all). The
/// sending host segments itself (no TSO/GSO), so the packets cross one by one: a large GSO
/// packet passes the kernel's MTU check whole and would hide the fault.
#[test]
fn two_kernel_xtrs_carry_tcp_over_a_jumbo_underlay() {
    require_tool("ethtool", "ethtool");
    let s = sites_over("kernel", false, 9000);
    s.a.exec(&[
        "ethtool",
        "-K",
        &format!("{}e1", s.p),
        "tso",
        "off",
        "gso",
        "off",
    ])
    .expect("ethtool -K tso off gso off");
    lisp_traffic_both_ways(&s);
}

#[test]
fn a_kernel_xtr_and_a_software_xtr_carry_host_traffic_over_lisp() {
    let s = sites("software", false);
    lisp_traffic_both_ways(&s);
}

/// A software-backend ITR resolves the EIDs behind a kernel-backend xTR through the mapping
/// system (Map-Request, Map-Reply). The other direction starts with a map-cache miss that only
/// the ITR program reports: it needs the LISP offload, as the data packets do.
#[test]
fn a_software_itr_resolves_the_eids_of_a_kernel_backend_xtr() {
    let s = sites("software", false);
    both_registered(&s);
    // Traffic towards the kernel-backend site makes the software ITR ask the map-resolver.
    let _ = Command::new("ip")
        .args(["netns", "exec", s.b.name()])
        .args(["ping", "-n", "-c", "1", "-W", "1", "10.1.0.5"])
        .output();
    wait_for(
        "a map-cache entry for 10.1.0.5 via 192.0.2.1",
        Duration::from_secs(15),
        || {
            let cache = s.x2.exec("show ip lisp map-cache 10.1.0.5").stdout;
            cache.contains("192.0.2.1").then_some(cache)
        },
    );
}
