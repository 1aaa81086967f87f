//! The eBPF objects built from `platforms/bpf/*.c` by `build.rs`, one constant per source file
//! (`lisp_tc.c` → `LISP_TC`): the object's bytes, or why this build has none (no clang at build
//! time, or the program did not compile).

include!(concat!(env!("OUT_DIR"), "/bpf_objects.rs"));
