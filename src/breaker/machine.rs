//! The breaker's state machine as pure functions: counts, thresholds, the state and the
//! time in; the next state and the reason out. `state.rs` applies what these decide to
//! its atomics; nothing here touches shared state, so every edge is tested at its exact
//! boundary without a runtime.
//!
//! The legal edges: closed -> open (failure rate, slow-call rate); open -> half-open (the
//! open wait ends); half-open -> closed (probes succeeded) or -> open (a probe rate reached
//! a threshold, or `max_wait_in_half_open` ended); and any state -> a manual one.

use super::window::Totals;
use super::BreakerState;
use crate::telemetry::TransitionReason;

/// What the rates are judged against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Thresholds {
    /// Failure rate, in percent, at or above which the breaker opens.
    pub(crate) failure_rate: f64,
    /// Slow-call rate, in percent, at or above which the breaker opens.
    pub(crate) slow_call_rate: f64,
    /// Calls the window must hold before the rates count.
    pub(crate) minimum_calls: u32,
}

/// Closed, after an outcome: `Some(reason)` when the window's rates open the breaker.
///
/// Without a failure or a slow call no rate can reach a threshold (thresholds are above
/// zero), so that answer needs no division: the caller inlines this check.
#[inline(always)]
pub(crate) fn may_trip(totals: Totals, minimum_calls: u32) -> bool {
    (totals.failed > 0 || totals.slow > 0) && totals.calls >= minimum_calls
}

/// Closed: the reason the window's totals open the breaker, if they do.
pub(crate) fn trip(totals: Totals, t: &Thresholds) -> Option<TransitionReason> {
    if !may_trip(totals, t.minimum_calls) {
        None
    } else if totals.failure_rate() >= t.failure_rate {
        Some(TransitionReason::FailureRate)
    } else if totals.slow_call_rate() >= t.slow_call_rate {
        Some(TransitionReason::SlowCallRate)
    } else {
        None
    }
}

/// Half-open, after `probes.calls` of `permits` probes: the verdict once all have ended.
/// A probe rate at or above its threshold reopens; below both, the breaker closes.
pub(crate) fn judge_probes(
    probes: Totals,
    permits: u32,
    t: &Thresholds,
) -> Option<(BreakerState, TransitionReason)> {
    if probes.calls < permits {
        return None;
    }
    if probes.failure_rate() >= t.failure_rate || probes.slow_call_rate() >= t.slow_call_rate {
        Some((BreakerState::Open, TransitionReason::ProbeFailed))
    } else {
        Some((BreakerState::Closed, TransitionReason::ProbesSucceeded))
    }
}

/// What a timer says about `state` at `now` (nanoseconds on the breaker's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Move now.
    Move(BreakerState, TransitionReason),
    /// Nothing yet; look again in this many nanoseconds.
    Wait(u64),
    /// No timer runs in this state.
    None,
}

/// The timers of the open and half-open states.
///
/// - Open moves to half-open once `now` reaches `open_until` (when `automatic` is off,
///   only a call moves it, so no timer runs: see [`open_has_ended`]).
/// - Half-open moves back to open once `max_wait_in_half_open` (nanoseconds; 0: never)
///   has passed since it began (`since`).
pub(crate) fn timer(
    state: BreakerState,
    now: u64,
    open_until: u64,
    since: u64,
    automatic: bool,
    max_wait_in_half_open: u64,
) -> Timer {
    match state {
        BreakerState::Open if automatic => {
            if open_has_ended(now, open_until) {
                Timer::Move(BreakerState::HalfOpen, TransitionReason::Timer)
            } else {
                Timer::Wait(open_until - now)
            }
        }
        BreakerState::HalfOpen if max_wait_in_half_open > 0 => {
            let end = since.saturating_add(max_wait_in_half_open);
            if now >= end {
                Timer::Move(BreakerState::Open, TransitionReason::HalfOpenTimeout)
            } else {
                Timer::Wait(end - now)
            }
        }
        _ => Timer::None,
    }
}

/// Open: `true` once the open wait is over (a call arriving then moves the breaker to
/// half-open and runs as its first probe).
#[inline]
pub(crate) fn open_has_ended(now: u64, open_until: u64) -> bool {
    now >= open_until
}

/// `true` for an edge the machine may take (manual moves go anywhere).
pub(crate) fn is_legal(from: BreakerState, to: BreakerState, reason: TransitionReason) -> bool {
    use BreakerState as S;
    use TransitionReason as R;
    match reason {
        R::Manual => true,
        R::FailureRate | R::SlowCallRate => from == S::Closed && to == S::Open,
        R::Timer => from == S::Open && to == S::HalfOpen,
        R::ProbesSucceeded => from == S::HalfOpen && to == S::Closed,
        R::ProbeFailed | R::HalfOpenTimeout => from == S::HalfOpen && to == S::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Thresholds = Thresholds {
        failure_rate: 50.0,
        slow_call_rate: 80.0,
        minimum_calls: 4,
    };

    fn totals(calls: u32, failed: u32, slow: u32) -> Totals {
        Totals {
            calls,
            failed,
            slow,
        }
    }

    #[test]
    fn trips_at_the_exact_thresholds_and_not_below_minimum_calls() {
        assert_eq!(
            trip(totals(3, 3, 0), &T),
            None,
            "one call short of minimum_calls"
        );
        assert_eq!(trip(totals(4, 1, 0), &T), None, "25 % failed");
        assert_eq!(
            trip(totals(4, 2, 0), &T),
            Some(TransitionReason::FailureRate),
            "exactly 50 %"
        );
        assert_eq!(trip(totals(5, 2, 3), &T), None, "40 % failed, 60 % slow");
        assert_eq!(
            trip(totals(5, 2, 4), &T),
            Some(TransitionReason::SlowCallRate),
            "exactly 80 % slow"
        );
        assert_eq!(
            trip(totals(4, 4, 4), &T),
            Some(TransitionReason::FailureRate),
            "the failure rate is judged first"
        );
        assert!(!may_trip(totals(100, 0, 0), 4), "no failure: no division");
        assert_eq!(
            trip(totals(5, 0, 4), &T),
            Some(TransitionReason::SlowCallRate),
            "slow calls alone trip (no failure at all)"
        );
    }

    #[test]
    fn timers_wait_exactly_what_is_left() {
        assert_eq!(
            timer(BreakerState::Open, 400, 1_000, 0, true, 0),
            Timer::Wait(600)
        );
        assert_eq!(
            timer(BreakerState::HalfOpen, 2_100, 0, 2_000, true, 500),
            Timer::Wait(400)
        );
    }

    #[test]
    fn only_the_machines_own_edges_are_legal() {
        use BreakerState as S;
        use TransitionReason as R;
        let states = [
            S::Closed,
            S::Open,
            S::HalfOpen,
            S::Disabled,
            S::ForcedOpen,
            S::MetricsOnly,
        ];
        let reasons = [
            R::FailureRate,
            R::SlowCallRate,
            R::Timer,
            R::ProbesSucceeded,
            R::ProbeFailed,
            R::HalfOpenTimeout,
            R::Manual,
        ];
        let legal = [
            (S::Closed, S::Open, R::FailureRate),
            (S::Closed, S::Open, R::SlowCallRate),
            (S::Open, S::HalfOpen, R::Timer),
            (S::HalfOpen, S::Closed, R::ProbesSucceeded),
            (S::HalfOpen, S::Open, R::ProbeFailed),
            (S::HalfOpen, S::Open, R::HalfOpenTimeout),
        ];
        for from in states {
            for to in states {
                for reason in reasons {
                    let expected = reason == R::Manual || legal.contains(&(from, to, reason));
                    assert_eq!(
                        is_legal(from, to, reason),
                        expected,
                        "{from:?} -> {to:?} ({reason:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn probes_decide_only_once_all_have_ended() {
        assert_eq!(judge_probes(totals(1, 1, 0), 2, &T), None);
        assert_eq!(
            judge_probes(totals(2, 1, 0), 2, &T),
            Some((BreakerState::Open, TransitionReason::ProbeFailed)),
            "1 of 2 failed: 50 %"
        );
        assert_eq!(
            judge_probes(totals(3, 1, 0), 3, &T),
            Some((BreakerState::Closed, TransitionReason::ProbesSucceeded)),
            "1 of 3: below 50 %"
        );
        assert_eq!(
            judge_probes(totals(5, 0, 4), 5, &T),
            Some((BreakerState::Open, TransitionReason::ProbeFailed)),
            "80 % slow"
        );
    }

    #[test]
    fn timers_fire_at_their_exact_time() {
        let open = |now| timer(BreakerState::Open, now, 1_000, 0, true, 0);
        assert_eq!(open(999), Timer::Wait(1));
        assert_eq!(
            open(1_000),
            Timer::Move(BreakerState::HalfOpen, TransitionReason::Timer)
        );
        assert_eq!(
            timer(BreakerState::Open, 5_000, 1_000, 0, false, 0),
            Timer::None,
            "automatic half-open off: only a call moves it"
        );
        assert!(open_has_ended(1_000, 1_000) && !open_has_ended(999, 1_000));
        let half = |now| timer(BreakerState::HalfOpen, now, 0, 2_000, true, 500);
        assert_eq!(half(2_499), Timer::Wait(1));
        assert_eq!(
            half(2_500),
            Timer::Move(BreakerState::Open, TransitionReason::HalfOpenTimeout)
        );
        assert_eq!(
            timer(BreakerState::HalfOpen, 9_999, 0, 2_000, true, 0),
            Timer::None,
            "no max wait: the probes decide"
        );
        for s in [
            BreakerState::Closed,
            BreakerState::Disabled,
            BreakerState::ForcedOpen,
            BreakerState::MetricsOnly,
        ] {
            assert_eq!(timer(s, u64::MAX, 0, 0, true, 1), Timer::None, "{s}");
        }
    }

    fn state() -> impl Strategy<Value = BreakerState> {
        prop_oneof![
            Just(BreakerState::Closed),
            Just(BreakerState::Open),
            Just(BreakerState::HalfOpen)
        ]
    }

    proptest! {
        /// Whatever the counts, thresholds and times, every move the machine decides is a
        /// legal edge from the state it was asked about.
        #[test]
        fn every_decision_is_a_legal_edge(
            s in state(),
            calls in 0u32..50, failed in 0u32..50, slow in 0u32..50,
            failure_rate in 1.0f64..=100.0, slow_call_rate in 1.0f64..=100.0,
            minimum_calls in 1u32..20, permits in 1u32..10,
            now in 0u64..10_000, open_until in 0u64..10_000, since in 0u64..10_000,
            automatic: bool, max_wait in 0u64..5_000,
        ) {
            let (failed, slow) = (failed.min(calls), slow.min(calls));
            let t = Thresholds { failure_rate, slow_call_rate, minimum_calls };
            let counts = totals(calls, failed, slow);
            if s == BreakerState::Closed {
                if let Some(reason) = trip(counts, &t) {
                    prop_assert!(is_legal(s, BreakerState::Open, reason));
                    prop_assert!(failed > 0 || slow > 0);
                    prop_assert!(calls >= minimum_calls);
                }
            }
            if s == BreakerState::HalfOpen {
                if let Some((to, reason)) = judge_probes(counts, permits, &t) {
                    prop_assert!(is_legal(s, to, reason));
                    prop_assert!(calls >= permits);
                }
            }
            match timer(s, now, open_until, since, automatic, max_wait) {
                Timer::Move(to, reason) => prop_assert!(is_legal(s, to, reason)),
                Timer::Wait(n) => prop_assert!(n > 0),
                Timer::None => {}
            }
        }
    }
}
