//! A data port whose interface vanishes and comes back while the switch runs (containerlab
//! deletes and re-creates a node's links): the data path notices within a couple of seconds,
//! reports the port down (`HalEvent::PortDown`), counts what it cannot send as `port-down`,
//! opens the port again on the new interface of the same name, reports it up
//! (`HalEvent::PortUp`), and forwards over it as before.
//!
//! The switch is a namespace with two access ports in VLAN 10, each a veth to a host namespace
//! (10.0.0.1/24 and 10.0.0.2/24).

#![allow(clippy::unwrap_used)] // test set-up: a failure is the test's failure

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::needs_root;
use roamer_forwarding::tables::Limits;
use roamer_hal::{Backend, HalEvent, PortId, TableEntry, TableOp, VlanId};
use roamer_platforms::software::port::{Link, LinkCheck};
use roamer_platforms::software::{AfPacketPort, PortIo, SoftwareBackend};
use roamer_test_support::{Netns, Veth, ping, sysfs, unique_prefix};

const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// How long a change of an interface may take to be reported (checks run every second).
const NOTICE: Duration = Duration::from_secs(3);

/// The switch and its two hosts. Fields drop in order: the data path first, the namespaces
/// (and with them every veth) last.
struct Lab {
    backend: SoftwareBackend,
    /// Ports 1 and 2: the switch's ends.
    sw_devs: [String; 2],
    /// The hosts' ends.
    host_devs: [String; 2],
    _veths: Vec<Veth>,
    hosts: [Netns; 2],
    switch: Netns,
}

/// No IPv6 chatter (router and neighbour solicitations), also on interfaces created later.
fn no_ipv6(ns: &Netns) {
    for scope in ["all", "default"] {
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{scope}.disable_ipv6=1"),
        ])
        .unwrap();
    }
}

/// Creates the veth `sw_dev`—`host_dev` (the host's end with `mac` if given), moves its ends
/// into `switch` and `host` and gives the host's end `cidr`.
fn wire(
    switch: &Netns,
    host: &Netns,
    sw_dev: &str,
    host_dev: &str,
    mac: Option<&str>,
    cidr: &str,
) -> Veth {
    let veth = Veth::new(sw_dev, host_dev).unwrap();
    if let Some(mac) = mac {
        roamer_test_support::ip(&["link", "set", host_dev, "address", mac]).unwrap();
    }
    veth.move_to(sw_dev, switch).unwrap();
    veth.move_to(host_dev, host).unwrap();
    host.addr(host_dev, cidr).unwrap();
    veth
}

/// The lab, its data path started in the switch's namespace (as the daemon runs) or, when
/// `from_outside`, in the test's own namespace over ports opened inside the switch's (so a
/// port re-opens in a namespace that is not its data path's).
fn lab(from_outside: bool) -> Lab {
    let p = unique_prefix();
    let switch = Netns::new(&format!("{p}s")).unwrap();
    let hosts = [
        Netns::new(&format!("{p}a")).unwrap(),
        Netns::new(&format!("{p}b")).unwrap(),
    ];
    for ns in [&switch, &hosts[0], &hosts[1]] {
        no_ipv6(ns);
    }
    let sw_devs = [format!("{p}s1"), format!("{p}s2")];
    let host_devs = [format!("{p}a1"), format!("{p}b1")];
    let veths = vec![
        wire(
            &switch,
            &hosts[0],
            &sw_devs[0],
            &host_devs[0],
            None,
            "10.0.0.1/24",
        ),
        wire(
            &switch,
            &hosts[1],
            &sw_devs[1],
            &host_devs[1],
            None,
            "10.0.0.2/24",
        ),
    ];

    let devs = sw_devs.clone();
    let open = move || -> Vec<(PortId, Box<dyn PortIo>)> {
        devs.iter()
            .enumerate()
            .map(|(i, dev)| {
                let port = AfPacketPort::open(dev).unwrap();
                (PortId(i as u32 + 1), Box::new(port) as Box<dyn PortIo>)
            })
            .collect()
    };
    let mut backend = if from_outside {
        let ports = switch.enter(open).unwrap();
        SoftwareBackend::start(ports, Limits::default()).unwrap()
    } else {
        // The data-path thread is spawned from inside the namespace, and stays there.
        switch
            .enter(move || SoftwareBackend::start(open(), Limits::default()))
            .unwrap()
            .unwrap()
    };
    // What `vlan 10` and two `switchport access vlan 10` ports program.
    let vlan = VlanId::new(10).unwrap();
    let mut ops = vec![TableOp::add(TableEntry::Vlan { vlan })];
    for port in [PortId(1), PortId(2)] {
        ops.push(TableOp::add(TableEntry::VlanMember {
            vlan,
            port,
            tagged: false,
        }));
    }
    let results = backend.apply(&ops);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    Lab {
        backend,
        sw_devs,
        host_devs,
        _veths: veths,
        hosts,
        switch,
    }
}

/// Drains events until `want` comes (ignoring the others); how long it took, or None after
/// `timeout`.
fn wait_for(backend: &mut SoftwareBackend, want: &HalEvent, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut events = Vec::new();
    while started.elapsed() < timeout {
        backend.drain_events(&mut events);
        if events.iter().any(|e| e == want) {
            return Some(started.elapsed());
        }
        events.clear();
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The port-related events waiting now.
fn port_events(backend: &mut SoftwareBackend) -> Vec<HalEvent> {
    let mut events = Vec::new();
    backend.drain_events(&mut events);
    events.retain(|e| matches!(e, HalEvent::PortUp(_) | HalEvent::PortDown(_)));
    events
}

fn port_down_drops(backend: &SoftwareBackend) -> u64 {
    let learned = backend.snapshot().unwrap();
    learned
        .counters
        .drops
        .get("port-down")
        .copied()
        .unwrap_or(0)
}

fn deleted_and_recreated(from_outside: bool) {
    let mut lab = lab(from_outside);
    assert!(
        ping(&lab.hosts[0], HOST_B, Duration::from_secs(5)).unwrap(),
        "no ping through the switch to begin with: {:?}",
        lab.backend.snapshot().map(|l| l.counters)
    );
    assert_eq!(
        port_events(&mut lab.backend),
        Vec::new(),
        "nothing changed yet"
    );
    assert_eq!(port_down_drops(&lab.backend), 0);
    let mac = sysfs(&lab.hosts[1], &lab.host_devs[1], "address").unwrap();

    // Host B's link is deleted (both ends go): port 2's interface is gone.
    lab.hosts[1]
        .ip(&["link", "del", "dev", &lab.host_devs[1]])
        .unwrap();
    let took = wait_for(&mut lab.backend, &HalEvent::PortDown(PortId(2)), NOTICE);
    assert!(took.is_some(), "no PortDown within {NOTICE:?}");
    eprintln!("PortDown after {:?}", took.unwrap());
    let learned = lab.backend.snapshot().unwrap();
    assert_eq!(learned.ports_down, vec![(PortId(2), Link::Gone)]);
    assert!(
        !ping(&lab.hosts[0], HOST_B, Duration::from_millis(800)).unwrap(),
        "a reply from a host that has no link"
    );
    let dropped = port_down_drops(&lab.backend);
    assert!(
        dropped > 0,
        "what was sent towards port 2 is counted as port-down: {:?}",
        lab.backend.snapshot().map(|l| l.counters)
    );
    assert_eq!(
        lab.backend
            .drops
            .port_down
            .load(std::sync::atomic::Ordering::Relaxed),
        dropped
    );
    assert_eq!(port_events(&mut lab.backend), Vec::new(), "reported once");

    // The link is created again under the same names (host B keeps its MAC, as a VM that
    // comes back does): port 2 is opened on the new interface and forwards again.
    let veth = wire(
        &lab.switch,
        &lab.hosts[1],
        &lab.sw_devs[1],
        &lab.host_devs[1],
        Some(&mac),
        "10.0.0.2/24",
    );
    lab._veths.push(veth);
    let took = wait_for(&mut lab.backend, &HalEvent::PortUp(PortId(2)), NOTICE);
    assert!(took.is_some(), "no PortUp within {NOTICE:?}");
    eprintln!("PortUp after {:?}", took.unwrap());
    assert_eq!(lab.backend.snapshot().unwrap().ports_down, Vec::new());
    let started = Instant::now();
    assert!(
        ping(&lab.hosts[0], HOST_B, Duration::from_secs(5)).unwrap(),
        "no ping over the re-created link: {:?}",
        lab.backend.snapshot().map(|l| l.counters)
    );
    eprintln!("ping through again after {:?}", started.elapsed());
    assert_eq!(
        port_down_drops(&lab.backend),
        dropped,
        "nothing dropped once the port is back"
    );
}

#[test]
fn a_deleted_port_interface_is_reported_down_and_used_again_once_re_created() {
    needs_root();
    deleted_and_recreated(false);
}

#[test]
fn a_port_opened_in_another_namespace_re_opens_there() {
    needs_root();
    deleted_and_recreated(true);
}

/// Sets host B's end of its link `state` (`up`, `down`); the backend reports `event` in time.
fn set_peer_link(lab: &mut Lab, state: &str, event: HalEvent) {
    lab.hosts[1]
        .ip(&["link", "set", "dev", &lab.host_devs[1], state])
        .unwrap();
    assert!(
        wait_for(&mut lab.backend, &event, NOTICE).is_some(),
        "no {event:?} within {NOTICE:?}"
    );
}

#[test]
fn a_port_whose_peer_goes_down_is_reported_down_and_up_again() {
    needs_root();
    let mut lab = lab(false);
    assert!(ping(&lab.hosts[0], HOST_B, Duration::from_secs(5)).unwrap());

    set_peer_link(&mut lab, "down", HalEvent::PortDown(PortId(2)));
    assert_eq!(
        lab.backend.snapshot().unwrap().ports_down,
        vec![(PortId(2), Link::NoCarrier)]
    );

    set_peer_link(&mut lab, "up", HalEvent::PortUp(PortId(2)));
    assert_eq!(lab.backend.snapshot().unwrap().ports_down, Vec::new());
    assert!(ping(&lab.hosts[0], HOST_B, Duration::from_secs(5)).unwrap());
    assert_eq!(
        port_down_drops(&lab.backend),
        0,
        "the interface never went away"
    );
}

#[test]
fn check_link_opens_the_port_again_on_a_new_interface_even_with_the_old_index() {
    needs_root();
    let p = unique_prefix();
    let switch = Netns::new(&format!("{p}s")).unwrap();
    let host = Netns::new(&format!("{p}h")).unwrap();
    let (sw_dev, host_dev) = (format!("{p}s1"), format!("{p}h1"));
    let _veth = wire(&switch, &host, &sw_dev, &host_dev, None, "10.0.0.2/24");
    let dev = sw_dev.clone();
    let mut port = switch
        .enter(move || AfPacketPort::open(&dev))
        .unwrap()
        .unwrap();
    let up = |reopened| LinkCheck {
        link: Link::Up,
        reopened,
    };
    assert_eq!(port.check_link(), up(false));
    let (first_index, first_fd) = (port.ifindex(), port.raw_fd());

    // Out of the namespace and back: the same interface (and index), but the kernel unbound
    // the socket when it left.
    switch
        .ip(&["link", "set", "dev", &sw_dev, "netns", host.name()])
        .unwrap();
    assert_eq!(port.check_link().link, Link::Gone);
    host.ip(&["link", "set", "dev", &sw_dev, "netns", switch.name()])
        .unwrap();
    assert_eq!(
        port.check_link(),
        LinkCheck {
            link: Link::AdminDown,
            reopened: true
        },
        "opened again; the interface comes back down"
    );
    switch.ip(&["link", "set", "dev", &sw_dev, "up"]).unwrap();
    assert!(
        roamer_test_support::wait_until(Duration::from_secs(2), || {
            port.check_link() == up(false)
        }),
        "up once the carrier is back"
    );
    assert_eq!(port.ifindex(), first_index, "the kernel kept the index");
    assert_ne!(port.raw_fd(), first_fd, "a new socket");
    assert_eq!(port.check_link(), up(false), "no change, nothing done");
}
