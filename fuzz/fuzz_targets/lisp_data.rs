#![no_main]
//! LISP data plane: decapsulation and header parsing of arbitrary packets must never panic, and
//! encapsulating arbitrary inner bytes then decapsulating must give the same inner bytes back
//! (see roamer_forwarding::wire::lisp_data::fuzz_harness).

use libfuzzer_sys::fuzz_target;
use roamer_forwarding::wire::lisp_data::fuzz_harness::exercise;

fuzz_target!(|data: &[u8]| exercise(data));
