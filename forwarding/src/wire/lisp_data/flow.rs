//! Per-flow UDP source port (protocols.md §2.3): a hash of the inner 5-tuple, constant per flow.

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;

/// First port of the range the source port is taken from (the IANA dynamic range 49152-65535).
pub const SOURCE_PORT_BASE: u16 = 49152;

#[inline]
fn mix(h: u32, word: u32) -> u32 {
    // murmur3 32-bit block mixing.
    let k = word
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline]
fn finalize(mut h: u32) -> u32 {
    // murmur3 fmix32.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn mix_bytes(mut h: u32, bytes: &[u8]) -> u32 {
    let (words, rest) = bytes.as_chunks::<4>();
    for w in words {
        h = mix(h, u32::from_be_bytes(*w));
    }
    let mut tail = [0u8; 4];
    if let Some(t) = tail.get_mut(..rest.len()) {
        t.copy_from_slice(rest);
    }
    if !rest.is_empty() {
        h = mix(h, u32::from_be_bytes(tail));
    }
    h
}

fn ports(l4: &[u8]) -> Option<u32> {
    l4.first_chunk::<4>().map(|p| u32::from_be_bytes(*p))
}

/// A 32-bit hash of the inner packet's flow: source and destination address and protocol, plus
/// the source and destination ports for TCP, UDP and SCTP (not for IPv4 fragments, so that every
/// fragment of a datagram hashes alike), plus the IPv6 flow label. `seed` lets a box decorrelate
/// its hash from its neighbours' (0 is fine). Never fails: what cannot be parsed is hashed as is.
pub fn flow_hash(inner: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    match inner.first().map(|b| b >> 4) {
        Some(4) => {
            if let Some(ip) = inner.first_chunk::<20>() {
                let proto = ip[9];
                h = mix_bytes(h, &ip[12..20]);
                h = mix(h, u32::from(proto));
                let frag = u16::from_be_bytes([ip[6], ip[7]]);
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if frag & 0x3fff == 0
                    && matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
                    && let Some(p) = inner.get(ihl..).and_then(ports)
                {
                    h = mix(h, p);
                }
            } else {
                h = mix_bytes(h, inner);
            }
        }
        Some(6) => {
            if let Some(ip) = inner.first_chunk::<40>() {
                let next = ip[6];
                let flow_label = u32::from_be_bytes([ip[0], ip[1], ip[2], ip[3]]) & 0x000f_ffff;
                h = mix_bytes(h, &ip[8..40]);
                h = mix(h, u32::from(next));
                h = mix(h, flow_label);
                if matches!(next, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
                    && let Some(p) = inner.get(40..).and_then(ports)
                {
                    h = mix(h, p);
                }
            } else {
                h = mix_bytes(h, inner);
            }
        }
        _ => h = mix_bytes(h, inner.get(..40).unwrap_or(inner)),
    }
    finalize(h)
}

/// The UDP source port for an inner packet: `49152 + flow_hash mod 16384` (protocols.md §2.3).
pub fn flow_source_port(inner: &[u8], seed: u32) -> u16 {
    SOURCE_PORT_BASE | u16::try_from(flow_hash(inner, seed) & 0x3fff).unwrap_or(0)
}
