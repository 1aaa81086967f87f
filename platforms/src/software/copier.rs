//! The minimal frame copier: two ports joined back to back, every frame received on one sent
//! out of the other, in batches. The yardstick the software backend's throughput is measured
//! against (whatever roamer does per frame costs what it adds to this loop).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use super::port::{FrameSlot, GSO_FRAME_ROOM, PortIo};
use super::sys::{self, BATCH};

/// What one [`run`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopierStats {
    pub a_to_b: u64,
    pub b_to_a: u64,
    /// Frames received but not sent because the egress stayed full.
    pub dropped: u64,
    /// The largest frame copied (above the MTU when large segments crossed whole).
    pub largest_frame: usize,
}

/// How long one wait for frames lasts before `stop` is looked at again.
const POLL_MS: i32 = 50;

/// Sends attempts for a batch the egress did not take at once.
const SEND_TRIES: usize = 8;

/// Copies frames between `a` and `b`, both ways, until `stop` is set; returns what it moved.
/// Slots are allocated once, large enough for large segments.
pub fn run(a: &mut dyn PortIo, b: &mut dyn PortIo, stop: &AtomicBool) -> io::Result<CopierStats> {
    let mut slots = FrameSlot::batch(BATCH, GSO_FRAME_ROOM);
    let mut stats = CopierStats::default();
    let fds = [a.raw_fd(), b.raw_fd()];
    let mut ready = [true; 2];
    while !stop.load(Ordering::Relaxed) {
        let mut moved = 0;
        if ready[0] {
            let n = copy_once(a, b, &mut slots, &mut stats)?;
            stats.a_to_b += n as u64;
            moved += n;
        }
        if ready[1] {
            let n = copy_once(b, a, &mut slots, &mut stats)?;
            stats.b_to_a += n as u64;
            moved += n;
        }
        if moved == 0 {
            ready = [false; 2];
            sys::poll_fds(&fds, false, &mut ready, POLL_MS)?;
        } else {
            // Something moved: look at both sides again before sleeping.
            ready = [true; 2];
        }
    }
    Ok(stats)
}

/// One batch from `from` to `to`; returns how many frames were sent.
fn copy_once(
    from: &mut dyn PortIo,
    to: &mut dyn PortIo,
    slots: &mut [FrameSlot],
    stats: &mut CopierStats,
) -> io::Result<usize> {
    let n = from.recv_batch(slots)?;
    if n == 0 {
        return Ok(0);
    }
    for s in &slots[..n] {
        stats.largest_frame = stats.largest_frame.max(s.len);
    }
    let mut done = 0;
    for _ in 0..SEND_TRIES {
        done += to.send_batch(&mut slots[done..n])?;
        if done == n {
            break;
        }
        let mut ready = [false];
        sys::poll_fds(&[to.tx_fd()], true, &mut ready, 1)?;
    }
    stats.dropped += (n - done) as u64;
    Ok(done)
}
