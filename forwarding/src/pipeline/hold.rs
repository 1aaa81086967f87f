//! Packets held on first contact: a routed packet that misses the map-cache, or whose next hop
//! is not resolved yet (glean), waits — as Linux holds packets on an unresolved neighbour —
//! instead of being dropped, and goes on as soon as the Map-Reply (a map-cache table operation)
//! or the neighbour's answer (ARP, NA) arrives.
//!
//! Bounded: at most [`Settings::hold_per_destination`] packets per destination (a new one
//! pushes out the oldest, as Linux's `unres_qlen` does) and [`Settings::hold_total`] in all
//! (more are dropped), each for at most [`Settings::hold_timeout_ms`]. Every outcome is
//! counted (`held`, `held-released`, `drop hold-overflow`, `drop hold-timeout`). The slots are
//! allocated once, with the pipeline: holding allocates nothing.

use std::net::IpAddr;

use roamer_hal::{L3Interface, NextHop, PortId, VlanId};

use super::{DropReason, Frame, NoTrace, Outcome, Pipeline, Verdict};

/// The largest frame held (Ethernet header included); a larger one is dropped as before.
pub const HOLD_FRAME_MAX: usize = 2048;

/// What a held packet waits for, and where it goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiting {
    /// A map-cache entry for `dst`; the packet is routed again from the route lookup (its TTL
    /// not yet decremented when `decrement`).
    MapCache { dst: IpAddr, decrement: bool },
    /// The neighbour `ip` on `iface`; the packet goes on from the Ethernet rewrite.
    Neighbor { iface: L3Interface, ip: IpAddr },
}

impl Waiting {
    fn same_destination(&self, other: &Waiting) -> bool {
        match (self, other) {
            (Waiting::MapCache { dst: a, .. }, Waiting::MapCache { dst: b, .. }) => a == b,
            (a @ Waiting::Neighbor { .. }, b @ Waiting::Neighbor { .. }) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Held {
    waiting: Waiting,
    /// Where it came in (ICMP errors on the way on go there).
    ingress: Option<(L3Interface, PortId, Option<VlanId>)>,
    deadline_ms: u64,
    slot: usize,
    len: usize,
    released: bool,
}

/// The held packets and their preallocated slots.
#[derive(Debug)]
pub(super) struct HoldQueue {
    arena: Box<[u8]>,
    free: Vec<usize>,
    /// Oldest first (so also in deadline order).
    held: Vec<Held>,
    /// [`crate::tables::Tables::generation`] when the held packets were last looked at.
    generation: u64,
    /// Where [`Pipeline::reask_held`] goes on.
    reask_from: usize,
}

impl HoldQueue {
    pub(super) fn new(total: usize) -> Self {
        HoldQueue {
            arena: vec![0u8; total * HOLD_FRAME_MAX].into_boxed_slice(),
            free: (0..total).rev().collect(),
            held: Vec::with_capacity(total),
            generation: 0,
            reask_from: 0,
        }
    }

    fn release_slot(&mut self, i: usize) -> Held {
        let h = self.held.remove(i);
        self.free.push(h.slot);
        h
    }
}

/// A held packet sent on ([`Pipeline::resume_released`]): it came in on `port` (with `tag`),
/// now lies at `buf[start..start + len]`, and `outcome` says where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    pub port: PortId,
    pub tag: Option<VlanId>,
    pub start: usize,
    pub len: usize,
    pub outcome: Outcome,
}

impl Pipeline {
    /// Holds the frame until `waiting` is resolved, or drops it with `otherwise` where it cannot
    /// be held (an originated packet, a large segment, a frame beyond
    /// [`HOLD_FRAME_MAX`], holding turned off).
    pub(super) fn hold(
        &mut self,
        waiting: Waiting,
        frame: &mut Frame<'_>,
        now_ms: u64,
        otherwise: DropReason,
    ) -> Outcome {
        let drop = Outcome::dropped;
        let per_destination = self.settings.hold_per_destination;
        let holds = per_destination > 0 && self.hold.held.capacity() > 0;
        if self.tracing && holds && !frame.large && frame.len <= HOLD_FRAME_MAX {
            // A trace tells what would happen, and keeps nothing.
            return Outcome::no_reply(Verdict::Held);
        }
        if !self.may_hold
            || per_destination == 0
            || self.hold.held.capacity() == 0
            || frame.large
            || frame.len > HOLD_FRAME_MAX
        {
            return drop(otherwise);
        }
        let q = &mut self.hold;
        let mut same = q
            .held
            .iter()
            .filter(|h| h.waiting.same_destination(&waiting));
        if same.nth(per_destination - 1).is_some() {
            // As Linux's neighbour queue: the newest packets are the ones worth sending.
            if let Some(i) = q
                .held
                .iter()
                .position(|h| h.waiting.same_destination(&waiting))
            {
                q.release_slot(i);
                *self
                    .counters
                    .drops
                    .entry(DropReason::HoldOverflow.name())
                    .or_insert(0) += 1;
            }
        }
        let q = &mut self.hold;
        let Some(slot) = q.free.pop() else {
            return drop(DropReason::HoldOverflow);
        };
        // The offload will not see this frame again: its checksum is completed now.
        frame.complete_partial_checksum();
        let at = slot * HOLD_FRAME_MAX;
        q.arena[at..at + frame.len].copy_from_slice(frame.bytes());
        q.held.push(Held {
            waiting,
            ingress: self.ingress,
            deadline_ms: now_ms.saturating_add(self.settings.hold_timeout_ms),
            slot,
            len: frame.len,
            released: false,
        });
        Outcome::no_reply(Verdict::Held)
    }

    /// How many packets are held.
    pub fn held(&self) -> usize {
        self.hold.held.len()
    }

    /// Looks at the held packets: drops (and counts) those held past the timeout and, when the
    /// tables changed since the last look, releases those whose wait is over (a map-cache
    /// entry, or a route that no longer leads to LISP; the neighbour resolved). Returns whether
    /// any is released; take them with [`Pipeline::resume_released`]. Cheap when nothing
    /// changed: the backend calls it on every round while packets are held.
    pub fn poll_held(&mut self, now_ms: u64) -> bool {
        while self
            .hold
            .held
            .first()
            .is_some_and(|h| !h.released && h.deadline_ms <= now_ms)
        {
            self.hold.release_slot(0);
            *self
                .counters
                .drops
                .entry(DropReason::HoldTimeout.name())
                .or_insert(0) += 1;
        }
        if self.hold.generation != self.tables.generation {
            self.hold.generation = self.tables.generation;
            let tables = &self.tables;
            for h in &mut self.hold.held {
                h.released = match h.waiting {
                    Waiting::MapCache { dst, .. } => match tables.route(dst) {
                        Some(NextHop::Lisp) => tables.map_cache(dst).is_some(),
                        _ => true,
                    },
                    Waiting::Neighbor { iface, ip } => tables.neighbors.contains_key(&(iface, ip)),
                };
            }
        }
        self.hold.held.iter().any(|h| h.released)
    }

    /// Asks again (ARP request, neighbour solicitation) for a neighbour that held packets wait
    /// for and that was not asked within the last second, as Linux retransmits its
    /// solicitations while packets wait: the frame is [`Pipeline::reply`], to send as
    /// [`ReplyTo`] says. Call until `None` (each neighbour is asked at most once a second, so
    /// this ends).
    pub fn reask_held(&mut self, now_ms: u64) -> Option<super::ReplyTo> {
        // Each call goes on where the last one stopped: one pass over the held packets.
        let mut i = self.hold.reask_from;
        while let Some(h) = self.hold.held.get(i) {
            i += 1;
            self.hold.reask_from = i;
            if let Waiting::Neighbor { iface, ip } = h.waiting
                && !h.released
            {
                self.reply_len = 0;
                if let Some(to) = self.glean(iface, ip, now_ms) {
                    self.counters.replies += 1;
                    return Some(to);
                }
            }
        }
        self.hold.reask_from = 0;
        None
    }

    /// Takes the oldest released packet ([`Pipeline::poll_held`]) into `buf` at `headroom`
    /// (room for a LISP encapsulation in front) and sends it on from where it waited: the
    /// encapsulation or routing, or the Ethernet rewrite. `None` when none is left. A packet
    /// that does not fit `buf` is dropped and counted.
    pub fn resume_released(
        &mut self,
        buf: &mut [u8],
        headroom: usize,
        now_ms: u64,
    ) -> Option<Resumed> {
        loop {
            let i = self.hold.held.iter().position(|h| h.released)?;
            let h = self.hold.release_slot(i);
            let at = h.slot * HOLD_FRAME_MAX;
            let Some(dst) = buf.get_mut(headroom..headroom + h.len) else {
                *self
                    .counters
                    .drops
                    .entry(DropReason::HoldOverflow.name())
                    .or_insert(0) += 1;
                continue;
            };
            dst.copy_from_slice(&self.hold.arena[at..at + h.len]);
            self.reply_len = 0;
            self.ingress = h.ingress;
            self.may_hold = true;
            self.counters.released += 1;
            let mut frame = Frame::new(&mut *buf, headroom, h.len);
            let t = &mut NoTrace;
            let outcome = match h.waiting {
                Waiting::MapCache { dst, decrement } => {
                    self.route_ip(&mut frame, dst, now_ms, decrement, t)
                }
                Waiting::Neighbor { iface, ip } => {
                    let out = self.towards_neighbor(iface, ip, &mut frame, now_ms, t);
                    self.tcp_segments_to_fit(out, &frame, t)
                }
            };
            self.count(&outcome);
            let (port, tag) = h
                .ingress
                .map_or((PortId(u32::MAX), None), |(_, p, v)| (p, v));
            return Some(Resumed {
                port,
                tag,
                start: frame.start,
                len: frame.len,
                outcome,
            });
        }
    }
}
