//! Tests of `fragment_ipv4`.

use super::*;

fn packet(payload: usize) -> FrameSlot {
    let mut slot = FrameSlot::batch(1, 9000).remove(0);
    let total = 20 + payload;
    let mut f = vec![0u8; ETH_HLEN + total];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 1, 0, 5]);
    f[30..34].copy_from_slice(&[10, 2, 0, 5]);
    for (i, b) in f[34..].iter_mut().enumerate() {
        *b = i as u8;
    }
    slot.set_frame(&f).unwrap();
    slot
}

#[test]
fn fragments_carry_8_octet_offsets_mf_and_the_whole_payload() {
    let src = packet(1480);
    let mut out = FrameSlot::batch(4, 2048);
    let n = fragment_ipv4(&src, 1000, &mut out).unwrap();
    assert_eq!(n, 2);
    let mut data = Vec::new();
    for (i, s) in out[..n].iter().enumerate() {
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&s.frame()[ETH_HLEN..]).unwrap();
        assert_eq!(ip.identification(), 0x1234);
        assert_eq!(ip.more_fragments(), i == 0);
        assert!(!ip.dont_fragment());
        assert_eq!(ip.fragments_offset().value() as usize * 8, data.len());
        assert!(usize::from(ip.total_len()) <= 1000);
        assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
        data.extend_from_slice(&s.frame()[ETH_HLEN + 20..]);
    }
    assert_eq!(data, src.frame()[ETH_HLEN + 20..]);
    assert_eq!((1000 - 20) / 8 * 8, out[0].frame().len() - ETH_HLEN - 20);
}

#[test]
fn a_packet_without_data_is_one_header_only_fragment() {
    // IP total length 20 in a longer frame (found by the gso fuzz target): one fragment
    // was reported but none written, so the caller sent what the slot held before.
    let mut src = packet(100);
    src.frame_mut()[16..18].copy_from_slice(&20u16.to_be_bytes());
    let mut out = FrameSlot::batch(2, 2048);
    out[0].set_frame(&[0xee; 200]).unwrap();
    assert_eq!(fragment_ipv4(&src, 1000, &mut out), Ok(1));
    let f = out[0].frame();
    assert_eq!(f.len(), ETH_HLEN + 20);
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_HLEN..]).unwrap();
    assert_eq!((ip.total_len(), ip.identification()), (20, 0x1234));
    assert!(!ip.more_fragments());
    assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
}

#[test]
fn df_options_and_short_packets_are_refused() {
    let mut df = packet(1480);
    df.frame_mut()[20] = 0x40;
    let mut out = FrameSlot::batch(4, 2048);
    assert_eq!(
        fragment_ipv4(&df, 1000, &mut out),
        Err(SegmentError::Malformed)
    );
    let mut opts = packet(1480);
    opts.frame_mut()[14] = 0x46;
    assert_eq!(
        fragment_ipv4(&opts, 1000, &mut out),
        Err(SegmentError::Malformed)
    );
    assert_eq!(
        fragment_ipv4(&packet(1480), 20, &mut out),
        Err(SegmentError::NoSegmentSize)
    );
}
