//! Frame-level wire code of the data plane.

pub mod checksum;
pub mod lisp_data;
