//! The proxy-ARP answers the kernel cannot give, given by the control thread (from its
//! `ETH_P_ARP` socket, `control_rx.rs`).
//!
//! Linux answers proxy-ARP only for a target with a unicast route out of another interface. The
//! seeds need two more answers, which the software backend gives (`forwarding`'s ARP stage,
//! protocols.md §8.1, §8.3), and this module gives them on the kernel backend:
//! - a target behind LISP: its route is roamer's `blackhole` route (what the ITR program reads
//!   as "look up the map-cache"), which the kernel never proxies for;
//! - a host that moved here across subnets asking for its old gateway (seed 001): sender in one
//!   of the interface's dynamic-EID ranges (not extended-subnet mode) but outside the
//!   interface's subnets, target outside them too and not an address of ours.
//!
//! Only interfaces with `ip proxy-arp` answer, with their HSRP virtual MAC while they have one,
//! else their own MAC. The view is rebuilt by the backend whenever a table it depends on
//! changes; the thread only reads it.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use roamer_hal::{L3Interface, NextHop, PortId, Prefix, TableEntry, TableKind};

use super::KernelBackend;

/// What one interface with proxy-ARP answers with, and for whom.
#[derive(Debug, Clone, Default)]
struct ProxyInterface {
    answer_mac: [u8; 6],
    subnets: Vec<Prefix>,
    /// Dynamic-EID ranges across subnets (not extended-subnet mode).
    moved_ranges: Vec<Prefix>,
}

/// Everything the control thread needs to decide.
#[derive(Debug, Clone, Default)]
pub struct ProxyArpView {
    /// The interface of each port's untagged frames: its routed interface or its access VLAN.
    port_iface: BTreeMap<PortId, L3Interface>,
    proxies: BTreeMap<L3Interface, ProxyInterface>,
    own: HashSet<IpAddr>,
    /// roamer's IPv4 routes, and whether each goes to LISP.
    routes: Vec<(Prefix, bool)>,
}

/// An ARP request: sender MAC, sender IP, target IP.
pub fn parse_request(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr, Ipv4Addr)> {
    if frame.get(12..14)? != [0x08, 0x06] || frame.get(14..22)? != [0, 1, 8, 0, 6, 4, 0, 1] {
        return None;
    }
    let ip = |at: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    Some((frame.get(22..28)?.try_into().ok()?, ip(28)?, ip(38)?))
}

/// The reply (60 octets, untagged) to `request`'s sender, for `target`, from `mac`.
pub fn reply(sender_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut r = Vec::with_capacity(60);
    r.extend_from_slice(&sender_mac);
    r.extend_from_slice(&mac);
    r.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
    r.extend_from_slice(&mac);
    r.extend_from_slice(&target.octets());
    r.extend_from_slice(&sender_mac);
    r.extend_from_slice(&sender.octets());
    r.resize(60, 0);
    r
}

impl ProxyArpView {
    /// The MAC to answer a request from `sender` for `target` with, arriving on `port` (in
    /// VLAN `vlan` when it was tagged), if this module answers it.
    pub fn answer(
        &self,
        port: PortId,
        vlan: Option<u16>,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    ) -> Option<[u8; 6]> {
        let iface = match vlan {
            Some(v) => L3Interface::Vlan(roamer_hal::VlanId::new(v).ok()?),
            None => *self.port_iface.get(&port)?,
        };
        let p = self.proxies.get(&iface)?;
        if target.is_broadcast()
            || target.is_multicast()
            || target.is_unspecified()
            || sender.is_unspecified()
            || sender == target
            || self.own.contains(&IpAddr::V4(target))
        {
            return None;
        }
        let (s, t) = (IpAddr::V4(sender), IpAddr::V4(target));
        let behind_lisp = self
            .routes
            .iter()
            .filter(|(prefix, _)| prefix.contains(t))
            .max_by_key(|(prefix, _)| prefix.len())
            .is_some_and(|(_, lisp)| *lisp);
        let in_subnet = |ip| p.subnets.iter().any(|n| n.contains(ip));
        let moved_gateway =
            p.moved_ranges.iter().any(|r| r.contains(s)) && !in_subnet(s) && !in_subnet(t);
        (behind_lisp || moved_gateway).then_some(p.answer_mac)
    }
}

impl KernelBackend {
    fn rows_of(&self, kind: TableKind) -> impl Iterator<Item = &TableEntry> {
        self.rows.get(&kind).into_iter().flat_map(|t| t.values())
    }

    /// Rebuilds the control thread's [`ProxyArpView`] from the rows (after a change to a table it
    /// reads).
    pub(super) fn refresh_proxy_arp(&mut self) {
        let mut view = ProxyArpView::default();
        for p in &self.ports {
            view.port_iface.insert(p.id, L3Interface::Port(p.id));
        }
        for e in self.rows_of(TableKind::VlanMember) {
            if let TableEntry::VlanMember {
                vlan,
                port,
                tagged: false,
            } = e
            {
                view.port_iface.insert(*port, L3Interface::Vlan(*vlan));
            }
        }
        let wanted: Vec<L3Interface> = self
            .rows_of(TableKind::ProxyArp)
            .filter_map(|e| match e {
                TableEntry::ProxyArp { iface } => Some(*iface),
                _ => None,
            })
            .collect();
        let links = if wanted.is_empty() {
            Vec::new()
        } else {
            super::nl::list_links(&self.nl).unwrap_or_default()
        };
        let ranges = match &self.offload {
            Some(o) if !wanted.is_empty() => {
                o.entries(TableKind::DynamicEidRange).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        for iface in wanted {
            let device_mac = self
                .l3_index(iface)
                .and_then(|i| links.iter().find(|l| l.index == i))
                .and_then(|l| l.mac);
            let virtual_mac = self.rows_of(TableKind::RouterMac).find_map(|e| match e {
                TableEntry::RouterMac {
                    iface: i,
                    mac,
                    virtual_mac: true,
                } if *i == iface => Some(mac.0),
                _ => None,
            });
            let Some(answer_mac) = virtual_mac.or(device_mac) else {
                continue;
            };
            let subnets = self
                .rows_of(TableKind::InterfaceAddress)
                .filter_map(|e| match e {
                    TableEntry::InterfaceAddress {
                        iface: i,
                        addr,
                        prefix_len,
                        virtual_mac: None,
                    } if *i == iface => Prefix::new(*addr, *prefix_len).ok(),
                    _ => None,
                })
                .collect();
            let moved_ranges = ranges
                .iter()
                .filter_map(|e| match e {
                    TableEntry::DynamicEidRange {
                        iface: i,
                        eid,
                        extended_subnet: false,
                        ..
                    } if *i == iface => Some(*eid),
                    _ => None,
                })
                .collect();
            view.proxies.insert(
                iface,
                ProxyInterface {
                    answer_mac,
                    subnets,
                    moved_ranges,
                },
            );
        }
        view.own = self
            .rows_of(TableKind::InterfaceAddress)
            .filter_map(|e| match e {
                TableEntry::InterfaceAddress { addr, .. } => Some(*addr),
                _ => None,
            })
            .collect();
        view.routes = self
            .rows_of(TableKind::Ipv4Route)
            .filter_map(|e| match e {
                TableEntry::Route { prefix, next_hop } => {
                    Some((*prefix, matches!(next_hop, NextHop::Lisp)))
                }
                _ => None,
            })
            .collect();
        if let Ok(mut v) = self.shared.proxy_arp.write() {
            *v = view;
        }
    }

    /// The ifindex of an interface's device, if it exists (an SVI not yet created has none).
    fn l3_index(&self, iface: L3Interface) -> Option<u32> {
        match iface {
            L3Interface::Port(p) => self.ports.iter().find(|x| x.id == p).map(|x| x.ifindex),
            L3Interface::Vlan(v) => self.svis.get(&v.get()).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        Prefix::new(
            a.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            l.parse().unwrap_or(0),
        )
        .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const MAC: [u8; 6] = [0, 0, 0x0c, 7, 0xac, 10];

    /// Port 1 a routed port in 10.2.2.0/24 with proxy-ARP and the dynamic-EID range
    /// 10.9.0.0/25 across subnets; 10.3.0.0/24 behind LISP, 10.7.0.0/16 routed elsewhere.
    fn view() -> ProxyArpView {
        let p1 = L3Interface::Port(PortId(1));
        let mut v = ProxyArpView::default();
        v.port_iface.insert(PortId(1), p1);
        v.port_iface.insert(PortId(2), L3Interface::Port(PortId(2)));
        v.proxies.insert(
            p1,
            ProxyInterface {
                answer_mac: MAC,
                subnets: vec![prefix("10.2.2.0/24")],
                moved_ranges: vec![prefix("10.9.0.0/25")],
            },
        );
        v.own.insert(
            "10.2.2.1"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        );
        v.routes = vec![
            (prefix("10.2.2.0/24"), false),
            (prefix("10.3.0.0/24"), true),
            (prefix("10.3.0.7/32"), false),
            (prefix("10.7.0.0/16"), false),
        ];
        v
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    #[test]
    fn answers_behind_lisp_and_a_moved_hosts_old_gateway_only() {
        let v = view();
        let ask = |port, sender, target| v.answer(PortId(port), None, ip(sender), ip(target));
        assert_eq!(ask(1, "10.2.2.5", "10.3.0.9"), Some(MAC), "behind LISP");
        assert_eq!(
            ask(1, "10.2.2.5", "10.3.0.7"),
            None,
            "a longer unicast route wins"
        );
        assert_eq!(
            ask(1, "10.2.2.5", "10.7.0.1"),
            None,
            "the kernel's own proxy-ARP"
        );
        assert_eq!(
            ask(1, "10.9.0.5", "10.9.0.1"),
            Some(MAC),
            "moved host's gateway"
        );
        assert_eq!(ask(1, "10.2.2.5", "10.9.0.1"), None, "a local host");
        assert_eq!(ask(1, "10.9.0.5", "10.2.2.1"), None, "our own address");
        assert_eq!(ask(1, "10.9.0.5", "10.2.2.8"), None, "the segment itself");
        assert_eq!(
            ask(2, "10.2.2.5", "10.3.0.9"),
            None,
            "no proxy-ARP on port 2"
        );
        assert_eq!(ask(1, "10.2.2.5", "10.2.2.5"), None, "gratuitous");
        assert_eq!(
            v.answer(PortId(1), Some(10), ip("10.2.2.5"), ip("10.3.0.9")),
            None,
            "a tagged frame belongs to its VLAN's interface"
        );
    }

    #[test]
    fn requests_parse_and_replies_are_well_formed() {
        let sender = [2, 0, 0, 0, 0, 5];
        let mut req = vec![0xff; 6];
        req.extend_from_slice(&sender);
        req.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        req.extend_from_slice(&sender);
        req.extend_from_slice(&[10, 9, 0, 5]);
        req.extend_from_slice(&[0; 6]);
        req.extend_from_slice(&[10, 9, 0, 1]);
        assert_eq!(
            parse_request(&req),
            Some((sender, ip("10.9.0.5"), ip("10.9.0.1")))
        );
        let mut reply_op = req.clone();
        reply_op[21] = 2;
        assert_eq!(parse_request(&reply_op), None, "a reply is not a request");
        assert_eq!(parse_request(&req[..40]), None, "truncated");
        let r = reply(sender, ip("10.9.0.5"), ip("10.9.0.1"), MAC);
        assert_eq!(r.len(), 60);
        assert_eq!(&r[..6], &sender);
        assert_eq!(&r[6..12], &MAC);
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[22..28], &MAC);
        assert_eq!(&r[28..32], &[10, 9, 0, 1]);
        assert_eq!(&r[38..42], &[10, 9, 0, 5]);
    }
}
