//! What the pipeline decides for a frame, its counters and the trace hooks.

use std::collections::HashMap;

use super::*;

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

impl Outcome {
    /// `verdict`, no reply.
    pub const fn no_reply(verdict: Verdict) -> Self {
        Outcome {
            verdict,
            reply: None,
        }
    }

    /// Dropped for `reason`, no reply.
    pub const fn dropped(reason: DropReason) -> Self {
        Self::no_reply(Verdict::Drop(reason))
    }
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
    /// The large frame's offload cuts TCP segments (TSO), not UDP datagrams: a LISP packet with
    /// it is one packet around a large inner TCP segment (a kernel ITR's eBPF encapsulation of
    /// a TSO packet), not a UDP segmentation train of LISP packets.
    pub gso_tcp: bool,
    /// A layer-4 checksum the sender left to the offload (vnet-hdr `NEEDS_CSUM`): the position
    /// in `buf` of the first summed octet and the field's offset from it. Encapsulation
    /// completes it and clears this: the ETR at the other end may not be roamer, and over IPv6
    /// the outer UDP checksum covers the field.
    pub partial_csum: Option<(usize, usize)>,
}

impl<'a> Frame<'a> {
    /// The `len` octets at `start` of `buf`: not a large segment, no checksum left to the
    /// offload.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Frame<'a> {
        Frame {
            buf,
            start,
            len,
            large: false,
            gso_tcp: false,
            partial_csum: None,
        }
    }
}

impl Frame<'_> {
    pub fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    /// Completes a layer-4 checksum left to the offload ([`Frame::partial_csum`]) in place and
    /// clears it; whether there was one.
    pub(super) fn complete_partial_checksum(&mut self) -> bool {
        let Some((first, offset)) = self.partial_csum.take() else {
            return false;
        };
        complete_partial_checksum(self.buf, first, self.start + self.len, offset);
        true
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
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
