//! The `Policy`: every layer around one call, in a fixed order.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use std::hash::Hash;
use std::sync::Arc;

use super::keyed::{refused, Bound, KeyedSpend};
use super::retry::Retry;
use crate::breaker::{Breaker, ErrorClass};
use crate::bulkhead::Bulkhead;
use crate::clock::{Now, Stamp};
use crate::deadline::{in_scope, Cut, Guarded, Scope};
use crate::error::CallError;
use crate::limiter::{KeyedLimiter, Limiter};

/// Composes a deadline, a retry, a breaker, a limiter, a bulkhead and a per-attempt timeout
/// around a call. Cheap to clone and reusable; building one never spawns anything.
///
/// The order is fixed, outermost first: **deadline, retry, breaker, limiter, bulkhead,
/// timeout, call**. So every attempt is admitted and counted by the breaker, limiter and
/// bulkhead; the timeout bounds one attempt and the deadline all of them; retry backoffs
/// never sleep past the deadline. The breaker counts an attempt's inner error as its
/// classifier says and a timeout as a failure (a slow one when the attempt had run
/// `slow_call_duration`); an attempt the deadline cuts counts as slow when it had run
/// `slow_call_duration`, else as cancelled; a limiter or bulkhead rejection says nothing
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
    keyed: Option<Arc<dyn KeyedSpend>>,
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

    /// Spends one unit of `key`'s quota of a keyed limiter per attempt (after the direct
    /// limiter, if any). The key belongs to one call: bind it on a clone of a shared policy
    /// for each request (a clone copies a few reference-counted handles).
    ///
    /// # Examples
    /// ```
    /// use palisade::{LimiterConfig, Policy, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let users = rt.keyed_limiter::<String>("doc-policy-users", LimiterConfig::gcra(Quota::per_hour(1))).await?;
    /// let shared = Policy::new();
    /// let for_ann = shared.clone().keyed_limiter(&users, "ann".to_string());
    /// assert!(for_ann.execute(|| async { Ok::<_, ()>(()) }).await.is_ok());
    /// assert!(for_ann.execute(|| async { Ok::<_, ()>(()) }).await.is_err(), "ann's quota is spent");
    /// let for_bob = shared.clone().keyed_limiter(&users, "bob".to_string());
    /// assert!(for_bob.execute(|| async { Ok::<_, ()>(()) }).await.is_ok(), "bob's is not");
    /// # Ok(()) }
    /// ```
    pub fn keyed_limiter<K>(mut self, limiter: &KeyedLimiter<K>, key: K) -> Self
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        self.keyed = Some(Arc::new(Bound {
            remote: limiter.is_remote(),
            limiter: limiter.clone(),
            key,
        }));
        self
    }

    /// Holds a bulkhead permit during each attempt.
    pub fn bulkhead(mut self, bulkhead: &Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead.clone());
        self
    }

    /// A time limit for each attempt. Inside the attempt, [`deadline::remaining`] and the
    /// deadline headers tell the earlier of this limit and the deadline.
    ///
    /// [`deadline::remaining`]: crate::deadline::remaining
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
        // One flat state machine: every layer is inline here, and each await (the call, a
        // queue, a round trip, a backoff) goes through `Guarded`, which sets the deadline's
        // task-local around its polls and cuts it off at the deadline or the timeout. No
        // layer's future is moved into another's. Waits (a remote limiter's round trip, a
        // bulkhead queue, a backoff) are boxed: they are the slow path, and inline their
        // futures would grow every call's future.
        //
        // One reading of the clock serves the deadline and every layer of an attempt; none is
        // taken when no layer needs the time.
        let needs_time = self.deadline.is_some()
            || self.breaker.is_some()
            || self.limiter.is_some()
            || self.timeout.is_some();
        let mut now = needs_time.then(Now::read);
        // The reading as a deadline's time, for the layers that compare with one.
        let needs_stamp = self.deadline.is_some() || self.timeout.is_some();
        let stamp_of = |now: Option<Now>| now.filter(|_| needs_stamp).map(Stamp::at);
        let mut stamp = stamp_of(now);
        let scope = match (self.deadline, stamp) {
            (Some(budget), Some(stamp)) => Some(Scope::narrowed_at(budget, stamp)),
            _ => None,
        };
        let mut attempts = self.retry.as_ref().map(Retry::start);
        loop {
            // One attempt: breaker, limiter, bulkhead, timeout, call. A rejection ends it
            // with its error; the deadline ends the whole call (whatever the attempt holds
            // is dropped with it: the breaker counts it cancelled).
            // The attempt's error (an `Ok` returns from inside: the value moves once, not
            // through a `Result` carried out of the block and matched again).
            let error = 'attempt: {
                // A spent budget makes no call (and spends no permit, quota or probe).
                if let (Some(scope), Some(stamp)) = (scope, stamp) {
                    if scope.is_spent_at(stamp) {
                        return Err(CallError::DeadlineExceeded {
                            budget: scope.budget(),
                        });
                    }
                }
                let admission = match (&self.breaker, now) {
                    (Some(breaker), Some(now)) => match breaker.admit_at(now) {
                        Ok(admission) => Some((breaker, admission)),
                        Err(r) => break 'attempt breaker.rejected(r).into(),
                    },
                    _ => None,
                };
                if let Some(limiter) = &self.limiter {
                    let answer = match now.and_then(|now| limiter.admit_now(now)) {
                        Some(answer) => answer,
                        None => match Guarded::new(scope, None, Box::pin(limiter.admit())).await {
                            Ok(answer) => answer,
                            Err(cut) => return Err(cut.into_error()),
                        },
                    };
                    if let Err(rejected) = answer {
                        break 'attempt rejected;
                    }
                }
                if let Some(keyed) = &self.keyed {
                    let spent = match keyed.spend_now() {
                        Some(spent) => spent,
                        None => match Guarded::new(scope, None, keyed.spend()).await {
                            Ok(spent) => spent,
                            Err(cut) => return Err(cut.into_error()),
                        },
                    };
                    if let Err(denied) = spent {
                        break 'attempt refused(&**keyed, denied);
                    }
                }
                let _permit = match &self.bulkhead {
                    Some(b) => match b.acquire_now() {
                        Some(permit) => Some(permit),
                        None => match Guarded::new(scope, None, Box::pin(b.acquire())).await {
                            Ok(Ok(permit)) => Some(permit),
                            Ok(Err(rejected)) => break 'attempt rejected.into(),
                            Err(cut) => return Err(cut.into_error()),
                        },
                    },
                    None => None,
                };
                let timeout = match (self.timeout, stamp) {
                    (Some(after), Some(stamp)) => stamp.checked_add(after).map(|at| (at, after)),
                    _ => None,
                };
                let result = match Guarded::new(scope, timeout, f()).await {
                    Ok(result) => result.map_err(CallError::Inner),
                    Err(Cut::Timeout(after)) => Err(CallError::Timeout { after }),
                    Err(cut @ Cut::Deadline(_)) => return Err(cut.into_error()),
                };
                if let Some((breaker, admission)) = &admission {
                    let class = match &result {
                        Ok(_) => None,
                        Err(CallError::Inner(e)) => Some(breaker.classify(e)),
                        Err(CallError::Timeout { .. }) => Some(ErrorClass::Failure),
                        Err(_) => Some(ErrorClass::Ignored),
                    };
                    // (in place, then defused: see `Admission::record`)
                    admission.record(class);
                }
                if let Some((_, admission)) = admission {
                    admission.defuse();
                }
                match result {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                }
            };
            let Some(attempts) = attempts.as_mut() else {
                return Err(error);
            };
            // Inside the scope: the retry never sleeps past the deadline.
            let Some(delay) = in_scope(&scope, || attempts.next_delay(&error)) else {
                return Err(error);
            };
            let sleep = Box::pin(tokio::time::sleep(delay));
            if let Err(cut) = Guarded::new(scope, None, sleep).await {
                return Err(cut.into_error());
            }
            if needs_time {
                now = Some(Now::read());
                stamp = stamp_of(now);
            }
        }
    }

    /// Like [`execute`](Self::execute), then lets `fallback` turn the error into a value
    /// (or another error): for a cached answer or a default when the dependency is down.
    ///
    /// # Errors
    /// Whatever `fallback` returns.
    ///
    /// # Cancel safety
    /// As for [`execute`](Self::execute); `fallback` runs only once the call has ended.
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
}
