//! The data-path thread: the pipeline over the ports, batches in and out, table operations
//! between batches, events and punts back to the control plane.

use super::*;

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

    /// One batch from port `i` through the pipeline; returns how many frames came in.
    pub(super) fn receive(&mut self, i: usize, now_ms: u64) -> usize {
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
    pub(super) fn forward(
        &mut self,
        port: PortId,
        tag: Option<VlanId>,
        src: Src,
        now_ms: u64,
    ) -> Verdict {
        let slot = match src {
            Src::Rx(k) => &mut self.rx[k],
            Src::Piece(j) => &mut self.pieces[j],
        };
        let large = slot.gso.is_some_and(|g| g.gso_type != GsoType::None);
        let partial = slot
            .gso
            .and_then(|g| g.csum)
            .map(|(first, offset)| (slot.start + usize::from(first), usize::from(offset)));
        let gso_tcp = slot
            .gso
            .is_some_and(|g| matches!(g.gso_type, GsoType::TcpV4 | GsoType::TcpV6));
        let mut frame = Frame {
            buf: &mut slot.buf,
            start: slot.start,
            len: slot.len,
            large,
            gso_tcp,
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
    pub(super) fn act(
        &mut self,
        port: PortId,
        tag: Option<VlanId>,
        src: Src,
        out: Outcome,
    ) -> Verdict {
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
    pub(super) fn release_held(&mut self, now_ms: u64) {
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
    pub(super) fn fragment_and_forward(
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
    pub(super) fn cut_and_forward(
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
    pub(super) fn enqueue_datagram(&mut self, port: PortId, src: Src, tag: Option<VlanId>) {
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
    pub(super) fn enqueue_tcp_segments(
        &mut self,
        port: PortId,
        src: Src,
        tag: Option<VlanId>,
        mss: u16,
    ) {
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

    pub(super) fn src(&self, src: Src) -> &FrameSlot {
        match src {
            Src::Rx(k) => &self.rx[k],
            Src::Piece(j) => &self.pieces[j],
        }
    }

    pub(super) fn flood(&mut self, vlan: VlanId, except: PortId, src: Src) {
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
    pub(super) fn enqueue(
        &mut self,
        port: PortId,
        from: Src,
        tag: Option<VlanId>,
    ) -> Option<usize> {
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

    pub(super) fn send_reply(&mut self, to: ReplyTo) {
        let frame = self.pipeline.reply().to_vec();
        self.send_frame(to, &frame);
    }

    /// Sends a frame built outside the rx slots (replies, injected frames).
    pub(super) fn send_frame(&mut self, to: ReplyTo, frame: &[u8]) {
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
    pub(super) fn punt(
        &mut self,
        port: PortId,
        vlan: Option<VlanId>,
        reason: PuntReason,
        src: Src,
    ) {
        let slot = self.src(src);
        let mut frame = self.spent_punts.try_recv().unwrap_or_default();
        frame.clear();
        frame.extend_from_slice(slot.frame());
        if let Some((first, offset)) = slot.gso.and_then(|g| g.csum)
            && super::super::port::complete_partial_checksum(&mut frame, first, offset).is_err()
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

    pub(super) fn flush(&mut self) {
        for i in 0..self.tx.len() {
            if self.tx[i].used > 0 {
                self.flush_port(i);
            }
        }
    }

    pub(super) fn flush_port(&mut self, i: usize) {
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

    /// Sends up to [`INJECT_BATCH`] injected frames with one flush at the end; returns how
    /// many. Their buffers go back to the control plane for the next injections.
    pub(super) fn injected(&mut self, now_ms: u64) -> usize {
        // Cleared before draining: a frame queued after this wakes the data path again.
        self.inject_wake.store(false, Ordering::SeqCst);
        let mut n = 0;
        while n < INJECT_BATCH {
            let Ok((target, frame)) = self.injects.try_recv() else {
                break;
            };
            n += 1;
            let spent = match target {
                InjectTarget::Port(port) => {
                    self.send_frame(ReplyTo::Port { port, tag: None }, &frame);
                    Some(frame)
                }
                InjectTarget::Vlan(v) => {
                    self.send_frame(ReplyTo::Vlan(v), &frame);
                    Some(frame)
                }
                InjectTarget::PortInVlan(port, v) => {
                    let tag =
                        (self.pipeline.tables.egress_tagged(port, v) == Some(true)).then_some(v);
                    self.send_frame(ReplyTo::Port { port, tag }, &frame);
                    Some(frame)
                }
                InjectTarget::Routed => self.inject_routed(frame, now_ms),
            };
            if let Some(buf) = spent
                && buf.capacity() <= SPARE_BUFFER_MAX
            {
                let _ = self.spent_injects.try_send(buf);
            }
        }
        if n > 0 {
            self.flush();
        }
        n
    }

    /// A routed injection: routes it and, when its next hop is not resolved yet, keeps it
    /// waiting (the oldest waiting frame goes, counted, when the queue is full). Returns the
    /// frame's buffer when it is not kept.
    pub(super) fn inject_routed(&mut self, frame: Vec<u8>, now_ms: u64) -> Option<Vec<u8>> {
        let Originated::Gleaned { asked } = self.originate(&frame, now_ms, true) else {
            return Some(frame);
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
        None
    }

    /// Drops waiting frames past their deadline and routes the others again when a neighbour
    /// was learned, the tables changed, or [`GLEAN_RETRY_MS`] passed (so on an idle wake-up);
    /// a frame that gleans again keeps waiting and asks at most every [`GLEAN_REASK_MS`].
    /// A new attempt is no new packet and no new drop: the pipeline's `originated` and
    /// `glean` counters are kept as they were.
    pub(super) fn retry_gleaned(&mut self, now_ms: u64) {
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
    pub(super) fn originate(&mut self, frame: &[u8], now_ms: u64, may_ask: bool) -> Originated {
        // Headroom as for a received frame, so the Ethernet rewrite works in place.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.resize(HEADROOM + frame.len(), 0);
        buf[HEADROOM..].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf, HEADROOM, frame.len());
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

    pub(super) fn control_messages(&mut self, now_ms: u64) {
        while let Ok(msg) = self.control.try_recv() {
            // Frames injected before this message are handled first, as if they shared its
            // queue: a table change does not overtake them, a snapshot counts them (one
            // control-plane thread: they are all queued by now).
            while self.injected(now_ms) == INJECT_BATCH {}
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
                Control::Snapshot(reply) => {
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
                        ("inject-queue-full", &self.drops.inject_queue_full),
                        ("punt-queue-full", &self.drops.punts),
                        ("tx-ring-full", &self.drops.send_full),
                    ] {
                        let n = n.load(Ordering::Relaxed);
                        if n > 0 {
                            counters.drops.insert(name, n);
                        }
                    }
                    // The kernel's drops before the ports (as of the last link check).
                    let kernel: u64 = self
                        .ports
                        .iter()
                        .map(|(_, p)| p.stats().rx_kernel_dropped)
                        .sum();
                    if kernel > 0 {
                        counters.drops.insert("rx-ring-full", kernel);
                    }
                    let _ = reply.send(Snapshot {
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
                        links: self
                            .ports
                            .iter()
                            .zip(&self.links)
                            .map(|((id, _), link)| (*id, *link))
                            .collect(),
                        mac_ages: t
                            .fdb
                            .iter()
                            .map(|(k, e)| (*k, now_ms.saturating_sub(e.last_seen_ms)))
                            .collect(),
                    });
                }
                Control::Trace(port, tag, frame, reply) => {
                    let (out, steps) = self.pipeline.trace(port, tag, &frame, now_ms);
                    let _ = reply.send(Trace {
                        verdict: format!("{:?}", out.verdict),
                        reply: out.reply.map(|r| format!("{r:?}")),
                        steps,
                    });
                }
                Control::Notify(n) => self.notifier = Some(n),
                Control::Attach(id, port, reply) => {
                    let _ = reply.send(self.attach(id, port));
                }
                Control::Detach(id, reply) => {
                    let _ = reply.send(self.detach(id));
                }
            }
        }
    }

    /// A port attached while running: polled from the next round; its link is looked at then.
    fn attach(&mut self, id: PortId, mut port: Box<dyn PortIo>) -> Result<(), HalError> {
        if self.index.contains_key(&id) {
            return Err(HalError::PortExists {
                port: id.0,
                backend: "software".into(),
            });
        }
        // Its link as it is now: a snapshot right after the attach must not call it up.
        let link = match port.check_link().link {
            Link::Unwatched => Link::Up,
            link => link,
        };
        info!(port = %id, device = %port.name(), link = link.as_str(), "port attached at run time");
        self.index.insert(id, self.ports.len());
        self.ports.push((id, port));
        self.tx.push(TxQueue::new());
        self.links.push(link);
        if link.is_up() {
            self.event(HalEvent::PortUp(id));
        }
        self.ports_changed = true;
        Ok(())
    }

    /// A port detached while running: what was queued for it is dropped and counted
    /// (`port-down`), and it is no longer polled.
    fn detach(&mut self, id: PortId) -> Result<(), HalError> {
        let Some(i) = self.index.remove(&id) else {
            return Err(HalError::NoSuchPort {
                port: id.0,
                backend: "software".into(),
            });
        };
        let (_, port) = self.ports.remove(i);
        let queue = self.tx.remove(i);
        self.drops
            .port_down
            .fetch_add(queue.used as u64, Ordering::Relaxed);
        let was_up = self.links.remove(i).is_up();
        for (at, (pid, _)) in self.ports.iter().enumerate() {
            self.index.insert(*pid, at);
        }
        info!(port = %id, device = %port.name(), "port detached at run time");
        if was_up {
            self.event(HalEvent::PortDown(id));
        }
        self.ports_changed = true;
        Ok(())
    }
}
