//! Control-message wire code: views over bytes, representation structs, parse and emit apart.

pub mod hsrp;
pub mod lisp;
pub mod reliable;
