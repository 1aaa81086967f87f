//! The system calls of the kernel backend that need `unsafe`: `recvfrom`/`sendto` on an
//! AF_PACKET socket with its `sockaddr_ll`, one `setsockopt` the libc crate does not wrap, and
//! `poll`. Everything else in `kernel` is safe code (socket2, rtnetlink, /proc and /sys files).
//! Every function checks its inputs and turns the C return convention into `io::Result`; no raw
//! pointer escapes a function.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

/// `sll_pkttype` of a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): the libc crate does not name it.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Keeps frames this host sends away from the packet socket `fd`. Without it the kernel clones
/// every transmitted frame of every interface for the tap (`dev_queue_xmit_nit`) only for the
/// filter to drop it: a cost on the kernel's whole forwarding path.
pub fn ignore_outgoing(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int passed with its true size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One frame received on a packet socket: its length, ingress ifindex and packet type.
/// Returns `Ok(None)` when nothing is waiting (the socket is non-blocking).
pub fn recv_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, i32, u8)>> {
    // SAFETY: sockaddr_ll is a plain C struct of integers; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `addr` are live and exclusively borrowed for the call, passed with
    // their true sizes.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut addr as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    Ok(Some((n as usize, addr.sll_ifindex, addr.sll_pkttype)))
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

/// Waits at most `timeout_ms` until one of `fds` (negative ones are skipped) is readable;
/// returns which are (`ready[i]`), at most 4 fds.
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<[bool; 4]> {
    let mut p = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 4];
    let n = fds.len().min(4);
    for (slot, fd) in p.iter_mut().zip(fds) {
        slot.fd = *fd;
    }
    // SAFETY: `p[..n]` are live pollfds, and n is the count passed; poll ignores negative fds.
    let ret = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    let mut ready = [false; 4];
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
