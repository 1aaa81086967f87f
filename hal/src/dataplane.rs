//! What the daemon needs from any data plane besides programming tables and moving frames:
//! what it learned (MAC addresses, neighbours with their ages), the state of each port's link,
//! its counters, a forwarding trace, and a wake-up call when it queued something.
//!
//! [`DataPlane`] is one object-safe trait: the daemon holds a `Box<dyn DataPlane>` chosen at
//! run time and never names a backend's own types.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::HalError;
use crate::backend::{Backend, PacketIo};
use crate::inventory::PortIoKind;
use crate::table::{L3Interface, TableEntry, TableKind};
use crate::types::{Mac, PortId, VlanId};

/// Called by a data path after it queued events or punts, so the control plane can act at once
/// instead of at its next poll.
pub type Notifier = Arc<dyn Fn() + Send + Sync>;

/// One MAC address the data plane forwards to (learned, or static from the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnedMac {
    pub vlan: VlanId,
    pub mac: Mac,
    pub port: PortId,
    pub is_static: bool,
    /// Milliseconds since a frame from this address was last seen (0 for static entries and
    /// for backends that do not age entries).
    pub age_ms: u64,
}

/// One ARP (IPv4) or ND (IPv6) neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnedNeighbor {
    pub iface: L3Interface,
    pub ip: IpAddr,
    pub mac: Mac,
    /// Milliseconds since the neighbour was last confirmed.
    pub age_ms: u64,
}

impl LearnedNeighbor {
    /// An ND (IPv6) entry rather than an ARP one.
    pub fn is_nd(&self) -> bool {
        self.ip.is_ipv6()
    }
}

/// What a data port's link looks like to the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// The port does not follow an interface (a device roamer owns, a test port): taken as up.
    Unwatched,
    /// Up, with a carrier.
    Up,
    /// The interface is there but administratively down.
    AdminDown,
    /// The interface is up without a carrier.
    NoCarrier,
    /// No interface of the port's name (deleted, moved away, not created yet).
    Gone,
}

impl LinkState {
    /// Whether frames can leave (or are taken to).
    pub fn is_up(self) -> bool {
        matches!(self, LinkState::Unwatched | LinkState::Up)
    }
}

/// One port's link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortLink {
    pub port: PortId,
    pub link: LinkState,
}

/// One named counter of the data plane (`rx`, `bridged`, `drop no-route`, …), in the order the
/// backend lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub name: String,
    pub value: u64,
}

/// What the data plane learned and counted, for `show mac address-table`, `show ip arp`,
/// `show ipv6 neighbor`, `show interface` and `show forwarding counters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Learned {
    pub macs: Vec<LearnedMac>,
    /// ARP and ND entries.
    pub neighbors: Vec<LearnedNeighbor>,
    /// Verdict, drop and port counters; empty for a backend that counts nothing.
    pub counters: Vec<Counter>,
    /// The link state of every port the data plane has (ports not listed are unknown to it).
    pub links: Vec<PortLink>,
}

impl Learned {
    /// The link state of `port`, if the data plane knows the port.
    pub fn link(&self, port: PortId) -> Option<LinkState> {
        self.links.iter().find(|l| l.port == port).map(|l| l.link)
    }
}

/// What a forwarding trace reports: the verdict, the reply frame built if any, and each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub verdict: String,
    pub reply: Option<String>,
    pub steps: Vec<String>,
}

/// A read-only view of a data plane for `show`, usable off the daemon's loop and without holding
/// the data plane: the answers of [`DataPlane::learned`] and [`Backend::entries`]. A backend
/// whose reads are round trips to a data-path thread hands out a view that makes them itself;
/// the default is a copy taken when the view is made.
pub trait DataPlaneReader: Send {
    fn learned(&self) -> Result<Learned, HalError>;
    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError>;
}

/// A [`DataPlaneReader`] that answers from a copy.
#[derive(Debug)]
pub struct CopiedReader {
    learned: Result<Learned, String>,
    entries: Vec<(TableKind, Result<Vec<TableEntry>, String>)>,
    backend: String,
}

impl CopiedReader {
    pub fn of<D: DataPlane + ?Sized>(d: &D) -> Self {
        CopiedReader {
            learned: d.learned().map_err(|e| e.to_string()),
            entries: TableKind::ALL
                .iter()
                .map(|k| (*k, d.entries(*k).map_err(|e| e.to_string())))
                .collect(),
            backend: d.name().to_string(),
        }
    }

    fn error(&self, detail: &str) -> HalError {
        HalError::Backend {
            backend: self.backend.clone(),
            detail: detail.to_string(),
        }
    }
}

impl DataPlaneReader for CopiedReader {
    fn learned(&self) -> Result<Learned, HalError> {
        self.learned.clone().map_err(|e| self.error(&e))
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        match self.entries.iter().find(|(k, _)| *k == kind) {
            Some((_, rows)) => rows.clone().map_err(|e| self.error(&e)),
            None => Ok(Vec::new()),
        }
    }
}

/// Everything the daemon asks of a data plane. Object safe: the daemon holds a
/// `Box<dyn DataPlane>`; [`crate::Accounted`] and the chaos wrapper wrap one.
pub trait DataPlane: Backend + PacketIo {
    /// Learned MAC addresses and neighbours with their ages, counters and link state.
    /// A data plane that does not answer is an error ([`HalError::NotAnswering`]), never an
    /// empty answer.
    fn learned(&self) -> Result<Learned, HalError>;

    /// Runs a copy of `frame` through the forwarding pipeline as if received on `port`
    /// (tagged `tag`), learning nothing. A backend without a pipeline answers
    /// [`HalError::NotSupported`].
    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError>;

    /// Has the data plane call `notify` whenever it queued events or punts. Returns `false`
    /// when the backend queues them synchronously and the caller's polling is enough.
    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        let _ = notify;
        Ok(false)
    }

    /// A read-only view for `show` (see [`DataPlaneReader`]); by default a copy made now.
    fn reader(&self) -> Box<dyn DataPlaneReader> {
        Box::new(CopiedReader::of(self))
    }

    /// Attaches a data port while running, and says how it moves its frames. An attached
    /// port is [`HalError::PortExists`]; a backend that takes its ports only at start answers
    /// [`HalError::NotSupported`] (the operator is told to restart).
    fn attach_port(&mut self, spec: &PortAttach) -> Result<PortIoInfo, HalError> {
        let _ = spec;
        Err(HalError::NotSupported {
            operation: PORT_AT_RUN_TIME,
            backend: self.name().to_string(),
            reason: "ports are taken only at start",
        })
    }

    /// Detaches a data port while running (frames queued for it are dropped and counted). A
    /// port that is not attached is [`HalError::NoSuchPort`].
    fn detach_port(&mut self, port: PortId) -> Result<(), HalError> {
        let _ = port;
        Err(HalError::NotSupported {
            operation: PORT_AT_RUN_TIME,
            backend: self.name().to_string(),
            reason: "ports are taken only at start",
        })
    }
}

/// A data port to attach while running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAttach {
    pub port: PortId,
    /// The operator's name for it (for logs).
    pub name: String,
    /// The port's device as the platform binds it.
    pub device: String,
    /// The I/O the configuration forces (`roamer platform port … io`); `None`: the backend
    /// chooses, as for the ports it opened at start.
    pub io: Option<PortIoKind>,
}

/// How an attached port moves its frames, for `show interface brief`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortIoInfo {
    /// `af-xdp (native XDP, copy)`, `af-packet`, `tap`, or the backend's own word.
    pub io: String,
    /// Why the port is not on the I/O asked for or tried first; `None` when nothing fell back.
    pub fallback: Option<String>,
}

/// The operation [`DataPlane::attach_port`] and [`DataPlane::detach_port`] name when refused.
pub const PORT_AT_RUN_TIME: &str = "attaching or detaching a port at run time";

impl std::fmt::Debug for dyn DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataPlane({})", self.name())
    }
}

impl<T: Backend + ?Sized> Backend for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn capabilities(&self) -> crate::Capabilities {
        (**self).capabilities()
    }

    fn apply(&mut self, batch: &[crate::TableOp]) -> Vec<Result<(), HalError>> {
        (**self).apply(batch)
    }

    fn entries(&self, kind: crate::TableKind) -> Result<Vec<crate::TableEntry>, HalError> {
        (**self).entries(kind)
    }

    fn drain_events(&mut self, out: &mut Vec<crate::HalEvent>) {
        (**self).drain_events(out)
    }
}

impl<T: PacketIo + ?Sized> PacketIo for Box<T> {
    fn inject(&mut self, target: crate::InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        (**self).inject(target, frame)
    }

    fn drain_punts(&mut self, out: &mut Vec<crate::Punt>) {
        (**self).drain_punts(out)
    }

    fn recycle_punts(&mut self, punts: &mut Vec<crate::Punt>) {
        (**self).recycle_punts(punts)
    }
}

impl<T: DataPlane + ?Sized> DataPlane for Box<T> {
    fn learned(&self) -> Result<Learned, HalError> {
        (**self).learned()
    }

    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError> {
        (**self).trace(port, tag, frame)
    }

    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        (**self).set_notifier(notify)
    }

    fn reader(&self) -> Box<dyn DataPlaneReader> {
        (**self).reader()
    }

    fn attach_port(&mut self, spec: &PortAttach) -> Result<PortIoInfo, HalError> {
        (**self).attach_port(spec)
    }

    fn detach_port(&mut self, port: PortId) -> Result<(), HalError> {
        (**self).detach_port(port)
    }
}
