//! One harness for the LISP data plane, shared by the `lisp_data` fuzz target and the test that
//! replays its corpus: decapsulation and header parsing of arbitrary packets must never panic,
//! and encapsulating arbitrary inner bytes then decapsulating must give the same inner bytes
//! back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    EncapParams, LispDataRepr, decapsulate, decapsulate_in_place, encapsulate_in_place,
    flow_source_port,
};

/// Runs the checks on `data`; panics (the finding) when one fails.
pub fn exercise(data: &[u8]) {
    if let Ok(d) = decapsulate(data) {
        assert!(d.inner_range().end <= data.len());
        let _ = LispDataRepr::parse_bytes(&data[d.inner_start - 8..]);
    }
    let mut copy = data.to_vec();
    let _ = decapsulate_in_place(&mut copy);
    let _ = LispDataRepr::parse_bytes(data);

    // First octet selects the outer family; the rest is the inner packet, whose first 8 octets
    // also give the LISP header to send.
    let Some((&sel, inner)) = data.split_first() else {
        return;
    };
    let v6 = sel & 1 == 1;
    let mut header = LispDataRepr::parse_bytes(inner).unwrap_or_default();
    header.key_id = 0;
    header.next_protocol = None;
    let (src, dst) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        )
    };
    let params = EncapParams::new(src, dst, flow_source_port(inner, 0), header);
    let headroom = params.overhead();
    let mut buf = vec![0u8; headroom + inner.len()];
    buf[headroom..].copy_from_slice(inner);
    if let Ok(start) = encapsulate_in_place(&mut buf, headroom, inner.len(), &params) {
        let d = decapsulate(&buf[start..]).expect("our own encapsulation decapsulates");
        assert_eq!(d.inner(&buf[start..]), inner);
        assert_eq!(d.header, header);
    }
}
