use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;

use roamer_forwarding::wire::checksum;
use roamer_hal::{L3Interface, Mac};

use super::super::port::{GsoInfo, PortFeatures, PortStats, VNET_HDR_LEN};
use super::*;

fn software() -> SoftwareBackend {
    SoftwareBackend::start(Vec::new(), Limits::default()).expect("data path")
}

roamer_hal::backend_contract_tests!(software());

fn udp_punt(reason: PuntReason, proto: u8, sport: u16, dport: u16, first: u8) -> Punt {
    let mut f = vec![0u8; 14 + 20 + 8 + 4];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[23] = proto;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[42] = first;
    Punt {
        port: PortId(1),
        vlan: None,
        reason,
        frame: f,
    }
}

#[test]
fn registrations_hsrp_and_reliable_tcp_are_urgent_map_requests_are_not() {
    let lisp = PuntReason::LispControl;
    assert!(
        is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x30)),
        "Map-Register"
    );
    assert!(
        is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x40)),
        "Map-Notify"
    );
    assert!(
        is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x50)),
        "Map-Notify-Ack"
    );
    assert!(
        !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x80)),
        "ECM Map-Request"
    );
    assert!(
        !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x10)),
        "Map-Request"
    );
    assert!(
        !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x20)),
        "Map-Reply"
    );
    assert!(is_urgent(&udp_punt(lisp, 6, 50000, 4342, 0)), "TCP to 4342");
    assert!(
        is_urgent(&udp_punt(PuntReason::ForUs, 6, 4342, 50000, 0)),
        "TCP from 4342"
    );
    assert!(!is_urgent(&udp_punt(PuntReason::ForUs, 6, 22, 50000, 0)));
    assert!(is_urgent(&udp_punt(PuntReason::Hsrp, 17, 1985, 1985, 0)));
    assert!(!is_urgent(&udp_punt(
        PuntReason::ArpForUs,
        17,
        4342,
        4342,
        0x30
    )));
    let mut runt = udp_punt(lisp, 17, 4342, 4342, 0x30);
    runt.frame.truncate(30);
    assert!(!is_urgent(&runt));
}

#[test]
fn injected_frames_to_an_unknown_port_are_dropped_and_trace_learns_nothing() {
    let mut b = software();
    b.inject(InjectTarget::Port(PortId(7)), &[0u8; 60])
        .expect("queued");
    let t = b.trace(PortId(7), None, vec![0u8; 60]).expect("trace");
    assert!(t.verdict.contains("UnknownPort"), "{t:?}");
    let learned = b.snapshot().expect("learned");
    assert!(learned.macs.is_empty());
    assert_eq!(learned.counters.rx, 0, "trace counts nothing");
}

const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// A port whose wire is a Unix datagram socket pair: one datagram is one frame; with `vnet`,
/// a `virtio_net_hdr` and the frame behind it (the port "negotiated" vnet-hdr and TSO), so a
/// test can see the offload the data path asked for.
#[derive(Debug)]
struct MemPort {
    wire: UnixDatagram,
    vnet: bool,
}

impl MemPort {
    fn new(wire: UnixDatagram, vnet: bool) -> MemPort {
        MemPort { wire, vnet }
    }
}

impl PortIo for MemPort {
    fn name(&self) -> &str {
        if self.vnet { "vnet-mem" } else { "mem" }
    }

    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
        let mut datagram = vec![0u8; VNET_HDR_LEN + GSO_FRAME_ROOM];
        for (n, s) in slots.iter_mut().enumerate() {
            s.reset();
            let start = s.start;
            let into = if self.vnet {
                &mut datagram[..]
            } else {
                &mut s.buf[start..]
            };
            let len = match self.wire.recv(into) {
                Ok(len) => len,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) => return Err(e),
            };
            if !self.vnet {
                s.len = len;
                continue;
            }
            let (hdr, frame) = datagram[..len].split_at(VNET_HDR_LEN);
            let hdr: &[u8; VNET_HDR_LEN] = hdr.try_into().map_err(std::io::Error::other)?;
            s.set_frame(frame)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            s.gso = GsoInfo::from_vnet_hdr(hdr)
                .map_err(|t| std::io::Error::other(format!("gso type {t}")))?;
        }
        Ok(slots.len())
    }

    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
        for s in slots.iter_mut() {
            s.insert_vlan()
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            if self.vnet {
                let mut hdr = [0u8; VNET_HDR_LEN];
                GsoInfo::to_vnet_hdr(s.gso.as_ref(), &mut hdr);
                let mut datagram = hdr.to_vec();
                datagram.extend_from_slice(s.frame());
                self.wire.send(&datagram)?;
            } else {
                self.wire.send(s.frame())?;
            }
        }
        Ok(slots.len())
    }

    fn raw_fd(&self) -> RawFd {
        self.wire.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        ROUTER
    }

    fn mtu(&self) -> u32 {
        1500
    }

    fn is_up(&self) -> bool {
        true
    }

    fn features(&self) -> PortFeatures {
        PortFeatures {
            vnet_hdr: self.vnet,
            tso: self.vnet,
            ..PortFeatures::default()
        }
    }

    fn stats(&self) -> PortStats {
        PortStats::default()
    }
}

/// UDP 4342 -> 4342 carrying `hello`, source unspecified, checksums left to the switch.
fn own_udp(dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[0x10, 0xf6, 0x10, 0xf6, 0, 13, 0, 0]);
    f.extend_from_slice(b"hello");
    f.resize(60, 0);
    f
}

fn arp(op: u8, mac: [u8; 6], ip: [u8; 4], target_mac: [u8; 6], target: [u8; 4]) -> Vec<u8> {
    let mut f = target_mac.to_vec();
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// A data path with one routed port (192.0.2.1/24, MAC [`ROUTER`]) and the far end of its
/// wire, which reads with a 2 s timeout.
fn routed_port() -> (SoftwareBackend, UnixDatagram) {
    let (port_end, wire) = UnixDatagram::pair().expect("socket pair");
    port_end.set_nonblocking(true).expect("non-blocking");
    wire.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut b = SoftwareBackend::start(
        vec![(PortId(1), Box::new(MemPort::new(port_end, false)))],
        Limits::default(),
    )
    .expect("data path");
    let iface = L3Interface::Port(PortId(1));
    let results = b.apply(&[
        TableOp::add(TableEntry::RouterMac {
            iface,
            mac: Mac(ROUTER),
            virtual_mac: false,
        }),
        TableOp::add(TableEntry::InterfaceAddress {
            iface,
            addr: "192.0.2.1".parse().expect("address"),
            prefix_len: 24,
            virtual_mac: None,
        }),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (b, wire)
}

/// Reads the ARP request for 192.0.2.2 the switch sends when it gleans.
fn expect_arp_request(wire: &UnixDatagram) {
    let mut buf = [0u8; 2048];
    let n = wire.recv(&mut buf).expect("the ARP request of the glean");
    let request = &buf[..n];
    assert_eq!(&request[..6], &[0xff; 6]);
    assert_eq!(&request[12..14], &[0x08, 0x06]);
    assert_eq!(&request[20..22], &[0, 1], "a request");
    assert_eq!(&request[28..32], &[192, 0, 2, 1], "asked from our address");
    assert_eq!(&request[38..42], &[192, 0, 2, 2]);
}

/// What is left on the wire now (waits `quiet` for stragglers first).
fn rest(wire: &UnixDatagram, quiet: Duration) -> Vec<Vec<u8>> {
    std::thread::sleep(quiet);
    wire.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while let Ok(n) = wire.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    wire.set_nonblocking(false).expect("blocking");
    out
}

/// The peer at 192.0.2.2 answers the switch's ARP request.
fn peer_answers(wire: &UnixDatagram) {
    wire.send(&arp(2, PEER, [192, 0, 2, 2], ROUTER, [192, 0, 2, 1]))
        .expect("ARP reply");
}

/// Checks `f` is `own_udp([192, 0, 2, 2])` as routed out of the port.
fn assert_routed_datagram(f: &[u8]) {
    assert_eq!(&f[..6], &PEER, "to the neighbour");
    assert_eq!(&f[6..12], &ROUTER, "from the interface");
    assert_eq!(&f[12..14], &[0x08, 0x00], "untagged IPv4");
    let ip = &f[14..14 + 33];
    assert_eq!(&ip[12..16], &[192, 0, 2, 1], "our address filled in");
    assert_eq!(ip[8], 64, "TTL unchanged");
    assert_eq!(checksum::fold(checksum::add(0, &ip[..20])), 0xffff);
    let pseudo = checksum::pseudo_ipv4(
        [192, 0, 2, 1].into(),
        [192, 0, 2, 2].into(),
        checksum::IPPROTO_UDP,
        13,
    );
    assert_ne!(&ip[26..28], &[0, 0]);
    assert!(checksum::verifies(pseudo, &ip[20..]), "UDP checksum");
    assert_eq!(&ip[28..], b"hello");
}

/// A routing table over the size from which the data path warms the cache for each
/// receive batch: a burst of transit frames is routed exactly as the table says, those
/// without a route are dropped and counted, and every routed one leaves rewritten.
#[test]
fn a_burst_through_a_table_large_enough_to_be_warmed_is_routed_frame_by_frame() {
    let (mut b, wire) = routed_port();
    let iface = L3Interface::Port(PortId(1));
    let via = "192.0.2.2".parse().expect("address");
    let next_hop = roamer_hal::NextHop::Gateway {
        via,
        iface: Some(iface),
    };
    let slots = 2 * roamer_forwarding::tables::WARM_MIN_ENTRIES as u32;
    // /24s from 20.0.0.0 up, every fourth one missing.
    let mut ops = vec![TableOp::add(TableEntry::Neighbor {
        iface,
        ip: via,
        mac: Mac(PEER),
    })];
    ops.extend((0..slots).filter(|i| i % 4 != 3).map(|i| {
        let addr = std::net::IpAddr::from(((20 << 24) + (i << 8)).to_be_bytes());
        let prefix = roamer_hal::Prefix::new(addr, 24).expect("prefix");
        TableOp::add(TableEntry::Route { prefix, next_hop })
    }));
    let results = b.apply(&ops);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let frames: Vec<(u32, Vec<u8>)> = (0..64u32)
        .map(|k| {
            let slot = k * 1237 % slots;
            let dst = ((20 << 24) + (slot << 8) + 7).to_be_bytes();
            let mut f = ROUTER.to_vec();
            f.extend_from_slice(&PEER);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0]);
            f.extend_from_slice(&[198, 51, 100, 1]);
            f.extend_from_slice(&dst);
            let sum = checksum::ipv4_header(&f[14..34]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
            (slot, f)
        })
        .collect();
    for (_, f) in &frames {
        wire.send(f).expect("frame");
    }
    let routable: Vec<&(u32, Vec<u8>)> = frames.iter().filter(|(slot, _)| slot % 4 != 3).collect();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..routable.len() {
        let n = wire.recv(&mut buf).expect("a routed frame");
        out.push(buf[..n].to_vec());
    }
    for ((_, sent), got) in routable.iter().zip(&out) {
        assert_eq!(&got[..6], &PEER, "to the next hop");
        assert_eq!(&got[6..12], &ROUTER, "from the router");
        assert_eq!(got[22], 63, "TTL decremented");
        assert_eq!(&got[30..34], &sent[30..34], "same destination, in order");
        assert_eq!(checksum::ipv4_header(&got[14..34]), 0, "header checksum");
    }
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.routed, routable.len() as u64);
    assert_eq!(
        counters.drops.get("no-route").copied(),
        Some((frames.len() - routable.len()) as u64)
    );
    assert!((40..64).contains(&routable.len()), "{}", routable.len());
}

/// [`routed_port`] with one routed injection to the peer (192.0.2.2) waiting for its ARP
/// request to be answered (the request seen on the wire).
fn gleaning_routed_port() -> (SoftwareBackend, UnixDatagram) {
    let (mut b, wire) = routed_port();
    b.inject(InjectTarget::Routed, &own_udp([192, 0, 2, 2]))
        .expect("queued");
    expect_arp_request(&wire);
    (b, wire)
}

#[test]
fn routed_injection_gleans_then_leaves_the_routed_port_with_our_address() {
    // One injection: it gleans, waits, and leaves once the peer answers; no second one.
    let (mut b, wire) = gleaning_routed_port();
    peer_answers(&wire);
    let mut buf = [0u8; 2048];
    let n = wire.recv(&mut buf).expect("the waiting datagram");
    assert_routed_datagram(&buf[..n]);
    assert_eq!(b.snapshot().expect("learned").neighbors.len(), 1);

    // Resolved: the next one leaves at once.
    b.inject(InjectTarget::Routed, &own_udp([192, 0, 2, 2]))
        .expect("queued");
    let n = wire.recv(&mut buf).expect("the datagram");
    assert_routed_datagram(&buf[..n]);

    // No route: nothing leaves, the drop is counted.
    b.inject(InjectTarget::Routed, &own_udp([203, 0, 113, 1]))
        .expect("queued");
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.originated, 3, "a new attempt is no new packet");
    assert_eq!(counters.routed, 2);
    assert_eq!(counters.replies, 1, "one ARP request");
    assert_eq!(counters.drops.get("glean"), Some(&1));
    assert_eq!(counters.drops.get("no-route"), Some(&1));
    assert_eq!(counters.drops.get("glean-expired"), None);
    assert_eq!(counters.drops.get("glean-queue-full"), None);
    assert_quiet(&wire);
}

#[test]
fn a_routed_injection_waits_no_longer_than_its_deadline_and_asks_no_more_than_allowed() {
    let (b, wire) = gleaning_routed_port();
    // Busy meanwhile: unrelated frames (an ARP request for someone else) keep the loop
    // going, and the waiting frame gleans again each time without asking again.
    let started = Instant::now();
    let mut asked = Vec::new();
    while started.elapsed() < Duration::from_millis(GLEAN_HOLD_MS + 300) {
        wire.send(&arp(1, PEER, [192, 0, 2, 3], [0; 6], [192, 0, 2, 9]))
            .expect("chatter");
        asked.extend(rest(&wire, Duration::from_millis(20)));
    }
    assert!(
        asked.iter().all(|f| f[12..14] == [0x08, 0x06]),
        "only ARP left"
    );
    assert!(
        asked.len() <= usize::try_from(GLEAN_HOLD_MS / GLEAN_REASK_MS).expect("small"),
        "{} ARP requests in {GLEAN_HOLD_MS} ms",
        asked.len()
    );
    assert_eq!(b.drops.glean_expired.load(Ordering::Relaxed), 1);
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.drops.get("glean-expired"), Some(&1));
    assert_eq!(
        counters.drops.get("glean"),
        Some(&1),
        "kept waiting is no new drop"
    );
    assert_eq!(counters.originated, 1);

    // Too late: the answer takes nothing out any more.
    peer_answers(&wire);
    let deadline = Instant::now() + Duration::from_secs(2);
    while b.snapshot().expect("learned").neighbors.is_empty() {
        assert!(Instant::now() < deadline, "the ARP reply was not learned");
        std::thread::sleep(Duration::from_millis(5));
    }
    let late = rest(&wire, Duration::from_millis(50));
    assert!(
        late.iter().all(|f| f[12..14] != [0x08, 0x00]),
        "the expired datagram left: {late:?}"
    );
}

#[test]
fn a_full_wait_queue_drops_the_oldest_and_counts_it() {
    let (mut b, wire) = routed_port();
    let total = GLEAN_QUEUE + 2;
    for id in 0..total {
        let mut f = own_udp([192, 0, 2, 2]);
        f[18..20].copy_from_slice(&u16::try_from(id).expect("small").to_be_bytes());
        b.inject(InjectTarget::Routed, &f).expect("queued");
    }
    expect_arp_request(&wire);
    // Answered after every injection before it: all of them were routed by then.
    assert_eq!(
        b.snapshot().expect("learned").counters.originated,
        u64::try_from(total).expect("small")
    );
    assert_eq!(b.drops.glean_queue_full.load(Ordering::Relaxed), 2);
    peer_answers(&wire);
    let mut ids = Vec::new();
    let mut buf = [0u8; 2048];
    while ids.len() < GLEAN_QUEUE {
        let n = wire.recv(&mut buf).expect("a waiting datagram");
        let f = &buf[..n];
        assert_routed_datagram(f);
        ids.push(usize::from(u16::from_be_bytes([f[18], f[19]])));
    }
    assert_eq!(
        ids,
        (2..total).collect::<Vec<_>>(),
        "in order, the two oldest gone"
    );
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.drops.get("glean-queue-full"), Some(&2));
    assert_eq!(counters.originated, u64::try_from(total).expect("small"));
    assert_quiet(&wire);
}

const HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x06];

/// An ETR: routed uplink port 1 (192.0.2.1/24) and routed host port 2 (10.20.0.1/24, MTU
/// 1500, host 10.20.0.6 resolved), the EID prefix 10.20.0.0/24 local. Returns the data
/// path and the far ends of the uplink's and the host port's wires.
fn etr(
    host_port: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
) -> (SoftwareBackend, UnixDatagram, UnixDatagram) {
    etr_with(|end| Box::new(MemPort::new(end, false)), host_port)
}

/// [`etr`] with the uplink port made by `uplink`.
fn etr_with(
    uplink: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
    host_port: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
) -> (SoftwareBackend, UnixDatagram, UnixDatagram) {
    let (up_end, up_wire) = UnixDatagram::pair().expect("socket pair");
    let (host_end, host_wire) = UnixDatagram::pair().expect("socket pair");
    for s in [&up_end, &host_end] {
        s.set_nonblocking(true).expect("non-blocking");
    }
    host_wire
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut b = SoftwareBackend::start(
        vec![
            (PortId(1), uplink(up_end)),
            (PortId(2), host_port(host_end)),
        ],
        Limits::default(),
    )
    .expect("data path");
    let (up, host) = (L3Interface::Port(PortId(1)), L3Interface::Port(PortId(2)));
    let mut ops = Vec::new();
    for (iface, addr, len) in [(up, "192.0.2.1", 24), (host, "10.20.0.1", 24)] {
        ops.push(TableOp::add(TableEntry::RouterMac {
            iface,
            mac: Mac(ROUTER),
            virtual_mac: false,
        }));
        ops.push(TableOp::add(TableEntry::InterfaceAddress {
            iface,
            addr: addr.parse().expect("address"),
            prefix_len: len,
            virtual_mac: None,
        }));
    }
    ops.push(TableOp::add(TableEntry::Neighbor {
        iface: host,
        ip: "10.20.0.6".parse().expect("address"),
        mac: Mac(HOST),
    }));
    ops.push(TableOp::add(TableEntry::LispDatabase {
        iid: roamer_hal::Iid::default(),
        eid: "10.20.0.0/24".parse().expect("prefix"),
        locators: vec![],
    }));
    let results = b.apply(&ops);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (b, up_wire, host_wire)
}

/// 10.10.0.5 -> 10.20.0.6, TCP with 12 octets of options (32-octet header), `payload`,
/// ACK|PSH|CWR, complete checksums: the IP packet.
fn inner_tcp(payload: &[u8]) -> Vec<u8> {
    inner_tcp_at(0x1000, 0x18 | 0x80, payload)
}

/// [`inner_tcp`] with sequence number `seq` and TCP flags `flags`.
fn inner_tcp_at(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let tcp_len = 32 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&u16::try_from(20 + tcp_len).expect("small").to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 63, 6, 0, 0, 10, 10, 0, 5, 10, 20, 0, 6]);
    let c = checksum::ipv4_header(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&[0x9c, 0x40, 0x13, 0x89]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 7, 0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    p.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    p.extend_from_slice(payload);
    let pseudo = checksum::pseudo_ipv4(
        [10, 10, 0, 5].into(),
        [10, 20, 0, 6].into(),
        6,
        u16::try_from(tcp_len).expect("small"),
    );
    let c = checksum::udp_field(pseudo, &p[20..]);
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

/// `inner` LISP-encapsulated by the peer xTR 192.0.2.2 towards us, in an Ethernet frame.
fn from_peer(inner: &[u8]) -> Vec<u8> {
    use roamer_forwarding::wire::lisp_data::{
        EncapParams, LispDataRepr, NonceField, encapsulate_in_place,
    };
    let mut buf = vec![0u8; HEADROOM + inner.len()];
    buf[HEADROOM..].copy_from_slice(inner);
    let params = EncapParams::new(
        "192.0.2.2".parse().expect("address"),
        "192.0.2.1".parse().expect("address"),
        40000,
        LispDataRepr {
            nonce: NonceField::Nonce {
                nonce: 7,
                echo_request: false,
            },
            ..LispDataRepr::default()
        },
    );
    let outer = encapsulate_in_place(&mut buf, HEADROOM, inner.len(), &params).expect("encap");
    let mut f = ROUTER.to_vec();
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&buf[outer..]);
    f
}

/// Asserts that nothing more arrives on `wire` (within 50 ms).
fn assert_quiet(wire: &UnixDatagram) {
    assert_eq!(rest(wire, Duration::from_millis(50)), Vec::<Vec<u8>>::new());
}

/// Receives one frame behind its `virtio_net_hdr` from `wire` into `buf`: its offload (there
/// must be one) and where the frame ends in `buf`.
fn recv_gso(wire: &UnixDatagram, buf: &mut [u8]) -> (GsoInfo, usize) {
    let n = wire.recv(buf).expect("the GSO frame");
    let hdr: [u8; VNET_HDR_LEN] = buf[..VNET_HDR_LEN].try_into().expect("header");
    let info = GsoInfo::from_vnet_hdr(&hdr)
        .expect("a known offload")
        .expect("an offload");
    (info, n)
}

/// The frame `f` with offload `info`, its partial checksum completed as the kernel would.
fn completed(f: &[u8], info: GsoInfo) -> FrameSlot {
    let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
    slot.set_frame(f).expect("fits");
    slot.gso = Some(info);
    slot.complete_checksum().expect("completes");
    slot
}

fn tcp_checksum_ok(ip: &[u8]) -> bool {
    let pseudo = checksum::pseudo_ipv4(
        [ip[12], ip[13], ip[14], ip[15]].into(),
        [ip[16], ip[17], ip[18], ip[19]].into(),
        6,
        u16::try_from(ip.len() - 20).expect("small"),
    );
    checksum::verifies(pseudo, &ip[20..])
}

#[test]
fn a_large_decapsulated_tcp_packet_is_cut_in_software_for_a_port_without_offload() {
    let (b, up, host) = etr(|end| Box::new(MemPort::new(end, false)));
    let payload: Vec<u8> = (0..4 * 1448 + 100).map(|i| (i % 251) as u8).collect();
    let inner = inner_tcp(&payload);
    up.send(&from_peer(&inner)).expect("LISP packet");
    let mut buf = vec![0u8; 65536];
    let mut joined = Vec::new();
    let mut seq = 0x1000u32;
    for i in 0..5 {
        let n = host.recv(&mut buf).expect("a segment");
        let f = &buf[..n];
        assert_eq!(&f[..6], &HOST, "routed to the host");
        assert!(n <= 14 + 1500, "segment {i}: {n} octets");
        let ip = &f[14..];
        assert_eq!(checksum::fold(checksum::add(0, &ip[..20])), 0xffff);
        assert!(tcp_checksum_ok(ip), "segment {i}: TCP checksum");
        assert_eq!(u32::from_be_bytes([ip[24], ip[25], ip[26], ip[27]]), seq);
        let flags = ip[33];
        assert_eq!(flags & 0x08 != 0, i == 4, "PSH on the last only");
        assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
        let data = &ip[52..];
        assert!(data.len() <= 1500 - 52);
        seq += u32::try_from(data.len()).expect("small");
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, payload);
    assert_quiet(&host);
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.decapsulated, 1);
    assert_eq!(counters.tcp_segmented, 1);
    assert_eq!(counters.tcp_segmented_in_software, 1);
    assert!(counters.drops.is_empty(), "{:?}", counters.drops);
}

#[test]
fn a_large_decapsulated_tcp_packet_leaves_a_vnet_hdr_port_as_one_gso_frame() {
    let (b, up, host) = etr(|end| Box::new(MemPort::new(end, true)));
    let payload: Vec<u8> = (0..6000).map(|i| (i % 241) as u8).collect();
    let inner = inner_tcp(&payload);
    up.send(&from_peer(&inner)).expect("LISP packet");
    let mut buf = vec![0u8; 65536];
    let (info, n) = recv_gso(&host, &mut buf);
    assert_eq!(info.gso_type, GsoType::TcpV4);
    assert_eq!(info.gso_size, 1500 - 20 - 32, "MTU - IP - TCP with options");
    assert_eq!(info.hdr_len, 14 + 20 + 32);
    assert_eq!(info.csum, Some((34, 16)), "partial from the TCP header");
    assert!(info.ecn, "CWR set");
    let f = &buf[VNET_HDR_LEN..n];
    assert_eq!(&f[..6], &HOST);
    assert_eq!(f.len(), 14 + inner.len(), "the whole packet");
    assert_eq!(&f[14 + 52..], &payload[..]);
    // Completing the partial checksum as the kernel would gives the sender's back.
    let slot = completed(f, info);
    assert_eq!(&slot.frame()[14..], &inner[..]);
    assert_quiet(&host);
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.tcp_segmented, 1);
    assert_eq!(counters.tcp_segmented_in_software, 0);
    assert!(counters.drops.is_empty(), "{:?}", counters.drops);
}

#[test]
fn a_train_of_lisp_packets_is_cut_decapsulated_and_joined_into_one_gso_frame() {
    let (b, up, host) = etr_with(
        |end| Box::new(MemPort::new(end, true)),
        |end| Box::new(MemPort::new(end, true)),
    );
    // Three LISP packets of one stream as an ITR on this host cuts a large segment: two
    // of 4 x 1448 octets, the last shorter; joined as its vnet-hdr port sends them.
    let payload: Vec<u8> = (0..2 * 4 * 1448 + 1000).map(|i| (i % 239) as u8).collect();
    let mut train = FrameSlot::new(GSO_FRAME_ROOM);
    let mut seq = 0x1000u32;
    for (i, chunk) in payload.chunks(4 * 1448).enumerate() {
        let flags = if i == 2 { 0x18 } else { 0x10 };
        let packet = from_peer(&inner_tcp_at(seq, flags, chunk));
        if i == 0 {
            train.set_frame(&packet).expect("fits");
        } else {
            gso::append_udp(&mut train, &packet).expect("joins");
        }
        seq += u32::try_from(chunk.len()).expect("small");
    }
    assert_eq!(train.gso.map(|g| g.gso_type), Some(GsoType::UdpL4));
    let mut datagram = [0u8; VNET_HDR_LEN].to_vec();
    let mut hdr = [0u8; VNET_HDR_LEN];
    GsoInfo::to_vnet_hdr(train.gso.as_ref(), &mut hdr);
    datagram[..VNET_HDR_LEN].copy_from_slice(&hdr);
    datagram.extend_from_slice(train.frame());
    up.send(&datagram).expect("the train");

    // One GSO frame: the two pieces larger than the host port's MTU, and the last, which
    // fits, joined to them.
    let mut buf = vec![0u8; 65536];
    let (info, n) = recv_gso(&host, &mut buf);
    assert_eq!(info.gso_type, GsoType::TcpV4);
    assert_eq!(info.gso_size, 1448);
    let f = &buf[VNET_HDR_LEN..n];
    assert_eq!(&f[..6], &HOST);
    assert_eq!(
        f.len(),
        14 + 52 + payload.len(),
        "all three pieces in one frame"
    );
    assert!(f[14 + 52..] == payload[..], "the stream's bytes in order");
    assert_eq!(f[14 + 33] & 0x08, 0x08, "the last piece's PSH");
    let slot = completed(f, info);
    assert!(tcp_checksum_ok(&slot.frame()[14..]));
    assert_quiet(&host);
    let counters = b.snapshot().expect("learned").counters;
    assert_eq!(counters.udp_segments_received, 1);
    assert_eq!(counters.decapsulated, 3);
    assert_eq!(counters.tcp_segmented, 2);
    assert_eq!(counters.tcp_coalesced, 2, "the second piece and the last");
    assert_eq!(counters.segmented, 0, "no cut for a tunnel");
    assert!(counters.drops.is_empty(), "{:?}", counters.drops);
}
