//! The `software` backend's data ports: roamer's forwarding core over real Linux interfaces.
//!
//! - [`port`]: the [`PortIo`] trait and the caller-owned [`FrameSlot`]s frames live in;
//! - [`afpacket`]: a port on an existing interface (veth, virtio NIC) through AF_PACKET;
//! - [`tap`]: a port on a TAP device roamer creates (vnet-hdr, TSO);
//! - [`xdp`]: a port on an existing interface through AF_XDP (an XDP program redirects its
//!   frames to the socket);
//! - [`copier`]: two ports back to back, the throughput yardstick;
//! - [`gso`]: cutting a large TCP/UDP segment into wire-sized frames in software (before a
//!   LISP encapsulation, or for an egress without vnet-hdr);
//!
//! The only `unsafe` code is in the private `sys` and `xdp::rings` modules.

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
pub mod xdp;

pub use afpacket::{AfPacketConfig, AfPacketPort};
pub use backend::{Snapshot, SoftwareBackend};
pub use port::{
    FRAME_ROOM, FrameSlot, GSO_FRAME_ROOM, GsoInfo, GsoType, HEADROOM, PortFeatures, PortIo,
    PortStats, SlotError,
};
pub use tap::{TapConfig, TapPort};
pub use xdp::{XdpAttach, XdpInfo, XdpPort};

/// Frames per batch the ports move in one system call (`recvmmsg`/`sendmmsg`).
pub const BATCH: usize = sys::BATCH;

/// Opens the data port `id`/`name` (the operator's name, for logs) on `device` while the
/// switch runs: `tap:NAME` creates a TAP device; anything else is an existing interface, taken
/// with AF_XDP where the kernel and device allow it, else AF_PACKET (the choice and any
/// fallback reason are logged). A device that is not there yet is a port that is down
/// ("Link not present") until it appears.
pub fn open_port(
    id: roamer_hal::PortId,
    name: &str,
    device: &str,
) -> Result<Box<dyn PortIo>, crate::PlatformError> {
    let port: Box<dyn PortIo> = match device.strip_prefix("tap:") {
        Some(tap) => Box::new(TapPort::create(tap)?),
        None => {
            let spec = crate::PortSpec {
                id,
                name: name.to_string(),
                device: device.to_string(),
                io: None,
            };
            crate::open::open_interface(&spec)?.0
        }
    };
    tracing::info!(interface = %name, %device, "port attached");
    Ok(port)
}
