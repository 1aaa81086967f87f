#![no_main]
//! LISP data plane: decapsulation and header parsing of arbitrary packets must never panic, and
//! encapsulating arbitrary inner bytes then decapsulating must give the same inner bytes back.

use libfuzzer_sys::fuzz_target;
use roamer_forwarding::wire::lisp_data::{
    EncapParams, LispDataRepr, decapsulate, decapsulate_in_place, encapsulate_in_place,
    flow_source_port,
};

fuzz_target!(|data: &[u8]| {
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
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
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
});
