//! The one factory that opens a backend by kind and hands it back as a
//! `Box<dyn DataPlane>`: the only place that names a backend's own types.

use roamer_hal::{BackendKind, DataPlane, PortId, PortIoInfo, PortIoKind};
use tracing::{info, warn};

use crate::PlatformError;
use crate::chaos::{CHAOS_ENV, Chaos, ChaosHandle, ChaosSpec};
use crate::kernel::KernelBackend;
use crate::sim::SimBackend;
use crate::software::{AfPacketPort, PortIo, SoftwareBackend, TapPort, XdpPort};

/// One data port to open: its id, its operator name (for logs) and its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub id: PortId,
    pub name: String,
    /// `tap:NAME` creates a TAP device; anything else is an existing interface.
    pub device: String,
    /// The I/O the configuration forces for an existing interface; `None`: AF_XDP where the
    /// kernel and device allow it, AF_PACKET otherwise.
    pub io: Option<PortIoKind>,
}

/// An opened data plane, and the chaos switch when [`CHAOS_ENV`] wrapped it.
pub struct Opened {
    pub dataplane: Box<dyn DataPlane>,
    pub chaos: Option<ChaosHandle>,
    /// The I/O of every port (software backend; empty for the others).
    pub port_io: Vec<(PortId, PortIoInfo)>,
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
    let mut port_io = Vec::new();
    let dataplane: Box<dyn DataPlane> = match kind {
        BackendKind::Sim => Box::new(SimBackend::default()),
        BackendKind::Software => Box::new(software(ports, &mut port_io)?),
        BackendKind::Kernel => Box::new(KernelBackend::open(ports)?),
    };
    match std::env::var(CHAOS_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let spec = ChaosSpec::parse(&text)?;
            warn!(spec = %text, "chaos backend: table operations fail on purpose ({CHAOS_ENV})");
            let (chaos, handle) = Chaos::new(dataplane, spec);
            Ok(Opened {
                dataplane: Box::new(chaos),
                chaos: Some(handle),
                port_io,
            })
        }
        _ => Ok(Opened {
            dataplane,
            chaos: None,
            port_io,
        }),
    }
}

/// Opens the port of an existing interface the way `spec.io` asks (or chooses), and says how.
/// AF_XDP that cannot be had falls back to AF_PACKET, with the reason (a warning when the
/// configuration asked for AF_XDP, an info line when it was only the automatic choice).
pub fn open_interface(spec: &PortSpec) -> Result<(Box<dyn PortIo>, PortIoInfo), PlatformError> {
    let mut fallback = None;
    if spec.io != Some(PortIoKind::AfPacket) {
        match XdpPort::open(&spec.device) {
            Ok(port) => {
                let info = PortIoInfo {
                    io: port.info().to_string(),
                    fallback: None,
                };
                return Ok((Box::new(port), info));
            }
            Err(PlatformError::AfXdpUnavailable { reason, .. }) => {
                if spec.io == Some(PortIoKind::AfXdp) {
                    warn!(interface = %spec.name, device = %spec.device, %reason,
                        "io af-xdp: AF_XDP unavailable, the port uses AF_PACKET");
                } else {
                    info!(interface = %spec.name, device = %spec.device, %reason,
                        "AF_XDP unavailable: the port uses AF_PACKET");
                }
                fallback = Some(reason);
            }
            // No device yet: AF_PACKET's absent port waits for it.
            Err(PlatformError::NoSuchInterface { .. }) => {
                fallback = Some("the device was not there when the port was opened".into());
            }
            Err(e) => return Err(e),
        }
    }
    let port: Box<dyn PortIo> = match AfPacketPort::open(&spec.device) {
        Ok(port) => Box::new(port),
        // A port without its device does not keep the switch from starting: it is
        // down ("Link not present") until the device appears.
        Err(PlatformError::NoSuchInterface { .. }) => {
            warn!(
                interface = %spec.name,
                device = %spec.device,
                "no such device yet: port down (Link not present) until it appears"
            );
            Box::new(AfPacketPort::absent(&spec.device, &Default::default())?)
        }
        Err(e) => return Err(e),
    };
    let info = PortIoInfo {
        io: "af-packet".into(),
        fallback,
    };
    Ok((port, info))
}

/// Opens one data port of the software backend, at start or while it runs: `tap:NAME` creates
/// a TAP device (vnet-hdr offloads); anything else is an existing interface taken over with
/// AF_XDP or AF_PACKET ([`open_interface`]); a device that is not there yet is a port that is
/// down ("Link not present") until it appears.
pub(crate) fn open_port(p: &PortSpec) -> Result<(Box<dyn PortIo>, PortIoInfo), PlatformError> {
    let opened: (Box<dyn PortIo>, PortIoInfo) = match p.device.strip_prefix("tap:") {
        Some(name) => (
            Box::new(TapPort::create(name)?),
            PortIoInfo {
                io: "tap".into(),
                fallback: (p.io == Some(PortIoKind::AfXdp))
                    .then(|| "a TAP port is roamer's own device, read and written whole".into()),
            },
        ),
        None => open_interface(p)?,
    };
    info!(interface = %p.name, device = %p.device, io = %opened.1.io, "port attached");
    Ok(opened)
}

fn software(
    ports: &[PortSpec],
    reports: &mut Vec<(PortId, PortIoInfo)>,
) -> Result<SoftwareBackend, PlatformError> {
    let mut opened: Vec<(PortId, Box<dyn PortIo>)> = Vec::new();
    for p in ports {
        let (port, info) = open_port(p)?;
        reports.push((p.id, info));
        opened.push((p.id, port));
    }
    SoftwareBackend::start(opened, Default::default()).map_err(|source| PlatformError::PortIo {
        port: "data path".into(),
        op: "start",
        source,
    })
}
