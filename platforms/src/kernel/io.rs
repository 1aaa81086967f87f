//! Control traffic of the kernel backend.
//!
//! Receive (`control_rx.rs`): raw IP sockets and an ARP packet socket on the kernel's
//! local-delivery path, never on the path of forwarded frames. Packets that arrived on a port
//! or SVI are punted as they are, with their L4 checksum recomputed (a sender on the same host
//! leaves it partial over veth): LISP control only when addressed to one of our addresses,
//! HSRP always (hellos on a `hello-filter` port never get here: its TC program drops them).
//! UDP 4342 is also bound as an ordinary socket whose filter drops everything, so the kernel
//! never answers it with ICMP port unreachable. Reliable registration's TCP is the daemon's
//! own: listeners whose filter drops everything keep the kernel's TCP from resetting its
//! segments — one on 4342 (we are the map-server) and one on each port the daemon opens a
//! session from (we are the ETR), made when its SYN leaves.
//!
//! Send: routed packets (IPv4/IPv6 in an Ethernet frame whose MACs are ignored) leave through
//! raw `IPPROTO_RAW` sockets (header included): the kernel routes them. A zero source address
//! is replaced by the one the kernel would choose for the destination, with the checksums
//! recomputed. Frames for a port leave through a packet socket bound to no protocol (so the
//! kernel queues nothing on it).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamer_hal::{HalEvent, L3Interface, Notifier, PortId, Punt, PuntReason, VlanId};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tracing::{info, warn};

use super::control_rx::{Arrivals, ControlRx};
use super::nl::{Netlink, all_addresses, kernel_error, list_links};
use super::proxy_arp::{self, ProxyArpView};
use super::sys;

pub const LISP_CONTROL_PORT: u16 = 4342;
pub const HSRP_PORT: u16 = 1985;
pub const HSRP6_PORT: u16 = 2029;
const PUNT_QUEUE: usize = 4096;
/// Links and addresses are re-read this long after a change the kernel announced (a burst of
/// changes is read once)...
const CHANGE_SETTLE: Duration = Duration::from_millis(50);
/// ...and at this interval anyway, in case an announcement was lost.
const RESYNC: Duration = Duration::from_secs(10);
const FRAME_ROOM: usize = 65_536 + 64;

/// What the receive thread shares with the backend.
#[derive(Default)]
#[allow(missing_debug_implementations)]
pub struct Shared {
    pub punts: Mutex<Vec<Punt>>,
    pub events: Mutex<Vec<HalEvent>>,
    pub notifier: Mutex<Option<Notifier>>,
    /// Our addresses (refreshed every second and on address changes).
    pub local: RwLock<HashSet<IpAddr>>,
    /// Bumped whenever `local` is stored: a periodic refresh that started before a store by
    /// the backend (after it added an address) is stale and dropped.
    pub local_epoch: AtomicU64,
    /// The same with their interfaces, for the LISP offload, and a count of changes to it.
    pub by_interface: RwLock<Vec<(u32, IpAddr)>>,
    pub address_changes: AtomicU64,
    /// The VLAN of each access port (untagged frames), for the VLAN of punted hellos; a frame
    /// from a trunk carries its tag in the packet's auxdata.
    pub access_vlans: RwLock<BTreeMap<PortId, VlanId>>,
    /// What the thread answers proxy-ARP for, and how many it answered or failed to send.
    pub proxy_arp: RwLock<ProxyArpView>,
    pub proxy_arp_answered: AtomicU64,
    pub proxy_arp_send_errors: AtomicU64,
    pub punted: AtomicU64,
    pub punt_drops: AtomicU64,
    /// Reliable-registration ports the kernel's TCP could not be kept off.
    pub session_guard_errors: AtomicU64,
    /// The site multicast Map-Notify groups to join, on their interfaces (from the
    /// `DynamicEidRange` rows), and a count of changes to them.
    pub notify_groups: RwLock<BTreeSet<(L3Interface, Ipv4Addr)>>,
    pub notify_groups_changes: AtomicU64,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn notify(&self) {
        let n = self.notifier.lock().ok().and_then(|g| g.clone());
        if let Some(n) = n {
            n();
        }
    }
}

/// One port as the I/O thread sees it.
#[derive(Debug, Clone)]
pub struct IoPort {
    pub id: PortId,
    pub device: String,
    pub ifindex: i32,
}

/// The sockets and the receive thread.
pub struct ControlIo {
    packet: Socket,
    raw4: Socket,
    raw6: Socket,
    _udp: Socket,
    _tcp: Socket,
    /// The listeners that keep the kernel's TCP quiet on the ports of the daemon's own
    /// reliable-registration sessions, by port, with when a segment last left from it.
    session_guards: Mutex<HashMap<u16, (Socket, Instant)>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// A session port with no segment sent for this long has its guard removed...
const GUARD_IDLE: Duration = Duration::from_secs(15 * 60);
/// ...and there are never more guards than this (the oldest goes first).
const MAX_GUARDS: usize = 256;

/// A TCP listener on `port` of every address whose filter drops everything: the kernel
/// delivers segments to it (and discards them) instead of answering them with a reset.
fn silent_listener(port: u16) -> io::Result<Socket> {
    let tcp = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_only_v6(false)?;
    tcp.set_reuse_address(true)?;
    tcp.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
    tcp.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    tcp.listen(16)?;
    Ok(tcp)
}

/// The TCP ports and flags of an outgoing IP packet, if it is TCP.
fn tcp_ports_and_flags(pkt: &[u8]) -> Option<(u16, u16, u8)> {
    let l4 = match pkt.first()? >> 4 {
        4 if pkt.get(9) == Some(&6) => pkt.get(usize::from(pkt[0] & 0xf) * 4..)?,
        6 if pkt.get(6) == Some(&6) => pkt.get(40..)?,
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    Some((sport, dport, *l4.get(13)?))
}

impl std::fmt::Debug for ControlIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlIo")
    }
}

impl ControlIo {
    pub fn start(
        ports: Vec<IoPort>,
        shared: Arc<Shared>,
        nl: Arc<Netlink>,
        event_fd: RawFd,
    ) -> io::Result<ControlIo> {
        // Protocol 0: the kernel hands this socket no frames, it only sends.
        let packet = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
        let control_rx = ControlRx::open()?;
        let raw4 = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )?;
        let raw6 = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )?;
        raw6.set_header_included_v6(true)?;
        let udp = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        udp.set_only_v6(false)?;
        udp.set_reuse_address(true)?;
        udp.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, LISP_CONTROL_PORT)).into())?;
        // Everything it would receive is taken from the raw sockets instead.
        udp.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        let tcp = silent_listener(LISP_CONTROL_PORT)?;
        let changes = change_monitor()?;
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("roamer-kernel-io".into())
            .spawn(move || receive_loop(control_rx, &changes, &ports, &sh, &nl, event_fd))?;
        Ok(ControlIo {
            packet,
            raw4,
            raw6,
            _udp: udp,
            _tcp: tcp,
            session_guards: Mutex::new(HashMap::new()),
            thread: Some(thread),
            shared,
        })
    }

    /// Sends an IP packet (in an Ethernet frame whose MACs are ignored) through the kernel's
    /// routing.
    pub fn send_routed(&self, frame: &[u8]) -> io::Result<()> {
        let pkt = frame.get(14..).ok_or(io::ErrorKind::InvalidInput)?;
        self.guard_session(pkt);
        let mut pkt = pkt.to_vec();
        match pkt.first().map(|b| b >> 4) {
            Some(4) if pkt.len() >= 20 => {
                let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
                if pkt[12..16] == [0, 0, 0, 0] {
                    let IpAddr::V4(src) = source_for(IpAddr::V4(dst))? else {
                        return Err(io::ErrorKind::InvalidData.into());
                    };
                    pkt[12..16].copy_from_slice(&src.octets());
                    fix_checksums(&mut pkt);
                }
                self.raw4
                    .send_to(&pkt, &SocketAddrV4::new(dst, 0).into())
                    .map(|_| ())
            }
            Some(6) if pkt.len() >= 40 => {
                let mut d = [0u8; 16];
                d.copy_from_slice(&pkt[24..40]);
                let dst = Ipv6Addr::from(d);
                if pkt[8..24] == [0; 16] {
                    let IpAddr::V6(src) = source_for(IpAddr::V6(dst))? else {
                        return Err(io::ErrorKind::InvalidData.into());
                    };
                    pkt[8..24].copy_from_slice(&src.octets());
                    fix_checksums(&mut pkt);
                }
                self.raw6
                    .send_to(&pkt, &SocketAddrV6::new(dst, 0, 0, 0).into())
                    .map(|_| ())
            }
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// Keeps the kernel's TCP quiet on the port a reliable-registration session of ours (to a
    /// map-server's 4342) leaves from: a silent listener from its SYN until its reset, or until
    /// it has been idle for [`GUARD_IDLE`].
    fn guard_session(&self, pkt: &[u8]) {
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        let Some((sport, dport, flags)) = tcp_ports_and_flags(pkt) else {
            return;
        };
        if dport != LISP_CONTROL_PORT || sport == LISP_CONTROL_PORT {
            return;
        }
        let Ok(mut guards) = self.session_guards.lock() else {
            return;
        };
        let now = Instant::now();
        if flags & RST != 0 {
            guards.remove(&sport);
            return;
        }
        if let Some((_, used)) = guards.get_mut(&sport) {
            *used = now;
            return;
        }
        if flags & SYN == 0 {
            return;
        }
        guards.retain(|_, (_, used)| now.duration_since(*used) < GUARD_IDLE);
        if guards.len() >= MAX_GUARDS
            && let Some(oldest) = guards
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| *p)
        {
            guards.remove(&oldest);
        }
        match silent_listener(sport) {
            Ok(listener) => {
                guards.insert(sport, (listener, now));
            }
            Err(e) => {
                warn!(port = sport, error = %e, "kernel backend: cannot keep the kernel's TCP off a reliable-registration port; it may reset the session");
                self.shared
                    .session_guard_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends a frame out of one interface as it is.
    pub fn send_port(&self, ifindex: i32, frame: &[u8]) -> io::Result<()> {
        sys::send_packet(self.packet.as_raw_fd(), ifindex, frame)
    }
}

impl Drop for ControlIo {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A netlink socket that the kernel tells of every link and address change in this namespace
/// (`RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV6_IFADDR`): a cable pulled is a port down
/// at once, not at the next poll.
fn change_monitor() -> io::Result<netlink_sys::Socket> {
    let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
    let groups = libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR;
    socket.bind(&netlink_sys::SocketAddr::new(0, groups as u32))?;
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// Reads every announcement waiting on `socket`; whether there was any (an overflowed socket,
/// ENOBUFS, lost some: that counts as a change too).
fn drain_changes(socket: &netlink_sys::Socket, buf: &mut [u8]) -> bool {
    let mut any = false;
    loop {
        match socket.recv(&mut &mut buf[..], 0) {
            Ok(0) => return any,
            Ok(_) => any = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if e.raw_os_error() != Some(libc::ENOBUFS) {
                    warn!(error = %e, "kernel backend: reading link changes");
                }
                return true;
            }
        }
    }
}

/// The source address the kernel picks for `dst` (a connected UDP socket's local address).
fn source_for(dst: IpAddr) -> io::Result<IpAddr> {
    let domain = if dst.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.connect(&SocketAddr::new(dst, LISP_CONTROL_PORT).into())?;
    s.local_addr()?
        .as_socket()
        .map(|a| a.ip())
        .ok_or_else(|| io::ErrorKind::AddrNotAvailable.into())
}

/// Receives control packets, checks the ports' links and our addresses when the kernel
/// announces a change (and every [`RESYNC`]), and wakes the control plane when the LISP
/// offload's event ring (`event_fd`, -1 without one) has events.
fn receive_loop(
    mut rx: ControlRx,
    changes: &netlink_sys::Socket,
    ports: &[IoPort],
    shared: &Shared,
    nl: &Netlink,
    event_fd: RawFd,
) {
    let mut arrivals = Arrivals {
        ports: ports.iter().map(|p| (p.ifindex, p.id)).collect(),
        svis: HashMap::new(),
    };
    let mut buf = vec![0u8; FRAME_ROOM];
    let mut links: HashMap<PortId, bool> = HashMap::new();
    let mut last_link_check: Option<Instant> = None;
    let mut changed_since_check = false;
    let mut groups_seen = u64::MAX;
    while !shared.stop.load(Ordering::Relaxed) {
        let due = if changed_since_check {
            CHANGE_SETTLE
        } else {
            RESYNC
        };
        if last_link_check.is_none_or(|t| t.elapsed() >= due) {
            last_link_check = Some(Instant::now());
            changed_since_check = false;
            check_links_and_addresses(&mut rx, &mut arrivals, &mut links, ports, shared, nl);
            groups_seen = u64::MAX;
        }
        let groups_now = shared.notify_groups_changes.load(Ordering::Acquire);
        if groups_now != groups_seen {
            groups_seen = groups_now;
            let wanted = notify_group_joins(shared, &arrivals);
            rx.set_notify_groups(&wanted);
        }
        let timeout_ms = if changed_since_check { 10 } else { 200 };
        let [udp4, tcp4, udp6, tcp6, arp] = rx.fds();
        let fds = [udp4, tcp4, udp6, tcp6, arp, event_fd, changes.as_raw_fd()];
        let ready = match sys::wait_readable(&fds, timeout_ms) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "kernel backend: poll on the control sockets failed");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if ready[6] && drain_changes(changes, &mut buf) {
            changed_since_check = true;
        }
        let packets_ready = ready[..5].iter().any(|r| *r);
        if ready[5] {
            // The backend drains the ring when the daemon asks for events; until then the fd
            // stays readable: wake the daemon, and give it a moment unless packets wait.
            shared.notify();
            if !packets_ready {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        }
        let mut got = false;
        for which in (0..4).filter(|i| ready[*i]) {
            for _ in 0..64 {
                let (len, ifindex) = match rx.read_ip(which, &mut buf) {
                    Ok(Some(x)) => x,
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "kernel backend: receive on a control socket failed");
                        break;
                    }
                };
                let Some(frame) = buf.get_mut(..len) else {
                    continue;
                };
                if let Some(pkt) = frame.get_mut(14..) {
                    fix_checksums(pkt);
                }
                got |= punt_packet(frame, ifindex, &arrivals, shared);
            }
        }
        if ready[4] {
            receive_arp(&rx, &arrivals, shared, &mut buf);
        }
        if got {
            shared.notify();
        }
    }
}

/// Re-reads our addresses (for the LISP offload and the check that LISP control is for us),
/// the SVIs, and the ports' links (a change is a HAL event); joins HSRP's groups where there
/// is an address.
fn check_links_and_addresses(
    rx: &mut ControlRx,
    arrivals: &mut Arrivals,
    links: &mut HashMap<PortId, bool>,
    ports: &[IoPort],
    shared: &Shared,
    nl: &Netlink,
) {
    let mut changed = false;
    let epoch = shared.local_epoch.load(Ordering::Acquire);
    match nl.call("list addresses", |h| async move {
        all_addresses(h)
            .await
            .map_err(|e| kernel_error("list addresses".into(), e))
    }) {
        Ok(mut addrs) => {
            addrs.sort();
            if let Ok(mut l) = shared.local.write()
                && shared.local_epoch.load(Ordering::Acquire) == epoch
            {
                *l = addrs.iter().map(|(_, a)| *a).collect();
                shared.local_epoch.fetch_add(1, Ordering::AcqRel);
            }
            if let Ok(mut b) = shared.by_interface.write()
                && *b != addrs
            {
                *b = addrs;
                shared.address_changes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => warn!(error = %e, "kernel backend: address refresh"),
    }
    let all = match list_links(nl) {
        Ok(all) => all,
        Err(e) => {
            warn!(error = %e, "kernel backend: link check");
            Vec::new()
        }
    };
    arrivals.refresh_svis(all.iter().map(|l| (l.index, l.name.as_str())));
    // An IPv6 link-local address alone (a bridge member port has one) makes no L3 interface.
    let with_address: HashSet<i32> = shared
        .by_interface
        .read()
        .map(|b| {
            b.iter()
                .filter(|(_, a)| !matches!(a, IpAddr::V6(v) if v.is_unicast_link_local()))
                .map(|(i, _)| *i as i32)
                .collect()
        })
        .unwrap_or_default();
    let hsrp_capable: HashSet<i32> = with_address
        .into_iter()
        .filter(|i| arrivals.ports.contains_key(i) || arrivals.svis.contains_key(i))
        .collect();
    rx.join_hsrp_groups(&hsrp_capable);
    for p in ports {
        let up = all
            .iter()
            .any(|l| l.index as i32 == p.ifindex && l.up && l.carrier);
        // Taken as up until the first check says otherwise (as the software backend).
        if links.insert(p.id, up).unwrap_or(true) != up {
            info!(port = %p.id, device = %p.device, up, "port link changed");
            if let Ok(mut ev) = shared.events.lock() {
                ev.push(if up {
                    HalEvent::PortUp(p.id)
                } else {
                    HalEvent::PortDown(p.id)
                });
            }
            changed = true;
        }
    }
    if changed {
        shared.notify();
    }
}

/// The site multicast Map-Notify groups to be joined, by interface index (an interface that
/// does not exist yet is left out until it does).
fn notify_group_joins(shared: &Shared, arrivals: &Arrivals) -> HashSet<(i32, Ipv4Addr)> {
    let Ok(groups) = shared.notify_groups.read() else {
        return HashSet::new();
    };
    groups
        .iter()
        .filter_map(|(iface, group)| {
            let ifindex = match iface {
                L3Interface::Port(p) => arrivals.ports.iter().find(|(_, id)| *id == p)?.0,
                L3Interface::Vlan(v) => arrivals.svis.iter().find(|(_, id)| *id == v)?.0,
            };
            Some((*ifindex, *group))
        })
        .collect()
}

/// The port and VLAN a packet that arrived on interface `ifindex` is punted with: a port as
/// itself (with its access VLAN), an SVI as its VLAN and a port of that VLAN.
fn place(ifindex: i32, arrivals: &Arrivals, shared: &Shared) -> Option<(PortId, Option<VlanId>)> {
    let access = shared.access_vlans.read().ok()?;
    if let Some(&port) = arrivals.ports.get(&ifindex) {
        return Some((port, access.get(&port).copied()));
    }
    let vlan = *arrivals.svis.get(&ifindex)?;
    let port = access
        .iter()
        .find(|(_, v)| **v == vlan)
        .map(|(p, _)| *p)
        .or_else(|| arrivals.ports.values().min().copied())?;
    Some((port, Some(vlan)))
}

/// Punts one packet the kernel delivered to us (as an Ethernet frame); whether it was queued.
fn punt_packet(frame: &[u8], ifindex: i32, arrivals: &Arrivals, shared: &Shared) -> bool {
    let placed = place(ifindex, arrivals, shared);
    let Some(reason) = classify(frame, shared) else {
        return false;
    };
    let (port, vlan) = match (placed, reason) {
        (Some(p), _) => p,
        // LISP control to us on another interface (loopback: a message to ourselves).
        (None, PuntReason::LispControl) => match arrivals.ports.values().min() {
            Some(p) => (*p, None),
            None => return false,
        },
        (None, _) => return false,
    };
    let Ok(mut q) = shared.punts.lock() else {
        return false;
    };
    if q.len() >= PUNT_QUEUE {
        shared.punt_drops.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    q.push(Punt {
        port,
        vlan,
        reason,
        frame: frame.to_vec(),
    });
    shared.punted.fetch_add(1, Ordering::Relaxed);
    true
}

/// Answers the ARP requests waiting on the ARP socket that the kernel cannot answer.
fn receive_arp(rx: &ControlRx, arrivals: &Arrivals, shared: &Shared, buf: &mut [u8]) {
    for _ in 0..64 {
        let got = match sys::recv_packet(rx.arp_fd(), buf) {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "kernel backend: receive on the ARP socket failed");
                return;
            }
        };
        if got.pkttype == sys::PACKET_OUTGOING {
            continue;
        }
        let Some(frame) = buf.get(..got.len) else {
            continue;
        };
        let Some((mac, sender, target)) = proxy_arp::parse_request(frame) else {
            continue;
        };
        let Some((port, vlan)) = place(got.ifindex, arrivals, shared) else {
            continue;
        };
        // A tag the device stripped is the VLAN (a trunk); else the port's or the SVI's.
        let vlan = got.vlan.or(vlan.map(|v| v.get()));
        answer_arp(rx.arp_fd(), shared, port, vlan, &got, mac, sender, target);
    }
}

/// Answers an ARP request the kernel cannot (see `proxy_arp.rs`), out of the port it came in
/// on, tagged as it came.
#[allow(clippy::too_many_arguments)]
fn answer_arp(
    fd: RawFd,
    shared: &Shared,
    port: PortId,
    vlan: Option<u16>,
    rx: &sys::Received,
    sender_mac: [u8; 6],
    sender: Ipv4Addr,
    target: Ipv4Addr,
) {
    let Some(mac) = shared
        .proxy_arp
        .read()
        .ok()
        .and_then(|v| v.answer(port, vlan, sender, target))
    else {
        return;
    };
    let reply = proxy_arp::reply(sender_mac, sender, target, mac);
    let reply = match rx.vlan {
        Some(vid) => super::with_tag(&reply, vid),
        None => reply,
    };
    match sys::send_packet(fd, rx.ifindex, &reply) {
        Ok(()) => shared.proxy_arp_answered.fetch_add(1, Ordering::Relaxed),
        Err(e) => {
            warn!(error = %e, %target, "kernel backend: sending a proxy-ARP answer failed");
            shared.proxy_arp_send_errors.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// Why a packet the filters passed is punted, if it is.
fn classify(frame: &[u8], shared: &Shared) -> Option<PuntReason> {
    let pkt = frame.get(14..)?;
    let (dst, proto, l4): (IpAddr, u8, &[u8]) = match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0xf) * 4;
            let d = pkt.get(16..20)?;
            (
                IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
                *pkt.get(9)?,
                pkt.get(ihl..)?,
            )
        }
        6 => {
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(d)), *pkt.get(6)?, pkt.get(40..)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    if sport == LISP_CONTROL_PORT || dport == LISP_CONTROL_PORT {
        // A multicast destination is a group we joined (the kernel delivers no other): the
        // site multicast Map-Notify.
        let ours = dst.is_multicast() || shared.local.read().ok()?.contains(&dst);
        return ours.then_some(PuntReason::LispControl);
    }
    // A hello-filter port's hellos never get here: its TC program drops them first.
    if proto == 17 && (dport == HSRP_PORT || dport == HSRP6_PORT) {
        return Some(PuntReason::Hsrp);
    }
    None
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recomputes the IPv4 header checksum and the UDP/TCP checksum of an IP packet (IPv6
/// without extension headers). Anything else is left alone.
pub fn fix_checksums(pkt: &mut [u8]) {
    let Some(&first) = pkt.first() else { return };
    let (l4_off, proto, pseudo) = match first >> 4 {
        4 if pkt.len() >= 20 => {
            let ihl = usize::from(first & 0xf) * 4;
            if ihl < 20 || pkt.len() < ihl {
                return;
            }
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]])).min(pkt.len());
            pkt[10] = 0;
            pkt[11] = 0;
            let c = fold(sum16(&pkt[..ihl], 0));
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            let l4_len = total.saturating_sub(ihl);
            let pseudo = sum16(&pkt[12..20], u32::from(pkt[9]) + l4_len as u32);
            (ihl, pkt[9], (pseudo, total))
        }
        6 if pkt.len() >= 40 => {
            let total = (40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]))).min(pkt.len());
            let l4_len = total - 40;
            let pseudo = sum16(&pkt[8..40], u32::from(pkt[6]) + l4_len as u32);
            (40, pkt[6], (pseudo, total))
        }
        _ => return,
    };
    let (pseudo, total) = pseudo;
    let at = match proto {
        17 => 6,
        6 => 16,
        _ => return,
    };
    let Some(l4) = pkt.get_mut(l4_off..total) else {
        return;
    };
    if l4.len() < at + 2 {
        return;
    }
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut c = fold(sum16(l4, pseudo));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_a_known_udp_packet() {
        // 10.0.0.1:4342 -> 10.0.0.2:4342, payload "hi", checksums computed by hand.
        let mut p = vec![
            0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x10, 0xf6,
            0x10, 0xf6, 0, 10, 0, 0, b'h', b'i',
        ];
        fix_checksums(&mut p);
        // Verifying: the one's complement sum over header (and pseudo header + UDP) is 0xffff.
        assert_eq!(fold(sum16(&p[..20], 0)), 0);
        let pseudo = sum16(&p[12..20], 17 + 10);
        assert_eq!(fold(sum16(&p[20..], pseudo)), 0);
    }
}
