//! How a moved host announces itself, as a hypervisor does after a live migration.
//!
//! - **RARP** (`--announce rarp`): what QEMU/KVM's announce-self and VMware send for the guest —
//!   EtherType 0x8035, "reverse request" from the guest's MAC, no IP address. Switches learn the
//!   MAC on the new port from it; it carries no IP address, so NX-OS cannot detect a dynamic EID
//!   from it, and neither does roamer: the MAC moves at once, the EID waits for the host's first
//!   ARP or IP packet.
//! - **Gratuitous ARP** (`--announce garp`): what a guest sends itself when told to (virtio-net
//!   guest announce) and many hosts send when a link comes up — an ARP request for its own
//!   address. roamer, as NX-OS, detects a dynamic EID from any ARP whose sender address is in
//!   a dynamic-EID range: the new site registers the host at once.
//! - **Both** (the default): the hypervisor's RARP and the guest's gratuitous ARP, as with
//!   QEMU and a virtio-net guest; the gratuitous ARP is what makes the move seen before the
//!   host sends anything else.
//!
//! Sent from the host's namespace by `roamer lab announce` (hidden; run under `ip netns exec`),
//! three rounds 50 and 100 ms apart as QEMU spaces its announcements.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::lab_err;
use crate::error::RoamerError;

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_RARP: u16 = 0x8035;

/// What a moved host sends on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Announce {
    /// Gratuitous ARP for each IPv4 address: detected as a dynamic EID at once.
    Garp,
    /// RARP, as QEMU announce-self and VMware: the MAC moves, no EID until the host talks.
    Rarp,
    /// RARP, then gratuitous ARP (QEMU with a virtio-net guest).
    #[default]
    Both,
    /// Nothing: the network sees the move on the host's first packet.
    None,
}

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// The host's interface (in the namespace this runs in).
    pub dev: String,
    /// Its MAC address.
    #[arg(long)]
    pub mac: String,
    /// Its IPv4 addresses.
    #[arg(long = "ip")]
    pub ips: Vec<Ipv4Addr>,
    #[arg(long, value_enum, default_value_t = Announce::Both)]
    pub kind: Announce,
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The frames of one announcement round.
pub fn frames(kind: Announce, mac: [u8; 6], ips: &[Ipv4Addr]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let arp = |ethertype: u16, op: u16, spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&mac);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&tha);
        f.extend_from_slice(&tpa);
        f.resize(60, 0);
        f
    };
    if matches!(kind, Announce::Rarp | Announce::Both) {
        // As QEMU's announce-self: reverse request (3), the MAC as sender and target.
        out.push(arp(ETHERTYPE_RARP, 3, [0; 4], mac, [0; 4]));
    }
    if matches!(kind, Announce::Garp | Announce::Both) {
        for ip in ips {
            // As `arping -U`: a request for its own address.
            out.push(arp(ETHERTYPE_ARP, 1, ip.octets(), [0; 6], ip.octets()));
        }
    }
    out
}

/// Sends the announcement on `dev` (from the namespace this runs in).
pub fn run(args: &AnnounceArgs) -> Result<(), RoamerError> {
    let mac = parse_mac(&args.mac)
        .ok_or_else(|| lab_err(format!("{:?}: expected a MAC address", args.mac)))?;
    let frames = frames(args.kind, mac, &args.ips);
    if frames.is_empty() {
        return Ok(());
    }
    for (round, pause) in [0u64, 50, 100].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(pause));
        roamer_platforms::send_frames(&args.dev, &frames).map_err(|e| {
            lab_err(format!(
                "{}: announcement round {}: {e}",
                args.dev,
                round + 1
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn announcements_are_rarp_without_an_address_and_arp_for_its_own_address() {
        let mac = parse_mac("02:00:00:00:00:0a").unwrap();
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        let ip = Ipv4Addr::new(10, 1, 1, 5);
        let both = frames(Announce::Both, mac, &[ip]);
        assert_eq!(both.len(), 2);
        let (rarp, garp) = (&both[0], &both[1]);
        assert_eq!(rarp.len(), 60);
        assert_eq!(&rarp[..6], &[0xff; 6]);
        assert_eq!(&rarp[12..14], &[0x80, 0x35]);
        assert_eq!(&rarp[20..22], &[0, 3], "reverse request");
        assert_eq!(&rarp[28..32], &[0; 4], "no sender address");
        assert_eq!(&rarp[32..38], &mac);
        assert_eq!(&garp[12..14], &[0x08, 0x06]);
        assert_eq!(&garp[20..22], &[0, 1]);
        assert_eq!(&garp[22..28], &mac);
        assert_eq!(&garp[28..32], &ip.octets(), "sender");
        assert_eq!(&garp[38..42], &ip.octets(), "target: its own address");
        assert_eq!(frames(Announce::Garp, mac, &[ip]).len(), 1);
        assert_eq!(frames(Announce::Rarp, mac, &[ip]).len(), 1);
        assert!(frames(Announce::None, mac, &[ip]).is_empty());
    }
}
