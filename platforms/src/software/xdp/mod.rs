//! A data port over an AF_XDP socket: the device's frames come to roamer through an XDP program
//! (`platforms/bpf/xdp_redirect.c`) that redirects every frame to the socket of its receive
//! queue, without an skb on the receive side; frames leave through the socket's transmit ring.
//!
//! - one socket on queue 0, and the device must have one receive queue (veth, a virtio NIC with
//!   one queue pair); a device with more is refused (a port has one fd to wait on);
//! - the XDP program is attached in driver (native) mode where the driver has it, generic (skb)
//!   mode otherwise, and on a veth in generic mode first (see below), through a BPF link: it
//!   goes away when the port is dropped, and with the process if it dies (nothing is left on
//!   the device for the next roamer to clean up). A device where another XDP program is
//!   attached is refused;
//! - zero-copy where the driver offers it, copy mode otherwise (veth); need-wakeup;
//! - frames up to one UMEM chunk through the socket: a device with an MTU above [`MAX_MTU`] is
//!   refused (native XDP on a veth takes no more in one page);
//! - large segments beside the socket: an AF_XDP frame carries no `virtio_net_hdr`, so no
//!   offload metadata crosses it. Frames larger than the device's MTU (a peer's large TCP or
//!   UDP segments, what GRO made) are passed by the XDP program to the stack, where the port's
//!   AF_PACKET socket with vnet-hdr receives them whole with their offload request; frames with
//!   a segmentation-offload request leave through that socket too, for the kernel (or the NIC)
//!   to cut. The two sockets keep no common order, so a flow that has sent a large segment
//!   sends its frames above 256 bytes the same way for a while (see [`Setting::Epoch`]).
//!   Native XDP on a veth takes segmentation offload away from its peer (the peer's stack
//!   would cut every TCP segment to the MTU before it crosses); generic XDP leaves it, which
//!   is why a veth gets generic XDP first. Partial checksums of small frames are not
//!   signalled through the socket: a frame whose checksum field holds its pseudo-header sum
//!   and does not verify is taken as partial (see `csum`) and completed on the way out;
//! - an 802.1Q tag is in the frame on receive and is taken out into [`FrameSlot::vlan`], as TAP
//!   does.
//!
//! `unsafe` code is in [`rings`] only.

mod csum;
mod rings;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use aya::Ebpf;
use aya::maps::{Array, XskMap};
use aya::programs::{Xdp, XdpMode};
use tracing::{info, warn};

use super::afpacket::{AfPacketConfig, AfPacketPort};
use super::port::{
    FrameSlot, HEADROOM, Link, LinkCheck, PortFeatures, PortIo, PortStats, VLAN_TAG_LEN,
};
use super::sys;
use crate::PlatformError;
use crate::bpf_objects::XDP_REDIRECT;
use rings::{RING_BATCH, XskRings};

/// The largest MTU an AF_XDP port takes: what native XDP on a veth handles in one page (4096
/// bytes less XDP's headroom and the skb's shared info).
pub const MAX_MTU: u32 = 3498;

/// A receive call that gets frames from the AF_XDP socket reads the large-frame socket only
/// every this many calls (its frames wait in its buffer meanwhile), so that small frames do not
/// pay a system call each; one that gets none reads it every time.
const LARGE_EVERY: u32 = 8;

/// The program and map names in `xdp_redirect.c`.
const PROGRAM: &str = "roamer_xdp_redirect";
const XSK_MAP: &str = "roamer_xsks";
const PORT_MAP: &str = "roamer_port";

/// The entries of the program's `roamer_port` map.
#[derive(Debug, Clone, Copy)]
enum Setting {
    /// The largest frame that goes to the AF_XDP socket.
    Largest = 0,
    /// Advanced every [`EPOCH_EVERY`]: a flow that sent a large segment in this epoch or the
    /// one before sends its frames above 256 bytes to the stack too, so that they keep their
    /// order behind the large one (0: no flow follows).
    Epoch = 1,
}

/// How long a flow keeps following its large segments after the last one: one to two epochs.
const EPOCH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The first epoch (slots the program has never marked hold 0, and must look old).
const FIRST_EPOCH: u32 = 2;

/// The largest frame that goes to the socket on a device with MTU `mtu` (Ethernet header and
/// one tag; no more than a chunk takes): larger ones are large segments, which the XDP program
/// passes to the stack for the vnet-hdr socket.
fn largest_frame(mtu: u32) -> u32 {
    mtu.min(MAX_MTU) + 14 + VLAN_TAG_LEN as u32
}

/// How the XDP program runs on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttach {
    /// In the driver (native XDP).
    Driver,
    /// In the kernel's generic receive path, after the skb is built.
    Generic,
}

/// What the AF_XDP port negotiated, for `show interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpInfo {
    pub attach: XdpAttach,
    pub zero_copy: bool,
}

impl XdpInfo {
    fn mode_name(mode: XdpAttach) -> &'static str {
        match mode {
            XdpAttach::Driver => "native",
            XdpAttach::Generic => "generic",
        }
    }
}

impl std::fmt::Display for XdpInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let attach = XdpInfo::mode_name(self.attach);
        let copy = if self.zero_copy { "zero-copy" } else { "copy" };
        write!(f, "af-xdp ({attach} XDP, {copy}; large segments af-packet)")
    }
}

/// A data port on one Linux interface through AF_XDP.
pub struct XdpPort {
    name: String,
    ifindex: i32,
    /// Dropped before the program: the socket leaves the map with it.
    rings: XskRings,
    /// The loaded program (attached through a link that detaches when this is dropped) and its
    /// XSK map.
    ebpf: Ebpf,
    /// An AF_PACKET socket bound to nothing (receives nothing): interface ioctls, and the
    /// promiscuous membership for as long as the port lives.
    ctl: OwnedFd,
    /// The AF_PACKET socket (vnet-hdr) for the frames the XDP program passes to the stack
    /// (larger than the MTU, and those of flows that follow their large segments) and for
    /// frames with a segmentation-offload request.
    large: AfPacketPort,
    /// What the data path waits on: readable when either socket has frames.
    wait: OwnedFd,
    /// Receive calls since the large-frame socket was last read (see `LARGE_EVERY`).
    large_skipped: u32,
    /// The XDP program's flow epoch ([`Setting::Epoch`]) and when it began.
    epoch: u32,
    epoch_began: std::time::Instant,
    mac: [u8; 6],
    mtu: u32,
    info: XdpInfo,
    stats: PortStats,
    /// The network namespace the port was opened in (see `AfPacketPort`).
    netns: Option<File>,
}

impl std::fmt::Debug for XdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpPort")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("rings", &self.rings)
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Tells the XDP program one of its settings.
fn set(ebpf: &mut Ebpf, setting: Setting, value: u32) -> Result<(), String> {
    let map = ebpf
        .map_mut(PORT_MAP)
        .ok_or("the XDP program has no settings map")?;
    let mut array: Array<_, u32> = Array::try_from(map).map_err(|e| e.to_string())?;
    array
        .set(setting as u32, value, 0)
        .map_err(|e| format!("{setting:?}: {e}"))
}

fn unavailable(port: &str, reason: impl Into<String>) -> PlatformError {
    PlatformError::AfXdpUnavailable {
        port: port.to_string(),
        reason: reason.into(),
    }
}

impl XdpPort {
    /// Opens the interface `name` (in the calling thread's network namespace) as an AF_XDP port.
    /// [`PlatformError::AfXdpUnavailable`] says why it cannot be (the caller falls back to
    /// AF_PACKET); [`PlatformError::NoSuchInterface`] when there is no such interface.
    pub fn open(name: &str) -> Result<XdpPort, PlatformError> {
        XdpPort::open_preferring(name, None)
    }

    /// [`XdpPort::open`] trying the attach mode `first` before the other (`None`: the port's
    /// own choice, generic on a veth and native elsewhere). A frame generator or counter that
    /// carries no large segments asks for native XDP, which receives small frames for less.
    pub fn open_preferring(name: &str, first: Option<XdpAttach>) -> Result<XdpPort, PlatformError> {
        let object = XDP_REDIRECT
            .map_err(|why| unavailable(name, format!("this build has no XDP program ({why})")))?;
        let ifindex = sys::if_index(name).map_err(|source| PlatformError::NoSuchInterface {
            port: name.to_string(),
            source,
        })?;
        let io_err = |op: &'static str| {
            move |source| PlatformError::PortIo {
                port: name.to_string(),
                op,
                source,
            }
        };
        let ctl = sys::packet_socket().map_err(io_err("socket(AF_PACKET)"))?;
        let raw = ctl.as_raw_fd();
        let mtu = sys::if_mtu(raw, name).map_err(io_err("ioctl(SIOCGIFMTU)"))?;
        if mtu > MAX_MTU {
            return Err(unavailable(
                name,
                format!("MTU {mtu} is above {MAX_MTU}, the largest frame an AF_XDP port takes"),
            ));
        }
        if let Some(queues) = rings::rx_queues(raw, name)
            && queues > 1
        {
            return Err(unavailable(
                name,
                format!("the device has {queues} receive queues; an AF_XDP port serves one"),
            ));
        }
        let mac = sys::if_hwaddr(raw, name).map_err(io_err("ioctl(SIOCGIFHWADDR)"))?;
        let ifindex_u = u32::try_from(ifindex).unwrap_or(0);

        let mut ebpf = Ebpf::load(object)
            .map_err(|e| unavailable(name, format!("loading the XDP program: {e}")))?;
        let rings = XskRings::open(ifindex_u, 0).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                unavailable(
                    name,
                    "another AF_XDP socket is bound to the device's queue 0 (another roamer?)",
                )
            } else {
                unavailable(name, format!("AF_XDP socket: {e}"))
            }
        })?;
        {
            let map = ebpf
                .map_mut(XSK_MAP)
                .ok_or_else(|| unavailable(name, "the XDP program has no XSK map"))?;
            let mut xsks =
                XskMap::try_from(map).map_err(|e| unavailable(name, format!("XSK map: {e}")))?;
            xsks.set(0, rings.fd(), 0)
                .map_err(|e| unavailable(name, format!("XSK map: {e}")))?;
        }
        set(&mut ebpf, Setting::Largest, largest_frame(mtu))
            .and_then(|()| set(&mut ebpf, Setting::Epoch, FIRST_EPOCH))
            .map_err(|e| unavailable(name, format!("the XDP program's settings: {e}")))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| unavailable(name, "the XDP object has no program"))?
            .try_into()
            .map_err(|e| unavailable(name, format!("XDP program: {e}")))?;
        program
            .load()
            .map_err(|e| unavailable(name, format!("loading the XDP program: {e}")))?;
        // Native XDP on a veth takes segmentation offload from its peer; generic leaves it.
        let first = first.unwrap_or(if rings::driver(raw, name).as_deref() == Some("veth") {
            XdpAttach::Generic
        } else {
            XdpAttach::Driver
        });
        let order = match first {
            XdpAttach::Generic => [XdpAttach::Generic, XdpAttach::Driver],
            XdpAttach::Driver => [XdpAttach::Driver, XdpAttach::Generic],
        };
        let mut refused = Vec::new();
        let mut attach = None;
        for mode in order {
            let xdp_mode = match mode {
                XdpAttach::Driver => XdpMode::Driver,
                XdpAttach::Generic => XdpMode::Skb,
            };
            match program.attach_to_if_index(ifindex_u, xdp_mode) {
                Ok(_) => {
                    attach = Some(mode);
                    break;
                }
                Err(e) => refused.push(format!("{}: {e}", XdpInfo::mode_name(mode))),
            }
        }
        let Some(attach) = attach else {
            return Err(unavailable(
                name,
                format!(
                    "attaching XDP failed ({}); another XDP program on the device?",
                    refused.join("; ")
                ),
            ));
        };
        if !refused.is_empty() {
            info!(port = name, refused = %refused.join("; "), mode = XdpInfo::mode_name(attach), "XDP attached in the other mode");
        }
        let large = AfPacketPort::open_with(
            name,
            &AfPacketConfig {
                // The membership is `ctl`'s.
                promiscuous: false,
                vnet_hdr: true,
                rcvbuf: 4 << 20,
            },
        )?;
        let wait =
            sys::epoll_readable(&[rings.fd(), large.raw_fd()]).map_err(io_err("epoll_create1"))?;
        // A switch port receives every frame (the XDP program sees what the device accepts).
        sys::add_promisc(raw, ifindex).map_err(io_err("PACKET_ADD_MEMBERSHIP(PROMISC)"))?;
        let info = XdpInfo {
            attach,
            zero_copy: rings.zero_copy(),
        };
        Ok(XdpPort {
            name: name.to_string(),
            ifindex,
            rings,
            ebpf,
            ctl,
            large,
            wait,
            large_skipped: 0,
            epoch: FIRST_EPOCH,
            epoch_began: std::time::Instant::now(),
            mac,
            mtu,
            info,
            stats: PortStats::default(),
            netns: File::open("/proc/thread-self/ns/net").ok(),
        })
    }

    /// How the port runs (native or generic XDP, zero-copy or copy).
    pub fn info(&self) -> XdpInfo {
        self.info
    }

    /// The kernel's index of the interface.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Opens the port again on the interface of its name (counters kept), in the namespace it
    /// was first opened in.
    fn reopen(&mut self) -> Result<(), PlatformError> {
        let name = self.name.clone();
        let fresh = match &self.netns {
            Some(ns) => std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        use std::os::fd::AsFd;
                        sys::set_netns(ns.as_fd()).map_err(|source| PlatformError::PortIo {
                            port: name.clone(),
                            op: "setns(the port's namespace)",
                            source,
                        })?;
                        XdpPort::open(&name)
                    })
                    .join()
                    .unwrap_or_else(|_| Err(unavailable(&name, "the opening thread panicked")))
            }),
            None => XdpPort::open(&name),
        }?;
        let stats = self.stats;
        *self = XdpPort { stats, ..fresh };
        Ok(())
    }
}

impl PortIo for XdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        let want = slots.len().min(RING_BATCH);
        let (mut filled, mut dropped, mut bytes) = (0usize, 0u64, 0u64);
        self.rings.recv(want, |frame| {
            let Some(slot) = slots.get_mut(filled) else {
                dropped += 1;
                return;
            };
            let end = HEADROOM + frame.len();
            match slot.buf.get_mut(HEADROOM..end) {
                Some(dst) if frame.len() >= 14 => dst.copy_from_slice(frame),
                _ => {
                    dropped += 1;
                    return;
                }
            }
            slot.start = HEADROOM;
            slot.len = frame.len();
            slot.vlan = None;
            slot.gso = None;
            // The tag is in the frame (XDP sees the wire's bytes; no rx-vlan offload applies).
            slot.strip_vlan();
            slot.gso = csum::partial(slot.frame());
            if slot.gso.is_none() {
                // A same-host kernel ITR's LISP packet may carry a partial inner checksum.
                csum::complete_inner_of_lisp(slot.frame_mut());
            }
            bytes += slot.len as u64;
            filled += 1;
        });
        self.stats.rx_frames += filled as u64;
        self.stats.rx_bytes += bytes;
        self.stats.rx_dropped += dropped;
        self.large_skipped += 1;
        if filled < slots.len() && (filled == 0 || self.large_skipped >= LARGE_EVERY) {
            self.large_skipped = 0;
            match self.large.recv_batch(&mut slots[filled..]) {
                Ok(n) => filled += n,
                Err(e) if filled == 0 => return Err(e),
                Err(_) => {}
            }
        }
        Ok(filled)
    }

    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        let room = self.rings.tx_room();
        // The largest frame the device sends through the socket: MTU, Ethernet header, one tag.
        let largest = largest_frame(self.mtu) as usize;
        let mut taken = 0;
        let mut staged = 0;
        let mut put = 0;
        for slot in slots.iter_mut() {
            if slot.gso.is_some_and(|g| g.is_segment_offload()) {
                // The kernel cuts it: through the vnet-hdr socket, after the frames before it.
                put += self.rings.flush();
                if self.large.send_batch(std::slice::from_mut(slot))? == 0 {
                    break;
                }
                taken += 1;
                continue;
            }
            if staged == room {
                break;
            }
            taken += 1;
            let ready = slot.insert_vlan().is_ok()
                && slot.complete_checksum().is_ok()
                && slot.len <= largest;
            if ready && self.rings.stage(slot.frame()) {
                staged += 1;
                self.stats.tx_bytes += slot.len as u64;
            } else {
                self.stats.tx_dropped += 1;
            }
        }
        put += self.rings.flush();
        self.stats.tx_frames += put as u64;
        // The transmit ring holds every transmit chunk: all staged frames go in.
        self.stats.tx_dropped += (staged - put.min(staged)) as u64;
        Ok(taken)
    }

    fn raw_fd(&self) -> RawFd {
        self.wait.as_raw_fd()
    }

    fn tx_fd(&self) -> RawFd {
        self.rings.fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> u32 {
        sys::if_mtu(self.ctl.as_raw_fd(), &self.name).unwrap_or(self.mtu)
    }

    fn is_up(&self) -> bool {
        let want = libc::IFF_UP | libc::IFF_RUNNING;
        sys::if_flags(self.ctl.as_raw_fd(), &self.name).is_ok_and(|f| f & want == want)
    }

    fn features(&self) -> PortFeatures {
        // Large segments come and go through the vnet-hdr socket, whose features these are.
        let large = self.large.features();
        PortFeatures {
            vnet_hdr: large.vnet_hdr,
            tso: large.tso,
            uso: large.uso,
            // Neither socket receives the port's own transmissions.
            ignore_outgoing: large.ignore_outgoing,
        }
    }

    fn stats(&self) -> PortStats {
        let mut stats = self.stats;
        stats.rx_kernel_dropped = self.rings.rx_dropped();
        stats.add(&self.large.stats());
        stats
    }

    fn check_link(&mut self) -> LinkCheck {
        let fd = self.ctl.as_raw_fd();
        let Ok(ifindex) = sys::if_index_via(fd, &self.name) else {
            return LinkCheck {
                link: Link::Gone,
                reopened: false,
            };
        };
        let mut reopened = false;
        if ifindex != self.ifindex {
            match self.reopen() {
                Ok(()) => {
                    info!(device = %self.name, ifindex, "interface created again: AF_XDP port opened on it");
                    reopened = true;
                }
                Err(e) => {
                    warn!(device = %self.name, error = %e, "interface is back but the AF_XDP port cannot be opened on it");
                    return LinkCheck {
                        link: Link::Gone,
                        reopened: false,
                    };
                }
            }
        }
        // Counts the large-frame socket's drops (it was opened again with the port, if at all).
        self.large.check_link();
        if self.epoch_began.elapsed() >= EPOCH_EVERY {
            self.epoch_began = std::time::Instant::now();
            let next = self.epoch.wrapping_add(1).max(FIRST_EPOCH);
            match set(&mut self.ebpf, Setting::Epoch, next) {
                Ok(()) => self.epoch = next,
                Err(e) => warn!(device = %self.name, error = %e, "flow epoch not advanced"),
            }
        }
        if let Ok(mtu) = sys::if_mtu(self.ctl.as_raw_fd(), &self.name)
            && mtu != self.mtu
        {
            // Frames up to the new MTU go to the socket, larger ones to the vnet-hdr socket.
            match set(&mut self.ebpf, Setting::Largest, largest_frame(mtu)) {
                Ok(()) => self.mtu = mtu,
                Err(e) => {
                    warn!(device = %self.name, error = %e, "MTU change not told to the XDP program")
                }
            }
        }
        let link = match sys::if_flags(self.ctl.as_raw_fd(), &self.name) {
            Ok(f) if f & libc::IFF_UP == 0 => Link::AdminDown,
            Ok(f) if f & libc::IFF_RUNNING == 0 => Link::NoCarrier,
            Ok(_) => Link::Up,
            Err(_) => Link::Gone,
        };
        LinkCheck { link, reopened }
    }
}
