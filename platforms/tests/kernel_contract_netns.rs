//! The kernel backend against the HAL contract kit and against the kernel itself, opened inside
//! a fresh network namespace on a veth pair (needs root).
//!
//! The contract kit's sample entries put addresses, neighbours, router MACs and proxy-ARP on
//! SVIs (`interface VlanN`), which need a VLAN-filtering bridge this host's kernel does not
//! have; the kit runs here on the tables whose samples need no VLAN device (VLANs, IPv4 and IPv6
//! routes, the HSRP hello filter), and the tables of routed ports are checked below against `ip` output.
//! `unsupported_ops_are_refused` is not run: the VLAN tables answer `NotSupported` naming the
//! missing kernel feature (checked below), not `Unsupported`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use roamer_hal::{
    Backend, Capabilities, DataPlane, HalError, HalEvent, InjectTarget, L3Interface, Learned, Mac,
    NextHop, Notifier, PacketIo, PortId, Prefix, Punt, TableEntry, TableKind, TableOp, Trace,
    VlanId,
};
use roamer_platforms::PortSpec;
use roamer_platforms::kernel::KernelBackend;
use roamer_test_support::{Netns, require_root, unique_prefix, wait_until};

/// A kernel backend in its own namespace, with two veth ends as ports 1 and 2.
struct InNs {
    // Dropped first: the backend cleans up inside the namespace before it goes.
    backend: KernelBackend,
    ns: Netns,
    dev: [String; 2],
    /// Only these tables are offered to the contract kit.
    only: Option<Vec<TableKind>>,
    /// net.ipv4.ip_forward before the backend opened.
    fwd_before: String,
}

fn open_in_ns(only: Option<Vec<TableKind>>) -> InNs {
    require_root("network namespaces and netlink");
    let p = unique_prefix();
    let ns = Netns::new(&format!("{p}k")).expect("namespace");
    let dev = [format!("{p}a"), format!("{p}b")];
    ns.ip(&[
        "link", "add", &dev[0], "type", "veth", "peer", "name", &dev[1],
    ])
    .expect("veth");
    for d in &dev {
        ns.ip(&["link", "set", d, "up"]).expect("up");
    }
    let fwd_before = ns
        .exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
        .expect("sysctl")
        .trim()
        .to_string();
    let specs: Vec<PortSpec> = dev
        .iter()
        .enumerate()
        .map(|(i, d)| PortSpec {
            id: PortId(i as u32 + 1),
            name: format!("Ethernet1/{}", i + 1),
            device: d.clone(),
            io: None,
        })
        .collect();
    let backend = ns
        .enter(move || KernelBackend::open(&specs))
        .expect("enter namespace")
        .expect("open the kernel backend");
    InNs {
        backend,
        ns,
        dev,
        only,
        fwd_before,
    }
}

fn contract() -> InNs {
    open_in_ns(Some(vec![
        TableKind::Vlan,
        TableKind::Ipv4Route,
        TableKind::Ipv6Route,
        TableKind::HelloFilter,
    ]))
}

impl Backend for InNs {
    fn name(&self) -> &str {
        self.backend.name()
    }
    fn capabilities(&self) -> Capabilities {
        let mut c = self.backend.capabilities();
        if let Some(only) = &self.only {
            c.supported.retain(|k| only.contains(k));
        }
        c
    }
    /// From the backend's namespace, as the daemon calls it: TC programs (the hello filter's)
    /// attach to the interfaces of the calling thread's namespace.
    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        let backend = &mut self.backend;
        self.ns
            .enter(|| backend.apply(batch))
            .expect("enter the backend's namespace")
    }
    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        self.backend.entries(kind)
    }
    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        self.backend.drain_events(out)
    }
}

impl PacketIo for InNs {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        self.backend.inject(target, frame)
    }
    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        self.backend.drain_punts(out)
    }
}

impl DataPlane for InNs {
    fn learned(&self) -> Result<Learned, HalError> {
        self.backend.learned()
    }
    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError> {
        self.backend.trace(port, tag, frame)
    }
    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        self.backend.set_notifier(notify)
    }
}

#[test]
fn contract_add_update_remove() {
    roamer_hal::contract::add_update_remove(contract());
}
#[test]
fn contract_duplicates_are_refused() {
    roamer_hal::contract::duplicates_are_refused(contract());
}
#[test]
fn contract_missing_entries_are_not_found() {
    roamer_hal::contract::missing_entries_are_not_found(contract());
}
#[test]
fn contract_batch_results_in_order() {
    roamer_hal::contract::batch_results_in_order(contract());
}
#[test]
fn contract_capacity_is_enforced() {
    roamer_hal::contract::capacity_is_enforced(contract());
}
#[test]
fn contract_learned_reflects_the_tables() {
    roamer_hal::contract::learned_reflects_the_tables(contract());
}
#[test]
fn contract_trace_answers_or_is_refused() {
    roamer_hal::contract::trace_answers_or_is_refused(contract());
}
#[test]
fn contract_notifier_is_accepted() {
    roamer_hal::contract::notifier_is_accepted(contract());
}
#[test]
fn contract_boxed_and_accounted() {
    let boxed: Box<dyn DataPlane> = Box::new(contract());
    roamer_hal::contract::add_update_remove(roamer_hal::Accounted::new(boxed, Vec::new()));
}

fn ok(r: Vec<Result<(), HalError>>) {
    for r in r {
        if let Err(e) = r {
            panic!("expected Ok, got {e}");
        }
    }
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').expect("prefix");
    Prefix::new(a.parse().expect("address"), l.parse().expect("length")).expect("prefix")
}

/// Routed-port tables become kernel objects with roamer's marks, come back with the kernel's
/// own errors, and are all gone when the backend stops; what roamer did not create stays.
#[test]
fn routed_port_tables_are_kernel_objects_and_go_on_stop() {
    let mut k = open_in_ns(None);
    let ns_name = k.ns.name().to_string();
    let ip = |args: &[&str]| k.ns.ip(args).expect("ip");
    // Someone else's address and route: roamer must leave them alone.
    k.ns.ip(&["addr", "add", "192.0.2.99/32", "dev", &k.dev[1]])
        .expect("foreign address");
    k.ns.ip(&["route", "add", "198.51.100.0/24", "dev", &k.dev[1]])
        .expect("foreign route");
    let _ = ip;
    let p1 = L3Interface::Port(PortId(1));
    let mac = Mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    let old_mac =
        k.ns.ip(&["-br", "link", "show", "dev", &k.dev[0]])
            .expect("link");
    ok(k.apply(&[
        TableOp::add(TableEntry::RouterMac {
            iface: p1,
            mac,
            virtual_mac: false,
        }),
        TableOp::add(TableEntry::InterfaceAddress {
            iface: p1,
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
            prefix_len: 24,
            virtual_mac: None,
        }),
        TableOp::add(TableEntry::InterfaceAddress {
            iface: p1,
            addr: IpAddr::V6("2001:db8:1::1".parse::<Ipv6Addr>().expect("v6")),
            prefix_len: 64,
            virtual_mac: None,
        }),
        TableOp::add(TableEntry::Route {
            prefix: prefix("10.1.0.0/24"),
            next_hop: NextHop::Connected(p1),
        }),
        TableOp::add(TableEntry::Neighbor {
            iface: p1,
            ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
            mac: Mac([0x02, 0, 0, 0, 0, 2]),
        }),
        TableOp::add(TableEntry::Route {
            prefix: prefix("172.16.0.0/16"),
            next_hop: NextHop::Gateway {
                via: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
                iface: None,
            },
        }),
        TableOp::add(TableEntry::Route {
            prefix: prefix("10.9.0.0/16"),
            next_hop: NextHop::Lisp,
        }),
        TableOp::add(TableEntry::Route {
            prefix: prefix("10.8.0.0/16"),
            next_hop: NextHop::Discard,
        }),
        TableOp::add(TableEntry::ProxyArp { iface: p1 }),
    ]));
    let routes = k.ns.ip(&["route", "show", "proto", "194"]).expect("routes");
    assert!(routes.contains("172.16.0.0/16 via 10.1.0.2"), "{routes}");
    assert!(routes.contains("blackhole 10.9.0.0/16"), "LISP: {routes}");
    assert!(
        routes.contains("unreachable 10.8.0.0/16"),
        "Null0: {routes}"
    );
    let addrs = k.ns.ip(&["addr", "show", "dev", &k.dev[0]]).expect("addr");
    assert!(
        addrs.contains("10.1.0.1/24") && addrs.contains("2001:db8:1::1/64"),
        "{addrs}"
    );
    assert!(addrs.contains("02:00:5e:10:00:01"), "router MAC: {addrs}");
    let neigh =
        k.ns.ip(&["neigh", "show", "dev", &k.dev[0]])
            .expect("neigh");
    assert!(
        neigh.contains("10.1.0.2 lladdr 02:00:00:00:00:02") && neigh.contains("PERMANENT"),
        "{neigh}"
    );
    let proxy =
        k.ns.exec(&[
            "cat",
            &format!("/proc/sys/net/ipv4/conf/{}/proxy_arp", k.dev[0]),
        ])
        .expect("sysctl");
    assert_eq!(proxy.trim(), "1");
    let fwd =
        k.ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
            .expect("sysctl");
    assert_eq!(fwd.trim(), "1");

    // The learned neighbour, with its interface.
    let learned = k.learned().expect("learned");
    assert!(
        learned
            .neighbors
            .iter()
            .any(|n| n.iface == p1 && n.ip == IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))),
        "{learned:?}"
    );
    assert_eq!(learned.links.len(), 2, "{learned:?}");

    // A kernel error comes back typed, with the kernel's words.
    let r = k.apply(&[TableOp::add(TableEntry::Route {
        prefix: prefix("10.7.0.0/16"),
        next_hop: NextHop::Gateway {
            via: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            iface: None,
        },
    })]);
    match &r[0] {
        Err(HalError::Backend { detail, .. }) => {
            assert!(
                detail.contains("unreachable") || detail.contains("Network is unreachable"),
                "{detail}"
            )
        }
        other => panic!("expected the kernel's error, got {other:?}"),
    }
    // VLAN membership: the missing kernel feature is named.
    let r = k.apply(&[TableOp::add(TableEntry::VlanMember {
        vlan: VlanId::new(10).expect("vlan"),
        port: PortId(2),
        tagged: false,
    })]);
    match &r[0] {
        Err(e @ HalError::NotSupported { reason, .. }) => {
            assert!(reason.contains("VLAN-filtering bridge"), "{e}")
        }
        other => panic!("expected NotSupported, got {other:?}"),
    }
    // Update: the route changes type in place.
    ok(k.apply(&[TableOp::update(TableEntry::Route {
        prefix: prefix("10.8.0.0/16"),
        next_hop: NextHop::Lisp,
    })]));
    let routes = k.ns.ip(&["route", "show", "proto", "194"]).expect("routes");
    assert!(routes.contains("blackhole 10.8.0.0/16"), "{routes}");

    // Stop: nothing of roamer's is left, what it changed is back, the foreign objects stay.
    let InNs {
        backend,
        ns,
        dev,
        fwd_before,
        ..
    } = k;
    drop(backend);
    let routes = ns.ip(&["route", "show", "proto", "194"]).expect("routes");
    assert!(routes.trim().is_empty(), "left behind: {routes}");
    let addrs = ns.ip(&["addr", "show"]).expect("addr");
    assert!(
        !addrs.contains("10.1.0.1") && !addrs.contains("2001:db8:1::1"),
        "{addrs}"
    );
    assert!(
        addrs.contains("192.0.2.99/32"),
        "foreign address removed: {addrs}"
    );
    let all_routes = ns.ip(&["route", "show"]).expect("routes");
    assert!(
        all_routes.contains("198.51.100.0/24"),
        "foreign route removed: {all_routes}"
    );
    let neigh = ns.ip(&["neigh", "show", "dev", &dev[0]]).expect("neigh");
    assert!(!neigh.contains("10.1.0.2"), "{neigh}");
    let link = ns
        .ip(&["-br", "link", "show", "dev", &dev[0]])
        .expect("link");
    assert_eq!(
        link.split_whitespace().nth(2),
        old_mac.split_whitespace().nth(2),
        "MAC not restored: {link} (was {old_mac})"
    );
    let proxy = ns
        .exec(&[
            "cat",
            &format!("/proc/sys/net/ipv4/conf/{}/proxy_arp", dev[0]),
        ])
        .expect("sysctl");
    assert_eq!(proxy.trim(), "0");
    let fwd = ns
        .exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
        .expect("sysctl");
    assert_eq!(fwd.trim(), fwd_before, "forwarding not restored");
    let _ = ns_name;
}

/// Objects carrying roamer's marks that a crashed run left are removed when the backend
/// opens; unmarked ones stay.
#[test]
fn leftovers_of_a_crashed_run_are_removed_on_open() {
    let k = open_in_ns(None);
    let InNs {
        backend, ns, dev, ..
    } = k;
    drop(backend);
    // This iproute2 cannot set IFA_PROTO: mark the address as roamer does, over netlink.
    let d0 = dev[0].clone();
    ns.enter(move || -> Result<(), HalError> {
        use roamer_platforms::kernel::nl;
        let link = nl::Netlink::start().map_err(|e| HalError::Backend {
            backend: "test".into(),
            detail: e.to_string(),
        })?;
        let index = nl::list_links(&link)?
            .into_iter()
            .find(|l| l.name == d0)
            .map(|l| l.index)
            .unwrap_or(0);
        let addr = IpAddr::V4(Ipv4Addr::new(10, 5, 0, 1));
        link.call("add", move |h| async move {
            nl::address_add(h, index, addr, 24)
                .await
                .map_err(|e| nl::kernel_error("add".into(), e))
        })
    })
    .expect("enter")
    .expect("marked address");
    ns.ip(&["addr", "add", "10.6.0.1/24", "dev", &dev[0]])
        .expect("unmarked address");
    ns.ip(&["route", "add", "blackhole", "10.50.0.0/16", "proto", "194"])
        .expect("marked route");
    ns.ip(&["route", "add", "blackhole", "10.60.0.0/16"])
        .expect("unmarked route");
    let specs = vec![PortSpec {
        id: PortId(1),
        name: "Ethernet1/1".into(),
        device: dev[0].clone(),
        io: None,
    }];
    let again = ns
        .enter(move || KernelBackend::open(&specs))
        .expect("enter")
        .expect("open again");
    let addrs = ns.ip(&["addr", "show", "dev", &dev[0]]).expect("addr");
    assert!(!addrs.contains("10.5.0.1"), "marked address left: {addrs}");
    assert!(
        addrs.contains("10.6.0.1"),
        "unmarked address removed: {addrs}"
    );
    let routes = ns.ip(&["route", "show"]).expect("routes");
    assert!(!routes.contains("10.50.0.0"), "marked route left: {routes}");
    assert!(
        routes.contains("10.60.0.0"),
        "unmarked route removed: {routes}"
    );
    drop(again);
}

/// The one's-complement sum of `d` (16-bit words, an odd last byte padded) added to `acc`,
/// folded: 0xffff over data that carries its correct checksum.
fn sum(d: &[u8], mut acc: u32) -> u32 {
    for c in d.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// Port 1 a routed port with 10.1.0.1/24, and a host at 10.1.0.2 on the other end of its veth
/// (moved into a namespace of its own).
fn host_on_port_1(k: &mut InNs) -> Netns {
    ok(k.apply(&[TableOp::add(TableEntry::InterfaceAddress {
        iface: L3Interface::Port(PortId(1)),
        addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
        prefix_len: 24,
        virtual_mac: None,
    })]));
    let host = Netns::new(&format!("{}h", unique_prefix())).expect("host ns");
    k.ns.ip(&["link", "set", &k.dev[1], "netns", host.name()])
        .expect("move");
    host.addr(&k.dev[1], "10.1.0.2/24").expect("host address");
    host
}

/// UDP 4342 to one of our addresses is punted as a LISP control frame with good checksums,
/// from the port it arrived on; a routed injection leaves through the kernel.
#[test]
fn lisp_control_is_punted_and_routed_injections_leave() {
    let mut k = open_in_ns(None);
    let host = host_on_port_1(&mut k);
    host.enter(|| -> std::io::Result<()> {
        let s = std::net::UdpSocket::bind("10.1.0.2:4342")?;
        for _ in 0..3 {
            s.send_to(b"\x10\x00\x00\x01roamer", "10.1.0.1:4342")?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })
    .expect("enter host")
    .expect("send UDP 4342");
    let mut punts = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            k.drain_punts(&mut punts);
            !punts.is_empty()
        }),
        "no LISP control punt"
    );
    let p = &punts[0];
    assert_eq!(p.port, PortId(1));
    assert_eq!(p.reason, roamer_hal::PuntReason::LispControl);
    let f = &p.frame;
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    assert_eq!(&f[30..34], &[10, 1, 0, 1]);
    assert!(f.ends_with(b"roamer"));
    // Checksums: both folds come to zero.
    assert_eq!(sum(&f[14..34], 0), 0xffff, "IPv4 header checksum");
    let udp_len = f.len() - 34;
    let pseudo = sum(&f[26..34], 17 + udp_len as u32);
    assert_eq!(sum(&f[34..], pseudo), 0xffff, "UDP checksum");
    drop(host);
}

/// LISP control over IPv6 to one of our addresses is punted as a frame whose IPv6 header the
/// backend rebuilt (an IPv6 raw socket returns none): addresses, next header, payload length
/// and hop limit as sent, the UDP checksum good over them.
#[test]
fn ipv6_lisp_control_is_punted_with_its_header_rebuilt() {
    let mut k = open_in_ns(None);
    let host = host_on_port_1(&mut k);
    ok(k.apply(&[TableOp::add(TableEntry::InterfaceAddress {
        iface: L3Interface::Port(PortId(1)),
        addr: "2001:db8:1::1".parse().expect("address"),
        prefix_len: 64,
        virtual_mac: None,
    })]));
    host.ip(&["addr", "add", "2001:db8:1::2/64", "dev", &k.dev[1], "nodad"])
        .expect("host address");
    let mut punts = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let _ = host.enter(|| -> std::io::Result<()> {
                use socket2::{Domain, Socket, Type};
                let s = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
                s.set_unicast_hops_v6(77)?;
                let from: std::net::SocketAddr = "[2001:db8:1::2]:4342".parse().expect("address");
                let to: std::net::SocketAddr = "[2001:db8:1::1]:4342".parse().expect("address");
                s.bind(&from.into())?;
                s.send_to(b"\x10\x00\x00\x01roamer6", &to.into())?;
                Ok(())
            });
            k.drain_punts(&mut punts);
            !punts.is_empty()
        }),
        "no IPv6 LISP control punt"
    );
    let p = &punts[0];
    assert_eq!(
        (p.port, p.reason),
        (PortId(1), roamer_hal::PuntReason::LispControl)
    );
    let f = &p.frame;
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    let ip = &f[14..];
    assert_eq!(ip[0] >> 4, 6);
    assert_eq!(ip[6], 17, "next header UDP");
    assert_eq!(ip[7], 77, "hop limit as sent");
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[4], ip[5]])),
        ip.len() - 40
    );
    let src: Ipv6Addr = "2001:db8:1::2".parse().expect("address");
    let dst: Ipv6Addr = "2001:db8:1::1".parse().expect("address");
    assert_eq!(&ip[8..24], &src.octets());
    assert_eq!(&ip[24..40], &dst.octets());
    assert!(f.ends_with(b"roamer6"));
    let pseudo = sum(&ip[8..40], 17 + (ip.len() as u32 - 40));
    assert_eq!(
        sum(&ip[40..], pseudo),
        0xffff,
        "UDP checksum over the rebuilt header"
    );
    drop(host);
}

/// Multicast control reaches the control plane only through groups the kernel joined: HSRP's
/// on every port with an address, and a dynamic-EID range's map-notify-group (the site
/// multicast Map-Notify) on its interface while the range is programmed (`ip maddr` shows the
/// membership come and go).
#[test]
fn hsrp_and_map_notify_groups_are_joined_and_their_multicast_punted() {
    let mut k = open_in_ns(None);
    let p1 = L3Interface::Port(PortId(1));
    let group = Ipv4Addr::new(239, 1, 1, 1);
    let range = TableEntry::DynamicEidRange {
        iface: p1,
        map: "roam".into(),
        eid: "10.1.0.0/25".parse().expect("prefix"),
        extended_subnet: true,
        notify_group: Some(group),
    };
    // After port 2's device has left the namespace: the LISP programs go on the ports that
    // are still there.
    let host = host_on_port_1(&mut k);
    ok(k.apply(&[TableOp::add(range.clone())]));
    let memberships = |k: &InNs| {
        k.ns.ip(&["maddr", "show", "dev", &k.dev[0]])
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(5), || {
            let m = memberships(&k);
            m.contains("239.1.1.1") && m.contains("224.0.0.2") && m.contains("224.0.0.102")
        }),
        "groups not joined on the port:\n{}",
        memberships(&k)
    );
    let send = |to: &str, payload: &'static [u8]| {
        let to = to.to_string();
        host.enter(move || -> std::io::Result<()> {
            let s = std::net::UdpSocket::bind("10.1.0.2:0")?;
            s.set_multicast_ttl_v4(1)?;
            s.send_to(payload, to.as_str())?;
            Ok(())
        })
        .expect("enter host")
        .expect("send");
    };
    let mut punts = Vec::new();
    let got = |punts: &[roamer_hal::Punt], reason, tail: &[u8]| {
        punts
            .iter()
            .any(|p| p.reason == reason && p.port == PortId(1) && p.frame.ends_with(tail))
    };
    use roamer_hal::PuntReason::{Hsrp, LispControl};
    assert!(
        wait_until(Duration::from_secs(5), || {
            send("239.1.1.1:4342", b"\x40site-notify");
            send("224.0.0.2:1985", b"\x00hsrp-hello");
            k.drain_punts(&mut punts);
            got(&punts, LispControl, b"site-notify") && got(&punts, Hsrp, b"hsrp-hello")
        }),
        "multicast not punted: {punts:?}"
    );
    let notify = punts
        .iter()
        .find(|p| p.frame.ends_with(b"site-notify"))
        .expect("punt");
    assert_eq!(&notify.frame[30..34], &group.octets(), "to the group");

    // The range gone, its group is left; HSRP's stay.
    ok(k.apply(&[TableOp::remove(range)]));
    assert!(
        wait_until(Duration::from_secs(5), || {
            let m = memberships(&k);
            !m.contains("239.1.1.1") && m.contains("224.0.0.2")
        }),
        "group not left:\n{}",
        memberships(&k)
    );
    punts.clear();
    send("239.1.1.1:4342", b"\x40late-notify");
    assert!(
        wait_until(Duration::from_secs(5), || {
            send("10.1.0.1:4342", b"\x10unicast");
            k.drain_punts(&mut punts);
            got(&punts, LispControl, b"unicast")
        }),
        "unicast LISP control not punted: {punts:?}"
    );
    assert!(
        !punts.iter().any(|p| p.frame.ends_with(b"late-notify")),
        "a group no longer joined was punted"
    );
    drop(host);
}

/// A port whose interface goes down and up again is reported as events, and `learned` says how
/// it is.
#[test]
fn link_changes_are_events_and_learned_link_states() {
    let mut k = open_in_ns(None);
    k.ns.ip(&["link", "set", &k.dev[0], "down"]).expect("down");
    let mut events = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            k.drain_events(&mut events);
            events.contains(&HalEvent::PortDown(PortId(1)))
        }),
        "no PortDown: {events:?}"
    );
    let learned = k.learned().expect("learned");
    assert_eq!(
        learned.link(PortId(1)),
        Some(roamer_hal::LinkState::AdminDown)
    );
    // The peer of a down veth has no carrier.
    assert_eq!(
        learned.link(PortId(2)),
        Some(roamer_hal::LinkState::NoCarrier)
    );
    k.ns.ip(&["link", "set", &k.dev[0], "up"]).expect("up");
    assert!(
        wait_until(Duration::from_secs(5), || {
            k.drain_events(&mut events);
            events.contains(&HalEvent::PortUp(PortId(1)))
        }),
        "no PortUp: {events:?}"
    );
}

/// The state file of a namespace that no longer exists (its run was killed with it) is removed
/// when a backend opens; nothing is restored from it.
#[test]
fn state_files_of_vanished_namespaces_are_removed() {
    require_root("network namespaces");
    std::fs::create_dir_all("/run/roamer").expect("state dir");
    // Inode 1 is never a network namespace.
    let orphan = std::path::Path::new("/run/roamer/kernel-1.state");
    std::fs::write(orphan, "sysctl /proc/sys/net/ipv4/ip_forward 0\n").expect("write");
    let k = open_in_ns(None);
    assert!(!orphan.exists(), "orphan state file kept");
    drop(k);
}
