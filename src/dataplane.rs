//! The data plane the daemon drives, chosen by `platform.backend` and opened by the one
//! factory ([`roamer_platforms::open`]), and the configuration's table entries applied to it.
//!
//! The daemon keeps what is actually installed (the desired entries minus the operations the
//! backend refused) and retries the difference on its timer ([`Dataplane::retry_due`]), so
//! that once the backend succeeds again the tables match the configuration.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use roamer_control::config::Config;
use roamer_control::reconcile::{self, port_bindings};
use roamer_hal::{
    Accounted, Backend, BackendKind, CapacityScope, DataPlane, HalError, HalEvent, InjectTarget,
    Notifier, OpAction, PacketIo, PortAttach, PortId, PortIoInfo, Punt, TableEntry, TableKey,
    TableKind, TableOp, Trace, Usage, VlanId,
};
use roamer_platforms::{PlatformError, PortSpec};
use tracing::{info, warn};

/// First wait before a retry of refused table operations; doubled after every round that
/// installed nothing, up to [`RETRY_MAX`]. Only transient failures
/// ([`HalError::is_transient`]: a data path not answering, an injected failure) start the
/// timer; a full table or an unsupported operation is tried again at the next configuration
/// change.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(4);

type Key = (TableKind, TableKey);

/// The running data plane, with the capacity of the admitted cards enforced in front of it.
#[derive(Debug)]
pub struct Dataplane {
    backend: Accounted<Box<dyn DataPlane>>,
    /// What the configuration wants in the tables.
    desired: Vec<TableEntry>,
    /// What is in the tables as far as the daemon knows: every operation that succeeded.
    installed: BTreeMap<Key, TableEntry>,
    retry: Retry,
    /// How each software-backend port moves its frames (AF_XDP, AF_PACKET and why).
    port_io: BTreeMap<PortId, PortIoInfo>,
}

#[derive(Debug)]
struct Retry {
    /// When the next round is due; `None` while nothing is pending.
    due: Option<Instant>,
    wait: Duration,
    /// Rounds run since the daemon started.
    rounds: u64,
}

/// What one retry round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRound {
    pub round: u64,
    pub ops: usize,
    pub failed: usize,
}

impl Dataplane {
    /// Opens the backend the platform names; software ports are the configuration's ports.
    pub fn open(
        kind: BackendKind,
        cfg: &Config,
        scopes: Vec<CapacityScope>,
    ) -> Result<Dataplane, PlatformError> {
        let ports: Vec<PortSpec> = port_bindings(cfg)
            .into_iter()
            .map(|b| PortSpec {
                id: b.id,
                name: b.name.to_string(),
                device: b.device,
                io: b.io,
            })
            .collect();
        let opened = roamer_platforms::open(kind, &ports)?;
        // A chaos wrapper (ROAMER_CHAOS) is healed from outside through its `healthy-when`
        // file; the daemon needs no handle on it.
        let mut dataplane = Dataplane::new(opened.dataplane, scopes);
        dataplane.port_io = opened.port_io.into_iter().collect();
        Ok(dataplane)
    }

    /// Wraps an opened data plane (for tests: any `DataPlane`).
    pub fn new(backend: Box<dyn DataPlane>, scopes: Vec<CapacityScope>) -> Dataplane {
        Dataplane {
            backend: Accounted::new(backend, scopes),
            desired: Vec::new(),
            installed: BTreeMap::new(),
            retry: Retry {
                due: None,
                wait: RETRY_FIRST,
                rounds: 0,
            },
            port_io: BTreeMap::new(),
        }
    }

    /// How every port opened at start moves its frames, where the backend said (software
    /// backend ports).
    pub fn port_io_reports(&self) -> &BTreeMap<PortId, PortIoInfo> {
        &self.port_io
    }

    pub fn backend(&mut self) -> &mut dyn Backend {
        &mut self.backend
    }

    pub fn name(&self) -> &str {
        self.backend.name()
    }

    pub fn usage(&self) -> Vec<Usage> {
        self.backend.usage()
    }

    /// What the data path learned; an error when it does not answer.
    /// A read-only view for `show`, used without this data plane's lock.
    pub fn reader(&self) -> Box<dyn roamer_hal::DataPlaneReader> {
        self.backend.reader()
    }

    #[cfg(test)]
    pub fn learned(&self) -> Result<roamer_hal::Learned, HalError> {
        self.backend.learned()
    }

    /// Traces a frame through the backend's pipeline; a backend without one says so.
    pub fn trace(
        &self,
        port: PortId,
        tag: Option<VlanId>,
        frame: Vec<u8>,
    ) -> Result<Trace, HalError> {
        self.backend.trace(port, tag, frame)
    }

    #[cfg(test)]
    pub fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        self.backend.entries(kind)
    }

    pub fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        self.backend.inject(target, frame)
    }

    /// Has the data path call `notify` when it queued events or punts (a backend that queues
    /// them synchronously needs no such call: the daemon's poll is enough).
    pub fn set_notifier(&mut self, notify: Notifier) {
        match self.backend.set_notifier(notify) {
            Ok(_) => {}
            Err(e) => warn!(error = %e, "data-path notifications unavailable: polling only"),
        }
    }

    pub fn drain(&mut self, events: &mut Vec<HalEvent>, punts: &mut Vec<Punt>) {
        self.backend.drain_events(events);
        self.backend.drain_punts(punts);
    }

    /// Gives the buffers of handled punts back to the data path (`punts` is left empty).
    pub fn recycle_punts(&mut self, punts: &mut Vec<Punt>) {
        self.backend.recycle_punts(punts);
    }

    /// Attaches the ports `new` binds that `old` does not, and detaches the ones it no longer
    /// binds (a port bound to another device is detached and attached again). All or nothing:
    /// when the data plane refuses one, what was done is undone and the error says what to do.
    pub fn move_ports(&mut self, old: &Config, new: &Config) -> Result<(), String> {
        let attach_specs = |cfg: &Config| -> BTreeMap<PortId, PortAttach> {
            port_bindings(cfg)
                .into_iter()
                .map(|b| {
                    let spec = PortAttach {
                        port: b.id,
                        name: b.name.to_string(),
                        device: b.device,
                        io: b.io,
                    };
                    (b.id, spec)
                })
                .collect()
        };
        let (before, after) = (attach_specs(old), attach_specs(new));
        // A port whose device or forced I/O changed goes and comes back.
        let gone: Vec<&PortAttach> = before
            .iter()
            .filter(|(id, b)| after.get(id) != Some(b))
            .map(|(_, b)| b)
            .collect();
        let came: Vec<&PortAttach> = after
            .iter()
            .filter(|(id, b)| before.get(id) != Some(b))
            .map(|(_, b)| b)
            .collect();
        let mut detached = Vec::new();
        let mut attached = Vec::new();
        let mut failure = None;
        for spec in &gone {
            match self.backend.detach_port(spec.port) {
                Ok(()) => {
                    info!(interface = %spec.name, device = %spec.device, "port detached");
                    detached.push((*spec, self.port_io.remove(&spec.port)));
                }
                Err(e) => {
                    failure = Some((spec.name.clone(), e));
                    break;
                }
            }
        }
        if failure.is_none() {
            for spec in &came {
                match self.backend.attach_port(spec) {
                    Ok(info) => {
                        info!(interface = %spec.name, device = %spec.device, io = %info.io,
                            "port attached");
                        self.port_io.insert(spec.port, info);
                        attached.push(spec.port);
                    }
                    Err(e) => {
                        failure = Some((spec.name.clone(), e));
                        break;
                    }
                }
            }
        }
        let Some((name, error)) = failure else {
            return Ok(());
        };
        for id in attached.into_iter().rev() {
            self.port_io.remove(&id);
            if let Err(e) = self.backend.detach_port(id) {
                warn!(port = %id, error = %e, "undoing a port attach failed");
            }
        }
        for (spec, report) in detached.into_iter().rev() {
            match self.backend.attach_port(spec) {
                Ok(_) => {
                    if let Some(r) = report {
                        self.port_io.insert(spec.port, r);
                    }
                }
                Err(e) => warn!(interface = %spec.name, error = %e, "undoing a port detach failed"),
            }
        }
        Err(match error {
            HalError::NotSupported { .. } => format!(
                "% {name}: the {} data plane takes ports only at start: not applied (save it \
                 with copy running-config startup-config, then restart roamer)\n",
                self.name()
            ),
            e => format!("% {name}: {e}: not applied\n"),
        })
    }

    /// Moves the tables to the entries of `new`, from what is installed; failures are logged
    /// and returned as lines for the operator, and retried on the timer
    /// ([`Dataplane::retry_due`]) until they succeed or the configuration no longer wants them.
    pub fn reconcile(&mut self, new: &Config) -> Vec<String> {
        self.desired = reconcile::desired(new);
        self.retry.wait = RETRY_FIRST;
        let ops = self.pending();
        if ops.is_empty() {
            self.retry.due = None;
            return Vec::new();
        }
        let failures = self.apply_tracked(&ops);
        for (op, e) in &failures {
            warn!(op = %op, error = %e, "table operation failed");
        }
        info!(
            ops = ops.len(),
            failed = failures.len(),
            "forwarding tables updated"
        );
        self.schedule(failures.iter().any(|(_, e)| e.is_transient()), false);
        failures
            .iter()
            .map(|(op, e)| format!("% {op}: {e}"))
            .collect()
    }

    /// The operations that would move the installed tables to the desired ones.
    pub fn pending(&self) -> Vec<TableOp> {
        let installed: Vec<TableEntry> = self.installed.values().cloned().collect();
        reconcile::diff(&installed, &self.desired)
    }

    /// Runs a retry round when one is due at `now`: applies what is still pending, one log line
    /// for the round. `None` when no round was due.
    pub fn retry_due(&mut self, now: Instant) -> Option<RetryRound> {
        let due = self.retry.due?;
        if now < due {
            return None;
        }
        let ops = self.pending();
        if ops.is_empty() {
            self.retry.due = None;
            return None;
        }
        self.retry.rounds += 1;
        let failures = self.apply_tracked(&ops);
        let round = RetryRound {
            round: self.retry.rounds,
            ops: ops.len(),
            failed: failures.len(),
        };
        let progress = failures.len() < ops.len();
        if failures.is_empty() {
            info!(
                round = round.round,
                ops = round.ops,
                "table operations retried: tables match the configuration"
            );
        } else {
            warn!(
                round = round.round,
                ops = round.ops,
                failed = round.failed,
                first_error = %failures[0].1,
                "table operations retried: some still fail"
            );
        }
        self.schedule(failures.iter().any(|(_, e)| e.is_transient()), !progress);
        Some(round)
    }

    /// Retry rounds run so far.
    pub fn retry_rounds(&self) -> u64 {
        self.retry.rounds
    }

    fn schedule(&mut self, transient: bool, back_off: bool) {
        if !transient {
            self.retry.due = None;
            self.retry.wait = RETRY_FIRST;
            return;
        }
        if back_off {
            self.retry.wait = (self.retry.wait * 2).min(RETRY_MAX);
        } else {
            self.retry.wait = RETRY_FIRST;
        }
        self.retry.due = Some(Instant::now() + self.retry.wait);
    }

    /// Applies `ops` and records what succeeded in `installed`; returns the failures.
    ///
    /// An add refused with `Exists` means a row is there (an earlier attempt that timed out may
    /// have landed): the backend's row is taken as installed, so the next round updates it if it
    /// differs. A remove refused with `NotFound` means it is gone.
    fn apply_tracked(&mut self, ops: &[TableOp]) -> Vec<(TableOp, HalError)> {
        let results = self.backend.apply(ops);
        let mut failures = Vec::new();
        for (op, r) in ops.iter().zip(results) {
            let key = (op.kind(), op.entry.key());
            match (op.action, r) {
                (OpAction::Add | OpAction::Update, Ok(())) => {
                    self.installed.insert(key, op.entry.clone());
                }
                (OpAction::Remove, Ok(())) | (OpAction::Remove, Err(HalError::NotFound { .. })) => {
                    self.installed.remove(&key);
                }
                (OpAction::Add, Err(e @ HalError::Exists { .. })) => {
                    let held =
                        self.backend.entries(op.kind()).ok().and_then(|rows| {
                            rows.into_iter().find(|row| row.key() == op.entry.key())
                        });
                    match held {
                        Some(row) => {
                            self.installed.insert(key, row);
                        }
                        None => failures.push((op.clone(), e)),
                    }
                }
                (_, Err(e)) => failures.push((op.clone(), e)),
            }
        }
        failures
    }
}

/// Protocol instances send through the data plane: frames injected, table operations applied
/// one at a time with their result.
impl roamer_control::outbox::Outbox for Dataplane {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        Dataplane::inject(self, target, frame)
    }

    fn apply(&mut self, op: &TableOp) -> Result<(), HalError> {
        self.backend()
            .apply(std::slice::from_ref(op))
            .pop()
            .unwrap_or_else(|| {
                Err(HalError::NotAnswering {
                    backend: self.name().to_string(),
                    operation: "apply",
                    detail: "no result for the operation",
                })
            })
    }
}

/// Carries out HSRP groups' actions: hellos flooded in their VLAN, virtual MAC/IP table
/// operations applied (a failure is logged and counted by the backend's result).
pub fn carry_out_hsrp(actions: Vec<roamer_control::hsrp::VlanAction>, dataplane: &mut Dataplane) {
    use roamer_control::hsrp::Action;
    for (vlan, action) in actions {
        match action {
            Action::Send(frame) => {
                if let Err(e) = dataplane.inject(InjectTarget::Vlan(vlan), &frame) {
                    warn!(%vlan, error = %e, "HSRP frame not sent");
                }
            }
            Action::Table(op) => {
                for r in dataplane.backend().apply(std::slice::from_ref(&op)) {
                    if let Err(e) = r {
                        warn!(op = %op, error = %e, "HSRP table operation failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use roamer_control::config::{self, Syntax};
    use roamer_platforms::chaos::{Chaos, ChaosHandle, ChaosSpec};
    use roamer_platforms::sim::SimBackend;

    use super::*;

    const SVIS: &str = "hostname chaos\nroamer platform backend sim\nfeature interface-vlan\nvlan 10,20\ninterface Vlan10\n  ip address 10.10.0.1/24\ninterface Vlan20\n  ip address 10.20.0.1/24\nip route 0.0.0.0/0 10.10.0.254\n";

    fn cfg(text: &str) -> Config {
        config::parse(text, Syntax::Cli)
            .expect("test config parses")
            .0
    }

    fn chaos(spec: &str) -> (Dataplane, ChaosHandle) {
        let spec = ChaosSpec::parse(spec).expect("spec");
        let (c, h) = Chaos::new(Box::new(SimBackend::default()), spec);
        (Dataplane::new(Box::new(c), Vec::new()), h)
    }

    /// Every desired entry is in the backend's tables, and nothing else of those tables.
    fn assert_tables_match(dp: &Dataplane, cfg: &Config) {
        let want = reconcile::desired(cfg);
        for kind in TableKind::ALL {
            let mut w: Vec<&TableEntry> = want.iter().filter(|e| e.kind() == kind).collect();
            let rows = dp.entries(kind).expect("rows");
            let mut r: Vec<&TableEntry> = rows.iter().collect();
            w.sort_by_key(|e| e.key());
            r.sort_by_key(|e| e.key());
            assert_eq!(r, w, "{kind}");
        }
    }

    #[test]
    fn refused_ops_are_reported_then_retried_until_the_backend_heals() {
        let (mut dp, heal) = chaos("tables=router-mac,interface-address");
        let c = cfg(SVIS);
        let failures = dp.reconcile(&c);
        assert!(
            failures.len() >= 4
                && failures
                    .iter()
                    .all(|f| f.contains("injected failure of add")),
            "{failures:?}"
        );
        let pending = dp.pending().len();
        assert_eq!(pending, failures.len());
        let start = Instant::now();
        assert_eq!(dp.retry_due(start), None, "not due before the first wait");
        let round = dp
            .retry_due(start + RETRY_MAX)
            .expect("a round is due after the wait");
        assert_eq!((round.ops, round.failed), (pending, pending));
        heal.set_healthy(true);
        let round = dp
            .retry_due(Instant::now() + RETRY_MAX * 2)
            .expect("still due while ops fail");
        assert_eq!(round.failed, 0, "{round:?}");
        assert!(dp.pending().is_empty());
        assert_eq!(dp.retry_rounds(), 2);
        assert_eq!(
            dp.retry_due(Instant::now() + RETRY_MAX * 4),
            None,
            "nothing left"
        );
        assert_tables_match(&dp, &c);
        // A later change starts from what is installed.
        let smaller = cfg(&SVIS.replace("interface Vlan20\n  ip address 10.20.0.1/24\n", ""));
        assert_eq!(dp.reconcile(&smaller), Vec::<String>::new());
        assert_tables_match(&dp, &smaller);
    }

    #[test]
    fn a_fraction_of_failures_converges_on_the_timer() {
        let (mut dp, heal) = chaos("fraction=0.4;seed=11");
        let mut text = String::from(SVIS);
        for v in 100..140 {
            text.push_str(&format!(
                "vlan {v}\ninterface Vlan{v}\n  ip address 10.{v}.0.1/24\n"
            ));
        }
        let c = cfg(&text);
        let failures = dp.reconcile(&c);
        assert!(!failures.is_empty(), "0.4 of ~120 ops fails some");
        let mut at = Instant::now();
        let mut rounds = 0;
        while !dp.pending().is_empty() {
            at += RETRY_MAX;
            dp.retry_due(at);
            rounds += 1;
            assert!(
                rounds < 40,
                "no convergence: {} pending",
                dp.pending().len()
            );
        }
        assert!(heal.injected() >= failures.len() as u64);
        assert_tables_match(&dp, &c);
    }

    #[test]
    fn a_full_table_is_not_retried_on_the_timer() {
        let mut scope = CapacityScope {
            name: "slot 3 (TEST)".into(),
            limits: Default::default(),
        };
        scope.limits.insert(TableKind::RouterMac, 1);
        let mut dp = Dataplane::new(Box::new(SimBackend::default()), vec![scope]);
        let failures = dp.reconcile(&cfg(SVIS));
        assert!(
            failures.iter().any(|f| f.contains("router MAC table full")),
            "{failures:?}"
        );
        assert!(!dp.pending().is_empty());
        assert_eq!(dp.retry_due(Instant::now() + RETRY_MAX * 8), None);
    }

    /// A data plane that takes its ports only at start (the HAL's default answer).
    struct StartOnly(SimBackend);

    impl Backend for StartOnly {
        fn name(&self) -> &str {
            "start-only"
        }
        fn capabilities(&self) -> roamer_hal::Capabilities {
            self.0.capabilities()
        }
        fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
            self.0.apply(batch)
        }
        fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
            self.0.entries(kind)
        }
        fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
            self.0.drain_events(out)
        }
    }

    impl PacketIo for StartOnly {
        fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
            self.0.inject(target, frame)
        }
        fn drain_punts(&mut self, out: &mut Vec<Punt>) {
            self.0.drain_punts(out)
        }
    }

    impl DataPlane for StartOnly {
        fn learned(&self) -> Result<roamer_hal::Learned, HalError> {
            self.0.learned()
        }
        fn trace(
            &self,
            port: PortId,
            tag: Option<VlanId>,
            frame: Vec<u8>,
        ) -> Result<Trace, HalError> {
            self.0.trace(port, tag, frame)
        }
    }

    const ONE_PORT: &str =
        "hostname p\nroamer platform backend sim\ninterface Ethernet1/1\n  switchport\n";
    const TWO_PORTS: &str = "hostname p\nroamer platform backend sim\ninterface Ethernet1/1\n  switchport\ninterface Ethernet1/2\n  switchport\n";

    #[test]
    fn a_port_change_on_a_data_plane_that_takes_ports_only_at_start_says_restart() {
        let mut dp = Dataplane::new(Box::new(StartOnly(SimBackend::default())), Vec::new());
        let err = dp
            .move_ports(&cfg(ONE_PORT), &cfg(TWO_PORTS))
            .expect_err("refused");
        assert!(
            err.contains("Ethernet1/2")
                && err.contains("takes ports only at start")
                && err.contains("then restart roamer"),
            "{err}"
        );
        assert_eq!(dp.move_ports(&cfg(ONE_PORT), &cfg(ONE_PORT)), Ok(()));
    }

    #[test]
    fn a_port_move_that_fails_half_way_is_undone() {
        let mut sim = SimBackend::default();
        // Ethernet1/2's port is taken already: attaching it fails after Ethernet1/1's attach.
        sim.add_port(reconcile::port_id(1, 2));
        let mut dp = Dataplane::new(Box::new(sim), Vec::new());
        let none = cfg("hostname p\nroamer platform backend sim\n");
        let err = dp.move_ports(&none, &cfg(TWO_PORTS)).expect_err("refused");
        assert!(
            err.contains("Ethernet1/2") && err.contains("already attached"),
            "{err}"
        );
        let links: Vec<PortId> = dp
            .learned()
            .expect("learned")
            .links
            .iter()
            .map(|l| l.port)
            .collect();
        assert_eq!(
            links,
            vec![reconcile::port_id(1, 2)],
            "Ethernet1/1's attach undone"
        );
        // Without the conflict the same move goes through, both ways.
        let mut dp = Dataplane::new(Box::new(SimBackend::default()), Vec::new());
        assert_eq!(dp.move_ports(&none, &cfg(TWO_PORTS)), Ok(()));
        assert_eq!(dp.learned().expect("learned").links.len(), 2);
        assert_eq!(dp.move_ports(&cfg(TWO_PORTS), &cfg(ONE_PORT)), Ok(()));
        assert_eq!(dp.learned().expect("learned").links.len(), 1);
    }
}
