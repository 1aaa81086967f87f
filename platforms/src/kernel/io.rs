//! Control traffic of the kernel backend.
//!
//! Receive: one AF_PACKET socket (ETH_P_ALL) with a classic BPF filter that passes only UDP and
//! TCP with port 4342 (LISP control, reliable registration) and UDP 1985/2029 (HSRP), IPv4 and
//! IPv6. A packet tap sees frames before TC ingress, so TCP 4342 arrives here even though the
//! ETR program drops it before the kernel's TCP (which would reset it). Frames from a port's
//! interface are punted as they are, with their L4 checksum recomputed (a sender on the same
//! host leaves it partial over veth): LISP control only when addressed to one of our
//! addresses, HSRP always (unless the port filters hellos). UDP 4342 is also bound as an
//! ordinary socket whose filter drops everything, so the kernel never answers it with ICMP
//! port unreachable; TCP 4342 has a listener of the same kind, so the kernel does not reset
//! reliable-registration SYNs (the daemon's own TCP answers them through the tap).
//!
//! Send: routed packets (IPv4/IPv6 in an Ethernet frame whose MACs are ignored) leave through
//! raw `IPPROTO_RAW` sockets (header included): the kernel routes them. A zero source address
//! is replaced by the one the kernel would choose for the destination, with the checksums
//! recomputed. Frames for a port leave through the packet socket.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamer_hal::{HalEvent, Notifier, PortId, Punt, PuntReason, VlanId};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tracing::{info, warn};

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

/// Classic BPF: IPv4/IPv6, UDP or TCP, port 4342 either way or UDP port 1985/2029 as the
/// destination; unfragmented IPv4; IPv6 without extension headers; ARP requests (for the
/// proxy-ARP answers the kernel cannot give, `proxy_arp.rs`).
fn control_filter() -> Vec<SockFilter> {
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const LDH_IND: u16 = 0x48;
    const LDXB_MSH: u16 = 0xb1;
    const JEQ: u16 = 0x15;
    const JSET: u16 = 0x45;
    const RET: u16 = 0x06;
    let lisp = u32::from(LISP_CONTROL_PORT);
    let f = SockFilter::new;
    vec![
        /* 0 */ f(LDH_ABS, 0, 0, 12),
        /* 1 */ f(JEQ, 1, 0, 0x0800),
        /* 2 */ f(JEQ, 11, 22, 0x86dd), // -> 14 v6, else -> 25
        /* 3 */ f(LDB_ABS, 0, 0, 23),
        /* 4 */ f(JEQ, 1, 0, 17),
        /* 5 */ f(JEQ, 0, 18, 6), // tcp -> 6, else drop
        /* 6 */ f(LDH_ABS, 0, 0, 20),
        /* 7 */ f(JSET, 16, 0, 0x1fff), // fragment -> drop
        /* 8 */ f(LDXB_MSH, 0, 0, 14),
        /* 9 */ f(LDH_IND, 0, 0, 14),
        /* 10 */ f(JEQ, 12, 0, lisp), // sport 4342 -> accept (23)
        /* 11 */ f(LDH_IND, 0, 0, 16),
        /* 12 */ f(JEQ, 10, 0, lisp),
        /* 13 */ f(JEQ, 9, 10, u32::from(HSRP_PORT)),
        /* 14 */ f(LDB_ABS, 0, 0, 20),
        /* 15 */ f(JEQ, 1, 0, 17),
        /* 16 */ f(JEQ, 0, 7, 6),
        /* 17 */ f(LDH_ABS, 0, 0, 54),
        /* 18 */ f(JEQ, 4, 0, lisp),
        /* 19 */ f(LDH_ABS, 0, 0, 56),
        /* 20 */ f(JEQ, 2, 0, lisp),
        /* 21 */ f(JEQ, 1, 0, u32::from(HSRP6_PORT)),
        /* 22 */ f(JEQ, 0, 1, u32::from(HSRP_PORT)),
        /* 23 */ f(RET, 0, 0, 0x0004_0000),
        /* 24 */ f(RET, 0, 0, 0),
        /* 25 */ f(JEQ, 0, 3, 0x0806), // not ARP -> drop (29)
        /* 26 */ f(LDH_ABS, 0, 0, 20),
        /* 27 */ f(JEQ, 0, 1, 1), // a request -> accept (28), else drop
        /* 28 */ f(RET, 0, 0, 0x0004_0000),
        /* 29 */ f(RET, 0, 0, 0),
    ]
}

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
    /// Ports that neither take nor send HSRP hellos.
    pub hello_filter: RwLock<BTreeSet<PortId>>,
    /// The VLAN of each access port (untagged frames), for the VLAN of punted hellos; a frame
    /// from a trunk carries its tag in the packet's auxdata.
    pub access_vlans: RwLock<BTreeMap<PortId, VlanId>>,
    /// What the thread answers proxy-ARP for, and how many it answered or failed to send.
    pub proxy_arp: RwLock<ProxyArpView>,
    pub proxy_arp_answered: AtomicU64,
    pub proxy_arp_send_errors: AtomicU64,
    pub punted: AtomicU64,
    pub punt_drops: AtomicU64,
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
    packet: Arc<Socket>,
    raw4: Socket,
    raw6: Socket,
    _udp: Socket,
    _tcp: Socket,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
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
        let eth_p_all = (libc::ETH_P_ALL as u16).to_be() as i32;
        let packet = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(eth_p_all)))?;
        packet.attach_filter(&control_filter())?;
        sys::ignore_outgoing(packet.as_raw_fd())?;
        sys::want_auxdata(packet.as_raw_fd())?;
        packet.set_nonblocking(true)?;
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
        // Everything it would receive is taken from the packet tap instead.
        udp.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        // Reliable registration's TCP is roamer's own (the daemon's stack, through the tap and
        // the raw sockets): a listener whose filter drops everything keeps the kernel's TCP
        // from resetting SYNs to port 4342 (the ETR program drops them earlier when loaded).
        let tcp = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        tcp.set_only_v6(false)?;
        tcp.set_reuse_address(true)?;
        tcp.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        tcp.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, LISP_CONTROL_PORT)).into())?;
        tcp.listen(16)?;
        let changes = change_monitor()?;
        let packet = Arc::new(packet);
        let rx = packet.clone();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("roamer-kernel-io".into())
            .spawn(move || receive_loop(&rx, &changes, &ports, &sh, &nl, event_fd))?;
        Ok(ControlIo {
            packet,
            raw4,
            raw6,
            _udp: udp,
            _tcp: tcp,
            thread: Some(thread),
            shared,
        })
    }

    /// Sends an IP packet (in an Ethernet frame whose MACs are ignored) through the kernel's
    /// routing.
    pub fn send_routed(&self, frame: &[u8]) -> io::Result<()> {
        let pkt = frame.get(14..).ok_or(io::ErrorKind::InvalidInput)?;
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

/// Receives control frames, checks the ports' links and our addresses when the kernel
/// announces a change (and every [`RESYNC`]), and wakes the control plane when the LISP
/// offload's event ring (`event_fd`, -1 without one) has events.
fn receive_loop(
    sock: &Socket,
    changes: &netlink_sys::Socket,
    ports: &[IoPort],
    shared: &Shared,
    nl: &Netlink,
    event_fd: RawFd,
) {
    let by_index: HashMap<i32, PortId> = ports.iter().map(|p| (p.ifindex, p.id)).collect();
    let mut buf = vec![0u8; FRAME_ROOM];
    let mut links: HashMap<PortId, bool> = HashMap::new();
    let mut last_link_check: Option<Instant> = None;
    let mut changed_since_check = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let due = if changed_since_check {
            CHANGE_SETTLE
        } else {
            RESYNC
        };
        if last_link_check.is_none_or(|t| t.elapsed() >= due) {
            last_link_check = Some(Instant::now());
            changed_since_check = false;
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
        let timeout_ms = if changed_since_check { 10 } else { 200 };
        let fds = [sock.as_raw_fd(), event_fd, changes.as_raw_fd()];
        let ready = match sys::wait_readable(&fds, timeout_ms) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "kernel backend: poll on the control tap failed");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if ready[2] && drain_changes(changes, &mut buf) {
            changed_since_check = true;
        }
        if ready[1] {
            // The backend drains the ring when the daemon asks for events; until then the fd
            // stays readable: wake the daemon, and give it a moment unless frames wait.
            shared.notify();
            if !ready[0] {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        }
        if !ready[0] {
            continue;
        }
        let mut got = false;
        for _ in 0..64 {
            let rx = match sys::recv_packet(sock.as_raw_fd(), &mut buf) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "kernel backend: receive on the control tap failed");
                    break;
                }
            };
            if rx.pkttype == sys::PACKET_OUTGOING {
                continue;
            }
            let Some(&port) = by_index.get(&rx.ifindex) else {
                continue;
            };
            let Some(frame) = buf.get(..rx.len) else {
                continue;
            };
            if let Some((mac, sender, target)) = proxy_arp::parse_request(frame) {
                answer_arp(sock.as_raw_fd(), shared, port, &rx, mac, sender, target);
                continue;
            }
            let Some(reason) = classify(frame, shared, port) else {
                continue;
            };
            let mut frame = frame.to_vec();
            if let Some(pkt) = frame.get_mut(14..) {
                fix_checksums(pkt);
            }
            let Ok(mut q) = shared.punts.lock() else {
                break;
            };
            if q.len() >= PUNT_QUEUE {
                shared.punt_drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // A tagged frame's VLAN is its tag; an untagged one's is its access port's (none
            // on a routed port).
            let vlan = match rx.vlan {
                Some(vid) => VlanId::new(vid).ok(),
                None => shared
                    .access_vlans
                    .read()
                    .ok()
                    .and_then(|m| m.get(&port).copied()),
            };
            q.push(Punt {
                port,
                vlan,
                reason,
                frame,
            });
            shared.punted.fetch_add(1, Ordering::Relaxed);
            got = true;
        }
        if got {
            shared.notify();
        }
    }
}

/// Answers an ARP request the kernel cannot (see `proxy_arp.rs`), out of the port it came in
/// on, tagged as it came.
fn answer_arp(
    fd: RawFd,
    shared: &Shared,
    port: PortId,
    rx: &sys::Received,
    sender_mac: [u8; 6],
    sender: Ipv4Addr,
    target: Ipv4Addr,
) {
    let Some(mac) = shared
        .proxy_arp
        .read()
        .ok()
        .and_then(|v| v.answer(port, rx.vlan, sender, target))
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

/// Why a frame the filter passed is punted, if it is.
fn classify(frame: &[u8], shared: &Shared, port: PortId) -> Option<PuntReason> {
    let pkt = frame.get(14..)?;
    let (dst, l4): (IpAddr, &[u8]) = match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0xf) * 4;
            let d = pkt.get(16..20)?;
            (
                IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
                pkt.get(ihl..)?,
            )
        }
        6 => {
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(d)), pkt.get(40..)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    if sport == LISP_CONTROL_PORT || dport == LISP_CONTROL_PORT {
        let ours = shared.local.read().ok()?.contains(&dst);
        return ours.then_some(PuntReason::LispControl);
    }
    if dport == HSRP_PORT || dport == HSRP6_PORT {
        let filtered = shared.hello_filter.read().ok()?.contains(&port);
        return (!filtered).then_some(PuntReason::Hsrp);
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
