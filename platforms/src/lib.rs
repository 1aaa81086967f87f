//! roamer-platforms
