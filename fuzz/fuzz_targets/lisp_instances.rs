//! Fuzzes the LISP instances (xTR, Map-Server/Map-Resolver) with arbitrary received messages:
//! no panic, no table beyond its limit (see roamer_control::lisp::fuzz_harness).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use roamer_control::lisp::fuzz_harness::Harness;

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    if h.is_none() {
        *h = Harness::new();
    }
    if let Some(h) = h.as_mut() {
        h.feed(data);
    }
});
