//! The system calls of the software backend that need `unsafe`: AF_PACKET socket setup,
//! `recvmmsg`/`sendmmsg` with per-frame metadata, interface ioctls, `poll`, and `setns` for the
//! test harness. Everything else in `software` is safe code on top of these functions.
//!
//! Every function here checks its inputs and turns the C return convention into
//! `io::Result`; no raw pointer escapes a function.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::port::FrameSlot;

/// Frames per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 64;

/// Room for one `tpacket_auxdata` control message (`CMSG_SPACE(20)` is 40 on 64-bit Linux).
const CMSG_ROOM: usize = 64;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new AF_PACKET raw socket, non-blocking, bound to no protocol yet (so nothing is queued on
/// it before it is bound to one interface).
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; the returned fd is checked and owned.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt` with an `int` value.
pub(crate) fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value points to a live c_int and its exact size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds an AF_PACKET socket to one interface, all protocols.
pub(crate) fn bind_packet(fd: RawFd, ifindex: i32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a live sockaddr_ll and its exact size is passed.
    cvt(unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Puts the interface into promiscuous mode for as long as the socket lives
/// (`PACKET_ADD_MEMBERSHIP` with `PACKET_MR_PROMISC`).
pub(crate) fn add_promisc(fd: RawFd, ifindex: i32) -> io::Result<()> {
    // SAFETY: packet_mreq is plain data; all-zero is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { zeroed() };
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
    // SAFETY: the option value points to a live packet_mreq and its exact size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The index of the interface `name` in the calling thread's network namespace.
pub(crate) fn if_index(name: &str) -> io::Result<i32> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    i32::try_from(index).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: ifreq is plain data (a name and a union of plain data); all-zero is valid.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn if_ioctl(fd: RawFd, name: &str, request: libc::c_ulong) -> io::Result<libc::ifreq> {
    let mut req = ifreq_for(name)?;
    // SAFETY: `request` is one of the SIOCGIF* reads below, which write only into the ifreq
    // passed, a live and properly sized value.
    cvt(unsafe { libc::ioctl(fd, request as _, &mut req as *mut libc::ifreq) })?;
    Ok(req)
}

/// Interface flags (`IFF_*`) by name, through any socket of the interface's namespace.
pub(crate) fn if_flags(fd: RawFd, name: &str) -> io::Result<i32> {
    let req = if_ioctl(fd, name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    Ok(i32::from(unsafe { req.ifr_ifru.ifru_flags }) & 0xffff)
}

/// The index of the interface `name` in the network namespace of the socket `fd` (which need
/// not be the calling thread's: a port opened in another namespace looks there).
pub(crate) fn if_index_via(fd: RawFd, name: &str) -> io::Result<i32> {
    let req = if_ioctl(fd, name, libc::SIOCGIFINDEX)?;
    // SAFETY: SIOCGIFINDEX filled the `ifru_ifindex` member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// The interface index an AF_PACKET socket is bound to (`getsockname`); -1 (or 0) once that
/// interface was unregistered (deleted or moved to another namespace) under it.
pub(crate) fn packet_bound_ifindex(fd: RawFd) -> io::Result<i32> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `addr` is a live sockaddr_ll and `len` holds its exact size; the kernel writes at
    // most `len` bytes.
    cvt(unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_ll).cast(), &mut len) })?;
    if addr.sll_family != libc::AF_PACKET as u16 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    Ok(addr.sll_ifindex)
}

/// Frames the kernel dropped on this packet socket since the last call (its receive ring or
/// buffer was full): `PACKET_STATISTICS`, which resets the kernel's counters when read.
pub(crate) fn packet_drops(fd: RawFd) -> io::Result<u32> {
    // SAFETY: tpacket_stats is plain data; all-zero is a valid value.
    let mut stats: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is live and `len` holds its size; the kernel writes at most `len` bytes
    // (the first two words of the v3 statistics are these).
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &mut len,
        )
    })?;
    Ok(stats.tp_drops)
}

/// Interface MTU by name.
pub(crate) fn if_mtu(fd: RawFd, name: &str) -> io::Result<u32> {
    let req = if_ioctl(fd, name, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Interface hardware address by name.
pub(crate) fn if_hwaddr(fd: RawFd, name: &str) -> io::Result<[u8; 6]> {
    let req = if_ioctl(fd, name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// What the kernel said about one frame `recvmmsg` received.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvMeta {
    /// Bytes the kernel had for this message (may exceed the buffer when `truncated`).
    pub len: usize,
    pub truncated: bool,
    /// `sll_pkttype` (`PACKET_HOST`, `PACKET_OUTGOING`, …).
    pub pkttype: u8,
    /// `(tci, tpid)` of a tag the kernel took off the frame (`TP_STATUS_VLAN_VALID`); `tpid` is
    /// 0 when the kernel did not say (`TP_STATUS_VLAN_TPID_VALID` unset).
    pub vlan: Option<(u16, u16)>,
    /// The frame's L4 checksum is partial (`TP_STATUS_CSUMNOTREADY`: a local sender left it to
    /// an offload that never ran, as over veth).
    pub csum_not_ready: bool,
}

fn would_block(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENOBUFS)
    )
}

/// The `PACKET_AUXDATA` control message of a received packet, if there is one.
///
/// # Safety
/// `msg` must have been filled by a successful `recvmsg`/`recvmmsg`, and the control buffer it
/// points to must still be live.
pub(crate) unsafe fn packet_auxdata(msg: &libc::msghdr) -> Option<libc::tpacket_auxdata> {
    // SAFETY (per the contract above): the CMSG_* macros walk the control buffer within
    // msg_controllen, and the payload is read unaligned after checking its level, type and
    // length.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_PACKET
                && c.cmsg_type == libc::PACKET_AUXDATA
                && c.cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize
            {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// The VLAN tag (TCI, TPID; TPID 0 when the kernel did not report it) a device stripped.
pub(crate) fn auxdata_vlan(aux: &libc::tpacket_auxdata) -> Option<(u16, u16)> {
    if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
        return None;
    }
    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
        aux.tp_vlan_tpid
    } else {
        0
    };
    Some((aux.tp_vlan_tci, tpid))
}

/// One `recvmmsg` on a non-blocking packet socket into `slots[i].buf[offset..]`, with
/// `PACKET_AUXDATA` control messages and the sender address parsed into `metas[i]`. Returns how
/// many messages arrived; 0 when none is waiting.
pub(crate) fn recv_mmsg(
    fd: RawFd,
    slots: &mut [FrameSlot],
    offset: usize,
    metas: &mut [RecvMeta],
) -> io::Result<usize> {
    let n = slots.len().min(metas.len()).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: these are plain C structs (integers and pointers); all-zero is a valid value,
    // and every pointer in them is set below before the kernel reads it.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut addrs: [libc::sockaddr_ll; BATCH] = unsafe { zeroed() };
    let mut cmsgs = [[0u64; CMSG_ROOM / 8]; BATCH];
    for i in 0..n {
        let buf = slots[i]
            .buf
            .get_mut(offset..)
            .ok_or(io::ErrorKind::InvalidInput)?;
        iovs[i].iov_base = buf.as_mut_ptr().cast();
        iovs[i].iov_len = buf.len();
        let msg = &mut hdrs[i].msg_hdr;
        msg.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iovs[i];
        msg.msg_iovlen = 1;
        msg.msg_control = cmsgs[i].as_mut_ptr().cast();
        msg.msg_controllen = CMSG_ROOM as _;
    }
    // SAFETY: hdrs[..n] point to buffers (slot memory, addrs, iovs, cmsgs) that are live and
    // exclusively borrowed for the duration of the call, with their true sizes.
    let got = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        let err = io::Error::last_os_error();
        return if would_block(&err) { Ok(0) } else { Err(err) };
    }
    let got = got as usize;
    for i in 0..got {
        let msg = &hdrs[i].msg_hdr;
        let mut meta = RecvMeta {
            len: hdrs[i].msg_len as usize,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            pkttype: addrs[i].sll_pkttype,
            vlan: None,
            csum_not_ready: false,
        };
        // SAFETY: `msg` was filled by the kernel, and its control buffer (cmsgs[i]) is live.
        if let Some(aux) = unsafe { packet_auxdata(msg) } {
            meta.csum_not_ready = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            meta.vlan = auxdata_vlan(&aux);
        }
        metas[i] = meta;
    }
    Ok(got)
}

/// One `sendmmsg` of `slots[i].buf[slots[i].start - head .. slots[i].start + slots[i].len]` on a
/// bound, non-blocking packet socket. Returns how many the kernel took; 0 when its queue is
/// full. An error means the first frame was refused.
pub(crate) fn send_mmsg(fd: RawFd, slots: &[FrameSlot], head: usize) -> io::Result<usize> {
    let n = slots.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: plain C structs; all-zero is valid and the pointers are set below.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    for i in 0..n {
        let s = &slots[i];
        let from = s
            .start
            .checked_sub(head)
            .ok_or(io::ErrorKind::InvalidInput)?;
        let buf = s
            .buf
            .get(from..s.start + s.len)
            .ok_or(io::ErrorKind::InvalidInput)?;
        // The kernel only reads through iov_base on send; the cast to *mut is what iovec
        // requires.
        iovs[i].iov_base = buf.as_ptr() as *mut libc::c_void;
        iovs[i].iov_len = buf.len();
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: hdrs[..n] point to iovecs and slot memory that are live for the call; the kernel
    // only reads the frames.
    let sent =
        unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    if sent < 0 {
        let err = io::Error::last_os_error();
        return if would_block(&err) { Ok(0) } else { Err(err) };
    }
    Ok(sent as usize)
}

/// Waits until one of `fds` is readable (or `writable` too, when asked), at most `timeout_ms`.
/// Sets `ready[i]` for each fd with an event; returns how many. At most 64 fds are watched
/// (the first 64).
pub(crate) fn poll_fds(
    fds: &[RawFd],
    writable: bool,
    ready: &mut [bool],
    timeout_ms: i32,
) -> io::Result<usize> {
    const MAX: usize = 64;
    let n = fds.len().min(MAX).min(ready.len());
    let events = if writable {
        libc::POLLIN | libc::POLLOUT
    } else {
        libc::POLLIN
    };
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    for i in 0..n {
        pfds[i].fd = fds[i];
        pfds[i].events = events;
    }
    // SAFETY: `pfds[..n]` is a live array of pollfd of the length passed.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::EINTR) {
            Ok(0)
        } else {
            Err(err)
        };
    }
    for i in 0..n {
        ready[i] = pfds[i].revents != 0;
    }
    Ok(ret as usize)
}

/// An epoll instance watching `fds` for input: itself readable when any of them is, so that
/// a port with two sockets still gives its waiter one fd.
pub(crate) fn epoll_readable(fds: &[RawFd]) -> io::Result<OwnedFd> {
    // SAFETY: no pointer arguments; the result is checked.
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `ep` is a new fd that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for &fd in fds {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `event` is a live epoll_event for the duration of the call.
        cvt(unsafe {
            libc::epoll_ctl(
                std::os::fd::AsRawFd::as_raw_fd(&ep),
                libc::EPOLL_CTL_ADD,
                fd,
                &mut event,
            )
        })?;
    }
    Ok(ep)
}

/// Moves the calling thread into the network namespace `ns` (an open namespace handle, e.g.
/// of `/proc/thread-self/ns/net`). Only this thread changes namespace.
pub(crate) fn set_netns(ns: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `ns` is an open namespace handle for the duration of the call; setns only
    // changes the calling thread's namespace.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}
