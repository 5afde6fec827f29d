//! A retry budget: retries may be at most `ratio` of the calls seen over a sliding window
//! (plus a small floor so a quiet service can still retry), so a failing dependency does not
//! get a retry storm multiplied by every caller.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{duration_nanos, Clock};
use crate::error::ConfigError;

/// Buckets the window is split into.
const BUCKETS: usize = 10;

/// A retry budget, shared by every clone of the [`Retry`](super::Retry) it is set on.
///
/// # Defaults
/// - `min_retries`: 10 retries per window allowed whatever the ratio
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_retries: u32,
    bucket_nanos: u64,
    state: Mutex<Ring>,
    clock: Clock,
}

#[derive(Debug, Default)]
struct Ring {
    head: u64,
    calls: [u64; BUCKETS],
    retries: [u64; BUCKETS],
}

impl Ring {
    /// Moves to the bucket of `now`, clearing the buckets skipped over.
    fn advance(&mut self, epoch: u64) -> usize {
        if epoch > self.head {
            let steps = (epoch - self.head).min(BUCKETS as u64);
            for k in (epoch - steps + 1)..=epoch {
                let i = (k % BUCKETS as u64) as usize;
                self.calls[i] = 0;
                self.retries[i] = 0;
            }
            self.head = epoch;
        }
        (self.head % BUCKETS as u64) as usize
    }
}

impl RetryBudget {
    /// Retries allowed up to `ratio` (in (0, 1]) of the calls over `window`.
    ///
    /// # Errors
    /// [`ConfigError`] naming `budget.ratio` (outside (0, 1]) or `budget.window` (shorter
    /// than 10 ns).
    pub fn new(ratio: f64, window: Duration) -> Result<Self, ConfigError> {
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(ConfigError::refused(
                "budget.ratio",
                ratio,
                "is outside (0, 1]",
            ));
        }
        let bucket_nanos = duration_nanos(window) / BUCKETS as u64;
        if bucket_nanos == 0 {
            return Err(ConfigError::refused(
                "budget.window",
                window,
                "must be at least 10 ns",
            ));
        }
        Ok(Self {
            ratio,
            min_retries: 10,
            bucket_nanos,
            state: Mutex::new(Ring::default()),
            clock: Clock::new(),
        })
    }

    /// Retries per window allowed whatever the ratio (default 10).
    pub fn min_retries(mut self, n: u32) -> Self {
        self.min_retries = n;
        self
    }

    fn ring(&self) -> (std::sync::MutexGuard<'_, Ring>, usize) {
        let mut ring = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let i = ring.advance(self.clock.nanos() / self.bucket_nanos);
        (ring, i)
    }

    /// Counts a call (its first attempt).
    pub(crate) fn deposit(&self) {
        let (mut ring, i) = self.ring();
        ring.calls[i] += 1;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let (mut ring, i) = self.ring();
        let calls: u64 = ring.calls.iter().sum();
        let retries: u64 = ring.retries.iter().sum();
        let allowed = (calls as f64 * self.ratio) as u64 + u64::from(self.min_retries);
        if retries < allowed {
            ring.retries[i] += 1;
            true
        } else {
            false
        }
    }
}
