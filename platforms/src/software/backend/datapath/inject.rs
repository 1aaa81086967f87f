//! Frames the control plane injects: sent in batches, and routed ones that glean kept
//! waiting and routed again.

use super::*;

impl Datapath {
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
}
