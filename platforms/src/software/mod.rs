//! The `software` backend's data ports: roamer's forwarding core over real Linux interfaces.
//!
//! - [`port`]: the [`PortIo`] trait and the caller-owned [`FrameSlot`]s frames live in;
//! - [`afpacket`]: a port on an existing interface (veth, virtio NIC) through AF_PACKET;
//! - [`tap`]: a port on a TAP device roamer creates (vnet-hdr, TSO);
//! - [`copier`]: two ports back to back, the throughput yardstick;
//! - [`gso`]: cutting a large TCP/UDP segment into wire-sized frames in software (before a
//!   LISP encapsulation, or for an egress without vnet-hdr);
//!
//! The only `unsafe` code is in the private `sys` module.

pub mod afpacket;
pub mod backend;
pub mod copier;
#[cfg(any(test, feature = "fuzz-harness"))]
#[doc(hidden)]
pub mod fuzz_harness;
pub mod gso;
pub mod port;
mod sys;
pub mod tap;

pub use afpacket::{AfPacketConfig, AfPacketPort};
pub use backend::{Snapshot, SoftwareBackend};
pub use port::{
    FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM, GsoInfo, GsoType, HEADROOM, PortFeatures, PortIo,
    PortStats, SlotError,
};
pub use tap::{TapConfig, TapPort};

/// Frames per batch the ports move in one system call (`recvmmsg`/`sendmmsg`).
pub const BATCH: usize = sys::BATCH;

/// Opens the data port `name` (the operator's name, for logs) on `device`: `tap:NAME` creates a
/// TAP device (vnet-hdr offloads); anything else is an existing interface taken over with
/// AF_PACKET. A device that is not there yet does not keep the switch from starting: the port
/// is down ("Link not present") until the device appears.
pub fn open_port(name: &str, device: &str) -> Result<Box<dyn PortIo>, crate::PlatformError> {
    let port: Box<dyn PortIo> = match device.strip_prefix("tap:") {
        Some(tap) => Box::new(TapPort::create(tap)?),
        None => match AfPacketPort::open(device) {
            Ok(port) => Box::new(port),
            Err(crate::PlatformError::NoSuchInterface { .. }) => {
                tracing::warn!(
                    interface = %name,
                    %device,
                    "no such device yet: port down (Link not present) until it appears"
                );
                Box::new(AfPacketPort::absent(device, &Default::default())?)
            }
            Err(e) => return Err(e),
        },
    };
    tracing::info!(interface = %name, %device, "port attached");
    Ok(port)
}
