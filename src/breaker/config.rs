//! Circuit breaker configuration, with Resilience4j's set of settings and defaults.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;

/// The window over which failure and slow-call rates are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SlidingWindow {
    /// The last `n` recorded calls.
    Count(u32),
    /// The calls recorded in the last `Duration`, in buckets of one second (or of the
    /// configured `time_bucket`).
    Time(Duration),
}

/// How a breaker times its calls (slow-call detection, the in-flight scan and the
/// `palisade_call_duration_seconds` histogram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CallTiming {
    /// The CPU's time-stamp counter, read at the start and the end of every call: exact
    /// to the nanosecond, two reads of ~10 ns each on the project machine (the default).
    #[default]
    Precise,
    /// The time-stamp counter as a thread of palisade last read it, refreshed every
    /// millisecond while any coarse breaker lives: one relaxed load per reading, a third of
    /// a closed breaker's overhead saved (docs/PERFORMANCE.md). Durations are off by up to
    /// about a millisecond (more while the machine does not schedule the refresher): a
    /// `slow_call_duration` of 1 ms or less counts fast calls slow or slow calls fast, and
    /// calls under a millisecond land in the histogram's first buckets by chance. Pick it
    /// for breakers in front of calls that take milliseconds or more, when the breaker's
    /// own cost matters. With `test-util`, the same as `Precise` (tokio's clock).
    Coarse,
    /// Calls are not timed, and failures alone decide (as recloser's breaker does): no
    /// slow-call rate, no `palisade_call_duration_seconds`, no in-flight scan of hanging
    /// calls (a dependency that hangs trips the breaker only through the failures its
    /// callers' timeouts record). The cheapest closed breaker: no clock read on a call
    /// under a count window (docs/PERFORMANCE.md); a time window reads the clock once,
    /// when the outcome is recorded. [`validate`](BreakerConfig::validate) refuses it with
    /// a `slow_call_rate_threshold` below 100 %, which it could not honour.
    Untimed,
}

/// How a call's error counts in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Counts as a failure (the default for every `Err`).
    Failure,
    /// Counts as a success (an expected error, such as "not found").
    Success,
    /// Not counted at all (it says nothing about the dependency's health).
    Ignored,
}

/// Decides how an error counts. It receives the error as `&dyn Any`: downcast to the error
/// types you know (`e.downcast_ref::<std::io::Error>()`), as with Resilience4j's
/// record/ignore exception lists.
pub type Classifier = Arc<dyn Fn(&dyn Any) -> ErrorClass + Send + Sync>;

/// The open duration's growth on repeated trips without a successful close in between.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OpenBackoff {
    /// Each consecutive trip multiplies the previous open duration by this (at least 1).
    pub multiplier: f64,
    /// The open duration never exceeds this.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub max: Duration,
}

/// A circuit breaker's configuration.
///
/// # Defaults (as Resilience4j)
/// - `sliding_window`: `Count(100)`; `time_bucket`: 1 s for `Time` windows
/// - `minimum_calls`: 100 (capped at the size of a count window)
/// - `failure_rate_threshold`: 50 %
/// - `slow_call_rate_threshold`: 100 %
/// - `slow_call_duration`: 60 s
/// - `wait_in_open`: 60 s, no growth (`open_backoff` unset)
/// - `half_open_permits`: 10
/// - `max_wait_in_half_open`: zero (stay half-open until the probes decide)
/// - `automatic_half_open`: on (the actor's timer moves open -> half-open without traffic)
/// - `call_timing`: [`CallTiming::Precise`]
/// - classifier: every `Err` is a failure
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerConfig {
    pub(crate) sliding_window: SlidingWindow,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) time_bucket: Duration,
    pub(crate) minimum_calls: u32,
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) slow_call_duration: Duration,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) wait_in_open: Duration,
    pub(crate) open_backoff: Option<OpenBackoff>,
    pub(crate) half_open_permits: u32,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) max_wait_in_half_open: Duration,
    pub(crate) automatic_half_open: bool,
    pub(crate) call_timing: CallTiming,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) classifier: Option<Classifier>,
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("sliding_window", &self.sliding_window)
            .field("time_bucket", &self.time_bucket)
            .field("minimum_calls", &self.minimum_calls)
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("wait_in_open", &self.wait_in_open)
            .field("open_backoff", &self.open_backoff)
            .field("half_open_permits", &self.half_open_permits)
            .field("max_wait_in_half_open", &self.max_wait_in_half_open)
            .field("automatic_half_open", &self.automatic_half_open)
            .field("call_timing", &self.call_timing)
            .field("classifier", &self.classifier.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            sliding_window: SlidingWindow::Count(100),
            time_bucket: Duration::from_secs(1),
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Duration::from_secs(60),
            wait_in_open: Duration::from_secs(60),
            open_backoff: None,
            half_open_permits: 10,
            max_wait_in_half_open: Duration::ZERO,
            automatic_half_open: true,
            call_timing: CallTiming::Precise,
            classifier: None,
        }
    }
}

impl BreakerConfig {
    /// A builder starting from the defaults.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use palisade::{BreakerConfig, SlidingWindow};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = BreakerConfig::builder()
    ///     .sliding_window(SlidingWindow::Time(Duration::from_secs(60)))
    ///     .minimum_calls(20)
    ///     .failure_rate_threshold(25.0)
    ///     .slow_call_duration(Duration::from_millis(500))
    ///     .wait_in_open(Duration::from_secs(10))
    ///     .half_open_permits(3)
    ///     .build()?;
    /// assert_eq!(config.minimum_calls(), 20);
    /// // a bad value is refused at build(), naming the field and the value
    /// let refused = BreakerConfig::builder().failure_rate_threshold(150.0).build().unwrap_err();
    /// assert!(refused.to_string().contains("failure_rate_threshold"), "{refused}");
    /// # Ok(()) }
    /// ```
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: BreakerConfig::default(),
        }
    }

    /// A builder starting from this configuration (to change a running breaker).
    pub fn to_builder(&self) -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: self.clone(),
        }
    }

    /// The sliding window.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.sliding_window
    }

    /// How calls are timed.
    pub fn call_timing(&self) -> CallTiming {
        self.call_timing
    }

    /// Calls needed in the window before rates are evaluated (capped by a count window).
    pub fn minimum_calls(&self) -> u32 {
        match self.sliding_window {
            SlidingWindow::Count(n) => self.minimum_calls.min(n),
            SlidingWindow::Time(_) => self.minimum_calls,
        }
    }

    /// The open duration after `trips` consecutive trips (1 for the first).
    pub(crate) fn open_duration(&self, trips: u32) -> Duration {
        match self.open_backoff {
            None => self.wait_in_open,
            Some(OpenBackoff { multiplier, max }) => {
                let exp = i32::try_from(trips.saturating_sub(1)).unwrap_or(i32::MAX);
                let secs = self.wait_in_open.as_secs_f64() * multiplier.powi(exp);
                if !secs.is_finite() || secs >= max.as_secs_f64() {
                    max
                } else {
                    Duration::from_secs_f64(secs).min(max)
                }
            }
        }
    }

    pub(crate) fn bucket_count(&self) -> u32 {
        match self.sliding_window {
            SlidingWindow::Count(n) => n,
            SlidingWindow::Time(w) => {
                let n = w.as_nanos().div_ceil(self.time_bucket.as_nanos().max(1));
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        }
    }

    /// Checks every value, as `build()` and every spawn and reconfiguration do.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field at fault and the value it refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.sliding_window {
            SlidingWindow::Count(0) => {
                return Err(ConfigError::refused(
                    "sliding_window",
                    self.sliding_window,
                    "a count window needs at least 1 call",
                ))
            }
            SlidingWindow::Count(n) if n > 1_000_000 => {
                return Err(ConfigError::refused(
                    "sliding_window",
                    self.sliding_window,
                    "a count window holds at most 1,000,000 calls",
                ))
            }
            SlidingWindow::Time(d) if d.is_zero() => {
                return Err(ConfigError::refused(
                    "sliding_window",
                    self.sliding_window,
                    "a time window must be longer than zero",
                ))
            }
            _ => {}
        }
        if self.time_bucket.is_zero() {
            return Err(ConfigError::refused(
                "time_bucket",
                self.time_bucket,
                "must be longer than zero",
            ));
        }
        if let SlidingWindow::Time(w) = self.sliding_window {
            if self.time_bucket > w {
                return Err(ConfigError::refused(
                    "time_bucket",
                    self.time_bucket,
                    format!("must not be longer than the time window ({w:?})"),
                ));
            }
            if self.bucket_count() > 100_000 {
                return Err(ConfigError::refused(
                    "time_bucket",
                    self.time_bucket,
                    format!("the window of {w:?} would need more than 100,000 buckets; use longer buckets"),
                ));
            }
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::refused(
                "minimum_calls",
                self.minimum_calls,
                "must be at least 1",
            ));
        }
        if matches!(self.sliding_window, SlidingWindow::Time(_)) && self.minimum_calls > 1_000_000 {
            return Err(ConfigError::refused(
                "minimum_calls",
                self.minimum_calls,
                "is more than 1,000,000 (as many as the largest count window): a breaker that waits for more calls than that would hardly ever trip",
            ));
        }
        if let SlidingWindow::Count(n) = self.sliding_window {
            if self.minimum_calls > n
                && self.minimum_calls != BreakerConfig::default().minimum_calls
            {
                return Err(ConfigError::refused(
                    "minimum_calls",
                    self.minimum_calls,
                    format!("is larger than the count window of {n} calls, so the breaker could never trip"),
                ));
            }
        }
        for (field, v) in [
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                return Err(ConfigError::refused(
                    field,
                    v,
                    "is outside (0, 100] percent",
                ));
            }
        }
        if self.slow_call_duration.is_zero() {
            return Err(ConfigError::refused(
                "slow_call_duration",
                self.slow_call_duration,
                "must be longer than zero",
            ));
        }
        if self.wait_in_open.is_zero() {
            return Err(ConfigError::refused(
                "wait_in_open",
                self.wait_in_open,
                "must be longer than zero",
            ));
        }
        if let Some(b) = self.open_backoff {
            if !(b.multiplier >= 1.0 && b.multiplier.is_finite()) {
                return Err(ConfigError::refused(
                    "open_backoff",
                    b,
                    "the multiplier must be a finite number of at least 1",
                ));
            }
            if b.max < self.wait_in_open {
                return Err(ConfigError::refused(
                    "open_backoff",
                    b,
                    format!(
                        "the maximum must not be shorter than wait_in_open ({:?})",
                        self.wait_in_open
                    ),
                ));
            }
        }
        if self.call_timing == CallTiming::Untimed && self.slow_call_rate_threshold < 100.0 {
            return Err(ConfigError::refused(
                "slow_call_rate_threshold",
                self.slow_call_rate_threshold,
                "needs timed calls, and call_timing is untimed (set it to precise or coarse, or the threshold back to 100)",
            ));
        }
        if self.half_open_permits == 0 {
            return Err(ConfigError::refused(
                "half_open_permits",
                self.half_open_permits,
                "must be at least 1",
            ));
        }
        if self.half_open_permits > super::probes::MAX_PERMITS {
            return Err(ConfigError::refused(
                "half_open_permits",
                self.half_open_permits,
                format!("must be at most {}", super::probes::MAX_PERMITS),
            ));
        }
        Ok(())
    }
}

/// Builds a [`BreakerConfig`]; see its defaults.
#[derive(Clone, Debug)]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
}

impl BreakerConfigBuilder {
    /// The window over which rates are computed.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// The bucket length of a time window (default 1 s).
    pub fn time_bucket(mut self, bucket: Duration) -> Self {
        self.config.time_bucket = bucket;
        self
    }

    /// Calls the window must hold before the breaker may trip: 1 to the count window's
    /// size, or to 1,000,000 with a time window (checked by `build`).
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }

    /// Failure rate, in percent (0, 100], at or above which the breaker opens.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Slow-call rate, in percent (0, 100], at or above which the breaker opens.
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// A call running at least this long is slow (even while it still runs).
    ///
    /// How each ending counts:
    /// - it ends, after running this long: slow, and failed too when its error is a
    ///   failure (one call, counted once, even when it was counted slow while it ran);
    /// - it is cut (a caller's deadline, a `Policy` timeout, a dropped future, a panic)
    ///   after running this long: slow, never failed (its outcome is unknown), so a
    ///   dependency that hangs trips the slow-call rate even for callers whose deadlines are
    ///   shorter than its hang; a `Policy` timeout counts as failed as well;
    /// - it is cut sooner: cancelled, not recorded (it says nothing about the dependency).
    pub fn slow_call_duration(mut self, d: Duration) -> Self {
        self.config.slow_call_duration = d;
        self
    }

    /// How calls are timed: [`CallTiming::Precise`] (the default),
    /// [`CallTiming::Coarse`] (cheaper, to within about a millisecond) or
    /// [`CallTiming::Untimed`] (not at all: failures alone decide).
    pub fn call_timing(mut self, timing: CallTiming) -> Self {
        self.config.call_timing = timing;
        self
    }

    /// How long the breaker stays open before it lets probes through.
    pub fn wait_in_open(mut self, d: Duration) -> Self {
        self.config.wait_in_open = d;
        self
    }

    /// Grows the open duration on consecutive trips: `wait_in_open * multiplier^(trips-1)`,
    /// capped at `max`. Reset when the breaker closes after successful probes.
    pub fn open_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.config.open_backoff = Some(OpenBackoff { multiplier, max });
        self
    }

    /// Probe calls let through in half-open; their outcome decides the next state. From 1
    /// to 65,535.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config.half_open_permits = n;
        self
    }

    /// Longest time in half-open before the breaker opens again; zero waits for the probes.
    pub fn max_wait_in_half_open(mut self, d: Duration) -> Self {
        self.config.max_wait_in_half_open = d;
        self
    }

    /// Whether the actor's timer moves open -> half-open without traffic (default on).
    /// Off, the first call after the open wait makes the move.
    pub fn automatic_half_open(mut self, on: bool) -> Self {
        self.config.automatic_half_open = on;
        self
    }

    /// How errors count (default: every error is a failure). See [`Classifier`].
    pub fn classifier<F>(mut self, f: F) -> Self
    where
        F: Fn(&dyn Any) -> ErrorClass + Send + Sync + 'static,
    {
        self.config.classifier = Some(Arc::new(f));
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: thresholds outside (0, 100], a zero window, zero
    /// permits, zero durations, `minimum_calls` larger than a count window, a bad open backoff.
    pub fn build(self) -> Result<BreakerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(b: BreakerConfigBuilder) -> &'static str {
        b.build().expect_err("must be refused").field
    }

    #[test]
    fn an_untimed_breaker_refuses_a_slow_call_threshold_it_could_not_honour() {
        let untimed = || BreakerConfig::builder().call_timing(CallTiming::Untimed);
        let e = untimed()
            .slow_call_rate_threshold(50.0)
            .build()
            .expect_err("refused");
        assert_eq!(e.field, "slow_call_rate_threshold");
        assert!(e.to_string().contains("untimed"), "{e}");
        assert!(
            untimed().build().is_ok(),
            "the default threshold (100 %) is fine"
        );
        assert!(BreakerConfig::builder()
            .slow_call_rate_threshold(50.0)
            .call_timing(CallTiming::Coarse)
            .build()
            .is_ok());
    }

    #[test]
    fn refuses_each_bad_value_by_name() {
        let b = BreakerConfig::builder;
        // a time window has no size to cap minimum_calls: a huge one could never trip
        let time = || b().sliding_window(SlidingWindow::Time(Duration::from_secs(60)));
        assert_eq!(field(time().minimum_calls(u32::MAX)), "minimum_calls");
        assert_eq!(field(time().minimum_calls(1_000_001)), "minimum_calls");
        assert!(time().minimum_calls(1_000_000).build().is_ok());
        assert_eq!(
            field(b().failure_rate_threshold(0.0)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field(b().failure_rate_threshold(100.1)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field(b().failure_rate_threshold(f64::NAN)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field(b().slow_call_rate_threshold(-1.0)),
            "slow_call_rate_threshold"
        );
        assert_eq!(
            field(b().sliding_window(SlidingWindow::Count(0))),
            "sliding_window"
        );
        assert_eq!(
            field(b().sliding_window(SlidingWindow::Time(Duration::ZERO))),
            "sliding_window"
        );
        assert_eq!(field(b().half_open_permits(0)), "half_open_permits");
        assert_eq!(field(b().half_open_permits(65_536)), "half_open_permits");
        assert!(b().half_open_permits(65_535).build().is_ok());
        assert_eq!(field(b().wait_in_open(Duration::ZERO)), "wait_in_open");
        assert_eq!(
            field(b().slow_call_duration(Duration::ZERO)),
            "slow_call_duration"
        );
        assert_eq!(field(b().minimum_calls(0)), "minimum_calls");
        assert_eq!(
            field(
                b().sliding_window(SlidingWindow::Count(10))
                    .minimum_calls(11)
            ),
            "minimum_calls"
        );
        assert_eq!(
            field(b().open_backoff(0.5, Duration::from_secs(600))),
            "open_backoff"
        );
        assert_eq!(
            field(b().open_backoff(2.0, Duration::from_secs(1))),
            "open_backoff"
        );
        // the default minimum_calls (100) is capped, not refused, by a small count window
        let c = b()
            .sliding_window(SlidingWindow::Count(10))
            .build()
            .expect("valid");
        assert_eq!(c.minimum_calls(), 10);
    }

    #[test]
    fn open_duration_grows_and_caps() {
        let c = BreakerConfig::builder()
            .wait_in_open(Duration::from_secs(10))
            .open_backoff(2.0, Duration::from_secs(35))
            .build()
            .expect("valid");
        let d: Vec<u64> = (1..=4).map(|t| c.open_duration(t).as_secs()).collect();
        assert_eq!(d, [10, 20, 35, 35]);
        assert_eq!(c.open_duration(u32::MAX), Duration::from_secs(35));
    }
}
