//! One harness for the forwarding pipeline, shared by the `pipeline` fuzz target and the test
//! that replays its corpus: a switch configured like a real one (two access VLANs with SVIs, a
//! trunk, routed ports, proxy ARP, HSRP, a static route, LISP ITR/ETR and dynamic EIDs) fed
//! arbitrary frames on arbitrary ports. Nothing may panic, the frame handed back stays inside
//! its buffer, a frame to be cut or fragmented comes back untouched, and memory stays bounded
//! (events drained, learning and rate-limit tables within their limits).
//!
//! Input: `[sel, tag, csum_start:2, csum_offset:2, frame...]` (big-endian). `sel` bits 0-2 the
//! ingress port (see [`PORTS`]), bit 3 a large segment (GSO; a TCP one when `csum_offset` is 16),
//! bit 4 a partial checksum at
//! `csum_start`/`csum_offset` from the frame's start (as a port's `virtio_net_hdr` gives it),
//! bit 5 also `trace`, bit 6 also `originate` (on a copy), bit 7 a clock jump of 20 s. `tag`:
//! 0 untagged, 1 VLAN 10, 2 VLAN 20, else that VLAN ID (a tag the kernel stripped; a tag in
//! the frame is stripped by the pipeline).
//!
//! IPv4 header checksums (the frame's, after an optional in-frame tag, and that of the inner
//! packet of a LISP data packet to 4341) are made right before the frame is fed, so mutations
//! reach what lies behind the pipeline's check; a header whose checksum field is `0xffff`
//! (never a right one) is left as it is, so the check itself is exercised too.

use std::net::IpAddr;

use roamer_hal::{
    HalEvent, Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, PortId, Prefix, TableEntry,
    TableOp, VlanId,
};

use super::{Frame, Pipeline, Settings, Verdict};
use crate::tables::{Limits, Tables};

const HEADROOM: usize = 128;
const HEADER: usize = 6;

const A: PortId = PortId(1);
const B: PortId = PortId(2);
const TRUNK: PortId = PortId(3);
const UPLINK: PortId = PortId(4);
const ROUTED: PortId = PortId(5);
const A2: PortId = PortId(6);
/// Not configured.
const UNKNOWN: PortId = PortId(9);
/// The ingress port for each value of the selector's low 3 bits.
pub const PORTS: [PortId; 8] = [A, B, TRUNK, UPLINK, ROUTED, A2, UNKNOWN, TRUNK];

const ROUTER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
const VMAC: Mac = Mac([0x00, 0x00, 0x0e, 0x1d, 0x01, 0x0c]);
const HOST_B: Mac = Mac([0x02, 0, 0, 0, 0, 0x0b]);
const PEER_RLOC_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x99]);
const ROUTED_PEER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x55]);

/// Learning and rate-limit tables are kept small so the fuzzer reaches their limits.
const MAX_LEARNED: usize = 256;
const MAX_EVENTS: usize = 256;
const MAX_TRACKED: usize = 512;

/// The switch under test, built once per process by the caller.
#[derive(Debug)]
pub struct PipelineHarness {
    p: Pipeline,
    now_ms: u64,
    buf: Vec<u8>,
    before: Vec<u8>,
    /// The input frame with its IPv4 header checksums made right.
    fixed: Vec<u8>,
    events: Vec<HalEvent>,
}

impl PipelineHarness {
    pub fn new() -> Option<PipelineHarness> {
        let tables = Tables::new(Limits {
            fdb: MAX_LEARNED,
            neighbors: MAX_LEARNED,
        });
        let settings = Settings {
            max_events: MAX_EVENTS,
            max_tracked: MAX_TRACKED,
            ..Settings::default()
        };
        let mut p = Pipeline::new(tables, settings);
        for e in entries()? {
            p.tables.apply(&TableOp::add(e)).ok()?;
        }
        p.set_port_mtu(A, 9000);
        p.set_port_mtu(B, 1500);
        p.set_port_mtu(UPLINK, 1500);
        p.set_port_mtu(ROUTED, 9000);
        Some(PipelineHarness {
            p,
            now_ms: 0,
            buf: Vec::new(),
            before: Vec::new(),
            fixed: Vec::new(),
            events: Vec::new(),
        })
    }

    /// Runs the frame in `data` through the pipeline (see the module documentation).
    pub fn feed(&mut self, data: &[u8]) {
        let mut h = [0u8; HEADER];
        let n = data.len().min(HEADER);
        h[..n].copy_from_slice(&data[..n]);
        let frame = &data[n..];
        let sel = h[0];
        let port = PORTS[usize::from(sel & 7)];
        let large = sel & 0x08 != 0;
        let tag = match h[1] {
            0 => None,
            1 => VlanId::new(10).ok(),
            2 => VlanId::new(20).ok(),
            v => VlanId::new(u16::from(v)).ok(),
        };
        self.now_ms += if sel & 0x80 != 0 { 20_000 } else { 37 };
        let now = self.now_ms;
        let be16 = |at: usize| usize::from(u16::from_be_bytes([h[at], h[at + 1]]));
        let partial = (sel & 0x10 != 0).then(|| (HEADROOM + be16(2), be16(4)));

        self.fixed.clear();
        self.fixed.extend_from_slice(frame);
        fix_ipv4_checksums(&mut self.fixed);
        let frame = &self.fixed[..];

        // What a burst's warm-up parses (the harness's tables are too small to be warmed).
        std::hint::black_box(super::routed_destination(frame));
        self.buf.clear();
        self.buf.resize(HEADROOM, 0);
        self.buf.extend_from_slice(frame);
        self.before.clone_from(&self.buf);
        let mut f = Frame {
            buf: &mut self.buf,
            start: HEADROOM,
            len: frame.len(),
            large,
            // A TSO segment's checksum field sits 16 octets into its TCP header.
            gso_tcp: large && h[4..6] == [0, 16],
            partial_csum: partial,
        };
        let out = self.p.process(port, tag, &mut f, now);
        let (start, len) = (f.start, f.len);
        assert!(
            start
                .checked_add(len)
                .is_some_and(|end| end <= self.buf.len()),
            "frame {start}+{len} outside its {}-octet buffer",
            self.buf.len()
        );
        if let Verdict::Segment { .. } = out.verdict {
            assert!(large, "only a large segment is cut");
        }
        // The backend cuts or fragments the frame as it came in (an in-frame tag aside, which
        // the pipeline strips): nothing may have been done to it yet.
        let in_frame_tag = frame.get(12..14) == Some(&[0x81, 0x00][..]);
        if matches!(
            out.verdict,
            Verdict::Segment { .. } | Verdict::Fragment { .. }
        ) && !in_frame_tag
        {
            assert_eq!((start, len), (HEADROOM, frame.len()), "{:?}", out.verdict);
            assert!(self.buf == self.before, "{:?}: frame changed", out.verdict);
        }
        assert!(self.p.reply().len() <= 256);

        if sel & 0x20 != 0 {
            let _ = self.p.trace(port, tag, frame, now);
        }
        if sel & 0x40 != 0 {
            self.buf.clone_from(&self.before);
            let mut f = Frame::new(&mut self.buf, HEADROOM, frame.len());
            let _ = self.p.originate(&mut f, now);
            let (start, len) = (f.start, f.len);
            assert!(start.checked_add(len).is_some_and(|e| e <= self.buf.len()));
        }

        // Held frames go on when what they wait for comes (a neighbour learned above), each
        // within its buffer; never more held than the slots.
        assert!(self.p.held() <= self.p.settings.hold_total);
        let mut asked = 0;
        while self.p.reask_held(now).is_some() {
            assert!(self.p.reply().len() <= 256);
            asked += 1;
            assert!(
                asked <= self.p.settings.hold_total,
                "asked more than once each"
            );
        }
        if self.p.poll_held(now) {
            self.buf.clear();
            self.buf.resize(HEADROOM + super::HOLD_FRAME_MAX, 0);
            while let Some(r) = self.p.resume_released(&mut self.buf, HEADROOM, now) {
                assert!(
                    r.start
                        .checked_add(r.len)
                        .is_some_and(|e| e <= self.buf.len())
                );
                assert!(self.p.reply().len() <= 256);
            }
        }

        self.p.drain_events(&mut self.events);
        assert!(self.events.len() <= MAX_EVENTS, "events beyond their limit");
        self.events.clear();
        let t = &self.p.tables;
        assert!(t.fdb.len() <= MAX_LEARNED + 8, "MAC table beyond its limit");
        assert!(
            t.neighbors.len() <= MAX_LEARNED + 8,
            "neighbours beyond their limit"
        );
    }
}

/// Writes the right checksum into the IPv4 header at `at` of `f` (if there is one whose
/// checksum field is not `0xffff`); returns the header's length.
fn fix_ipv4_header(f: &mut [u8], at: usize) -> Option<usize> {
    let vihl = *f.get(at)?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return None;
    }
    let h = f.get_mut(at..at + ihl)?;
    if h[10..12] != [0xff, 0xff] {
        h[10..12].fill(0);
        let c = crate::wire::checksum::ipv4_header(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    Some(ihl)
}

/// See the module documentation: the outer IPv4 header and, in a LISP data packet, the inner one.
fn fix_ipv4_checksums(f: &mut [u8]) {
    let mut l3 = 14;
    if f.get(12..14) == Some(&[0x81, 0x00][..]) {
        l3 += 4;
    }
    if f.get(l3 - 2..l3) != Some(&[0x08, 0x00][..]) {
        return;
    }
    let Some(ihl) = fix_ipv4_header(f, l3) else {
        return;
    };
    let udp = l3 + ihl;
    if f.get(l3 + 9) == Some(&17) && f.get(udp + 2..udp + 4) == Some(&[0x10, 0xf5][..]) {
        // UDP 8 + LISP 8 octets, then the inner packet.
        fix_ipv4_header(f, udp + 16);
    }
}

fn vlan(id: u16) -> Option<VlanId> {
    VlanId::new(id).ok()
}

fn addr(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn prefix(s: &str) -> Option<Prefix> {
    s.parse().ok()
}

fn locator(rloc: &str, priority: u8) -> Option<Locator> {
    Some(Locator {
        rloc: addr(rloc)?,
        priority,
        weight: 50,
    })
}

/// VLAN 10 on ports A and A2, VLAN 20 on port B, both tagged on the trunk (which filters HSRP
/// hellos); SVIs 10.10.0.1/24 + 2001:db8:a::1/64 (HSRP virtual 10.10.0.254, proxy ARP,
/// dynamic EIDs 172.16.9.0/24 across subnets) and 10.20.0.1/24 + 2001:db8:14::1/64 (dynamic
/// EIDs 10.20.0.128/25 in extended-subnet mode, host B known); a routed uplink 192.0.2.1/24 +
/// 2001:db8:ff::1/64 towards a peer xTR; a routed port 198.18.0.1/30 with a static route
/// behind it; LISP: 172.16.0.0/12 and 2001:db8:1000::/36 through the map-cache (positive over
/// both underlays, negative), 10.20.0.0/16 and 2001:db8:14::/48 in the local database, one
/// host away.
fn entries() -> Option<Vec<TableEntry>> {
    let (v10, v20) = (vlan(10)?, vlan(20)?);
    let (svi10, svi20) = (L3Interface::Vlan(v10), L3Interface::Vlan(v20));
    let (up, routed) = (L3Interface::Port(UPLINK), L3Interface::Port(ROUTED));
    let mut e = vec![
        TableEntry::Vlan { vlan: v10 },
        TableEntry::Vlan { vlan: v20 },
    ];
    for (vlan, port, tagged) in [
        (v10, A, false),
        (v10, A2, false),
        (v20, B, false),
        (v10, TRUNK, true),
        (v20, TRUNK, true),
    ] {
        e.push(TableEntry::VlanMember { vlan, port, tagged });
    }
    for iface in [svi10, svi20, up, routed] {
        e.push(TableEntry::RouterMac {
            iface,
            mac: ROUTER_MAC,
            virtual_mac: false,
        });
    }
    for (iface, a, len) in [
        (svi10, "10.10.0.1", 24),
        (svi10, "2001:db8:a::1", 64),
        (svi20, "10.20.0.1", 24),
        (svi20, "2001:db8:14::1", 64),
        (up, "192.0.2.1", 24),
        (up, "2001:db8:ff::1", 64),
        (routed, "198.18.0.1", 30),
    ] {
        e.push(TableEntry::InterfaceAddress {
            iface,
            addr: addr(a)?,
            prefix_len: len,
            virtual_mac: None,
        });
    }
    // HSRP on Vlan10.
    e.push(TableEntry::RouterMac {
        iface: svi10,
        mac: VMAC,
        virtual_mac: true,
    });
    e.push(TableEntry::InterfaceAddress {
        iface: svi10,
        addr: addr("10.10.0.254")?,
        prefix_len: 32,
        virtual_mac: Some(VMAC),
    });
    e.push(TableEntry::HelloFilter { port: TRUNK });
    e.push(TableEntry::ProxyArp { iface: svi10 });
    for (iface, ip, mac) in [
        (up, "192.0.2.2", PEER_RLOC_MAC),
        (up, "2001:db8:ff::2", PEER_RLOC_MAC),
        (routed, "198.18.0.2", ROUTED_PEER_MAC),
        (svi20, "10.20.0.6", HOST_B),
    ] {
        e.push(TableEntry::Neighbor {
            iface,
            ip: addr(ip)?,
            mac,
        });
    }
    e.push(TableEntry::Fdb {
        vlan: v20,
        mac: HOST_B,
        port: B,
        is_static: true,
    });
    for (p, next_hop) in [
        (
            "198.51.100.0/24",
            NextHop::Gateway {
                via: addr("198.18.0.2")?,
                iface: None,
            },
        ),
        (
            "2001:db8:99::/48",
            NextHop::Gateway {
                via: addr("2001:db8:ff::2")?,
                iface: Some(up),
            },
        ),
        ("203.0.113.0/24", NextHop::Discard),
        ("172.16.0.0/12", NextHop::Lisp),
        ("2001:db8:1000::/36", NextHop::Lisp),
    ] {
        e.push(TableEntry::Route {
            prefix: prefix(p)?,
            next_hop,
        });
    }
    let iid = Iid::default();
    for (eid, locators, negative) in [
        (
            "172.16.1.0/24",
            vec![locator("192.0.2.2", 1)?, locator("2001:db8:ff::2", 1)?],
            NegativeAction::NoAction,
        ),
        (
            "172.16.2.0/24",
            vec![locator("198.51.100.7", 1)?, locator("192.0.2.2", 2)?],
            NegativeAction::NoAction,
        ),
        ("172.16.3.0/24", vec![], NegativeAction::SendMapRequest),
        ("172.16.4.0/24", vec![], NegativeAction::NativelyForward),
        (
            "2001:db8:1001::/48",
            vec![locator("192.0.2.2", 1)?],
            NegativeAction::NoAction,
        ),
    ] {
        e.push(TableEntry::LispMapCache {
            iid,
            eid: prefix(eid)?,
            locators,
            negative,
        });
    }
    for eid in ["10.20.0.0/16", "2001:db8:14::/48"] {
        e.push(TableEntry::LispDatabase {
            iid,
            eid: prefix(eid)?,
            locators: vec![locator("192.0.2.1", 1)?],
        });
    }
    e.push(TableEntry::DynamicEidRange {
        iface: svi10,
        map: "Roamer-1".into(),
        eid: prefix("172.16.9.0/24")?,
        extended_subnet: false,
        notify_group: None,
    });
    e.push(TableEntry::DynamicEidRange {
        iface: svi20,
        map: "Roamer-2".into(),
        eid: prefix("10.20.0.128/25")?,
        extended_subnet: true,
        notify_group: Some(std::net::Ipv4Addr::new(239, 1, 1, 2)),
    });
    e.push(TableEntry::AwayEntry {
        iid,
        eid: prefix("10.20.0.200/32")?,
    });
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_is_configured() {
        let mut h = PipelineHarness::new().expect("every table entry applies");
        // An ARP request for the SVI on port A, and a runt.
        let mut arp = vec![0u8; HEADER];
        arp.extend_from_slice(&[0xff; 6]);
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a, 10, 10, 0, 5, 0, 0, 0, 0, 0, 0]);
        arp.extend_from_slice(&[10, 10, 0, 1]);
        h.feed(&arp);
        assert!(h.p.reply().len() >= 42, "the SVI answers");
        h.feed(&[]);
    }
}
