//! The forwarding pipeline: one frame in, one verdict out (plus, at most, one reply frame).
//!
//! Pure: it reads and learns into [`Tables`], never does I/O, takes the time as an argument and
//! allocates nothing per frame. Frames are processed in place in a caller-owned buffer with
//! headroom in front (802.1Q tags are stripped at ingress and re-added per egress port by the
//! backend; LISP encapsulation grows the frame into the headroom).

use std::net::{IpAddr, Ipv4Addr};

use roamer_hal::{
    HalEvent, Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, PortId, PuntReason, VlanId,
};

mod arp;
#[cfg(any(test, feature = "fuzz-harness"))]
#[doc(hidden)]
pub mod fuzz_harness;
mod hold;
mod icmp;
mod ipv4;
mod ipv6;
mod lisp;
mod nonce;
mod verdict;
pub use verdict::{
    Counters, DropReason, Frame, NoTrace, Outcome, ReplyTo, TextTrace, Tracer, Verdict,
};

pub use hold::{HOLD_FRAME_MAX, Resumed};

use crate::keyed_hash::KeyedMap;
use crate::tables::Tables;
use crate::wire::checksum;
use crate::wire::lisp_data::{
    EncapParams, InnerKind, LISP_DATA_PORT, LispDataRepr, NonceField, decapsulate_in_place,
    encapsulate_in_place, flow_source_port,
};

const ETH_LEN: usize = 14;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const LISP_CONTROL_PORT: u16 = 4342;
const HSRP_PORT: u16 = 1985;
const HSRP_V6_PORT: u16 = 2029;
/// While a returning host is still in the away table, its reports repeat at most this often.
const AWAY_REDETECT_MS: u64 = 100;
/// At most ten "too big" errors a second to one sender.
const TOO_BIG_INTERVAL_MS: u64 = 100;

/// Pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Dynamic EIDs are re-announced at most this often while active.
    pub eid_refresh_ms: u64,
    /// A map-cache miss for one destination is reported at most this often.
    pub miss_interval_ms: u64,
    /// Most events queued for the control plane; more are counted and dropped.
    pub max_events: usize,
    /// Most distinct sources remembered for rate limiting (misses, EIDs, SMR triggers).
    pub max_tracked: usize,
    /// L: the largest packet sent to an ETR without fragmentation (RFC 9300 §7.1), where the
    /// MTU of the port towards the RLOC is not known ([`Pipeline::set_port_mtu`]).
    pub underlay_mtu: u16,
    /// Packets held per destination (a map-cache miss, an unresolved neighbour) until it
    /// resolves; a new one pushes out the oldest. 0: nothing is held.
    pub hold_per_destination: usize,
    /// Packets held in all (each slot takes [`HOLD_FRAME_MAX`] octets, allocated once).
    pub hold_total: usize,
    /// A held packet is dropped (and counted) after this long.
    pub hold_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            eid_refresh_ms: 10_000,
            miss_interval_ms: 1_000,
            max_events: 4096,
            max_tracked: 65_536,
            underlay_mtu: 1500,
            hold_per_destination: 4,
            hold_total: 256,
            hold_timeout_ms: 3000,
        }
    }
}

/// The forwarding pipeline of one switch.
#[derive(Debug)]
pub struct Pipeline {
    pub tables: Tables,
    pub counters: Counters,
    pub settings: Settings,
    events: Vec<HalEvent>,
    /// Last time each rate-limited key was reported.
    reported: KeyedMap<(u8, IpAddr), u64>,
    reply: [u8; 256],
    reply_len: usize,
    flow_seed: u32,
    /// The LISP data header's nonce generator (RFC 9300 §5.3: random, not the flow hash).
    nonces: nonce::Nonces,
    /// Where the routed frame being processed came in (for ICMP errors from deep inside).
    ingress: Option<(L3Interface, PortId, Option<VlanId>)>,
    /// The IP MTU of each port, as the backend reads it from the interface.
    port_mtu: KeyedMap<PortId, u16>,
    /// Packets waiting for a map-cache entry or a neighbour.
    hold: hold::HoldQueue,
    /// Whether the frame being processed may be held (not while tracing or originating).
    may_hold: bool,
    /// A trace is running: what would be held is reported as held, and kept nowhere.
    tracing: bool,
}

impl Pipeline {
    pub fn new(tables: Tables, settings: Settings) -> Self {
        Pipeline {
            tables,
            counters: Counters::default(),
            settings,
            events: Vec::with_capacity(settings.max_events),
            reported: KeyedMap::with_capacity_and_hasher(1024, Default::default()),
            reply: [0; 256],
            reply_len: 0,
            flow_seed: 0x9e37_79b9,
            nonces: nonce::Nonces::from_entropy(),
            ingress: None,
            port_mtu: KeyedMap::default(),
            hold: hold::HoldQueue::new(settings.hold_total),
            may_hold: false,
            tracing: false,
        }
    }

    /// Tells the pipeline the IP MTU of `port` (the backend reads it from the interface, again
    /// when it may have changed). It sizes the LISP tunnel towards an RLOC behind the port (L of
    /// RFC 9300 §7.1, instead of [`Settings::underlay_mtu`]) and lets a decapsulated TCP packet
    /// larger than the port leave as segments ([`Verdict::ForwardTcpSegments`]). Not on the
    /// fast path: it may allocate.
    pub fn set_port_mtu(&mut self, port: PortId, mtu: u32) {
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        self.port_mtu.insert(port, mtu);
    }

    /// Seeds the LISP nonce generator (tests; by default it is seeded from the system's
    /// randomness when the pipeline is made).
    pub fn seed_nonces(&mut self, seed: u64) {
        self.nonces = nonce::Nonces::new(seed);
    }

    /// The IP MTU of `port` as last told ([`Pipeline::set_port_mtu`]).
    pub fn port_mtu(&self, port: PortId) -> Option<u16> {
        self.port_mtu.get(&port).copied()
    }

    /// The reply frame of the last [`Outcome`] that had one.
    pub fn reply(&self) -> &[u8] {
        &self.reply[..self.reply_len]
    }

    /// Moves queued events out.
    pub fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        out.append(&mut self.events);
    }

    /// Processes one received frame. `rx_tag` is a VLAN tag the kernel already stripped.
    pub fn process(
        &mut self,
        port: PortId,
        rx_tag: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
    ) -> Outcome {
        self.run(port, rx_tag, frame, now_ms, &mut NoTrace)
    }

    /// Called with a burst of received frames before they are processed one by one: warms the
    /// cache for the route and map-cache lookups of their destinations ([`Tables::warm`]), so
    /// that the lookups of a large table overlap their memory reads instead of each frame
    /// waiting on its own chain of misses. Reads the frames and changes nothing; a frame it
    /// cannot parse is skipped. For a LISP data packet the inner destination is the one looked
    /// up (the outer one is ours). Does nothing while every table fits the cache.
    pub fn warm<'a>(&self, frames: impl IntoIterator<Item = &'a [u8]>) {
        if !self.tables.worth_warming() {
            return;
        }
        let mut v4 = [0u32; crate::lpm::BATCH_LANES];
        let mut v6 = [0u128; crate::lpm::BATCH_LANES];
        let (mut n4, mut n6) = (0, 0);
        for f in frames {
            match routed_destination(f) {
                Some(IpAddr::V4(a)) if n4 < v4.len() => {
                    v4[n4] = u32::from(a);
                    n4 += 1;
                }
                Some(IpAddr::V6(a)) if n6 < v6.len() => {
                    v6[n6] = u128::from(a);
                    n6 += 1;
                }
                _ => {}
            }
            if n4 == v4.len() && n6 == v6.len() {
                break;
            }
        }
        // A lone lookup has nothing to overlap with: warming it would only do it twice.
        if n4 + n6 > 1 {
            self.tables.warm(&v4[..n4], &v6[..n6]);
        }
    }

    /// Processes a copy of a frame and explains each step; learns nothing.
    pub fn trace(
        &mut self,
        port: PortId,
        rx_tag: Option<VlanId>,
        frame: &[u8],
        now_ms: u64,
    ) -> (Outcome, Vec<String>) {
        let mut buf = vec![0u8; 128 + frame.len()];
        buf[128..].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf, 128, frame.len());
        let mut t = TextTrace::default();
        let counters = self.counters.clone();
        let events = self.events.len();
        let out = self.run(port, rx_tag, &mut f, now_ms, &mut t);
        self.counters = counters;
        self.events.truncate(events);
        t.step(format_args!("verdict: {:?}", out.verdict));
        (out, t.0)
    }

    fn run<T: Tracer>(
        &mut self,
        port: PortId,
        rx_tag: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        self.counters.rx += 1;
        self.reply_len = 0;
        self.may_hold = T::LEARN;
        self.tracing = !T::LEARN;
        let out = self.ingress(port, rx_tag, frame, now_ms, t);
        self.count(&out);
        out
    }

    fn count(&mut self, out: &Outcome) {
        match out.verdict {
            Verdict::Drop(r) => *self.counters.drops.entry(r.name()).or_insert(0) += 1,
            Verdict::Punt(_) => self.counters.punted += 1,
            Verdict::Flood { .. } => self.counters.flooded += 1,
            Verdict::FloodAndPunt { .. } => {
                self.counters.flooded += 1;
                self.counters.punted += 1;
            }
            Verdict::ForwardTcpSegments { .. } => self.counters.tcp_segmented += 1,
            Verdict::Held => self.counters.held += 1,
            Verdict::Forward { .. }
            | Verdict::Consumed
            | Verdict::Segment { .. }
            | Verdict::Fragment { .. } => {}
        }
        if out.reply.is_some() {
            self.counters.replies += 1;
        }
    }

    /// Routes an IPv4 packet the switch itself sends (LISP control messages), in `frame` after
    /// an Ethernet header whose addresses are ignored: FIB lookup, neighbour resolution,
    /// Ethernet rewrite and egress port, as for a routed packet, but without TTL decrement.
    ///
    /// A source of 0.0.0.0 becomes the egress interface's own address; the IPv4 header checksum
    /// and, for UDP, the UDP checksum are recomputed (never left zero: LISP ECM needs one).
    /// Other transports keep the checksum they came with, so they must carry their source.
    ///
    /// An unresolved next hop gives `Drop(Glean)` with the ARP request as reply, exactly as
    /// for transit traffic; the caller sends again later. Refused: multicast, limited broadcast
    /// and unspecified destinations (`NoRoute`: multicast origination is not implemented), one
    /// of our own addresses as destination (`NoRoute`: nothing is looped back), destinations
    /// behind a LISP route (`NoRoute`: control packets are never encapsulated here) or a
    /// discard route (`Discard`), and fragments (`BadIpHeader`: the UDP checksum would cover
    /// the whole datagram). IPv6 packets are taken as well (no extension headers), with the
    /// same rules; their UDP checksum is always written (it is mandatory over IPv6).
    pub fn originate(&mut self, frame: &mut Frame<'_>, now_ms: u64) -> Outcome {
        self.counters.originated += 1;
        self.reply_len = 0;
        // Nothing came in: ICMP errors built deeper down must not go to a previous frame's port.
        self.ingress = None;
        // The control plane sends again itself.
        self.may_hold = false;
        self.tracing = false;
        let out = if frame.bytes().get(12..14) == Some(&ETHERTYPE_IPV6.to_be_bytes()[..]) {
            self.originate_ipv6(frame, now_ms)
        } else {
            self.originate_ipv4(frame, now_ms)
        };
        self.count(&out);
        out
    }

    fn ingress<T: Tracer>(
        &mut self,
        port: PortId,
        rx_tag: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = Outcome::dropped;
        if frame.len < ETH_LEN {
            return drop(DropReason::Runt);
        }
        // Strip an in-frame 802.1Q tag so everything below sees an untagged frame.
        let mut tag = rx_tag;
        if be16(frame.bytes(), 12) == ETHERTYPE_VLAN && frame.len >= ETH_LEN + 4 {
            let vid = be16(frame.bytes(), 14) & 0x0fff;
            tag = VlanId::new(vid).ok();
            let s = frame.start;
            frame.buf.copy_within(s..s + 12, s + 4);
            frame.start += 4;
            frame.len -= 4;
            t.step(format_args!("ingress {port}: 802.1Q tag {vid} stripped"));
        }
        let Some(state) = self.tables.ports.get(&port) else {
            t.step(format_args!("ingress {port}: port not configured"));
            return drop(DropReason::UnknownPort);
        };
        let dst = mac_at(frame.bytes(), 0);
        let src = mac_at(frame.bytes(), 6);
        if src.is_multicast() {
            return drop(DropReason::BadSourceMac);
        }
        if state.routed {
            if tag.is_some() {
                return drop(DropReason::VlanNotAllowed);
            }
            let iface = L3Interface::Port(port);
            t.step(format_args!("ingress {port}: routed port"));
            return self.layer3(iface, port, None, dst, frame, now_ms, t);
        }
        let vlan = match tag {
            Some(v) if state.tagged.contains(v) || state.untagged == Some(v) => v,
            Some(v) => {
                t.step(format_args!("ingress {port}: VLAN {v} not allowed"));
                return drop(DropReason::VlanNotAllowed);
            }
            None => match state.untagged {
                Some(v) => v,
                None => return drop(DropReason::VlanNotAllowed),
            },
        };
        if !self.tables.vlans.contains(vlan) {
            return drop(DropReason::VlanInactive);
        }
        t.step(format_args!("ingress {port}: VLAN {vlan}"));
        if T::LEARN && !self.tables.learn_mac(vlan, src, port, now_ms) {
            t.step(format_args!("MAC table full: {src} not learned"));
        }
        let svi = L3Interface::Vlan(vlan);
        if self.tables.router_macs.contains_key(&(svi, dst)) {
            t.step(format_args!("{dst} is a router MAC of {svi}: route"));
            return self.layer3(svi, port, Some(vlan), dst, frame, now_ms, t);
        }
        if dst.is_multicast() {
            return self.broadcast(svi, port, vlan, frame, now_ms, t);
        }
        match self.tables.fdb.get(&(vlan, dst)) {
            Some(e) if e.port == port => drop(DropReason::SamePort),
            Some(e) => {
                let out = e.port;
                t.step(format_args!("MAC {dst} in VLAN {vlan} is on {out}"));
                self.counters.bridged += 1;
                match self.tables.egress_tagged(out, vlan) {
                    Some(tagged) => Outcome::no_reply(Verdict::Forward {
                        port: out,
                        tag: tagged.then_some(vlan),
                    }),
                    None => drop(DropReason::VlanNotAllowed),
                }
            }
            None => {
                t.step(format_args!("MAC {dst} unknown in VLAN {vlan}: flood"));
                Outcome::no_reply(Verdict::Flood { vlan, except: port })
            }
        }
    }

    /// Broadcast and multicast in a VLAN: flooded; ARP and HSRP also seen by us.
    fn broadcast<T: Tracer>(
        &mut self,
        svi: L3Interface,
        port: PortId,
        vlan: VlanId,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let flood = Verdict::Flood { vlan, except: port };
        match be16(frame.bytes(), 12) {
            ETHERTYPE_ARP => {
                let reply = self.arp(svi, port, Some(vlan), frame.bytes(), now_ms, t);
                Outcome {
                    verdict: flood,
                    reply,
                }
            }
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6
                if self.tables.hello_filter.contains(&port) && is_hsrp_hello(frame.bytes()) =>
            {
                t.step(format_args!("HSRP hello on a hello-filter port: dropped"));
                Outcome::dropped(DropReason::HelloFiltered)
            }
            ETHERTYPE_IPV4 if is_hsrp(frame.bytes()) => {
                t.step(format_args!("HSRP hello: flood and punt"));
                Outcome::no_reply(Verdict::FloodAndPunt {
                    vlan,
                    except: port,
                    reason: PuntReason::Hsrp,
                })
            }
            ETHERTYPE_IPV4 if is_udp_to(frame.bytes(), LISP_CONTROL_PORT) => {
                // Site multicast Map-Notify (map-notify-group) arrives as multicast in the VLAN.
                t.step(format_args!("multicast LISP control: flood and punt"));
                Outcome::no_reply(Verdict::FloodAndPunt {
                    vlan,
                    except: port,
                    reason: PuntReason::LispControl,
                })
            }
            ETHERTYPE_IPV6 => self.ipv6_multicast(svi, port, vlan, frame, now_ms, t),
            _ => Outcome::no_reply(flood),
        }
    }

    /// True (and remembers `now`) when `key` was not reported within `interval`.
    fn rate_ok(&mut self, kind: u8, key: IpAddr, now_ms: u64, interval: u64) -> bool {
        match self.reported.get_mut(&(kind, key)) {
            Some(last) if now_ms.saturating_sub(*last) < interval => false,
            Some(last) => {
                *last = now_ms;
                true
            }
            None => {
                if self.reported.len() >= self.settings.max_tracked {
                    // Forget everything older than the longest interval before growing.
                    let horizon = now_ms.saturating_sub(
                        self.settings
                            .eid_refresh_ms
                            .max(self.settings.miss_interval_ms),
                    );
                    self.reported.retain(|_, t| *t >= horizon);
                    if self.reported.len() >= self.settings.max_tracked {
                        return false;
                    }
                }
                self.reported.insert((kind, key), now_ms);
                true
            }
        }
    }

    fn event(&mut self, e: HalEvent) {
        if self.events.len() >= self.settings.max_events {
            self.counters.events_dropped += 1;
        } else {
            self.events.push(e);
        }
    }
}

/// IP and TCP header octets (options included) of `ip` when it is a whole TCP segment: IPv4
/// not fragmented, or IPv6 whose next header is TCP. `None` for anything else.
fn tcp_headers_len(ip: &[u8]) -> Option<usize> {
    let l3 = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            // No fragment: MF clear and offset 0.
            if ihl < 20 || *ip.get(9)? != 6 || be16(ip, 6) & 0x3fff != 0 {
                return None;
            }
            ihl
        }
        6 if *ip.get(6)? == 6 => 40,
        _ => return None,
    };
    let thl = usize::from(ip.get(l3 + 12)? >> 4) * 4;
    (thl >= 20 && l3 + thl <= ip.len()).then_some(l3 + thl)
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    if let Some(s) = b.get(at..at + 6) {
        m.copy_from_slice(s);
    }
    Mac(m)
}

fn is_udp_to(f: &[u8], port: u16) -> bool {
    let Some(ip) = f.get(ETH_LEN..) else {
        return false;
    };
    if ip.len() < 20 || ip[9] != 17 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    be16(ip, ihl + 2) == port
}

fn is_hsrp(f: &[u8]) -> bool {
    is_udp_to(f, HSRP_PORT)
}

/// The destination a frame's routing lookups are for: the IP destination after an Ethernet
/// header (and an 802.1Q tag in the frame, if any); for a LISP data packet, the inner one.
/// None for anything else or anything too short.
fn routed_destination(f: &[u8]) -> Option<IpAddr> {
    let mut l3 = ETH_LEN;
    let mut ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    if ethertype == ETHERTYPE_VLAN {
        ethertype = u16::from_be_bytes([*f.get(16)?, *f.get(17)?]);
        l3 += 4;
    }
    let ip = match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => f.get(l3..)?,
        _ => return None,
    };
    let (dst, udp) = ip_destination(ip)?;
    let inner = udp
        .filter(|u| u.get(2..4) == Some(&LISP_DATA_PORT.to_be_bytes()[..]))
        .and_then(|u| u.get(8 + 8..))
        .and_then(|inner| ip_destination(inner).map(|(d, _)| d));
    Some(inner.unwrap_or(dst))
}

/// An IP packet's destination and, when it carries UDP (not a later fragment), the UDP header
/// and what follows.
fn ip_destination(ip: &[u8]) -> Option<(IpAddr, Option<&[u8]>)> {
    match ip.first()? >> 4 {
        4 => {
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let first_fragment = ip.get(6..8).is_some_and(|f| f[0] & 0x1f == 0 && f[1] == 0);
            let udp = (ip.get(9) == Some(&17) && first_fragment && ihl >= 20)
                .then(|| ip.get(ihl..))
                .flatten();
            Some((IpAddr::from(dst), udp))
        }
        6 => {
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let udp = (ip.get(6) == Some(&17)).then(|| ip.get(40..)).flatten();
            Some((IpAddr::from(dst), udp))
        }
        _ => None,
    }
}

/// An HSRP hello (v1/v2 over IPv4 to UDP 1985, or HSRP for IPv6 to UDP 2029): what a hello
/// filter keeps off a port, in both directions (the kernel backend's `platforms/bpf/hello_filter.c`
/// matches the same).
pub fn is_hsrp_hello(f: &[u8]) -> bool {
    match be16(f, 12) {
        ETHERTYPE_IPV4 => is_hsrp(f),
        ETHERTYPE_IPV6 => {
            f.len() >= ETH_LEN + 44 && f[ETH_LEN + 6] == 17 && be16(f, ETH_LEN + 42) == HSRP_V6_PORT
        }
        _ => false,
    }
}

/// Whether an IPv4 header (its IHL × 4 octets) sums to all ones, as a correct one does
/// (RFC 1071): twenty octets added, no allocation.
#[inline]
fn ipv4_header_ok(header: &[u8]) -> bool {
    checksum::fold(checksum::add(0, header)) == 0xffff
}

/// TTL − 1 with an incremental checksum update (RFC 1624); hop limit − 1 for IPv6.
fn decrement_ttl(frame: &mut [u8]) {
    if frame.get(ETH_LEN).is_some_and(|b| b >> 4 == 6) {
        if let Some(hop) = frame.get_mut(ETH_LEN + 7) {
            *hop = hop.saturating_sub(1);
        }
        return;
    }
    let Some(ip) = frame.get_mut(ETH_LEN..ETH_LEN + 20) else {
        return;
    };
    let old = u16::from_be_bytes([ip[8], ip[9]]);
    ip[8] = ip[8].saturating_sub(1);
    let new = u16::from_be_bytes([ip[8], ip[9]]);
    let sum = u16::from_be_bytes([ip[10], ip[11]]);
    let updated = checksum::update_word(sum, old, new);
    ip[10..12].copy_from_slice(&updated.to_be_bytes());
}

/// Writes the checksum whose pseudo-header sum sits in the field at `first + offset`: the sum of
/// `buf[first..end]` (which includes that field), complemented. Out-of-range offsets leave the
/// packet as it is (the receiver then drops it for its checksum; nothing here panics).
fn complete_partial_checksum(buf: &mut [u8], first: usize, end: usize, offset: usize) {
    let field = first + offset;
    let Some(covered) = buf.get(first..end) else {
        return;
    };
    if field + 2 > end {
        return;
    }
    let mut value = checksum::finish(checksum::add(0, covered));
    if value == 0 && offset == 6 {
        // UDP (checksum at offset 6): a computed zero is sent as all ones.
        value = 0xffff;
    }
    buf[field..field + 2].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod partial_checksum_tests {
    use super::*;

    /// A UDP datagram whose checksum field holds the folded pseudo-header sum, as a sender with
    /// checksum offload leaves it; completing it gives the checksum computed from scratch.
    #[test]
    fn a_partial_checksum_is_completed_to_the_full_one() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut udp = vec![
            0x12, 0x34, 0x10, 0xf5, 0, 13, 0, 0, b'h', b'e', b'l', b'l', b'o',
        ];
        let pseudo = checksum::pseudo_ipv4(src, dst, checksum::IPPROTO_UDP, 13);
        let full = checksum::udp_field(pseudo, &udp);
        udp[6..8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&udp);
        let end = buf.len();
        complete_partial_checksum(&mut buf, 4, end, 6);
        assert_eq!(u16::from_be_bytes([buf[10], buf[11]]), full);
        // Out of range: left alone.
        let before = buf.clone();
        complete_partial_checksum(&mut buf, 4, end, 12);
        complete_partial_checksum(&mut buf, 4, end + 10, 6);
        assert_eq!(buf, before);
    }
}

#[cfg(test)]
mod echo_request_tests {
    use super::*;
    use roamer_hal::{TableEntry, TableOp};

    /// VLAN 10 on port 1 with the SVI 10.10.0.1/24 and 2001:db8:a::1/64.
    fn switch() -> Pipeline {
        let vlan = VlanId::new(10).expect("VLAN 10");
        let svi = L3Interface::Vlan(vlan);
        let mut p = Pipeline::new(Tables::default(), Settings::default());
        for e in [
            TableEntry::Vlan { vlan },
            TableEntry::VlanMember {
                vlan,
                port: PortId(1),
                tagged: false,
            },
            TableEntry::RouterMac {
                iface: svi,
                mac: Mac([2, 0, 0, 0, 0, 0xfe]),
                virtual_mac: false,
            },
        ] {
            p.tables.apply(&TableOp::add(e)).expect("entry");
        }
        for a in ["10.10.0.1", "2001:db8:a::1"] {
            let e = TableEntry::InterfaceAddress {
                iface: svi,
                addr: a.parse().expect("address"),
                prefix_len: if a.contains(':') { 64 } else { 24 },
                virtual_mac: None,
            };
            p.tables.apply(&TableOp::add(e)).expect("address");
        }
        p
    }

    fn run(p: &mut Pipeline, frame: &[u8]) -> Verdict {
        let mut buf = vec![0u8; 128 + frame.len()];
        buf[128..].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf, 128, frame.len());
        p.process(PortId(1), None, &mut f, 0).verdict
    }

    /// An ICMP echo request's type octet present in the frame but its header cut short by the
    /// IP length (found by the pipeline fuzz target for IPv6: the reply was written past the
    /// payload, an index out of bounds): not answered, and no panic.
    #[test]
    fn echo_requests_shorter_than_their_header_are_not_answered() {
        let mut p = switch();
        let eth = |ethertype: [u8; 2]| {
            let mut f = vec![2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 5];
            f.extend_from_slice(&ethertype);
            f
        };
        for payload_len in [0u8, 2, 4] {
            let mut f = eth([0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, payload_len, 58, 64]);
            f.extend_from_slice(&[
                0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
            ]);
            f.extend_from_slice(&[
                0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ]);
            f.extend_from_slice(&[128, 0, 0, 0, 0, 0]);
            assert_eq!(run(&mut p, &f), Verdict::Punt(PuntReason::ForUs));
        }
        for extra in [1usize, 3, 7] {
            let mut f = eth([0x08, 0x00]);
            let total = (20 + extra) as u8;
            f.extend_from_slice(&[0x45, 0, 0, total, 0, 0, 0, 0, 64, 1, 0, 0]);
            f.extend_from_slice(&[10, 10, 0, 5, 10, 10, 0, 1]);
            let c = checksum::ipv4_header(&f[ETH_LEN..]);
            f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0][..extra]);
            assert_eq!(run(&mut p, &f), Verdict::Punt(PuntReason::ForUs));
        }
    }
}

#[cfg(test)]
mod warm_tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn eth(ethertype: u16, tagged: bool) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 5];
        if tagged {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4(proto: u8, fragment: [u8; 2], dst: [u8; 4]) -> Vec<u8> {
        let mut ip = vec![
            0x45,
            0,
            0,
            0,
            0,
            0,
            fragment[0],
            fragment[1],
            64,
            proto,
            0,
            0,
        ];
        ip.extend_from_slice(&[10, 10, 0, 5]);
        ip.extend_from_slice(&dst);
        ip
    }

    fn ipv6(next: u8, dst: Ipv6Addr) -> Vec<u8> {
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        ip.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ip.extend_from_slice(&dst.octets());
        ip
    }

    /// UDP to the LISP data port and a LISP header with the nonce bit.
    fn lisp_udp() -> Vec<u8> {
        vec![
            0x30, 0x39, 0x10, 0xf5, 0, 0, 0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0,
        ]
    }

    #[test]
    fn the_destination_looked_up_is_the_routed_one() {
        let v4 = |a: [u8; 4]| Some(IpAddr::from(a));
        let mut plain = eth(0x0800, false);
        plain.extend(ipv4(17, [0x40, 0], [198, 51, 100, 7]));
        assert_eq!(routed_destination(&plain), v4([198, 51, 100, 7]));

        let mut tagged = eth(0x0800, true);
        tagged.extend(ipv4(6, [0, 0], [198, 51, 100, 8]));
        assert_eq!(routed_destination(&tagged), v4([198, 51, 100, 8]));

        // A LISP data packet: the inner destination, over either underlay.
        let inner = ipv4(17, [0, 0], [172, 16, 1, 5]);
        let mut lisp4 = eth(0x0800, false);
        lisp4.extend(ipv4(17, [0, 0], [192, 0, 2, 1]));
        lisp4.extend(lisp_udp());
        lisp4.extend(&inner);
        assert_eq!(routed_destination(&lisp4), v4([172, 16, 1, 5]));
        let eid6: Ipv6Addr = "2001:db8:1000::5".parse().expect("address");
        let mut lisp6 = eth(0x86dd, true);
        lisp6.extend(ipv6(17, "2001:db8:ff::1".parse().expect("address")));
        lisp6.extend(lisp_udp());
        lisp6.extend(ipv6(58, eid6));
        assert_eq!(routed_destination(&lisp6), Some(IpAddr::V6(eid6)));

        // A later fragment carries no UDP header: the outer destination.
        let mut later = eth(0x0800, false);
        later.extend(ipv4(17, [0x00, 0x10], [192, 0, 2, 1]));
        later.extend(lisp_udp());
        later.extend(&inner);
        assert_eq!(routed_destination(&later), v4([192, 0, 2, 1]));
        // LISP header cut short: the outer destination.
        assert_eq!(
            routed_destination(&lisp4[..14 + 20 + 12]),
            v4([192, 0, 2, 1])
        );

        for short in [&plain[..13], &plain[..14 + 19], &tagged[..17], &[][..]] {
            assert_eq!(routed_destination(short), None);
        }
        let mut arp = eth(0x0806, false);
        arp.extend([0u8; 28]);
        assert_eq!(routed_destination(&arp), None);
        let mut version5 = eth(0x0800, false);
        version5.extend(ipv4(17, [0, 0], [1, 2, 3, 4]));
        version5[14] = 0x55;
        assert_eq!(routed_destination(&version5), None);
    }
}
