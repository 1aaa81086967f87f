//! Child processes that end with their test.

use std::process::Child;

/// A child process, killed (SIGKILL, by its id) and reaped when dropped, however the test ends.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
