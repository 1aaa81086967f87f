//! roamer's forwarding core: pure functions over frames and tables. No I/O, no clocks (time is
//! passed in), no allocation per packet on the fast path.

pub mod error;
pub mod keyed_hash;
pub mod lpm;
pub mod pipeline;
pub mod tables;
pub mod wire;

pub use error::ForwardingError;
