//! Fuzzes the reliable-transport (TCP 4342) framing: the incremental decoder under an
//! input-chosen chunking, one-shot frame parsing, typed message decoding and re-emission.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roamer_control::wire::reliable::{Frame, ReliableDecoder, ReliableFrame, TypeNumbers};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl % 32) + 1;
    let max = if ctl & 0x80 != 0 { 256 } else { 65535 };
    let t = TypeNumbers::default();

    // Incremental decoding with the chosen chunk size must agree with one-shot decoding.
    let mut chunked = ReliableDecoder::new(max);
    let mut got = Vec::new();
    let mut chunked_err = false;
    for c in stream.chunks(chunk) {
        match chunked.feed(c) {
            Ok(frames) => got.extend(frames),
            Err(_) => {
                chunked_err = true;
                // Sticky until reset.
                assert!(chunked.feed(&[]).is_err());
                break;
            }
        }
    }
    let mut whole = ReliableDecoder::new(max);
    match whole.feed(stream) {
        Ok(frames) => {
            assert!(
                !chunked_err,
                "chunked decoding failed where one-shot succeeded"
            );
            assert_eq!(frames, got, "chunking changed the frames");
            assert_eq!(whole.buffered(), chunked.buffered());
        }
        Err(_) => assert!(chunked_err, "one-shot failed where chunked succeeded"),
    }

    for f in &got {
        let raw = f.to_vec().expect("a decoded frame must emit");
        assert_eq!(&Frame::parse(&raw).expect("re-parse"), f);
        if let Ok(typed) = ReliableFrame::from_frame(f, &t) {
            let bytes = typed.to_vec().expect("a decoded message must emit");
            let again = ReliableFrame::parse(&bytes).expect("emitted frame must parse");
            assert_eq!(again, typed);
        }
    }
    let _ = Frame::parse(stream);
    let _ = ReliableFrame::parse(stream);
});
