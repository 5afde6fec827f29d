//! The RAII permit: taking and giving back a bulkhead slot.

use super::state::BulkheadShared;

/// A bulkhead permit. The slot is given back when the permit is dropped: when the call
/// completes, fails, panics (drop runs while unwinding) or its future is dropped (timeout,
/// a lost `select!`, task abort).
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct BulkheadPermit<'a> {
    shared: &'a BulkheadShared,
}

impl<'a> BulkheadPermit<'a> {
    /// Wraps a permit already taken from the semaphore (and forgotten there).
    pub(super) fn new(shared: &'a BulkheadShared) -> Self {
        Self { shared }
    }
}

impl Drop for BulkheadPermit<'_> {
    fn drop(&mut self) {
        self.shared.give_back_one();
    }
}
