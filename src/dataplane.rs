//! The backend the daemon drives, chosen by `platform.backend`, and the configuration's table
//! entries applied to it.

use roamer_control::config::Config;
use roamer_control::reconcile::{self, port_bindings};
use roamer_hal::{
    Accounted, Backend, BackendKind, CapacityScope, HalEvent, InjectTarget, PacketIo, Punt,
    TableEntry, Usage,
};
use roamer_platforms::PlatformError;
use roamer_platforms::sim::SimBackend;
use roamer_platforms::software::{
    AfPacketPort, Learned, PortIo, SoftwareBackend, TapPort, TraceResult,
};
use tracing::{info, warn};

/// The running backend, with the capacity of the admitted cards enforced in front of it.
#[derive(Debug)]
pub enum Dataplane {
    Sim(Accounted<SimBackend>),
    Software(Accounted<SoftwareBackend>),
}

impl Dataplane {
    /// Opens the backend the platform names; software ports are the configuration's ports.
    pub fn open(
        kind: BackendKind,
        cfg: &Config,
        scopes: Vec<CapacityScope>,
    ) -> Result<Dataplane, PlatformError> {
        match kind {
            BackendKind::Sim => Ok(Dataplane::Sim(Accounted::new(
                SimBackend::default(),
                scopes,
            ))),
            BackendKind::Software => {
                let mut ports: Vec<(roamer_hal::PortId, Box<dyn PortIo>)> = Vec::new();
                for b in port_bindings(cfg) {
                    // `tap:NAME` creates a TAP device (vnet-hdr offloads); anything else is an
                    // existing interface taken over with AF_PACKET.
                    let port: Box<dyn PortIo> = match b.device.strip_prefix("tap:") {
                        Some(name) => Box::new(TapPort::create(name)?),
                        None => match AfPacketPort::open(&b.device) {
                            Ok(port) => Box::new(port),
                            // A port without its device does not keep the switch from starting:
                            // it is down ("Link not present") until the device appears.
                            Err(PlatformError::NoSuchInterface { .. }) => {
                                warn!(
                                    interface = %b.name,
                                    device = %b.device,
                                    "no such device yet: port down (Link not present) until it appears"
                                );
                                Box::new(AfPacketPort::absent(&b.device, &Default::default())?)
                            }
                            Err(e) => return Err(e),
                        },
                    };
                    info!(interface = %b.name, device = %b.device, "port attached");
                    ports.push((b.id, port));
                }
                let backend =
                    SoftwareBackend::start(ports, Default::default()).map_err(|source| {
                        PlatformError::PortIo {
                            port: "data path".into(),
                            op: "start",
                            source,
                        }
                    })?;
                Ok(Dataplane::Software(Accounted::new(backend, scopes)))
            }
            BackendKind::Kernel => Err(PlatformError::BackendUnavailable {
                backend: kind,
                reason: "this build of roamer offers the sim and software backends",
            }),
        }
    }

    pub fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Dataplane::Sim(b) => b,
            Dataplane::Software(b) => b,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Dataplane::Sim(b) => b.name(),
            Dataplane::Software(b) => b.name(),
        }
    }

    pub fn usage(&self) -> Vec<Usage> {
        match self {
            Dataplane::Sim(b) => b.usage(),
            Dataplane::Software(b) => b.usage(),
        }
    }

    /// What the data path learned (software backend only).
    pub fn learned(&self) -> Option<Learned> {
        match self {
            Dataplane::Sim(_) => None,
            Dataplane::Software(b) => b.inner().learned().ok(),
        }
    }

    /// Traces a frame through the software pipeline; the sim backend has no pipeline.
    pub fn trace(
        &self,
        port: roamer_hal::PortId,
        tag: Option<roamer_hal::VlanId>,
        frame: Vec<u8>,
    ) -> Result<TraceResult, String> {
        match self {
            Dataplane::Sim(_) => Err("forwarding trace needs the software backend".into()),
            Dataplane::Software(b) => b.inner().trace(port, tag, frame).map_err(|e| e.to_string()),
        }
    }

    pub fn entries(&self, kind: roamer_hal::TableKind) -> Vec<TableEntry> {
        match self {
            Dataplane::Sim(b) => b.entries(kind),
            Dataplane::Software(b) => b.entries(kind),
        }
    }

    pub fn inject(
        &mut self,
        target: InjectTarget,
        frame: &[u8],
    ) -> Result<(), roamer_hal::HalError> {
        match self {
            Dataplane::Sim(b) => b.inject(target, frame),
            Dataplane::Software(b) => b.inject(target, frame),
        }
    }

    /// Has the data path call `notify` when it queued events or punts (the sim backend queues
    /// them synchronously and needs no such call).
    pub fn set_notifier(&mut self, notify: roamer_platforms::software::backend::Notifier) {
        if let Dataplane::Software(b) = self
            && let Err(e) = b.inner().set_notifier(notify)
        {
            warn!(error = %e, "data-path notifications unavailable: polling only");
        }
    }

    pub fn drain(&mut self, events: &mut Vec<HalEvent>, punts: &mut Vec<Punt>) {
        match self {
            Dataplane::Sim(b) => {
                b.drain_events(events);
                b.drain_punts(punts);
            }
            Dataplane::Software(b) => {
                b.drain_events(events);
                b.drain_punts(punts);
            }
        }
    }

    /// Moves the tables from the entries of `old` to those of `new`; failures are logged and
    /// returned as lines for the operator.
    /// `old` is None when the tables are still empty (at start).
    pub fn reconcile(&mut self, old: Option<&Config>, new: &Config) -> Vec<String> {
        let before = old.map(reconcile::desired).unwrap_or_default();
        let ops = reconcile::diff(&before, &reconcile::desired(new));
        if ops.is_empty() {
            return Vec::new();
        }
        let results = self.backend().apply(&ops);
        let mut failures = Vec::new();
        for (op, r) in ops.iter().zip(results) {
            if let Err(e) = r {
                warn!(op = %op, error = %e, "table operation failed");
                failures.push(format!("% {op}: {e}"));
            }
        }
        info!(
            ops = ops.len(),
            failed = failures.len(),
            "forwarding tables updated"
        );
        failures
    }
}
