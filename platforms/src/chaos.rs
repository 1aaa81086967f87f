//! The `chaos` wrapper: makes any data plane fail chosen operations, or a given fraction of
//! them, with a typed error ([`HalError::Injected`]), for tests that show the control plane
//! surfaces the errors, keeps running and converges once the operations succeed again.
//!
//! Which operations fail is a [`ChaosSpec`]:
//!
//! - `tables=fdb,vlan-member`: every operation on these tables (names as in
//!   `roamer_hal::TableKind`'s kebab-case form: `vlan`, `vlan-member`, `fdb`, `router-mac`,
//!   `interface-address`, `neighbor`, `ipv4-route`, …);
//! - `actions=add,update`: every operation of these kinds (on the tables above if any are given,
//!   else on every table);
//! - `fraction=0.3` and `seed=7`: besides those, this fraction of all table operations, chosen by
//!   a pseudo-random sequence from the seed (the same seed fails the same operations);
//! - `reads=fail`: `entries` and `learned` fail too, as a data path that does not answer;
//! - `healthy-when=PATH`: healthy (everything passes) while the file PATH exists, so a test
//!   can heal a running daemon from outside.
//!
//! Parts are separated by `;`. The daemon's backend factory ([`crate::open`]) wraps the backend
//! when the environment variable [`CHAOS_ENV`] holds a spec; nothing else reads it. In process,
//! [`ChaosHandle::set_healthy`] switches it at run time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use roamer_hal::{
    Backend, Capabilities, DataPlane, HalError, HalEvent, InjectTarget, Learned, Notifier,
    OpAction, PacketIo, PortId, Punt, TableEntry, TableKind, TableOp, Trace, VlanId,
};
use serde::Deserialize;
use serde::de::IntoDeserializer;

use crate::PlatformError;

/// The environment variable the backend factory reads a [`ChaosSpec`] from.
pub const CHAOS_ENV: &str = "ROAMER_CHAOS";

/// Which operations the chaos wrapper fails.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChaosSpec {
    pub tables: Vec<TableKind>,
    pub actions: Vec<OpAction>,
    /// Fraction (0.0..=1.0) of all table operations that fail besides the chosen ones.
    pub fraction: f64,
    pub seed: u64,
    /// `entries` and `learned` fail as a data path that does not answer.
    pub reads: bool,
    /// Healthy while this file exists.
    pub healthy_when: Option<PathBuf>,
}

/// The value of a unit enum named `name` in its serde spelling (`ipv4-route`, `add`).
fn by_name<'de, T: Deserialize<'de>>(name: &'de str) -> Option<T> {
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}

impl ChaosSpec {
    /// Parses `tables=…;actions=…;fraction=…;seed=…;reads=fail;healthy-when=PATH`.
    pub fn parse(text: &str) -> Result<ChaosSpec, PlatformError> {
        let bad = |reason: String| PlatformError::ChaosSpec {
            spec: text.to_string(),
            reason,
        };
        let mut spec = ChaosSpec::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not KEY=VALUE")))?;
            match key.trim() {
                "tables" => {
                    for name in value.split(',').map(str::trim) {
                        let kind = by_name::<TableKind>(name)
                            .ok_or_else(|| bad(format!("unknown table '{name}'")))?;
                        spec.tables.push(kind);
                    }
                }
                "actions" => {
                    for name in value.split(',').map(str::trim) {
                        let action = by_name::<OpAction>(name).ok_or_else(|| {
                            bad(format!("unknown action '{name}' (add, update, remove)"))
                        })?;
                        spec.actions.push(action);
                    }
                }
                "fraction" => {
                    spec.fraction = value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or_else(|| bad(format!("fraction '{value}' is not within 0..1")))?;
                }
                "seed" => {
                    spec.seed = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("seed '{value}' is not a number")))?;
                }
                "reads" => {
                    spec.reads = match value.trim() {
                        "fail" => true,
                        "pass" => false,
                        other => return Err(bad(format!("reads '{other}': fail or pass"))),
                    }
                }
                "healthy-when" => spec.healthy_when = Some(PathBuf::from(value.trim())),
                other => return Err(bad(format!("unknown key '{other}'"))),
            }
        }
        Ok(spec)
    }
}

#[derive(Debug, Default)]
struct Shared {
    healthy: AtomicBool,
    injected: AtomicU64,
}

/// Switches a chaos wrapper between failing and healthy from anywhere, at run time.
#[derive(Debug, Clone)]
pub struct ChaosHandle(Arc<Shared>);

impl ChaosHandle {
    pub fn set_healthy(&self, healthy: bool) {
        self.0.healthy.store(healthy, Ordering::SeqCst);
    }

    /// How many failures were injected so far.
    pub fn injected(&self) -> u64 {
        self.0.injected.load(Ordering::SeqCst)
    }
}

/// A data plane that fails what its [`ChaosSpec`] chooses.
pub struct Chaos {
    inner: Box<dyn DataPlane>,
    spec: ChaosSpec,
    name: String,
    rng: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("inner", &self.inner.name())
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Chaos {
    /// Wraps `inner`; failing from the start.
    pub fn new(inner: Box<dyn DataPlane>, spec: ChaosSpec) -> (Chaos, ChaosHandle) {
        let shared = Arc::new(Shared::default());
        let chaos = Chaos {
            name: format!("chaos({})", inner.name()),
            inner,
            rng: spec.seed ^ 0x9e37_79b9_7f4a_7c15,
            spec,
            shared: shared.clone(),
        };
        (chaos, ChaosHandle(shared))
    }

    fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::SeqCst)
            || self.spec.healthy_when.as_ref().is_some_and(|p| p.exists())
    }

    /// splitmix64: small, fast and the same on every platform.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chosen(&self, op: &TableOp) -> bool {
        let by_table = self.spec.tables.contains(&op.kind());
        let by_action = self.spec.actions.contains(&op.action);
        match (self.spec.tables.is_empty(), self.spec.actions.is_empty()) {
            (true, true) => false,
            (false, true) => by_table,
            (true, false) => by_action,
            (false, false) => by_table && by_action,
        }
    }

    fn fails(&mut self, op: &TableOp) -> bool {
        if self.chosen(op) {
            return true;
        }
        // 53 random bits as a fraction in [0, 1).
        self.spec.fraction > 0.0
            && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < self.spec.fraction
    }

    fn injected(&self, operation: &'static str, table: Option<TableKind>) -> HalError {
        self.shared.injected.fetch_add(1, Ordering::SeqCst);
        HalError::Injected {
            backend: self.name.clone(),
            operation,
            table,
        }
    }

    fn read_fails(&self) -> bool {
        self.spec.reads && !self.healthy()
    }
}

fn action_name(action: OpAction) -> &'static str {
    match action {
        OpAction::Add => "add",
        OpAction::Update => "update",
        OpAction::Remove => "remove",
    }
}

impl Backend for Chaos {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// The ops that pass go to the inner backend as one batch, in order; the results are put
    /// back in place.
    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        let healthy = self.healthy();
        let mut failed: Vec<Option<HalError>> = Vec::with_capacity(batch.len());
        let mut passed = Vec::with_capacity(batch.len());
        for op in batch {
            if !healthy && self.fails(op) {
                failed.push(Some(self.injected(action_name(op.action), Some(op.kind()))));
            } else {
                failed.push(None);
                passed.push(op.clone());
            }
        }
        let mut inner = self.inner.apply(&passed).into_iter();
        failed
            .into_iter()
            .map(|f| match f {
                Some(e) => Err(e),
                None => inner.next().unwrap_or_else(|| {
                    Err(HalError::Backend {
                        backend: self.name.clone(),
                        detail: "inner backend returned fewer results than operations".into(),
                    })
                }),
            })
            .collect()
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        if self.read_fails() {
            return Err(self.injected("entries", Some(kind)));
        }
        self.inner.entries(kind)
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        self.inner.drain_events(out)
    }
}

impl PacketIo for Chaos {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        self.inner.inject(target, frame)
    }

    fn drain_punts(&mut self, out: &mut Vec<Punt>) {
        self.inner.drain_punts(out)
    }

    fn recycle_punts(&mut self, punts: &mut Vec<Punt>) {
        self.inner.recycle_punts(punts)
    }
}

impl DataPlane for Chaos {
    fn learned(&self) -> Result<Learned, HalError> {
        if self.read_fails() {
            return Err(HalError::NotAnswering {
                backend: self.name.clone(),
                operation: "learned",
                detail: "did not answer (injected)",
            });
        }
        self.inner.learned()
    }

    fn trace(&self, port: PortId, tag: Option<VlanId>, frame: Vec<u8>) -> Result<Trace, HalError> {
        if self.read_fails() {
            return Err(self.injected("trace", None));
        }
        self.inner.trace(port, tag, frame)
    }

    fn set_notifier(&mut self, notify: Notifier) -> Result<bool, HalError> {
        self.inner.set_notifier(notify)
    }

    fn reader(&self) -> Box<dyn roamer_hal::DataPlaneReader> {
        Box::new(ChaosReader {
            inner: self.inner.reader(),
            reads: self.spec.reads,
            healthy_when: self.spec.healthy_when.clone(),
            name: self.name.clone(),
            shared: self.shared.clone(),
        })
    }

    fn attach_port(
        &mut self,
        spec: &roamer_hal::PortAttach,
    ) -> Result<roamer_hal::PortIoInfo, HalError> {
        self.inner.attach_port(spec)
    }

    fn detach_port(&mut self, port: PortId) -> Result<(), HalError> {
        self.inner.detach_port(port)
    }
}

/// `show`'s view through a chaos wrapper: reads fail as the wrapper's do.
struct ChaosReader {
    inner: Box<dyn roamer_hal::DataPlaneReader>,
    reads: bool,
    healthy_when: Option<std::path::PathBuf>,
    name: String,
    shared: Arc<Shared>,
}

impl ChaosReader {
    fn fails(&self, operation: &'static str, table: Option<TableKind>) -> Option<HalError> {
        let healthy = self.shared.healthy.load(Ordering::SeqCst)
            || self.healthy_when.as_ref().is_some_and(|p| p.exists());
        (self.reads && !healthy).then(|| {
            self.shared.injected.fetch_add(1, Ordering::SeqCst);
            HalError::Injected {
                backend: self.name.clone(),
                operation,
                table,
            }
        })
    }
}

impl roamer_hal::DataPlaneReader for ChaosReader {
    fn learned(&self) -> Result<Learned, HalError> {
        if self.fails("learned", None).is_some() {
            return Err(HalError::NotAnswering {
                backend: self.name.clone(),
                operation: "learned",
                detail: "did not answer (injected)",
            });
        }
        self.inner.learned()
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        match self.fails("entries", Some(kind)) {
            Some(e) => Err(e),
            None => self.inner.entries(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use roamer_hal::contract::sample_entry;

    use super::*;
    use crate::sim::SimBackend;

    fn healthy() -> Chaos {
        let (c, h) = Chaos::new(Box::new(SimBackend::default()), ChaosSpec::default());
        h.set_healthy(true);
        c
    }

    // A healthy chaos wrapper is a data plane like any other.
    roamer_hal::backend_contract_tests!(healthy());

    mod failing_nothing {
        use super::*;
        // With an empty spec and not switched healthy, nothing is chosen either.
        roamer_hal::backend_contract_tests!(
            Chaos::new(Box::new(SimBackend::default()), ChaosSpec::default()).0
        );
    }

    #[test]
    fn spec_parses_and_refuses_nonsense() {
        let s = ChaosSpec::parse("tables=fdb,vlan-member; actions=add; fraction=0.25; seed=9; reads=fail; healthy-when=/tmp/x")
            .expect("valid spec");
        assert_eq!(s.tables, vec![TableKind::Fdb, TableKind::VlanMember]);
        assert_eq!(s.actions, vec![OpAction::Add]);
        assert_eq!(s.fraction, 0.25);
        assert_eq!(s.seed, 9);
        assert!(s.reads);
        assert_eq!(s.healthy_when, Some(PathBuf::from("/tmp/x")));
        for bad in [
            "tables=fbd",
            "fraction=2",
            "seed=x",
            "actions=drop",
            "nothing",
            "colour=red",
        ] {
            match ChaosSpec::parse(bad) {
                Err(PlatformError::ChaosSpec { spec, .. }) => assert_eq!(spec, bad),
                other => panic!("{bad}: expected ChaosSpec error, got {other:?}"),
            }
        }
    }

    #[test]
    fn chosen_tables_fail_with_a_typed_error_until_healed() {
        let spec = ChaosSpec::parse("tables=fdb").expect("spec");
        let (mut c, h) = Chaos::new(Box::new(SimBackend::default()), spec);
        let fdb = sample_entry(TableKind::Fdb, 1);
        let vlan = sample_entry(TableKind::Vlan, 1);
        let r = c.apply(&[TableOp::add(fdb.clone()), TableOp::add(vlan.clone())]);
        match &r[0] {
            Err(HalError::Injected {
                operation: "add",
                table: Some(TableKind::Fdb),
                ..
            }) => {}
            other => panic!("expected an injected add failure, got {other:?}"),
        }
        assert!(r[1].is_ok(), "VLAN add passes: {:?}", r[1]);
        assert_eq!(h.injected(), 1);
        assert_eq!(c.entries(TableKind::Fdb).expect("rows"), Vec::new());
        h.set_healthy(true);
        let r = c.apply(&[TableOp::add(fdb.clone())]);
        assert!(r[0].is_ok(), "healed: {:?}", r[0]);
        assert_eq!(c.entries(TableKind::Fdb).expect("rows"), vec![fdb]);
    }

    #[test]
    fn reads_fail_as_a_data_path_not_answering() {
        let spec = ChaosSpec::parse("reads=fail").expect("spec");
        let (c, h) = Chaos::new(Box::new(SimBackend::default()), spec);
        match c.learned() {
            Err(e @ HalError::NotAnswering { .. }) => {
                assert!(
                    e.to_string().starts_with("data path not answering: "),
                    "{e}"
                )
            }
            other => panic!("expected NotAnswering, got {other:?}"),
        }
        assert!(matches!(
            c.entries(TableKind::Vlan),
            Err(HalError::Injected { .. })
        ));
        h.set_healthy(true);
        assert!(c.learned().is_ok());
    }

    #[test]
    fn a_fraction_fails_deterministically_by_seed() {
        let run = |seed: u64| {
            let spec = ChaosSpec {
                fraction: 0.3,
                seed,
                ..ChaosSpec::default()
            };
            let (mut c, _) = Chaos::new(Box::new(SimBackend::default()), spec);
            let batch: Vec<TableOp> = (0..1000)
                .map(|n| TableOp::add(sample_entry(TableKind::Ipv4Route, n)))
                .collect();
            c.apply(&batch)
                .iter()
                .map(|r| r.is_err())
                .collect::<Vec<bool>>()
        };
        let a = run(7);
        let failed = a.iter().filter(|f| **f).count();
        assert!(
            (200..400).contains(&failed),
            "{failed} of 1000 failed at 0.3"
        );
        assert_eq!(a, run(7), "same seed, same failures");
        assert_ne!(a, run(8), "another seed, other failures");
    }

    #[test]
    fn healthy_when_a_file_exists() {
        let path = std::env::temp_dir().join(format!("roamer-chaos-heal-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let spec = ChaosSpec {
            tables: vec![TableKind::Vlan],
            healthy_when: Some(path.clone()),
            ..ChaosSpec::default()
        };
        let (mut c, _) = Chaos::new(Box::new(SimBackend::default()), spec);
        let e = sample_entry(TableKind::Vlan, 4);
        assert!(c.apply(&[TableOp::add(e.clone())])[0].is_err());
        std::fs::write(&path, b"").expect("create heal file");
        let r = c.apply(&[TableOp::add(e)]);
        let _ = std::fs::remove_file(&path);
        assert!(r[0].is_ok(), "{:?}", r[0]);
    }
}
