//! LISP control-plane instances.

pub mod map_server;
pub mod nonce;
pub mod reliable;
pub mod xtr;
