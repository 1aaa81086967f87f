//! The protocol instances as tasks, each with one inbox.
//!
//! The LISP instance (xTR, Map-Server/Map-Resolver, reliable sessions) and the HSRP groups each
//! run as one task: punted frames and data-plane events arrive in its inbox, its timers tick in
//! the task, and what it sends or programs goes straight to the data plane through
//! [`roamer_control::outbox::Outbox`]. The daemon's loop only drains the data plane and routes
//! each punt and event to the inbox of the instance it is for. Configuration changes are applied
//! by the configuring session in order (the xTR releases remapped rows, the tables move, then the
//! instances follow), under the instances' own locks; `show` copies rows under the same locks.
//!
//! Lock order, everywhere: daemon state, then HSRP, then LISP, then the data plane.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use roamer_control::hsrp::HsrpInstances;
use roamer_control::lisp::instance::{LispInput, LispInstance};
use roamer_hal::{HalEvent, Punt, PuntReason};
use tokio::sync::mpsc;
use tracing::{Instrument, info_span, warn};

use crate::dataplane::{Dataplane, carry_out_hsrp};

/// How often an instance's timers run.
const TICK: Duration = Duration::from_millis(10);

/// Batches an inbox holds before the router counts further ones as dropped.
const INBOX_BATCHES: usize = 256;

/// Shared ownership of one part of the daemon (a poisoned lock is taken over: a panicking
/// session must not take the daemon down with it).
pub type Shared<T> = Arc<Mutex<T>>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the LISP task's inbox carries.
#[derive(Debug)]
enum LispMessage {
    Punts(Vec<Punt>),
    Events(Vec<HalEvent>),
}

/// The instances and the data plane they send through.
#[derive(Debug, Clone)]
pub struct Instances {
    pub dataplane: Shared<Dataplane>,
    pub hsrp: Shared<HsrpInstances>,
    pub lisp: Shared<LispInstance>,
    /// Punts and events dropped because an instance's inbox was full (`show forwarding
    /// counters`: `drop instance-inbox-full`).
    pub inbox_dropped: Arc<AtomicU64>,
}

impl Instances {
    pub fn new(dataplane: Dataplane) -> Self {
        Instances {
            dataplane: Arc::new(Mutex::new(dataplane)),
            hsrp: Arc::new(Mutex::new(HsrpInstances::default())),
            lisp: Arc::new(Mutex::new(LispInstance::default())),
            inbox_dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts one task per instance (inside the daemon's runtime) and returns the router that
    /// feeds their inboxes.
    pub fn spawn(&self) -> Router {
        let (lisp_tx, lisp_rx) = mpsc::channel(INBOX_BATCHES);
        let (hsrp_tx, hsrp_rx) = mpsc::channel(INBOX_BATCHES);
        tokio::spawn(
            lisp_task(self.lisp.clone(), self.dataplane.clone(), lisp_rx)
                .instrument(info_span!("lisp")),
        );
        tokio::spawn(
            hsrp_task(self.hsrp.clone(), self.dataplane.clone(), hsrp_rx)
                .instrument(info_span!("hsrp")),
        );
        Router {
            lisp: lisp_tx,
            hsrp: hsrp_tx,
            dropped: self.inbox_dropped.clone(),
        }
    }
}

/// Routes what the data plane hands up to the instance it is for.
#[derive(Debug)]
pub struct Router {
    lisp: mpsc::Sender<LispMessage>,
    hsrp: mpsc::Sender<Vec<Punt>>,
    /// Punts and events an instance's full inbox could not take.
    dropped: Arc<AtomicU64>,
}

impl Router {
    /// Hands `punts` (leaving it empty) and the events an instance acts on to the instances'
    /// inboxes. A batch an inbox cannot take is counted and dropped; its punts' buffers go back
    /// to the data plane.
    pub fn route(&self, punts: &mut Vec<Punt>, events: &[HalEvent], dataplane: &Shared<Dataplane>) {
        if !punts.is_empty() {
            let (hsrp, lisp): (Vec<Punt>, Vec<Punt>) =
                punts.drain(..).partition(|p| p.reason == PuntReason::Hsrp);
            if !hsrp.is_empty()
                && let Err(e) = self.hsrp.try_send(hsrp)
            {
                self.refused("hsrp", e.into_inner(), dataplane);
            }
            let lisp: Vec<Punt> = lisp
                .into_iter()
                .filter(|p| matches!(p.reason, PuntReason::LispControl | PuntReason::ForUs))
                .collect();
            if !lisp.is_empty()
                && let Err(e) = self.lisp.try_send(LispMessage::Punts(lisp))
                && let LispMessage::Punts(p) = e.into_inner()
            {
                self.refused("lisp", p, dataplane);
            }
        }
        let wanted = |e: &HalEvent| {
            matches!(
                e,
                HalEvent::DynamicEidSeen { .. }
                    | HalEvent::MapCacheMiss { .. }
                    | HalEvent::EidNotHere { .. }
                    | HalEvent::NoRoute { .. }
            )
        };
        if events.iter().any(wanted) {
            let batch: Vec<HalEvent> = events.iter().filter(|e| wanted(e)).cloned().collect();
            let n = batch.len() as u64;
            if self.lisp.try_send(LispMessage::Events(batch)).is_err() {
                self.count_dropped("lisp", n);
            }
        }
    }

    fn refused(&self, instance: &'static str, mut punts: Vec<Punt>, dataplane: &Shared<Dataplane>) {
        self.count_dropped(instance, punts.len() as u64);
        lock(dataplane).recycle_punts(&mut punts);
    }

    fn count_dropped(&self, instance: &'static str, n: u64) {
        let before = self.dropped.fetch_add(n, Ordering::Relaxed);
        // One line per 1024 drops: a flood must not become a log flood.
        if before / 1024 != (before + n) / 1024 || before == 0 {
            warn!(
                instance,
                dropped = before + n,
                "instance inbox full: punts or events dropped (counted)"
            );
        }
    }
}

async fn lisp_task(
    lisp: Shared<LispInstance>,
    dataplane: Shared<Dataplane>,
    mut inbox: mpsc::Receiver<LispMessage>,
) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            message = inbox.recv() => {
                let Some(message) = message else { return };
                let mut instance = lock(&lisp);
                let mut dp = lock(&dataplane);
                match message {
                    LispMessage::Punts(mut punts) => {
                        for punt in &punts {
                            instance.handle(LispInput::Punt(punt), &mut *dp);
                        }
                        // Their buffers carry the next punts (no allocation per punted frame).
                        dp.recycle_punts(&mut punts);
                    }
                    LispMessage::Events(events) => {
                        for e in &events {
                            instance.handle(LispInput::Event(e), &mut *dp);
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let mut instance = lock(&lisp);
                let mut dp = lock(&dataplane);
                instance.handle(LispInput::Tick, &mut *dp);
            }
        }
    }
}

async fn hsrp_task(
    hsrp: Shared<HsrpInstances>,
    dataplane: Shared<Dataplane>,
    mut inbox: mpsc::Receiver<Vec<Punt>>,
) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            punts = inbox.recv() => {
                let Some(mut punts) = punts else { return };
                let mut groups = lock(&hsrp);
                let mut dp = lock(&dataplane);
                for p in &punts {
                    let actions = groups.punt(p);
                    carry_out_hsrp(actions, &mut dp);
                }
                dp.recycle_punts(&mut punts);
            }
            _ = tick.tick() => {
                let mut groups = lock(&hsrp);
                let actions = groups.tick();
                if !actions.is_empty() {
                    carry_out_hsrp(actions, &mut lock(&dataplane));
                }
            }
        }
    }
}
