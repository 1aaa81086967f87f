//! The one error type of the HAL.

use thiserror::Error;

use crate::table::{OpAction, TableKey, TableKind};
use crate::types::SlotId;
use crate::version::{EpldVersion, Release};

#[derive(Debug, Error)]
pub enum HalError {
    #[error("{table} table full on {scope}: capacity {capacity} entries")]
    TableFull {
        table: TableKind,
        /// The card or backend whose table is full, e.g. `slot 1 (N7K-M132XP-12)`.
        scope: String,
        capacity: u32,
    },

    #[error("{table} entry {key} already exists")]
    Exists { table: TableKind, key: TableKey },

    #[error("{table} entry {key} not found")]
    NotFound { table: TableKind, key: TableKey },

    #[error("{action} on the {table} table is not supported by the {backend} backend")]
    Unsupported {
        action: OpAction,
        table: TableKind,
        backend: String,
    },

    #[error("{slot}: {model}: {reason}")]
    CardRejected {
        slot: SlotId,
        model: String,
        reason: String,
    },

    #[error("{slot}: {model}: unknown line-card model (not in the catalogue)")]
    UnknownCard { slot: SlotId, model: String },

    #[error(
        "{slot}: {model}: EPLD {found} is too old for LISP; {required} or later is required (upgrade the module's EPLD images)"
    )]
    EpldTooOld {
        slot: SlotId,
        model: String,
        found: EpldVersion,
        required: EpldVersion,
    },

    #[error(
        "{slot}: {model}: EPLD version not given; LISP on this module needs EPLD {required} or later"
    )]
    EpldUnknown {
        slot: SlotId,
        model: String,
        required: EpldVersion,
    },

    #[error(
        "{slot}: {model}: LISP on this module needs NX-OS {required} or later; the chassis runs {running}"
    )]
    ReleaseTooOld {
        slot: SlotId,
        model: String,
        running: Release,
        required: Release,
    },

    #[error("invalid {what} '{value}': expected {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("line-card catalogue: {detail}")]
    Catalogue { detail: String },

    #[error("no such port {port} on the {backend} backend")]
    NoSuchPort { port: u32, backend: String },

    #[error("port {port} is already attached to the {backend} backend")]
    PortExists { port: u32, backend: String },

    #[error("{backend} backend: {operation} failed: {source}")]
    Io {
        backend: String,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{backend} backend: {detail}")]
    Backend { backend: String, detail: String },

    /// An operation outside table programming (a forwarding trace, …) that this backend does
    /// not offer.
    #[error("{operation} is not supported by the {backend} backend: {reason}")]
    NotSupported {
        operation: &'static str,
        backend: String,
        reason: &'static str,
    },

    /// The data path did not take or did not answer a request in time.
    #[error("data path not answering: the {backend} backend {detail} ({operation})")]
    NotAnswering {
        backend: String,
        operation: &'static str,
        detail: &'static str,
    },

    /// A failure injected on purpose by the chaos backend.
    #[error("{backend} backend: injected failure of {operation}{}", table.map(|t| format!(" on the {t} table")).unwrap_or_default())]
    Injected {
        backend: String,
        operation: &'static str,
        table: Option<TableKind>,
    },
}

impl HalError {
    /// `InvalidValue`: `value` is not a valid `what`, which is `expected`.
    pub fn invalid(what: &'static str, value: &str, expected: &'static str) -> HalError {
        HalError::InvalidValue {
            what,
            value: value.to_string(),
            expected,
        }
    }

    /// Whether trying the same operation again later may succeed with nothing else changed:
    /// a data path that did not answer, an I/O or backend failure, an injected one. A full
    /// table, an unsupported operation or a refused card stay so until the configuration
    /// changes.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HalError::NotAnswering { .. }
                | HalError::Injected { .. }
                | HalError::Io { .. }
                | HalError::Backend { .. }
        )
    }
}
