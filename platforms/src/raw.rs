//! Frames sent as they are out of one interface, outside any backend: for tools such as the
//! host announcements of `roamer lab` (a moved VM's gratuitous ARP / unsolicited NA).

use crate::PlatformError;
use crate::software::{AfPacketPort, FRAME_ROOM, FrameSlot, PortIo};

/// Sends `frames` out of `device` (in the namespace this runs in), retrying briefly while the
/// kernel queue is full (right after the link came up). `Ok` once every frame left.
pub fn send_frames(device: &str, frames: &[Vec<u8>]) -> Result<(), PlatformError> {
    let mut port = AfPacketPort::open(device)?;
    let mut slots: Vec<FrameSlot> = Vec::with_capacity(frames.len());
    for f in frames {
        let mut s = FrameSlot::new(FRAME_ROOM);
        s.set_frame(f).map_err(|e| PlatformError::PortIo {
            port: device.to_string(),
            op: "frame",
            source: std::io::Error::other(format!("{e:?}")),
        })?;
        slots.push(s);
    }
    let mut done = 0;
    for _ in 0..100 {
        if done == slots.len() {
            return Ok(());
        }
        done += port
            .send_batch(&mut slots[done..])
            .map_err(|source| PlatformError::PortIo {
                port: device.to_string(),
                op: "send",
                source,
            })?;
        if done < slots.len() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    if done == slots.len() {
        return Ok(());
    }
    Err(PlatformError::PortIo {
        port: device.to_string(),
        op: "send",
        source: std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "{} of {} frames not sent: the queue stayed full",
                slots.len() - done,
                slots.len()
            ),
        ),
    })
}
