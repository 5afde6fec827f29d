//! Where a limiter's state lives. [`StateStore`] is the seam a distributed backend (Redis)
//! plugs into without changing the handles; [`LocalStore`] keeps it in this process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam::utils::CachePadded;

use super::algorithm::{Algorithm, Cell};
use super::decision::Decision;

/// The state of one quota (a direct limiter, or one key of a keyed limiter).
pub(crate) trait StateStore: Send + Sync + 'static {
    /// Checks a cost of `n` at `now` and, when admitted, spends it.
    fn check_n(&self, algorithm: &Algorithm, now: u64, n: u32) -> Decision;
    /// Back to a full quota.
    fn reset(&self);
}

/// In-process state: GCRA-family state in one atomic (a CAS loop, lock-free); window state
/// (two words) behind an uncontended mutex.
#[derive(Debug, Default)]
pub(crate) struct LocalStore {
    tat: CachePadded<AtomicU64>,
    window: Mutex<Cell>,
}

impl StateStore for LocalStore {
    #[inline]
    fn check_n(&self, algorithm: &Algorithm, now: u64, n: u32) -> Decision {
        match algorithm {
            Algorithm::Gcra(g) => {
                let mut tat = self.tat.load(Ordering::Acquire);
                loop {
                    let (new, decision) = g.check(tat, now, n);
                    let Some(new) = new else { return decision };
                    match self.tat.compare_exchange_weak(
                        tat,
                        new,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return decision,
                        Err(seen) => tat = seen,
                    }
                }
            }
            _ => {
                let mut cell = self.window.lock().unwrap_or_else(|p| p.into_inner());
                let (new, decision) = algorithm.check(*cell, now, n);
                if let Some(new) = new {
                    *cell = new;
                }
                decision
            }
        }
    }

    fn reset(&self) {
        self.tat.store(0, Ordering::Release);
        *self.window.lock().unwrap_or_else(|p| p.into_inner()) = Cell::default();
    }
}
