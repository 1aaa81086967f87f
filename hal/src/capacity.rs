//! Capacity accounting kept in one place, so no backend re-implements it.
//!
//! A chassis replicates every forwarding entry to each line card, so every add counts against
//! every scope (each admitted card, plus the backend's own limits).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::HalError;
use crate::backend::{Backend, Capabilities, HalEvent};
use crate::cards::CardProfile;
use crate::table::{OpAction, TableEntry, TableKind, TableOp};

/// One set of limits: a line card, or the backend itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityScope {
    pub name: String,
    pub limits: BTreeMap<TableKind, u32>,
}

impl CapacityScope {
    pub fn for_card(card: &CardProfile) -> Self {
        CapacityScope {
            name: card.scope_name(),
            limits: card.capacity.clone(),
        }
    }
}

/// One row of `show hardware capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub scope: String,
    pub table: TableKind,
    pub used: u32,
    pub capacity: u32,
}

/// Wraps a backend and refuses adds past any scope's capacity with `TableFull`.
#[derive(Debug)]
pub struct Accounted<B> {
    inner: B,
    scopes: Vec<CapacityScope>,
    used: BTreeMap<TableKind, u32>,
}

impl<B: Backend> Accounted<B> {
    /// `scopes` are the admitted cards; the backend's own limits are added as one more scope.
    pub fn new(inner: B, mut scopes: Vec<CapacityScope>) -> Self {
        let own = inner.capabilities().capacity;
        if !own.is_empty() {
            scopes.push(CapacityScope {
                name: format!("the {} backend", inner.name()),
                limits: own,
            });
        }
        let mut used = BTreeMap::new();
        for kind in TableKind::ALL {
            // A backend that cannot list a table at start has nothing programmed in it yet
            // that roamer would know of: count from zero.
            let rows = inner.entries(kind).map(|r| r.len()).unwrap_or(0);
            let n = u32::try_from(rows).unwrap_or(u32::MAX);
            if n > 0 {
                used.insert(kind, n);
            }
        }
        Accounted {
            inner,
            scopes,
            used,
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    pub fn used(&self, kind: TableKind) -> u32 {
        self.used.get(&kind).copied().unwrap_or(0)
    }

    pub fn usage(&self) -> Vec<Usage> {
        let mut rows = Vec::new();
        for scope in &self.scopes {
            for (kind, cap) in &scope.limits {
                rows.push(Usage {
                    scope: scope.name.clone(),
                    table: *kind,
                    used: self.used(*kind),
                    capacity: *cap,
                });
            }
        }
        rows
    }

    /// The first scope that has no room for `extra` more entries of `kind`.
    fn full_scope(&self, kind: TableKind, extra: u32) -> Option<(&CapacityScope, u32)> {
        let used = self.used(kind).saturating_add(extra);
        self.scopes.iter().find_map(|s| {
            s.limits
                .get(&kind)
                .filter(|cap| used >= **cap)
                .map(|cap| (s, *cap))
        })
    }
}

impl<B: Backend> Backend for Accounted<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        for scope in &self.scopes {
            for (kind, cap) in &scope.limits {
                let slot = caps.capacity.entry(*kind).or_insert(*cap);
                *slot = (*slot).min(*cap);
            }
        }
        caps
    }

    /// Adds are screened before the backend sees the batch. Room is reserved for every add in
    /// the batch, while removes free room only once they succeeded, so a batch never overfills.
    fn apply(&mut self, batch: &[TableOp]) -> Vec<Result<(), HalError>> {
        let mut results: Vec<Option<Result<(), HalError>>> = Vec::with_capacity(batch.len());
        let mut admitted = Vec::with_capacity(batch.len());
        let mut reserved: BTreeMap<TableKind, u32> = BTreeMap::new();
        for op in batch {
            let kind = op.kind();
            if op.action == OpAction::Add {
                let extra = reserved.get(&kind).copied().unwrap_or(0);
                if let Some((scope, cap)) = self.full_scope(kind, extra) {
                    results.push(Some(Err(HalError::TableFull {
                        table: kind,
                        scope: scope.name.clone(),
                        capacity: cap,
                    })));
                    continue;
                }
                *reserved.entry(kind).or_insert(0) += 1;
            }
            results.push(None);
            admitted.push(op.clone());
        }
        let mut inner_results = self.inner.apply(&admitted).into_iter();
        let mut admitted_iter = admitted.iter();
        for slot in &mut results {
            if slot.is_some() {
                continue;
            }
            let op = admitted_iter.next();
            let result = inner_results.next().unwrap_or_else(|| {
                Err(HalError::Backend {
                    backend: self.inner.name().to_string(),
                    detail: "backend returned fewer results than operations".into(),
                })
            });
            if let (Some(op), Ok(())) = (op, &result) {
                let counter = self.used.entry(op.kind()).or_insert(0);
                match op.action {
                    OpAction::Add => *counter += 1,
                    OpAction::Remove => *counter = counter.saturating_sub(1),
                    OpAction::Update => {}
                }
            }
            *slot = Some(result);
        }
        results.into_iter().flatten().collect()
    }

    fn entries(&self, kind: TableKind) -> Result<Vec<TableEntry>, HalError> {
        self.inner.entries(kind)
    }

    fn drain_events(&mut self, out: &mut Vec<HalEvent>) {
        self.inner.drain_events(out)
    }
}

impl<B: crate::backend::PacketIo> crate::backend::PacketIo for Accounted<B> {
    fn inject(
        &mut self,
        target: crate::backend::InjectTarget,
        frame: &[u8],
    ) -> Result<(), HalError> {
        self.inner.inject(target, frame)
    }

    fn drain_punts(&mut self, out: &mut Vec<crate::backend::Punt>) {
        self.inner.drain_punts(out)
    }

    fn recycle_punts(&mut self, punts: &mut Vec<crate::backend::Punt>) {
        self.inner.recycle_punts(punts)
    }
}

impl<B: crate::dataplane::DataPlane> crate::dataplane::DataPlane for Accounted<B> {
    fn learned(&self) -> Result<crate::dataplane::Learned, HalError> {
        self.inner.learned()
    }

    fn trace(
        &self,
        port: crate::types::PortId,
        tag: Option<crate::types::VlanId>,
        frame: Vec<u8>,
    ) -> Result<crate::dataplane::Trace, HalError> {
        self.inner.trace(port, tag, frame)
    }

    fn set_notifier(&mut self, notify: crate::dataplane::Notifier) -> Result<bool, HalError> {
        self.inner.set_notifier(notify)
    }

    fn reader(&self) -> Box<dyn crate::dataplane::DataPlaneReader> {
        self.inner.reader()
    }

    fn attach_port(
        &mut self,
        spec: &crate::dataplane::PortAttach,
    ) -> Result<crate::dataplane::PortIoInfo, HalError> {
        self.inner.attach_port(spec)
    }

    fn detach_port(&mut self, port: crate::types::PortId) -> Result<(), HalError> {
        self.inner.detach_port(port)
    }
}
