//! The one factory that opens a backend by kind and hands it back as a
//! `Box<dyn DataPlane>`: the only place that names a backend's own types.

use roamer_hal::{BackendKind, DataPlane, PortId};
use tracing::warn;

use crate::PlatformError;
use crate::chaos::{CHAOS_ENV, Chaos, ChaosHandle, ChaosSpec};
use crate::sim::SimBackend;
use crate::software::{PortIo, SoftwareBackend, open_port};

/// One data port to open: its id, its operator name (for logs) and its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub id: PortId,
    pub name: String,
    /// `tap:NAME` creates a TAP device; anything else is an existing interface.
    pub device: String,
}

/// An opened data plane, and the chaos switch when [`CHAOS_ENV`] wrapped it.
pub struct Opened {
    pub dataplane: Box<dyn DataPlane>,
    pub chaos: Option<ChaosHandle>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("dataplane", &self.dataplane.name())
            .field("chaos", &self.chaos.is_some())
            .finish()
    }
}

/// Opens the backend `kind` over `ports` (the sim takes no ports). When the environment
/// variable [`CHAOS_ENV`] holds a [`ChaosSpec`], the backend is wrapped in [`Chaos`] (for
/// tests; logged as a warning).
pub fn open(kind: BackendKind, ports: &[PortSpec]) -> Result<Opened, PlatformError> {
    let dataplane: Box<dyn DataPlane> = match kind {
        BackendKind::Sim => Box::new(SimBackend::default()),
        BackendKind::Software => Box::new(software(ports)?),
        BackendKind::Kernel => {
            return Err(PlatformError::BackendUnavailable {
                backend: kind,
                reason: "this build of roamer offers the sim and software backends",
            });
        }
    };
    match std::env::var(CHAOS_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let spec = ChaosSpec::parse(&text)?;
            warn!(spec = %text, "chaos backend: table operations fail on purpose ({CHAOS_ENV})");
            let (chaos, handle) = Chaos::new(dataplane, spec);
            Ok(Opened {
                dataplane: Box::new(chaos),
                chaos: Some(handle),
            })
        }
        _ => Ok(Opened {
            dataplane,
            chaos: None,
        }),
    }
}

fn software(ports: &[PortSpec]) -> Result<SoftwareBackend, PlatformError> {
    let mut opened: Vec<(PortId, Box<dyn PortIo>)> = Vec::new();
    for p in ports {
        opened.push((p.id, open_port(&p.name, &p.device)?));
    }
    SoftwareBackend::start(opened, Default::default()).map_err(|source| PlatformError::PortIo {
        port: "data path".into(),
        op: "start",
        source,
    })
}
