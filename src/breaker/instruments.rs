//! A breaker's metric handles: `palisade_calls_total` by outcome (tallied per thread),
//! `palisade_call_duration_seconds` (a histogram bucketed per thread, see
//! [`DurationHistogram`]), `palisade_breaker_state` and the label
//! `palisade_breaker_transitions_total` is counted under.
//!
//! A standalone breaker has a set of its own. The breakers of a keyed breaker share one
//! set, labelled with the keyed breaker's name: a recorder never forgets a series, so a set
//! per key grew a Prometheus recorder by 3.8 KiB for every key ever seen (3.8 GiB after
//! 10^6 authorities at `max_keys` 1,000, benches/keyed_memory.rs), and the per-key tallies
//! had no actor to flush them, so their counts never reached the recorder at all. Per-key
//! states are counted by [`KeyedBreakerStatus`](super::KeyedBreakerStatus) instead of a
//! gauge each.

use std::sync::Arc;

use metrics::Gauge;

use crate::clock::Clock;
use crate::telemetry::{metrics as m, DurationBounds, DurationHistogram, Tally};

/// Outcome labels of `palisade_calls_total`, in the order of [`Instruments::calls`].
const OUTCOMES: [&str; 7] = [
    "success",
    "failure",
    "slow_success",
    "slow_failure",
    "ignored",
    "cancelled",
    "rejected",
];
pub(super) const REJECTED: usize = 6;
pub(super) const CANCELLED: usize = 5;
pub(super) const IGNORED: usize = 4;

/// The handles one breaker, or every breaker of a keyed breaker, records into.
#[derive(Debug)]
pub(crate) struct Instruments {
    /// The `name` label of every series here.
    pub(super) label: Arc<str>,
    pub(super) calls: Tally<7>,
    pub(super) duration: DurationHistogram,
    /// The state gauge (a no-op for the breakers of a keyed breaker).
    pub(super) state: Gauge,
}

impl Instruments {
    /// A standalone breaker's set, its state gauge at closed.
    pub(crate) fn standalone(name: &Arc<str>, bounds: &DurationBounds) -> Arc<Self> {
        let set = Self::new(name, true, bounds);
        set.state.set(0.0);
        Arc::new(set)
    }

    /// One set for every breaker of the keyed breaker `name`.
    pub(crate) fn shared_by_keys(name: &Arc<str>, bounds: &DurationBounds) -> Arc<Self> {
        Arc::new(Self::new(name, false, bounds))
    }

    fn new(name: &Arc<str>, state_gauge: bool, bounds: &DurationBounds) -> Self {
        let label = [("name", name.to_string())];
        Self {
            label: Arc::clone(name),
            calls: Tally::new(
                OUTCOMES.map(
                    |o| metrics::counter!(m::CALLS, "name" => name.to_string(), "outcome" => o),
                ),
            ),
            duration: DurationHistogram::new(
                [
                    m::CALL_DURATION_BUCKET,
                    m::CALL_DURATION_COUNT,
                    m::CALL_DURATION_SUM,
                ],
                name,
                Clock::new(),
                bounds,
            ),
            state: if state_gauge {
                metrics::gauge!(m::BREAKER_STATE, &label)
            } else {
                Gauge::noop()
            },
        }
    }

    /// Moves the outcome counts and durations tallied so far into their series.
    pub(crate) fn flush(&self) {
        self.calls.flush();
        self.duration.flush();
    }
}
