//! Large TCP segments across two roamer xTRs. The hosts' veths hand the ITR 64 KiB segments
//! (vnet-hdr GSO); over an underlay of MTU 9000 the ITR cuts each into TCP packets of as many
//! segment sizes as fit the tunnel and encapsulates each as one LISP packet, and the ETR hands
//! each decapsulated packet, larger than the host port's MTU of 1500, to the host's veth as one
//! GSO frame. Over an underlay of MTU 1500 the same transfer works the way it always did
//! (path-MTU discovery from the ITR's "too big" errors, one segment per LISP packet).
//!
//! Checked: several MB (IPv4 and IPv6 EIDs over IPv4 RLOCs)
//! arrive byte for byte; tshark on the underlay decodes LISP data packets larger than 1500
//! octets, none malformed, every IP and TCP checksum good (the ITR completes the checksums the
//! hosts leave to the offload); the counters say what happened and count no drop.
//!
//! The ports are AF_PACKET (`io af-packet`): this test captures on the switch's own port
//! devices or relies on vnet-hdr large segments, which AF_XDP ports do not give
//! (tests/afxdp_netns.rs runs these paths over AF_XDP).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::Daemon;
use common::lisp_config as lisp;
use roamer_test_support::pcap::CHECK_CHECKSUMS;
use roamer_test_support::{self as support, Capture, Netns, Veth};

/// xTR `me` (1 or 2): host port `{prefix}h{me}` in VLAN 10 (SVI 10.{me}0.0.1/24 and
/// 2001:db8:{me}0::1/64), routed underlay port `{prefix}u{me}` (192.0.2.{me}/24); its EIDs
/// registered locally, the peer's in static map-cache entries.
fn xtr_config(prefix: &str, me: u8, peer: u8) -> String {
    let underlay = format!("ip address 192.0.2.{me}/24");
    format!(
        "{}interface Vlan10\n  ip address 10.{me}0.0.1/24\n  ipv6 address 2001:db8:{me}0::1/64\n\
         ip lisp itr-etr\nipv6 lisp itr-etr\n\
         ip lisp database-mapping 10.{me}0.0.0/24 192.0.2.{me} priority 1 weight 100\n\
         ipv6 lisp database-mapping 2001:db8:{me}0::/64 192.0.2.{me} priority 1 weight 100\n\
         ip lisp map-cache 10.{peer}0.0.0/24 192.0.2.{peer} priority 1 weight 100\n\
         ipv6 lisp map-cache 2001:db8:{peer}0::/64 192.0.2.{peer} priority 1 weight 100\n",
        lisp::af_packet(lisp::xtr_node(prefix, &me.to_string(), 'h', &[&underlay])),
    )
}

/// Two hosts behind two xTRs joined by an underlay veth of `underlay_mtu`. Fields drop in
/// order: the daemons first, the namespaces (and everything in them) last.
struct Lab {
    d1: Daemon,
    d2: Daemon,
    prefix: String,
    _links: Vec<Veth>,
    _underlay: Veth,
    x1: Netns,
    _x2: Netns,
    h1: Netns,
    h2: Netns,
}

fn lab(underlay_mtu: u32) -> Lab {
    let prefix = support::unique_prefix();
    let ns = |n: &str| Netns::new(&format!("{prefix}{n}")).expect("netns");
    let (x1, x2, h1, h2) = (ns("x1"), ns("x2"), ns("a"), ns("b"));
    let underlay = Veth::new(&format!("{prefix}u1"), &format!("{prefix}u2")).expect("underlay");
    let mtu = underlay_mtu.to_string();
    for (x, n) in [(&x1, 1), (&x2, 2)] {
        let dev = format!("{prefix}u{n}");
        underlay.move_to(&dev, x).expect("underlay port");
        x.ip(&["link", "set", &dev, "mtu", &mtu]).expect("mtu");
        x.ip(&["link", "set", &dev, "up"]).expect("up");
    }
    let mut links = Vec::new();
    for (x, h, n) in [(&x1, &h1, 1), (&x2, &h2, 2)] {
        let (port, host) = (format!("{prefix}h{n}"), format!("{prefix}e{n}"));
        let v = Veth::new(&port, &host).expect("veth");
        v.move_to(&port, x).expect("port");
        v.move_to(&host, h).expect("host");
        x.ip(&["link", "set", &port, "up"]).expect("up");
        h.dual_stack(
            &host,
            &format!("10.{n}0.0.5/24"),
            &format!("10.{n}0.0.1"),
            &format!("2001:db8:{n}0::5/64"),
            &format!("2001:db8:{n}0::1"),
        )
        .expect("host addresses");
        links.push(v);
    }
    let d1 = Daemon::start_in_netns(&xtr_config(&prefix, 1, 2), x1.name());
    let d2 = Daemon::start_in_netns(&xtr_config(&prefix, 2, 1), x2.name());
    Lab {
        d1,
        d2,
        prefix,
        _links: links,
        _underlay: underlay,
        x1,
        _x2: x2,
        h1,
        h2,
    }
}

/// `len` reproducible pseudo-random octets (xorshift, seeded).
fn known_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Sends `data` over one TCP connection from `from` to `to:port` (a listener in `server`) and
/// returns what the listener read until the sender closed, and how long it took.
fn transfer(
    from: &Netns,
    server: &Netns,
    to: IpAddr,
    port: u16,
    data: &[u8],
) -> (Vec<u8>, Duration) {
    let listening = server.spawn(move || -> std::io::Result<Vec<u8>> {
        let listener = std::net::TcpListener::bind((to, port))?;
        let mut stream = support::accept_within(&listener, Duration::from_secs(30))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got)?;
        Ok(got)
    });
    let started = Instant::now();
    let payload = data.to_vec();
    let sending = from.spawn(move || -> std::io::Result<()> {
        let mut stream =
            support::connect_within(SocketAddr::from((to, port)), Duration::from_secs(30))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.write_all(&payload)?;
        stream.shutdown(std::net::Shutdown::Write)
    });
    sending
        .join()
        .expect("sender thread")
        .expect("sender namespace")
        .expect("sent");
    let got = listening
        .join()
        .expect("listener thread")
        .expect("listener namespace")
        .expect("received");
    (got, started.elapsed())
}

/// `data` from h1 to h2 at `to`, which must arrive whole and unchanged.
fn transfer_intact(lab: &Lab, to: IpAddr, port: u16, data: &[u8]) {
    // Both ways once first: neighbours resolved and EIDs seen before the stream starts.
    assert!(
        ping(&lab.h1, to),
        "{to} does not answer pings across the xTRs"
    );
    let (got, took) = transfer(&lab.h1, &lab.h2, to, port, data);
    assert_eq!(got.len(), data.len(), "octets that arrived at {to}");
    assert!(got == data, "the stream to {to} arrived changed");
    eprintln!(
        "TCP to {to} across LISP: {} B in {took:?} ({:.0} Mbit/s, debug build)",
        data.len(),
        data.len() as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

fn ping(ns: &Netns, to: IpAddr) -> bool {
    let to = to.to_string();
    support::wait_until(Duration::from_secs(10), || {
        ns.exec(&["ping", "-c", "1", "-W", "1", &to]).is_ok()
    })
}

/// A counter of `show forwarding counters` (0 when not shown).
fn counter(d: &Daemon, name: &str) -> u64 {
    let text = d.exec("show forwarding counters").stdout;
    text.lines()
        .find_map(|l| {
            let (key, value) = l.trim().rsplit_once(char::is_whitespace)?;
            (key.trim() == name).then(|| value.parse().ok())?
        })
        .unwrap_or(0)
}

/// Switches the UDP segmentation and checksum offloads of xtr1's underlay port: off, the
/// kernel cuts the ITR's trains of LISP packets into datagrams and completes their checksums
/// before they reach the wire (and a capture), as for a NIC without offloads; on (the veth
/// default), they reach xtr2 whole, checksums partial.
fn underlay_uso(lab: &Lab, on: bool) {
    let dev = format!("{}u1", lab.prefix);
    let state = if on { "on" } else { "off" };
    lab.x1
        .exec(&[
            "ethtool",
            "-K",
            &dev,
            "tx-udp-segmentation",
            state,
            "tx-checksum-ip-generic",
            state,
        ])
        .expect("ethtool -K tx-udp-segmentation tx-checksum-ip-generic");
}

const FIELDS: [&str; 10] = [
    "frame.len",
    "ip.len",
    "frame.protocols",
    "ip.checksum.status",
    "tcp.checksum.status",
    "tcp.len",
    "tcp.flags.fin",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
];

/// Starts tshark on xtr1's underlay port for the first `count` LISP data packets, verifying
/// IP, UDP and TCP checksums (TCP sequence analysis off: the capture may miss packets; the
/// test streams decoded as plain data, not by heuristics that take random octets for some
/// protocol).
fn capture_lisp(lab: &Lab, count: usize) -> Capture {
    Capture::start_with(
        &lab.x1,
        &format!("{}u1", lab.prefix),
        "udp dst port 4341",
        count,
        &FIELDS,
        &[
            &CHECK_CHECKSUMS[..],
            &[
                "-o",
                "tcp.analyze_sequence_numbers:FALSE",
                "-o",
                "tcp.try_heuristic_first:FALSE",
                "-d",
                "tcp.port==5001,data",
                "-d",
                "tcp.port==5002,data",
            ],
        ]
        .concat(),
        Duration::from_secs(60),
    )
    .expect("tshark on the underlay")
}

/// The lines the capture printed (it ends after `count` packets or its time limit).
fn lines(capture: &Capture) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    while let Some(l) = capture.next_line(Duration::from_secs(10)) {
        out.push(l.split('\t').map(str::to_string).collect());
    }
    out
}

/// Checks what `capture` printed: LISP packets carrying `inner` ("ip" or "ipv6") TCP (or a
/// ping), none malformed, IP and TCP checksums good, no expert info beyond connection set-up
/// and tear-down, and a good share of pieces larger than a host packet.
fn check_capture(capture: &Capture, inner: &str) {
    let packets = lines(capture);
    assert!(packets.len() >= 100, "{} packets captured", packets.len());
    let text = packets
        .iter()
        .map(|p| p.join("\t"))
        .collect::<Vec<_>>()
        .join("\n");
    let field = |p: &[String], name: &str| {
        let i = FIELDS.iter().position(|f| *f == name).expect("field");
        p.get(i).cloned().unwrap_or_default()
    };
    let mut large = 0;
    for p in &packets {
        let protocols = field(p, "frame.protocols");
        assert!(field(p, "_ws.malformed").is_empty(), "malformed: {p:?}");
        assert!(
            protocols.starts_with(&format!("eth:ethertype:ip:udp:lisp-data:{inner}:"))
                && ["tcp", "icmp"]
                    .iter()
                    .any(|l4| protocols.contains(&format!(":{l4}"))),
            "not TCP or a ping in LISP: {p:?}"
        );
        // Outer (and inner IPv4) header checksums good.
        assert!(
            field(p, "ip.checksum.status").split(',').all(|s| s == "1"),
            "IP checksum: {p:?}"
        );
        // Every TCP checksum complete: the ITR finishes the ones the hosts left to the offload
        // before it encapsulates (the ETR at the other end need not be roamer).
        if protocols.contains(":tcp") {
            assert_eq!(field(p, "tcp.checksum.status"), "1", "TCP checksum: {p:?}");
        }
        for message in field(p, "_ws.expert.message").split(',') {
            assert!(
                message.is_empty()
                    || message.starts_with("Connection establish")
                    || message.starts_with("Connection finish"),
                "{message:?} on {p:?}"
            );
        }
        let frame_len: usize = field(p, "frame.len").parse().expect("frame.len");
        // Larger than a host packet (1500) in its 36 octets of encapsulation: a piece the ITR cut.
        if frame_len > 14 + 36 + 1500 {
            large += 1;
            // More than one host segment's payload, and within the underlay's MTU.
            let tcp_len: usize = field(p, "tcp.len").parse().expect("tcp.len");
            assert!(
                tcp_len > 1448 && frame_len <= 14 + 9000,
                "a tunnel-sized piece: {p:?}"
            );
        }
    }
    eprintln!(
        "{inner} in LISP: {large} of {} packets captured larger than a host packet",
        packets.len()
    );
    assert!(
        large * 4 >= packets.len(),
        "few LISP packets larger than 1500 octets ({large} of {}):\n{text}",
        packets.len()
    );
}

#[test]
fn tcp_crosses_a_jumbo_underlay_in_large_lisp_packets_and_leaves_the_etr_whole() {
    support::require_root("network namespaces");
    support::require_tool("tshark", "tshark");
    let lab = lab(9000);
    let v4: IpAddr = "10.20.0.5".parse().expect("address");
    let v6: IpAddr = "2001:db8:20::5".parse().expect("address");
    // Both resolved before tshark starts, so the capture is the streams.
    assert!(
        ping(&lab.h1, v4) && ping(&lab.h1, v6),
        "pings across the xTRs"
    );
    // The capture shows what a wire carries: the kernel cuts the ITR's trains of LISP
    // packets (UDP segmentation offload) on the underlay port, as for a NIC without USO.
    underlay_uso(&lab, false);
    let capture = capture_lisp(&lab, 600);
    transfer_intact(&lab, v4, 5001, &known_bytes(8 << 20, 0x5eed));
    check_capture(&capture, "ip");
    let capture = capture_lisp(&lab, 600);
    transfer_intact(&lab, v6, 5002, &known_bytes(6 << 20, 0x6eed));
    check_capture(&capture, "ipv6");
    assert!(
        counter(&lab.d1, "udp-coalesced") > 0,
        "the ITR sent trains of LISP packets"
    );
    assert_eq!(counter(&lab.d2, "udp-segments-received"), 0);

    // With the offload on, the trains cross the veth whole: the ETR cuts them itself.
    underlay_uso(&lab, true);
    transfer_intact(&lab, v4, 5003, &known_bytes(4 << 20, 0x7eed));
    transfer_intact(&lab, v6, 5004, &known_bytes(4 << 20, 0x8eed));
    assert!(counter(&lab.d2, "udp-segments-received") > 0);

    // The ITR cut the hosts' large segments to fit the tunnel, the ETR sent the large
    // decapsulated packets on as GSO frames; nothing dropped on the way.
    assert!(counter(&lab.d1, "segmented") > 0);
    assert!(counter(&lab.d2, "tcp-segmented") > 0);
    assert_eq!(counter(&lab.d2, "tcp-segmented-in-software"), 0);
    // Pieces of one segment that arrive together leave as one frame again.
    assert!(counter(&lab.d2, "tcp-coalesced") > 0);
    for d in [&lab.d1, &lab.d2] {
        for drop in [
            "drop segment-failed",
            "drop tcp-segment-failed",
            "drop too-big-to-encapsulate",
            "drop no-headroom",
        ] {
            assert_eq!(counter(d, drop), 0, "{drop}");
        }
    }
}

#[test]
fn tcp_still_crosses_an_underlay_of_1500() {
    support::require_root("network namespaces");
    let lab = lab(1500);
    let data = known_bytes(3 << 20, 0x1500);
    transfer_intact(&lab, "10.20.0.5".parse().expect("address"), 5003, &data);
    transfer_intact(
        &lab,
        "2001:db8:20::5".parse().expect("address"),
        5004,
        &data,
    );
    // One segment per LISP packet: the ETR has nothing larger than its host port to send.
    assert!(counter(&lab.d1, "segmented") > 0);
    assert_eq!(counter(&lab.d2, "tcp-segmented"), 0);
    for d in [&lab.d1, &lab.d2] {
        for drop in ["drop segment-failed", "drop tcp-segment-failed"] {
            assert_eq!(counter(d, drop), 0, "{drop}");
        }
    }
}

/// A host that does not set DF (`ip_no_pmtu_disc`) behind an underlay of 1500: a host segment
/// no longer fits the tunnel after its 36 octets, so each piece the ITR cuts is fragmented
/// before encapsulation, and the transfer still arrives byte for byte.
#[test]
fn tcp_without_df_is_cut_then_fragmented_over_an_underlay_of_1500() {
    support::require_root("network namespaces");
    let lab = lab(1500);
    lab.h1
        .exec(&["sysctl", "-qw", "net.ipv4.ip_no_pmtu_disc=1"])
        .expect("sysctl");
    let data = known_bytes(2 << 20, 0xdf);
    transfer_intact(&lab, "10.20.0.5".parse().expect("address"), 5005, &data);
    assert!(counter(&lab.d1, "segmented") > 0, "large segments cut");
    assert!(counter(&lab.d1, "fragmented") > 0, "pieces fragmented");
    for d in [&lab.d1, &lab.d2] {
        for drop in [
            "drop segment-failed",
            "drop fragment-failed",
            "drop too-big-to-encapsulate",
        ] {
            assert_eq!(counter(d, drop), 0, "{drop}");
        }
    }
}
