//! LISP control-plane instances.

pub mod frames;
#[cfg(any(test, feature = "fuzz-harness"))]
#[doc(hidden)]
pub mod fuzz_harness;
pub mod instance;
pub mod map_server;
pub mod nonce;
pub mod reliable;
pub mod request_limit;
pub mod xtr;
