//! The `software` backend: roamer's forwarding core over real ports, on a data-path thread.
//!
//! The data path owns the pipeline and the ports: it receives a batch, runs every frame through
//! the pipeline, and sends batches out. The control plane talks to it through bounded channels:
//! table operations are applied between batches (and answered), events and punted frames come
//! back; a full channel drops and counts, it never blocks the data path.
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
    Backend, Capabilities, HalError, HalEvent, InjectTarget, PacketIo, PortId, Punt, PuntReason,
    TableEntry, TableKind, TableOp, VlanId,
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
const EVENT_QUEUE: usize = 4096;
const PUNT_QUEUE: usize = 1024;
/// Punts that keep the network up (HSRP, LISP registration and its acknowledgements, the
/// reliable-registration TCP) have their own queue: a flood of Map-Requests or of anything else
/// punted cannot push them out.
const URGENT_PUNT_QUEUE: usize = 256;
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
    Learned(Sender<Learned>),
    Inject(InjectTarget, Vec<u8>),
    Trace(PortId, Option<VlanId>, Vec<u8>, Sender<TraceResult>),
    Notify(Notifier),
}

/// Called by the data path after it queued events or punts, so the control plane can act at
/// once instead of at its next poll.
pub type Notifier = Arc<dyn Fn() + Send + Sync>;

/// What `trace` reports: the verdict, whether a reply frame was built, and each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceResult {
    pub verdict: String,
    pub reply: Option<String>,
    pub steps: Vec<String>,
}

/// What the data path learned, for `show mac address-table` and `show ip arp`.
#[derive(Debug, Clone, Default)]
pub struct Learned {
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
}

/// Counters of what the channels between control plane and data path dropped.
#[derive(Debug, Default)]
pub struct ChannelDrops {
    pub events: AtomicU64,
    pub punts: AtomicU64,
    pub send_full: AtomicU64,
    /// Routed injections pushed out of the full awaiting-resolution queue (the oldest goes);
    /// also in [`Learned::counters`] as drop reason `glean-queue-full`.
    pub glean_queue_full: AtomicU64,
    /// Routed injections whose next hop did not resolve within [`GLEAN_HOLD_MS`]; also in
    /// [`Learned::counters`] as drop reason `glean-expired`.
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
    /// yet); also in [`Learned::counters`] as drop reason `port-down`.
    pub port_down: AtomicU64,
}

/// The backend handle the control plane holds.
pub struct SoftwareBackend {
    control: SyncSender<Control>,
    wake: UnixStream,
    events: Receiver<HalEvent>,
    punts: Receiver<Punt>,
    urgent: Receiver<Punt>,
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
        };
        let thread = std::thread::Builder::new()
            .name("roamer-datapath".into())
            .spawn(move || dp.run())?;
        Ok(SoftwareBackend {
            control: control_tx,
            wake,
            events,
            punts,
            urgent,
            stop,
            thread: Some(thread),
            drops,
        })
    }

    /// Has the data path call `notifier` whenever it queued events or punts.
    pub fn set_notifier(&self, notifier: Notifier) -> Result<(), HalError> {
        self.send(Control::Notify(notifier))
    }

    fn send(&self, msg: Control) -> Result<(), HalError> {
        self.control.try_send(msg).map_err(|e| HalError::Backend {
            backend: "software".into(),
            detail: match e {
                TrySendError::Full(_) => "the data path's control queue is full".into(),
                TrySendError::Disconnected(_) => "the data path has stopped".into(),
            },
        })?;
        // Wake the data path out of poll(); a full wake socket already has a wake-up pending.
        let _ = (&self.wake).write(&[1]);
        Ok(())
    }

    /// Runs a copy of `frame` through the pipeline as if received on `port`; learns nothing.
    pub fn trace(
        &self,
        port: PortId,
        tag: Option<VlanId>,
        frame: Vec<u8>,
    ) -> Result<TraceResult, HalError> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Trace(port, tag, frame, tx))?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding())
    }

    /// Learned MAC addresses and neighbours, and the pipeline counters.
    pub fn learned(&self) -> Result<Learned, HalError> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Learned(tx))?;
        rx.recv_timeout(CONTROL_TIMEOUT)
            .map_err(|_| not_responding())
    }
}

fn not_responding() -> HalError {
    HalError::Backend {
        backend: "software".into(),
        detail: "the data path did not answer".into(),
    }
}

impl Drop for SoftwareBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&self.wake).write(&[1]);
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
                .map_err(|_| not_responding())
        }) {
            Ok(results) => results,
            Err(e) => batch
                .iter()
                .map(|_| {
                    Err(HalError::Backend {
                        backend: "software".into(),
                        detail: e.to_string(),
                    })
                })
                .collect(),
        }
    }

    fn entries(&self, kind: TableKind) -> Vec<TableEntry> {
        let (tx, rx) = mpsc::channel();
        if self.send(Control::Entries(kind, tx)).is_err() {
            return Vec::new();
        }
        rx.recv_timeout(CONTROL_TIMEOUT).unwrap_or_default()
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        out.extend(self.events.try_iter());
    }
}

impl PacketIo for SoftwareBackend {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        self.send(Control::Inject(target, frame.to_vec()))
    }

    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        out.extend(self.urgent.try_iter());
        out.extend(self.punts.try_iter());
    }
}

/// HSRP hellos, LISP Map-Register / Map-Notify / Map-Notify-Ack (UDP 4342) and TCP 4342.
fn is_urgent(punt: &Punt) -> bool {
    match punt.reason {
        PuntReason::Hsrp => true,
        PuntReason::LispControl | PuntReason::ForUs => {
            let f = &punt.frame;
            if f.get(12..14) != Some(&[0x08, 0x00]) {
                return false;
            }
            let ihl = usize::from(f.get(14).map_or(0, |b| b & 0x0f)) * 4;
            let l4 = 14 + ihl;
            let port = |at: usize| f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            match f.get(23) {
                Some(6) => port(l4) == Some(4342) || port(l4 + 2) == Some(4342),
                Some(17) if port(l4 + 2) == Some(4342) => {
                    matches!(f.get(l4 + 8).map(|b| b >> 4), Some(3..=5))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Frames waiting to leave one port.
struct TxQueue {
    slots: Vec<FrameSlot>,
    used: usize,
    /// The last queued frame is a GSO frame the data path made that the next packet of the
    /// flow may still be appended to: TCP (a decapsulated packet too large for the port) or
    /// UDP (the LISP packets of one cut large segment).
    open: bool,
}

impl TxQueue {
    fn new() -> TxQueue {
        TxQueue {
            slots: FrameSlot::batch(TX_SLOTS, GSO_FRAME_ROOM),
            used: 0,
            open: false,
        }
    }
}

/// Where a frame being forwarded sits: a received slot, or a piece of a cut large segment.
#[derive(Clone, Copy)]
enum Src {
    Rx(usize),
    Piece(usize),
}

/// A routed injection waiting for its next hop to resolve.
struct Gleaned {
    /// As the control plane handed it over.
    frame: Vec<u8>,
    /// Dropped (and counted) once the clock reaches this.
    deadline_ms: u64,
    /// When this frame last sent an ARP request.
    asked_ms: Option<u64>,
}

/// What became of a routed injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Originated {
    /// Sent, or dropped for good (the pipeline counted the drop).
    Done,
    /// The next hop is not resolved; `asked` says whether an ARP request left.
    Gleaned { asked: bool },
}

struct Datapath {
    pipeline: Pipeline,
    ports: Vec<(PortId, Box<dyn PortIo>)>,
    index: HashMap<PortId, usize>,
    tx: Vec<TxQueue>,
    /// Per port, its interface as the last check found it (taken as up at start).
    links: Vec<Link>,
    rx: Vec<FrameSlot>,
    /// Pieces of a packet cut for a path that cannot take it whole (fragments, segments for a
    /// port without offload).
    pieces: Vec<FrameSlot>,
    /// The frame being forwarded is a piece of a cut large segment (see
    /// [`Datapath::enqueue_datagram`]).
    cutting: bool,
    control: Receiver<Control>,
    events: SyncSender<HalEvent>,
    punts: SyncSender<Punt>,
    urgent: SyncSender<Punt>,
    notifier: Option<Notifier>,
    /// Something was queued for the control plane since the notifier last ran.
    queued: bool,
    wake: UnixStream,
    stop: Arc<AtomicBool>,
    drops: Arc<ChannelDrops>,
    epoch: Instant,
    event_buf: Vec<HalEvent>,
    /// Routed injections that gleaned, oldest first (so also in deadline order).
    gleaned: VecDeque<Gleaned>,
    /// How many neighbours the tables held when `gleaned` was last routed again.
    gleaned_neighbors: usize,
    /// When `gleaned` is routed again even if no neighbour was learned.
    gleaned_retry_ms: u64,
    /// Headroom and frame of a routed injection, reused.
    scratch: Vec<u8>,
    /// When the neighbours that held packets wait for are looked at again.
    held_reask_ms: u64,
}

impl Datapath {
    fn run(&mut self) {
        self.read_mtus();
        let mut fds: Vec<i32> = self.ports.iter().map(|(_, p)| p.raw_fd()).collect();
        fds.push(self.wake.as_raw_fd());
        let pollable = fds.len() <= 8;
        let mut ready = vec![true; fds.len()];
        let mut last_aging = 0u64;
        // A port whose interface is not there yet is down from the start, not after a second.
        self.check_links(&mut fds);
        let mut last_link_check = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let mut moved = 0;
            let now_ms = self.epoch.elapsed().as_millis() as u64;
            for (i, is_ready) in ready.iter().take(self.ports.len()).enumerate() {
                if *is_ready {
                    moved += self.receive(i, now_ms);
                }
            }
            self.flush();
            self.control_messages(now_ms);
            if self.pipeline.held() > 0 {
                self.release_held(now_ms);
            }
            if !self.gleaned.is_empty() {
                self.retry_gleaned(now_ms);
            }
            if now_ms.saturating_sub(last_link_check) >= LINK_CHECK_MS {
                last_link_check = now_ms;
                self.check_links(&mut fds);
                self.read_mtus();
            }
            self.pipeline.drain_events(&mut self.event_buf);
            for e in self.event_buf.drain(..) {
                if self.events.try_send(e).is_err() {
                    self.drops.events.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.queued = true;
                }
            }
            if self.queued {
                self.queued = false;
                if let Some(n) = &self.notifier {
                    n();
                }
            }
            if now_ms.saturating_sub(last_aging) >= 1000 {
                last_aging = now_ms;
                for (vlan, mac) in self.pipeline.tables.age_fdb(now_ms, MAC_AGING_MS) {
                    let _ = self.events.try_send(HalEvent::MacAged { vlan, mac });
                }
            }
            if moved > 0 {
                ready.iter_mut().for_each(|r| *r = true);
                continue;
            }
            ready.iter_mut().for_each(|r| *r = false);
            if pollable {
                if let Err(e) = sys::poll_fds(&fds, false, &mut ready, 100) {
                    warn!(error = %e, "poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            } else {
                std::thread::sleep(Duration::from_millis(1));
                ready.iter_mut().for_each(|r| *r = true);
            }
            let mut sink = [0u8; 64];
            while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        }
        debug!("data path stopped");
    }

    /// Asks every port about its interface (see [`PortIo::check_link`]; a vanished interface
    /// that is back is opened again there) and acts on each change: the poll list follows the
    /// port's fd, frames waiting for a port whose interface is gone are dropped, and the change
    /// is logged and reported.
    fn check_links(&mut self, fds: &mut [RawFd]) {
        for (i, fd) in fds.iter_mut().enumerate().take(self.ports.len()) {
            let check = self.ports[i].1.check_link();
            let (was, now) = (self.links[i], check.link);
            if now == Link::Unwatched || (now == was && !check.reopened) {
                continue;
            }
            self.links[i] = now;
            let port = self.ports[i].0;
            let device = self.ports[i].1.name();
            *fd = if now == Link::Gone {
                -1
            } else {
                self.ports[i].1.raw_fd()
            };
            let went_down = was.is_up() && (!now.is_up() || check.reopened);
            if went_down {
                let reason = if now.is_up() {
                    "interface replaced"
                } else {
                    now.as_str()
                };
                info!(%port, %device, reason, "port down");
            }
            if now.is_up() {
                info!(%port, %device, reopened = check.reopened, "port up");
            } else if !went_down {
                debug!(%port, %device, reason = now.as_str(), "port still down");
            }
            if now == Link::Gone {
                let q = &mut self.tx[i];
                for s in &mut q.slots[..q.used] {
                    s.reset();
                }
                self.drops
                    .port_down
                    .fetch_add(q.used as u64, Ordering::Relaxed);
                q.used = 0;
                q.open = false;
            }
            if went_down {
                self.event(HalEvent::PortDown(port));
            }
            if now.is_up() {
                self.event(HalEvent::PortUp(port));
            }
        }
    }

    /// Tells the pipeline each port's MTU as the interface has it now (it sizes the LISP tunnel
    /// and the TCP segments of decapsulated packets); a port whose interface is gone keeps the
    /// last one.
    fn read_mtus(&mut self) {
        for (i, (id, port)) in self.ports.iter().enumerate() {
            if self.links[i] == Link::Gone {
                continue;
            }
            let mtu = port.mtu();
            if self.pipeline.port_mtu(*id).map(u32::from) != Some(mtu.min(u32::from(u16::MAX))) {
                debug!(port = %id, device = %port.name(), mtu, "port MTU");
                self.pipeline.set_port_mtu(*id, mtu);
            }
        }
    }

    /// Queues an event for the control plane (a full queue drops and counts it).
    fn event(&mut self, e: HalEvent) {
        if self.events.try_send(e).is_err() {
            self.drops.events.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queued = true;
        }
    }

    /// One batch from port `i` through the pipeline; returns how many frames came in.
    fn receive(&mut self, i: usize, now_ms: u64) -> usize {
        if self.links[i] == Link::Gone {
            return 0;
        }
        let port = self.ports[i].0;
        let n = match self.ports[i].1.recv_batch(&mut self.rx) {
            Ok(n) => n,
            Err(e) => {
                debug!(%port, error = %e, "receive failed");
                return 0;
            }
        };
        self.pipeline
            .warm(self.rx.iter().take(n).map(FrameSlot::frame));
        for k in 0..n {
            let tag = self.rx[k].vlan.and_then(|v| VlanId::new(v).ok());
            match self.forward(port, tag, Src::Rx(k), now_ms) {
                Verdict::Segment { max_ip_len } => {
                    self.cut_and_forward(port, tag, k, usize::from(max_ip_len), now_ms)
                }
                Verdict::Fragment { max_ip_len } => {
                    self.fragment_and_forward(port, tag, k, usize::from(max_ip_len), now_ms)
                }
                _ => {}
            }
        }
        n
    }

    /// Runs one frame through the pipeline and acts on the verdict.
    fn forward(&mut self, port: PortId, tag: Option<VlanId>, src: Src, now_ms: u64) -> Verdict {
        let slot = match src {
            Src::Rx(k) => &mut self.rx[k],
            Src::Piece(j) => &mut self.pieces[j],
        };
        let large = slot.gso.is_some_and(|g| g.gso_type != GsoType::None);
        let partial = slot
            .gso
            .and_then(|g| g.csum)
            .map(|(first, offset)| (slot.start + usize::from(first), usize::from(offset)));
        let mut frame = Frame {
            buf: &mut slot.buf,
            start: slot.start,
            len: slot.len,
            large,
            partial_csum: partial,
        };
        let out = self.pipeline.process(port, tag, &mut frame, now_ms);
        let (start, len) = (frame.start, frame.len);
        // Encapsulation completed the checksum: nothing is left for the offload to do.
        if partial.is_some()
            && frame.partial_csum.is_none()
            && let Some(g) = slot.gso.as_mut()
        {
            g.csum = None;
            if g.gso_type == GsoType::None {
                slot.gso = None;
            }
        }
        // The pipeline never moves the packet's bytes: it strips a tag, adds or takes off a
        // LISP encapsulation by moving the frame's start. Offload offsets (a partial checksum)
        // count from the start, so they move the other way and keep pointing at the same
        // header (the inner TCP header of an encapsulated packet, the decapsulated packet's).
        if start != slot.start
            && let Some(g) = slot.gso.as_mut()
        {
            g.shift(slot.start as i32 - start as i32);
        }
        slot.start = start;
        slot.len = len;
        self.act(port, tag, src, out)
    }

    /// Sends the pipeline's reply and acts on the verdict for the frame in `src` (which came in
    /// on `port` with `tag`).
    fn act(&mut self, port: PortId, tag: Option<VlanId>, src: Src, out: Outcome) -> Verdict {
        if let Some(to) = out.reply {
            self.send_reply(to);
        }
        match out.verdict {
            Verdict::Forward {
                port: out_port,
                tag,
            } => {
                if self.cutting {
                    self.enqueue_datagram(out_port, src, tag);
                } else {
                    self.enqueue(out_port, src, tag);
                }
            }
            Verdict::ForwardTcpSegments {
                port: out_port,
                tag,
                mss,
            } => self.enqueue_tcp_segments(out_port, src, tag, mss),
            Verdict::Flood { vlan, except } => self.flood(vlan, except, src),
            Verdict::FloodAndPunt {
                vlan,
                except,
                reason,
            } => {
                self.flood(vlan, except, src);
                self.punt(port, Some(vlan), reason, src);
            }
            Verdict::Punt(reason) => self.punt(port, tag, reason, src),
            Verdict::Consumed
            | Verdict::Held
            | Verdict::Drop(_)
            | Verdict::Segment { .. }
            | Verdict::Fragment { .. } => {}
        }
        out.verdict
    }

    /// Sends on the packets the pipeline held for a map-cache entry or a neighbour that has
    /// come (and lets it drop those held too long). Between batches: the first receive slot is
    /// free to carry each one through the normal encapsulation or rewrite.
    fn release_held(&mut self, now_ms: u64) {
        if now_ms >= self.held_reask_ms {
            // Neighbours that held packets wait for are asked again once a second.
            self.held_reask_ms = now_ms + HELD_REASK_CHECK_MS;
            while let Some(to) = self.pipeline.reask_held(now_ms) {
                self.send_reply(to);
            }
        }
        if !self.pipeline.poll_held(now_ms) {
            return;
        }
        loop {
            let slot = &mut self.rx[0];
            slot.gso = None;
            slot.vlan = None;
            let Some(r) = self
                .pipeline
                .resume_released(&mut slot.buf, HEADROOM, now_ms)
            else {
                break;
            };
            slot.start = r.start;
            slot.len = r.len;
            // A held frame is never a large segment; anything else was done in `act`.
            if let Verdict::Fragment { max_ip_len } = self.act(r.port, r.tag, Src::Rx(0), r.outcome)
            {
                self.fragment_and_forward(r.port, r.tag, 0, usize::from(max_ip_len), now_ms);
            }
        }
        self.flush();
    }

    /// Fragments the IPv4 packet in rx slot `k` (no DF, too big to encapsulate) and forwards
    /// each fragment; they fit now.
    fn fragment_and_forward(
        &mut self,
        port: PortId,
        tag: Option<VlanId>,
        k: usize,
        max_ip_len: usize,
        now_ms: u64,
    ) {
        // Fragments fit the pieces' room (a tunnel port with an MTU beyond it gets smaller ones).
        let max_ip_len = max_ip_len.min(PIECE_ROOM - ETH_HLEN);
        let cut = self.rx[k]
            .complete_checksum()
            .map_err(|_| gso::SegmentError::Malformed)
            .and_then(|()| gso::fragment_ipv4(&self.rx[k], max_ip_len, &mut self.pieces));
        let n = match cut {
            Ok(n) => n,
            Err(e) => {
                debug!(%port, error = ?e, "packet could not be fragmented");
                self.drops.fragment_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.drops.fragmented.fetch_add(1, Ordering::Relaxed);
        for j in 0..n {
            self.forward(port, tag, Src::Piece(j), now_ms);
        }
    }

    /// Cuts the large segment in rx slot `k` into pieces whose IP packets fit `max_ip_len` (as
    /// many TCP segments' worth each as fit) and forwards each: each becomes one LISP packet.
    /// The pieces are made one after the other in the slot itself (no copy); each is forwarded
    /// (copied into an egress queue) before the next overwrites the end of its payload.
    fn cut_and_forward(
        &mut self,
        port: PortId,
        tag: Option<VlanId>,
        k: usize,
        max_ip_len: usize,
        now_ms: u64,
    ) {
        // u16::MAX: a received train of LISP packets cut to be decapsulated here.
        let to_decapsulate = max_ip_len == usize::from(u16::MAX);
        let mut cut = match gso::InPlaceCut::new(&self.rx[k], max_ip_len) {
            Ok(cut) if to_decapsulate => cut.without_udp_checksum(),
            Ok(cut) => cut,
            Err(e) => {
                debug!(%port, error = ?e, "large segment could not be cut");
                self.drops.segment_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        // The pipeline counts the trains it had cut.
        if !to_decapsulate {
            self.drops.segmented.fetch_add(1, Ordering::Relaxed);
        }
        while cut.next_piece(&mut self.rx[k]) {
            self.cutting = true;
            let verdict = self.forward(port, tag, Src::Rx(k), now_ms);
            self.cutting = false;
            // A piece of one segment size that still does not fit and has no DF.
            if let Verdict::Fragment { max_ip_len } = verdict {
                self.fragment_and_forward(port, tag, k, usize::from(max_ip_len), now_ms);
            }
        }
    }

    /// Queues a piece of a cut large segment: an encapsulated piece is appended to the frame
    /// before it in the queue of `port` when that is a piece of the same tunnel flow (one UDP
    /// segmentation-offload frame, which the kernel or the NIC cuts into the LISP packets
    /// again, and which crosses a veth to another switch whole); a decapsulated TCP piece small
    /// enough for the port (the last of a segment) joins the TCP GSO frame of the pieces
    /// before it; anything else is queued on its own.
    fn enqueue_datagram(&mut self, port: PortId, src: Src, tag: Option<VlanId>) {
        let Some(&i) = self.index.get(&port) else {
            return;
        };
        let features = self.ports[i].1.features();
        let q = &mut self.tx[i];
        let from = match src {
            Src::Rx(k) => &self.rx[k],
            Src::Piece(j) => &self.pieces[j],
        };
        if features.vnet_hdr
            && features.tso
            && q.open
            && q.used > 0
            && q.slots[q.used - 1].vlan == tag.map(VlanId::get)
            && q.slots[q.used - 1]
                .gso
                .is_some_and(|g| matches!(g.gso_type, GsoType::TcpV4 | GsoType::TcpV6))
            && gso::append_tcp(&mut q.slots[q.used - 1], from.frame()).is_ok()
        {
            self.drops.tcp_coalesced.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !(features.vnet_hdr && features.uso) {
            self.enqueue(port, src, tag);
            return;
        }
        if q.open
            && q.used > 0
            && from.gso.is_none()
            && q.slots[q.used - 1].vlan == tag.map(VlanId::get)
            && gso::append_udp(&mut q.slots[q.used - 1], from.frame()).is_ok()
        {
            self.drops.udp_coalesced.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(i) = self.enqueue(port, src, tag) {
            let q = &mut self.tx[i];
            q.open = q.slots[q.used - 1].gso.is_none();
        }
    }

    /// Sends a (decapsulated) TCP packet larger than the MTU of `port` as segments of `mss`
    /// payload octets: one segmentation-offload frame where the port takes them (the kernel,
    /// or the receiving host, cuts it), otherwise cut here.
    fn enqueue_tcp_segments(&mut self, port: PortId, src: Src, tag: Option<VlanId>, mss: u16) {
        let Some(&i) = self.index.get(&port) else {
            return;
        };
        let features = self.ports[i].1.features();
        if features.vnet_hdr && features.tso {
            // The next piece of the same stream (the ITR cut one large segment into several)
            // joins the frame before it: one frame, one wake-up and one ACK for the host.
            let q = &mut self.tx[i];
            let from = match src {
                Src::Rx(k) => &self.rx[k],
                Src::Piece(j) => &self.pieces[j],
            };
            if q.open
                && q.used > 0
                && q.slots[q.used - 1].vlan == tag.map(VlanId::get)
                && q.slots[q.used - 1].gso.is_some_and(|g| g.gso_size == mss)
                && gso::append_tcp(&mut q.slots[q.used - 1], from.frame()).is_ok()
            {
                self.drops.tcp_coalesced.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let Some(i) = self.enqueue(port, src, tag) else {
                return;
            };
            let q = &mut self.tx[i];
            let slot = &mut q.slots[q.used - 1];
            if let Err(e) = gso::tcp_offload(slot, mss) {
                debug!(%port, error = ?e, "TCP packet could not be offloaded");
                slot.reset();
                q.used -= 1;
                self.drops
                    .tcp_segment_failed
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                q.open = true;
            }
            return;
        }
        // Cut in software, from the received slot (pieces of another cut are in use).
        let cut = match src {
            Src::Rx(k) => gso::tcp_offload(&mut self.rx[k], mss)
                .and_then(|()| gso::segment(&self.rx[k], &mut self.pieces)),
            Src::Piece(_) => Err(gso::SegmentError::NoRoom),
        };
        let n = match cut {
            Ok(n) => n,
            Err(e) => {
                debug!(%port, error = ?e, "TCP packet could not be cut");
                self.drops
                    .tcp_segment_failed
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.drops
            .tcp_segmented_in_software
            .fetch_add(1, Ordering::Relaxed);
        for j in 0..n {
            self.enqueue(port, Src::Piece(j), tag);
        }
    }

    fn src(&self, src: Src) -> &FrameSlot {
        match src {
            Src::Rx(k) => &self.rx[k],
            Src::Piece(j) => &self.pieces[j],
        }
    }

    fn flood(&mut self, vlan: VlanId, except: PortId, src: Src) {
        // Collect egress ports first: the table is borrowed while the queues are written.
        let mut targets: [(PortId, bool); 64] = [(PortId(0), false); 64];
        let mut count = 0;
        let hello = roamer_forwarding::pipeline::is_hsrp_hello(self.src(src).frame());
        let filter = &self.pipeline.tables.hello_filter;
        for (p, tagged) in self.pipeline.tables.vlan_ports(vlan) {
            if hello && filter.contains(&p) {
                continue;
            }
            if p != except && count < targets.len() {
                targets[count] = (p, tagged);
                count += 1;
            }
        }
        for (p, tagged) in &targets[..count] {
            self.enqueue(*p, src, tagged.then_some(vlan));
        }
    }

    /// Copies a frame into the egress queue of `port`; returns the queue's index when it was
    /// queued (it is the queue's last slot).
    fn enqueue(&mut self, port: PortId, from: Src, tag: Option<VlanId>) -> Option<usize> {
        let &i = self.index.get(&port)?;
        if self.links[i] == Link::Gone {
            self.drops.port_down.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.tx[i].used == self.tx[i].slots.len() {
            self.flush_port(i);
        }
        let src = match from {
            Src::Rx(k) => &self.rx[k],
            Src::Piece(j) => &self.pieces[j],
        };
        let q = &mut self.tx[i];
        let dst = &mut q.slots[q.used];
        if dst.set_frame(src.frame()).is_err() {
            return None;
        }
        dst.vlan = tag.map(VlanId::get);
        dst.gso = src.gso;
        q.used += 1;
        q.open = false;
        Some(i)
    }

    fn send_reply(&mut self, to: ReplyTo) {
        let frame = self.pipeline.reply().to_vec();
        self.send_frame(to, &frame);
    }

    /// Sends a frame built outside the rx slots (replies, injected frames).
    fn send_frame(&mut self, to: ReplyTo, frame: &[u8]) {
        let targets: Vec<(PortId, Option<VlanId>)> = match to {
            ReplyTo::Port { port, tag } => vec![(port, tag)],
            ReplyTo::Vlan(v) => self
                .pipeline
                .tables
                .vlan_ports(v)
                .filter(|(p, _)| {
                    !(roamer_forwarding::pipeline::is_hsrp_hello(frame)
                        && self.pipeline.tables.hello_filter.contains(p))
                })
                .map(|(p, t)| (p, t.then_some(v)))
                .collect(),
        };
        for (port, tag) in targets {
            let Some(&i) = self.index.get(&port) else {
                continue;
            };
            if self.links[i] == Link::Gone {
                self.drops.port_down.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.tx[i].used == self.tx[i].slots.len() {
                self.flush_port(i);
            }
            let q = &mut self.tx[i];
            let dst = &mut q.slots[q.used];
            if dst.set_frame(frame).is_ok() {
                dst.vlan = tag.map(VlanId::get);
                q.used += 1;
                q.open = false;
            }
        }
    }

    /// Hands a copy of the frame to the control plane. A layer-4 checksum the sender left to
    /// the offload (a Linux peer on this host with TX checksum offload: vnet-hdr `NEEDS_CSUM`,
    /// or AF_PACKET's `TP_STATUS_CSUMNOTREADY`) is completed in the copy first, from the
    /// frame's own `csum_start`/`csum_offset`, exactly as the device would have: every
    /// consumer (HSRP, LISP control, the reliable-registration TCP) then sees the packet as it
    /// would have been on a wire and checks its checksum as usual, with no flag to carry and
    /// no way to forget it. A genuinely bad checksum on a complete frame stays bad. Frames
    /// flooded at the same time keep their offload metadata (the egress completes them).
    fn punt(&mut self, port: PortId, vlan: Option<VlanId>, reason: PuntReason, src: Src) {
        let slot = self.src(src);
        let mut frame = slot.frame().to_vec();
        if let Some((first, offset)) = slot.gso.and_then(|g| g.csum)
            && super::port::complete_partial_checksum(&mut frame, first, offset).is_err()
        {
            // Offsets beyond the frame: punted as it is, and refused by its consumer.
            debug!(%port, "partial checksum out of the frame's bounds");
        }
        let punt = Punt {
            port,
            vlan,
            reason,
            frame,
        };
        let queue = if is_urgent(&punt) {
            &self.urgent
        } else {
            &self.punts
        };
        if queue.try_send(punt).is_err() {
            self.drops.punts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queued = true;
        }
    }

    fn flush(&mut self) {
        for i in 0..self.tx.len() {
            if self.tx[i].used > 0 {
                self.flush_port(i);
            }
        }
    }

    fn flush_port(&mut self, i: usize) {
        let used = self.tx[i].used;
        let mut done = 0;
        for _ in 0..4 {
            match self.ports[i]
                .1
                .send_batch(&mut self.tx[i].slots[done..used])
            {
                Ok(n) => done += n,
                Err(e) => {
                    debug!(port = %self.ports[i].0, error = %e, "send failed");
                    break;
                }
            }
            if done == used {
                break;
            }
        }
        if done < used {
            self.drops
                .send_full
                .fetch_add((used - done) as u64, Ordering::Relaxed);
        }
        for s in &mut self.tx[i].slots[..used] {
            s.reset();
        }
        self.tx[i].used = 0;
        self.tx[i].open = false;
    }

    /// A routed injection: routes it and, when its next hop is not resolved yet, keeps it
    /// waiting (the oldest waiting frame goes, counted, when the queue is full).
    fn inject_routed(&mut self, frame: Vec<u8>, now_ms: u64) {
        let Originated::Gleaned { asked } = self.originate(&frame, now_ms, true) else {
            return;
        };
        if self.gleaned.len() >= GLEAN_QUEUE {
            self.gleaned.pop_front();
            self.drops.glean_queue_full.fetch_add(1, Ordering::Relaxed);
        }
        if self.gleaned.is_empty() {
            // Nothing learned since this very attempt: the next one waits for a neighbour.
            self.gleaned_neighbors = self.pipeline.tables.neighbors.len();
            self.gleaned_retry_ms = now_ms + GLEAN_RETRY_MS;
        }
        self.gleaned.push_back(Gleaned {
            frame,
            deadline_ms: now_ms + GLEAN_HOLD_MS,
            asked_ms: asked.then_some(now_ms),
        });
    }

    /// Drops waiting frames past their deadline and routes the others again when a neighbour
    /// was learned, the tables changed, or [`GLEAN_RETRY_MS`] passed (so on an idle wake-up);
    /// a frame that gleans again keeps waiting and asks at most every [`GLEAN_REASK_MS`].
    /// A new attempt is no new packet and no new drop: the pipeline's `originated` and
    /// `glean` counters are kept as they were.
    fn retry_gleaned(&mut self, now_ms: u64) {
        while self
            .gleaned
            .front()
            .is_some_and(|g| g.deadline_ms <= now_ms)
        {
            self.gleaned.pop_front();
            self.drops.glean_expired.fetch_add(1, Ordering::Relaxed);
        }
        let neighbors = self.pipeline.tables.neighbors.len();
        if self.gleaned.is_empty()
            || (neighbors == self.gleaned_neighbors && now_ms < self.gleaned_retry_ms)
        {
            return;
        }
        self.gleaned_neighbors = neighbors;
        self.gleaned_retry_ms = now_ms + GLEAN_RETRY_MS;
        let glean = DropReason::Glean.name();
        // Taken out while the pipeline runs; the queue keeps its order and its capacity.
        let mut queue = std::mem::take(&mut self.gleaned);
        for _ in 0..queue.len() {
            let Some(mut g) = queue.pop_front() else {
                break;
            };
            let may_ask = g
                .asked_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= GLEAN_REASK_MS);
            let originated = self.pipeline.counters.originated;
            let gleans = self.pipeline.counters.drops.get(glean).copied();
            let outcome = self.originate(&g.frame, now_ms, may_ask);
            self.pipeline.counters.originated = originated;
            if let Originated::Gleaned { asked } = outcome {
                match gleans {
                    Some(n) => {
                        self.pipeline.counters.drops.insert(glean, n);
                    }
                    None => {
                        self.pipeline.counters.drops.remove(glean);
                    }
                }
                if asked {
                    g.asked_ms = Some(now_ms);
                }
                queue.push_back(g);
            }
        }
        self.gleaned = queue;
        self.flush();
    }

    /// Routes a packet of the control plane's own through the pipeline and sends what results;
    /// the ARP request of a glean leaves only when `may_ask`.
    fn originate(&mut self, frame: &[u8], now_ms: u64, may_ask: bool) -> Originated {
        // Headroom as for a received frame, so the Ethernet rewrite works in place.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.resize(HEADROOM + frame.len(), 0);
        buf[HEADROOM..].copy_from_slice(frame);
        let mut f = Frame {
            buf: &mut buf,
            start: HEADROOM,
            len: frame.len(),
            large: false,
            partial_csum: None,
        };
        let out = self.pipeline.originate(&mut f, now_ms);
        let (start, len) = (f.start, f.len);
        let gleaned = out.verdict == Verdict::Drop(DropReason::Glean);
        let mut asked = false;
        if let Some(to) = out.reply {
            if gleaned && !may_ask {
                self.pipeline.counters.replies = self.pipeline.counters.replies.saturating_sub(1);
            } else {
                self.send_reply(to);
                asked = true;
            }
        }
        let to = match out.verdict {
            Verdict::Forward { port, tag } | Verdict::ForwardTcpSegments { port, tag, .. } => {
                Some(ReplyTo::Port { port, tag })
            }
            Verdict::Flood { vlan, .. } => Some(ReplyTo::Vlan(vlan)),
            // The pipeline counted the drop; an unresolved neighbour's ARP request left above.
            Verdict::Drop(_)
            | Verdict::FloodAndPunt { .. }
            | Verdict::Punt(_)
            | Verdict::Consumed
            | Verdict::Held
            | Verdict::Segment { .. }
            | Verdict::Fragment { .. } => None,
        };
        if let Some(to) = to
            && let Some(bytes) = buf.get(start..start + len)
        {
            self.send_frame(to, bytes);
        }
        self.scratch = buf;
        if gleaned {
            Originated::Gleaned { asked }
        } else {
            Originated::Done
        }
    }

    fn control_messages(&mut self, now_ms: u64) {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Apply(ops, reply) => {
                    let results = ops
                        .iter()
                        .map(|op| self.pipeline.tables.apply(op))
                        .collect();
                    let _ = reply.send(results);
                    // A new route or neighbour may take a waiting frame: try it at once.
                    self.gleaned_retry_ms = 0;
                }
                Control::Entries(kind, reply) => {
                    let _ = reply.send(self.pipeline.tables.entries(kind));
                }
                Control::Learned(reply) => {
                    let t = &self.pipeline.tables;
                    let mut counters = self.pipeline.counters.clone();
                    counters.fragmented = self.drops.fragmented.load(Ordering::Relaxed);
                    counters.segmented = self.drops.segmented.load(Ordering::Relaxed);
                    counters.tcp_segmented_in_software =
                        self.drops.tcp_segmented_in_software.load(Ordering::Relaxed);
                    counters.tcp_coalesced = self.drops.tcp_coalesced.load(Ordering::Relaxed);
                    counters.udp_coalesced = self.drops.udp_coalesced.load(Ordering::Relaxed);
                    for (name, n) in [
                        ("glean-queue-full", &self.drops.glean_queue_full),
                        ("glean-expired", &self.drops.glean_expired),
                        ("fragment-failed", &self.drops.fragment_failed),
                        ("segment-failed", &self.drops.segment_failed),
                        ("tcp-segment-failed", &self.drops.tcp_segment_failed),
                        ("port-down", &self.drops.port_down),
                    ] {
                        let n = n.load(Ordering::Relaxed);
                        if n > 0 {
                            counters.drops.insert(name, n);
                        }
                    }
                    let _ = reply.send(Learned {
                        macs: t
                            .fdb
                            .iter()
                            .map(|((v, m), e)| (*v, *m, e.port, e.is_static))
                            .collect(),
                        neighbors: t
                            .neighbors
                            .iter()
                            .map(|((i, ip), n)| {
                                (*i, *ip, n.mac, now_ms.saturating_sub(n.last_seen_ms))
                            })
                            .collect(),
                        counters,
                        ports_down: self
                            .ports
                            .iter()
                            .zip(&self.links)
                            .filter(|(_, link)| !link.is_up())
                            .map(|((id, _), link)| (*id, *link))
                            .collect(),
                    });
                }
                Control::Trace(port, tag, frame, reply) => {
                    let (out, steps) = self.pipeline.trace(port, tag, &frame, now_ms);
                    let _ = reply.send(TraceResult {
                        verdict: format!("{:?}", out.verdict),
                        reply: out.reply.map(|r| format!("{r:?}")),
                        steps,
                    });
                }
                Control::Notify(n) => self.notifier = Some(n),
                Control::Inject(target, frame) => {
                    match target {
                        InjectTarget::Port(port) => {
                            self.send_frame(ReplyTo::Port { port, tag: None }, &frame);
                        }
                        InjectTarget::Vlan(v) => self.send_frame(ReplyTo::Vlan(v), &frame),
                        InjectTarget::PortInVlan(port, v) => {
                            let tag = (self.pipeline.tables.egress_tagged(port, v) == Some(true))
                                .then_some(v);
                            self.send_frame(ReplyTo::Port { port, tag }, &frame);
                        }
                        InjectTarget::Routed => self.inject_routed(frame, now_ms),
                    }
                    self.flush();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::RawFd;
    use std::os::unix::net::UnixDatagram;

    use roamer_forwarding::wire::checksum;
    use roamer_hal::{L3Interface, Mac};

    use super::super::port::{PortFeatures, PortStats};
    use super::*;

    fn software() -> SoftwareBackend {
        SoftwareBackend::start(Vec::new(), Limits::default()).expect("data path")
    }

    roamer_hal::backend_contract_tests!(software());

    fn udp_punt(reason: PuntReason, proto: u8, sport: u16, dport: u16, first: u8) -> Punt {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = proto;
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[42] = first;
        Punt {
            port: PortId(1),
            vlan: None,
            reason,
            frame: f,
        }
    }

    #[test]
    fn registrations_hsrp_and_reliable_tcp_are_urgent_map_requests_are_not() {
        let lisp = PuntReason::LispControl;
        assert!(
            is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x30)),
            "Map-Register"
        );
        assert!(
            is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x40)),
            "Map-Notify"
        );
        assert!(
            is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x50)),
            "Map-Notify-Ack"
        );
        assert!(
            !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x80)),
            "ECM Map-Request"
        );
        assert!(
            !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x10)),
            "Map-Request"
        );
        assert!(
            !is_urgent(&udp_punt(lisp, 17, 4342, 4342, 0x20)),
            "Map-Reply"
        );
        assert!(is_urgent(&udp_punt(lisp, 6, 50000, 4342, 0)), "TCP to 4342");
        assert!(
            is_urgent(&udp_punt(PuntReason::ForUs, 6, 4342, 50000, 0)),
            "TCP from 4342"
        );
        assert!(!is_urgent(&udp_punt(PuntReason::ForUs, 6, 22, 50000, 0)));
        assert!(is_urgent(&udp_punt(PuntReason::Hsrp, 17, 1985, 1985, 0)));
        assert!(!is_urgent(&udp_punt(
            PuntReason::ArpForUs,
            17,
            4342,
            4342,
            0x30
        )));
        let mut runt = udp_punt(lisp, 17, 4342, 4342, 0x30);
        runt.frame.truncate(30);
        assert!(!is_urgent(&runt));
    }

    #[test]
    fn injected_frames_to_an_unknown_port_are_dropped_and_trace_learns_nothing() {
        let mut b = software();
        b.inject(InjectTarget::Port(PortId(7)), &[0u8; 60])
            .expect("queued");
        let t = b.trace(PortId(7), None, vec![0u8; 60]).expect("trace");
        assert!(t.verdict.contains("UnknownPort"), "{t:?}");
        let learned = b.learned().expect("learned");
        assert!(learned.macs.is_empty());
        assert_eq!(learned.counters.rx, 0, "trace counts nothing");
    }

    const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    /// A port whose wire is a Unix datagram socket pair: one datagram is one frame.
    #[derive(Debug)]
    struct MemPort(UnixDatagram);

    impl PortIo for MemPort {
        fn name(&self) -> &str {
            "mem"
        }

        fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
            for (n, s) in slots.iter_mut().enumerate() {
                s.reset();
                let start = s.start;
                match self.0.recv(&mut s.buf[start..]) {
                    Ok(len) => s.len = len,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(n),
                    Err(e) => return Err(e),
                }
            }
            Ok(slots.len())
        }

        fn send_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
            for s in slots.iter_mut() {
                s.insert_vlan()
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                self.0.send(s.frame())?;
            }
            Ok(slots.len())
        }

        fn raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        fn mac(&self) -> [u8; 6] {
            ROUTER
        }

        fn mtu(&self) -> u32 {
            1500
        }

        fn is_up(&self) -> bool {
            true
        }

        fn features(&self) -> PortFeatures {
            PortFeatures::default()
        }

        fn stats(&self) -> PortStats {
            PortStats::default()
        }
    }

    /// UDP 4342 -> 4342 carrying `hello`, source unspecified, checksums left to the switch.
    fn own_udp(dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[0x10, 0xf6, 0x10, 0xf6, 0, 13, 0, 0]);
        f.extend_from_slice(b"hello");
        f.resize(60, 0);
        f
    }

    fn arp(op: u8, mac: [u8; 6], ip: [u8; 4], target_mac: [u8; 6], target: [u8; 4]) -> Vec<u8> {
        let mut f = target_mac.to_vec();
        f.extend_from_slice(&mac);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op]);
        f.extend_from_slice(&mac);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&target_mac);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    /// A data path with one routed port (192.0.2.1/24, MAC [`ROUTER`]) and the far end of its
    /// wire, which reads with a 2 s timeout.
    fn routed_port() -> (SoftwareBackend, UnixDatagram) {
        let (port_end, wire) = UnixDatagram::pair().expect("socket pair");
        port_end.set_nonblocking(true).expect("non-blocking");
        wire.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut b = SoftwareBackend::start(
            vec![(PortId(1), Box::new(MemPort(port_end)))],
            Limits::default(),
        )
        .expect("data path");
        let iface = L3Interface::Port(PortId(1));
        let results = b.apply(&[
            TableOp::add(TableEntry::RouterMac {
                iface,
                mac: Mac(ROUTER),
                virtual_mac: false,
            }),
            TableOp::add(TableEntry::InterfaceAddress {
                iface,
                addr: "192.0.2.1".parse().expect("address"),
                prefix_len: 24,
                virtual_mac: None,
            }),
        ]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        (b, wire)
    }

    /// Reads the ARP request for 192.0.2.2 the switch sends when it gleans.
    fn expect_arp_request(wire: &UnixDatagram) {
        let mut buf = [0u8; 2048];
        let n = wire.recv(&mut buf).expect("the ARP request of the glean");
        let request = &buf[..n];
        assert_eq!(&request[..6], &[0xff; 6]);
        assert_eq!(&request[12..14], &[0x08, 0x06]);
        assert_eq!(&request[20..22], &[0, 1], "a request");
        assert_eq!(&request[28..32], &[192, 0, 2, 1], "asked from our address");
        assert_eq!(&request[38..42], &[192, 0, 2, 2]);
    }

    /// What is left on the wire now (waits `quiet` for stragglers first).
    fn rest(wire: &UnixDatagram, quiet: Duration) -> Vec<Vec<u8>> {
        std::thread::sleep(quiet);
        wire.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        while let Ok(n) = wire.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        wire.set_nonblocking(false).expect("blocking");
        out
    }

    /// The peer at 192.0.2.2 answers the switch's ARP request.
    fn peer_answers(wire: &UnixDatagram) {
        wire.send(&arp(2, PEER, [192, 0, 2, 2], ROUTER, [192, 0, 2, 1]))
            .expect("ARP reply");
    }

    /// Checks `f` is `own_udp([192, 0, 2, 2])` as routed out of the port.
    fn assert_routed_datagram(f: &[u8]) {
        assert_eq!(&f[..6], &PEER, "to the neighbour");
        assert_eq!(&f[6..12], &ROUTER, "from the interface");
        assert_eq!(&f[12..14], &[0x08, 0x00], "untagged IPv4");
        let ip = &f[14..14 + 33];
        assert_eq!(&ip[12..16], &[192, 0, 2, 1], "our address filled in");
        assert_eq!(ip[8], 64, "TTL unchanged");
        assert_eq!(checksum::fold(checksum::add(0, &ip[..20])), 0xffff);
        let pseudo = checksum::pseudo_ipv4(
            [192, 0, 2, 1].into(),
            [192, 0, 2, 2].into(),
            checksum::IPPROTO_UDP,
            13,
        );
        assert_ne!(&ip[26..28], &[0, 0]);
        assert!(checksum::verifies(pseudo, &ip[20..]), "UDP checksum");
        assert_eq!(&ip[28..], b"hello");
    }

    /// A routing table over the size from which the data path warms the cache for each
    /// receive batch: a burst of transit frames is routed exactly as the table says, those
    /// without a route are dropped and counted, and every routed one leaves rewritten.
    #[test]
    fn a_burst_through_a_table_large_enough_to_be_warmed_is_routed_frame_by_frame() {
        let (mut b, wire) = routed_port();
        let iface = L3Interface::Port(PortId(1));
        let via = "192.0.2.2".parse().expect("address");
        let next_hop = roamer_hal::NextHop::Gateway {
            via,
            iface: Some(iface),
        };
        let slots = 2 * roamer_forwarding::tables::WARM_MIN_ENTRIES as u32;
        // /24s from 20.0.0.0 up, every fourth one missing.
        let mut ops = vec![TableOp::add(TableEntry::Neighbor {
            iface,
            ip: via,
            mac: Mac(PEER),
        })];
        ops.extend((0..slots).filter(|i| i % 4 != 3).map(|i| {
            let addr = std::net::IpAddr::from(((20 << 24) + (i << 8)).to_be_bytes());
            let prefix = roamer_hal::Prefix::new(addr, 24).expect("prefix");
            TableOp::add(TableEntry::Route { prefix, next_hop })
        }));
        let results = b.apply(&ops);
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let frames: Vec<(u32, Vec<u8>)> = (0..64u32)
            .map(|k| {
                let slot = k * 1237 % slots;
                let dst = ((20 << 24) + (slot << 8) + 7).to_be_bytes();
                let mut f = ROUTER.to_vec();
                f.extend_from_slice(&PEER);
                f.extend_from_slice(&[0x08, 0x00]);
                f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0]);
                f.extend_from_slice(&[198, 51, 100, 1]);
                f.extend_from_slice(&dst);
                let sum = checksum::ipv4_header(&f[14..34]);
                f[24..26].copy_from_slice(&sum.to_be_bytes());
                f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
                (slot, f)
            })
            .collect();
        for (_, f) in &frames {
            wire.send(f).expect("frame");
        }
        let routable: Vec<&(u32, Vec<u8>)> =
            frames.iter().filter(|(slot, _)| slot % 4 != 3).collect();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..routable.len() {
            let n = wire.recv(&mut buf).expect("a routed frame");
            out.push(buf[..n].to_vec());
        }
        for ((_, sent), got) in routable.iter().zip(&out) {
            assert_eq!(&got[..6], &PEER, "to the next hop");
            assert_eq!(&got[6..12], &ROUTER, "from the router");
            assert_eq!(got[22], 63, "TTL decremented");
            assert_eq!(&got[30..34], &sent[30..34], "same destination, in order");
            assert_eq!(checksum::ipv4_header(&got[14..34]), 0, "header checksum");
        }
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.routed, routable.len() as u64);
        assert_eq!(
            counters.drops.get("no-route").copied(),
            Some((frames.len() - routable.len()) as u64)
        );
        assert!((40..64).contains(&routable.len()), "{}", routable.len());
    }

    #[test]
    fn routed_injection_gleans_then_leaves_the_routed_port_with_our_address() {
        let (mut b, wire) = routed_port();
        // One injection: it gleans, waits, and leaves once the peer answers; no second one.
        b.inject(InjectTarget::Routed, &own_udp([192, 0, 2, 2]))
            .expect("queued");
        expect_arp_request(&wire);
        peer_answers(&wire);
        let mut buf = [0u8; 2048];
        let n = wire.recv(&mut buf).expect("the waiting datagram");
        assert_routed_datagram(&buf[..n]);
        assert_eq!(b.learned().expect("learned").neighbors.len(), 1);

        // Resolved: the next one leaves at once.
        b.inject(InjectTarget::Routed, &own_udp([192, 0, 2, 2]))
            .expect("queued");
        let n = wire.recv(&mut buf).expect("the datagram");
        assert_routed_datagram(&buf[..n]);

        // No route: nothing leaves, the drop is counted.
        b.inject(InjectTarget::Routed, &own_udp([203, 0, 113, 1]))
            .expect("queued");
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.originated, 3, "a new attempt is no new packet");
        assert_eq!(counters.routed, 2);
        assert_eq!(counters.replies, 1, "one ARP request");
        assert_eq!(counters.drops.get("glean"), Some(&1));
        assert_eq!(counters.drops.get("no-route"), Some(&1));
        assert_eq!(counters.drops.get("glean-expired"), None);
        assert_eq!(counters.drops.get("glean-queue-full"), None);
        assert_eq!(
            rest(&wire, Duration::from_millis(50)),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn a_routed_injection_waits_no_longer_than_its_deadline_and_asks_no_more_than_allowed() {
        let (mut b, wire) = routed_port();
        b.inject(InjectTarget::Routed, &own_udp([192, 0, 2, 2]))
            .expect("queued");
        expect_arp_request(&wire);
        // Busy meanwhile: unrelated frames (an ARP request for someone else) keep the loop
        // going, and the waiting frame gleans again each time without asking again.
        let started = Instant::now();
        let mut asked = Vec::new();
        while started.elapsed() < Duration::from_millis(GLEAN_HOLD_MS + 300) {
            wire.send(&arp(1, PEER, [192, 0, 2, 3], [0; 6], [192, 0, 2, 9]))
                .expect("chatter");
            asked.extend(rest(&wire, Duration::from_millis(20)));
        }
        assert!(
            asked.iter().all(|f| f[12..14] == [0x08, 0x06]),
            "only ARP left"
        );
        assert!(
            asked.len() <= usize::try_from(GLEAN_HOLD_MS / GLEAN_REASK_MS).expect("small"),
            "{} ARP requests in {GLEAN_HOLD_MS} ms",
            asked.len()
        );
        assert_eq!(b.drops.glean_expired.load(Ordering::Relaxed), 1);
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.drops.get("glean-expired"), Some(&1));
        assert_eq!(
            counters.drops.get("glean"),
            Some(&1),
            "kept waiting is no new drop"
        );
        assert_eq!(counters.originated, 1);

        // Too late: the answer takes nothing out any more.
        peer_answers(&wire);
        let deadline = Instant::now() + Duration::from_secs(2);
        while b.learned().expect("learned").neighbors.is_empty() {
            assert!(Instant::now() < deadline, "the ARP reply was not learned");
            std::thread::sleep(Duration::from_millis(5));
        }
        let late = rest(&wire, Duration::from_millis(50));
        assert!(
            late.iter().all(|f| f[12..14] != [0x08, 0x00]),
            "the expired datagram left: {late:?}"
        );
    }

    #[test]
    fn a_full_wait_queue_drops_the_oldest_and_counts_it() {
        let (mut b, wire) = routed_port();
        let total = GLEAN_QUEUE + 2;
        for id in 0..total {
            let mut f = own_udp([192, 0, 2, 2]);
            f[18..20].copy_from_slice(&u16::try_from(id).expect("small").to_be_bytes());
            b.inject(InjectTarget::Routed, &f).expect("queued");
        }
        expect_arp_request(&wire);
        // Answered after every injection before it: all of them were routed by then.
        assert_eq!(
            b.learned().expect("learned").counters.originated,
            u64::try_from(total).expect("small")
        );
        assert_eq!(b.drops.glean_queue_full.load(Ordering::Relaxed), 2);
        peer_answers(&wire);
        let mut ids = Vec::new();
        let mut buf = [0u8; 2048];
        while ids.len() < GLEAN_QUEUE {
            let n = wire.recv(&mut buf).expect("a waiting datagram");
            let f = &buf[..n];
            assert_routed_datagram(f);
            ids.push(usize::from(u16::from_be_bytes([f[18], f[19]])));
        }
        assert_eq!(
            ids,
            (2..total).collect::<Vec<_>>(),
            "in order, the two oldest gone"
        );
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.drops.get("glean-queue-full"), Some(&2));
        assert_eq!(counters.originated, u64::try_from(total).expect("small"));
        assert_eq!(
            rest(&wire, Duration::from_millis(50)),
            Vec::<Vec<u8>>::new()
        );
    }

    const HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x06];

    /// A [`MemPort`] whose sent frames carry a `virtio_net_hdr` in front (it "negotiated"
    /// vnet-hdr and TSO), so a test can see the offload the data path asked for.
    #[derive(Debug)]
    struct VnetMemPort(MemPort);

    impl PortIo for VnetMemPort {
        fn name(&self) -> &str {
            "vnet-mem"
        }

        /// Each datagram is a `virtio_net_hdr` and the frame behind it.
        fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
            let mut datagram = vec![0u8; super::super::port::VNET_HDR_LEN + GSO_FRAME_ROOM];
            for (n, s) in slots.iter_mut().enumerate() {
                s.reset();
                let len = match (self.0).0.recv(&mut datagram) {
                    Ok(len) => len,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(n),
                    Err(e) => return Err(e),
                };
                let (hdr, frame) = datagram[..len].split_at(super::super::port::VNET_HDR_LEN);
                let hdr: &[u8; super::super::port::VNET_HDR_LEN] =
                    hdr.try_into().map_err(std::io::Error::other)?;
                s.set_frame(frame)
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                s.gso = super::super::port::GsoInfo::from_vnet_hdr(hdr)
                    .map_err(|t| std::io::Error::other(format!("gso type {t}")))?;
            }
            Ok(slots.len())
        }

        fn send_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
            for s in slots.iter_mut() {
                s.insert_vlan()
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                let mut hdr = [0u8; super::super::port::VNET_HDR_LEN];
                super::super::port::GsoInfo::to_vnet_hdr(s.gso.as_ref(), &mut hdr);
                let mut datagram = hdr.to_vec();
                datagram.extend_from_slice(s.frame());
                (self.0).0.send(&datagram)?;
            }
            Ok(slots.len())
        }

        fn raw_fd(&self) -> RawFd {
            self.0.raw_fd()
        }

        fn mac(&self) -> [u8; 6] {
            self.0.mac()
        }

        fn mtu(&self) -> u32 {
            self.0.mtu()
        }

        fn is_up(&self) -> bool {
            self.0.is_up()
        }

        fn features(&self) -> PortFeatures {
            PortFeatures {
                vnet_hdr: true,
                tso: true,
                ..PortFeatures::default()
            }
        }

        fn stats(&self) -> PortStats {
            self.0.stats()
        }
    }

    /// An ETR: routed uplink port 1 (192.0.2.1/24) and routed host port 2 (10.20.0.1/24, MTU
    /// 1500, host 10.20.0.6 resolved), the EID prefix 10.20.0.0/24 local. Returns the data
    /// path and the far ends of the uplink's and the host port's wires.
    fn etr(
        host_port: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
    ) -> (SoftwareBackend, UnixDatagram, UnixDatagram) {
        etr_with(|end| Box::new(MemPort(end)), host_port)
    }

    /// [`etr`] with the uplink port made by `uplink`.
    fn etr_with(
        uplink: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
        host_port: impl FnOnce(UnixDatagram) -> Box<dyn PortIo>,
    ) -> (SoftwareBackend, UnixDatagram, UnixDatagram) {
        let (up_end, up_wire) = UnixDatagram::pair().expect("socket pair");
        let (host_end, host_wire) = UnixDatagram::pair().expect("socket pair");
        for s in [&up_end, &host_end] {
            s.set_nonblocking(true).expect("non-blocking");
        }
        host_wire
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut b = SoftwareBackend::start(
            vec![
                (PortId(1), uplink(up_end)),
                (PortId(2), host_port(host_end)),
            ],
            Limits::default(),
        )
        .expect("data path");
        let (up, host) = (L3Interface::Port(PortId(1)), L3Interface::Port(PortId(2)));
        let mut ops = Vec::new();
        for (iface, addr, len) in [(up, "192.0.2.1", 24), (host, "10.20.0.1", 24)] {
            ops.push(TableOp::add(TableEntry::RouterMac {
                iface,
                mac: Mac(ROUTER),
                virtual_mac: false,
            }));
            ops.push(TableOp::add(TableEntry::InterfaceAddress {
                iface,
                addr: addr.parse().expect("address"),
                prefix_len: len,
                virtual_mac: None,
            }));
        }
        ops.push(TableOp::add(TableEntry::Neighbor {
            iface: host,
            ip: "10.20.0.6".parse().expect("address"),
            mac: Mac(HOST),
        }));
        ops.push(TableOp::add(TableEntry::LispDatabase {
            iid: roamer_hal::Iid::default(),
            eid: "10.20.0.0/24".parse().expect("prefix"),
            locators: vec![],
        }));
        let results = b.apply(&ops);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        (b, up_wire, host_wire)
    }

    /// 10.10.0.5 -> 10.20.0.6, TCP with 12 octets of options (32-octet header), `payload`,
    /// ACK|PSH|CWR, complete checksums: the IP packet.
    fn inner_tcp(payload: &[u8]) -> Vec<u8> {
        inner_tcp_at(0x1000, 0x18 | 0x80, payload)
    }

    /// [`inner_tcp`] with sequence number `seq` and TCP flags `flags`.
    fn inner_tcp_at(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let tcp_len = 32 + payload.len();
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&u16::try_from(20 + tcp_len).expect("small").to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 63, 6, 0, 0, 10, 10, 0, 5, 10, 20, 0, 6]);
        let c = checksum::ipv4_header(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&[0x9c, 0x40, 0x13, 0x89]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 7, 0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
        p.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        p.extend_from_slice(payload);
        let pseudo = checksum::pseudo_ipv4(
            [10, 10, 0, 5].into(),
            [10, 20, 0, 6].into(),
            6,
            u16::try_from(tcp_len).expect("small"),
        );
        let c = checksum::udp_field(pseudo, &p[20..]);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// `inner` LISP-encapsulated by the peer xTR 192.0.2.2 towards us, in an Ethernet frame.
    fn from_peer(inner: &[u8]) -> Vec<u8> {
        use roamer_forwarding::wire::lisp_data::{
            EncapParams, LispDataRepr, NonceField, encapsulate_in_place,
        };
        let mut buf = vec![0u8; HEADROOM + inner.len()];
        buf[HEADROOM..].copy_from_slice(inner);
        let params = EncapParams::new(
            "192.0.2.2".parse().expect("address"),
            "192.0.2.1".parse().expect("address"),
            40000,
            LispDataRepr {
                nonce: NonceField::Nonce {
                    nonce: 7,
                    echo_request: false,
                },
                ..LispDataRepr::default()
            },
        );
        let outer = encapsulate_in_place(&mut buf, HEADROOM, inner.len(), &params).expect("encap");
        let mut f = ROUTER.to_vec();
        f.extend_from_slice(&PEER);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&buf[outer..]);
        f
    }

    fn tcp_checksum_ok(ip: &[u8]) -> bool {
        let pseudo = checksum::pseudo_ipv4(
            [ip[12], ip[13], ip[14], ip[15]].into(),
            [ip[16], ip[17], ip[18], ip[19]].into(),
            6,
            u16::try_from(ip.len() - 20).expect("small"),
        );
        checksum::verifies(pseudo, &ip[20..])
    }

    #[test]
    fn a_large_decapsulated_tcp_packet_is_cut_in_software_for_a_port_without_offload() {
        let (b, up, host) = etr(|end| Box::new(MemPort(end)));
        let payload: Vec<u8> = (0..4 * 1448 + 100).map(|i| (i % 251) as u8).collect();
        let inner = inner_tcp(&payload);
        up.send(&from_peer(&inner)).expect("LISP packet");
        let mut buf = vec![0u8; 65536];
        let mut joined = Vec::new();
        let mut seq = 0x1000u32;
        for i in 0..5 {
            let n = host.recv(&mut buf).expect("a segment");
            let f = &buf[..n];
            assert_eq!(&f[..6], &HOST, "routed to the host");
            assert!(n <= 14 + 1500, "segment {i}: {n} octets");
            let ip = &f[14..];
            assert_eq!(checksum::fold(checksum::add(0, &ip[..20])), 0xffff);
            assert!(tcp_checksum_ok(ip), "segment {i}: TCP checksum");
            assert_eq!(u32::from_be_bytes([ip[24], ip[25], ip[26], ip[27]]), seq);
            let flags = ip[33];
            assert_eq!(flags & 0x08 != 0, i == 4, "PSH on the last only");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            let data = &ip[52..];
            assert!(data.len() <= 1500 - 52);
            seq += u32::try_from(data.len()).expect("small");
            joined.extend_from_slice(data);
        }
        assert_eq!(joined, payload);
        assert_eq!(
            rest(&host, Duration::from_millis(50)),
            Vec::<Vec<u8>>::new()
        );
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.decapsulated, 1);
        assert_eq!(counters.tcp_segmented, 1);
        assert_eq!(counters.tcp_segmented_in_software, 1);
        assert!(counters.drops.is_empty(), "{:?}", counters.drops);
    }

    #[test]
    fn a_large_decapsulated_tcp_packet_leaves_a_vnet_hdr_port_as_one_gso_frame() {
        use super::super::port::{GsoInfo, VNET_HDR_LEN};
        let (b, up, host) = etr(|end| Box::new(VnetMemPort(MemPort(end))));
        let payload: Vec<u8> = (0..6000).map(|i| (i % 241) as u8).collect();
        let inner = inner_tcp(&payload);
        up.send(&from_peer(&inner)).expect("LISP packet");
        let mut buf = vec![0u8; 65536];
        let n = host.recv(&mut buf).expect("the GSO frame");
        let hdr: [u8; VNET_HDR_LEN] = buf[..VNET_HDR_LEN].try_into().expect("header");
        let info = GsoInfo::from_vnet_hdr(&hdr)
            .expect("a known offload")
            .expect("an offload");
        assert_eq!(info.gso_type, GsoType::TcpV4);
        assert_eq!(info.gso_size, 1500 - 20 - 32, "MTU - IP - TCP with options");
        assert_eq!(info.hdr_len, 14 + 20 + 32);
        assert_eq!(info.csum, Some((34, 16)), "partial from the TCP header");
        assert!(info.ecn, "CWR set");
        let f = &buf[VNET_HDR_LEN..n];
        assert_eq!(&f[..6], &HOST);
        assert_eq!(f.len(), 14 + inner.len(), "the whole packet");
        assert_eq!(&f[14 + 52..], &payload[..]);
        // Completing the partial checksum as the kernel would gives the sender's back.
        let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
        slot.set_frame(f).expect("fits");
        slot.gso = Some(info);
        slot.complete_checksum().expect("completes");
        assert_eq!(&slot.frame()[14..], &inner[..]);
        assert_eq!(
            rest(&host, Duration::from_millis(50)),
            Vec::<Vec<u8>>::new()
        );
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.tcp_segmented, 1);
        assert_eq!(counters.tcp_segmented_in_software, 0);
        assert!(counters.drops.is_empty(), "{:?}", counters.drops);
    }

    #[test]
    fn a_train_of_lisp_packets_is_cut_decapsulated_and_joined_into_one_gso_frame() {
        use super::super::port::{GsoInfo, VNET_HDR_LEN};
        let (b, up, host) = etr_with(
            |end| Box::new(VnetMemPort(MemPort(end))),
            |end| Box::new(VnetMemPort(MemPort(end))),
        );
        // Three LISP packets of one stream as an ITR on this host cuts a large segment: two
        // of 4 x 1448 octets, the last shorter; joined as its vnet-hdr port sends them.
        let payload: Vec<u8> = (0..2 * 4 * 1448 + 1000).map(|i| (i % 239) as u8).collect();
        let mut train = FrameSlot::new(GSO_FRAME_ROOM);
        let mut seq = 0x1000u32;
        for (i, chunk) in payload.chunks(4 * 1448).enumerate() {
            let flags = if i == 2 { 0x18 } else { 0x10 };
            let packet = from_peer(&inner_tcp_at(seq, flags, chunk));
            if i == 0 {
                train.set_frame(&packet).expect("fits");
            } else {
                gso::append_udp(&mut train, &packet).expect("joins");
            }
            seq += u32::try_from(chunk.len()).expect("small");
        }
        assert_eq!(train.gso.map(|g| g.gso_type), Some(GsoType::UdpL4));
        let mut datagram = [0u8; VNET_HDR_LEN].to_vec();
        let mut hdr = [0u8; VNET_HDR_LEN];
        GsoInfo::to_vnet_hdr(train.gso.as_ref(), &mut hdr);
        datagram[..VNET_HDR_LEN].copy_from_slice(&hdr);
        datagram.extend_from_slice(train.frame());
        up.send(&datagram).expect("the train");

        // One GSO frame: the two pieces larger than the host port's MTU, and the last, which
        // fits, joined to them.
        let mut buf = vec![0u8; 65536];
        let n = host.recv(&mut buf).expect("the GSO frame");
        let hdr: [u8; VNET_HDR_LEN] = buf[..VNET_HDR_LEN].try_into().expect("header");
        let info = GsoInfo::from_vnet_hdr(&hdr)
            .expect("a known offload")
            .expect("an offload");
        assert_eq!(info.gso_type, GsoType::TcpV4);
        assert_eq!(info.gso_size, 1448);
        let f = &buf[VNET_HDR_LEN..n];
        assert_eq!(&f[..6], &HOST);
        assert_eq!(
            f.len(),
            14 + 52 + payload.len(),
            "all three pieces in one frame"
        );
        assert!(f[14 + 52..] == payload[..], "the stream's bytes in order");
        assert_eq!(f[14 + 33] & 0x08, 0x08, "the last piece's PSH");
        let mut slot = FrameSlot::new(GSO_FRAME_ROOM);
        slot.set_frame(f).expect("fits");
        slot.gso = Some(info);
        slot.complete_checksum().expect("completes");
        assert!(tcp_checksum_ok(&slot.frame()[14..]));
        assert_eq!(
            rest(&host, Duration::from_millis(50)),
            Vec::<Vec<u8>>::new()
        );
        let counters = b.learned().expect("learned").counters;
        assert_eq!(counters.udp_segments_received, 1);
        assert_eq!(counters.decapsulated, 3);
        assert_eq!(counters.tcp_segmented, 2);
        assert_eq!(counters.tcp_coalesced, 2, "the second piece and the last");
        assert_eq!(counters.segmented, 0, "no cut for a tunnel");
        assert!(counters.drops.is_empty(), "{:?}", counters.drops);
    }
}
