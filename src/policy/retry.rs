//! Retry: call again after a backoff, while the error is retryable, attempts remain, the
//! budget allows and the next delay fits in the task's deadline.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::deadline;
use crate::error::{CallError, ConfigError};
use crate::telemetry::{metrics as m, Event, Telemetry};
use crate::Runtime;

type Predicate = Arc<dyn Fn(&dyn Any) -> Option<bool> + Send + Sync>;
type Hook = Arc<dyn Fn(&RetryInfo) + Send + Sync>;

/// What the `on_retry` hook learns before each backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    /// The backoff before the next attempt.
    pub delay: Duration,
}

/// Which rejections are retried (an inner error is retried when `retry_if` says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rejections {
    timeout: bool,
    circuit_open: bool,
    rate_limited: bool,
    bulkhead_full: bool,
}

/// A retry, from [`Retry::builder`]. Cheap to clone; clones share the budget.
#[derive(Clone)]
pub struct Retry {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    max_attempts: u32,
    backoff: Backoff,
    retry_if: Option<Predicate>,
    rejections: Rejections,
    budget: Option<RetryBudget>,
    on_retry: Option<Hook>,
    telemetry: Option<Telemetry>,
    attempts: Counter,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.inner.name)
            .field("max_attempts", &self.inner.max_attempts)
            .field("backoff", &self.inner.backoff)
            .field("budget", &self.inner.budget)
            .finish()
    }
}

/// Builds a [`Retry`].
///
/// # Defaults
/// - `name`: `"retry"`; `max_attempts`: 3 (the first call and 2 retries)
/// - `backoff`: exponential from 100 ms, capped at 30 s, no jitter
/// - `retry_if`: every inner error; per-attempt timeouts are retried; rejections
///   (circuit open, rate limited, bulkhead full) are not unless opted in
/// - no budget, no hook; events only with [`events`](Self::events)
pub struct RetryBuilder {
    name: Arc<str>,
    max_attempts: u32,
    backoff: Backoff,
    retry_if: Option<Predicate>,
    rejections: Rejections,
    budget: Option<RetryBudget>,
    on_retry: Option<Hook>,
    telemetry: Option<Telemetry>,
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Retry {
    /// A builder starting from the defaults.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use palisade::policy::{Backoff, Jitter, Retry};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let retry = Retry::builder()
    ///     .max_attempts(4)
    ///     .backoff(Backoff::exponential(Duration::from_millis(1)).max_delay(Duration::from_millis(20)).jitter(Jitter::Full))
    ///     .retry_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::PermissionDenied)
    ///     .build()?;
    /// let mut attempts = 0;
    /// let r = retry
    ///     .execute(|| {
    ///         attempts += 1;
    ///         let n = attempts;
    ///         async move {
    ///             if n < 3 { Err(std::io::Error::other("reset")) } else { Ok(n) }
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(r.ok(), Some(3));
    /// # Ok(()) }
    /// ```
    pub fn builder() -> RetryBuilder {
        RetryBuilder {
            name: Arc::from("retry"),
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100)),
            retry_if: None,
            rejections: Rejections {
                timeout: true,
                circuit_open: false,
                rate_limited: false,
                bulkhead_full: false,
            },
            budget: None,
            on_retry: None,
            telemetry: None,
        }
    }

    /// The retry's name (in events and metrics).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Calls `f` (once per attempt) until it succeeds or the retry stops; returns the last
    /// error when it stops.
    ///
    /// # Errors
    /// [`CallError::Inner`] with the last attempt's error.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops the attempt or the backoff sleep under way.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use palisade::policy::{Backoff, Retry};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let retry = Retry::builder().max_attempts(4).backoff(Backoff::constant(Duration::from_millis(1))).build()?;
    /// let mut calls = 0;
    /// let r = retry.execute(|| { calls += 1; let n = calls; async move { if n < 3 { Err("flaky") } else { Ok(n) } } }).await;
    /// assert_eq!(r.ok(), Some(3));
    /// # Ok(()) }
    /// ```
    pub async fn execute<F, Fut, T, E>(&self, mut f: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
    {
        self.run(|| {
            let fut = f();
            async move { fut.await.map_err(CallError::Inner) }
        })
        .await
    }

    /// The retry loop over attempts that already speak `CallError`.
    pub(crate) async fn run<F, Fut, T, E>(&self, mut attempt: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError<E>>>,
        E: fmt::Debug + 'static,
    {
        let mut attempts = self.start();
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => match attempts.next_delay(&e) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(e),
                },
            }
        }
    }

    /// Starts counting the attempts of one call (and counts the call in the budget).
    pub(crate) fn start(&self) -> Attempts<'_> {
        if let Some(b) = &self.inner.budget {
            b.deposit();
        }
        Attempts {
            retry: self,
            n: 1,
            previous: Duration::ZERO,
        }
    }

    /// The least wait before retrying this error, or `None` when it is not retried.
    fn retryable<E: 'static>(&self, error: &CallError<E>) -> Option<Duration> {
        let r = &self.inner.rejections;
        match error {
            CallError::Inner(e) => {
                let retry = self
                    .inner
                    .retry_if
                    .as_ref()
                    .is_none_or(|p| p(e).unwrap_or(true));
                retry.then_some(Duration::ZERO)
            }
            CallError::Timeout { .. } if r.timeout => Some(Duration::ZERO),
            // Forced open (no retry_after) never ends by waiting; half-open's hint is
            // retried like open's wait.
            CallError::CircuitOpen {
                retry_after: Some(d),
                ..
            } if r.circuit_open => Some(*d),
            CallError::RateLimited { retry_after, .. }
            | CallError::BackendDown { retry_after, .. }
                if r.rate_limited =>
            {
                Some(*retry_after)
            }
            CallError::BulkheadFull { .. } | CallError::QueueFull { .. } if r.bulkhead_full => {
                Some(Duration::ZERO)
            }
            _ => None,
        }
    }

    fn give_up(&self, attempts: u32, cause: &'static str) -> Option<Duration> {
        let r = &self.inner;
        metrics::counter!(m::RETRY_EXHAUSTED, "name" => r.name.to_string(), "cause" => cause)
            .increment(1);
        let event = Event::RetryExhausted {
            name: Arc::clone(&r.name),
            attempts,
            cause,
        };
        match &r.telemetry {
            Some(t) => t.emit(event),
            None => event.trace(),
        }
        None
    }
}

/// The attempts of one call: decides, after each failure, whether and when to try again.
pub(crate) struct Attempts<'a> {
    retry: &'a Retry,
    n: u32,
    previous: Duration,
}

impl Attempts<'_> {
    /// The backoff before the next attempt, or `None` when the retry stops here (having
    /// reported why).
    pub(crate) fn next_delay<E: fmt::Debug + 'static>(
        &mut self,
        error: &CallError<E>,
    ) -> Option<Duration> {
        let (retry, n) = (self.retry, self.n);
        let r = &retry.inner;
        if n >= r.max_attempts {
            return retry.give_up(n, "max_attempts");
        }
        let Some(at_least) = retry.retryable(error) else {
            return retry.give_up(n, "not_retryable");
        };
        let delay = r
            .backoff
            .delay(n, self.previous, &mut rand::rng())
            .max(at_least);
        if deadline::remaining().is_some_and(|left| left < delay) {
            return retry.give_up(n, "deadline");
        }
        if r.budget.as_ref().is_some_and(|b| !b.withdraw()) {
            return retry.give_up(n, "budget");
        }
        r.attempts.increment(1);
        match &r.telemetry {
            Some(t) => t.emit(Event::RetryAttempt {
                name: Arc::clone(&r.name),
                attempt: n,
                delay,
                error: format!("{error:?}").into(),
            }),
            None => {
                tracing::debug!(target: "palisade::retry", retry = %r.name, attempt = n, ?delay, ?error, "retrying")
            }
        }
        if let Some(hook) = &r.on_retry {
            hook(&RetryInfo { attempt: n, delay });
        }
        self.previous = delay;
        self.n += 1;
        Some(delay)
    }
}

impl RetryBuilder {
    /// The name in events and metrics.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Retries an inner error only when `f` says so. Errors of another type than `E` are
    /// retried.
    pub fn retry_if<E: 'static, F>(mut self, f: F) -> Self
    where
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.retry_if = Some(Arc::new(move |e: &dyn Any| e.downcast_ref::<E>().map(&f)));
        self
    }

    /// Whether per-attempt timeouts are retried (default yes).
    pub fn retry_on_timeout(mut self, on: bool) -> Self {
        self.rejections.timeout = on;
        self
    }

    /// Whether an open breaker's rejection is retried, after its `retry_after` (default no).
    pub fn retry_on_circuit_open(mut self, on: bool) -> Self {
        self.rejections.circuit_open = on;
        self
    }

    /// Whether a rate limiter's rejection is retried, after its `retry_after` (default no).
    pub fn retry_on_rate_limited(mut self, on: bool) -> Self {
        self.rejections.rate_limited = on;
        self
    }

    /// Whether a full bulkhead's rejection is retried (default no).
    pub fn retry_on_bulkhead_full(mut self, on: bool) -> Self {
        self.rejections.bulkhead_full = on;
        self
    }

    /// A budget shared by every clone of this retry.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Called before each backoff sleep.
    pub fn on_retry<F>(mut self, f: F) -> Self
    where
        F: Fn(&RetryInfo) + Send + Sync + 'static,
    {
        self.on_retry = Some(Arc::new(f));
        self
    }

    /// Publishes `RetryAttempt` and `RetryExhausted` on this runtime's event bus.
    pub fn events(mut self, runtime: &Runtime) -> Self {
        self.telemetry = Some(runtime.telemetry());
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming `max_attempts` (zero) or a backoff field.
    pub fn build(self) -> Result<Retry, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::refused(
                "max_attempts",
                self.max_attempts,
                "must be at least 1 (the first call)",
            ));
        }
        self.backoff.validate()?;
        let attempts = metrics::counter!(m::RETRY_ATTEMPTS, "name" => self.name.to_string());
        Ok(Retry {
            inner: Arc::new(Inner {
                name: self.name,
                max_attempts: self.max_attempts,
                backoff: self.backoff,
                retry_if: self.retry_if,
                rejections: self.rejections,
                budget: self.budget,
                on_retry: self.on_retry,
                telemetry: self.telemetry,
                attempts,
            }),
        })
    }
}
