//! Test frames shared by the test modules of `gso`.

use super::{ETH_HLEN, ones_complement_sum};
use std::net::IpAddr;

/// Ethernet (02:00:00:00:00:02 -> 02:00:00:00:00:01) and an IPv4 (DF, no options, TTL 64,
/// identification `id`, header checksum complete) or IPv6 (hop limit 64) header from
/// `addrs[0]` to `addrs[1]`, for `l4_len` octets of protocol `proto` to follow.
pub(super) fn eth_ip(addrs: [&str; 2], proto: u8, l4_len: usize, id: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    let [src, dst] = addrs.map(|a| a.parse::<IpAddr>().unwrap());
    match (src, dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&dst.octets());
        }
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&dst.octets());
            let sum = !ones_complement_sum(&f[ETH_HLEN..ETH_HLEN + 20]);
            f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&sum.to_be_bytes());
        }
        _ => panic!("addresses of different families: {addrs:?}"),
    }
    f
}
