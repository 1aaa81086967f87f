//! The forwarding half of the data path: a received batch through the pipeline, the verdicts
//! acted on, held packets released, and packets too large for their path cut into pieces.

use super::*;

impl Datapath {
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
                } else if let Src::Rx(k) = src {
                    self.enqueue_rx(out_port, k, tag);
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
}
