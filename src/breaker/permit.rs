//! What admission hands a call: the [`Admission`] guard behind `execute`, and the owned
//! [`BreakerPermit`] for callers that cannot hand over a closure (middleware, a response
//! body that outlives the handler).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::config::ErrorClass;
use super::inflight::Ticket;
use super::state::BreakerShared;
use super::BreakerState;
use crate::error::CallError;

/// The numbers of an admission: the state's generation, whether it is a half-open probe,
/// where the in-flight ring counted it, and when it started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parts {
    pub(super) generation: u64,
    pub(super) probe: bool,
    /// `None` when the breaker is disabled: nothing is recorded.
    pub(super) ticket: Option<Ticket>,
    /// Clock ticks at admission.
    pub(super) start: u64,
}

/// An admitted call: where to record its outcome. `S` is how it holds the breaker: a
/// borrow inside `execute` (no reference count touched), an `Arc` in a [`BreakerPermit`].
/// Dropped without an outcome, it counts the call as cancelled.
#[derive(Debug)]
pub(crate) struct Admission<S: Deref<Target = BreakerShared>> {
    shared: S,
    parts: Parts,
    /// Set once the outcome is recorded (or the admission moved): the drop does nothing.
    done: bool,
}

impl<S: Deref<Target = BreakerShared>> Admission<S> {
    #[inline(always)]
    pub(super) fn new(shared: S, parts: Parts) -> Self {
        Self {
            shared,
            parts,
            done: false,
        }
    }

    /// Records how the call ended. `class` is `None` for `Ok`.
    #[inline]
    pub(crate) fn complete(mut self, class: Option<ErrorClass>) {
        self.done = true;
        self.shared.complete(&self.parts, class);
    }

    /// The same admission held another way (a borrow made owned, for a permit).
    fn rehold<T: Deref<Target = BreakerShared>>(mut self, shared: T) -> Admission<T> {
        self.done = true;
        Admission::new(shared, self.parts)
    }
}

impl<S: Deref<Target = BreakerShared>> Drop for Admission<S> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.shared.abandon(&self.parts);
        }
    }
}

/// A breaker's admission of one call, for callers that record the outcome themselves
/// (middleware whose downstream answers `Ok(response)` with a 500, a permit held across a
/// response body). From [`Breaker::try_acquire`](crate::Breaker::try_acquire).
///
/// Record the outcome with [`success`](Self::success), [`failure`](Self::failure) or
/// [`ignored`](Self::ignored) (or [`record`](Self::record) to let the breaker's classifier
/// decide). Slow-call timing runs from the acquire to the record. A permit dropped without
/// an outcome counts the call as cancelled (never as a failure; as slow when it had run
/// `slow_call_duration`) and gives back its half-open probe slot. `Send + 'static`: it can
/// move into a spawned task or a response body.
pub struct BreakerPermit {
    admission: Admission<Arc<BreakerShared>>,
}

impl BreakerPermit {
    pub(super) fn new(admission: Admission<&BreakerShared>, shared: Arc<BreakerShared>) -> Self {
        Self {
            admission: admission.rehold(shared),
        }
    }

    /// The call succeeded.
    pub fn success(self) {
        self.admission.complete(None);
    }

    /// The call failed: it counts toward the failure rate.
    pub fn failure(self) {
        self.admission.complete(Some(ErrorClass::Failure));
    }

    /// The call ended in a way that says nothing about the dependency: it is not counted
    /// (a half-open probe slot is given back).
    pub fn ignored(self) {
        self.admission.complete(Some(ErrorClass::Ignored));
    }

    /// Records an outcome as [`Breaker::execute`](crate::Breaker::execute) would: `Ok` is
    /// a success, an `Err` counts as the breaker's classifier says (a failure without one).
    pub fn record<T, E: std::any::Any>(self, result: &Result<T, E>) {
        let class = match result {
            Ok(_) => None,
            Err(e) => Some(self.admission.shared.classify(e)),
        };
        self.admission.complete(class);
    }

    /// The name of the breaker that admitted the call.
    pub fn breaker_name(&self) -> &str {
        &self.admission.shared.name
    }
}

impl fmt::Debug for BreakerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("breaker", &self.admission.shared.name)
            .field("probe", &self.admission.parts.probe)
            .finish()
    }
}

/// A circuit breaker did not admit a call: the rejection
/// [`Breaker::try_acquire`](crate::Breaker::try_acquire) returns. It converts into
/// [`CallError::CircuitOpen`] with the same fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(name, *state, *retry_after))]
#[non_exhaustive]
pub struct BreakerRejected {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The state that rejected the call: open, half-open (every probe permit taken) or
    /// forced open.
    pub state: BreakerState,
    /// When to try again (see [`CallError::CircuitOpen`]); `None` when forced open.
    pub retry_after: Option<Duration>,
}

impl<E> From<BreakerRejected> for CallError<E> {
    #[inline]
    fn from(r: BreakerRejected) -> Self {
        CallError::CircuitOpen {
            name: r.name,
            state: r.state,
            retry_after: r.retry_after,
        }
    }
}

/// The words of a breaker's rejection (shared with [`CallError`]'s `Display`).
pub(crate) fn describe(name: &str, state: BreakerState, retry_after: Option<Duration>) -> String {
    let what = match state {
        BreakerState::HalfOpen => "is half-open and every probe permit is taken",
        BreakerState::ForcedOpen => "is forced open",
        _ => "is open",
    };
    match (state, retry_after) {
        (BreakerState::ForcedOpen, _) | (_, None) => format!("circuit breaker `{name}` {what}"),
        (_, Some(d)) => format!("circuit breaker `{name}` {what}; retry after {d:?}"),
    }
}
