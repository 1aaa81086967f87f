//! The LISP data-plane header (RFC 9300 §5.3) and LISP-GPE, built and parsed in place.
