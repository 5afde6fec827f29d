//! Circuit breaker: closed / open / half-open, with count- and time-based windows,
//! failure-rate and slow-call-rate thresholds, probe permits, manual states, and slow calls
//! detected while they still run.
//!
//! The hot path (`execute`) reads the state with one atomic load, takes a half-open probe
//! slot with a CAS, records the outcome in the window and nudges the actor at most once per
//! epoch; it never waits on the actor. See docs/ARCHITECTURE.md.

mod actor;
mod config;
mod inflight;
mod instruments;
mod keyed;
mod machine;
mod permit;
mod probes;
mod state;
mod status;
mod transitions;
mod window;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use actor::BreakerCommand;
pub use config::{
    BreakerConfig, BreakerConfigBuilder, CallTiming, Classifier, ErrorClass, OpenBackoff,
    SlidingWindow,
};
pub use keyed::{KeyedBreaker, KeyedBreakerConfig, KeyedBreakerStatus};
pub(crate) use permit::describe;
pub use permit::{BreakerPermit, BreakerRejected};
pub(crate) use state::BreakerShared;
pub use status::BreakerStatus;

use crate::error::{CallError, ControlError, SpawnError};
use crate::kind::Kind;
use crate::telemetry::Telemetry;
pub(crate) use instruments::Instruments;

/// A circuit breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BreakerState {
    /// Calls pass and their outcomes are recorded.
    Closed = 0,
    /// Calls are rejected until the open wait ends.
    Open = 1,
    /// A limited number of probe calls pass; their outcomes decide the next state.
    HalfOpen = 2,
    /// Manual: every call passes, nothing is recorded.
    Disabled = 3,
    /// Manual: every call is rejected.
    ForcedOpen = 4,
    /// Manual: calls pass and are recorded (metrics, rates), the breaker never opens.
    MetricsOnly = 5,
}

impl BreakerState {
    /// The lowercase label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Disabled => "disabled",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::MetricsOnly => "metrics_only",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::Disabled,
            4 => BreakerState::ForcedOpen,
            5 => BreakerState::MetricsOnly,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of a breaker's window and counters, from [`Breaker::metrics`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerMetrics {
    /// The state now.
    pub state: BreakerState,
    /// Failed calls in the window, in percent.
    pub failure_rate: f64,
    /// Slow calls in the window, in percent.
    pub slow_call_rate: f64,
    /// Calls recorded in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failed: u32,
    /// Slow calls in the window (including calls counted slow while still running).
    pub slow: u32,
    /// Calls rejected since the breaker was spawned.
    pub not_permitted: u64,
    /// Time since the last transition (or since spawn).
    pub time_in_state: Duration,
    /// Probe permits left (half-open only, else 0).
    pub half_open_probes_left: u32,
    /// Trips since the breaker last closed after successful probes (drives open backoff).
    pub consecutive_trips: u32,
}

/// A named circuit breaker, from [`Runtime::breaker`](crate::Runtime::breaker). Cheap to
/// clone; every clone shares the same state.
#[derive(Clone, Debug)]
pub struct Breaker {
    shared: Arc<BreakerShared>,
}

impl Breaker {
    pub(crate) fn new(
        name: Arc<str>,
        config: BreakerConfig,
        telemetry: Telemetry,
    ) -> Result<Self, SpawnError> {
        // Built configs were checked by `build()`; checked again here, as every spawn does.
        let instruments = Instruments::standalone(&name, telemetry.duration_bounds());
        Self::with_instruments(name, config, telemetry, instruments)
    }

    /// A breaker recording into `instruments` (a keyed breaker's breakers share one set).
    pub(crate) fn with_instruments(
        name: Arc<str>,
        config: BreakerConfig,
        telemetry: Telemetry,
        instruments: Arc<Instruments>,
    ) -> Result<Self, SpawnError> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(BreakerShared::new(name, config, telemetry, instruments)),
        })
    }

    pub(crate) fn shared(&self) -> Arc<BreakerShared> {
        Arc::clone(&self.shared)
    }

    /// Restarts of its actor since spawn, and whether it was left down.
    pub(crate) fn supervision(&self) -> (u32, bool) {
        (self.shared.slot.restarts(), self.shared.slot.is_degraded())
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs `f` if the breaker permits it and records the outcome. Errors count as the
    /// config's classifier says (by default every `Err` is a failure).
    ///
    /// # Errors
    /// [`CallError::CircuitOpen`] when rejected (with the time left in open), else
    /// [`CallError::Inner`] with `f`'s error.
    ///
    /// # Cancel safety
    /// Dropping the future records the call as cancelled (not as a failure) and gives a
    /// half-open probe slot back; so does a panic in `f`. A call dropped after it had run
    /// `slow_call_duration` is recorded as a slow call (see
    /// [`BreakerConfigBuilder::slow_call_duration`](crate::breaker::BreakerConfigBuilder::slow_call_duration)).
    ///
    /// # Examples
    /// ```
    /// use palisade::{BreakerConfig, CallError, SlidingWindow};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let db = rt.breaker("doc-db", BreakerConfig::builder()
    ///     .sliding_window(SlidingWindow::Count(4)).minimum_calls(4).build()?).await?;
    /// for _ in 0..4 {
    ///     let _ = db.execute(|| async { Err::<(), _>("down") }).await;
    /// }
    /// let r = db.execute(|| async { Ok::<_, &str>(1) }).await;
    /// assert!(matches!(r, Err(CallError::CircuitOpen { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn execute<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Any,
    {
        let admission = match self.shared.admit() {
            Ok(admission) => admission,
            Err(r) => return Err(self.shared.rejected(r).into()),
        };
        let result = f().await;
        match &result {
            Ok(_) => admission.record(None),
            Err(e) => admission.record(Some(self.shared.classify(e))),
        }
        admission.defuse();
        result.map_err(CallError::Inner)
    }

    /// Like [`execute`](Self::execute), with this call's own classification of its error
    /// (it replaces the config's classifier for this call).
    ///
    /// # Errors
    /// As for [`execute`](Self::execute).
    ///
    /// # Cancel safety
    /// As for [`execute`](Self::execute).
    pub async fn execute_classified<F, Fut, T, E, C>(
        &self,
        f: F,
        classify: C,
    ) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&E) -> ErrorClass,
    {
        let admission = match self.shared.admit() {
            Ok(admission) => admission,
            Err(r) => return Err(self.shared.rejected(r).into()),
        };
        let result = f().await;
        match &result {
            Ok(_) => admission.record(None),
            Err(e) => admission.record(Some(classify(e))),
        }
        admission.defuse();
        result.map_err(CallError::Inner)
    }

    /// Admission for a caller that records the outcome itself and has read the time (the
    /// policy pipeline).
    #[inline]
    pub(crate) fn admit_at(
        &self,
        now: crate::clock::Now,
    ) -> Result<permit::Admission<'_>, permit::Rejection> {
        self.shared.admit_at(now)
    }

    /// The public error for a rejection [`admit_at`](Self::admit_at) returned.
    pub(crate) fn rejected(&self, r: permit::Rejection) -> BreakerRejected {
        self.shared.rejected(r)
    }

    /// Admits one call whose outcome the caller records on the returned permit (see
    /// [`BreakerPermit`]): for middleware that classifies responses, or a permit held
    /// across a response body. Never waits.
    ///
    /// # Errors
    /// [`BreakerRejected`] when the breaker does not admit the call, the same rejection
    /// [`execute`](Self::execute) gives (it converts into [`CallError::CircuitOpen`]).
    ///
    /// # Examples
    /// ```
    /// use palisade::{BreakerConfig, SlidingWindow};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let db = rt.breaker("doc-permit", BreakerConfig::builder()
    ///     .sliding_window(SlidingWindow::Count(2)).minimum_calls(2).build()?).await?;
    /// for status in [500, 503] {
    ///     let permit = db.try_acquire()?;
    ///     // a downstream answered Ok(response) with a 5xx: a failure all the same
    ///     if status >= 500 { permit.failure() } else { permit.success() }
    /// }
    /// assert!(db.try_acquire().is_err(), "2 failures of 2: open");
    /// # Ok(()) }
    /// ```
    pub fn try_acquire(&self) -> Result<BreakerPermit, BreakerRejected> {
        let admission = self.shared.admit().map_err(|r| self.shared.rejected(r))?;
        Ok(BreakerPermit::new(admission, Arc::clone(&self.shared)))
    }

    /// How the config's classifier counts an error.
    pub(crate) fn classify(&self, error: &dyn Any) -> ErrorClass {
        self.shared.classify(error)
    }

    /// The state now: one atomic load, and for open and half-open a look at the clock, so
    /// a timer that is due (open -> half-open, `max_wait_in_half_open`) is applied even
    /// when the breaker's actor is down.
    pub fn state(&self) -> BreakerState {
        self.shared.current_state()
    }

    /// The breaker's state now against its thresholds: rates and counts in the window,
    /// time in state, time until half-open, rejections. Admits nothing.
    ///
    /// # Examples
    /// ```
    /// use palisade::{BreakerConfig, BreakerState, SlidingWindow};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let db = rt.breaker("doc-status", BreakerConfig::builder()
    ///     .sliding_window(SlidingWindow::Count(4)).minimum_calls(4).build()?).await?;
    /// let _ = db.execute(|| async { Err::<(), _>("down") }).await;
    /// let s = db.status();
    /// assert_eq!((s.state, s.buffered, s.failed, s.minimum_calls), (BreakerState::Closed, 1, 1, 4));
    /// assert_eq!((s.failure_rate, s.failure_rate_threshold), (100.0, 50.0));
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> BreakerStatus {
        self.shared.status()
    }

    /// Rates, counts, state and time in state, now.
    pub fn metrics(&self) -> BreakerMetrics {
        self.shared.snapshot()
    }

    /// The configuration in force.
    pub fn config(&self) -> BreakerConfig {
        self.shared.config()
    }

    /// Rejects every call until [`reset`](Self::reset) (or another manual state).
    ///
    /// # Cancel safety
    /// Cancel safe: the move is made whole at the first poll; a future dropped before it
    /// changes nothing.
    pub async fn force_open(&self) {
        self.shared.force(BreakerState::ForcedOpen);
    }

    /// Permits every call and records nothing until [`reset`](Self::reset).
    ///
    /// # Cancel safety
    /// Cancel safe: the move is made whole at the first poll; a future dropped before it
    /// changes nothing.
    pub async fn disable(&self) {
        self.shared.force(BreakerState::Disabled);
    }

    /// Records calls and reports rates but never rejects, until [`reset`](Self::reset).
    ///
    /// # Cancel safety
    /// Cancel safe: the move is made whole at the first poll; a future dropped before it
    /// changes nothing.
    pub async fn metrics_only(&self) {
        self.shared.force(BreakerState::MetricsOnly);
    }

    /// Back to closed with an empty window and no trip history, from any state.
    ///
    /// # Cancel safety
    /// Cancel safe: the move is made whole at the first poll; a future dropped before it
    /// changes nothing.
    pub async fn reset(&self) {
        self.shared.force(BreakerState::Closed);
    }

    /// Changes thresholds and durations of the running breaker through its actor, keeping
    /// the recorded window, and emits [`Event::Reconfigured`](crate::Event::Reconfigured).
    ///
    /// # Errors
    /// [`ControlError::Config`] when the window's shape would change;
    /// [`ControlError::Unavailable`] when the actor is not running.
    ///
    /// # Cancel safety
    /// Once the first poll has handed the new config to the actor, dropping the future does
    /// not take it back: the actor applies it (or refuses it) all the same, and only the
    /// answer is lost. Dropped before its first poll, nothing changes.
    pub async fn reconfigure(&self, config: BreakerConfig) -> Result<(), ControlError> {
        self.shared
            .slot
            .ask(|reply| BreakerCommand::Reconfigure(config, reply))
            .await
            .ok_or_else(|| ControlError::Unavailable {
                kind: Kind::Breaker,
                name: Arc::clone(&self.shared.name),
            })?
            .map_err(ControlError::from)
    }

    /// Fault injection for supervision tests (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn inject_fault(&self, fault: crate::Fault) -> bool {
        self.shared.slot.inject(fault)
    }
}
