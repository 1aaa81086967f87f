//! The kernel backend: Linux (and switchdev ASICs) programmed over netlink, LISP in eBPF.

pub mod lisp_offload;
