//! Returning freed memory to the system.

/// Gives the heap's free memory back to the system (glibc `malloc_trim`): after a large
/// `show`, the allocator would otherwise keep the megabytes it freed for the daemon's life.
/// Elsewhere than glibc, nothing.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)] // one libc call without arguments to check
    // SAFETY: malloc_trim takes a pad size and touches only the allocator's own state.
    unsafe {
        libc::malloc_trim(0);
    }
}
