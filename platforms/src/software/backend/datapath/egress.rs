//! Egress: frames moved (a unicast forward) or copied (flooding, replies, injected frames) into
//! the ports' queues, punts to the control plane, and the queues flushed to the ports.

use super::*;

impl Datapath {
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

    /// The index of the egress queue of `port` with room for one more frame (flushed to the
    /// port first when full); `None` for an unknown port, or one whose device is gone (counted).
    fn queue_with_room(&mut self, port: PortId) -> Option<usize> {
        let &i = self.index.get(&port)?;
        if self.links[i] == Link::Gone {
            self.drops.port_down.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.tx[i].used == self.tx[i].slots.len() {
            self.flush_port(i);
        }
        Some(i)
    }

    /// Copies a frame into the egress queue of `port`; returns the queue's index when it was
    /// queued (it is the queue's last slot).
    pub(super) fn enqueue(
        &mut self,
        port: PortId,
        from: Src,
        tag: Option<VlanId>,
    ) -> Option<usize> {
        let i = self.queue_with_room(port)?;
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

    /// Moves the frame in rx slot `k` into the egress queue of `port` without copying it: the
    /// slot's buffer is swapped with the queue's free one (both are allocated alike), and the rx
    /// slot gets that free buffer back for the next receive. For a frame that goes out of one
    /// port and is not read again (a unicast forward); everything else is copied by
    /// [`Datapath::enqueue`].
    pub(super) fn enqueue_rx(&mut self, port: PortId, k: usize, tag: Option<VlanId>) {
        let Some(i) = self.queue_with_room(port) else {
            return;
        };
        let q = &mut self.tx[i];
        let Some(rx) = self.rx.get_mut(k) else {
            return;
        };
        let dst = &mut q.slots[q.used];
        std::mem::swap(dst, rx);
        rx.reset();
        dst.vlan = tag.map(VlanId::get);
        q.used += 1;
        q.open = false;
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
            let Some(i) = self.queue_with_room(port) else {
                continue;
            };
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
            && crate::software::port::complete_partial_checksum(&mut frame, first, offset).is_err()
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
}
