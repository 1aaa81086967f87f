//! The data-path thread: the pipeline over the ports, batches in and out, table operations
//! between batches, events and punts back to the control plane.

use super::*;

mod control;
mod egress;
mod forward;
mod inject;

/// HSRP hellos, LISP Map-Register / Map-Notify / Map-Notify-Ack (UDP 4342) and TCP 4342.
pub(super) fn is_urgent(punt: &Punt) -> bool {
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
pub(super) struct TxQueue {
    pub(super) slots: Vec<FrameSlot>,
    pub(super) used: usize,
    /// The last queued frame is a GSO frame the data path made that the next packet of the
    /// flow may still be appended to: TCP (a decapsulated packet too large for the port) or
    /// UDP (the LISP packets of one cut large segment).
    pub(super) open: bool,
}

impl TxQueue {
    pub(super) fn new() -> TxQueue {
        TxQueue {
            slots: FrameSlot::batch(TX_SLOTS, GSO_FRAME_ROOM),
            used: 0,
            open: false,
        }
    }
}

/// Where a frame being forwarded sits: a received slot, or a piece of a cut large segment.
#[derive(Clone, Copy)]
pub(super) enum Src {
    Rx(usize),
    Piece(usize),
}

/// A routed injection waiting for its next hop to resolve.
pub(super) struct Gleaned {
    /// As the control plane handed it over.
    pub(super) frame: Vec<u8>,
    /// Dropped (and counted) once the clock reaches this.
    pub(super) deadline_ms: u64,
    /// When this frame last sent an ARP request.
    pub(super) asked_ms: Option<u64>,
}

/// What became of a routed injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Originated {
    /// Sent, or dropped for good (the pipeline counted the drop).
    Done,
    /// The next hop is not resolved; `asked` says whether an ARP request left.
    Gleaned { asked: bool },
}

pub(super) struct Datapath {
    pub(super) pipeline: Pipeline,
    pub(super) ports: Vec<(PortId, Box<dyn PortIo>)>,
    pub(super) index: roamer_forwarding::keyed_hash::KeyedMap<PortId, usize>,
    pub(super) tx: Vec<TxQueue>,
    /// Per port, its interface as the last check found it (taken as up at start).
    pub(super) links: Vec<Link>,
    pub(super) rx: Vec<FrameSlot>,
    /// Pieces of a packet cut for a path that cannot take it whole (fragments, segments for a
    /// port without offload).
    pub(super) pieces: Vec<FrameSlot>,
    /// The frame being forwarded is a piece of a cut large segment (see
    /// [`Datapath::enqueue_datagram`]).
    pub(super) cutting: bool,
    pub(super) control: Receiver<Control>,
    pub(super) events: SyncSender<HalEvent>,
    pub(super) punts: SyncSender<Punt>,
    pub(super) urgent: SyncSender<Punt>,
    pub(super) injects: Receiver<(InjectTarget, Vec<u8>)>,
    pub(super) spent_injects: SyncSender<Vec<u8>>,
    pub(super) spent_punts: Receiver<Vec<u8>>,
    pub(super) inject_wake: Arc<AtomicBool>,
    pub(super) notifier: Option<Notifier>,
    /// Something was queued for the control plane since the notifier last ran.
    pub(super) queued: bool,
    pub(super) wake: UnixStream,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) drops: Arc<ChannelDrops>,
    pub(super) epoch: Instant,
    pub(super) event_buf: Vec<HalEvent>,
    /// Routed injections that gleaned, oldest first (so also in deadline order).
    pub(super) gleaned: VecDeque<Gleaned>,
    /// How many neighbours the tables held when `gleaned` was last routed again.
    pub(super) gleaned_neighbors: usize,
    /// When `gleaned` is routed again even if no neighbour was learned.
    pub(super) gleaned_retry_ms: u64,
    /// Headroom and frame of a routed injection, reused.
    pub(super) scratch: Vec<u8>,
    /// When the neighbours that held packets wait for are looked at again.
    pub(super) held_reask_ms: u64,
    /// A port was attached or detached: the poll list is built again.
    pub(super) ports_changed: bool,
}

impl Datapath {
    pub(super) fn run(&mut self) {
        self.read_mtus();
        let mut fds: Vec<i32> = self.ports.iter().map(|(_, p)| p.raw_fd()).collect();
        fds.push(self.wake.as_raw_fd());
        let mut pollable = fds.len() <= 8;
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
            if self.ports_changed {
                self.ports_changed = false;
                fds = self.ports.iter().map(|(_, p)| p.raw_fd()).collect();
                fds.push(self.wake.as_raw_fd());
                pollable = fds.len() <= 8;
                ready = vec![true; fds.len()];
                self.check_links(&mut fds);
                self.read_mtus();
                continue;
            }
            if self.injected(now_ms) == INJECT_BATCH {
                // More are waiting: no sleep before the next round.
                moved += 1;
            }
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
    pub(super) fn check_links(&mut self, fds: &mut [RawFd]) {
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
    pub(super) fn read_mtus(&mut self) {
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
    pub(super) fn event(&mut self, e: HalEvent) {
        if self.events.try_send(e).is_err() {
            self.drops.events.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queued = true;
        }
    }
}
