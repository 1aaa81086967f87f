//! The system calls of the kernel backend that need `unsafe`: `recvmsg` (with the VLAN
//! auxdata) and `sendto` on an AF_PACKET socket with its `sockaddr_ll`, `recvmsg` on a raw IP
//! socket with its packet-info control messages, and `poll`
//! (`setsockopt` is the software backend's). Everything else in `kernel` is safe code (socket2, rtnetlink, /proc and /sys files).
//! Every function checks its inputs and turns the C return convention into `io::Result`; no raw
//! pointer escapes a function.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, size_of_val, zeroed};
use std::os::fd::RawFd;

/// `sll_pkttype` of a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;

use crate::software::sys::set_int_opt;

/// Asks the kernel for `PACKET_AUXDATA` with every frame (the VLAN tag it stripped).
pub fn want_auxdata(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)
}

/// One frame received on a packet socket (with `PACKET_AUXDATA` on).
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub ifindex: i32,
    pub pkttype: u8,
    /// The VLAN ID of the tag the device stripped (rx-vlan offload, or the kernel before the
    /// packet taps), if the frame had one.
    pub vlan: Option<u16>,
}

/// Room for one `tpacket_auxdata` control message (`CMSG_SPACE(20)` is 40 on 64-bit Linux).
const CMSG_ROOM: usize = 64;

/// One non-blocking `recvmsg` into `buf`, the sender's address into `addr` (a C socket
/// address type) and the control messages into `cmsg`; `parse` reads the control messages
/// while they are live. Returns the length and what `parse` made, or `Ok(None)` when nothing
/// is waiting.
fn recv_msg<A, T>(
    fd: RawFd,
    buf: &mut [u8],
    addr: &mut A,
    cmsg: &mut [u64],
    parse: impl FnOnce(&libc::msghdr) -> T,
) -> io::Result<Option<(usize, T)>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct of integers and pointers; all-zero is a valid value,
    // and the pointers are set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (addr as *mut A).cast();
    msg.msg_namelen = size_of::<A>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(cmsg) as _;
    // SAFETY: `msg` points to `buf`, `addr`, `iov` and `cmsg`, all live and exclusively
    // borrowed for the call, with their true sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    Ok(Some((n as usize, parse(&msg))))
}

/// One frame received on a packet socket. Returns `Ok(None)` when nothing is waiting (the
/// socket is non-blocking).
pub fn recv_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Received>> {
    // SAFETY: sockaddr_ll is a plain C struct of integers; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    let mut cmsg = [0u64; CMSG_ROOM / 8];
    // SAFETY: `msg` was filled by a successful recvmsg and its control buffer is still live.
    let got = recv_msg(fd, buf, &mut addr, &mut cmsg, |msg| unsafe {
        crate::software::sys::packet_auxdata(msg)
    })?;
    let Some((len, aux)) = got else {
        return Ok(None);
    };
    Ok(Some(Received {
        len,
        ifindex: addr.sll_ifindex,
        pkttype: addr.sll_pkttype,
        vlan: aux
            .as_ref()
            .and_then(crate::software::sys::auxdata_vlan)
            .map(|(tci, _)| tci & 0x0fff),
    }))
}

/// One packet received on a raw IP socket (with `IP_PKTINFO`, or `IPV6_RECVPKTINFO` and
/// `IPV6_RECVHOPLIMIT`, on).
#[derive(Debug, Clone, Copy, Default)]
pub struct IpReceived {
    pub len: usize,
    /// The interface it arrived on (0 if the kernel did not say).
    pub ifindex: i32,
    /// IPv6 only (an IPv6 raw socket returns no IPv6 header): the source, the destination and
    /// the hop limit.
    pub src6: Option<std::net::Ipv6Addr>,
    pub dst6: Option<std::net::Ipv6Addr>,
    pub hop_limit: Option<u8>,
}

/// The packet-info and hop-limit control messages of a raw IP socket's message.
///
/// # Safety
/// `msg` must have been filled by a successful `recvmsg`, its control buffer still live.
unsafe fn ip_control(msg: &libc::msghdr) -> IpReceived {
    let mut rx = IpReceived::default();
    // SAFETY (per the contract above): the CMSG_* macros walk the control buffer within
    // msg_controllen; each payload is read unaligned after checking its level, type and length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            let len = h.cmsg_len as usize;
            let data = libc::CMSG_DATA(c);
            match (h.cmsg_level, h.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize =>
                {
                    let p: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    rx.ifindex = p.ipi_ifindex;
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize =>
                {
                    let p: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    rx.ifindex = p.ipi6_ifindex as i32;
                    rx.dst6 = Some(std::net::Ipv6Addr::from(p.ipi6_addr.s6_addr));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if len >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize =>
                {
                    let v: libc::c_int = std::ptr::read_unaligned(data.cast());
                    rx.hop_limit = u8::try_from(v).ok();
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    rx
}

/// One packet received on a raw IP socket. Returns `Ok(None)` when nothing is waiting.
pub fn recv_ip(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<IpReceived>> {
    // SAFETY: sockaddr_storage is a plain C struct; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut cmsg = [0u64; 128 / 8];
    // SAFETY: `msg` was filled by a successful recvmsg and its control buffer is still live.
    let got = recv_msg(fd, buf, &mut addr, &mut cmsg, |msg| unsafe {
        ip_control(msg)
    })?;
    let Some((len, mut rx)) = got else {
        return Ok(None);
    };
    rx.len = len;
    if i32::from(addr.ss_family) == libc::AF_INET6 {
        // SAFETY: the kernel wrote a sockaddr_in6 (ss_family says so) into storage that is
        // larger than one; read unaligned.
        let a: libc::sockaddr_in6 =
            unsafe { std::ptr::read_unaligned((&addr as *const libc::sockaddr_storage).cast()) };
        rx.src6 = Some(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr));
    }
    Ok(Some(rx))
}

/// Sends one Ethernet frame out of interface `ifindex` on a packet socket.
pub fn send_packet(fd: RawFd, ifindex: i32, frame: &[u8]) -> io::Result<()> {
    if frame.len() < 14 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: plain C struct of integers; all-zero is valid, the fields are set below.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&frame[..6]);
    // SAFETY: `frame` and `addr` are live for the call and passed with their true sizes.
    let n = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub const MAX_WAIT_FDS: usize = 8;

/// Waits at most `timeout_ms` until one of `fds` (negative ones are skipped) is readable;
/// returns which are (`ready[i]`), at most [`MAX_WAIT_FDS`] fds.
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<[bool; MAX_WAIT_FDS]> {
    let mut p = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; MAX_WAIT_FDS];
    let n = fds.len().min(MAX_WAIT_FDS);
    for (slot, fd) in p.iter_mut().zip(fds) {
        slot.fd = *fd;
    }
    // SAFETY: `p[..n]` are live pollfds, and n is the count passed; poll ignores negative fds.
    let ret = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    let mut ready = [false; MAX_WAIT_FDS];
    if ret < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::EINTR) {
            Ok(ready)
        } else {
            Err(err)
        };
    }
    for (r, pfd) in ready.iter_mut().zip(&p[..n]) {
        *r = pfd.revents & libc::POLLIN != 0;
    }
    Ok(ready)
}
