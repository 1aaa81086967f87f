//! The Internet checksum (RFC 1071) and the IPv4 / IPv6 pseudo-headers of UDP (RFC 768, RFC 8200
//! §8.1). Allocation-free; used by the LISP data plane and by the control plane's frame builders.
//!
//! Sums are kept unfolded in a `u64` so that pieces (pseudo-header, header, payload) can be added
//! together before the final fold; every piece must start at an even offset of the checksummed
//! data, except the last one, which may have an odd length.

use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Adds `data` (big-endian 16-bit words, odd trailing octet padded with zero) to `acc`.
#[inline]
pub fn add(acc: u64, data: &[u8]) -> u64 {
    let mut sum = acc;
    let (words, rest) = data.as_chunks::<4>();
    for w in words {
        sum += u64::from(u32::from_be_bytes(*w));
    }
    let (pairs, last) = rest.as_chunks::<2>();
    for p in pairs {
        sum += u64::from(u16::from_be_bytes(*p));
    }
    if let Some(&last) = last.first() {
        sum += u64::from(u16::from_be_bytes([last, 0]));
    }
    sum
}

/// Folds an accumulated sum to 16 bits (not complemented).
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves `sum <= 0xffff`.
    u16::try_from(sum).unwrap_or(0xffff)
}

/// The checksum field value for the data summed into `acc`: the complemented fold.
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// IPv4 header checksum of `header` (the checksum field must be zero, or the result verifies it:
/// a correct header sums to zero).
#[inline]
pub fn ipv4_header(header: &[u8]) -> u16 {
    finish(add(0, header))
}

/// Sum of the IPv4 pseudo-header for an upper-layer packet of `len` octets.
#[inline]
pub fn pseudo_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    let mut acc = add(0, &src.octets());
    acc = add(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(len)
}

/// Sum of the IPv6 pseudo-header for an upper-layer packet of `len` octets.
#[inline]
pub fn pseudo_ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u64 {
    let mut acc = add(0, &src.octets());
    acc = add(acc, &dst.octets());
    acc + u64::from(next_header) + u64::from(len)
}

/// UDP checksum field value for `segment` (UDP header with a zero checksum field, then payload)
/// given the pseudo-header sum. A computed zero is sent as `0xffff` (RFC 768).
#[inline]
pub fn udp_field(pseudo: u64, segment: &[u8]) -> u16 {
    match finish(add(pseudo, segment)) {
        0 => 0xffff,
        c => c,
    }
}

/// True if `segment` (with its checksum field in place) verifies against the pseudo-header sum.
#[inline]
pub fn verifies(pseudo: u64, segment: &[u8]) -> bool {
    fold(add(pseudo, segment)) == 0xffff
}

/// RFC 1624 incremental update of a checksum field when one 16-bit word changes from `old` to
/// `new`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update_word(checksum: u16, old: u16, new: u16) -> u16 {
    let sum = u64::from(!checksum) + u64::from(!old) + u64::from(new);
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(fold(add(add(0, &data[..2]), &data[2..])), 0xddf2);
        assert_eq!(fold(add(0, &data[..3])), 0xf201);
    }

    #[test]
    fn incremental_matches_full() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        let c = ipv4_header(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] = 0x3f;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let inc = update_word(c, old, new);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, ipv4_header(&hdr));
    }
}
