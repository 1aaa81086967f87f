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
pub(crate) mod sys;
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
