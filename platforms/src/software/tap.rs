//! A data port over a TAP device (`tun-rs`), the way a VM or a host stack on this machine
//! attaches to the switch.
//!
//! The device is opened with `IFF_VNET_HDR` and TCP (and, where the kernel has it, UDP)
//! segmentation offload negotiated (`TUNSETOFFLOAD`): the kernel hands over a TCP stream as
//! segments of up to 64 KiB with a partial checksum, described by a `virtio_net_hdr` that
//! becomes [`FrameSlot::gso`], and takes such segments back the same way. Where the kernel
//! refuses, the port falls back to plain frames and says so in a warning and in
//! [`PortFeatures`].
//!
//! A TAP has no `recvmmsg`: a batch is a run of non-blocking `read`s until the device is
//! empty or the slots are full (and of `write`s on send), with no allocation.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tracing::warn;
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

use super::port::{
    FrameSlot, GsoInfo, HEADROOM, PortFeatures, PortIo, PortStats, SlotError, VNET_HDR_LEN,
};
use crate::PlatformError;

/// How to create a [`TapPort`].
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// Negotiate vnet-hdr and segmentation offloads. Default true.
    pub offload: bool,
    pub mtu: Option<u16>,
    pub mac: Option<[u8; 6]>,
    /// Bring the interface up. Default true.
    pub up: bool,
}

impl TapConfig {
    pub fn new(name: &str) -> TapConfig {
        TapConfig {
            name: name.to_string(),
            offload: true,
            mtu: None,
            mac: None,
            up: true,
        }
    }
}

/// A data port on a TAP device this process created (the device goes away with the port).
pub struct TapPort {
    name: String,
    dev: SyncDevice,
    mac: [u8; 6],
    mtu: u32,
    features: PortFeatures,
    stats: PortStats,
}

impl std::fmt::Debug for TapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPort")
            .field("name", &self.name)
            .field("fd", &self.dev.as_raw_fd())
            .field("mac", &self.mac)
            .field("mtu", &self.mtu)
            .field("features", &self.features)
            .field("stats", &self.stats)
            .finish()
    }
}

impl TapPort {
    /// Creates the TAP `name` with offloads, up.
    pub fn create(name: &str) -> Result<TapPort, PlatformError> {
        TapPort::create_with(&TapConfig::new(name))
    }

    pub fn create_with(config: &TapConfig) -> Result<TapPort, PlatformError> {
        let name = config.name.as_str();
        let io_err = |op: &'static str| {
            move |source| PlatformError::PortIo {
                port: name.to_string(),
                op,
                source,
            }
        };
        let build = |offload: bool| {
            let mut builder = DeviceBuilder::new()
                .name(name)
                .layer(Layer::L2)
                .offload(offload)
                .enable(config.up);
            if let Some(mtu) = config.mtu {
                builder = builder.mtu(mtu);
            }
            if let Some(mac) = config.mac {
                builder = builder.mac_addr(mac);
            }
            builder.build_sync()
        };
        let dev = match build(config.offload) {
            Ok(dev) => dev,
            Err(e) if config.offload => {
                warn!(
                    port = name,
                    error = %e,
                    "TAP vnet-hdr/TSO offload unavailable: plain frames, large segments cut by the kernel"
                );
                build(false).map_err(io_err("create TAP"))?
            }
            Err(e) => return Err(io_err("create TAP")(e)),
        };
        dev.set_nonblocking(true)
            .map_err(io_err("set TAP non-blocking"))?;
        let features = PortFeatures {
            vnet_hdr: dev.tcp_gso(),
            tso: dev.tcp_gso(),
            uso: dev.udp_gso(),
            // A TAP never hands its own transmissions back.
            ignore_outgoing: true,
        };
        if features.vnet_hdr && !features.uso {
            warn!(
                port = name,
                "TAP UDP segmentation offload unavailable (Linux < 6.2)"
            );
        }
        let mac = dev.mac_address().map_err(io_err("read TAP MAC"))?;
        let mtu = dev.mtu().map_err(io_err("read TAP MTU"))?;
        Ok(TapPort {
            name: name.to_string(),
            dev,
            mac,
            mtu: u32::from(mtu),
            features,
            stats: PortStats::default(),
        })
    }

    fn rx_offset(&self) -> usize {
        if self.features.vnet_hdr {
            HEADROOM - VNET_HDR_LEN
        } else {
            HEADROOM
        }
    }

    fn prepare_tx(&self, slot: &mut FrameSlot) -> Result<usize, SlotError> {
        slot.insert_vlan()?;
        if self.features.vnet_hdr {
            slot.ensure_headroom(VNET_HDR_LEN)?;
            let mut hdr = [0u8; VNET_HDR_LEN];
            GsoInfo::to_vnet_hdr(slot.gso.as_ref(), &mut hdr);
            slot.buf[slot.start - VNET_HDR_LEN..slot.start].copy_from_slice(&hdr);
            Ok(slot.start - VNET_HDR_LEN)
        } else {
            if slot.gso.is_some_and(|g| g.is_segment_offload()) {
                return Err(SlotError::NoRoom);
            }
            slot.complete_checksum()?;
            Ok(slot.start)
        }
    }
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock || err.kind() == io::ErrorKind::Interrupted
}

impl PortIo for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        let offset = self.rx_offset();
        let mut filled = 0;
        // Bounded: each read either fills a slot or drops one frame.
        for _ in 0..slots.len().saturating_mul(2) {
            let Some(slot) = slots.get_mut(filled) else {
                break;
            };
            let Some(buf) = slot.buf.get_mut(offset..) else {
                return Err(io::ErrorKind::InvalidInput.into());
            };
            let room = buf.len();
            let n = match self.dev.recv(buf) {
                Ok(n) => n,
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    if filled > 0 {
                        break;
                    }
                    return Err(e);
                }
            };
            // A read that filled the buffer may have been cut short: drop it.
            if n >= room {
                self.stats.rx_dropped += 1;
                continue;
            }
            slot.vlan = None;
            slot.gso = None;
            let mut len = n;
            if self.features.vnet_hdr {
                let Some(frame_len) = slot.take_vnet_hdr(n) else {
                    self.stats.rx_dropped += 1;
                    continue;
                };
                len = frame_len;
            }
            slot.start = HEADROOM;
            slot.len = len;
            // The TAP driver writes a tag the stack had out of band into the frame.
            slot.strip_vlan();
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += slot.len as u64;
            filled += 1;
        }
        Ok(filled)
    }

    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        for (i, slot) in slots.iter_mut().enumerate() {
            let from = match self.prepare_tx(slot) {
                Ok(from) => from,
                Err(_) => {
                    self.stats.tx_dropped += 1;
                    continue;
                }
            };
            let Some(bytes) = slot.buf.get(from..slot.start + slot.len) else {
                self.stats.tx_dropped += 1;
                continue;
            };
            match self.dev.send(bytes) {
                Ok(_) => {
                    self.stats.tx_frames += 1;
                    self.stats.tx_bytes += slot.len as u64;
                }
                Err(e) if would_block(&e) => return Ok(i),
                Err(e) if e.raw_os_error() == Some(libc::EBADFD) => {
                    // The device is gone (its namespace was deleted): nothing will ever go.
                    if i == 0 {
                        return Err(e);
                    }
                    return Ok(i);
                }
                Err(_) => {
                    // This frame only (malformed offload header, too large, device down).
                    self.stats.tx_dropped += 1;
                }
            }
        }
        Ok(slots.len())
    }

    fn raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The MTU read at creation when the device is no longer visible here (moved to another
    /// network namespace).
    fn mtu(&self) -> u32 {
        self.dev.mtu().map_or(self.mtu, u32::from)
    }

    /// False when the device is not visible in this network namespace.
    fn is_up(&self) -> bool {
        self.dev.is_running().unwrap_or(false)
    }

    fn features(&self) -> PortFeatures {
        self.features
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}
