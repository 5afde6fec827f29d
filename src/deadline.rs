//! Deadlines that propagate: a task-local time limit that every palisade wait respects.
//!
//! [`within`] sets a deadline for a future and everything it awaits. An inner scope can
//! shorten the deadline but never extend it: the effective deadline is the earliest of all
//! enclosing scopes. Bulkhead waits, limiter waits and retry backoffs read [`remaining`] and
//! never wait past it. To carry the budget across a service boundary, send
//! [`header_value`] as [`HEADER`] (or [`grpc_timeout`] as `grpc-timeout`) and open a scope
//! from [`parse_header`] / [`parse_grpc_timeout`] on the other side.
//!
//! The deadline is task-local: a task spawned inside the scope starts without one unless it
//! is spawned with [`spawn`] (or its future wrapped with [`propagate`]).
//!
//! Inside a per-attempt timeout ([`Policy::timeout`](crate::Policy::timeout),
//! [`timeout`](crate::policy::timeout)) the deadline a call sees is the earlier of the two,
//! so the header it sends downstream never promises more time than the attempt has. A
//! budget already spent makes no call: nothing goes downstream carrying a zero budget.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::{Instant, Stamp};

tokio::task_local! {
    static SCOPE: Scope;
}

/// The effective deadline of a scope and the budget it was opened with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope {
    deadline: Stamp,
    budget: Duration,
}

/// The header that carries the remaining budget in whole milliseconds.
pub const HEADER: &str = "x-deadline-remaining";

/// The deadline of a [`within`] scope ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded (budget {budget:?})")]
pub struct DeadlineExceeded {
    /// The budget of the scope whose deadline ran out.
    pub budget: Duration,
}

/// A deadline header could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {header} value `{value}`: {problem}")]
pub struct HeaderError {
    /// The header being parsed.
    pub header: &'static str,
    /// The value as received, cut to its first 64 bytes (with how many more there were)
    /// and its control characters escaped.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Runs `fut` with a deadline `budget` from now, or the enclosing deadline if that is
/// earlier. Drops `fut` and returns `Err(DeadlineExceeded)` when the deadline passes; when
/// it has already passed (a zero budget, a spent enclosing scope), `fut` is never polled.
///
/// # Cancel safety
/// As cancel safe as `fut`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use palisade::deadline;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let inner_left = deadline::within(Duration::from_millis(100), async {
///     // an inner scope cannot extend the outer one
///     deadline::within(Duration::from_secs(10), async { deadline::remaining() }).await
/// }).await;
/// assert!(inner_left.unwrap().unwrap().unwrap() <= Duration::from_millis(100));
///
/// let slow = deadline::within(Duration::from_millis(20), tokio::time::sleep(Duration::from_secs(5))).await;
/// assert!(slow.is_err());
/// # }
/// ```
pub async fn within<F: Future>(budget: Duration, fut: F) -> Result<F::Output, DeadlineExceeded> {
    run_in(Scope::narrowed(budget), fut).await
}

/// Runs `fut` inside `scope`, dropping it when the scope's deadline passes. A deadline
/// already passed never polls `fut` (a spent budget makes no call).
async fn run_in<F: Future>(scope: Scope, fut: F) -> Result<F::Output, DeadlineExceeded> {
    if scope.is_spent_at(Stamp::now()) {
        return Err(DeadlineExceeded {
            budget: scope.budget,
        });
    }
    Guarded::new(Some(scope), None, fut)
        .await
        .map_err(|_| DeadlineExceeded {
            budget: scope.budget,
        })
}

impl Scope {
    /// The scope for a new budget: the earlier of now + budget and the enclosing deadline.
    pub(crate) fn narrowed(budget: Duration) -> Scope {
        Self::narrowed_at(budget, Stamp::now())
    }

    /// `true` when the deadline has passed at `now` (nothing started then may run).
    #[inline]
    pub(crate) fn is_spent_at(&self, now: Stamp) -> bool {
        self.deadline <= now
    }

    /// The budget this scope was opened with.
    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    /// This scope seen from inside a timeout ending `at`: the earlier of the two, so what a
    /// call reads ([`remaining`], the headers it sends downstream) never promises more time
    /// than its timeout leaves. `after` is the budget reported for a scope made of the
    /// timeout alone.
    fn within_timeout(scope: Option<Scope>, at: Stamp, after: Duration) -> Scope {
        match scope {
            Some(s) if s.deadline <= at => s,
            Some(s) => Scope {
                deadline: at,
                budget: s.budget,
            },
            None => Scope {
                deadline: at,
                budget: after,
            },
        }
    }

    /// [`narrowed`](Self::narrowed) with the time already read.
    pub(crate) fn narrowed_at(budget: Duration, now: Stamp) -> Scope {
        // A budget too large to add to now is as good as none.
        let mine = now
            .checked_add(budget)
            .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365 * 30)))
            .unwrap_or(now);
        match SCOPE.try_with(|s| *s) {
            Ok(outer) if outer.deadline <= mine => outer,
            _ => Scope {
                deadline: mine,
                budget,
            },
        }
    }
}

/// Runs `f` with the task-local deadline set to `scope` (as is) when there is one. By
/// reference: a caller's scope is read where it lies and copied only when there is one
/// (copied whole on every poll of [`Guarded`], its words were loaded straight after `new`
/// stored them in halves: a store-forwarding stall per call, benches/composed_rounds.rs).
#[inline]
pub(crate) fn in_scope<R>(scope: &Option<Scope>, f: impl FnOnce() -> R) -> R {
    match scope {
        Some(scope) => SCOPE.sync_scope(*scope, f),
        None => f(),
    }
}

/// Why a [`Guarded`] future was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The deadline scope's deadline passed; its budget.
    Deadline(Duration),
    /// The per-attempt timeout passed; its length.
    Timeout(Duration),
}

impl Cut {
    /// The policy's error for it.
    pub(crate) fn into_error<E>(self) -> crate::error::CallError<E> {
        match self {
            Cut::Deadline(budget) => crate::error::CallError::DeadlineExceeded { budget },
            Cut::Timeout(after) => crate::error::CallError::Timeout { after },
        }
    }
}

pin_project_lite::pin_project! {
    /// The one time limit of palisade: runs `fut` inside a deadline scope (if any; the
    /// task-local is set around each poll, so `fut` is never moved into another future), cut
    /// off at the deadline or at a timeout, whichever comes first (the timeout on a tie).
    /// With a timeout, the scope `fut` sees ends at the timeout when that is earlier, so the
    /// deadline a call reads or sends downstream is never later than its own cut.
    /// Like `tokio::time::timeout` it polls before it checks the time, but it arms a timer
    /// only after a first poll that did not finish: a call that completes at once never
    /// touches tokio's timer wheel nor reads tokio's clock. `within`, `timeout` and every
    /// await of the policy go through it.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Guarded<F> {
        #[pin]
        fut: F,
        scope: Option<Scope>,
        timeout: Option<(Stamp, Duration)>,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F> Guarded<F> {
    pub(crate) fn new(scope: Option<Scope>, timeout: Option<(Stamp, Duration)>, fut: F) -> Self {
        let scope = match timeout {
            Some((at, after)) => Some(Scope::within_timeout(scope, at, after)),
            None => scope,
        };
        Self {
            fut,
            scope,
            timeout,
            sleep: None,
        }
    }

    /// The earliest limit and what it is (the timeout on a tie: a scope ending at the
    /// timeout is the timeout's).
    fn limit(&self) -> Option<(Stamp, Cut)> {
        let deadline = self.scope.map(|s| (s.deadline, Cut::Deadline(s.budget)));
        let timeout = self.timeout.map(|(at, after)| (at, Cut::Timeout(after)));
        match (deadline, timeout) {
            (Some(d), Some(t)) => Some(if t.0 <= d.0 { t } else { d }),
            (d, t) => d.or(t),
        }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, Cut>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.as_mut().project();
        let fut = this.fut;
        if let Poll::Ready(v) = in_scope(this.scope, || fut.poll(cx)) {
            return Poll::Ready(Ok(v));
        }
        let Some((at, cut)) = self.limit() else {
            return Poll::Pending;
        };
        let sleep = self
            .project()
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.to_instant())));
        sleep.as_mut().poll(cx).map(|()| Err(cut))
    }
}

/// The current task's effective deadline, if it runs inside a [`within`] scope.
pub fn current() -> Option<Instant> {
    SCOPE.try_with(|s| s.deadline.to_instant()).ok()
}

/// Time left until the current deadline (zero once it has passed); `None` with no deadline.
pub fn remaining() -> Option<Duration> {
    SCOPE
        .try_with(|s| s.deadline)
        .ok()
        .map(|d| d.saturating_duration_since(Stamp::now()))
}

/// The budget of the current scope, for error reports.
pub(crate) fn budget() -> Option<Duration> {
    SCOPE.try_with(|s| s.budget).ok()
}

/// `true` when a deadline is set and has passed.
pub fn is_expired() -> bool {
    remaining().is_some_and(|r| r.is_zero())
}

/// Wraps `fut` so it runs under the current task's deadline wherever it is polled (another
/// task, a `join_all`...). Without a current deadline `fut` runs without one.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use palisade::deadline;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let answer = deadline::within(Duration::from_secs(2), async {
///     // the outgoing request carries what is left of the budget
///     let header = deadline::header_value().expect("a deadline is set");
///     assert!(deadline::parse_header(&header)? <= Duration::from_secs(2));
///     // a spawned task keeps the caller's deadline when its future is propagated
///     let child = tokio::spawn(deadline::propagate(async { deadline::remaining() }));
///     let inherited = child.await??.expect("the task sees the deadline");
///     assert!(inherited <= Duration::from_secs(2));
///     Ok::<_, Box<dyn std::error::Error>>(header)
/// })
/// .await??;
/// assert!(!answer.is_empty());
/// # Ok(()) }
/// ```
pub fn propagate<F: Future>(fut: F) -> impl Future<Output = Result<F::Output, DeadlineExceeded>> {
    let scope = SCOPE.try_with(|s| *s).ok();
    async move {
        match scope {
            Some(scope) => run_in(scope, fut).await,
            None => Ok(fut.await),
        }
    }
}

/// `tokio::spawn` that carries the current deadline into the new task.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<Result<F::Output, DeadlineExceeded>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(propagate(fut))
}

/// The remaining budget as an [`HEADER`] value: whole milliseconds, rounded down.
/// `None` without a deadline.
pub fn header_value() -> Option<String> {
    remaining().map(|r| r.as_millis().to_string())
}

/// Parses an [`HEADER`] value (whole milliseconds, ASCII digits, at most 30 days).
///
/// # Errors
/// [`HeaderError`] for an empty, non-numeric, negative or out-of-range value.
pub fn parse_header(value: &str) -> Result<Duration, HeaderError> {
    let err = |problem| HeaderError {
        header: HEADER,
        value: crate::error::echo(value),
        problem,
    };
    let v = value.trim();
    if v.is_empty() {
        return Err(err("empty"));
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("expected whole milliseconds as ASCII digits"));
    }
    let ms: u64 = v.parse().map_err(|_| err("too large"))?;
    if ms > 30 * 86_400_000 {
        return Err(err("more than 30 days"));
    }
    Ok(Duration::from_millis(ms))
}

/// A duration in the gRPC `grpc-timeout` format: at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`), choosing the finest unit that fits, rounding up so the
/// receiver never gets more than was left.
pub fn grpc_timeout(d: Duration) -> String {
    let nanos = d.as_nanos();
    const MAX: u128 = 99_999_999;
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let v = nanos.div_ceil(per);
        if v <= MAX {
            return format!("{v}{unit}");
        }
    }
    format!("{MAX}H")
}

/// The remaining budget in the `grpc-timeout` format; `None` without a deadline.
pub fn grpc_header_value() -> Option<String> {
    remaining().map(grpc_timeout)
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits followed by one of `H M S m u n`.
///
/// # Errors
/// [`HeaderError`] naming the problem.
pub fn parse_grpc_timeout(value: &str) -> Result<Duration, HeaderError> {
    let err = |problem| HeaderError {
        header: "grpc-timeout",
        value: crate::error::echo(value),
        problem,
    };
    let Some(unit) = value.chars().last() else {
        return Err(err("empty"));
    };
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("expected 1 to 8 ASCII digits before the unit"));
    }
    let v: u64 = digits.parse().map_err(|_| err("not a number"))?;
    Ok(match unit {
        'H' => Duration::from_secs(v * 3600),
        'M' => Duration::from_secs(v * 60),
        'S' => Duration::from_secs(v),
        'm' => Duration::from_millis(v),
        'u' => Duration::from_micros(v),
        'n' => Duration::from_nanos(v),
        _ => return Err(err("unit must be one of H M S m u n")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "test-util")]
    mod guarded {
        use super::super::*;
        use std::future::pending;

        const SEC: Duration = Duration::from_secs(1);

        fn at(after: Duration) -> Option<(Stamp, Duration)> {
            Some((Stamp::now().checked_add(after).expect("in range"), after))
        }

        #[tokio::test(start_paused = true)]
        async fn a_ready_future_passes_and_sees_the_scope() {
            let scope = Some(Scope::narrowed(5 * SEC));
            let left = Guarded::new(scope, at(SEC), async { remaining() }).await;
            assert_eq!(
                left,
                Ok(Some(SEC)),
                "the timeout is the earlier: it is what is left"
            );
            let left = Guarded::new(scope, at(9 * SEC), async { remaining() }).await;
            assert_eq!(left, Ok(Some(5 * SEC)));
            assert_eq!(
                Guarded::new(None, None, async { remaining() }).await,
                Ok(None)
            );
        }

        #[tokio::test(start_paused = true)]
        async fn the_earlier_limit_cuts_and_the_timeout_wins_a_tie() {
            let start = Instant::now();
            let cut = Guarded::new(Some(Scope::narrowed(2 * SEC)), at(SEC), pending::<()>()).await;
            assert_eq!(cut, Err(Cut::Timeout(SEC)));
            assert_eq!(start.elapsed(), SEC);

            let start = Instant::now();
            let cut = Guarded::new(Some(Scope::narrowed(SEC)), at(3 * SEC), pending::<()>()).await;
            assert_eq!(cut, Err(Cut::Deadline(SEC)));
            assert_eq!(start.elapsed(), SEC);

            let cut = Guarded::new(Some(Scope::narrowed(SEC)), at(SEC), pending::<()>()).await;
            assert_eq!(cut, Err(Cut::Timeout(SEC)));

            let start = Instant::now();
            let done = Guarded::new(None, None, tokio::time::sleep(7 * SEC)).await;
            assert_eq!(
                (done, start.elapsed()),
                (Ok(()), 7 * SEC),
                "no limit, no cut"
            );
        }
    }

    #[test]
    fn header_parse_accepts_digits_only() {
        assert_eq!(parse_header("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_header(" 0 "), Ok(Duration::ZERO));
        for bad in [
            "",
            "-5",
            "1.5",
            "abc",
            "99999999999999999999999",
            "2592000001",
        ] {
            let e = parse_header(bad).expect_err(bad);
            assert_eq!(e.header, HEADER);
        }
    }

    #[test]
    fn grpc_round_trip_never_grows() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::from_secs(100),
            Duration::from_secs(86_400 * 3),
            Duration::from_nanos(123_456_789_012),
        ] {
            let s = grpc_timeout(d);
            let back = parse_grpc_timeout(&s).expect("own format parses");
            assert!(back >= d, "{d:?} -> {s} -> {back:?}");
            assert!(s.len() <= 9);
        }
        assert_eq!(grpc_timeout(Duration::from_millis(250)), "250000u");
        assert_eq!(grpc_timeout(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(parse_grpc_timeout("5S"), Ok(Duration::from_secs(5)));
        for bad in ["", "S", "123456789S", "10x", "1.5S", "-1S"] {
            assert!(parse_grpc_timeout(bad).is_err(), "{bad}");
        }
    }
}
