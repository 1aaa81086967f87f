//! The `sim` backend: in-memory tables and in-memory wires, for tests and dry runs.
//!
//! Tables are plain maps; capacities are enforced by wrapping the backend in
//! [`roamer_hal::Accounted`], never here. Every received frame is punted (`PuntReason::Received`)
//! because the sim has no forwarding core of its own.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use roamer_hal::{
    Backend, Capabilities, DataPlane, HalError, HalEvent, InjectTarget, Learned, LearnedMac,
    LearnedNeighbor, LinkState, OpAction, PacketIo, PortId, PortLink, Punt, PuntReason, TableEntry,
    TableKey, TableKind, TableOp, Trace, VlanId,
};

/// How many frames one direction of a wire holds before it drops (and counts) new ones.
pub const WIRE_QUEUE_FRAMES: usize = 4096;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    dropped: u64,
}

/// One end of an in-memory point-to-point wire.
#[derive(Debug)]
pub struct WireEnd {
    tx: Arc<Mutex<Queue>>,
    rx: Arc<Mutex<Queue>>,
}

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves only a queue of frames behind; keep using it.
    q.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WireEnd {
    /// Sends a frame to the other end; returns false (and counts) when the peer's queue is full.
    pub fn send(&self, frame: &[u8]) -> bool {
        let mut q = lock(&self.tx);
        if q.frames.len() >= WIRE_QUEUE_FRAMES {
            q.dropped += 1;
            return false;
        }
        q.frames.push_back(frame.to_vec());
        true
    }

    pub fn recv(&self) -> Option<Vec<u8>> {
        lock(&self.rx).frames.pop_front()
    }

    /// Frames dropped because this end did not read fast enough.
    pub fn rx_dropped(&self) -> u64 {
        lock(&self.rx).dropped
    }

    /// The other end still exists.
    pub fn peer_present(&self) -> bool {
        Arc::strong_count(&self.tx) > 1
    }
}

/// Creates a wire; each end sends to the other.
pub fn wire() -> (WireEnd, WireEnd) {
    let a_to_b = Arc::new(Mutex::new(Queue::default()));
    let b_to_a = Arc::new(Mutex::new(Queue::default()));
    (
        WireEnd {
            tx: a_to_b.clone(),
            rx: b_to_a.clone(),
        },
        WireEnd {
            tx: b_to_a,
            rx: a_to_b,
        },
    )
}

#[derive(Debug)]
struct SimPort {
    wire: Option<WireEnd>,
    up: bool,
    access_vlan: Option<VlanId>,
}

/// In-memory tables, events and ports.
#[derive(Debug)]
pub struct SimBackend {
    name: String,
    caps: Capabilities,
    tables: BTreeMap<TableKind, HashMap<TableKey, TableEntry>>,
    events: VecDeque<HalEvent>,
    ports: BTreeMap<PortId, SimPort>,
}

impl Default for SimBackend {
    fn default() -> Self {
        Self::new(Capabilities::everything())
    }
}

impl SimBackend {
    pub fn new(caps: Capabilities) -> Self {
        SimBackend {
            name: "sim".into(),
            caps,
            tables: BTreeMap::new(),
            events: VecDeque::new(),
            ports: BTreeMap::new(),
        }
    }

    /// A sim that offers only the given tables (to mimic a weaker platform).
    pub fn with_tables(tables: &[TableKind]) -> Self {
        let mut caps = Capabilities::everything();
        caps.supported = tables.iter().copied().collect();
        caps.features.lisp_encap = caps.supported.contains(&TableKind::LispMapCache);
        Self::new(caps)
    }

    /// Adds a port with nothing attached (link down).
    pub fn add_port(&mut self, port: PortId) {
        self.ports.entry(port).or_insert(SimPort {
            wire: None,
            up: false,
            access_vlan: None,
        });
    }

    /// Plugs a wire end into a port (creating the port if needed); the link comes up.
    pub fn attach(&mut self, port: PortId, end: WireEnd) {
        let p = self.ports.entry(port).or_insert(SimPort {
            wire: None,
            up: false,
            access_vlan: None,
        });
        p.wire = Some(end);
        if !p.up {
            p.up = true;
            self.events.push_back(HalEvent::PortUp(port));
        }
    }

    /// Unplugs a port's wire; the link goes down.
    pub fn detach(&mut self, port: PortId) -> Option<WireEnd> {
        let p = self.ports.get_mut(&port)?;
        let end = p.wire.take();
        if p.up {
            p.up = false;
            self.events.push_back(HalEvent::PortDown(port));
        }
        end
    }

    /// Marks a port as an access port of `vlan`, used when injecting into a VLAN.
    pub fn set_access_vlan(&mut self, port: PortId, vlan: Option<VlanId>) {
        if let Some(p) = self.ports.get_mut(&port) {
            p.access_vlan = vlan;
        }
    }

    /// Notices peers that went away (a wire end dropped) as link-down events.
    fn refresh_links(&mut self) {
        for (id, p) in &mut self.ports {
            let alive = p.wire.as_ref().is_some_and(WireEnd::peer_present);
            if p.up && !alive {
                p.up = false;
                self.events.push_back(HalEvent::PortDown(*id));
            }
        }
    }

    fn apply_one(&mut self, op: &TableOp) -> Result<(), HalError> {
        let kind = op.kind();
        if !self.caps.supported.contains(&kind) {
            return Err(HalError::Unsupported {
                action: op.action,
                table: kind,
                backend: self.name.clone(),
            });
        }
        let table = self.tables.entry(kind).or_default();
        let key = op.entry.key();
        match op.action {
            OpAction::Add => {
                if table.contains_key(&key) {
                    return Err(HalError::Exists { table: kind, key });
                }
                table.insert(key, op.entry.clone());
            }
            OpAction::Update => match table.get_mut(&key) {
                Some(row) => *row = op.entry.clone(),
                None => return Err(HalError::NotFound { table: kind, key }),
            },
            OpAction::Remove => {
                if table.remove(&key).is_none() {
                    return Err(HalError::NotFound { table: kind, key });
                }
            }
        }
        Ok(())
    }
}

impl Backend for SimBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        batch.iter().map(|op| self.apply_one(op)).collect()
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        let mut rows: Vec<(TableKey, TableEntry)> = self
            .tables
            .get(&kind)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        self.refresh_links();
        out.extend(self.events.drain(..));
    }
}

impl PacketIo for SimBackend {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        match target {
            // The sim has no tagging; a VLAN frame to a port leaves as it is.
            InjectTarget::Port(port) | InjectTarget::PortInVlan(port, _) => {
                let p = self.ports.get(&port).ok_or(HalError::NoSuchPort {
                    port: port.0,
                    backend: self.name.clone(),
                })?;
                match &p.wire {
                    Some(w) if p.up => {
                        w.send(frame);
                        Ok(())
                    }
                    _ => Err(HalError::Backend {
                        backend: self.name.clone(),
                        detail: format!("{port} is down"),
                    }),
                }
            }
            InjectTarget::Vlan(vlan) => {
                for p in self
                    .ports
                    .values()
                    .filter(|p| p.up && p.access_vlan == Some(vlan))
                {
                    if let Some(w) = &p.wire {
                        w.send(frame);
                    }
                }
                Ok(())
            }
            // Refused rather than dropped quietly: the control plane must know its message
            // did not leave.
            InjectTarget::Routed => Err(HalError::Backend {
                backend: self.name.clone(),
                detail: "routed injection needs a forwarding core, which this backend has not"
                    .into(),
            }),
        }
    }

    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        for (id, p) in &self.ports {
            let Some(w) = &p.wire else { continue };
            while let Some(frame) = w.recv() {
                out.push(Punt {
                    port: *id,
                    vlan: p.access_vlan,
                    reason: PuntReason::Received,
                    frame,
                });
            }
        }
    }
}

/// The sim has no forwarding core: it learns nothing from traffic, so what it "learned" is what
/// its tables hold (static MAC addresses, programmed neighbours, age 0), and it counts nothing.
/// Ports attached at run time have no wire: their link is down until one is plugged in.
impl DataPlane for SimBackend {
    fn attach_port(
        &mut self,
        spec: &roamer_hal::PortAttach,
    ) -> Result<roamer_hal::PortIoInfo, HalError> {
        let port = spec.port;
        if self.ports.contains_key(&port) {
            return Err(HalError::PortExists {
                port: port.0,
                backend: self.name.clone(),
            });
        }
        self.add_port(port);
        Ok(roamer_hal::PortIoInfo {
            io: "sim (no wire)".into(),
            fallback: None,
        })
    }

    fn detach_port(&mut self, port: PortId) -> Result<(), HalError> {
        match self.ports.remove(&port) {
            Some(p) => {
                if p.up {
                    self.events.push_back(HalEvent::PortDown(port));
                }
                Ok(())
            }
            None => Err(HalError::NoSuchPort {
                port: port.0,
                backend: self.name.clone(),
            }),
        }
    }

    fn learned(&self) -> Result<Learned, HalError> {
        let mut learned = Learned::default();
        for e in self.entries(TableKind::Fdb)? {
            if let TableEntry::Fdb {
                vlan,
                mac,
                port,
                is_static,
            } = e
            {
                learned.macs.push(LearnedMac {
                    vlan,
                    mac,
                    port,
                    is_static,
                    age_ms: 0,
                });
            }
        }
        for e in self.entries(TableKind::Neighbor)? {
            if let TableEntry::Neighbor { iface, ip, mac } = e {
                learned.neighbors.push(LearnedNeighbor {
                    iface,
                    ip,
                    mac,
                    age_ms: 0,
                });
            }
        }
        learned.links = self
            .ports
            .iter()
            .map(|(port, p)| PortLink {
                port: *port,
                // Nothing plugged in, or the peer went away: no carrier.
                link: if p.up {
                    LinkState::Up
                } else {
                    LinkState::NoCarrier
                },
            })
            .collect();
        Ok(learned)
    }

    fn trace(
        &self,
        _port: PortId,
        _tag: Option<VlanId>,
        _frame: Vec<u8>,
    ) -> Result<Trace, HalError> {
        Err(HalError::NotSupported {
            operation: "forwarding trace",
            backend: self.name.clone(),
            reason: "it has no forwarding pipeline (use the software backend)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    roamer_hal::backend_contract_tests!(SimBackend::default());

    mod restricted {
        use super::*;
        roamer_hal::backend_contract_tests!(SimBackend::with_tables(&[
            TableKind::Vlan,
            TableKind::Fdb,
            TableKind::Ipv4Route
        ]));
    }

    #[test]
    fn wires_carry_frames_both_ways_and_report_link_state() {
        let (a, b) = wire();
        let mut sw = SimBackend::default();
        sw.attach(PortId(1), a);
        let mut ev = Vec::new();
        sw.drain_events(&mut ev);
        assert_eq!(ev, vec![HalEvent::PortUp(PortId(1))]);

        sw.inject(InjectTarget::Port(PortId(1)), b"hello").unwrap();
        assert_eq!(b.recv().as_deref(), Some(&b"hello"[..]));

        assert!(b.send(b"world"));
        let mut punts = Vec::new();
        sw.drain_punts(&mut punts);
        assert_eq!(punts.len(), 1);
        assert_eq!(punts[0].frame, b"world");
        assert_eq!(punts[0].reason, PuntReason::Received);

        drop(b);
        ev.clear();
        sw.drain_events(&mut ev);
        assert_eq!(ev, vec![HalEvent::PortDown(PortId(1))]);
        assert!(sw.inject(InjectTarget::Port(PortId(1)), b"x").is_err());
        assert!(matches!(
            sw.inject(InjectTarget::Port(PortId(7)), b"x"),
            Err(HalError::NoSuchPort { port: 7, .. })
        ));
    }

    #[test]
    fn wire_queue_is_bounded_and_counts_drops() {
        let (a, b) = wire();
        for _ in 0..WIRE_QUEUE_FRAMES {
            assert!(a.send(&[0u8; 4]));
        }
        assert!(!a.send(&[0u8; 4]));
        assert_eq!(b.rx_dropped(), 1);
    }

    #[test]
    fn vlan_inject_reaches_access_ports_of_that_vlan_only() {
        let v10 = VlanId::new(10).unwrap();
        let (a1, b1) = wire();
        let (a2, b2) = wire();
        let mut sw = SimBackend::default();
        sw.attach(PortId(1), a1);
        sw.attach(PortId(2), a2);
        sw.set_access_vlan(PortId(1), Some(v10));
        sw.inject(InjectTarget::Vlan(v10), b"flood").unwrap();
        assert!(b1.recv().is_some());
        assert!(b2.recv().is_none());
    }

    #[test]
    fn routed_inject_is_refused_without_a_forwarding_core() {
        let (a, b) = wire();
        let mut sw = SimBackend::default();
        sw.attach(PortId(1), a);
        let err = sw.inject(InjectTarget::Routed, &[0u8; 60]).unwrap_err();
        assert!(
            matches!(&err, HalError::Backend { detail, .. } if detail.contains("routed")),
            "{err}"
        );
        assert!(b.recv().is_none(), "nothing left the switch");
    }
}
