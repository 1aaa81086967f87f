//! LISP control messages (RFC 9301 / RFC 6833) and their authentication.
