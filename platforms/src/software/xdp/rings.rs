//! The AF_XDP socket of one port and queue: its UMEM (frames shared with the kernel), and the
//! fill, completion, receive and transmit rings, over `xdpilone`. The only module of the AF_XDP
//! port with `unsafe` code: the UMEM mapping, reading and writing frames in it, and two
//! `ioctl`/`getsockopt` calls. Everything it hands out is safe: frames are lent as `&[u8]` for
//! the length of a call, no pointer escapes.
//!
//! Frame ownership: the first [`RX_FRAMES`] chunks of the UMEM belong to receive (in the fill
//! ring, or in the receive ring, or being copied out during a [`XskRings::recv`] call, after which
//! they go back to the fill ring at once); the other [`TX_FRAMES`] chunks to transmit (on the free
//! list, or in the transmit ring until the completion ring gives them back). The port copies
//! between the UMEM and its [`super::super::FrameSlot`]s (a frame of 64 bytes costs one
//! cache line; the slots are the forwarding core's own memory).
#![allow(unsafe_code)]

use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig};

/// Size of one UMEM chunk: one page, what copy mode and native XDP on veth work with.
pub(crate) const CHUNK: u32 = 4096;
/// Chunks for receive: the fill ring's size.
pub(crate) const RX_FRAMES: u32 = 1024;
/// Chunks for transmit: the transmit and completion rings' size.
pub(crate) const TX_FRAMES: u32 = 1024;
/// Descriptors taken from or given to a ring per call.
pub(crate) const RING_BATCH: usize = 64;

const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

fn errno(e: xdpilone::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.get_raw().abs())
}

/// The UMEM area: an anonymous private mapping, page aligned, unmapped on drop.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    fn new(len: usize) -> io::Result<Area> {
        // SAFETY: an anonymous mapping with no address hint; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave 0"))?;
        Ok(Area { ptr, len })
    }

    fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; the sockets that registered the
        // area are closed before (field order of `XskRings`), so the kernel no longer uses it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// One bound AF_XDP socket with its rings and UMEM. Fields drop in order: the rings and the
/// socket first (closing the socket ends the kernel's use of the UMEM), the area last.
pub(crate) struct XskRings {
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    _umem: Umem,
    area: Area,
    fd: RawFd,
    /// Transmit chunks not in the kernel's hands (UMEM offsets).
    tx_free: Vec<u64>,
    /// Receive chunks taken from the receive ring in this call, for the fill ring.
    refill: [u64; RING_BATCH],
    /// Descriptors of the current transmit batch.
    staged: [XdpDesc; RING_BATCH],
    staged_len: usize,
    zero_copy: bool,
}

// SAFETY: the rings and the UMEM are owned by this value alone (no other handle to them exists),
// so moving it to another thread moves all their users with it. The raw pointers inside
// (`Area`, `Umem`, the mapped rings) are only dereferenced through `&mut self`.
unsafe impl Send for XskRings {}

impl std::fmt::Debug for XskRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskRings")
            .field("fd", &self.fd)
            .field("tx_free", &self.tx_free.len())
            .field("zero_copy", &self.zero_copy)
            .finish()
    }
}

impl XskRings {
    /// An AF_XDP socket on queue `queue` of interface `ifindex`, bound with need-wakeup (zero-copy
    /// when the driver offers it, copy mode otherwise), its fill ring full.
    pub(crate) fn open(ifindex: u32, queue: u32) -> io::Result<XskRings> {
        let frames = RX_FRAMES + TX_FRAMES;
        let area = Area::new(frames as usize * CHUNK as usize)?;
        let config = UmemConfig {
            fill_size: RX_FRAMES,
            complete_size: TX_FRAMES,
            frame_size: CHUNK,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is a live, page-aligned mapping of frames * CHUNK bytes that `self`
        // keeps (and unmaps only after the UMEM's socket is closed).
        let umem = unsafe { Umem::new(config, area.as_slice_ptr()) }.map_err(errno)?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex).map_err(errno)?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem).map_err(errno)?;
        let mut device = umem.fq_cq(&sock).map_err(errno)?;
        let rings = SocketConfig {
            rx_size: NonZeroU32::new(RX_FRAMES),
            tx_size: NonZeroU32::new(TX_FRAMES),
            bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
        };
        let user = umem.rx_tx(&sock, &rings).map_err(errno)?;
        let rx = user.map_rx().map_err(errno)?;
        let tx = user.map_tx().map_err(errno)?;
        {
            let mut fill = device.fill(RX_FRAMES);
            fill.insert((0..RX_FRAMES).map(|i| u64::from(i) * u64::from(CHUNK)));
            fill.commit();
        }
        umem.bind(&user).map_err(errno)?;
        let fd = user.as_raw_fd();
        let tx_free = (RX_FRAMES..frames)
            .map(|i| u64::from(i) * u64::from(CHUNK))
            .collect();
        let zero_copy = xdp_options(fd).is_ok_and(|o| o & XDP_OPTIONS_ZEROCOPY != 0);
        Ok(XskRings {
            rx,
            tx,
            device,
            _umem: umem,
            area,
            fd,
            tx_free,
            refill: [0; RING_BATCH],
            staged: [XdpDesc::default(); RING_BATCH],
            staged_len: 0,
            zero_copy,
        })
    }

    /// The socket (for the XSK map and for `poll`: readable when frames wait).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Bound in zero-copy mode (the driver's own buffers are the UMEM).
    pub(crate) fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Writable bytes `addr..addr + len` of the UMEM, if inside it.
    fn chunk_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        if end > self.area.len {
            return None;
        }
        // SAFETY: in bounds of the live mapping (checked above); the chunk came off the transmit
        // free list, so the kernel does not read it until it is put in the transmit ring.
        Some(unsafe { std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(start), len) })
    }

    /// Takes up to `max` (at most [`RING_BATCH`]) received frames, hands each to `take` (a frame
    /// outside the UMEM is skipped), gives their chunks back to the fill ring; returns how many
    /// descriptors were read.
    pub(crate) fn recv(&mut self, max: usize, mut take: impl FnMut(&[u8])) -> usize {
        let max = max.min(RING_BATCH) as u32;
        let mut n = 0;
        {
            let mut ring = self.rx.receive(max);
            while let Some(desc) = ring.read() {
                self.refill[n] = desc.addr;
                n += 1;
                // The chunk is a copy-mode or zero-copy frame at `addr` (data start, inside
                // the chunk the fill ring gave).
                let start = usize::try_from(desc.addr).unwrap_or(usize::MAX);
                let end = start.saturating_add(desc.len as usize);
                if end <= self.area.len {
                    // SAFETY: in bounds of the mapping (checked); see `chunk`.
                    let frame = unsafe {
                        std::slice::from_raw_parts(
                            self.area.ptr.as_ptr().add(start),
                            desc.len as usize,
                        )
                    };
                    take(frame);
                }
            }
            ring.release();
        }
        // The fill ring has room for every receive chunk (it never holds more), but a
        // reservation answers from a cached view of the kernel's consumer and may grant fewer
        // entries than asked: the second round refreshes it.
        let mask = !u64::from(CHUNK - 1);
        let mut done = 0;
        for _ in 0..4 {
            if done == n {
                break;
            }
            let mut fill = self.device.fill((n - done) as u32);
            let put = fill.insert(self.refill[done..n].iter().map(|a| a & mask)) as usize;
            fill.commit();
            done += put;
        }
        if self.device.needs_wakeup() {
            self.device.wake();
        }
        n
    }

    /// Takes back the chunks the kernel finished sending.
    fn reap(&mut self) {
        let mut done = self.device.complete(TX_FRAMES);
        while let Some(addr) = done.read() {
            self.tx_free.push(addr & !u64::from(CHUNK - 1));
        }
        done.release();
    }

    /// Room for how many frames the next batch has (after taking back sent chunks).
    pub(crate) fn tx_room(&mut self) -> usize {
        if self.tx_free.len() < RING_BATCH {
            self.reap();
        }
        self.tx_free.len().min(RING_BATCH) - self.staged_len
    }

    /// Copies `frame` into a free chunk and stages it; false when there is no room or the frame
    /// does not fit a chunk.
    pub(crate) fn stage(&mut self, frame: &[u8]) -> bool {
        if self.staged_len == RING_BATCH || frame.len() > CHUNK as usize {
            return false;
        }
        let Some(addr) = self.tx_free.pop() else {
            return false;
        };
        let Some(dst) = self.chunk_mut(addr, frame.len()) else {
            return false;
        };
        dst.copy_from_slice(frame);
        self.staged[self.staged_len] = XdpDesc {
            addr,
            len: frame.len() as u32,
            options: 0,
        };
        self.staged_len += 1;
        true
    }

    /// Puts the staged frames in the transmit ring and wakes the kernel; returns how many went
    /// in (the rest go back to the free list: the ring was full).
    pub(crate) fn flush(&mut self) -> usize {
        let staged = self.staged_len;
        if staged == 0 {
            return 0;
        }
        // As for the fill ring: a second round when the cached view granted fewer entries.
        let mut put = 0;
        for _ in 0..2 {
            let mut ring = self.tx.transmit((staged - put) as u32);
            put += ring.insert(self.staged[put..staged].iter().copied()) as usize;
            ring.commit();
            if put == staged {
                break;
            }
        }
        for desc in &self.staged[put..staged] {
            self.tx_free.push(desc.addr);
        }
        self.staged_len = 0;
        // In copy mode one wake-up (`sendto`) sends at most the socket's transmit budget (32
        // frames by default) and leaves the rest in the ring: wake until the kernel took them
        // all, or a few times (zero-copy drivers consume asynchronously).
        for _ in 0..8 {
            if !self.tx.needs_wakeup() || self.tx.pending() == 0 {
                break;
            }
            self.tx.wake();
        }
        put
    }

    /// Frames the kernel dropped for this socket (receive ring full, no fill chunk) so far.
    pub(crate) fn rx_dropped(&self) -> u64 {
        self.device
            .statistics_v2()
            .map(|s| s.rx_dropped + s.rx_ring_full)
            .unwrap_or(0)
    }
}

/// `getsockopt(SOL_XDP, XDP_OPTIONS)`: the socket's mode flags.
fn xdp_options(fd: RawFd) -> io::Result<u32> {
    let mut opts: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: the option value points to a live u32 whose size is passed in `len`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut opts as *mut u32).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(opts)
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// The receive queues of interface `name` (rx + combined channels), asked with the socket `fd`
/// (in that socket's network namespace). `None` when the driver does not say (one queue).
pub(crate) fn rx_queues(fd: RawFd, name: &str) -> Option<u32> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: ETHTOOL_GCHANNELS fills a `struct ethtool_channels`.
    unsafe { ethtool(fd, name, &mut ch) }.then_some(ch.rx_count + ch.combined_count)
}

const ETHTOOL_GDRVINFO: u32 = 0x03;

/// `struct ethtool_drvinfo`.
#[repr(C)]
#[derive(Default)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// The driver of interface `name` ("veth", "virtio_net"), asked with the socket `fd`; `None`
/// when the device does not say.
pub(crate) fn driver(fd: RawFd, name: &str) -> Option<String> {
    let mut info = EthtoolDrvinfo {
        cmd: ETHTOOL_GDRVINFO,
        ..Default::default()
    };
    // SAFETY: ETHTOOL_GDRVINFO fills a `struct ethtool_drvinfo`.
    if !unsafe { ethtool(fd, name, &mut info) } {
        return None;
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// One `SIOCETHTOOL` request about interface `name` on the socket `fd`: `data` is the ethtool
/// structure of the command in its first field, filled by the driver. False when the name is
/// too long or the driver refuses.
///
/// # Safety
/// `T` must be the structure the kernel reads and writes for the command in `data`.
unsafe fn ethtool<T>(fd: RawFd, name: &str, data: &mut T) -> bool {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return false;
    }
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: `ifr` is a live ifreq whose data pointer points to a live structure of the
    // command's type (the caller's promise); both outlive the call.
    unsafe { libc::ioctl(fd, libc::SIOCETHTOOL, &mut ifr as *mut libc::ifreq) >= 0 }
}
