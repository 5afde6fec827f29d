//! What a breaker says about itself: [`BreakerStatus`].

use std::time::Duration;

use super::BreakerState;

/// A breaker's state now, from [`Breaker::status`](crate::Breaker::status): where it
/// stands against its thresholds and when it will move. Taking it admits nothing.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// The state now (timers that are due applied).
    pub state: BreakerState,
    /// Time since the last transition (or since spawn).
    pub time_in_state: Duration,
    /// Open: time until probes are let through; `None` in every other state.
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
