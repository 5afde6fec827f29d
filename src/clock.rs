//! The time source.
//!
//! Every time-based decision in palisade reads [`tokio::time::Instant`]. Without tokio's
//! `test-util` feature that type is a plain wrapper over [`std::time::Instant`] (no cost);
//! with it (palisade's `test-util` feature turns it on) it follows tokio's clock, so
//! `#[tokio::test(start_paused = true)]` and `tokio::time::advance` drive refills, windows,
//! open durations, backoffs and deadlines deterministically.
//!
//! Lock-free state stores time as `u64` nanoseconds since a [`Clock`]'s origin, which each
//! primitive captures when it is spawned.

use std::time::Duration;

pub(crate) use tokio::time::Instant;

/// A monotonic nanosecond clock anchored at its creation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since the origin (saturates after ~584 years).
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        duration_nanos(Instant::now().saturating_duration_since(self.origin))
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
