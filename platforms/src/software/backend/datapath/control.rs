//! Control-plane messages handled between batches: table operations, entries, snapshots and
//! traces, the notifier, ports attached and detached.

use super::*;

impl Datapath {
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
