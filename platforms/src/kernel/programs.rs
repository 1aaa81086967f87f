//! Which TC programs go on which devices: the LISP ETR and ITR on the ports, the ITR on SVIs
//! and virtual-MAC devices as they come and go, and the HSRP hello filter on the ports that
//! ask for it.

use std::collections::BTreeMap;

use roamer_hal::{HalError, L3Interface, Mac, PortId, VlanId};
use tracing::warn;

use super::hello_filter::HelloFilter;
use super::lisp_offload::LispOffload;
use super::{BACKEND, KernelBackend, Port, backend_err};
use crate::PlatformError;

/// Every EID-facing device besides the ports: the SVIs, and HSRP's macvlans (routed frames to
/// the virtual MAC enter the kernel there), with the interface each belongs to.
pub(super) fn routed_devices(
    svis: &BTreeMap<u16, u32>,
    vmacs: &BTreeMap<(L3Interface, Mac), u32>,
) -> Vec<(u32, L3Interface)> {
    let svis = svis
        .iter()
        .filter_map(|(v, i)| Some((*i, L3Interface::Vlan(VlanId::new(*v).ok()?))));
    let vmacs = vmacs.iter().map(|((iface, _), i)| (*i, *iface));
    svis.chain(vmacs).collect()
}

impl KernelBackend {
    /// A new SVI or virtual-MAC device gets the ITR while LISP is attached (else it gets it
    /// with the ports when LISP comes).
    pub(super) fn attach_itr(&mut self, ifindex: u32, iface: L3Interface) -> Result<(), HalError> {
        match self.offload.as_mut() {
            Some(o) if o.is_attached() => {
                o.attach_eid_facing(ifindex, iface)
                    .map_err(|e| HalError::Backend {
                        backend: BACKEND.into(),
                        detail: format!("attaching the LISP ITR to ifindex {ifindex}: {e}"),
                    })
            }
            _ => Ok(()),
        }
    }

    /// Keeps HSRP hellos off `port` in both directions (the filter is loaded on first use).
    /// A port this backend does not have carries no frames to filter: its row is only kept,
    /// as the software backend keeps it.
    pub(super) fn filter_hellos(&mut self, port: PortId) -> Result<(), HalError> {
        let Ok(p) = self.port(port).cloned() else {
            return Ok(());
        };
        let error =
            |e: PlatformError| backend_err(format!("HSRP hello filter on {}: {e}", p.device));
        let filter = match &mut self.hello_filter {
            Some(f) => f,
            None => self
                .hello_filter
                .insert(HelloFilter::load().map_err(error)?),
        };
        filter.attach(&p.device, p.ifindex).map_err(error)
    }

    pub(super) fn unfilter_hellos(&mut self, port: PortId) -> Result<(), HalError> {
        let Ok(p) = self.port(port).cloned() else {
            return Ok(());
        };
        match self.hello_filter.as_mut() {
            Some(f) => f
                .detach(p.ifindex)
                .map_err(|e| backend_err(format!("HSRP hello filter on {}: {e}", p.device))),
            None => Ok(()),
        }
    }

    /// A device going away (an SVI, a virtual-MAC device) leaves the ITR's interfaces.
    pub(super) fn forget_itr(&mut self, ifindex: u32) -> Result<(), HalError> {
        match self.offload.as_mut() {
            Some(o) => o.forget_eid_facing(ifindex).map_err(|e| HalError::Backend {
                backend: BACKEND.into(),
                detail: format!("detaching the LISP ITR from ifindex {ifindex}: {e}"),
            }),
            None => Ok(()),
        }
    }
}

/// The ETR and the ITR on every port: which ports face EIDs and which the underlay is the
/// routing's business, and the programs pass what is not theirs. The ETR runs first: its
/// test (UDP 4341 to one of our addresses) is cheap, and a packet it decapsulates goes to the
/// kernel without the ITR's lookups.
/// Only ports whose device is among `present` (all of them when `None`): a port whose device
/// has gone since start is skipped with a warning, not a failure of the whole data path.
pub(super) fn attach_lisp(
    o: &mut LispOffload,
    ports: &[Port],
    present: Option<&[u32]>,
) -> Result<(), PlatformError> {
    ports
        .iter()
        .filter(|p| {
            let here = present.is_none_or(|ifs| ifs.contains(&p.ifindex));
            if !here {
                warn!(port = %p.id, device = %p.device, "kernel backend: the port's device is gone; LISP not attached to it");
            }
            here
        })
        .try_for_each(|p| {
            o.attach_underlay(p.ifindex)
                .and_then(|_| o.attach_eid_facing(p.ifindex, L3Interface::Port(p.id)))
        })
}
