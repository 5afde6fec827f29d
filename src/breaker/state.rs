//! The breaker's shared state: the state word, half-open probe slots, the outcome window
//! and cached metric handles. `execute` reads and writes only this; transitions take a small
//! lock that the hot path never touches.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam::utils::CachePadded;

use super::config::{BreakerConfig, CallTiming, ErrorClass, SlidingWindow};
use super::inflight::{InFlight, Ticket};
use super::instruments::{Instruments, CANCELLED, IGNORED, REJECTED};
use super::machine;
use super::permit::{Admission, BreakerRejected, Parts, Rejection};
use super::probes::ProbeSlots;
use super::window::{CountWindow, Outcome, TimeWindow, Window};
use super::{BreakerCommand, BreakerState};
use crate::clock::{duration_nanos, Clock, Now, RecentLease};
use crate::kind::Kind;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::{Event, RejectReason, RejectionGate, Telemetry, TransitionReason};

/// The state word: the state in the low 8 bits, a generation above. Outcomes of calls
/// admitted under an older generation are not recorded.
pub(super) fn pack(state: BreakerState, generation: u64) -> u64 {
    (generation << 8) | state as u64
}

pub(super) fn unpack(word: u64) -> (BreakerState, u64) {
    (BreakerState::from_u8((word & 0xff) as u8), word >> 8)
}

/// The hot numbers of the config, as atomics (the full config sits behind a lock).
#[derive(Debug)]
pub(super) struct Hot {
    /// `slow_call_duration` in clock ticks (the unit of call start and end times).
    pub(super) slow_ticks: AtomicU64,
    pub(super) failure_threshold: AtomicU64,
    pub(super) slow_threshold: AtomicU64,
    pub(super) minimum_calls: AtomicU32,
    /// Calls are timed on the coarse clock ([`CallTiming::Coarse`], with a lease held).
    pub(super) coarse: AtomicBool,
    /// Calls are not timed ([`CallTiming::Untimed`]).
    pub(super) untimed: AtomicBool,
}

impl Hot {
    pub(super) fn store(&self, c: &BreakerConfig, clock: &Clock) {
        self.slow_ticks.store(
            clock.to_ticks(duration_nanos(c.slow_call_duration)),
            Ordering::Release,
        );
        self.failure_threshold
            .store(c.failure_rate_threshold.to_bits(), Ordering::Release);
        self.slow_threshold
            .store(c.slow_call_rate_threshold.to_bits(), Ordering::Release);
        self.minimum_calls
            .store(c.minimum_calls(), Ordering::Release);
    }
}

/// Everything `execute` reads and writes.
#[derive(Debug)]
pub(crate) struct BreakerShared {
    pub(crate) name: Arc<str>,
    pub(super) word: CachePadded<AtomicU64>,
    pub(super) open_until: AtomicU64,
    pub(super) since: AtomicU64,
    pub(super) trips: AtomicU32,
    pub(super) probes: ProbeSlots,
    pub(super) not_permitted: AtomicU64,
    pub(super) hot: Hot,
    pub(super) window: Window,
    pub(super) inflight: InFlight,
    pub(super) config: RwLock<BreakerConfig>,
    pub(super) transition_lock: Mutex<()>,
    pub(crate) clock: Clock,
    pub(crate) telemetry: Telemetry,
    pub(super) rejections: RejectionGate,
    pub(crate) slot: ActorSlot<BreakerCommand>,
    /// Metric handles: the breaker's own, or shared by the breakers of a keyed breaker.
    /// `palisade_calls_total` is tallied per thread and flushed by the actor (a recorder's
    /// counter is a locked add on a shared line).
    pub(super) instruments: Arc<Instruments>,
    /// Keeps the coarse clock refreshed while calls are timed on it.
    pub(super) recent_lease: Mutex<Option<RecentLease>>,
}

impl BreakerShared {
    /// The breaker `name`, recording into `instruments`.
    pub(crate) fn new(
        name: Arc<str>,
        config: BreakerConfig,
        telemetry: Telemetry,
        instruments: Arc<Instruments>,
    ) -> Self {
        let window = match config.sliding_window {
            SlidingWindow::Count(n) => Window::Count(CountWindow::new(n)),
            SlidingWindow::Time(_) => Window::Time(Mutex::new(TimeWindow::new(
                config.bucket_count(),
                duration_nanos(config.time_bucket),
            ))),
        };
        let clock = Clock::new();
        let config_timing = config.call_timing;
        let hot = Hot {
            slow_ticks: AtomicU64::new(0),
            failure_threshold: AtomicU64::new(0),
            slow_threshold: AtomicU64::new(0),
            minimum_calls: AtomicU32::new(0),
            coarse: AtomicBool::new(false),
            untimed: AtomicBool::new(false),
        };
        hot.store(&config, &clock);
        let recent_lease = Mutex::new(None);
        let shared = Self {
            word: CachePadded::new(AtomicU64::new(pack(BreakerState::Closed, 0))),
            open_until: AtomicU64::new(0),
            since: AtomicU64::new(0),
            trips: AtomicU32::new(0),
            probes: ProbeSlots::new(config.half_open_permits),
            not_permitted: AtomicU64::new(0),
            hot,
            window,
            inflight: InFlight::new(),
            config: RwLock::new(config),
            transition_lock: Mutex::new(()),
            clock,
            telemetry,
            rejections: RejectionGate::default(),
            slot: ActorSlot::default(),
            instruments,
            recent_lease,
            name,
        };
        shared.set_timing(config_timing);
        shared
    }

    /// Times calls as `timing` says: a coarse breaker takes a lease on the coarse clock
    /// before its calls read it, and gives it back after they stop (new config or drop).
    pub(super) fn set_timing(&self, timing: CallTiming) {
        let mut lease = self.recent_lease.lock().unwrap_or_else(|p| p.into_inner());
        if timing == CallTiming::Coarse && lease.is_none() {
            *lease = RecentLease::take();
        }
        let coarse = timing == CallTiming::Coarse && lease.is_some();
        self.hot.coarse.store(coarse, Ordering::Release);
        self.hot
            .untimed
            .store(timing == CallTiming::Untimed, Ordering::Release);
        if !coarse {
            *lease = None;
        }
    }

    /// The time a call starts or ends at, on the clock the config chose.
    #[inline(always)]
    fn call_time(&self) -> Now {
        // (Acquire: a reader that sees `coarse` sees the reading its lease stored first)
        if self.hot.coarse.load(Ordering::Acquire) {
            self.clock.recent()
        } else {
            self.clock.now()
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> BreakerState {
        unpack(self.word.load(Ordering::Acquire)).0
    }

    pub(crate) fn config(&self) -> BreakerConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Decides whether a call may run. Never waits.
    ///
    /// Closed and metrics-only admit inline; every other state takes the cold path.
    #[inline(always)]
    pub(crate) fn admit(&self) -> Result<Admission<'_>, Rejection> {
        if self.hot.untimed.load(Ordering::Relaxed) {
            return self.admit_untimed();
        }
        self.admit_timed(self.call_time())
    }

    /// [`admit`](Self::admit) of a call that is not timed: the clock is read only outside
    /// the closed state (an open breaker's wait).
    #[inline(always)]
    fn admit_untimed(&self) -> Result<Admission<'_>, Rejection> {
        let word = self.word.load(Ordering::Acquire);
        let (state, generation) = unpack(word);
        if matches!(state, BreakerState::Closed | BreakerState::MetricsOnly) {
            return Ok(self.untimed_call(generation, false));
        }
        self.admit_slow(word, self.clock.now())
    }

    /// The admission of a call that is not timed: no start time, no in-flight count.
    #[inline(always)]
    fn untimed_call(&self, generation: u64, probe: bool) -> Admission<'_> {
        Admission::new(self, Parts::new(generation, probe, None, 0))
    }

    /// [`admit`](Self::admit) with the time already read (a call starting `now`).
    #[inline(always)]
    pub(crate) fn admit_at(&self, now: Now) -> Result<Admission<'_>, Rejection> {
        if self.hot.untimed.load(Ordering::Relaxed) {
            return self.admit_untimed();
        }
        self.admit_timed(now)
    }

    /// [`admit_at`](Self::admit_at) of a call that is timed.
    #[inline(always)]
    fn admit_timed(&self, now: Now) -> Result<Admission<'_>, Rejection> {
        let word = self.word.load(Ordering::Acquire);
        let (state, generation) = unpack(word);
        if matches!(state, BreakerState::Closed | BreakerState::MetricsOnly) {
            return Ok(self.start_timed_call(generation, false, now));
        }
        self.admit_slow(word, now)
    }

    /// The public rejection, named (an `Arc` clone: built only once a call was rejected,
    /// so the admission's result stays small on the hot path).
    #[cold]
    #[inline(never)]
    pub(crate) fn rejected(&self, r: Rejection) -> BreakerRejected {
        BreakerRejected {
            name: Arc::clone(&self.name),
            state: r.state,
            retry_after: r.retry_after,
        }
    }

    /// Admission outside the closed state; `Err` carries the rejecting state and the
    /// rejection's `retry_after` (already counted and reported).
    #[cold]
    #[inline(never)]
    fn admit_slow(&self, mut word: u64, now: Now) -> Result<Admission<'_>, Rejection> {
        loop {
            let (state, generation) = unpack(word);
            let probe = match state {
                BreakerState::Closed | BreakerState::MetricsOnly => false,
                BreakerState::Disabled => {
                    return Ok(Admission::new(self, Parts::disabled(generation)))
                }
                BreakerState::ForcedOpen => return Err(Rejection::new(state, self.reject(None))),
                BreakerState::Open => {
                    let nanos = self.clock.nanos_at(now);
                    let until = self.open_until.load(Ordering::Acquire);
                    if !machine::open_has_ended(nanos, until) {
                        let wait = Duration::from_nanos(until - nanos);
                        return Err(Rejection::new(state, self.reject(Some(wait))));
                    }
                    // The open wait is over and the actor has not moved yet (it may be
                    // down, or automatic half-open is off): move now.
                    self.transition(word, BreakerState::HalfOpen, TransitionReason::Timer);
                    word = self.word.load(Ordering::Acquire);
                    continue;
                }
                BreakerState::HalfOpen => match self.probes.take(generation) {
                    Some(true) => true,
                    Some(false) => {
                        let hint = self.half_open_hint(self.clock.nanos_at(now));
                        return Err(Rejection::new(state, self.reject(Some(hint))));
                    }
                    None => {
                        // the episode ended since the state was read: read it again
                        word = self.word.load(Ordering::Acquire);
                        continue;
                    }
                },
            };
            return Ok(self.start_call(generation, probe, now));
        }
    }

    /// The admission of a call [`admit_slow`](Self::admit_slow) lets through (a half-open
    /// probe, or a call the breaker closed meanwhile admits), timed as the config says.
    fn start_call(&self, generation: u64, probe: bool, now: Now) -> Admission<'_> {
        if self.hot.untimed.load(Ordering::Relaxed) {
            return self.untimed_call(generation, probe);
        }
        self.start_timed_call(generation, probe, now)
    }

    /// Counts an admitted call in flight and notes its start.
    #[inline(always)]
    fn start_timed_call(&self, generation: u64, probe: bool, now: Now) -> Admission<'_> {
        let now = self.clock.ticks_at(now);
        let (ticket, fresh) = self
            .inflight
            .start(now, self.hot.slow_ticks.load(Ordering::Relaxed));
        if fresh {
            self.nudge();
        }
        Admission::new(self, Parts::new(generation, probe, Some(ticket), now))
    }

    #[cold]
    #[inline(never)]
    fn nudge(&self) {
        self.slot.nudge();
    }

    /// When to try again after a half-open rejection (every probe permit taken): by when
    /// the probes under way are expected to decide. What is left of
    /// `max_wait_in_half_open` when set (the state ends then whatever the probes do), else
    /// the shorter of `slow_call_duration` (a probe running that long is slow) and
    /// `wait_in_open`. At least a millisecond.
    fn half_open_hint(&self, now: u64) -> Duration {
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        let hint = if config.max_wait_in_half_open.is_zero() {
            config.slow_call_duration.min(config.wait_in_open)
        } else {
            let end = self
                .since
                .load(Ordering::Acquire)
                .saturating_add(duration_nanos(config.max_wait_in_half_open));
            Duration::from_nanos(end.saturating_sub(now))
        };
        hint.max(Duration::from_millis(1))
    }

    /// Counts and reports a rejection; returns its `retry_after`.
    fn reject(&self, retry_after: Option<Duration>) -> Option<Duration> {
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        self.instruments.calls.add(REJECTED);
        if self.telemetry.observes_rejections() {
            if let Some(suppressed) = self.rejections.pass(RejectReason::CircuitOpen) {
                self.telemetry.emit(Event::CallRejected {
                    name: Arc::clone(&self.name),
                    kind: Kind::Breaker,
                    reason: RejectReason::CircuitOpen,
                    retry_after,
                    shadow: false,
                    suppressed,
                });
            }
        }
        retry_after
    }

    /// How the config's classifier counts an error (every error is a failure without one).
    pub(crate) fn classify(&self, error: &dyn std::any::Any) -> ErrorClass {
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        config
            .classifier
            .as_ref()
            .map_or(ErrorClass::Failure, |c| c(error))
    }

    /// Records the outcome of an admitted call. `class` is `None` for `Ok`.
    ///
    /// Inline: an untimed call records its outcome in the caller (a call and a prologue
    /// saved, the difference from recloser's cost), a timed one calls out of line.
    #[inline(always)]
    pub(super) fn complete(&self, a: &Parts, class: Option<ErrorClass>) {
        match a.ticket {
            Some(ticket) => self.complete_timed(a, ticket, class),
            None if a.is_disabled() => {} // record nothing
            None => self.complete_untimed(a, class),
        }
    }

    /// [`complete`](Self::complete) for a timed call.
    #[inline(never)]
    fn complete_timed(&self, a: &Parts, ticket: Ticket, class: Option<ErrorClass>) {
        let now = self.clock.ticks_at(self.call_time());
        let elapsed = now.saturating_sub(a.start);
        let counted_while_running = self.inflight.finish(ticket);
        self.instruments.duration.record(elapsed);
        let slow = elapsed >= self.hot.slow_ticks.load(Ordering::Relaxed);
        let Some(failed) = self.failed(a, class) else {
            return;
        };
        self.instruments
            .calls
            .add(usize::from(failed) + 2 * usize::from(slow));
        self.record(a, Outcome { failed, slow }, counted_while_running, now);
    }

    /// [`complete`](Self::complete) for a call that was not timed: never slow, and the time
    /// is read for a time window only.
    #[inline(always)]
    fn complete_untimed(&self, a: &Parts, class: Option<ErrorClass>) {
        let Some(failed) = self.failed(a, class) else {
            return;
        };
        self.instruments.calls.add(usize::from(failed));
        let now = match self.window {
            Window::Count(_) => 0,
            Window::Time(_) => self.clock.ticks_at(self.clock.now()),
        };
        let outcome = Outcome {
            failed,
            slow: false,
        };
        self.record(a, outcome, false, now);
    }

    /// Whether an ended call failed, by its `class`; `None` for an ignored error (counted
    /// as such, its probe slot given back: it says nothing).
    #[inline(always)]
    fn failed(&self, a: &Parts, class: Option<ErrorClass>) -> Option<bool> {
        match class {
            None | Some(ErrorClass::Success) => Some(false),
            Some(ErrorClass::Failure) => Some(true),
            Some(ErrorClass::Ignored) => {
                self.instruments.calls.add(IGNORED);
                if a.probe() {
                    self.give_probe_back(a.generation());
                }
                None
            }
        }
    }

    /// Puts an ended call's outcome where it counts: the probes' verdict, or the window
    /// (once: a call the in-flight scan counted slow while it ran only adds its failure).
    /// Nothing for a call admitted under an earlier state. `now` in clock ticks.
    #[inline(always)]
    fn record(&self, a: &Parts, outcome: Outcome, counted_while_running: bool, now: u64) {
        let word = self.word.load(Ordering::Acquire);
        let (state, generation) = unpack(word);
        if generation != a.generation() {
            return; // admitted under an earlier state: says nothing about this one
        }
        if a.probe() {
            self.record_probe(word, generation, outcome);
        } else if matches!(state, BreakerState::Closed | BreakerState::MetricsOnly) {
            if !counted_while_running {
                let totals = self.window.record(self.clock.to_nanos(now), outcome);
                if state == BreakerState::Closed {
                    self.maybe_trip(word, totals);
                }
            } else if outcome.failed {
                self.amend_failed(word, state, now);
            }
        }
    }

    /// A call the in-flight scan counted slow while it ran has failed: the failure counts
    /// too (slow and failed, as Resilience4j counts it), without counting the call twice.
    #[cold]
    #[inline(never)]
    fn amend_failed(&self, word: u64, state: BreakerState, now: u64) {
        if let Some(totals) = self.window.mark_failed(self.clock.to_nanos(now)) {
            if state == BreakerState::Closed {
                self.maybe_trip(word, totals);
            }
        }
    }

    /// A call admitted but never completed: cancelled (future dropped, a deadline or a
    /// timeout cut it) or panicked.
    ///
    /// Its outcome is unknown, so it never counts as a failure. But a call that had already
    /// run `slow_call_duration` is a slow call whatever ended it: it is recorded slow (once:
    /// not again if the in-flight scan counted it while it ran), so a dependency that hangs
    /// trips the slow-call rate even for callers whose deadlines are short. A call cut
    /// sooner says nothing about the dependency and is not recorded; a probe cut sooner
    /// gives its slot back.
    pub(super) fn abandon(&self, a: &Parts) {
        if a.is_disabled() {
            return; // record nothing
        }
        self.instruments.calls.add(CANCELLED);
        if let Some(ticket) = a.ticket {
            let now = self.clock.ticks_at(self.call_time());
            let counted_while_running = self.inflight.finish(ticket);
            if now.saturating_sub(a.start) >= self.hot.slow_ticks.load(Ordering::Relaxed) {
                let outcome = Outcome {
                    failed: false,
                    slow: true,
                };
                self.record(a, outcome, counted_while_running, now);
                return;
            }
        }
        // not slow (or not timed): a cancelled call says nothing
        if a.probe() {
            self.give_probe_back(a.generation());
        }
    }

    /// Moves the outcome counts and call durations tallied so far into their series (the
    /// actor's job).
    pub(crate) fn flush_counts(&self) {
        self.instruments.flush();
    }
}

/// Coarse call timing on the production clock (the coarse clock is a real thread; with
/// `test-util` it is tokio's clock, exact, and the integration tests drive it).
#[cfg(all(test, not(feature = "test-util"), not(palisade_loom)))]
mod coarse_timing_tests {
    use super::*;
    use crate::breaker::CallTiming;

    #[test]
    fn a_coarse_breaker_times_calls_on_the_refreshed_clock_and_gives_its_lease_back() {
        let _alone = crate::clock::TEST_LEASES
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let name: Arc<str> = Arc::from("coarse-unit");
        let config = BreakerConfig::builder()
            .sliding_window(SlidingWindow::Count(10))
            .minimum_calls(10)
            .slow_call_duration(Duration::from_millis(10))
            .call_timing(CallTiming::Coarse)
            .build()
            .expect("valid");
        let b = BreakerShared::new(
            Arc::clone(&name),
            config.clone(),
            Telemetry::new(16),
            Instruments::standalone(&name, &crate::telemetry::DurationBounds::standard()),
        );
        assert!(b.hot.coarse.load(Ordering::Acquire), "timed coarse");
        // 40 ms against a 10 ms threshold: slow, whatever the refresher's lag
        let slow = b.admit().expect("closed");
        std::thread::sleep(Duration::from_millis(40));
        slow.record(None);
        slow.defuse();
        let quick = b.admit().expect("closed");
        quick.record(None);
        quick.defuse();
        let Window::Count(window) = &b.window else {
            unreachable!("a count window")
        };
        let totals = window.totals();
        assert_eq!((totals.calls, totals.slow), (2, 1), "{totals:?}");
        assert_eq!(
            b.instruments.duration.cumulative()[BOUND_10MS],
            1,
            "one call under 10 ms"
        );

        // precise again: the lease is given back
        b.apply(BreakerConfig {
            call_timing: CallTiming::Precise,
            ..config
        })
        .expect("applied");
        assert!(!b.hot.coarse.load(Ordering::Acquire));
        assert!(b
            .recent_lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none());
    }

    /// The histogram's bucket `le=0.01`.
    const BOUND_10MS: usize = 4;
}
