//! The byte layouts of the maps and events of `platforms/bpf/lisp_maps.h`, built and parsed
//! here so that the rest of the offload stays plain safe Rust (aya's `Pod` is implemented for
//! byte arrays; a `#[repr(C)]` struct would need an `unsafe impl`). Integers the C side declares
//! `__u32`/`__u64` are in host order; addresses and ifindexes inside LPM keys in network order.

use std::net::IpAddr;

use roamer_hal::{HalError, Iid, Locator, NegativeAction, Prefix};

pub(super) const FAM_V4: u8 = 4;
pub(super) const FAM_V6: u8 = 6;

/// `MAX_CANDIDATES`: locators of the best priority kept per map-cache entry.
pub(super) const MAX_CANDIDATES: usize = 8;
/// `sizeof(struct addr)`.
pub(super) const ADDR_LEN: usize = 20;
/// `sizeof(struct locator)`.
const LOCATOR_LEN: usize = 4 + ADDR_LEN;
/// `sizeof(struct mc_val)`.
pub(super) const MC_VAL_LEN: usize = 12 + MAX_CANDIDATES * LOCATOR_LEN;
/// `sizeof(struct config)`.
pub(super) const CONFIG_LEN: usize = 40;
/// `sizeof(struct event)`.
pub(super) const EVENT_LEN: usize = 16 + 3 * ADDR_LEN;

/// Counter names, in the order of `enum counter`; named as the software backend names its
/// counters where they match.
pub(super) const COUNTER_NAMES: [&str; 17] = [
    "lisp-encapsulated",
    "lisp-decapsulated",
    "drop map-cache-miss",
    "drop negative-map-cache",
    "drop no-route",
    "drop no-usable-locator",
    "drop too-big-to-encapsulate",
    "drop eid-not-here",
    "drop local-eid-no-route",
    "drop bad-lisp-packet",
    "drop no-headroom",
    "punt lisp-control",
    "events-dropped",
    "lisp-relayed-away",
    "fragmented",
    "drop ttl-expired",
    // Of lisp-decapsulated: forwarded by the ETR program itself (the FIB resolved the next hop).
    "lisp-decapsulated-forwarded",
];

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { FAM_V4 } else { FAM_V6 }
}

fn octets(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// `struct addr`.
pub(super) fn addr(ip: IpAddr) -> [u8; ADDR_LEN] {
    let mut out = [0u8; ADDR_LEN];
    out[0] = family(ip);
    out[4..].copy_from_slice(&octets(ip));
    out
}

/// Parses a `struct addr`.
pub(super) fn parse_addr(b: &[u8]) -> Option<IpAddr> {
    let a = b.get(4..ADDR_LEN)?;
    match *b.first()? {
        FAM_V4 => {
            let v4: [u8; 4] = a.get(..4)?.try_into().ok()?;
            Some(IpAddr::from(v4))
        }
        FAM_V6 => {
            let v6: [u8; 16] = a.try_into().ok()?;
            Some(IpAddr::from(v6))
        }
        _ => None,
    }
}

/// `struct eid_key` (prefix length and data): family octet, then the prefix.
pub(super) fn eid_key(p: Prefix) -> (u32, [u8; 20]) {
    let mut data = [0u8; 20];
    data[0] = family(p.addr());
    data[1..17].copy_from_slice(&octets(p.addr()));
    (8 + u32::from(p.len()), data)
}

/// `struct if_key`: ifindex (network order), family octet, then the prefix.
pub(super) fn if_key(ifindex: u32, p: Prefix) -> (u32, [u8; 24]) {
    let mut data = [0u8; 24];
    data[..4].copy_from_slice(&ifindex.to_be_bytes());
    data[4] = family(p.addr());
    data[5..21].copy_from_slice(&octets(p.addr()));
    (32 + 8 + u32::from(p.len()), data)
}

/// `struct src_key`.
pub(super) fn src_key(ifindex: u32, ip: IpAddr) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&ifindex.to_ne_bytes());
    out[4..].copy_from_slice(&u32::from(family(ip)).to_ne_bytes());
    out
}

fn negative_code(n: NegativeAction) -> u8 {
    match n {
        NegativeAction::NoAction => 0,
        NegativeAction::NativelyForward => 1,
        NegativeAction::SendMapRequest => 2,
        NegativeAction::Drop => 3,
    }
}

/// `struct mc_val`. Only the locators of the best priority (lowest, 255 = never) are kept, in
/// their order, with cumulative weights: the program's walk is then the software core's
/// `choose_locator`.
pub(super) fn mc_value(
    iid: Iid,
    locators: &[Locator],
    negative: NegativeAction,
) -> Result<[u8; MC_VAL_LEN], HalError> {
    let mut out = [0u8; MC_VAL_LEN];
    out[..4].copy_from_slice(&iid.get().to_ne_bytes());
    out[4] = negative_code(negative);
    out[5] = u8::from(!locators.is_empty());
    let best = locators
        .iter()
        .filter(|l| l.priority != 255)
        .map(|l| l.priority)
        .min();
    let candidates: Vec<&Locator> = match best {
        Some(b) => locators.iter().filter(|l| l.priority == b).collect(),
        None => Vec::new(),
    };
    if candidates.len() > MAX_CANDIDATES {
        return Err(HalError::InvalidValue {
            what: "number of best-priority locators of a map-cache entry",
            value: candidates.len().to_string(),
            expected: "at most 8 (eBPF data path)",
        });
    }
    out[6] = u8::try_from(candidates.len()).unwrap_or(0);
    let mut cumulative = 0u32;
    for (i, l) in candidates.iter().enumerate() {
        cumulative += u32::from(l.weight);
        let at = 12 + i * LOCATOR_LEN;
        out[at..at + 4].copy_from_slice(&cumulative.to_ne_bytes());
        out[at + 4..at + LOCATOR_LEN].copy_from_slice(&addr(l.rloc));
    }
    out[8..12].copy_from_slice(&cumulative.to_ne_bytes());
    Ok(out)
}

/// The locator the program picks for `hash` from an `mc_val` (for tests: the program's walk,
/// in Rust).
#[cfg(test)]
pub(super) fn pick(value: &[u8; MC_VAL_LEN], hash: u32) -> Option<IpAddr> {
    let u32_at =
        |at: usize| u32::from_ne_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    let n = u32::from(value[6]);
    if n == 0 {
        return None;
    }
    let total = u32_at(8);
    let idx = if total == 0 {
        hash % n
    } else {
        let p = hash % total;
        (0..n).find(|&i| p < u32_at(12 + i as usize * LOCATOR_LEN))?
    };
    let at = 12 + idx as usize * LOCATOR_LEN + 4;
    parse_addr(&value[at..at + ADDR_LEN])
}

/// `struct config`.
pub(super) fn config(
    miss_interval_ms: u64,
    eid_refresh_ms: u64,
    away_redetect_ms: u64,
    too_big_ms: u64,
    flow_seed: u32,
) -> [u8; CONFIG_LEN] {
    let mut out = [0u8; CONFIG_LEN];
    let ns = |ms: u64| ms.saturating_mul(1_000_000).to_ne_bytes();
    out[..8].copy_from_slice(&ns(miss_interval_ms));
    out[8..16].copy_from_slice(&ns(eid_refresh_ms));
    out[16..24].copy_from_slice(&ns(away_redetect_ms));
    out[24..32].copy_from_slice(&ns(too_big_ms));
    out[32..36].copy_from_slice(&flow_seed.to_ne_bytes());
    out
}

/// An event from the ring buffer, before the interface index is mapped to an L3 interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RawEvent {
    MapCacheMiss {
        iid: u32,
        dest: IpAddr,
        source: IpAddr,
    },
    EidNotHere {
        iid: u32,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
    },
    NoRoute {
        iid: u32,
        eid: IpAddr,
        source_rloc: IpAddr,
        inner_source: IpAddr,
    },
    DynamicEid {
        ifindex: u32,
        eid: IpAddr,
    },
}

/// Parses a `struct event`; `None` for anything malformed (never from our program).
pub(super) fn parse_event(b: &[u8]) -> Option<RawEvent> {
    if b.len() < EVENT_LEN {
        return None;
    }
    let u32_at = |at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (kind, iid, ifindex) = (u32_at(0), u32_at(4), u32_at(8));
    let a = parse_addr(&b[16..36]);
    let bb = parse_addr(&b[36..56]);
    let c = parse_addr(&b[56..76]);
    Some(match kind {
        1 => RawEvent::MapCacheMiss {
            iid,
            dest: a?,
            source: bb?,
        },
        2 => RawEvent::EidNotHere {
            iid,
            eid: a?,
            source_rloc: bb?,
            inner_source: c?,
        },
        3 => RawEvent::NoRoute {
            iid,
            eid: a?,
            source_rloc: bb?,
            inner_source: c?,
        },
        4 => RawEvent::DynamicEid { ifindex, eid: a? },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(rloc: &str, priority: u8, weight: u8) -> Locator {
        Locator {
            rloc: rloc.parse().unwrap(),
            priority,
            weight,
        }
    }

    #[test]
    fn candidates_are_the_best_priority_with_cumulative_weights() {
        let locs = [
            loc("192.0.2.9", 2, 50),
            loc("192.0.2.1", 1, 25),
            loc("192.0.2.2", 1, 75),
            loc("192.0.2.3", 255, 100),
        ];
        let v = mc_value(Iid::new(7).unwrap(), &locs, NegativeAction::NoAction).unwrap();
        assert_eq!(v[6], 2, "two locators of priority 1");
        // hash % 100 < 25 → the first; else the second (choose_locator's walk).
        assert_eq!(pick(&v, 24), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(pick(&v, 25), Some("192.0.2.2".parse().unwrap()));
        assert_eq!(pick(&v, 199), Some("192.0.2.2".parse().unwrap()));
        assert_eq!(pick(&v, 100), Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn zero_weights_split_evenly_and_priority_255_is_never_used() {
        let v = mc_value(
            Iid::default(),
            &[loc("192.0.2.1", 1, 0), loc("2001:db8::2", 1, 0)],
            NegativeAction::NoAction,
        )
        .unwrap();
        assert_eq!(pick(&v, 4), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(pick(&v, 5), Some("2001:db8::2".parse().unwrap()));
        let never = mc_value(
            Iid::default(),
            &[loc("192.0.2.1", 255, 10)],
            NegativeAction::NoAction,
        )
        .unwrap();
        assert_eq!((never[5], never[6]), (1, 0), "has locators, none usable");
        assert_eq!(pick(&never, 3), None);
    }

    #[test]
    fn more_than_eight_candidates_are_refused() {
        let locs: Vec<Locator> = (1..=9)
            .map(|i| loc(&format!("192.0.2.{i}"), 1, 1))
            .collect();
        let err = mc_value(Iid::default(), &locs, NegativeAction::NoAction).unwrap_err();
        assert!(err.to_string().contains("at most 8"), "{err}");
    }

    #[test]
    fn keys_put_the_family_inside_the_prefix() {
        let p = Prefix::new("10.20.0.0".parse().unwrap(), 16).unwrap();
        let (len, data) = eid_key(p);
        assert_eq!(len, 24);
        assert_eq!(&data[..3], &[4, 10, 20]);
        let (len, data) = if_key(3, p);
        assert_eq!(len, 56);
        assert_eq!(&data[..7], &[0, 0, 0, 3, 4, 10, 20]);
    }

    #[test]
    fn events_parse_as_the_program_writes_them() {
        let mut b = [0u8; EVENT_LEN];
        b[..4].copy_from_slice(&2u32.to_ne_bytes());
        b[4..8].copy_from_slice(&5u32.to_ne_bytes());
        b[16..36].copy_from_slice(&addr("10.20.0.99".parse().unwrap()));
        b[36..56].copy_from_slice(&addr("192.0.2.1".parse().unwrap()));
        b[56..76].copy_from_slice(&addr("fd10::5".parse().unwrap()));
        assert_eq!(
            parse_event(&b),
            Some(RawEvent::EidNotHere {
                iid: 5,
                eid: "10.20.0.99".parse().unwrap(),
                source_rloc: "192.0.2.1".parse().unwrap(),
                inner_source: "fd10::5".parse().unwrap(),
            })
        );
        b[..4].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(parse_event(&b), None);
        assert_eq!(parse_event(&b[..10]), None);
    }
}
