//! The `software` backend: roamer's forwarding core over real ports, on a data-path thread.
//!
//! The data path owns the pipeline and the ports: it receives a batch, runs every frame through
//! the pipeline, and sends batches out. The control plane talks to it through bounded channels:
//! table operations are applied between batches (and answered), events and punted frames come
//! back; a full channel drops and counts, it never blocks the data path.
//!
//! Frames the control plane sends (Map-Notifies, Map-Replies, HSRP hellos, ...) have a channel
//! of their own, [`INJECT_QUEUE`] deep, drained every loop iteration up to [`INJECT_BATCH`]
//! frames and sent with one flush: a burst of injections costs one wake-up of the data path
//! and a `sendmmsg` per [`TX_SLOTS`] frames, not a syscall pair per frame. A full inject queue
//! refuses the frame with an error and counts it as drop `inject-queue-full` (`show forwarding
//! counters`). The buffers of injected and punted frames go back and forth on two more
//! channels and are reused: once warm, neither direction allocates per frame.
//!
//! A routed injection (`InjectTarget::Routed`) whose next hop is not resolved yet is not lost:
//! the ARP request leaves and the frame waits in a small bounded queue ([`GLEAN_QUEUE`]
//! frames, [`GLEAN_HOLD_MS`] each) and is routed again as soon as a neighbour is learned.
//!
//! Every [`LINK_CHECK_MS`] the data path asks each port about its interface
//! ([`PortIo::check_link`]): a port whose interface vanished is down (nothing is received from
//! it, what would be sent to it is dropped and counted as `port-down`) until an interface of
//! the same name is there again and the port is opened on it; an interface administratively
//! down or without a carrier makes the port down too (the kernel drops what is sent). Each
//! change is logged and reported as [`HalEvent::PortDown`] / [`HalEvent::PortUp`].

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamer_forwarding::pipeline::{
    DropReason, Frame, Outcome, Pipeline, ReplyTo, Settings, Verdict,
};
use roamer_forwarding::tables::{Limits, Tables};
use roamer_hal::{
    Backend, Capabilities, Counter, DataPlane, HalError, HalEvent, InjectTarget, Learned,
    LearnedMac, LearnedNeighbor, Notifier, PacketIo, PortId, PortLink, Punt, PuntReason,
    TableEntry, TableKind, TableOp, Trace, VlanId,
};
use tracing::{debug, info, warn};

use super::gso;
use super::port::{FrameSlot, GSO_FRAME_ROOM, GsoType, HEADROOM, Link, PortIo};
use super::sys::{self, BATCH};

/// Dynamic MAC addresses are forgotten after this long without traffic (NX-OS default 1800 s;
/// 300 s is the common switch default and what roamer uses).
pub const MAC_AGING_MS: u64 = 300_000;
/// How long the control plane waits for the data path to answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
const CONTROL_QUEUE: usize = 256;
/// Frames the control plane injects that the data path has not sent yet: deep enough for the
/// Map-Notifies and Map-Replies of a full round of punts (both punt queues) several times over.
pub const INJECT_QUEUE: usize = 16_384;
/// Most injected frames the data path sends per loop iteration (then it receives again).
const INJECT_BATCH: usize = 4_096;
/// Spent frame buffers kept for reuse, each way.
const SPARE_BUFFERS: usize = 8_192;
/// Buffers larger than this are not kept for reuse (a jumbo punt must not pin its memory).
const SPARE_BUFFER_MAX: usize = 2_048;
const EVENT_QUEUE: usize = 4096;
/// Punted frames (and, for urgent ones, the next constant) waiting for the control plane: deep
/// enough for the registrations of a second at 16k/s while the control plane is busy elsewhere.
const PUNT_QUEUE: usize = 4096;
/// Punts that keep the network up (HSRP, LISP registration and its acknowledgements, the
/// reliable-registration TCP) have their own queue: a flood of Map-Requests or of anything else
/// punted cannot push them out.
const URGENT_PUNT_QUEUE: usize = 16_384;
const TX_SLOTS: usize = 32;
/// Most pieces a packet is cut into in `pieces`: IPv4 fragments before encapsulation, the
/// segments of a decapsulated TCP packet for a port without segmentation offload (64 KiB at
/// the smallest MSS roamer accepts). Large segments cut for the LISP tunnel need none: they are
/// cut in their own receive slot.
const PIECES: usize = 128;
/// Frame room of a piece: a packet of a jumbo (9216-octet) MTU with its Ethernet header
/// (fragments for a tunnel over a port with a larger MTU are cut to this size).
const PIECE_ROOM: usize = 9216 + 64;
/// Ethernet header in front of a piece's IP packet.
const ETH_HLEN: usize = 14;
/// Most routed injections waiting for their next hop to resolve; a new one pushes out the oldest.
pub const GLEAN_QUEUE: usize = 64;
/// How long a routed injection waits for its next hop to resolve before it is dropped.
pub const GLEAN_HOLD_MS: u64 = 1000;
/// A waiting frame that gleans again sends an ARP request at most this often.
const GLEAN_REASK_MS: u64 = 200;
/// How often the neighbours that held transit packets wait for are looked at (each is asked
/// again at most once a second by the pipeline).
const HELD_REASK_CHECK_MS: u64 = 100;
/// Waiting frames are routed again at least this often while the data path is busy (at once
/// when a neighbour is learned or the tables change).
const GLEAN_RETRY_MS: u64 = 10;
/// How often every port's interface is looked at (vanished, back, carrier).
pub const LINK_CHECK_MS: u64 = 1000;

enum Control {
    Apply(Vec<TableOp>, Sender<Vec<Result<(), HalError>>>),
    Entries(TableKind, Sender<Vec<TableEntry>>),
    Snapshot(Sender<Snapshot>),
    Trace(PortId, Option<VlanId>, Vec<u8>, Sender<Trace>),
    Notify(Notifier),
    Attach(PortId, Box<dyn PortIo>, Sender<Result<(), HalError>>),
    Detach(PortId, Sender<Result<(), HalError>>),
}

/// What the data path learned and counted, with the forwarding core's own types (for this
/// crate's tests); the HAL's [`DataPlane::learned`] is built from it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (VLAN, MAC, port, static).
    pub macs: Vec<(VlanId, roamer_hal::Mac, PortId, bool)>,
    /// (interface, address, MAC, age in ms).
    pub neighbors: Vec<(
        roamer_hal::L3Interface,
        std::net::IpAddr,
        roamer_hal::Mac,
        u64,
    )>,
    pub counters: roamer_forwarding::pipeline::Counters,
    /// The ports whose interface is not up, with what it is (gone, administratively down, no
    /// carrier), as the last check found it; every other port is up.
    pub ports_down: Vec<(PortId, Link)>,
    /// Every port with its link as the last check found it.
    pub links: Vec<(PortId, Link)>,
    /// Age of each dynamic MAC address in ms, by (VLAN, MAC).
    pub mac_ages: HashMap<(VlanId, roamer_hal::Mac), u64>,
}

/// Counters of what the channels between control plane and data path dropped.
#[derive(Debug, Default)]
pub struct ChannelDrops {
    pub events: AtomicU64,
    pub punts: AtomicU64,
    pub send_full: AtomicU64,
    /// Injected frames refused because the inject queue was full (shown as drop
    /// `inject-queue-full`).
    pub inject_queue_full: AtomicU64,
    /// Routed injections pushed out of the full awaiting-resolution queue (the oldest goes);
    /// also in [`Snapshot::counters`] as drop reason `glean-queue-full`.
    pub glean_queue_full: AtomicU64,
    /// Routed injections whose next hop did not resolve within [`GLEAN_HOLD_MS`]; also in
    /// [`Snapshot::counters`] as drop reason `glean-expired`.
    pub glean_expired: AtomicU64,
    /// IPv4 packets without DF fragmented before LISP encapsulation (shown as `fragmented`).
    pub fragmented: AtomicU64,
    /// Packets that should have been fragmented but could not be (IP options, malformed;
    /// shown as drop `fragment-failed`).
    pub fragment_failed: AtomicU64,
    /// Large segments cut to fit the LISP tunnel before encapsulation (shown as `segmented`).
    pub segmented: AtomicU64,
    /// Large segments that should have been cut before encapsulation but could not be
    /// (malformed headers, too many pieces; shown as drop `segment-failed`).
    pub segment_failed: AtomicU64,
    /// Decapsulated TCP packets larger than their egress port's MTU cut in software because
    /// the port takes no segmentation offload (shown as `tcp-segmented-in-software`).
    pub tcp_segmented_in_software: AtomicU64,
    /// Decapsulated TCP packets larger than their egress port's MTU that could be neither
    /// offloaded nor cut (malformed headers; shown as drop `tcp-segment-failed`).
    pub tcp_segment_failed: AtomicU64,
    /// Decapsulated TCP packets appended to the GSO frame of the packet before them (the next
    /// piece of the same stream, the last piece of a segment too; shown as `tcp-coalesced`).
    pub tcp_coalesced: AtomicU64,
    /// Encapsulated pieces of a cut large segment appended to the UDP segmentation-offload
    /// frame of the piece before them (shown as `udp-coalesced`).
    pub udp_coalesced: AtomicU64,
    /// Frames not sent because their egress port's interface was gone (deleted, not re-created
    /// yet); also in [`Snapshot::counters`] as drop reason `port-down`.
    pub port_down: AtomicU64,
}

/// The backend handle the control plane holds.
pub struct SoftwareBackend {
    link: ControlLink,
    events: Receiver<HalEvent>,
    punts: Receiver<Punt>,
    urgent: Receiver<Punt>,
    injects: SyncSender<(InjectTarget, Vec<u8>)>,
    /// Buffers of injected frames the data path has sent, for the next injections.
    spent_injects: Receiver<Vec<u8>>,
    /// Buffers of handled punts, back to the data path.
    spent_punts: SyncSender<Vec<u8>>,
    /// A wake-up for injected frames is pending (the data path clears it before it drains).
    inject_wake: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub drops: Arc<ChannelDrops>,
}

impl std::fmt::Debug for SoftwareBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareBackend").finish_non_exhaustive()
    }
}

impl SoftwareBackend {
    /// Starts the data path over `ports`.
    pub fn start(
        ports: Vec<(PortId, Box<dyn PortIo>)>,
        limits: Limits,
    ) -> std::io::Result<SoftwareBackend> {
        let (control_tx, control_rx) = mpsc::sync_channel(CONTROL_QUEUE);
        let (event_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
        let (punt_tx, punts) = mpsc::sync_channel(PUNT_QUEUE);
        let (urgent_tx, urgent) = mpsc::sync_channel(URGENT_PUNT_QUEUE);
        let (inject_tx, inject_rx) = mpsc::sync_channel(INJECT_QUEUE);
        let (spent_injects_tx, spent_injects) = mpsc::sync_channel(SPARE_BUFFERS);
        let (spent_punts, spent_punts_rx) = mpsc::sync_channel(SPARE_BUFFERS);
        let inject_wake = Arc::new(AtomicBool::new(false));
        let (wake, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(ChannelDrops::default());
        let mut dp = Datapath {
            pipeline: Pipeline::new(Tables::new(limits), Settings::default()),
            index: ports
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (*id, i))
                .collect(),
            tx: ports.iter().map(|_| TxQueue::new()).collect(),
            links: vec![Link::Up; ports.len()],
            ports,
            rx: FrameSlot::batch(BATCH, GSO_FRAME_ROOM),
            pieces: FrameSlot::batch(PIECES, PIECE_ROOM),
            cutting: false,
            control: control_rx,
            events: event_tx,
            punts: punt_tx,
            urgent: urgent_tx,
            injects: inject_rx,
            spent_injects: spent_injects_tx,
            spent_punts: spent_punts_rx,
            inject_wake: inject_wake.clone(),
            notifier: None,
            queued: false,
            wake: wake_rx,
            stop: stop.clone(),
            drops: drops.clone(),
            epoch: Instant::now(),
            event_buf: Vec::with_capacity(256),
            gleaned: VecDeque::with_capacity(GLEAN_QUEUE),
            gleaned_neighbors: 0,
            gleaned_retry_ms: 0,
            scratch: Vec::new(),
            held_reask_ms: 0,
            ports_changed: false,
        };
        let thread = std::thread::Builder::new()
            .name("roamer-datapath".into())
            .spawn(move || dp.run())?;
        Ok(SoftwareBackend {
            link: ControlLink {
                control: control_tx,
                wake,
            },
            events,
            punts,
            urgent,
            injects: inject_tx,
            spent_injects,
            spent_punts,
            inject_wake,
            stop,
            thread: Some(thread),
            drops,
        })
    }

    fn send(&self, msg: Control) -> Result<(), HalError> {
        self.link.send(msg)
    }

    /// Learned MAC addresses and neighbours, the pipeline counters and the ports' links.
    pub fn snapshot(&self) -> Result<Snapshot, HalError> {
        self.link.snapshot()
    }
}

/// The control channel to the data path and its wake-up: what a request needs, cloneable for
/// a reader that asks from another thread (`show`, off the daemon's loop).
struct ControlLink {
    control: SyncSender<Control>,
    wake: UnixStream,
}

impl ControlLink {
    fn send(&self, msg: Control) -> Result<(), HalError> {
        let operation = msg.operation();
        self.control
            .try_send(msg)
            .map_err(|e| HalError::NotAnswering {
                backend: "software".into(),
                operation,
                detail: match e {
                    TrySendError::Full(_) => "has a full control queue",
                    TrySendError::Disconnected(_) => "has stopped",
                },
            })?;
        // Wake the data path out of poll(); a full wake socket already has a wake-up pending.
        let _ = (&self.wake).write(&[1]);
        Ok(())
    }

    fn snapshot(&self) -> Result<Snapshot, HalError> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Snapshot(tx))?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding("learned"))
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Entries(kind, tx))?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding("entries"))
    }

    fn try_clone(&self) -> std::io::Result<ControlLink> {
        Ok(ControlLink {
            control: self.control.clone(),
            wake: self.wake.try_clone()?,
        })
    }
}

/// `show`'s view of the software data path: its own round trips, no lock on the backend.
struct SoftwareReader(ControlLink);

impl roamer_hal::DataPlaneReader for SoftwareReader {
    fn learned(&self) -> Result<Learned, HalError> {
        self.0.snapshot().map(|s| learned_of(&s))
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        self.0.entries(kind)
    }
}

impl Control {
    fn operation(&self) -> &'static str {
        match self {
            Control::Apply(..) => "apply",
            Control::Entries(..) => "entries",
            Control::Snapshot(..) => "learned",
            Control::Trace(..) => "trace",
            Control::Notify(..) => "set notifier",
            Control::Attach(..) => "attach port",
            Control::Detach(..) => "detach port",
        }
    }
}

fn not_responding(operation: &'static str) -> HalError {
    HalError::NotAnswering {
        backend: "software".into(),
        operation,
        detail: "did not answer within 5 s",
    }
}

impl Drop for SoftwareBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&self.link.wake).write(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Backend for SoftwareBackend {
    fn name(&self) -> &str {
        "software"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::everything()
    }

    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        let (tx, rx) = mpsc::channel();
        let sent = self.send(Control::Apply(batch.to_vec(), tx));
        match sent.and_then(|()| {
            rx.recv_timeout(CONTROL_TIMEOUT)
                .map_err(|_| not_responding("apply"))
        }) {
            Ok(results) => results,
            Err(e) => batch
                .iter()
                .map(|_| match &e {
                    HalError::NotAnswering {
                        backend,
                        operation,
                        detail,
                    } => Err(HalError::NotAnswering {
                        backend: backend.clone(),
                        operation,
                        detail,
                    }),
                    other => Err(HalError::Backend {
                        backend: "software".into(),
                        detail: other.to_string(),
                    }),
                })
                .collect(),
        }
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        self.link.entries(kind)
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        out.extend(self.events.try_iter());
    }
}

impl PacketIo for SoftwareBackend {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        let mut buf = self
            .spent_injects
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(frame.len().max(256)));
        buf.clear();
        buf.extend_from_slice(frame);
        match self.injects.try_send((target, buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.drops.inject_queue_full.fetch_add(1, Ordering::Relaxed);
                return Err(HalError::NotAnswering {
                    backend: "software".into(),
                    operation: "inject",
                    detail: "has a full inject queue (counted as drop inject-queue-full)",
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(HalError::NotAnswering {
                    backend: "software".into(),
                    operation: "inject",
                    detail: "has stopped",
                });
            }
        }
        // One wake-up per burst: the data path clears the flag before it drains the queue.
        if !self.inject_wake.swap(true, Ordering::SeqCst) {
            let _ = (&self.link.wake).write(&[1]);
        }
        Ok(())
    }

    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        out.extend(self.urgent.try_iter());
        out.extend(self.punts.try_iter());
    }

    fn recycle_punts(&mut self, punts: &mut Vec<Punt>) {
        for p in punts.drain(..) {
            if p.frame.capacity() <= SPARE_BUFFER_MAX {
                let _ = self.spent_punts.try_send(p.frame);
            }
        }
    }
}

impl SoftwareBackend {
    /// Sends `msg` and waits for the data path's answer on `rx`.
    fn ask<T>(&self, msg: Control, rx: &mpsc::Receiver<T>) -> Result<T, HalError> {
        let operation = msg.operation();
        self.send(msg)?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding(operation))
    }
}

impl DataPlane for SoftwareBackend {
    /// The port is opened here (a TAP created, an AF_PACKET socket bound), off the data path,
    /// then handed to the data path, which polls it from its next round.
    fn attach_port(
        &mut self,
        spec: &roamer_hal::PortAttach,
    ) -> Result<roamer_hal::PortIoInfo, HalError> {
        let port_spec = crate::PortSpec {
            id: spec.port,
            name: spec.name.clone(),
            device: spec.device.clone(),
            io: spec.io,
        };
        let (opened, info) = crate::open::open_port(&port_spec).map_err(|e| HalError::Backend {
            backend: "software".into(),
            detail: format!("{} ({}): {e}", spec.name, spec.device),
        })?;
        let (tx, rx) = mpsc::channel();
        self.ask(Control::Attach(spec.port, opened, tx), &rx)??;
        Ok(info)
    }

    fn detach_port(&mut self, port: PortId) -> Result<(), HalError> {
        let (tx, rx) = mpsc::channel();
        self.ask(Control::Detach(port, tx), &rx)?
    }

    fn learned(&self) -> Result<Learned, HalError> {
        self.snapshot().map(|s| learned_of(&s))
    }

    fn reader(&self) -> Box<dyn roamer_hal::DataPlaneReader> {
        match self.link.try_clone() {
            Ok(link) => Box::new(SoftwareReader(link)),
            // No second wake-up socket (out of descriptors): answer from a copy taken now.
            Err(_) => Box::new(roamer_hal::CopiedReader::of(self)),
        }
    }

    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Trace(port, tag, frame, tx))?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding("trace"))
    }

    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        self.send(Control::Notify(notify))?;
        Ok(true)
    }
}

/// The HAL's view of a data-path snapshot.
fn learned_of(s: &Snapshot) -> Learned {
    Learned {
        macs: s
            .macs
            .iter()
            .map(|(vlan, mac, port, is_static)| LearnedMac {
                vlan: *vlan,
                mac: *mac,
                port: *port,
                is_static: *is_static,
                age_ms: if *is_static {
                    0
                } else {
                    s.mac_ages.get(&(*vlan, *mac)).copied().unwrap_or(0)
                },
            })
            .collect(),
        neighbors: s
            .neighbors
            .iter()
            .map(|(iface, ip, mac, age_ms)| LearnedNeighbor {
                iface: *iface,
                ip: *ip,
                mac: *mac,
                age_ms: *age_ms,
            })
            .collect(),
        counters: counter_list(&s.counters),
        links: s
            .links
            .iter()
            .map(|(port, link)| PortLink {
                port: *port,
                link: link.state(),
            })
            .collect(),
    }
}

/// The pipeline's counters as the HAL's named list, in the order `show forwarding counters`
/// prints them; drop reasons follow, sorted.
fn counter_list(c: &roamer_forwarding::pipeline::Counters) -> Vec<Counter> {
    let mut out: Vec<Counter> = [
        ("rx", c.rx),
        ("bridged", c.bridged),
        ("flooded", c.flooded),
        ("routed", c.routed),
        ("originated", c.originated),
        ("fragmented", c.fragmented),
        ("segmented", c.segmented),
        ("tcp-segmented", c.tcp_segmented),
        ("tcp-segmented-in-software", c.tcp_segmented_in_software),
        ("tcp-coalesced", c.tcp_coalesced),
        ("udp-coalesced", c.udp_coalesced),
        ("udp-segments-received", c.udp_segments_received),
        ("lisp-encapsulated", c.encapsulated),
        ("lisp-decapsulated", c.decapsulated),
        ("punted", c.punted),
        ("replies", c.replies),
        ("events-dropped", c.events_dropped),
        ("link-local-control", c.link_local_control),
        ("held", c.held),
        ("held-released", c.released),
        ("lisp-relayed-away", c.relayed_away),
    ]
    .into_iter()
    .map(|(name, value)| Counter {
        name: name.to_string(),
        value,
    })
    .collect();
    let mut drops: Vec<(&&str, &u64)> = c.drops.iter().collect();
    drops.sort();
    out.extend(drops.into_iter().map(|(reason, n)| Counter {
        name: format!("drop {reason}"),
        value: *n,
    }));
    out
}

mod datapath;
#[cfg(test)]
mod tests;

use datapath::*;
