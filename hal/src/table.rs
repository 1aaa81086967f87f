//! Typed table operations: what the control plane asks a backend to program.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::types::{Iid, Mac, PortId, Prefix, VlanId};

/// Every forwarding table a backend may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableKind {
    Vlan,
    VlanMember,
    Fdb,
    RouterMac,
    InterfaceAddress,
    Neighbor,
    Ipv4Route,
    Ipv6Route,
    ProxyArp,
    LispDatabase,
    LispMapCache,
    DynamicEidRange,
    AwayEntry,
    HelloFilter,
}

impl TableKind {
    pub const ALL: [TableKind; 14] = [
        TableKind::Vlan,
        TableKind::VlanMember,
        TableKind::Fdb,
        TableKind::RouterMac,
        TableKind::InterfaceAddress,
        TableKind::Neighbor,
        TableKind::Ipv4Route,
        TableKind::Ipv6Route,
        TableKind::ProxyArp,
        TableKind::LispDatabase,
        TableKind::LispMapCache,
        TableKind::DynamicEidRange,
        TableKind::AwayEntry,
        TableKind::HelloFilter,
    ];

    /// The operator-facing table name, as used in errors and `show hardware capacity`.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Vlan => "VLAN",
            TableKind::VlanMember => "VLAN membership",
            TableKind::Fdb => "MAC address",
            TableKind::RouterMac => "router MAC",
            TableKind::InterfaceAddress => "interface address",
            TableKind::Neighbor => "adjacency",
            TableKind::Ipv4Route => "IPv4 FIB",
            TableKind::Ipv6Route => "IPv6 FIB",
            TableKind::ProxyArp => "proxy-ARP",
            TableKind::LispDatabase => "LISP database",
            TableKind::LispMapCache => "LISP map-cache",
            TableKind::DynamicEidRange => "LISP dynamic-EID range",
            TableKind::AwayEntry => "LISP away",
            TableKind::HelloFilter => "HSRP hello filter",
        }
    }

    /// The key of this table's capacity in the line-card catalogue, where it has one.
    pub fn catalogue_key(self) -> Option<&'static str> {
        match self {
            TableKind::Vlan => Some("vlan"),
            TableKind::Fdb => Some("mac"),
            TableKind::RouterMac => Some("router_mac"),
            TableKind::Neighbor => Some("adjacency"),
            TableKind::Ipv4Route => Some("ipv4_fib"),
            TableKind::Ipv6Route => Some("ipv6_fib"),
            TableKind::LispMapCache => Some("lisp_map_cache"),
            _ => None,
        }
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A layer-3 interface: an SVI or a routed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum L3Interface {
    Vlan(VlanId),
    Port(PortId),
}

impl fmt::Display for L3Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L3Interface::Vlan(v) => write!(f, "Vlan{v}"),
            L3Interface::Port(p) => write!(f, "{p}"),
        }
    }
}

/// Where a route sends its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NextHop {
    /// Directly connected on this interface.
    Connected(L3Interface),
    /// Through a gateway, optionally pinned to an interface.
    Gateway {
        via: IpAddr,
        iface: Option<L3Interface>,
    },
    /// Encapsulate with LISP (the map-cache decides the locator).
    Lisp,
    /// Discard (Null0).
    Discard,
}

/// A routing locator with its traffic-engineering preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Locator {
    pub rloc: IpAddr,
    pub priority: u8,
    pub weight: u8,
}

/// What to do with traffic matching a map-cache entry that has no locators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NegativeAction {
    NoAction,
    NativelyForward,
    SendMapRequest,
    Drop,
}

/// One row of one table. The identity fields form the key; the rest is the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableEntry {
    Vlan {
        vlan: VlanId,
    },
    VlanMember {
        vlan: VlanId,
        port: PortId,
        tagged: bool,
    },
    Fdb {
        vlan: VlanId,
        mac: Mac,
        port: PortId,
        is_static: bool,
    },
    /// Frames to `mac` on `iface` are routed. `virtual_mac` marks an HSRP virtual MAC, which
    /// ARP and proxy-ARP answers use in preference to the interface's own MAC.
    RouterMac {
        iface: L3Interface,
        mac: Mac,
        virtual_mac: bool,
    },
    /// An address of ours. An HSRP virtual IP carries `virtual_mac`: ARP for it is answered
    /// with that MAC, and it adds no connected route.
    InterfaceAddress {
        iface: L3Interface,
        addr: IpAddr,
        prefix_len: u8,
        virtual_mac: Option<Mac>,
    },
    Neighbor {
        iface: L3Interface,
        ip: IpAddr,
        mac: Mac,
    },
    Route {
        prefix: Prefix,
        next_hop: NextHop,
    },
    ProxyArp {
        iface: L3Interface,
    },
    LispDatabase {
        iid: Iid,
        eid: Prefix,
        locators: Vec<Locator>,
    },
    LispMapCache {
        iid: Iid,
        eid: Prefix,
        locators: Vec<Locator>,
        negative: NegativeAction,
    },
    DynamicEidRange {
        iface: L3Interface,
        map: String,
        eid: Prefix,
        extended_subnet: bool,
        /// The map's site multicast Map-Notify group (`map-notify-group`): the xTRs of the site
        /// tell each other of moves to it on this interface, so a backend that receives only
        /// the multicast it joined joins it here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify_group: Option<std::net::Ipv4Addr>,
    },
    AwayEntry {
        iid: Iid,
        eid: Prefix,
    },
    /// HSRP hellos are neither taken from nor sent out of this port (the LAN extension between
    /// sites, so each site keeps its own active gateway).
    HelloFilter {
        port: PortId,
    },
}

/// The identity of a table row: two entries with equal keys occupy the same slot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKey {
    Vlan(VlanId),
    VlanMember(VlanId, PortId),
    Fdb(VlanId, Mac),
    RouterMac(L3Interface, Mac),
    InterfaceAddress(L3Interface, IpAddr),
    Neighbor(L3Interface, IpAddr),
    Route(Prefix),
    ProxyArp(L3Interface),
    Lisp(Iid, Prefix),
    DynamicEidRange(L3Interface, Prefix),
    Port(PortId),
}

impl fmt::Display for TableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableKey::Vlan(v) => write!(f, "vlan {v}"),
            TableKey::VlanMember(v, p) => write!(f, "vlan {v} {p}"),
            TableKey::Fdb(v, m) => write!(f, "vlan {v} {m}"),
            TableKey::RouterMac(i, m) => write!(f, "{i} {m}"),
            TableKey::InterfaceAddress(i, a) => write!(f, "{i} {a}"),
            TableKey::Neighbor(i, a) => write!(f, "{i} {a}"),
            TableKey::Route(p) => write!(f, "{p}"),
            TableKey::ProxyArp(i) => write!(f, "{i}"),
            TableKey::Lisp(iid, p) => write!(f, "[{iid}] {p}"),
            TableKey::DynamicEidRange(i, p) => write!(f, "{i} {p}"),
            TableKey::Port(p) => write!(f, "{p}"),
        }
    }
}

impl TableEntry {
    pub fn kind(&self) -> TableKind {
        match self {
            TableEntry::Vlan { .. } => TableKind::Vlan,
            TableEntry::VlanMember { .. } => TableKind::VlanMember,
            TableEntry::Fdb { .. } => TableKind::Fdb,
            TableEntry::RouterMac { .. } => TableKind::RouterMac,
            TableEntry::InterfaceAddress { .. } => TableKind::InterfaceAddress,
            TableEntry::Neighbor { .. } => TableKind::Neighbor,
            TableEntry::Route { prefix, .. } if prefix.is_ipv4() => TableKind::Ipv4Route,
            TableEntry::Route { .. } => TableKind::Ipv6Route,
            TableEntry::ProxyArp { .. } => TableKind::ProxyArp,
            TableEntry::LispDatabase { .. } => TableKind::LispDatabase,
            TableEntry::LispMapCache { .. } => TableKind::LispMapCache,
            TableEntry::DynamicEidRange { .. } => TableKind::DynamicEidRange,
            TableEntry::AwayEntry { .. } => TableKind::AwayEntry,
            TableEntry::HelloFilter { .. } => TableKind::HelloFilter,
        }
    }

    pub fn key(&self) -> TableKey {
        match self {
            TableEntry::Vlan { vlan } => TableKey::Vlan(*vlan),
            TableEntry::VlanMember { vlan, port, .. } => TableKey::VlanMember(*vlan, *port),
            TableEntry::Fdb { vlan, mac, .. } => TableKey::Fdb(*vlan, *mac),
            TableEntry::RouterMac { iface, mac, .. } => TableKey::RouterMac(*iface, *mac),
            TableEntry::InterfaceAddress { iface, addr, .. } => {
                TableKey::InterfaceAddress(*iface, *addr)
            }
            TableEntry::Neighbor { iface, ip, .. } => TableKey::Neighbor(*iface, *ip),
            TableEntry::Route { prefix, .. } => TableKey::Route(*prefix),
            TableEntry::ProxyArp { iface } => TableKey::ProxyArp(*iface),
            TableEntry::LispDatabase { iid, eid, .. }
            | TableEntry::LispMapCache { iid, eid, .. }
            | TableEntry::AwayEntry { iid, eid } => TableKey::Lisp(*iid, *eid),
            TableEntry::DynamicEidRange { iface, eid, .. } => {
                TableKey::DynamicEidRange(*iface, *eid)
            }
            TableEntry::HelloFilter { port } => TableKey::Port(*port),
        }
    }
}

/// What an operation does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpAction {
    /// Insert a new row; `Exists` if the key is taken.
    Add,
    /// Replace the value of an existing row; `NotFound` if absent.
    Update,
    /// Delete a row; `NotFound` if absent. Only the key of the entry matters.
    Remove,
}

impl fmt::Display for OpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpAction::Add => "add",
            OpAction::Update => "update",
            OpAction::Remove => "remove",
        })
    }
}

/// One table operation. Backends apply them in batches and return one result per operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableOp {
    pub action: OpAction,
    pub entry: TableEntry,
}

impl TableOp {
    pub fn add(entry: TableEntry) -> Self {
        Self {
            action: OpAction::Add,
            entry,
        }
    }

    pub fn update(entry: TableEntry) -> Self {
        Self {
            action: OpAction::Update,
            entry,
        }
    }

    pub fn remove(entry: TableEntry) -> Self {
        Self {
            action: OpAction::Remove,
            entry,
        }
    }

    pub fn kind(&self) -> TableKind {
        self.entry.kind()
    }
}

impl fmt::Display for TableOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.action,
            self.entry.kind(),
            self.entry.key()
        )
    }
}
