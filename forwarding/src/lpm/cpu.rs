//! The CPU-specific parts of the lookups, and the one `unsafe` of the LPM tables:
//!
//! - software prefetch, so that a burst of lookups asks for the lines it reads next and their
//!   cache misses overlap instead of queueing one after another;
//! - POPCNT: every level indexes its blocks by population count, which without the instruction
//!   is a dozen shifts and multiplies. The build targets baseline x86-64 (qemu's default CPU has
//!   no POPCNT, so a global `-C target-cpu` would not run there); lookups instead run through
//!   [`with_popcnt`], which compiles them a second time with the instruction and picks that
//!   copy when the CPU has it.

#![allow(unsafe_code)]

/// Hints the CPU to bring the line holding `value` into the cache. No effect on the program's
/// meaning: off x86-64 it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and reads nothing architecturally; the pointer comes from
    // a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Work to run compiled with POPCNT: implementations mark `run` `#[inline(always)]`, so that
/// its body (and what it inlines) is compiled into [`popcnt_enabled`]. A closure would not do:
/// it stays a function of its own, compiled without the instruction.
pub(super) trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `kernel`, compiled with POPCNT where the CPU has it (std caches the CPUID answer, so
/// the check is one load and a branch).
#[inline(always)]
pub(super) fn with_popcnt<W: Kernel>(kernel: W) -> W::Output {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("popcnt") {
        // SAFETY: the only requirement of a `target_feature` function is that the CPU has the
        // feature, which was just checked.
        return unsafe { popcnt_enabled(kernel) };
    }
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn popcnt_enabled<W: Kernel>(kernel: W) -> W::Output {
    kernel.run()
}
