//! Waiting for a condition, with a timeout.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `check` every 200 ms until it gives a value; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(ok) = check() {
            return ok;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {timeout:?}");
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
