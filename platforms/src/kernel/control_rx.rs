//! Control traffic in, on the kernel's local-delivery path only.
//!
//! A packet tap (AF_PACKET, ETH_P_ALL) sits on the path of every frame the kernel forwards, and
//! even with a filter that rejects all of them it cost a tenth of the kernel's forwarding rate.
//! These sockets are met only by what the kernel delivers to this host:
//!
//! - raw IPv4 and IPv6 sockets for UDP and TCP, each with a classic BPF filter that passes port
//!   4342 either way (LISP control, reliable registration) and the HSRP ports (UDP 1985, 2029)
//!   as destination. A raw socket gets its copy before UDP or TCP see the packet;
//! - HSRP's multicast groups (224.0.0.2 for version 1, 224.0.0.102 for version 2, ff02::66 for
//!   IPv6) joined on every port and SVI that has an IPv4 or non-link-local IPv6 address (an L3
//!   interface), or the kernel would not deliver the hellos locally;
//! - an ETH_P_ARP packet socket, which sees ARP and nothing else (and, not being an `ETH_P_ALL`
//!   tap, none of what the host sends), for the proxy-ARP requests the
//!   kernel cannot answer (`proxy_arp.rs`).
//!
//! The kernel says which interface a packet arrived on, not which bridge port: a packet on an
//! SVI is punted with the SVI's VLAN and a port of that VLAN (the control plane reads the VLAN).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use roamer_hal::{L3Interface, TableEntry, TableKind, VlanId};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockFilter, Socket, Type};
use tracing::{debug, warn};

use super::bridge::svi_name;
use super::io::{HSRP_PORT, HSRP6_PORT, LISP_CONTROL_PORT};
use super::sys;
use crate::software::sys::set_int_opt;

const LDH_ABS: u16 = 0x28;
const LDH_IND: u16 = 0x48;
const LDXB_MSH: u16 = 0xb1;
const JEQ: u16 = 0x15;
const JSET: u16 = 0x45;
const RET: u16 = 0x06;
const ACCEPT: u32 = 0x0004_0000;

/// Room in front of a received packet for the Ethernet header (and the IPv6 header, which an
/// IPv6 raw socket does not return) that make it a frame the control plane parses.
const ETH_LEN: usize = 14;
const IPV6_LEN: usize = 40;

/// A classic BPF instruction: code, jump if true, jump if false, constant.
type Insn = (u16, u8, u8, u32);

fn f(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    (code, jt, jf, k)
}

fn compile(prog: &[Insn]) -> Vec<SockFilter> {
    prog.iter()
        .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
        .collect()
}

/// The filter of the raw IPv4 sockets, which see the packet from its IP header: an
/// packet from or to port 4342, or to the HSRP port (local delivery has reassembled
/// fragments; one with an offset would be refused).
fn ipv4_filter() -> Vec<Insn> {
    let lisp = u32::from(LISP_CONTROL_PORT);
    vec![
        /* 0 */ f(LDH_ABS, 0, 0, 6),
        /* 1 */ f(JSET, 6, 0, 0x1fff), // a fragment -> drop (8)
        /* 2 */ f(LDXB_MSH, 0, 0, 0),
        /* 3 */ f(LDH_IND, 0, 0, 0),
        /* 4 */ f(JEQ, 4, 0, lisp), // source port 4342 -> accept (9)
        /* 5 */ f(LDH_IND, 0, 0, 2),
        /* 6 */ f(JEQ, 2, 0, lisp),
        /* 7 */ f(JEQ, 1, 0, u32::from(HSRP_PORT)),
        /* 8 */ f(RET, 0, 0, 0),
        /* 9 */ f(RET, 0, 0, ACCEPT),
    ]
}

/// The filter of the raw IPv6 sockets, which see the packet from its transport header.
fn ipv6_filter() -> Vec<Insn> {
    let lisp = u32::from(LISP_CONTROL_PORT);
    vec![
        /* 0 */ f(LDH_ABS, 0, 0, 0),
        /* 1 */ f(JEQ, 4, 0, lisp), // -> accept (6)
        /* 2 */ f(LDH_ABS, 0, 0, 2),
        /* 3 */ f(JEQ, 2, 0, lisp),
        /* 4 */ f(JEQ, 1, 0, u32::from(HSRP6_PORT)),
        /* 5 */ f(RET, 0, 0, 0),
        /* 6 */ f(RET, 0, 0, ACCEPT),
    ]
}

/// ARP requests only (the opcode after a 14-byte Ethernet header and 6 bytes of ARP).
fn arp_filter() -> Vec<Insn> {
    vec![
        f(LDH_ABS, 0, 0, 20),
        f(JEQ, 0, 1, 1),
        f(RET, 0, 0, ACCEPT),
        f(RET, 0, 0, 0),
    ]
}

/// Which raw socket a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// The receiving sockets, owned by the control thread.
#[derive(Debug)]
pub struct ControlRx {
    /// UDP and TCP over IPv4, then over IPv6.
    ip: [(Socket, Family, u8); 4],
    arp: Socket,
    /// Interfaces whose HSRP groups are joined.
    joined: HashSet<i32>,
    /// Site multicast Map-Notify groups joined, by interface.
    notify_joined: HashSet<(i32, Ipv4Addr)>,
}

/// The multicast groups of HSRP: version 1 and version 2 over IPv4, and over IPv6.
const HSRP_V4_GROUPS: [Ipv4Addr; 2] = [Ipv4Addr::new(224, 0, 0, 2), Ipv4Addr::new(224, 0, 0, 102)];
const HSRP_V6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x66);

impl ControlRx {
    pub fn open() -> io::Result<ControlRx> {
        let raw = |family: Family, proto: i32| -> io::Result<(Socket, Family, u8)> {
            let (domain, filter) = match family {
                Family::V4 => (Domain::IPV4, ipv4_filter()),
                Family::V6 => (Domain::IPV6, ipv6_filter()),
            };
            let s = Socket::new(domain, Type::RAW, Some(Protocol::from(proto)))?;
            s.attach_filter(&compile(&filter))?;
            match family {
                Family::V4 => set_int_opt(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?,
                Family::V6 => {
                    let fd = s.as_raw_fd();
                    set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
                    set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
                }
            }
            s.set_nonblocking(true)?;
            Ok((s, family, proto as u8))
        };
        let eth_p_arp = (libc::ETH_P_ARP as u16).to_be() as i32;
        let arp = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(eth_p_arp)))?;
        arp.attach_filter(&compile(&arp_filter()))?;
        sys::want_auxdata(arp.as_raw_fd())?;
        arp.set_nonblocking(true)?;
        Ok(ControlRx {
            ip: [
                raw(Family::V4, libc::IPPROTO_UDP)?,
                raw(Family::V4, libc::IPPROTO_TCP)?,
                raw(Family::V6, libc::IPPROTO_UDP)?,
                raw(Family::V6, libc::IPPROTO_TCP)?,
            ],
            arp,
            joined: HashSet::new(),
            notify_joined: HashSet::new(),
        })
    }

    /// The four raw IP sockets' descriptors, then the ARP socket's.
    pub fn fds(&self) -> [RawFd; 5] {
        [
            self.ip[0].0.as_raw_fd(),
            self.ip[1].0.as_raw_fd(),
            self.ip[2].0.as_raw_fd(),
            self.ip[3].0.as_raw_fd(),
            self.arp.as_raw_fd(),
        ]
    }

    pub fn arp_fd(&self) -> RawFd {
        self.arp.as_raw_fd()
    }

    /// Joins HSRP's groups on each interface of `ifindexes` not joined yet; forgets interfaces
    /// that are gone (the kernel dropped their memberships with them). A join the kernel
    /// refuses (IPv6 off on the interface) is tried again at the next change.
    pub fn join_hsrp_groups(&mut self, ifindexes: &HashSet<i32>) {
        self.joined.retain(|i| ifindexes.contains(i));
        for &ifindex in ifindexes {
            if self.joined.contains(&ifindex) {
                continue;
            }
            let mut ok = true;
            for group in HSRP_V4_GROUPS {
                let r = self.ip[0]
                    .0
                    .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex as u32));
                if let Err(e) = r
                    && e.raw_os_error() != Some(libc::EADDRINUSE)
                {
                    debug!(ifindex, %group, error = %e, "kernel backend: joining an HSRP group");
                    ok = false;
                }
            }
            let r = self.ip[2]
                .0
                .join_multicast_v6(&HSRP_V6_GROUP, ifindex as u32);
            if let Err(e) = r
                && e.raw_os_error() != Some(libc::EADDRINUSE)
            {
                debug!(ifindex, error = %e, "kernel backend: joining the HSRP IPv6 group");
            }
            if ok {
                self.joined.insert(ifindex);
            }
        }
    }

    /// Joins the site multicast Map-Notify groups of `wanted` not joined yet and leaves the
    /// ones no longer wanted (a refused join is logged and tried again at the next change).
    pub fn set_notify_groups(&mut self, wanted: &HashSet<(i32, Ipv4Addr)>) {
        let socket = &self.ip[0].0;
        for &(ifindex, group) in self.notify_joined.difference(wanted) {
            let index = InterfaceIndexOrAddress::Index(ifindex as u32);
            if let Err(e) = socket.leave_multicast_v4_n(&group, &index) {
                // The interface is gone, and its memberships with it.
                debug!(ifindex, %group, error = %e, "kernel backend: leaving a map-notify-group");
            }
        }
        self.notify_joined.retain(|g| wanted.contains(g));
        for &(ifindex, group) in wanted {
            if self.notify_joined.contains(&(ifindex, group)) {
                continue;
            }
            let index = InterfaceIndexOrAddress::Index(ifindex as u32);
            match socket.join_multicast_v4_n(&group, &index) {
                Ok(()) => {
                    self.notify_joined.insert((ifindex, group));
                }
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                    self.notify_joined.insert((ifindex, group));
                }
                Err(e) => {
                    warn!(ifindex, %group, error = %e, "kernel backend: joining a map-notify-group failed");
                }
            }
        }
    }

    /// Reads one packet of raw socket `which` (an index into [`ControlRx::fds`]) into `buf` as
    /// an Ethernet frame (zero MACs): returns its length and the interface it arrived on, or
    /// `None` when nothing waits. The IP packet is as the kernel delivered it.
    pub fn read_ip(&self, which: usize, buf: &mut [u8]) -> io::Result<Option<(usize, i32)>> {
        let Some((socket, family, proto)) = self.ip.get(which) else {
            return Ok(None);
        };
        let at = match family {
            Family::V4 => ETH_LEN,
            Family::V6 => ETH_LEN + IPV6_LEN,
        };
        let Some(room) = buf.get_mut(at..) else {
            return Ok(None);
        };
        let Some(rx) = sys::recv_ip(socket.as_raw_fd(), room)? else {
            return Ok(None);
        };
        let ethertype: u16 = match family {
            Family::V4 => 0x0800,
            Family::V6 => {
                let (Some(src), Some(dst), Ok(len)) = (rx.src6, rx.dst6, u16::try_from(rx.len))
                else {
                    return Ok(Some((0, rx.ifindex)));
                };
                let h = &mut buf[ETH_LEN..ETH_LEN + IPV6_LEN];
                h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
                h[4..6].copy_from_slice(&len.to_be_bytes());
                h[6] = *proto;
                h[7] = rx.hop_limit.unwrap_or(255);
                h[8..24].copy_from_slice(&src.octets());
                h[24..40].copy_from_slice(&dst.octets());
                0x86dd
            }
        };
        buf[..12].fill(0);
        buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
        Ok(Some((at + rx.len, rx.ifindex)))
    }
}

/// Where a packet the kernel delivered came in, as the control plane names it.
#[derive(Debug, Default)]
pub struct Arrivals {
    /// Configured ports by interface index.
    pub ports: HashMap<i32, roamer_hal::PortId>,
    /// SVIs by interface index.
    pub svis: HashMap<i32, VlanId>,
}

impl Arrivals {
    /// Re-reads the SVIs from the namespace's links (by their names, `bridge::svi_name`).
    pub fn refresh_svis<'a>(&mut self, links: impl Iterator<Item = (u32, &'a str)>) {
        self.svis = links
            .filter_map(|(index, name)| {
                let vid: u16 = name.strip_prefix("rmrvlan")?.parse().ok()?;
                (svi_name(vid) == name).then_some(())?;
                Some((index as i32, VlanId::new(vid).ok()?))
            })
            .collect();
    }
}

impl super::KernelBackend {
    /// Hands the control thread the site multicast Map-Notify groups of the dynamic-EID
    /// ranges, to join on their interfaces.
    pub(super) fn refresh_notify_groups(&mut self) {
        let ranges = match &self.offload {
            Some(o) => o.entries(TableKind::DynamicEidRange).unwrap_or_default(),
            None => Vec::new(),
        };
        let groups: BTreeSet<(L3Interface, Ipv4Addr)> = ranges
            .iter()
            .filter_map(|e| match e {
                TableEntry::DynamicEidRange {
                    iface,
                    notify_group: Some(g),
                    ..
                } => Some((*iface, *g)),
                _ => None,
            })
            .collect();
        if let Ok(mut g) = self.shared.notify_groups.write()
            && *g != groups
        {
            *g = groups;
            self.shared
                .notify_groups_changes
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program (the subset these filters use) over `pkt`.
    fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let half = |at: usize| {
            pkt.get(at..at + 2)
                .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])))
        };
        loop {
            let (code, jt, jf, k) = prog[pc];
            pc += 1;
            match code {
                LDH_ABS => a = half(k as usize),
                LDH_IND => a = half(x as usize + k as usize),
                LDXB_MSH => x = u32::from(pkt[k as usize] & 0xf) * 4,
                JEQ => pc += usize::from(if a == k { jt } else { jf }),
                JSET => pc += usize::from(if a & k != 0 { jt } else { jf }),
                RET => return k,
                other => panic!("opcode {other:#x} not modelled"),
            }
        }
    }

    fn ipv4_udp(sport: u16, dport: u16, frag: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend(sport.to_be_bytes());
        p.extend(dport.to_be_bytes());
        p.extend([0, 8, 0, 0]);
        p
    }

    #[test]
    fn the_ipv4_filter_passes_lisp_control_and_hsrp_only() {
        let f = ipv4_filter();
        assert_eq!(run(&f, &ipv4_udp(40000, 4342, 0)), ACCEPT);
        assert_eq!(
            run(&f, &ipv4_udp(4342, 50000, 0x4000)),
            ACCEPT,
            "DF is no fragment"
        );
        assert_eq!(run(&f, &ipv4_udp(1985, 1985, 0)), ACCEPT);
        assert_eq!(run(&f, &ipv4_udp(40000, 4341, 0)), 0, "LISP data");
        assert_eq!(run(&f, &ipv4_udp(40000, 53, 0)), 0);
        assert_eq!(run(&f, &ipv4_udp(40000, 4342, 5)), 0, "a later fragment");
        let mut options = ipv4_udp(40000, 4342, 0);
        options[0] = 0x46;
        options.splice(20..20, [1, 1, 1, 1]);
        assert_eq!(run(&f, &options), ACCEPT, "the header length is read");
    }

    #[test]
    fn the_ipv6_filter_reads_ports_at_the_transport_header() {
        let f = ipv6_filter();
        let l4 = |s: u16, d: u16| [s.to_be_bytes(), d.to_be_bytes()].concat();
        assert_eq!(run(&f, &l4(4342, 40000)), ACCEPT);
        assert_eq!(run(&f, &l4(40000, 4342)), ACCEPT);
        assert_eq!(run(&f, &l4(2029, 2029)), ACCEPT);
        assert_eq!(run(&f, &l4(40000, 4341)), 0);
    }

    #[test]
    fn the_arp_filter_passes_requests_only() {
        let mut frame = vec![0u8; 42];
        frame[12..14].copy_from_slice(&[0x08, 0x06]);
        frame[20..22].copy_from_slice(&[0, 1]);
        assert_eq!(run(&arp_filter(), &frame), ACCEPT);
        frame[21] = 2;
        assert_eq!(run(&arp_filter(), &frame), 0);
    }

    #[test]
    fn svis_are_known_by_their_names() {
        let mut a = Arrivals::default();
        a.refresh_svis(
            [
                (7, "rmrvlan10"),
                (8, "eth0"),
                (9, "rmrvlan010"),
                (10, "rmrvlanx"),
            ]
            .into_iter(),
        );
        assert_eq!(a.svis.len(), 1);
        assert_eq!(a.svis.get(&7).map(|v| v.get()), Some(10));
    }
}
