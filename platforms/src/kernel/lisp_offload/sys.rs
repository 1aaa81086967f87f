//! The one system call of the LISP offload that needs `unsafe`: the name of an interface from
//! its index, in the calling thread's network namespace (aya attaches by name; the HAL and the
//! kernel backend speak indexes; /sys/class/net shows the namespace sysfs was mounted in, not
//! the thread's).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

/// `if_indextoname(3)`.
pub(super) fn if_name(ifindex: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE octets if_indextoname writes at most (NUL included);
    // the returned pointer is either NULL or `buf`.
    let ret = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if ret.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `buf` holds a NUL-terminated name within its length.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}
