//! The traits every backend implements, and what crosses them besides table ops.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::HalError;
use crate::table::{L3Interface, TableEntry, TableKind, TableOp};
use crate::types::{Iid, Mac, PortId, VlanId};

/// Data-plane features a backend offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    pub l3: bool,
    pub proxy_arp: bool,
    pub lisp_encap: bool,
    /// How many virtual (HSRP) router MACs can be owned at once.
    pub virtual_macs: u32,
}

/// What a backend can do and how much of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub features: Features,
    /// Tables this backend can program; ops on any other table return `Unsupported`.
    pub supported: BTreeSet<TableKind>,
    /// The backend's own limits (a kernel or ASIC limit), on top of any line-card limit.
    pub capacity: BTreeMap<TableKind, u32>,
}

impl Capabilities {
    /// Everything supported, unbounded: what a pure software table offers.
    pub fn everything() -> Self {
        Capabilities {
            features: Features {
                l3: true,
                proxy_arp: true,
                lisp_encap: true,
                virtual_macs: 4096,
            },
            supported: TableKind::ALL.into_iter().collect(),
            capacity: BTreeMap::new(),
        }
    }
}

/// Something the data plane noticed that the control plane must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HalEvent {
    PortUp(PortId),
    PortDown(PortId),
    MacLearned {
        vlan: VlanId,
        mac: Mac,
        port: PortId,
    },
    MacAged {
        vlan: VlanId,
        mac: Mac,
    },
    /// A source inside a dynamic-EID range appeared on a `lisp mobility` interface.
    DynamicEidSeen {
        iface: L3Interface,
        eid: IpAddr,
        map: String,
    },
    /// The ITR has no map-cache entry for this destination.
    MapCacheMiss {
        iid: Iid,
        dest: IpAddr,
        /// The inner source of the packet that missed: the Map-Request's Source-EID (RFC 9301
        /// §5.3; AFI 0 there is for refreshes and RLOC probes).
        source: IpAddr,
    },
    /// A decapsulated packet was for an EID that is not here (the SMR trigger).
    EidNotHere {
        iid: Iid,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
    },
    /// A decapsulated packet was for a local EID without a route (generalized SMR).
    NoRoute {
        iid: Iid,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
    },
}

/// Why a frame was handed to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PuntReason {
    /// ARP or neighbour discovery addressed to one of our addresses.
    ArpForUs,
    Hsrp,
    /// UDP 4342 (LISP control) or TCP 4342 (reliable registration) to us.
    LispControl,
    /// Addressed to one of our IP addresses, none of the above.
    ForUs,
    /// A routed packet whose next hop is not resolved yet: the control plane resolves it.
    Glean,
    /// A backend without a forwarding core hands every received frame up.
    Received,
}

/// A frame handed to the control plane.
///
/// `frame` is as it would have been on a wire: a layer-4 checksum its sender left to an offload
/// (a Linux peer on the same host with TX checksum offload on a veth or tap: the frame arrives
/// with a partial checksum) is completed by the backend before the frame is punted, so every
/// consumer checks checksums as usual and none needs a "not yet verified" flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punt {
    pub port: PortId,
    pub vlan: Option<VlanId>,
    pub reason: PuntReason,
    pub frame: Vec<u8>,
}

/// Where an injected frame leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InjectTarget {
    /// Out of one port exactly as given.
    Port(PortId),
    /// Flooded in a VLAN (tagged on trunks, untagged on access ports).
    Vlan(VlanId),
    /// Out of one port as a frame of `VlanId`: tagged if the port carries that VLAN tagged
    /// (a reply to a frame that arrived there).
    PortInVlan(PortId, VlanId),
    /// An IPv4 packet from the switch itself, in an Ethernet frame whose MAC addresses are
    /// ignored: routed by the forwarding core (FIB, neighbour, egress). A source address of
    /// 0.0.0.0 is replaced by the address of the egress interface and the IPv4 header and UDP
    /// checksums are recomputed.
    Routed,
}

/// Programming a backend's tables.
pub trait Backend: Send {
    /// A short name for errors and logs (`sim`, `software`, `kernel`).
    fn name(&self) -> &str;

    fn capabilities(&self) -> Capabilities;

    /// Applies the operations in order and returns exactly one result per operation.
    /// A failing operation does not stop the ones after it.
    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>>;

    /// The current rows of one table (for `show` and for tests); a data path that does not
    /// answer is an error, never an empty table.
    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError>;

    /// Moves pending events into `out`.
    fn drain_events(&mut self, out: &mut Vec<HalEvent>);
}

/// Frames between the control plane and the data ports.
pub trait PacketIo: Send {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError>;

    /// Moves pending punted frames into `out`.
    fn drain_punts(&mut self, out: &mut Vec<Punt>);

    /// Hands punted frames the control plane is done with back to the backend, which may
    /// reuse their buffers for the next punts (no allocation per punted frame); `punts` is
    /// left empty. By default they are dropped.
    fn recycle_punts(&mut self, punts: &mut Vec<Punt>) {
        punts.clear();
    }
}
