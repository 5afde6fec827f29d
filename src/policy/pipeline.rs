//! The `Policy`: every layer around one call, in a fixed order.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::deadline::{Scope, Scoped};
use super::retry::Retry;
use super::timeout::CutOff;
use crate::breaker::{Breaker, ErrorClass};
use crate::bulkhead::Bulkhead;
use crate::clock::{Now, Stamp};
use crate::error::CallError;
use crate::limiter::Limiter;

/// Composes a deadline, a retry, a breaker, a limiter, a bulkhead and a per-attempt timeout
/// around a call. Cheap to clone and reusable; building one never spawns anything.
///
/// The order is fixed, outermost first: **deadline, retry, breaker, limiter, bulkhead,
/// timeout, call**. So every attempt is admitted and counted by the breaker, limiter and
/// bulkhead; the timeout bounds one attempt and the deadline all of them; retry backoffs
/// never sleep past the deadline. The breaker counts an attempt's inner error as its
/// classifier says and a timeout as a failure; a limiter or bulkhead rejection says nothing
/// about the dependency and is not counted.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use palisade::policy::{Backoff, Policy, Retry};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = Policy::new()
///     .deadline(Duration::from_secs(1))
///     .retry(Retry::builder().max_attempts(3).backoff(Backoff::constant(Duration::from_millis(1))).build()?)
///     .timeout(Duration::from_millis(100));
/// let mut calls = 0;
/// let r = policy.execute(|| { calls += 1; let n = calls; async move { if n == 1 { Err("flaky") } else { Ok(n) } } }).await;
/// assert_eq!(r.ok(), Some(2));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Policy {
    deadline: Option<Duration>,
    retry: Option<Retry>,
    breaker: Option<Breaker>,
    limiter: Option<Limiter>,
    bulkhead: Option<Bulkhead>,
    timeout: Option<Duration>,
}

impl Policy {
    /// A policy with no layer (a plain call).
    pub fn new() -> Self {
        Self::default()
    }

    /// A deadline for the whole call, all attempts and backoffs included.
    pub fn deadline(mut self, budget: Duration) -> Self {
        self.deadline = Some(budget);
        self
    }

    /// Retries failed attempts.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Guards every attempt with a breaker.
    pub fn breaker(mut self, breaker: &Breaker) -> Self {
        self.breaker = Some(breaker.clone());
        self
    }

    /// Spends one unit of a limiter per attempt.
    pub fn limiter(mut self, limiter: &Limiter) -> Self {
        self.limiter = Some(limiter.clone());
        self
    }

    /// Holds a bulkhead permit during each attempt.
    pub fn bulkhead(mut self, bulkhead: &Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead.clone());
        self
    }

    /// A time limit for each attempt.
    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(after);
        self
    }

    /// Runs `f` (called once per attempt) through every layer.
    ///
    /// # Errors
    /// The last attempt's [`CallError`]: the inner error, a rejection, a timeout, or
    /// `DeadlineExceeded` when the deadline ran out.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future releases whatever the attempt under way holds.
    pub async fn execute<F, Fut, T, E>(&self, mut f: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
    {
        // One reading of the clock serves the deadline and every layer of the first attempt.
        let now = Now::read();
        match self.deadline {
            None => self.attempts(&mut f, now).await,
            // The scope sets the task-local deadline around each poll of the attempts, in
            // place (no layer moves the attempts' future into its own).
            Some(budget) => Scoped::new(
                Scope::narrowed_at(budget, Stamp::at(now)),
                self.attempts(&mut f, now),
            )
            .await
            .unwrap_or_else(|e| Err(CallError::DeadlineExceeded { budget: e.budget })),
        }
    }

    /// Retry around attempts.
    async fn attempts<F, Fut, T, E>(&self, f: &mut F, first: Now) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
    {
        let Some(retry) = &self.retry else {
            return self.attempt(f, first).await;
        };
        let mut attempts = retry.start();
        let mut now = first;
        loop {
            match self.attempt(f, now).await {
                Ok(v) => return Ok(v),
                Err(e) => match attempts.next_delay(&e) {
                    // Boxed: a tokio `Sleep` is large and retries are the slow path.
                    Some(delay) => Box::pin(tokio::time::sleep(delay)).await,
                    None => return Err(e),
                },
            }
            now = Now::read();
        }
    }

    /// Like [`execute`](Self::execute), then lets `fallback` turn the error into a value
    /// (or another error): for a cached answer or a default when the dependency is down.
    ///
    /// # Errors
    /// Whatever `fallback` returns.
    pub async fn execute_with_fallback<F, Fut, T, E, G>(
        &self,
        f: F,
        fallback: G,
    ) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
        G: FnOnce(CallError<E>) -> Result<T, CallError<E>>,
    {
        self.execute(f).await.or_else(fallback)
    }

    /// One attempt starting `now`: breaker, limiter, bulkhead, timeout, call.
    async fn attempt<F, Fut, T, E>(&self, f: &mut F, now: Now) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let Some(breaker) = &self.breaker else {
            return self.admitted(f, now).await;
        };
        let admission = breaker.admit_at(now)?;
        let result = self.admitted(f, now).await;
        let class = match &result {
            Ok(_) => None,
            Err(CallError::Inner(e)) => Some(breaker.classify(e)),
            Err(CallError::Timeout { .. }) => Some(ErrorClass::Failure),
            Err(_) => Some(ErrorClass::Ignored),
        };
        admission.complete(class);
        result
    }

    /// Limiter, bulkhead, timeout, call.
    async fn admitted<F, Fut, T, E>(&self, f: &mut F, now: Now) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Waits (a remote limiter's round trip, a bulkhead queue) are boxed: they are the
        // slow path, and inline their futures would grow every call's future.
        if let Some(limiter) = &self.limiter {
            match limiter.admit_now(now) {
                Some(answer) => answer?,
                None => Box::pin(limiter.admit()).await?,
            }
        }
        let _permit = match &self.bulkhead {
            Some(b) => Some(match b.acquire_now() {
                Some(permit) => permit,
                None => Box::pin(b.acquire()).await?,
            }),
            None => None,
        };
        let call = f();
        match self.timeout {
            None => call.await.map_err(CallError::Inner),
            Some(after) => match Stamp::at(now).checked_add(after) {
                Some(at) => CutOff::new(at, call)
                    .await
                    .map_or(Err(CallError::Timeout { after }), |r| {
                        r.map_err(CallError::Inner)
                    }),
                None => call.await.map_err(CallError::Inner),
            },
        }
    }
}
