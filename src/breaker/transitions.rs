//! The breaker's moves: applying what the pure machine (`machine.rs`) decides to the
//! shared state, timers (`upkeep`), manual states, reconfiguration.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::config::BreakerConfig;
use super::machine::{self, Thresholds, Timer};
use super::state::{pack, unpack, BreakerShared};
use super::window::{Outcome, Totals};
use super::BreakerState;
use crate::clock::duration_nanos;
use crate::telemetry::{metrics as m, Event, TransitionReason};

impl BreakerShared {
    /// The state by the clock: open and half-open first apply the timers that are due
    /// (open -> half-open when `automatic_half_open`, half-open -> open past
    /// `max_wait_in_half_open`), as the actor would. So a breaker whose actor is down
    /// (degraded) or late never reports a state the clock has already ended. Closed and the
    /// manual states cost one load.
    #[inline]
    pub(crate) fn current_state(&self) -> BreakerState {
        let state = self.state();
        if matches!(state, BreakerState::Open | BreakerState::HalfOpen) {
            // upkeep on these states only applies timers (no scan, no recording)
            self.upkeep();
            return self.state();
        }
        state
    }

    /// A probe of episode `generation` ended without a verdict: its slot goes back to that
    /// episode, if it still runs.
    pub(super) fn give_probe_back(&self, generation: u64) {
        self.probes.give_back(generation);
    }

    /// A probe of the episode in `word` (state and `generation`) ended with `o`; the probe
    /// that completes the episode judges it.
    pub(super) fn record_probe(&self, word: u64, generation: u64, o: Outcome) {
        let Some((probes, permits)) = self.probes.record(generation, o) else {
            return; // that episode is over
        };
        if let Some((to, reason)) = machine::judge_probes(probes, permits, &self.thresholds()) {
            self.transition(word, to, reason);
        }
    }

    /// The thresholds in force (from the hot atomics).
    pub(super) fn thresholds(&self) -> Thresholds {
        Thresholds {
            failure_rate: f64::from_bits(self.hot.failure_threshold.load(Ordering::Relaxed)),
            slow_call_rate: f64::from_bits(self.hot.slow_threshold.load(Ordering::Relaxed)),
            minimum_calls: self.hot.minimum_calls.load(Ordering::Relaxed),
        }
    }

    /// Opens the breaker if the window's rates reach a threshold. The common answer (no
    /// failure, no slow call, or too few calls) is decided inline; the rates out of line.
    #[inline(always)]
    pub(super) fn maybe_trip(&self, word: u64, totals: Totals) {
        if machine::may_trip(totals, self.hot.minimum_calls.load(Ordering::Relaxed)) {
            self.judge_rates(word, totals);
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn judge_rates(&self, word: u64, totals: Totals) {
        if let Some(reason) = machine::trip(totals, &self.thresholds()) {
            self.transition(word, BreakerState::Open, reason);
        }
    }

    /// Moves from the state in `from` (state and generation) to `to`. Returns `false` when
    /// the word changed meanwhile (someone else moved first).
    pub(crate) fn transition(&self, from: u64, to: BreakerState, reason: TransitionReason) -> bool {
        let (from_state, generation) = unpack(from);
        debug_assert!(
            machine::is_legal(from_state, to, reason),
            "illegal edge {from_state} -> {to} ({reason:?})"
        );
        {
            let _g = self
                .transition_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if self.word.load(Ordering::Acquire) != from {
                return false;
            }
            let now = self.clock.nanos();
            // Everything a reader of the new state needs is written before the word.
            match to {
                BreakerState::Open => {
                    let trips = self.trips.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                    let wait = self.config().open_duration(trips);
                    self.open_until
                        .store(now.saturating_add(duration_nanos(wait)), Ordering::Release);
                }
                BreakerState::HalfOpen => {
                    let permits = self.config().half_open_permits;
                    self.probes.begin(generation.wrapping_add(1), permits);
                }
                BreakerState::Closed => {
                    self.window.reset();
                    if matches!(
                        reason,
                        TransitionReason::ProbesSucceeded | TransitionReason::Manual
                    ) {
                        self.trips.store(0, Ordering::Release);
                    }
                }
                BreakerState::MetricsOnly | BreakerState::Disabled | BreakerState::ForcedOpen => {
                    if to != BreakerState::ForcedOpen {
                        self.window.reset();
                    }
                }
            }
            self.since.store(now, Ordering::Release);
            self.word
                .store(pack(to, generation.wrapping_add(1)), Ordering::Release);
        }
        self.instruments.state.set(f64::from(to as u8));
        metrics::counter!(
            m::BREAKER_TRANSITIONS,
            "name" => self.instruments.label.to_string(), "from" => from_state.as_str(), "to" => to.as_str()
        )
        .increment(1);
        self.telemetry.emit(Event::BreakerTransition {
            name: Arc::clone(&self.name),
            from: from_state,
            to,
            reason,
        });
        self.slot.nudge();
        true
    }

    /// Moves to `to` whatever the current state (manual control). No event when already there.
    pub(crate) fn force(&self, to: BreakerState) {
        loop {
            let word = self.word.load(Ordering::Acquire);
            if unpack(word).0 == to && to != BreakerState::Closed {
                return;
            }
            if self.transition(word, to, TransitionReason::Manual) {
                return;
            }
        }
    }

    /// The actor's periodic work: timers and slow in-flight calls. Returns when to run again.
    pub(crate) fn upkeep(&self) -> Option<Duration> {
        loop {
            let word = self.word.load(Ordering::Acquire);
            let (state, _) = unpack(word);
            let ticks = self.clock.ticks();
            let now = self.clock.to_nanos(ticks);
            match state {
                BreakerState::Open | BreakerState::HalfOpen => {
                    let config = self.config();
                    match machine::timer(
                        state,
                        now,
                        self.open_until.load(Ordering::Acquire),
                        self.since.load(Ordering::Acquire),
                        config.automatic_half_open,
                        duration_nanos(config.max_wait_in_half_open),
                    ) {
                        Timer::Move(to, reason) => {
                            self.transition(word, to, reason);
                        }
                        Timer::Wait(nanos) => return Some(Duration::from_nanos(nanos)),
                        Timer::None => return None,
                    }
                }
                BreakerState::Closed | BreakerState::MetricsOnly => {
                    let slow = self.hot.slow_ticks.load(Ordering::Relaxed);
                    let (hung, next) = self.inflight.scan(ticks, slow);
                    let mut totals = None;
                    for _ in 0..hung {
                        self.instruments.calls.add(2);
                        totals = Some(self.window.record(
                            now,
                            Outcome {
                                failed: false,
                                slow: true,
                            },
                        ));
                    }
                    if let (Some(t), BreakerState::Closed) = (totals, state) {
                        self.maybe_trip(word, t);
                        if self.word.load(Ordering::Acquire) != word {
                            continue;
                        }
                    }
                    return next.map(|n| {
                        Duration::from_nanos(self.clock.to_nanos(n.saturating_sub(ticks)))
                    });
                }
                _ => return None,
            }
        }
    }

    /// Applies a new configuration, keeping the recorded window.
    pub(crate) fn apply(&self, new: BreakerConfig) -> Result<String, crate::ConfigError> {
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        if new.sliding_window != current.sliding_window || new.time_bucket != current.time_bucket {
            return Err(crate::error::ConfigError::refused(
                "sliding_window",
                new.sliding_window,
                "the window's shape cannot change on a running breaker (its recorded outcomes would be lost); spawn a new breaker",
            ));
        }
        let change = format!(
            "failure_rate_threshold {}, slow_call_rate_threshold {}, slow_call_duration {:?}, wait_in_open {:?}, minimum_calls {}, half_open_permits {}, call_timing {:?}",
            new.failure_rate_threshold,
            new.slow_call_rate_threshold,
            new.slow_call_duration,
            new.wait_in_open,
            new.minimum_calls(),
            new.half_open_permits,
            new.call_timing
        );
        self.hot.store(&new, &self.clock);
        self.set_timing(new.call_timing);
        *current = new;
        Ok(change)
    }
}
