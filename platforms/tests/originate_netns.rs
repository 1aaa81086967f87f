//! A packet of the switch's own (`InjectTarget::Routed`) leaves a routed port as a real host
//! receives it: the switch resolves the next hop with ARP, fills in its own address as source,
//! and the host's UDP socket gets the datagram; tshark on the host finds nothing to complain
//! about (checksums verified).

#![allow(clippy::unwrap_used)] // test set-up: a failure is the test's failure

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::needs_root;
use roamer_forwarding::tables::Limits;
use roamer_hal::{Backend, InjectTarget, L3Interface, Mac, PacketIo, PortId, TableEntry, TableOp};
use roamer_platforms::software::{AfPacketPort, PortIo, SoftwareBackend};
use roamer_test_support::{Capture, Netns, Veth, unique_prefix};

const LISP_CONTROL: u16 = 4342;

/// UDP 4342 -> 4342 carrying `hello` to `dst`, as the control plane hands it over: MAC
/// addresses and source zero, checksums zero, padded to the Ethernet minimum.
fn own_udp(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    // Version/IHL, TOS, total length 33, id, DF, TTL 64, UDP, checksum, source 0.0.0.0.
    f.extend_from_slice(&[0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&LISP_CONTROL.to_be_bytes());
    f.extend_from_slice(&LISP_CONTROL.to_be_bytes());
    f.extend_from_slice(&[0, 13, 0, 0]);
    f.extend_from_slice(b"hello");
    f.resize(60, 0);
    f
}

/// A tshark on the host decoding UDP 4342 as plain data (the payload is no LISP message) with
/// IPv4 and UDP checksum verification on. Ended by its process id on drop.
fn tshark_start(ns: &Netns, dev: &str, fields: &[&str]) -> Capture {
    Capture::start_with(
        ns,
        dev,
        "udp port 4342",
        1,
        fields,
        &[
            "-d",
            "udp.port==4342,data",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ],
        Duration::from_secs(30),
    )
    .expect("tshark did not start capturing")
}

/// A switch namespace whose routed port (192.0.2.1/24) is a veth to a host namespace
/// (192.0.2.2/24) with a UDP socket on 4342; the data path runs over the switch's end.
/// Fields drop in order: the data path first, the namespaces last.
struct RoutedLink {
    backend: SoftwareBackend,
    socket: UdpSocket,
    router_mac: [u8; 6],
    host_dev: String,
    _veth: Veth,
    host: Netns,
    _switch: Netns,
}

fn routed_link() -> RoutedLink {
    let p = unique_prefix();
    let switch = Netns::new(&format!("{p}s")).unwrap();
    let host = Netns::new(&format!("{p}h")).unwrap();
    let (sw_dev, host_dev) = (format!("{p}sw"), format!("{p}ho"));
    let veth = Veth::new(&sw_dev, &host_dev).unwrap();
    veth.move_to(&sw_dev, &switch).unwrap();
    veth.move_to(&host_dev, &host).unwrap();
    // No IPv6 chatter on the link; the switch side has no kernel address, only roamer's.
    for ns in [&switch, &host] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            .unwrap();
    }
    host.addr(&host_dev, "192.0.2.2/24").unwrap();

    let port = {
        let dev = sw_dev.clone();
        switch
            .enter(move || AfPacketPort::open(&dev))
            .unwrap()
            .unwrap()
    };
    let router_mac = port.mac();
    let mut backend = SoftwareBackend::start(
        vec![(PortId(1), Box::new(port) as Box<dyn PortIo>)],
        Limits::default(),
    )
    .unwrap();
    // What `interface Ethernet1/1; no switchport; ip address 192.0.2.1/24` programs.
    let iface = L3Interface::Port(PortId(1));
    let results = backend.apply(&[
        TableOp::add(TableEntry::RouterMac {
            iface,
            mac: Mac(router_mac),
            virtual_mac: false,
        }),
        TableOp::add(TableEntry::InterfaceAddress {
            iface,
            addr: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
            virtual_mac: None,
        }),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let socket = host
        .enter(|| UdpSocket::bind(("192.0.2.2", LISP_CONTROL)))
        .unwrap()
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    RoutedLink {
        backend,
        socket,
        router_mac,
        host_dev,
        _veth: veth,
        host,
        _switch: switch,
    }
}

/// Waits up to `timeout` for one datagram on `socket`.
fn receive(socket: &UdpSocket, buf: &mut [u8], timeout: Duration) -> Option<(usize, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match socket.recv_from(buf) {
            Ok(got) => return Some(got),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("receive on the host: {e}"),
        }
    }
    None
}

#[test]
fn one_routed_injection_to_an_unresolved_neighbour_reaches_the_host_once_it_answers_arp() {
    needs_root();
    // Bound whole: the namespaces live until the end of the test.
    let mut link = routed_link();
    let (backend, socket) = (&mut link.backend, &link.socket);

    // Injected once, never again: it gleans, waits for the host's ARP reply, then leaves.
    backend
        .inject(InjectTarget::Routed, &own_udp(Ipv4Addr::new(192, 0, 2, 2)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let Some((n, from)) = receive(socket, &mut buf, Duration::from_millis(900)) else {
        panic!(
            "the host never received the datagram: {:?}",
            backend.snapshot().map(|l| l.counters)
        );
    };
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(
        from,
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), LISP_CONTROL)),
        "sent from the routed interface's address"
    );
    let learned = backend.snapshot().unwrap();
    let counters = &learned.counters;
    assert_eq!(counters.drops.get("glean"), Some(&1), "{counters:?}");
    assert_eq!(counters.originated, 1, "{counters:?}");
    assert_eq!(counters.routed, 1, "{counters:?}");
    assert_eq!(counters.drops.get("glean-expired"), None, "{counters:?}");
    assert!(
        learned
            .neighbors
            .iter()
            .any(|(_, ip, _, _)| *ip == "192.0.2.2".parse::<std::net::IpAddr>().unwrap()),
        "the host's ARP reply was learned: {:?}",
        learned.neighbors
    );
    // Exactly once: nothing is left waiting to be sent a second time.
    assert!(
        receive(socket, &mut buf, Duration::from_millis(1200)).is_none(),
        "the datagram arrived twice"
    );
}

#[test]
fn routed_injection_reaches_a_host_socket_from_the_interface_address() {
    needs_root();
    // Bound whole: the namespaces live until the end of the test.
    let mut link = routed_link();
    let RoutedLink {
        ref mut backend,
        ref socket,
        router_mac,
        ref host_dev,
        ref host,
        ..
    } = link;
    // The host's socket proves delivery (its kernel checks the sums); tshark proves the bytes.
    roamer_test_support::require_tool("tshark", "tshark");
    let tshark = {
        tshark_start(
            host,
            host_dev,
            &[
                "eth.src",
                "ip.src",
                "ip.ttl",
                "ip.checksum.status",
                "udp.srcport",
                "udp.checksum",
                "udp.checksum.status",
                "data.data",
                "_ws.malformed",
                "_ws.expert",
            ],
        )
    };

    // The first attempt gleans (the switch asks who has 192.0.2.2) and waits for the answer;
    // injecting again while nothing arrives only adds copies (one injection is enough: see
    // `one_routed_injection_to_an_unresolved_neighbour_reaches_the_host_once_it_answers_arp`).
    let frame = own_udp(Ipv4Addr::new(192, 0, 2, 2));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1500];
    let (n, from) = loop {
        assert!(
            Instant::now() < deadline,
            "the host never received the datagram: {:?}",
            backend.snapshot().map(|l| l.counters)
        );
        backend.inject(InjectTarget::Routed, &frame).unwrap();
        if let Some(got) = receive(socket, &mut buf, Duration::from_millis(200)) {
            break got;
        }
    };
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(
        from,
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), LISP_CONTROL)),
        "sent from the routed interface's address"
    );
    let counters = backend.snapshot().unwrap().counters;
    assert!(
        counters.drops.get("glean").copied().unwrap_or(0) >= 1,
        "the first attempt gleaned: {counters:?}"
    );
    assert!(
        counters.originated >= 1 && counters.routed >= 1,
        "{counters:?}"
    );

    // tshark says "Capturing on" a moment before it sees packets, and the datagram leaves as
    // soon as the host answers ARP: when tshark missed it, a later one (resolved now) will do.
    let mut line = None;
    for _ in 0..5 {
        if let Some(l) = tshark.next_line(Duration::from_secs(2)) {
            line = Some(l);
            break;
        }
        backend.inject(InjectTarget::Routed, &frame).unwrap();
    }
    let line = line.expect("tshark decoded the datagram");
    let fields: Vec<&str> = line.split('\t').collect();
    let mac_text = router_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(fields.len(), 10, "{line}");
    assert_eq!(fields[0], mac_text, "from the interface's MAC: {line}");
    assert_eq!(fields[1], "192.0.2.1", "{line}");
    assert_eq!(fields[2], "64", "TTL not decremented: {line}");
    assert_eq!(fields[3], "1", "IPv4 header checksum good: {line}");
    assert_eq!(fields[4], "4342", "{line}");
    assert_ne!(fields[5], "0x0000", "a UDP checksum is sent: {line}");
    assert_eq!(fields[6], "1", "UDP checksum good: {line}");
    assert_eq!(fields[7], "68656c6c6f", "payload: {line}");
    assert!(
        fields[8..].iter().all(|f| f.is_empty()),
        "malformed or expert info: {line}"
    );
}
