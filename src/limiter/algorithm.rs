//! One enum over the pure cores, and the state they share a shape for.

use super::decision::Decision;
use super::fixed_window::{FixedState, FixedWindow};
use super::gcra::Gcra;
use super::sliding_window::{SlidingState, SlidingWindow};

/// A configured algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// GCRA, token bucket and leaky bucket (one `u64`: the TAT).
    Gcra(Gcra),
    Fixed(FixedWindow),
    Sliding(SlidingWindow),
}

/// Any algorithm's state in 16 bytes: GCRA uses `a` (TAT); windows use `a` as the window tag
/// and `b` as counts (fixed: count; sliding: previous << 32 | current).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) a: u64,
    pub(crate) b: u64,
}

impl Algorithm {
    /// What the `RateLimit` header fields advertise: the most admitted at once, and the time
    /// a spent quota takes to come back in full (GCRA: burst × interval; windows: the window).
    #[cfg(feature = "tower")]
    pub(crate) fn advertised(&self) -> (u32, std::time::Duration) {
        use std::time::Duration;
        match self {
            Algorithm::Gcra(g) => (
                g.burst,
                Duration::from_nanos(g.interval.saturating_mul(u64::from(g.burst))),
            ),
            Algorithm::Fixed(w) => (w.limit, Duration::from_nanos(w.window)),
            Algorithm::Sliding(w) => (w.limit, Duration::from_nanos(w.window)),
        }
    }

    #[inline]
    pub(crate) fn check(&self, c: Cell, now: u64, n: u32) -> (Option<Cell>, Decision) {
        match self {
            Algorithm::Gcra(g) => {
                let (tat, d) = g.check(c.a, now, n);
                (tat.map(|a| Cell { a, b: 0 }), d)
            }
            Algorithm::Fixed(w) => {
                let (s, d) = w.check(fixed(c), now, n);
                (
                    s.map(|s| Cell {
                        a: s.tag,
                        b: u64::from(s.count),
                    }),
                    d,
                )
            }
            Algorithm::Sliding(w) => {
                let (s, d) = w.check(sliding(c), now, n);
                (
                    s.map(|s| Cell {
                        a: s.tag,
                        b: (u64::from(s.previous) << 32) | u64::from(s.current),
                    }),
                    d,
                )
            }
        }
    }

    /// `true` when the state says nothing (a fresh state would decide the same).
    pub(crate) fn is_idle(&self, c: Cell, now: u64) -> bool {
        match self {
            Algorithm::Gcra(g) => g.is_idle(c.a, now),
            Algorithm::Fixed(w) => w.is_idle(fixed(c), now),
            Algorithm::Sliding(w) => w.is_idle(sliding(c), now),
        }
    }

    /// The parameters as two numbers (interval or window, burst or limit), for atomics.
    pub(crate) fn parts(&self) -> (u64, u32) {
        match *self {
            Algorithm::Gcra(g) => (g.interval, g.burst),
            Algorithm::Fixed(w) => (w.window, w.limit),
            Algorithm::Sliding(w) => (w.window, w.limit),
        }
    }

    /// This family with other parameters (the inverse of [`parts`](Self::parts)).
    #[inline]
    pub(crate) fn with_parts(&self, a: u64, b: u32) -> Algorithm {
        match self {
            Algorithm::Gcra(_) => Algorithm::Gcra(Gcra {
                interval: a,
                burst: b,
            }),
            Algorithm::Fixed(_) => Algorithm::Fixed(FixedWindow {
                window: a,
                limit: b,
            }),
            Algorithm::Sliding(_) => Algorithm::Sliding(SlidingWindow {
                window: a,
                limit: b,
            }),
        }
    }

    /// Units per nanosecond the algorithm admits in the long run.
    #[cfg(feature = "redis")]
    pub(crate) fn rate_per_ns(&self) -> f64 {
        let (period, capacity) = self.parts();
        match self {
            Algorithm::Gcra(_) => 1.0 / period as f64,
            _ => f64::from(capacity) / period as f64,
        }
    }

    /// The same algorithm at `percent` of the rate (a local stand-in for a share of a global
    /// limit): a longer interval and a smaller burst, or a smaller window limit; never below
    /// one unit.
    #[cfg(feature = "redis")]
    pub(crate) fn scaled(&self, percent: u32) -> Algorithm {
        let percent = u64::from(percent.clamp(1, 100));
        let (period, capacity) = self.parts();
        let capacity = u32::try_from(u64::from(capacity) * percent / 100)
            .unwrap_or(u32::MAX)
            .max(1);
        match self {
            Algorithm::Gcra(_) => {
                let interval = u64::try_from(u128::from(period) * 100 / u128::from(percent))
                    .unwrap_or(u64::MAX / u64::from(capacity));
                self.with_parts(interval, capacity)
            }
            _ => self.with_parts(period, capacity),
        }
    }

    /// The same algorithm family (a reconfiguration may change parameters, not the family).
    pub(crate) fn same_family(&self, other: &Algorithm) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

fn fixed(c: Cell) -> FixedState {
    FixedState {
        tag: c.a,
        count: u32::try_from(c.b).unwrap_or(u32::MAX),
    }
}

fn sliding(c: Cell) -> SlidingState {
    SlidingState {
        tag: c.a,
        previous: (c.b >> 32) as u32,
        current: (c.b & u64::from(u32::MAX)) as u32,
    }
}
