//! HSRP's virtual MAC and IP on the kernel backend, through the HAL rows the control plane
//! writes while a group is Active, on a routed port (this host's kernel has no SVIs; the VM
//! image runs the whole HSRP group on an SVI, `tests/image_vm.rs`). A host in its own namespace
//! sees what a host on the segment would: ARP for the virtual IP answered with the virtual MAC,
//! the router's own address still with its own MAC, proxy-ARP answered with the virtual MAC
//! (and not for its own segment) — also for a destination behind LISP, which the kernel never
//! proxies for and roamer's control thread answers — and nothing of it left once the rows go or
//! the backend stops.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use roamer_hal::{
    Backend, DataPlane, L3Interface, Mac, NextHop, PacketIo, PortId, Prefix, TableEntry, TableOp,
};
use roamer_platforms::PortSpec;
use roamer_platforms::kernel::KernelBackend;
use roamer_platforms::software::AfPacketPort;
use roamer_test_support::{Capture, Netns, Veth, require_root, require_tool, unique_prefix};

mod common;

const VMAC: Mac = Mac([0x00, 0x00, 0x0c, 0x07, 0xac, 0x0a]);
const VMAC_TEXT: &str = "00:00:0c:07:ac:0a";

/// Backend namespace `k` with port 1 towards host namespace `h` and port 2 on a veth pair of
/// its own (another segment, 10.9.0.0/24, for proxy-ARP).
struct Lab {
    // Dropped first: the backend cleans up inside its namespace before it goes.
    backend: Option<KernelBackend>,
    k: Netns,
    h: Netns,
    port: String,
    host: String,
    _link: Veth,
}

fn lab() -> Lab {
    require_root("network namespaces and netlink");
    require_tool("ping", "iputils-ping");
    require_tool("tshark", "tshark");
    let p = unique_prefix();
    let (k, h) = (
        Netns::new(&format!("{p}k")).expect("namespace"),
        Netns::new(&format!("{p}h")).expect("namespace"),
    );
    let (port, host) = (format!("{p}a"), format!("{p}b"));
    let link = Veth::between(&port, &k, &host, &h).expect("veth");
    let (other, other_peer) = (format!("{p}c"), format!("{p}d"));
    k.ip(&[
        "link",
        "add",
        &other,
        "type",
        "veth",
        "peer",
        "name",
        &other_peer,
    ])
    .expect("veth");
    for d in [&other, &other_peer] {
        k.ip(&["link", "set", d, "up"]).expect("up");
    }
    h.ip(&["addr", "add", "10.1.0.10/24", "dev", &host])
        .expect("host address");
    // On-link, so the host ARPs for 10.9.0.x and 10.3.0.x itself and proxy-ARP answers.
    for net in ["10.9.0.0/24", "10.3.0.0/24"] {
        h.ip(&["route", "add", net, "dev", &host])
            .expect("host route");
    }
    let specs: Vec<PortSpec> = [&port, &other]
        .iter()
        .enumerate()
        .map(|(i, d)| PortSpec {
            id: PortId(i as u32 + 1),
            name: format!("Ethernet1/{}", i + 1),
            device: d.to_string(),
            io: None,
        })
        .collect();
    let backend = k
        .enter(move || KernelBackend::open(&specs))
        .expect("enter namespace")
        .expect("open the kernel backend");
    Lab {
        backend: Some(backend),
        k,
        h,
        port,
        host,
        _link: link,
    }
}

impl Lab {
    /// Applies `ops` from the backend's namespace, as the daemon does (TC programs attach to
    /// the interfaces of the calling thread's namespace).
    fn apply(&mut self, ops: &[TableOp]) {
        let backend = self.backend.as_mut().expect("backend");
        let results = self
            .k
            .enter(|| backend.apply(ops))
            .expect("enter namespace");
        for (op, r) in ops.iter().zip(results) {
            if let Err(e) = r {
                panic!("{op}: {e}");
            }
        }
    }

    /// The host's neighbour entry for `ip` after one ping to it (answered or not).
    fn host_resolves(&self, ip: &str) -> String {
        let _ = self.h.exec(&["ip", "neigh", "flush", "to", ip]);
        let _ = self.h.exec(&["ping", "-c", "1", "-W", "1", ip]);
        self.h.ip(&["neigh", "show", "to", ip]).expect("neigh")
    }

    fn sysctl(&self, device: &str, key: &str) -> String {
        self.k
            .exec(&["cat", &format!("/proc/sys/net/ipv4/conf/{device}/{key}")])
            .unwrap_or_else(|e| format!("({e})"))
            .trim()
            .to_string()
    }

    fn macvlans(&self) -> String {
        self.k
            .ip(&["-d", "-o", "link", "show", "type", "macvlan"])
            .expect("ip link")
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn virtual_rows(iface: L3Interface) -> [TableEntry; 2] {
    [
        TableEntry::RouterMac {
            iface,
            mac: VMAC,
            virtual_mac: true,
        },
        TableEntry::InterfaceAddress {
            iface,
            addr: v4(10, 1, 0, 1),
            prefix_len: 32,
            virtual_mac: Some(VMAC),
        },
    ]
}

#[test]
fn the_virtual_mac_answers_arp_and_proxy_arp_only_while_programmed() {
    let mut lab = lab();
    let (p1, p2) = (L3Interface::Port(PortId(1)), L3Interface::Port(PortId(2)));
    let before = (
        lab.sysctl(&lab.port, "arp_ignore"),
        lab.sysctl(&lab.port, "proxy_arp"),
    );
    lab.apply(&[
        TableOp::add(TableEntry::InterfaceAddress {
            iface: p1,
            addr: v4(10, 1, 0, 2),
            prefix_len: 24,
            virtual_mac: None,
        }),
        TableOp::add(TableEntry::InterfaceAddress {
            iface: p2,
            addr: v4(10, 9, 0, 1),
            prefix_len: 24,
            virtual_mac: None,
        }),
        TableOp::add(TableEntry::ProxyArp { iface: p1 }),
        // Behind LISP: the kernel's proxy-ARP never answers for it, roamer's tap thread does.
        TableOp::add(TableEntry::Route {
            prefix: Prefix::new(v4(10, 3, 0, 0), 24).expect("prefix"),
            next_hop: NextHop::Lisp,
        }),
    ]);
    let [mac_row, vip_row] = virtual_rows(p1);
    lab.apply(&[TableOp::add(mac_row.clone()), TableOp::add(vip_row.clone())]);

    let devices = lab.macvlans();
    assert!(
        devices.contains(VMAC_TEXT) && devices.contains("rmrh"),
        "a macvlan with the virtual MAC:\n{devices}"
    );
    let vip = lab.host_resolves("10.1.0.1");
    assert!(
        vip.contains(VMAC_TEXT),
        "ARP for the virtual IP answered with the virtual MAC: {vip}"
    );
    let own = lab.host_resolves("10.1.0.2");
    assert!(
        own.contains("lladdr") && !own.contains(VMAC_TEXT),
        "the port's own address keeps the port's MAC: {own}"
    );
    // The router's ARP requests carry its own address: the virtual IP stays on the vMAC.
    let vip_after = lab
        .h
        .ip(&["neigh", "show", "to", "10.1.0.1"])
        .expect("neigh");
    assert!(
        vip_after.is_empty() || vip_after.contains(VMAC_TEXT),
        "after the router ARPed for the host, the virtual IP moved: {vip_after}"
    );
    let proxied = lab.host_resolves("10.9.0.5");
    assert!(
        proxied.contains(VMAC_TEXT),
        "proxy-ARP for another segment answered with the virtual MAC: {proxied}"
    );
    // roamer's own answer for a destination behind LISP, as tshark decodes it.
    let capture = Capture::start(
        &lab.h,
        &lab.host,
        "arp",
        20,
        &[
            "arp.opcode",
            "arp.src.hw_mac",
            "arp.src.proto_ipv4",
            "_ws.malformed",
            "_ws.expert",
        ],
        Duration::from_secs(10),
    )
    .expect("tshark on the host's link");
    // tshark says it is capturing a moment before it is: ask until an answer is captured.
    let mut lines = Vec::new();
    for _ in 0..5 {
        let behind_lisp = lab.host_resolves("10.3.0.9");
        assert!(
            behind_lisp.contains(VMAC_TEXT),
            "proxy-ARP for a destination behind LISP answered with the virtual MAC: {behind_lisp}"
        );
        while let Some(l) = capture.next_line(Duration::from_millis(500)) {
            lines.push(l);
        }
        if lines.iter().any(|l| l.starts_with("2\t")) {
            break;
        }
    }
    let answer = lines
        .iter()
        .find(|l| l.starts_with("2\t"))
        .unwrap_or_else(|| panic!("no answer captured: {lines:?}"));
    assert_eq!(
        answer.split('\t').take(3).collect::<Vec<_>>(),
        ["2", VMAC_TEXT, "10.3.0.9"],
        "{answer}"
    );
    assert!(
        answer.split('\t').skip(3).all(|f| f.trim().is_empty()),
        "malformed or expert info on the answer: {answer}"
    );
    let same_segment = lab.host_resolves("10.1.0.20");
    assert!(
        !same_segment.contains("lladdr"),
        "nobody answers for an absent host of the segment itself: {same_segment}"
    );
    assert_eq!(lab.sysctl(&lab.port, "arp_ignore"), "1");
    assert_eq!(
        lab.sysctl(&lab.port, "proxy_arp"),
        "0",
        "proxy-ARP moved to the macvlan"
    );

    // The group leaves Active: the device goes, the port answers proxy-ARP itself again.
    lab.apply(&[TableOp::remove(vip_row), TableOp::remove(mac_row)]);
    assert!(
        !lab.macvlans().contains("rmrh"),
        "the macvlan is gone:\n{}",
        lab.macvlans()
    );
    let gone = lab.host_resolves("10.1.0.1");
    assert!(
        !gone.contains("lladdr"),
        "nobody answers for the virtual IP: {gone}"
    );
    let proxied = lab.host_resolves("10.9.0.6");
    assert!(
        proxied.contains("lladdr") && !proxied.contains(VMAC_TEXT),
        "proxy-ARP from the port itself again: {proxied}"
    );
    assert_eq!(lab.sysctl(&lab.port, "arp_ignore"), before.0);
    assert_eq!(lab.sysctl(&lab.port, "proxy_arp"), "1");

    // Active again, then the backend stops: nothing of it stays.
    let [mac_row, vip_row] = virtual_rows(p1);
    lab.apply(&[TableOp::add(mac_row), TableOp::add(vip_row)]);
    assert!(lab.macvlans().contains(VMAC_TEXT));
    drop(lab.backend.take());
    assert!(
        !lab.macvlans().contains("rmrh"),
        "the macvlan outlived the backend:\n{}",
        lab.macvlans()
    );
    assert_eq!(
        (
            lab.sysctl(&lab.port, "arp_ignore"),
            lab.sysctl(&lab.port, "proxy_arp")
        ),
        before,
        "the port's ARP sysctls restored"
    );
}

/// A virtual-MAC device left by a run that crashed is roamer's by its name, and goes at the
/// next start; an operator's macvlan stays.
#[test]
fn a_crashed_runs_virtual_mac_device_goes_at_start() {
    require_root("network namespaces and netlink");
    let p = unique_prefix();
    let k = Netns::new(&format!("{p}k")).expect("namespace");
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    k.ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])
        .expect("veth");
    for (name, mac) in [
        ("rmrh77-ac0a", VMAC_TEXT),
        ("opsmacvlan", "02:00:00:00:00:99"),
    ] {
        k.ip(&[
            "link", "add", name, "link", &a, "address", mac, "type", "macvlan", "mode", "bridge",
        ])
        .expect("macvlan");
    }
    let specs = vec![PortSpec {
        id: PortId(1),
        name: "Ethernet1/1".into(),
        device: a.clone(),
        io: None,
    }];
    let backend: Result<KernelBackend, _> = k
        .enter(move || KernelBackend::open(&specs))
        .expect("enter namespace");
    let backend = backend.expect("open the kernel backend");
    let links = k.ip(&["-o", "link", "show"]).expect("links");
    assert!(!links.contains("rmrh77-ac0a"), "leftover kept:\n{links}");
    assert!(
        links.contains("opsmacvlan"),
        "operator's device removed:\n{links}"
    );
    drop(backend);
}

/// A hello as a peer router on the segment sends it: IPv4/UDP from 10.1.0.10 to the port's
/// address, port 1985 (what the software core and the filter call an HSRP hello), in an
/// Ethernet frame to `dst`.
fn hello_frame(dst: [u8; 6], src: [u8; 6], dport: u16) -> Vec<u8> {
    let payload = [0u8, 0, 16, 1, 3, 200, 10, 0];
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 1, 17, 0, 0, 10, 1, 0, 10, 10, 1, 0, 2,
    ];
    let total = (20 + 8 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    ip.extend_from_slice(&1985u16.to_be_bytes());
    ip.extend_from_slice(&dport.to_be_bytes());
    ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]); // no UDP checksum (IPv4 allows it)
    ip.extend_from_slice(&payload);
    roamer_test_support::ethernet_frame(dst, src, None, 0x0800, &ip)
}

impl Lab {
    fn counter(&self, name: &str) -> u64 {
        let learned = self.backend.as_ref().expect("backend").learned();
        learned
            .expect("learned")
            .counters
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| c.value)
    }

    fn hello_punts(&mut self) -> usize {
        let mut punts = Vec::new();
        self.backend
            .as_mut()
            .expect("backend")
            .drain_punts(&mut punts);
        punts
            .iter()
            .filter(|p| p.reason == roamer_hal::PuntReason::Hsrp)
            .count()
    }

    /// Injects `frames` out of port 1 (errors ignored) until `capture` has a line starting
    /// with `want`, at most ten times; every line captured.
    fn inject_until_captured(
        &mut self,
        frames: &[&Vec<u8>],
        capture: &Capture,
        want: &str,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..10 {
            let backend = self.backend.as_mut().expect("backend");
            for frame in frames {
                let _ = PacketIo::inject(backend, roamer_hal::InjectTarget::Port(PortId(1)), frame);
            }
            while let Some(l) = capture.next_line(Duration::from_millis(300)) {
                lines.push(l);
            }
            if lines.iter().any(|l| l.starts_with(want)) {
                break;
            }
        }
        lines
    }

    /// A packet port on the host's side of the link, for frames as the host's wire carries.
    fn host_port(&self) -> AfPacketPort {
        let host = self.host.clone();
        self.h
            .enter(move || AfPacketPort::open(&host))
            .expect("enter namespace")
            .expect("a packet port on the host's link")
    }
}

/// `hsrp-hello-filter` on a port: HSRP hellos neither come in (not punted, not taken by the
/// kernel) nor go out, counted each way, while other traffic crosses the port as before; with
/// the row gone, hellos cross again.
#[test]
fn a_hello_filter_keeps_hellos_off_its_port_both_ways() {
    let mut lab = lab();
    let p1 = L3Interface::Port(PortId(1));
    lab.apply(&[TableOp::add(TableEntry::InterfaceAddress {
        iface: p1,
        addr: v4(10, 1, 0, 2),
        prefix_len: 24,
        virtual_mac: None,
    })]);
    let port_mac = roamer_test_support::parse_mac(
        &roamer_test_support::sysfs(&lab.k, &lab.port, "address").expect("port MAC"),
    )
    .expect("a MAC");
    let host_mac = roamer_test_support::parse_mac(
        &roamer_test_support::sysfs(&lab.h, &lab.host, "address").expect("host MAC"),
    )
    .expect("a MAC");
    let hello_in = hello_frame(port_mac, host_mac, 1985);
    let mut host_port = lab.host_port();

    // Without the filter a hello from the segment reaches HSRP.
    common::send_all(
        &mut host_port,
        &mut common::slots_with(std::slice::from_ref(&hello_in)),
    );
    roamer_test_support::wait_for("the hello punted", Duration::from_secs(5), || {
        (lab.hello_punts() > 0).then_some(())
    });

    lab.apply(&[TableOp::add(TableEntry::HelloFilter { port: PortId(1) })]);
    for _ in 0..3 {
        common::send_all(
            &mut host_port,
            &mut common::slots_with(std::slice::from_ref(&hello_in)),
        );
    }
    roamer_test_support::wait_for(
        "three hellos dropped at the port's ingress",
        Duration::from_secs(5),
        || (lab.counter("drop hsrp-hello-filtered") == 3).then_some(()),
    );
    assert_eq!(lab.hello_punts(), 0, "a filtered hello was punted");
    let trace = lab
        .backend
        .as_ref()
        .expect("backend")
        .trace(PortId(1), None, hello_in.clone())
        .expect("trace");
    assert_eq!(trace.verdict, "Drop(HelloFiltered)", "{trace:?}");
    assert!(
        roamer_test_support::ping(&lab.h, Ipv4Addr::new(10, 1, 0, 2), Duration::from_secs(5))
            .expect("ping"),
        "other traffic crosses the filtered port"
    );

    // Out: a hello injected through the port is dropped; a datagram to another port (the
    // proof that the capture sees what leaves) is not.
    let capture = Capture::start(
        &lab.h,
        &lab.host,
        "udp",
        20,
        &["udp.dstport", "_ws.malformed", "_ws.expert"],
        Duration::from_secs(15),
    )
    .expect("tshark on the host's link");
    let hello_out = hello_frame(host_mac, port_mac, 1985);
    let other_out = hello_frame(host_mac, port_mac, 1986);
    // The kernel tells the sender of a frame its egress filter dropped (ENOBUFS): ignored.
    let lines = lab.inject_until_captured(&[&hello_out, &other_out], &capture, "1986");
    assert!(
        lines.iter().any(|l| l.starts_with("1986")),
        "the capture saw nothing leave the port: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("1985")),
        "a hello left the filtered port: {lines:?}"
    );
    assert!(lab.counter("drop hsrp-hello-filtered-egress") >= 1);

    // The row goes: hellos leave again, and come in to HSRP again.
    lab.apply(&[TableOp::remove(TableEntry::HelloFilter { port: PortId(1) })]);
    let lines = lab.inject_until_captured(&[&hello_out], &capture, "1985");
    assert!(
        lines.iter().any(|l| l.starts_with("1985")),
        "no hello left the port once the filter went: {lines:?}"
    );
    common::send_all(
        &mut host_port,
        &mut common::slots_with(std::slice::from_ref(&hello_in)),
    );
    roamer_test_support::wait_for("the hello punted again", Duration::from_secs(5), || {
        (lab.hello_punts() > 0).then_some(())
    });
    let filters = lab
        .k
        .exec(&["tc", "filter", "show", "dev", &lab.port, "egress"])
        .unwrap_or_default();
    assert!(
        !filters.contains("hello_filter"),
        "a hello filter program stayed: {filters}"
    );
}
