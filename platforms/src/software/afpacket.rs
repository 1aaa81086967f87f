//! A data port over an AF_PACKET raw socket bound to one interface: veth and virtio NICs, what
//! containerlab and VMs give.
//!
//! - promiscuous for as long as the port lives (`PACKET_MR_PROMISC` membership);
//! - VLAN tags the kernel took off the frame (it always does on receive, with or without
//!   rx-vlan offload) come back from `PACKET_AUXDATA` into [`FrameSlot::vlan`];
//! - the port's own transmissions are not received (`PACKET_IGNORE_OUTGOING`, or a per-frame
//!   `PACKET_OUTGOING` filter where the kernel lacks it);
//! - `PACKET_VNET_HDR`: large segments (veth GSO, TSO from the peer) arrive whole with their
//!   [`GsoInfo`], and a large segment sent out is cut by the kernel (software GSO when the
//!   device cannot). Without it, a partial checksum (`TP_STATUS_CSUMNOTREADY`) is located from
//!   the headers and completed in software on send, and large segments are dropped;
//! - `recvmmsg`/`sendmmsg`, up to [`BATCH`] frames per call, non-blocking;
//! - the interface may vanish and come back (containerlab deletes and re-creates a node's
//!   links while it runs): [`PortIo::check_link`] notices, and opens the port again on the new
//!   interface of the same name, in the namespace the port was first opened in.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use tracing::{info, warn};

use super::port::{
    FrameSlot, GsoInfo, HEADROOM, Link, LinkCheck, PortFeatures, PortIo, PortStats, SlotError,
    VNET_HDR_LEN,
};
use super::sys::{self, BATCH, RecvMeta};
use crate::PlatformError;

/// `sll_pkttype` of a frame this host sent.
const PACKET_OUTGOING: u8 = libc::PACKET_OUTGOING;

/// How to open an [`AfPacketPort`].
#[derive(Debug, Clone)]
pub struct AfPacketConfig {
    /// Receive frames for every MAC address (what a switch port needs). Default true.
    pub promiscuous: bool,
    /// Ask for `PACKET_VNET_HDR` (offload metadata, large segments whole). Default true.
    pub vnet_hdr: bool,
    /// Receive buffer of the socket in bytes (forced past `rmem_max` when allowed).
    /// Default 4 MiB.
    pub rcvbuf: usize,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            promiscuous: true,
            vnet_hdr: true,
            rcvbuf: 4 << 20,
        }
    }
}

/// Whether the running kernel accepts UDP segmentation offload (`VIRTIO_NET_HDR_GSO_UDP_L4`)
/// in the vnet header of a frame sent on a packet socket: Linux 6.2 and later. Older kernels
/// refuse such a frame (`EINVAL`), so the port does not make them.
fn kernel_takes_uso() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    release_at_least(&release, (6, 2))
}

/// Whether a kernel release string ("6.18.44-fc", "5.10.0-28-amd64") is `want` or later.
fn release_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// A data port on one Linux interface, through an AF_PACKET socket.
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    ifindex: i32,
    fd: OwnedFd,
    mac: [u8; 6],
    mtu: u32,
    features: PortFeatures,
    stats: PortStats,
    metas: Box<[RecvMeta; BATCH]>,
    /// Per slot of the current send batch: true when the frame is ready to go.
    sendable: Box<[bool; BATCH]>,
    /// How the port was opened, to open it again the same way.
    config: AfPacketConfig,
    /// The network namespace the port was opened in, where a new interface of its name is
    /// opened again (None when `/proc` could not say: the calling thread's namespace then).
    netns: Option<File>,
    /// The last error of opening the port again, so that a retry failing the same way every
    /// second is logged once.
    reopen_error: Option<String>,
}

/// The network namespace handle of the calling thread.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Whether the calling thread is in the namespace `ns` (true when it cannot be told).
fn in_netns(ns: &File) -> bool {
    match (ns.metadata(), std::fs::metadata(THREAD_NETNS)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => true,
    }
}

impl AfPacketPort {
    /// Opens the interface `name` (in the calling thread's network namespace) with the default
    /// configuration.
    pub fn open(name: &str) -> Result<AfPacketPort, PlatformError> {
        AfPacketPort::open_with(name, &AfPacketConfig::default())
    }

    pub fn open_with(name: &str, config: &AfPacketConfig) -> Result<AfPacketPort, PlatformError> {
        let port = || name.to_string();
        let io_err = |op: &'static str| {
            move |source| PlatformError::PortIo {
                port: name.to_string(),
                op,
                source,
            }
        };
        let ifindex = sys::if_index(name).map_err(|source| PlatformError::NoSuchInterface {
            port: port(),
            source,
        })?;
        let fd = sys::packet_socket().map_err(io_err("socket(AF_PACKET, SOCK_RAW)"))?;
        let raw = fd.as_raw_fd();

        // Without auxdata the VLAN of a received frame is lost: required.
        sys::set_int_opt(raw, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1).map_err(|source| {
            PlatformError::PortFeatureUnsupported {
                port: port(),
                feature: "PACKET_AUXDATA (VLAN tags of received frames)",
                source,
            }
        })?;

        let mut features = PortFeatures::default();
        match sys::set_int_opt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1) {
            Ok(()) => features.ignore_outgoing = true,
            Err(e) => warn!(
                port = name,
                error = %e,
                "PACKET_IGNORE_OUTGOING unsupported (Linux < 4.20): own frames filtered per frame"
            ),
        }
        if config.vnet_hdr {
            match sys::set_int_opt(raw, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1) {
                Ok(()) => {
                    features.vnet_hdr = true;
                    features.tso = true;
                    features.uso = kernel_takes_uso();
                }
                Err(e) => warn!(
                    port = name,
                    error = %e,
                    "PACKET_VNET_HDR unsupported: no offload metadata; large segments dropped"
                ),
            }
        }
        let rcvbuf = i32::try_from(config.rcvbuf).unwrap_or(i32::MAX);
        if sys::set_int_opt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf).is_err() {
            sys::set_int_opt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf)
                .map_err(io_err("setsockopt(SO_RCVBUF)"))?;
        }
        sys::bind_packet(raw, ifindex).map_err(io_err("bind(AF_PACKET)"))?;
        if config.promiscuous {
            sys::add_promisc(raw, ifindex).map_err(io_err("PACKET_ADD_MEMBERSHIP(PROMISC)"))?;
        }
        let mac = sys::if_hwaddr(raw, name).map_err(io_err("ioctl(SIOCGIFHWADDR)"))?;
        let mtu = sys::if_mtu(raw, name).map_err(io_err("ioctl(SIOCGIFMTU)"))?;
        Ok(AfPacketPort {
            ifindex,
            mac,
            mtu,
            features,
            ..AfPacketPort::unbound(name, fd, config)
        })
    }

    /// A port whose interface `name` does not exist (yet): down (`Link::Gone`, "Link not
    /// present") until an interface of that name appears, then opened on it with `config` as
    /// [`PortIo::check_link`] reopens a re-created one. Its socket is bound to no interface and
    /// to no protocol, so it receives nothing meanwhile.
    pub fn absent(name: &str, config: &AfPacketConfig) -> Result<AfPacketPort, PlatformError> {
        let fd = sys::packet_socket().map_err(|source| PlatformError::PortIo {
            port: name.to_string(),
            op: "socket(AF_PACKET, SOCK_RAW)",
            source,
        })?;
        Ok(AfPacketPort::unbound(name, fd, config))
    }

    /// The port `name` on socket `fd`, opened with `config` in the calling thread's namespace,
    /// before it knows its interface: index 0, no address, no features.
    fn unbound(name: &str, fd: OwnedFd, config: &AfPacketConfig) -> AfPacketPort {
        AfPacketPort {
            name: name.to_string(),
            // No interface has index 0: the first check opens the port once the name exists.
            ifindex: 0,
            fd,
            mac: [0; 6],
            mtu: 1500,
            features: PortFeatures::default(),
            stats: PortStats::default(),
            metas: Box::new([RecvMeta::default(); BATCH]),
            sendable: Box::new([false; BATCH]),
            config: config.clone(),
            netns: File::open(THREAD_NETNS).ok(),
            reopen_error: None,
        }
    }

    /// Opens the port again on the interface of its name now (in the namespace it was first
    /// opened in, from a short-lived thread there when the caller is elsewhere); counters kept.
    fn reopen(&mut self) -> Result<(), PlatformError> {
        let (name, config) = (self.name.as_str(), &self.config);
        let fresh = match &self.netns {
            Some(ns) if !in_netns(ns) => std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        sys::set_netns(ns.as_fd()).map_err(|source| PlatformError::PortIo {
                            port: name.to_string(),
                            op: "setns(the port's namespace)",
                            source,
                        })?;
                        AfPacketPort::open_with(name, config)
                    })
                    .join()
                    .unwrap_or_else(|_| {
                        Err(PlatformError::PortIo {
                            port: name.to_string(),
                            op: "open in the port's namespace",
                            source: io::Error::other("the opening thread panicked"),
                        })
                    })
            }),
            _ => AfPacketPort::open_with(name, config),
        }?;
        let (stats, netns) = (self.stats, self.netns.take());
        *self = AfPacketPort {
            stats,
            netns,
            ..fresh
        };
        Ok(())
    }

    /// The kernel's index of the interface.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Where the frame (or the `virtio_net_hdr` in front of it) is received into.
    fn rx_offset(&self) -> usize {
        if self.features.vnet_hdr {
            HEADROOM - VNET_HDR_LEN
        } else {
            HEADROOM
        }
    }

    /// Turns what `recvmmsg` wrote into `slot` into an untagged frame with its metadata.
    /// False when the frame is to be skipped (own frame) or dropped (counted).
    fn finish_rx(&mut self, slot: &mut FrameSlot, meta: &RecvMeta) -> bool {
        if meta.pkttype == PACKET_OUTGOING {
            return false;
        }
        let room = slot.buf.len().saturating_sub(self.rx_offset());
        if meta.truncated || meta.len > room {
            self.stats.rx_dropped += 1;
            return false;
        }
        let mut len = meta.len;
        slot.gso = None;
        slot.vlan = None;
        if self.features.vnet_hdr {
            let Some(frame_len) = slot.take_vnet_hdr(len) else {
                self.stats.rx_dropped += 1;
                return false;
            };
            len = frame_len;
        }
        slot.start = HEADROOM;
        slot.len = len;
        if meta.csum_not_ready && slot.gso.is_none() {
            // Without vnet-hdr the kernel only says the checksum is partial; where it starts
            // comes from the headers (the kernel's offsets exclude a stripped tag, as here).
            slot.gso = super::gso::partial_checksum(slot.frame());
        }
        match meta.vlan {
            Some((tci, tpid)) if tpid == 0 || tpid == super::port::ETH_P_8021Q => {
                slot.vlan = Some(tci & 0x0fff);
            }
            Some((tci, tpid)) => {
                // Not a C-tag (802.1ad): put it back, the frame stays as it was on the wire.
                if slot.insert_raw_tag(tpid, tci).is_err() {
                    self.stats.rx_dropped += 1;
                    return false;
                }
            }
            None => {
                slot.strip_vlan();
            }
        }
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += slot.len as u64;
        true
    }

    /// Readies `slot` for the wire: tag in, offload header in front (or checksum completed).
    fn prepare_tx(features: PortFeatures, slot: &mut FrameSlot) -> Result<(), SlotError> {
        slot.insert_vlan()?;
        if features.vnet_hdr {
            slot.ensure_headroom(VNET_HDR_LEN)?;
            let mut hdr = [0u8; VNET_HDR_LEN];
            GsoInfo::to_vnet_hdr(slot.gso.as_ref(), &mut hdr);
            slot.buf[slot.start - VNET_HDR_LEN..slot.start].copy_from_slice(&hdr);
        } else {
            if slot.gso.is_some_and(|g| g.is_segment_offload()) {
                return Err(SlotError::NoRoom);
            }
            slot.complete_checksum()?;
        }
        Ok(())
    }

    fn tx_head(&self) -> usize {
        if self.features.vnet_hdr {
            VNET_HDR_LEN
        } else {
            0
        }
    }
}

/// An error that concerns one frame only: drop it and go on with the next.
fn frame_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMSGSIZE) | Some(libc::EINVAL) | Some(libc::EPROTO) | Some(libc::EFAULT)
    )
}

/// An error that means the link cannot send now: drop the batch.
fn link_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENETDOWN) | Some(libc::ENXIO) | Some(libc::ENODEV)
    )
}

impl PortIo for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        let want = slots.len().min(BATCH);
        let offset = self.rx_offset();
        let mut filled = 0;
        // Each round either fills slots or consumes frames that were skipped; a bounded number
        // of rounds keeps one call short.
        for _ in 0..4 {
            if filled == want {
                break;
            }
            let got = match sys::recv_mmsg(
                self.fd.as_raw_fd(),
                &mut slots[filled..want],
                offset,
                &mut self.metas[..],
            ) {
                Ok(got) => got,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.features.vnet_hdr => {
                    // The kernel could not describe this frame's offload (the frame is consumed).
                    self.stats.rx_dropped += 1;
                    continue;
                }
                Err(e) => {
                    if filled > 0 {
                        break;
                    }
                    return Err(e);
                }
            };
            if got == 0 {
                break;
            }
            let asked = want - filled;
            let mut kept = filled;
            for i in 0..got {
                let meta = self.metas[i];
                let idx = filled + i;
                if self.finish_rx(&mut slots[idx], &meta) {
                    // Moving a slot is swapping two boxes: no copy of the frame.
                    slots.swap(kept, idx);
                    kept += 1;
                }
            }
            filled = kept;
            if got < asked {
                break;
            }
        }
        Ok(filled)
    }

    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> io::Result<usize> {
        let n = slots.len().min(BATCH);
        for (slot, ok) in slots[..n].iter_mut().zip(self.sendable.iter_mut()) {
            *ok = Self::prepare_tx(self.features, slot).is_ok();
        }
        let head = self.tx_head();
        let fd = self.fd.as_raw_fd();
        let mut i = 0;
        while i < n {
            if !self.sendable[i] {
                self.stats.tx_dropped += 1;
                i += 1;
                continue;
            }
            let mut end = i;
            while end < n && self.sendable[end] {
                end += 1;
            }
            match sys::send_mmsg(fd, &slots[i..end], head) {
                Ok(0) => return Ok(i),
                Ok(sent) => {
                    for s in &slots[i..i + sent] {
                        self.stats.tx_frames += 1;
                        self.stats.tx_bytes += s.len as u64;
                    }
                    i += sent;
                }
                Err(e) if frame_error(&e) => {
                    self.stats.tx_dropped += 1;
                    i += 1;
                }
                Err(e) if link_error(&e) => {
                    self.stats.tx_dropped += (n - i) as u64;
                    return Ok(n);
                }
                Err(e) => {
                    if i > 0 {
                        return Ok(i);
                    }
                    return Err(e);
                }
            }
        }
        Ok(n)
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> u32 {
        sys::if_mtu(self.fd.as_raw_fd(), &self.name).unwrap_or(self.mtu)
    }

    fn is_up(&self) -> bool {
        let want = libc::IFF_UP | libc::IFF_RUNNING;
        sys::if_flags(self.fd.as_raw_fd(), &self.name).is_ok_and(|f| f & want == want)
    }

    fn features(&self) -> PortFeatures {
        self.features
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn check_link(&mut self) -> LinkCheck {
        let fd = self.fd.as_raw_fd();
        if let Ok(drops) = sys::packet_drops(fd) {
            self.stats.rx_kernel_dropped += u64::from(drops);
        }
        // Looked up through the socket: in the port's namespace, whichever the caller's is.
        let Ok(ifindex) = sys::if_index_via(fd, &self.name) else {
            return LinkCheck {
                link: Link::Gone,
                reopened: false,
            };
        };
        // The kernel unbinds the socket when its interface is unregistered: a new interface
        // of the name (even one that got the old index back) needs a new socket.
        let bound = sys::packet_bound_ifindex(fd).unwrap_or(self.ifindex);
        let mut reopened = false;
        if ifindex != self.ifindex || bound != self.ifindex {
            let old = self.ifindex;
            match self.reopen() {
                Ok(()) => {
                    info!(
                        device = %self.name,
                        old_ifindex = old,
                        ifindex = self.ifindex,
                        "interface created again: port opened on it"
                    );
                    self.reopen_error = None;
                    reopened = true;
                }
                Err(e) => {
                    let text = e.to_string();
                    if self.reopen_error.as_deref() != Some(text.as_str()) {
                        warn!(
                            device = %self.name,
                            error = %text,
                            "interface is back but the port cannot be opened on it; retrying"
                        );
                        self.reopen_error = Some(text);
                    }
                    return LinkCheck {
                        link: Link::Gone,
                        reopened: false,
                    };
                }
            }
        }
        let link = match sys::if_flags(self.fd.as_raw_fd(), &self.name) {
            Ok(f) if f & libc::IFF_UP == 0 => Link::AdminDown,
            Ok(f) if f & libc::IFF_RUNNING == 0 => Link::NoCarrier,
            Ok(_) => Link::Up,
            Err(_) => Link::Gone,
        };
        LinkCheck { link, reopened }
    }
}

#[cfg(test)]
mod tests {
    use super::release_at_least;

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(release_at_least("6.18.44-fc-v669\n", (6, 2)));
        assert!(release_at_least("6.2.0", (6, 2)));
        assert!(release_at_least("7.0-rc1", (6, 2)));
        assert!(!release_at_least("6.1.0-28-amd64", (6, 2)));
        assert!(!release_at_least("5.19.17", (6, 2)));
        assert!(!release_at_least("", (6, 2)));
        assert!(!release_at_least("garbage", (6, 2)));
    }
}
