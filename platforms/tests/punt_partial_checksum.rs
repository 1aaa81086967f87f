//! A frame whose UDP checksum its sender left to the offload (a Linux peer on the same host,
//! TX checksum offload on a veth: the port reports it partial) reaches the control plane with
//! the checksum completed, as it would have been on a wire; a complete frame with a wrong
//! checksum is punted as it is, for its consumer to refuse. No root needed: the port is a
//! Unix datagram socket pair.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use roamer_forwarding::tables::Limits;
use roamer_forwarding::wire::checksum;
use roamer_hal::{Backend, PacketIo, PortId, Punt, PuntReason, TableEntry, TableOp, VlanId};
use roamer_platforms::software::{
    FrameSlot, PortFeatures, PortIo, PortStats, SoftwareBackend, gso,
};

/// A port whose wire is a Unix datagram socket: one datagram is one frame behind a marker
/// octet; marker 1 reports the frame's checksum partial, located from its headers, as the
/// AF_PACKET port does for `TP_STATUS_CSUMNOTREADY`.
#[derive(Debug)]
struct OffloadPort {
    wire: UnixDatagram,
}

impl PortIo for OffloadPort {
    fn name(&self) -> &str {
        "offload"
    }

    fn recv_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
        for (n, s) in slots.iter_mut().enumerate() {
            s.reset();
            let start = s.start;
            let mut buf = [0u8; 2048];
            match self.wire.recv(&mut buf) {
                Ok(len) if len > 1 => {
                    s.buf[start..start + len - 1].copy_from_slice(&buf[1..len]);
                    s.len = len - 1;
                    if buf[0] == 1 {
                        s.gso = gso::partial_checksum(s.frame());
                    }
                }
                Ok(_) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        Ok(slots.len())
    }

    fn send_batch(&mut self, slots: &mut [FrameSlot]) -> std::io::Result<usize> {
        Ok(slots.len())
    }

    fn raw_fd(&self) -> RawFd {
        self.wire.as_raw_fd()
    }

    fn mac(&self) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, 0xfe]
    }

    fn mtu(&self) -> u32 {
        1500
    }

    fn is_up(&self) -> bool {
        true
    }

    fn features(&self) -> PortFeatures {
        PortFeatures::default()
    }

    fn stats(&self) -> PortStats {
        PortStats::default()
    }
}

const SRC: [u8; 4] = [10, 10, 0, 9];
const GROUP: [u8; 4] = [224, 0, 0, 2];

/// An HSRP hello from 10.10.0.9 to 224.0.0.2: its IPv4 header complete, its UDP checksum
/// field `udp_checksum`.
fn hello(udp_checksum: impl Fn(&[u8]) -> u16) -> Vec<u8> {
    let payload = [
        0u8, 0, 16, 1, 3, 200, 10, 0, b'c', b'i', b's', b'c', b'o', 0, 0, 0, 10, 10, 0, 1,
    ];
    let mut f = vec![1, 0, 0x5e, 0, 0, 2, 2, 0, 0, 0, 0, 0x99, 0x08, 0x00];
    let ulen = (8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 20 + ulen as u8, 0, 0, 0, 0, 1, 17, 0, 0]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&GROUP);
    let c = checksum::ipv4_header(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&1985u16.to_be_bytes());
    f.extend_from_slice(&1985u16.to_be_bytes());
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    let c = udp_checksum(&f[34..]);
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

fn pseudo(len: usize) -> u64 {
    checksum::pseudo_ipv4(SRC.into(), GROUP.into(), checksum::IPPROTO_UDP, len as u16)
}

fn next_punt(b: &mut SoftwareBackend) -> Punt {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        b.drain_punts(&mut out);
        if let Some(p) = out.pop() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no punt within 5 s");
}

#[test]
fn a_partial_udp_checksum_is_completed_before_the_frame_is_punted() {
    let (port_end, wire) = UnixDatagram::pair().unwrap();
    port_end.set_nonblocking(true).unwrap();
    let mut b = SoftwareBackend::start(
        vec![(PortId(1), Box::new(OffloadPort { wire: port_end }))],
        Limits::default(),
    )
    .unwrap();
    let vlan = VlanId::new(10).unwrap();
    let results = b.apply(&[
        TableOp::add(TableEntry::Vlan { vlan }),
        TableOp::add(TableEntry::VlanMember {
            vlan,
            port: PortId(1),
            tagged: false,
        }),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // As a sender with checksum offload leaves it: the folded pseudo-header sum in the field.
    let partial = hello(|udp| checksum::fold(pseudo(udp.len())));
    let complete = hello(|udp| checksum::udp_field(pseudo(udp.len()), udp));
    assert!(!checksum::verifies(
        pseudo(partial.len() - 34),
        &partial[34..]
    ));
    wire.send(&[&[1u8][..], &partial].concat()).unwrap();
    let p = next_punt(&mut b);
    assert_eq!(p.reason, PuntReason::Hsrp);
    assert_eq!(
        p.frame, complete,
        "the checksum a device would have written"
    );
    assert!(checksum::verifies(
        pseudo(p.frame.len() - 34),
        &p.frame[34..]
    ));

    // A complete frame with a wrong checksum: punted as it is.
    let wrong = hello(|udp| checksum::udp_field(pseudo(udp.len()), udp) ^ 0x0101);
    wire.send(&[&[0u8][..], &wrong].concat()).unwrap();
    let p = next_punt(&mut b);
    assert_eq!(
        p.frame, wrong,
        "a bad checksum on a complete frame stays bad"
    );
}
