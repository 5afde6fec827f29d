//! Where a direct limiter's state lives: [`Store::Local`] in this process, or
//! [`Store::Redis`] (feature `redis`) shared by every instance. The handles do not change.
//!
//! The first seam was a trait with one synchronous `check_n`; a remote check needs a round
//! trip, so the seam is now this enum: a check that never waits (`check_now`) and one that
//! may (`RedisStore::check`), with the local path kept inline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam::utils::CachePadded;

use super::algorithm::{Algorithm, Cell};
use super::decision::Decision;
use super::gcra::Gcra;

/// Where a direct limiter's state lives.
#[derive(Debug)]
// The local store stays inline: it is the hot path; the remote one is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
    /// In this process.
    Local(LocalStore),
    /// In Redis.
    #[cfg(feature = "redis")]
    Redis(Box<crate::limiter::redis::RedisStore>),
}

/// In-process state: GCRA-family state in one atomic (a CAS loop, lock-free); window state
/// (two words) behind an uncontended mutex.
#[derive(Debug, Default)]
pub(crate) struct LocalStore {
    tat: CachePadded<AtomicU64>,
    window: Mutex<WindowCell>,
}

/// A window's state and the latest time a check decided it at.
///
/// Callers read the time before they take the lock, so a thread preempted in between
/// arrives with a time older than the state. Deciding at that older time would write a
/// state for a past window, and the next caller, seeing a window that is not its own, would
/// start counting from 0 again (over-admission that grew with threads per core). Checks
/// are decided at `max(now, latest)` instead: time as the state sees it never runs back.
#[derive(Debug, Default)]
struct WindowCell {
    cell: Cell,
    latest: u64,
}

impl LocalStore {
    /// Checks a cost of `n` at `now` and, when admitted, spends it.
    #[inline]
    pub(crate) fn check_n(&self, algorithm: &Algorithm, now: u64, n: u32) -> Decision {
        match algorithm {
            Algorithm::Gcra(g) => self.check_gcra(g, now, n),
            _ => {
                let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                w.latest = w.latest.max(now);
                let (new, decision) = algorithm.check(w.cell, w.latest, n);
                if let Some(new) = new {
                    w.cell = new;
                }
                decision
            }
        }
    }

    /// [`check_n`](Self::check_n) for the GCRA family: a CAS loop on the TAT that only
    /// decides; the answer is worked out once the swap is done.
    #[inline(always)]
    pub(crate) fn check_gcra(&self, g: &Gcra, now: u64, n: u32) -> Decision {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let Some(new) = g.admit(tat, now, n) else {
                return g.answer(tat, now, n, None);
            };
            match self
                .tat
                .compare_exchange_weak(tat, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return g.answer(tat, now, n, Some(new)),
                Err(seen) => tat = seen,
            }
        }
    }

    /// What a check of one unit at `now` would get, spending nothing.
    pub(crate) fn peek(&self, algorithm: &Algorithm, now: u64) -> Decision {
        match algorithm {
            Algorithm::Gcra(g) => g.check(self.tat.load(Ordering::Acquire), now, 1).1,
            _ => {
                let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                algorithm.check(w.cell, w.latest.max(now), 1).1
            }
        }
    }

    /// Back to a full quota.
    pub(crate) fn reset(&self) {
        self.tat.store(0, Ordering::Release);
        self.window.lock().unwrap_or_else(|p| p.into_inner()).cell = Cell::default();
    }
}
