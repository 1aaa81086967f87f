//! Frame-level wire code of the data plane.

pub mod lisp_data;
