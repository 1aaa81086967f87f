//! Where a protocol instance's outputs go: frames to inject and table operations for the data
//! plane. Instances are sans-IO: they write to an [`Outbox`], which the daemon implements over
//! its data plane and tests implement as a recorder (the golden traces).

use roamer_hal::{HalError, InjectTarget, TableOp};

pub trait Outbox {
    /// A frame for the data plane to send (copied: the instance reuses its buffer).
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError>;

    /// One table operation, applied at once; its result comes back.
    fn apply(&mut self, op: &TableOp) -> Result<(), HalError>;
}

/// An [`Outbox`] that keeps what it is given, for tests and traces.
#[derive(Debug, Default)]
pub struct Recorder {
    pub injected: Vec<(InjectTarget, Vec<u8>)>,
    pub applied: Vec<TableOp>,
}

impl Outbox for Recorder {
    fn inject(&mut self, target: InjectTarget, frame: &[u8]) -> Result<(), HalError> {
        self.injected.push((target, frame.to_vec()));
        Ok(())
    }

    fn apply(&mut self, op: &TableOp) -> Result<(), HalError> {
        self.applied.push(op.clone());
        Ok(())
    }
}
