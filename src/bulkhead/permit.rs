//! The RAII permit: taking and giving back a bulkhead slot.

use std::sync::Arc;

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

impl BulkheadPermit<'_> {
    /// The same slot held by an owned permit.
    pub(super) fn into_owned(self, shared: Arc<BulkheadShared>) -> OwnedBulkheadPermit {
        // the slot moves to the owned permit: this one must not give it back
        std::mem::forget(self);
        OwnedBulkheadPermit { shared }
    }
}

/// A bulkhead permit that owns its hold on the bulkhead: `Send + 'static`, so it can move
/// into a spawned task or a response body. From
/// [`Bulkhead::acquire_owned`](crate::Bulkhead::acquire_owned) or
/// [`try_acquire_owned`](crate::Bulkhead::try_acquire_owned). The slot is given back when
/// it is dropped, like [`BulkheadPermit`]'s.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedBulkheadPermit {
    shared: Arc<BulkheadShared>,
}

impl OwnedBulkheadPermit {
    /// The name of the bulkhead the permit belongs to.
    pub fn bulkhead_name(&self) -> &str {
        &self.shared.name
    }
}

impl Drop for OwnedBulkheadPermit {
    fn drop(&mut self) {
        self.shared.give_back_one();
    }
}
