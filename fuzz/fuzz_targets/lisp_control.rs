//! Fuzzes the LISP control-message parser, the authentication code and the emitters.
//!
//! Properties checked on every input:
//! * nothing panics (parse, verify with both algorithms, emit);
//! * a message that parses emits, and the emitted bytes parse back to the same value
//!   (idempotence: unknown bits and trailing octets are dropped by the first parse);
//! * emitting is byte-stable (emit(parse(emit(x))) == emit(x)).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roamer_control::wire::lisp::{AuthKey, KeyId, parse_message, sign, verify};

fuzz_target!(|data: &[u8]| {
    for alg in [KeyId::HmacSha1, KeyId::HmacSha256] {
        if let Ok(key) = AuthKey::new(alg, b"cisco") {
            let _ = verify(data, &key);
            let mut copy = data.to_vec();
            if sign(&mut copy, &key).is_ok() {
                assert!(
                    verify(&copy, &key).is_ok(),
                    "signed message does not verify"
                );
            }
        }
    }
    if let Ok(msg) = parse_message(data) {
        let bytes = msg.to_vec().expect("a parsed message must emit");
        assert_eq!(bytes.len(), msg.buffer_len());
        let again = parse_message(&bytes).expect("emitted bytes must parse");
        assert_eq!(again, msg, "parse(emit(parse(x))) != parse(x)");
        assert_eq!(again.to_vec().expect("emit"), bytes, "emit not stable");
    }
});
