//! roamer's control plane: configuration model, protocol instances (LISP, HSRP), control-message
//! wire code and `show` renderers.

pub mod config;
pub mod error;
pub mod hsrp;
pub mod lisp;
pub mod outbox;
pub mod reconcile;
pub mod show;
pub mod wire;

pub use error::ControlError;
