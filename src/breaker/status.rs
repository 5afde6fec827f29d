//! What a breaker says about itself: [`BreakerStatus`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::BreakerState;

/// A breaker's state now, from [`Breaker::status`](crate::Breaker::status): where it
/// stands against its thresholds and when it will move. Taking it admits nothing.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerStatus {
    /// The state now (timers that are due applied).
    pub state: BreakerState,
    /// Time since the last transition (or since spawn).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub time_in_state: Duration,
    /// Open: time until probes are let through; `None` in every other state.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::option_duration")
    )]
    pub time_until_half_open: Option<Duration>,
    /// Failed calls in the window, in percent...
    pub failure_rate: f64,
    /// ...and the rate at which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Slow calls in the window, in percent...
    pub slow_call_rate: f64,
    /// ...and the rate at which the breaker opens.
    pub slow_call_rate_threshold: f64,
    /// Calls recorded in the window...
    pub buffered: u32,
    /// ...and the calls it needs before the rates are judged.
    pub minimum_calls: u32,
    /// Failed calls in the window.
    pub failed: u32,
    /// Slow calls in the window (including calls counted slow while they still ran).
    pub slow: u32,
    /// Calls rejected since the breaker was spawned.
    pub rejected: u64,
    /// Half-open: probe permits left; 0 in every other state.
    pub half_open_probes_left: u32,
    /// Trips since the breaker last closed after successful probes.
    pub consecutive_trips: u32,
}

impl super::state::BreakerShared {
    /// The breaker's status (see [`BreakerStatus`](super::BreakerStatus)).
    pub(crate) fn status(&self) -> super::BreakerStatus {
        let m = self.snapshot();
        let config = self.config();
        let time_until_half_open = (m.state == BreakerState::Open).then(|| {
            let until = self.open_until.load(Ordering::Acquire);
            Duration::from_nanos(until.saturating_sub(self.clock.nanos()))
        });
        super::BreakerStatus {
            state: m.state,
            time_in_state: m.time_in_state,
            time_until_half_open,
            failure_rate: m.failure_rate,
            failure_rate_threshold: config.failure_rate_threshold,
            slow_call_rate: m.slow_call_rate,
            slow_call_rate_threshold: config.slow_call_rate_threshold,
            buffered: m.calls,
            minimum_calls: config.minimum_calls(),
            failed: m.failed,
            slow: m.slow,
            rejected: m.not_permitted,
            half_open_probes_left: m.half_open_probes_left,
            consecutive_trips: m.consecutive_trips,
        }
    }

    pub(crate) fn snapshot(&self) -> super::BreakerMetrics {
        let state = self.current_state();
        let now = self.clock.nanos();
        let totals = self.window.totals(now);
        super::BreakerMetrics {
            state,
            failure_rate: totals.failure_rate(),
            slow_call_rate: totals.slow_call_rate(),
            calls: totals.calls,
            failed: totals.failed,
            slow: totals.slow,
            not_permitted: self.not_permitted.load(Ordering::Relaxed),
            time_in_state: Duration::from_nanos(
                now.saturating_sub(self.since.load(Ordering::Acquire)),
            ),
            half_open_probes_left: if state == BreakerState::HalfOpen {
                self.probes
                    .left(super::state::unpack(self.word.load(Ordering::Acquire)).1)
            } else {
                0
            },
            consecutive_trips: self.trips.load(Ordering::Acquire),
        }
    }
}
