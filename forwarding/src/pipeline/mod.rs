//! The forwarding pipeline: one frame in, one verdict out (plus, at most, one reply frame).
//!
//! Pure: it reads and learns into [`Tables`], never does I/O, takes the time as an argument and
//! allocates nothing per frame. Frames are processed in place in a caller-owned buffer with
//! headroom in front (802.1Q tags are stripped at ingress and re-added per egress port by the
//! backend; LISP encapsulation grows the frame into the headroom).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use roamer_hal::{
    HalEvent, Iid, L3Interface, Locator, Mac, NegativeAction, NextHop, PortId, PuntReason, VlanId,
};

#[doc(hidden)]
pub mod fuzz_harness;
mod hold;
mod icmp;
mod ipv6;
mod nonce;

pub use hold::{HOLD_FRAME_MAX, Resumed};

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

/// Why a frame was dropped; each has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    Runt,
    BadSourceMac,
    UnknownPort,
    VlanNotAllowed,
    VlanInactive,
    SamePort,
    BadIpHeader,
    /// An IPv4 header whose checksum does not verify (the header checksum is always complete,
    /// even in a frame whose layer-4 checksum or segmentation was left to an offload).
    BadIpChecksum,
    TtlExpired,
    NoRoute,
    Discard,
    MapCacheMiss,
    NegativeMapCache,
    EidNotHere,
    LocalEidNoRoute,
    BadLispPacket,
    NoLocator,
    NoHeadroom,
    NotForUs,
    Glean,
    TooBig,
    HelloFiltered,
    /// A packet that could not be held for its map-cache entry or neighbour: the per-
    /// destination bound pushed it out, or every slot was taken.
    HoldOverflow,
    /// A held packet whose map-cache entry or neighbour did not come in time.
    HoldTimeout,
}

impl DropReason {
    pub const ALL: [DropReason; 24] = [
        DropReason::Runt,
        DropReason::BadSourceMac,
        DropReason::UnknownPort,
        DropReason::VlanNotAllowed,
        DropReason::VlanInactive,
        DropReason::SamePort,
        DropReason::BadIpHeader,
        DropReason::BadIpChecksum,
        DropReason::TtlExpired,
        DropReason::NoRoute,
        DropReason::Discard,
        DropReason::MapCacheMiss,
        DropReason::NegativeMapCache,
        DropReason::EidNotHere,
        DropReason::LocalEidNoRoute,
        DropReason::BadLispPacket,
        DropReason::NoLocator,
        DropReason::NoHeadroom,
        DropReason::NotForUs,
        DropReason::Glean,
        DropReason::TooBig,
        DropReason::HelloFiltered,
        DropReason::HoldOverflow,
        DropReason::HoldTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::BadSourceMac => "bad-source-mac",
            DropReason::UnknownPort => "unknown-port",
            DropReason::VlanNotAllowed => "vlan-not-allowed",
            DropReason::VlanInactive => "vlan-inactive",
            DropReason::SamePort => "same-port",
            DropReason::BadIpHeader => "bad-ip-header",
            DropReason::BadIpChecksum => "bad-ip-checksum",
            DropReason::TtlExpired => "ttl-expired",
            DropReason::NoRoute => "no-route",
            DropReason::Discard => "discard-route",
            DropReason::MapCacheMiss => "map-cache-miss",
            DropReason::NegativeMapCache => "negative-map-cache",
            DropReason::EidNotHere => "eid-not-here",
            DropReason::LocalEidNoRoute => "local-eid-no-route",
            DropReason::BadLispPacket => "bad-lisp-packet",
            DropReason::NoLocator => "no-usable-locator",
            DropReason::NoHeadroom => "no-headroom",
            DropReason::NotForUs => "not-for-us",
            DropReason::Glean => "glean",
            DropReason::TooBig => "too-big-to-encapsulate",
            DropReason::HelloFiltered => "hsrp-hello-filtered",
            DropReason::HoldOverflow => "hold-overflow",
            DropReason::HoldTimeout => "hold-timeout",
        }
    }
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Out of one port; `tag` is the 802.1Q tag the backend inserts (None: untagged).
    Forward {
        port: PortId,
        tag: Option<VlanId>,
    },
    /// To every port of the VLAN except `except` (tagged where the port carries it tagged).
    Flood {
        vlan: VlanId,
        except: PortId,
    },
    /// To every port of the VLAN except `except`, and to the control plane too.
    FloodAndPunt {
        vlan: VlanId,
        except: PortId,
        reason: PuntReason,
    },
    /// To the control plane only.
    Punt(PuntReason),
    /// Handled by the pipeline itself (an ARP request to the router, answered by the reply).
    Consumed,
    /// A large segment (GSO) that this path (LISP encapsulation) cannot take whole: cut it into
    /// packets of at most `max_ip_len` octets (the tunnel's S = L - H) and process each. A TCP
    /// piece may carry several segment sizes' worth of payload (as many as fit); a UDP piece
    /// is one datagram of the segment size. Also a received UDP segmentation-offload frame of
    /// LISP packets to decapsulate (`max_ip_len` `u16::MAX`): cut into its datagrams. Nothing
    /// was changed in the frame.
    Segment {
        max_ip_len: u16,
    },
    /// Out of one port like [`Verdict::Forward`], but as TCP segments of `mss` payload octets:
    /// a decapsulated TCP packet larger than the egress port's MTU (the ITR packs several
    /// segments into one LISP packet where the underlay allows). The backend hands it to the
    /// port as one segmentation-offload frame where the port takes them, and cuts it in
    /// software otherwise. The frame is rewritten (routed) as for `Forward`.
    ForwardTcpSegments {
        port: PortId,
        tag: Option<VlanId>,
        mss: u16,
    },
    /// An IPv4 packet without DF too big to encapsulate (RFC 9300 §7.1): fragment it into IP
    /// packets of at most `max_ip_len` octets and process each. Nothing was changed.
    Fragment {
        max_ip_len: u16,
    },
    /// Held until its map-cache entry or next hop is resolved (see [`Pipeline::poll_held`]);
    /// the caller does nothing with it now.
    Held,
    Drop(DropReason),
}

/// The result of processing one frame: the verdict for it and, when `reply` is set, a frame the
/// pipeline built (an ARP answer, an ICMP error) in [`Pipeline::reply`] to send first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reply: Option<ReplyTo>,
}

/// Where the pipeline's own frame ([`Pipeline::reply`]) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    /// Out of one port, with the 802.1Q tag when set.
    Port { port: PortId, tag: Option<VlanId> },
    /// To every port of a VLAN (an ARP request or neighbour solicitation when gleaning).
    Vlan(VlanId),
}

/// A frame in a caller-owned buffer: `buf[start..start + len]`, headroom before `start`.
#[derive(Debug)]
pub struct Frame<'a> {
    pub buf: &'a mut [u8],
    pub start: usize,
    pub len: usize,
    /// A large segment whose cutting the port offloads to the kernel (vnet-hdr GSO).
    pub large: bool,
    /// A layer-4 checksum the sender left to the offload (vnet-hdr `NEEDS_CSUM`): the position
    /// in `buf` of the first summed octet and the field's offset from it. Encapsulation
    /// completes it and clears this: the ETR at the other end may not be roamer, and over IPv6
    /// the outer UDP checksum covers the field.
    pub partial_csum: Option<(usize, usize)>,
}

impl Frame<'_> {
    pub fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    /// Completes a layer-4 checksum left to the offload ([`Frame::partial_csum`]) in place and
    /// clears it; whether there was one.
    fn complete_partial_checksum(&mut self) -> bool {
        let Some((first, offset)) = self.partial_csum.take() else {
            return false;
        };
        complete_partial_checksum(self.buf, first, self.start + self.len, offset);
        true
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let (s, l) = (self.start, self.len);
        self.buf.get_mut(s..s + l).unwrap_or(&mut [])
    }
}

/// Per-verdict counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub rx: u64,
    pub bridged: u64,
    pub flooded: u64,
    pub routed: u64,
    pub encapsulated: u64,
    pub decapsulated: u64,
    pub punted: u64,
    pub replies: u64,
    /// Packets the switch itself sent through [`Pipeline::originate`] (whatever became of them).
    pub originated: u64,
    /// IPv4 packets without DF fragmented to fit the LISP tunnel (counted by the backend, which
    /// cuts them).
    pub fragmented: u64,
    /// Large segments cut to fit the LISP tunnel before encapsulation ([`Verdict::Segment`];
    /// counted by the backend, which cuts them).
    pub segmented: u64,
    /// Decapsulated TCP packets larger than their egress port's MTU sent on as segments that
    /// fit ([`Verdict::ForwardTcpSegments`]).
    pub tcp_segmented: u64,
    /// Of those, the ones the backend cut in software (an egress port without segmentation
    /// offload) rather than handing them to the port whole.
    pub tcp_segmented_in_software: u64,
    /// Decapsulated TCP packets the backend appended to the segmentation-offload frame of the
    /// packet before them (the next piece of the same stream; the last piece of a segment
    /// too, when it would fit the port on its own).
    pub tcp_coalesced: u64,
    /// Encapsulated packets the backend appended to the UDP segmentation-offload frame of the
    /// one before (the same tunnel, every packet but the last of one size): the kernel, or the
    /// NIC, cuts the frame into the LISP packets again.
    pub udp_coalesced: u64,
    /// UDP segmentation-offload frames received for decapsulation (a local ITR's train of LISP
    /// packets) that the backend cut into their datagrams ([`Verdict::Segment`]).
    pub udp_segments_received: u64,
    pub events_dropped: u64,
    /// Link-local and multicast traffic to a routed interface that is not for one of our
    /// addresses (IPv6 router solicitations, MLD; IGMP, IPv4 multicast and broadcast): taken,
    /// never routed, never counted as an expired TTL.
    pub link_local_control: u64,
    /// Packets held for a map-cache entry or a neighbour ([`Verdict::Held`]).
    pub held: u64,
    /// Held packets sent on when what they waited for came.
    pub released: u64,
    /// Decapsulated packets for a host that moved away, encapsulated again towards its new
    /// locators (the sender's ITR has not followed the SMR yet).
    pub relayed_away: u64,
    pub drops: HashMap<&'static str, u64>,
}

/// Explains what the pipeline did (for `trace`); the fast path uses [`NoTrace`].
pub trait Tracer {
    /// Whether to learn (MAC addresses, neighbours) while tracing.
    const LEARN: bool;
    fn step(&mut self, text: std::fmt::Arguments<'_>);
}

#[derive(Debug, Default)]
pub struct NoTrace;

impl Tracer for NoTrace {
    const LEARN: bool = true;
    #[inline(always)]
    fn step(&mut self, _: std::fmt::Arguments<'_>) {}
}

/// Collects the steps as text, learning nothing.
#[derive(Debug, Default)]
pub struct TextTrace(pub Vec<String>);

impl Tracer for TextTrace {
    const LEARN: bool = false;
    fn step(&mut self, text: std::fmt::Arguments<'_>) {
        self.0.push(text.to_string());
    }
}

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
    reported: HashMap<(u8, IpAddr), u64>,
    reply: [u8; 256],
    reply_len: usize,
    flow_seed: u32,
    /// The LISP data header's nonce generator (RFC 9300 §5.3: random, not the flow hash).
    nonces: nonce::Nonces,
    /// Where the routed frame being processed came in (for ICMP errors from deep inside).
    ingress: Option<(L3Interface, PortId, Option<VlanId>)>,
    /// The IP MTU of each port, as the backend reads it from the interface.
    port_mtu: HashMap<PortId, u16>,
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
            reported: HashMap::with_capacity(1024),
            reply: [0; 256],
            reply_len: 0,
            flow_seed: 0x9e37_79b9,
            nonces: nonce::Nonces::from_entropy(),
            ingress: None,
            port_mtu: HashMap::new(),
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
        let mut f = Frame {
            buf: &mut buf,
            start: 128,
            len: frame.len(),
            large: false,
            partial_csum: None,
        };
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

    fn originate_ipv4(&mut self, frame: &mut Frame<'_>, now_ms: u64) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        let f = frame.bytes();
        if f.len() < ETH_LEN {
            return drop(DropReason::Runt);
        }
        if be16(f, 12) != ETHERTYPE_IPV4 {
            return drop(DropReason::BadIpHeader);
        }
        let ip = &f[ETH_LEN..];
        if ip.len() < 20 || ip[0] >> 4 != 4 || usize::from(ip[0] & 0x0f) * 4 < 20 {
            return drop(DropReason::BadIpHeader);
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(be16(ip, 2));
        if total < ihl || total > ip.len() {
            return drop(DropReason::BadIpHeader);
        }
        // A fragment's UDP checksum covers the whole datagram, which this frame is not.
        if be16(ip, 6) & 0x3fff != 0 {
            return drop(DropReason::BadIpHeader);
        }
        let proto = ip[9];
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let mut src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        if dst.is_multicast() || dst.is_broadcast() || dst.is_unspecified() {
            return drop(DropReason::NoRoute);
        }
        let dst_ip = IpAddr::V4(dst);
        if self.tables.addresses.contains_key(&dst_ip) {
            return drop(DropReason::NoRoute);
        }
        match self.tables.route_match(dst_ip) {
            None | Some((_, NextHop::Lisp)) => return drop(DropReason::NoRoute),
            Some((_, NextHop::Discard)) => return drop(DropReason::Discard),
            Some((_, NextHop::Connected(_) | NextHop::Gateway { .. })) => {}
        }
        if src.is_unspecified() {
            match self.source_rloc(dst_ip) {
                Some(IpAddr::V4(a)) => src = a,
                _ => return drop(DropReason::NoRoute),
            }
        }
        let ip_start = frame.start + ETH_LEN;
        let ip = &mut frame.buf[ip_start..ip_start + total];
        ip[12..16].copy_from_slice(&src.octets());
        ip[10..12].fill(0);
        let c = checksum::ipv4_header(&ip[..ihl]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        if proto == checksum::IPPROTO_UDP {
            let udp = &mut ip[ihl..];
            let ulen = be16(udp, 4);
            let end = usize::from(ulen);
            if udp.len() < 8 || end < 8 || end > udp.len() {
                return drop(DropReason::BadIpHeader);
            }
            udp[6..8].fill(0);
            let pseudo = checksum::pseudo_ipv4(src, dst, proto, ulen);
            let c = checksum::udp_field(pseudo, &udp[..end]);
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        self.route_ip(frame, dst_ip, now_ms, false, &mut NoTrace)
    }

    fn ingress<T: Tracer>(
        &mut self,
        port: PortId,
        rx_tag: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
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
                    Some(tagged) => Outcome {
                        verdict: Verdict::Forward {
                            port: out,
                            tag: tagged.then_some(vlan),
                        },
                        reply: None,
                    },
                    None => drop(DropReason::VlanNotAllowed),
                }
            }
            None => {
                t.step(format_args!("MAC {dst} unknown in VLAN {vlan}: flood"));
                Outcome {
                    verdict: Verdict::Flood { vlan, except: port },
                    reply: None,
                }
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
                Outcome {
                    verdict: Verdict::Drop(DropReason::HelloFiltered),
                    reply: None,
                }
            }
            ETHERTYPE_IPV4 if is_hsrp(frame.bytes()) => {
                t.step(format_args!("HSRP hello: flood and punt"));
                Outcome {
                    verdict: Verdict::FloodAndPunt {
                        vlan,
                        except: port,
                        reason: PuntReason::Hsrp,
                    },
                    reply: None,
                }
            }
            ETHERTYPE_IPV4 if is_udp_to(frame.bytes(), LISP_CONTROL_PORT) => {
                // Site multicast Map-Notify (map-notify-group) arrives as multicast in the VLAN.
                t.step(format_args!("multicast LISP control: flood and punt"));
                Outcome {
                    verdict: Verdict::FloodAndPunt {
                        vlan,
                        except: port,
                        reason: PuntReason::LispControl,
                    },
                    reply: None,
                }
            }
            ETHERTYPE_IPV6 => self.ipv6_multicast(svi, port, vlan, frame, now_ms, t),
            _ => Outcome {
                verdict: flood,
                reply: None,
            },
        }
    }

    /// ARP: learn the sender, answer for our addresses and, with proxy-ARP, for reachable ones.
    fn arp<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        now_ms: u64,
        t: &mut T,
    ) -> Option<ReplyTo> {
        let a = f.get(ETH_LEN..ETH_LEN + 28)?;
        if be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
            return None;
        }
        let op = be16(a, 6);
        let sender_mac = mac_at(a, 8);
        let sender_ip = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
        let target_ip = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
        // A host moved here across subnets asking for its old gateway is a neighbour too (the
        // host route the control plane installs for it comes only after this ARP).
        let on_subnet = self.on_subnet(iface, IpAddr::V4(sender_ip))
            || self.moved_host_gateway(iface, IpAddr::V4(sender_ip), IpAddr::V4(target_ip));
        if T::LEARN && on_subnet && !sender_ip.is_unspecified() {
            self.tables
                .learn_neighbor(iface, IpAddr::V4(sender_ip), sender_mac, now_ms);
        }
        // FHRP isolation: across the LAN extension (the hello-filter port) the other data
        // centre has its own active gateway; answering its hosts for the virtual IP, or by
        // proxy, would pull them (and their dynamic-EID detection) over here.
        let isolated = self.tables.hello_filter.contains(&port);
        // A host announcing itself detects it: the gratuitous ARP a host (or its hypervisor,
        // after a live migration) sends when it arrives, or an ARP reply. Not one flooded over
        // the LAN extension (the hello-filter port): that host is at the other data centre.
        // A request detects it only when we answer it (below): on an extended LAN every xTR
        // sees the flooded requests for the other's addresses.
        let announces = sender_ip == target_ip || op == 2;
        if announces && !isolated && !sender_ip.is_unspecified() {
            self.detect_dynamic_eid(iface, IpAddr::V4(sender_ip), now_ms, t);
        }
        if op != 1 || sender_ip.is_unspecified() || sender_ip == target_ip {
            return None;
        }
        let target = IpAddr::V4(target_ip);
        if isolated
            && (self
                .tables
                .addresses
                .get(&target)
                .is_some_and(|own| own.virtual_mac.is_some())
                || self.tables.proxy_arp.contains(&iface))
            && !self
                .tables
                .addresses
                .get(&target)
                .is_some_and(|own| own.iface == iface && own.virtual_mac.is_none())
        {
            t.step(format_args!(
                "ARP for {target_ip} on the LAN extension {port}: the other site's gateway answers"
            ));
            return None;
        }
        let answer_mac = match self.tables.addresses.get(&target) {
            Some(own) if own.iface == iface => {
                let mac = own
                    .virtual_mac
                    .or_else(|| self.tables.iface_mac.get(&iface).copied())?;
                t.step(format_args!(
                    "ARP for our address {target_ip}: answer with {mac}"
                ));
                mac
            }
            _ if self.proxy_arp_applies(iface, target)
                || self.moved_host_gateway(iface, IpAddr::V4(sender_ip), target) =>
            {
                let mac = self.tables.answer_mac(iface)?;
                t.step(format_args!(
                    "proxy-ARP for {target_ip} on {iface}: answer with {mac}"
                ));
                mac
            }
            _ => return None,
        };
        // A moved host asks its gateway — us — before it sends anything routed.
        self.detect_dynamic_eid(iface, IpAddr::V4(sender_ip), now_ms, t);
        let r = &mut self.reply;
        r[..6].copy_from_slice(&sender_mac.0);
        r[6..12].copy_from_slice(&answer_mac.0);
        r[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        r[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r[22..28].copy_from_slice(&answer_mac.0);
        r[28..32].copy_from_slice(&target_ip.octets());
        r[32..38].copy_from_slice(&sender_mac.0);
        r[38..42].copy_from_slice(&sender_ip.octets());
        r[42..60].fill(0);
        self.reply_len = 60;
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Some(ReplyTo::Port { port, tag })
    }

    /// RFC 1027 with the LISP mobility twist (protocols.md §8.1, §8.3).
    fn proxy_arp_applies(&self, iface: L3Interface, target: IpAddr) -> bool {
        if !self.tables.proxy_arp.contains(&iface) {
            return false;
        }
        let IpAddr::V4(t4) = target else { return false };
        if t4.is_broadcast() || t4.is_multicast() || t4.is_unspecified() {
            return false;
        }
        // Within the interface's own subnet the owner answers — unless a host route says the
        // address now lives elsewhere (a moved EID).
        let Some((prefix, nh)) = self.tables.route_match(target) else {
            return false;
        };
        if prefix.is_empty() {
            return false;
        }
        match nh {
            NextHop::Connected(i) => i != iface,
            NextHop::Gateway { iface: Some(i), .. } => i != iface,
            NextHop::Gateway { via, iface: None } => {
                !matches!(self.tables.route(via), Some(NextHop::Connected(i)) if i == iface)
            }
            NextHop::Lisp => true,
            NextHop::Discard => false,
        }
    }

    /// Across subnets (seed 001): a host that moved here keeps its old gateway address; with
    /// proxy-ARP on, we answer for it (with the shared HSRP virtual MAC where there is one),
    /// so the host's gateway keeps working without any change on the host.
    fn moved_host_gateway(&self, iface: L3Interface, sender: IpAddr, target: IpAddr) -> bool {
        if !self.tables.proxy_arp.contains(&iface) || self.in_iface_subnet(iface, sender) {
            return false;
        }
        let in_range = |ip: IpAddr| {
            self.tables
                .dynamic_ranges
                .get(&iface)
                .is_some_and(|rs| rs.iter().any(|r| !r.extended_subnet && r.eid.contains(ip)))
        };
        in_range(sender)
            && !self.in_iface_subnet(iface, target)
            && !self.tables.addresses.contains_key(&target)
    }

    /// Inside one of the interface's own subnets (its addresses' prefixes; host routes to
    /// moved hosts do not count).
    fn in_iface_subnet(&self, iface: L3Interface, ip: IpAddr) -> bool {
        self.tables.addresses.iter().any(|(a, own)| {
            own.iface == iface
                && own.virtual_mac.is_none()
                && roamer_hal::Prefix::new(*a, own.prefix_len).is_ok_and(|p| p.contains(ip))
        })
    }

    fn on_subnet(&self, iface: L3Interface, ip: IpAddr) -> bool {
        matches!(self.tables.route(ip), Some(NextHop::Connected(i)) if i == iface)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer3<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        dst_mac: Mac,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        self.ingress = Some((iface, port, vlan));
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        match be16(frame.bytes(), 12) {
            ETHERTYPE_ARP => {
                let reply = self.arp(iface, port, vlan, frame.bytes(), now_ms, t);
                Outcome {
                    verdict: Verdict::Consumed,
                    reply,
                }
            }
            ETHERTYPE_IPV4 => self.ipv4(iface, port, vlan, frame, now_ms, t),
            ETHERTYPE_IPV6 => self.ipv6(iface, port, vlan, frame, now_ms, t),
            other => {
                t.step(format_args!(
                    "ethertype {other:#06x} to router MAC {dst_mac}: dropped"
                ));
                drop(DropReason::NotForUs)
            }
        }
    }

    fn ipv4<T: Tracer>(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        let f = frame.bytes();
        let Some(ip) = f.get(ETH_LEN..) else {
            return drop(DropReason::Runt);
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || usize::from(ip[0] & 0x0f) * 4 < 20 {
            return drop(DropReason::BadIpHeader);
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(be16(ip, 2));
        if total < ihl || total > ip.len() {
            return drop(DropReason::BadIpHeader);
        }
        // Every IPv4 packet routed, encapsulated, decapsulated or answered here has its header
        // checked (a 20-octet sum; offloads never leave the header checksum to the device).
        if !ipv4_header_ok(&ip[..ihl]) {
            t.step(format_args!(
                "IPv4 header checksum does not verify: dropped"
            ));
            return drop(DropReason::BadIpChecksum);
        }
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let proto = ip[9];
        let dport = if matches!(proto, 6 | 17) && ip.len() >= ihl + 4 {
            be16(ip, ihl + 2)
        } else {
            0
        };
        t.step(format_args!("IPv4 {src} -> {dst} proto {proto} on {iface}"));
        self.detect_dynamic_eid(iface, src, now_ms, t);

        if self.tables.addresses.contains_key(&dst) {
            return match (proto, dport) {
                (17, LISP_DATA_PORT) => self.decapsulate(iface, frame, now_ms, t),
                (17 | 6, LISP_CONTROL_PORT) => Outcome {
                    verdict: Verdict::Punt(PuntReason::LispControl),
                    reply: None,
                },
                (17, HSRP_PORT | HSRP_V6_PORT) => Outcome {
                    verdict: Verdict::Punt(PuntReason::Hsrp),
                    reply: None,
                },
                // An echo request's 8-octet header lies within the packet (the type octet alone
                // may be padding behind a shorter one); anything less is not answered.
                (1, _) if total >= ihl + 8 && ip.get(ihl) == Some(&icmp::ECHO_REQUEST_V4) => {
                    t.step(format_args!("ICMP echo to our address {dst}: reply"));
                    self.echo_reply_v4(iface, port, vlan, frame)
                }
                _ => {
                    t.step(format_args!("{dst} is ours: control plane"));
                    Outcome {
                        verdict: Verdict::Punt(PuntReason::ForUs),
                        reply: None,
                    }
                }
            };
        }
        if let IpAddr::V4(d4) = dst
            && (d4.is_multicast() || d4.is_broadcast())
            && !is_hsrp(frame.bytes())
        {
            // IGMP, mDNS, DHCP and the like on a routed port: never routed (there is no
            // multicast routing), never an expired TTL; counted on their own.
            t.step(format_args!(
                "multicast or broadcast {dst}: link control traffic, not routed"
            ));
            self.counters.link_local_control += 1;
            return Outcome {
                verdict: Verdict::Consumed,
                reply: None,
            };
        }
        if ip[8] <= 1 {
            t.step(format_args!(
                "TTL {} expires here: ICMP time exceeded",
                ip[8]
            ));
            let reply = self.icmp_time_exceeded(iface, port, vlan, frame.bytes());
            return Outcome {
                verdict: Verdict::Drop(DropReason::TtlExpired),
                reply,
            };
        }
        self.route_ip(frame, dst, now_ms, true, t)
    }

    /// Routes the IPv4 packet after the Ethernet header of `frame` towards `dst`.
    fn route_ip<T: Tracer>(
        &mut self,
        frame: &mut Frame<'_>,
        dst: IpAddr,
        now_ms: u64,
        decrement: bool,
        t: &mut T,
    ) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        let Some((prefix, nh)) = self.tables.route_match(dst) else {
            t.step(format_args!("no route to {dst}"));
            return drop(DropReason::NoRoute);
        };
        t.step(format_args!("route {prefix} -> {nh:?}"));
        let (egress, neighbor) = match nh {
            NextHop::Connected(i) => (i, dst),
            NextHop::Gateway {
                via,
                iface: Some(i),
            } => (i, via),
            NextHop::Gateway { via, iface: None } => match self.tables.route(via) {
                Some(NextHop::Connected(i)) => (i, via),
                _ => return drop(DropReason::NoRoute),
            },
            NextHop::Discard => return drop(DropReason::Discard),
            NextHop::Lisp => return self.encapsulate(frame, dst, now_ms, decrement, t),
        };
        if decrement {
            decrement_ttl(frame.bytes_mut());
        }
        self.towards_neighbor(egress, neighbor, frame, now_ms, t)
    }

    /// Rewrites the Ethernet header towards a neighbour on `egress` and picks the port.
    fn towards_neighbor<T: Tracer>(
        &mut self,
        egress: L3Interface,
        neighbor: IpAddr,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let Some(n) = self.tables.neighbors.get(&(egress, neighbor)).copied() else {
            t.step(format_args!(
                "{neighbor} on {egress} not resolved: glean, held for the answer"
            ));
            let reply = self.glean(egress, neighbor, now_ms);
            let waiting = hold::Waiting::Neighbor {
                iface: egress,
                ip: neighbor,
            };
            let out = self.hold(waiting, frame, now_ms, DropReason::Glean);
            return Outcome { reply, ..out };
        };
        let Some(src_mac) = self.tables.iface_mac.get(&egress).copied() else {
            return Outcome {
                verdict: Verdict::Drop(DropReason::NoRoute),
                reply: None,
            };
        };
        let b = frame.bytes_mut();
        b[..6].copy_from_slice(&n.mac.0);
        b[6..12].copy_from_slice(&src_mac.0);
        self.counters.routed += 1;
        t.step(format_args!(
            "rewrite to {} from {src_mac} via {egress}",
            n.mac
        ));
        match egress {
            L3Interface::Port(p) => Outcome {
                verdict: Verdict::Forward { port: p, tag: None },
                reply: None,
            },
            L3Interface::Vlan(v) => match self.tables.fdb.get(&(v, n.mac)) {
                Some(e) => {
                    let tag = self
                        .tables
                        .egress_tagged(e.port, v)
                        .unwrap_or(false)
                        .then_some(v);
                    Outcome {
                        verdict: Verdict::Forward { port: e.port, tag },
                        reply: None,
                    }
                }
                // Routed frames never go back out of the router's own (non-existent) port.
                None => Outcome {
                    verdict: Verdict::Flood {
                        vlan: v,
                        except: PortId(u32::MAX),
                    },
                    reply: None,
                },
            },
        }
    }

    /// ITR: encapsulate towards the map-cache's locator, then route the outer packet.
    fn encapsulate<T: Tracer>(
        &mut self,
        frame: &mut Frame<'_>,
        dst: IpAddr,
        now_ms: u64,
        decrement: bool,
        t: &mut T,
    ) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        let Some(entry) = self.tables.map_cache(dst) else {
            if self.rate_ok(0, dst, now_ms, self.settings.miss_interval_ms)
                && let Some(source) = inner_source(frame.bytes())
            {
                self.event(HalEvent::MapCacheMiss {
                    iid: Iid::default(),
                    dest: dst,
                    source,
                });
            }
            t.step(format_args!(
                "map-cache miss for {dst}: Map-Request, held for the Map-Reply"
            ));
            let waiting = hold::Waiting::MapCache { dst, decrement };
            return self.hold(waiting, frame, now_ms, DropReason::MapCacheMiss);
        };
        t.step(format_args!(
            "map-cache {} (IID {}): {} locator(s)",
            entry.eid,
            entry.iid,
            entry.locators.len()
        ));
        if entry.locators.is_empty() {
            t.step(format_args!(
                "negative map-cache entry {}: {:?}",
                entry.eid, entry.negative
            ));
            let (negative, iid) = (entry.negative, entry.iid);
            return match negative {
                NegativeAction::NativelyForward => drop(DropReason::NoRoute),
                NegativeAction::SendMapRequest => {
                    if self.rate_ok(0, dst, now_ms, self.settings.miss_interval_ms)
                        && let Some(source) = inner_source(frame.bytes())
                    {
                        self.event(HalEvent::MapCacheMiss {
                            iid,
                            dest: dst,
                            source,
                        });
                    }
                    drop(DropReason::NegativeMapCache)
                }
                NegativeAction::Drop | NegativeAction::NoAction => {
                    drop(DropReason::NegativeMapCache)
                }
            };
        }
        let iid = entry.iid;
        let inner = frame.bytes().get(ETH_LEN..).unwrap_or(&[]);
        let hash = crate::wire::lisp_data::flow_hash(inner, self.flow_seed);
        let Some(loc) = choose_locator(&entry.locators, hash) else {
            return drop(DropReason::NoLocator);
        };
        let towards = self.next_hop_towards(loc.rloc);
        let Some(outer_src) = towards.and_then(|(egress, _)| self.own_address(egress, loc.rloc))
        else {
            t.step(format_args!("no own address towards RLOC {}", loc.rloc));
            return drop(DropReason::NoRoute);
        };
        // Stateless MTU handling (RFC 9300 §7.1): S = L - H; larger packets are refused with
        // ICMP carrying S so the sender's path-MTU discovery shrinks them. L is the MTU of the
        // port the encapsulated packet leaves by, where known.
        let overhead = if outer_src.is_ipv4() {
            crate::wire::lisp_data::OVERHEAD_IPV4
        } else {
            crate::wire::lisp_data::OVERHEAD_IPV6
        };
        let l = towards
            .and_then(|(egress, neighbor)| self.egress_port(egress, neighbor))
            .and_then(|p| self.port_mtu.get(&p).copied())
            .unwrap_or(self.settings.underlay_mtu);
        let inner_len = frame.len - ETH_LEN;
        let s_max = usize::from(l).saturating_sub(overhead);
        if frame.large {
            t.step(format_args!(
                "large segment: cut into packets of at most {s_max} octets (L {l}), then encapsulate"
            ));
            return Outcome {
                verdict: Verdict::Segment {
                    max_ip_len: u16::try_from(s_max).unwrap_or(u16::MAX),
                },
                reply: None,
            };
        }
        let df_clear = frame.bytes().get(ETH_LEN).is_some_and(|b| b >> 4 == 4)
            && frame
                .bytes()
                .get(ETH_LEN + 6)
                .is_some_and(|b| b & 0x40 == 0);
        if inner_len > s_max && df_clear {
            t.step(format_args!(
                "{inner_len}-octet IPv4 packet without DF exceeds {s_max}: fragment, then encapsulate"
            ));
            return Outcome {
                verdict: Verdict::Fragment {
                    max_ip_len: u16::try_from(s_max).unwrap_or(u16::MAX),
                },
                reply: None,
            };
        }
        if inner_len > s_max {
            t.step(format_args!(
                "{inner_len}-octet packet exceeds {s_max} after encapsulation: ICMP too big"
            ));
            let sender = inner_source(frame.bytes());
            let reply = match sender {
                Some(src) if self.rate_ok(6, src, now_ms, TOO_BIG_INTERVAL_MS) => {
                    self.too_big(frame.bytes(), s_max)
                }
                _ => None,
            };
            return Outcome {
                verdict: Verdict::Drop(DropReason::TooBig),
                reply,
            };
        }
        if decrement {
            decrement_ttl(frame.bytes_mut());
        }
        if frame.complete_partial_checksum() {
            t.step(format_args!(
                "partial layer-4 checksum completed before encapsulation"
            ));
        }
        let inner_start = frame.start + ETH_LEN;
        let header = LispDataRepr {
            nonce: NonceField::Nonce {
                nonce: self.nonces.next_24(),
                echo_request: false,
            },
            instance_id: (iid.get() != 0).then_some(iid),
            ..LispDataRepr::default()
        };
        let src_port =
            flow_source_port(frame.bytes().get(ETH_LEN..).unwrap_or(&[]), self.flow_seed);
        let params = EncapParams::new(outer_src, loc.rloc, src_port, header);
        if inner_start < params.overhead() + ETH_LEN {
            return drop(DropReason::NoHeadroom);
        }
        let outer = match encapsulate_in_place(frame.buf, inner_start, inner_len, &params) {
            Ok(o) => o,
            Err(_) => return drop(DropReason::NoHeadroom),
        };
        // A new Ethernet header in front of the outer IP header; the routing below fills it.
        frame.start = outer - ETH_LEN;
        frame.len = inner_len + params.overhead() + ETH_LEN;
        frame.buf[frame.start + 12..frame.start + 14]
            .copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        if loc.rloc.is_ipv6() {
            frame.buf[frame.start + 12..frame.start + 14]
                .copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        }
        self.counters.encapsulated += 1;
        t.step(format_args!(
            "LISP encapsulate to RLOC {} (priority {}, weight {}) from {outer_src}",
            loc.rloc, loc.priority, loc.weight
        ));
        self.route_ip(frame, loc.rloc, now_ms, false, t)
    }

    /// Our address on the interface that reaches `rloc` (the outer source of encapsulation).
    fn source_rloc(&self, rloc: IpAddr) -> Option<IpAddr> {
        let (egress, _) = self.next_hop_towards(rloc)?;
        self.own_address(egress, rloc)
    }

    /// The interface and next hop a packet routed to `dst` leaves by (a LISP or discard route
    /// has none).
    fn next_hop_towards(&self, dst: IpAddr) -> Option<(L3Interface, IpAddr)> {
        match self.tables.route(dst)? {
            NextHop::Connected(i) => Some((i, dst)),
            NextHop::Gateway {
                via,
                iface: Some(i),
            } => Some((i, via)),
            NextHop::Gateway { via, iface: None } => match self.tables.route(via)? {
                NextHop::Connected(i) => Some((i, via)),
                _ => None,
            },
            NextHop::Discard | NextHop::Lisp => None,
        }
    }

    /// Our lowest (non-virtual) address on `iface` of `peer`'s family.
    fn own_address(&self, iface: L3Interface, peer: IpAddr) -> Option<IpAddr> {
        self.tables
            .addresses
            .iter()
            .filter(|(a, o)| {
                o.iface == iface && o.virtual_mac.is_none() && a.is_ipv4() == peer.is_ipv4()
            })
            .map(|(a, _)| *a)
            .min()
    }

    /// The port a frame to `neighbor` on `iface` leaves by, as far as the tables know without
    /// sending anything: the routed port itself, or where the resolved neighbour's MAC was
    /// learned in the VLAN.
    fn egress_port(&self, iface: L3Interface, neighbor: IpAddr) -> Option<PortId> {
        match iface {
            L3Interface::Port(p) => Some(p),
            L3Interface::Vlan(v) => {
                let n = self.tables.neighbors.get(&(iface, neighbor))?;
                self.tables.fdb.get(&(v, n.mac)).map(|e| e.port)
            }
        }
    }

    /// ETR: decapsulate, then deliver a local EID or raise the SMR / no-route events.
    fn decapsulate<T: Tracer>(
        &mut self,
        _iface: L3Interface,
        frame: &mut Frame<'_>,
        now_ms: u64,
        t: &mut T,
    ) -> Outcome {
        let drop = |r| Outcome {
            verdict: Verdict::Drop(r),
            reply: None,
        };
        if frame.large {
            // A train of LISP packets (UDP segmentation offload) from an ITR on this host:
            // each of its datagrams is a LISP packet of its own.
            t.step(format_args!(
                "UDP segmentation-offload frame: cut into its datagrams, then decapsulate each"
            ));
            self.counters.udp_segments_received += 1;
            return Outcome {
                verdict: Verdict::Segment {
                    max_ip_len: u16::MAX,
                },
                reply: None,
            };
        }
        let ip_start = frame.start + ETH_LEN;
        let ip_end = frame.start + frame.len;
        let d = match decapsulate_in_place(&mut frame.buf[ip_start..ip_end]) {
            Ok(d) => d,
            Err(e) => {
                t.step(format_args!("bad LISP packet: {e}"));
                return drop(DropReason::BadLispPacket);
            }
        };
        let inner_abs = ip_start + d.inner_start;
        let inner = &frame.buf[inner_abs..inner_abs + d.inner_len];
        let (inner_src, inner_dst, ethertype) = match d.inner_kind {
            InnerKind::Ipv4 => {
                // The inner header is checked as a received one is: it is routed on from here.
                let ihl = usize::from(inner[0] & 0x0f) * 4;
                if ihl < 20 || ihl > inner.len() {
                    return drop(DropReason::BadIpHeader);
                }
                if !ipv4_header_ok(&inner[..ihl]) {
                    t.step(format_args!(
                        "inner IPv4 header checksum does not verify: dropped"
                    ));
                    return drop(DropReason::BadIpChecksum);
                }
                (
                    IpAddr::V4(Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15])),
                    IpAddr::V4(Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19])),
                    ETHERTYPE_IPV4,
                )
            }
            InnerKind::Ipv6 => {
                let addr = |at: usize| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&inner[at..at + 16]);
                    IpAddr::from(a)
                };
                (addr(8), addr(24), ETHERTYPE_IPV6)
            }
            // LISP-GPE Ethernet payloads are not bridged by this pipeline.
            InnerKind::Ethernet => return drop(DropReason::BadLispPacket),
        };
        self.counters.decapsulated += 1;
        let iid = d.header.instance_id.unwrap_or_default();
        t.step(format_args!(
            "LISP decapsulate from RLOC {}: inner {inner_src} -> {inner_dst} (IID {iid})",
            d.outer.src
        ));
        // Keep the Ethernet header just in front of the inner packet.
        frame.start = inner_abs - ETH_LEN;
        frame.len = d.inner_len + ETH_LEN;
        frame.buf[frame.start + 12..frame.start + 14].copy_from_slice(&ethertype.to_be_bytes());
        // A partial checksum left to the offload was the outer UDP one: gone with its header.
        if frame
            .partial_csum
            .is_some_and(|(first, _)| first < inner_abs)
        {
            frame.partial_csum = None;
        }
        if self.tables.addresses.contains_key(&inner_dst) {
            return self.for_us_decapsulated(frame, inner_src, now_ms, t);
        }

        let here = matches!(
            self.tables.route(inner_dst),
            Some(NextHop::Connected(_) | NextHop::Gateway { .. })
        );
        let local_prefix = self.tables.local_eid(inner_dst).is_some();
        if self.tables.is_away(inner_dst) || (!here && !local_prefix) {
            t.step(format_args!(
                "{inner_dst} is not here: SMR trigger towards {}",
                d.outer.src
            ));
            if self.rate_ok(1, d.outer.src, now_ms, self.settings.miss_interval_ms)
                || self.rate_ok(2, inner_dst, now_ms, self.settings.miss_interval_ms)
            {
                self.event(HalEvent::EidNotHere {
                    iid,
                    eid: inner_dst,
                    source_rloc: d.outer.src,
                    inner_source: inner_src,
                });
            }
            // A host that moved away, whose new locators the map-server told us: until the
            // sender's ITR follows the SMR, its packets go on there (the inner TTL is
            // decremented, so two xTRs that both think the host away cannot loop it forever).
            if self.tables.is_away(inner_dst) && self.relays_to_new_location(inner_dst) {
                t.step(format_args!(
                    "{inner_dst} moved away: sent on to its new locators"
                ));
                self.counters.relayed_away += 1;
                return self.encapsulate(frame, inner_dst, now_ms, true, t);
            }
            return drop(DropReason::EidNotHere);
        }
        if !here {
            t.step(format_args!(
                "{inner_dst} is a local EID without a route: no-route trigger"
            ));
            if self.rate_ok(3, inner_dst, now_ms, self.settings.miss_interval_ms) {
                self.event(HalEvent::NoRoute {
                    iid,
                    eid: inner_dst,
                    source_rloc: d.outer.src,
                    inner_source: inner_src,
                });
            }
            return drop(DropReason::LocalEidNoRoute);
        }
        // Extended subnet: a host whose MAC is now behind the LAN extension (the hello-filter
        // port) lives at the other data centre. The packet still reaches it over the extension;
        // the sender is solicited to ask the mapping system again, as the old data centre does
        // on NX-OS once the host has moved.
        if self.across_lan_extension(inner_dst)
            && self.rate_ok(8, inner_dst, now_ms, self.settings.miss_interval_ms)
        {
            t.step(format_args!(
                "{inner_dst} is across the LAN extension: SMR trigger towards {}",
                d.outer.src
            ));
            self.event(HalEvent::EidNotHere {
                iid,
                eid: inner_dst,
                source_rloc: d.outer.src,
                inner_source: inner_src,
            });
        }
        let out = self.route_ip(frame, inner_dst, now_ms, false, t);
        self.tcp_segments_to_fit(out, frame, t)
    }

    /// Whether a packet for `eid`, away from here, can be sent on: the map-cache has locators
    /// for it and none of them is one of ours.
    fn relays_to_new_location(&self, eid: IpAddr) -> bool {
        self.tables.map_cache(eid).is_some_and(|e| {
            !e.locators.is_empty()
                && e.locators
                    .iter()
                    .all(|l| !self.tables.addresses.contains_key(&l.rloc))
        })
    }

    /// A decapsulated packet routed out of a port whose MTU it exceeds: a TCP packet leaves as
    /// segments that fit ([`Verdict::ForwardTcpSegments`]); anything else as it is.
    fn tcp_segments_to_fit<T: Tracer>(
        &mut self,
        out: Outcome,
        frame: &Frame<'_>,
        t: &mut T,
    ) -> Outcome {
        let Verdict::Forward { port, tag } = out.verdict else {
            return out;
        };
        let Some(mtu) = self.port_mtu.get(&port).map(|m| usize::from(*m)) else {
            return out;
        };
        let ip = frame.bytes().get(ETH_LEN..).unwrap_or(&[]);
        if ip.len() <= mtu {
            return out;
        }
        let Some(headers) = tcp_headers_len(ip) else {
            return out;
        };
        let Some(mss) = mtu
            .checked_sub(headers)
            .filter(|m| *m > 0)
            .and_then(|m| u16::try_from(m).ok())
        else {
            return out;
        };
        t.step(format_args!(
            "{}-octet TCP packet exceeds the MTU {mtu} of {port}: TCP segments of {mss} octets",
            ip.len()
        ));
        Outcome {
            verdict: Verdict::ForwardTcpSegments { port, tag, mss },
            reply: out.reply,
        }
    }

    /// Whether `ip`, on a connected SVI subnet, was last seen behind a hello-filter port (the
    /// LAN extension to another data centre of the site).
    fn across_lan_extension(&self, ip: IpAddr) -> bool {
        if self.tables.hello_filter.is_empty() {
            return false;
        }
        let Some(NextHop::Connected(iface @ L3Interface::Vlan(vlan))) = self.tables.route(ip)
        else {
            return false;
        };
        self.tables
            .neighbors
            .get(&(iface, ip))
            .and_then(|n| self.tables.fdb.get(&(vlan, n.mac)))
            .is_some_and(|f| self.tables.hello_filter.contains(&f.port))
    }

    /// A source inside a dynamic-EID range of the ingress interface is reported (then refreshed).
    fn detect_dynamic_eid<T: Tracer>(
        &mut self,
        iface: L3Interface,
        src: IpAddr,
        now_ms: u64,
        t: &mut T,
    ) {
        let Some(ranges) = self.tables.dynamic_ranges.get(&iface) else {
            return;
        };
        let Some(range) = ranges.iter().find(|r| r.eid.contains(src)) else {
            return;
        };
        // Across subnets, only sources outside the interface's own subnets have moved in.
        // Across subnets, a host of the interface's own subnet is at home, not a dynamic EID —
        // unless we were told it had moved away (away table): then it is back.
        if !range.extended_subnet && self.in_iface_subnet(iface, src) && !self.tables.is_away(src) {
            return;
        }
        let map = range.map.clone();
        // A host we were told had left is back: report it at once, not at the refresh pace
        // (its last report here may be only seconds old).
        let (kind, interval) = if self.tables.is_away(src) {
            (7, AWAY_REDETECT_MS)
        } else {
            (4, self.settings.eid_refresh_ms)
        };
        if T::LEARN && self.rate_ok(kind, src, now_ms, interval) {
            t.step(format_args!("dynamic EID {src} seen on {iface} ({map})"));
            self.event(HalEvent::DynamicEidSeen {
                iface,
                eid: src,
                map,
            });
        }
    }

    /// "Fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6) announcing `mtu`, back
    /// to where the routed frame came in. IPv4 without DF is fragmented instead
    /// ([`Verdict::Fragment`]); only a large segment without DF gets here, and no answer.
    fn too_big(&mut self, f: &[u8], mtu: usize) -> Option<ReplyTo> {
        let (iface, port, vlan) = self.ingress?;
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        match f.get(ETH_LEN).map(|b| b >> 4) {
            Some(4) if f.get(ETH_LEN + 6).is_some_and(|b| b & 0x40 != 0) => {
                let m = mtu.to_be_bytes();
                self.icmp_error(iface, port, vlan, f, [3, 4, 0, 0, 0, 0, m[0], m[1]])
            }
            Some(6) => {
                let m = u32::from(mtu).to_be_bytes();
                self.icmpv6_error(iface, port, vlan, f, [2, 0, 0, 0, m[0], m[1], m[2], m[3]])
            }
            _ => None,
        }
    }

    /// ICMP time exceeded (type 11 code 0) back to the sender.
    fn icmp_time_exceeded(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
    ) -> Option<ReplyTo> {
        self.icmp_error(iface, port, vlan, f, [11, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An ICMP error (`head` = its first 8 octets, checksum zero) quoting the packet in `f`,
    /// built in the reply buffer, sent back out of the ingress port.
    fn icmp_error(
        &mut self,
        iface: L3Interface,
        port: PortId,
        vlan: Option<VlanId>,
        f: &[u8],
        head: [u8; 8],
    ) -> Option<ReplyTo> {
        let ip = f.get(ETH_LEN..)?;
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let quoted = ip.get(..(ihl + 8).min(ip.len()))?;
        let our = self
            .tables
            .addresses
            .iter()
            .filter(|(a, o)| o.iface == iface && o.virtual_mac.is_none() && a.is_ipv4())
            .map(|(a, _)| *a)
            .min()?;
        let IpAddr::V4(our) = our else { return None };
        let mac = self.tables.iface_mac.get(&iface).copied()?;
        let total = 20 + 8 + quoted.len();
        let r = &mut self.reply;
        r[..6].copy_from_slice(&f[6..12]);
        r[6..12].copy_from_slice(&mac.0);
        r[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let h = &mut r[ETH_LEN..ETH_LEN + 20];
        h.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[12..16].copy_from_slice(&our.octets());
        h[16..20].copy_from_slice(&ip[12..16]);
        let c = checksum::ipv4_header(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let icmp = &mut r[ETH_LEN + 20..ETH_LEN + total];
        icmp[..8].copy_from_slice(&head);
        icmp[8..].copy_from_slice(quoted);
        let c = checksum::finish(checksum::add(0, icmp));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        self.reply_len = (ETH_LEN + total).max(60);
        r[ETH_LEN + total..self.reply_len].fill(0);
        let tag = vlan.filter(|v| self.tables.egress_tagged(port, *v) == Some(true));
        Some(ReplyTo::Port { port, tag })
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

/// Lowest priority wins (255 = never); weights split flows among equal priorities.
fn choose_locator(locators: &[Locator], hash: u32) -> Option<Locator> {
    let best = locators
        .iter()
        .filter(|l| l.priority != 255)
        .map(|l| l.priority)
        .min()?;
    let mut candidates = locators.iter().filter(|l| l.priority == best);
    let total: u32 = candidates.clone().map(|l| u32::from(l.weight)).sum();
    if total == 0 {
        let n = candidates.clone().count() as u32;
        return candidates.nth((hash % n.max(1)) as usize).copied();
    }
    let mut pick = hash % total;
    for l in candidates.by_ref() {
        let w = u32::from(l.weight);
        if pick < w {
            return Some(*l);
        }
        pick -= w;
    }
    None
}

/// The source address of the IP packet after the Ethernet header.
fn inner_source(f: &[u8]) -> Option<IpAddr> {
    match f.get(ETH_LEN)? >> 4 {
        4 => {
            let a: [u8; 4] = f.get(ETH_LEN + 12..ETH_LEN + 16)?.try_into().ok()?;
            Some(IpAddr::from(a))
        }
        6 => {
            let a: [u8; 16] = f.get(ETH_LEN + 8..ETH_LEN + 24)?.try_into().ok()?;
            Some(IpAddr::from(a))
        }
        _ => None,
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

/// An HSRP hello (v1/v2 over IPv4 to UDP 1985, or HSRP for IPv6 to UDP 2029): what a hello
/// filter keeps off a port, in both directions.
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
        let mut f = Frame {
            buf: &mut buf,
            start: 128,
            len: frame.len(),
            large: false,
            partial_csum: None,
        };
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
