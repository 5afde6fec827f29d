//! What admission hands a call: the [`Admission`] guard behind `execute`, and the owned
//! [`BreakerPermit`] for callers that cannot hand over a closure (middleware, a response
//! body that outlives the handler).

use std::fmt;
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
    /// The state's generation (below 2^56: the state word's upper 56 bits), with
    /// [`PROBE`] set for a half-open probe and [`DISABLED`] for a call a disabled breaker
    /// let through. One word, not `bool`s of their own: a lone flag byte was stored as a
    /// byte and copied on as part of a whole word, a load the store cannot forward to (a
    /// stall on every call: benches/instructions.rs `breaker_coarse`, perf).
    tag: u64,
    /// Where the in-flight ring counted the call; `None` when it is not timed
    /// ([`CallTiming::Untimed`](super::CallTiming::Untimed), or a disabled breaker, which
    /// records nothing). One word: a third state would take a second.
    pub(super) ticket: Option<Ticket>,
    /// Clock ticks at admission.
    pub(super) start: u64,
}

/// [`Parts`]' probe flag, above any generation.
const PROBE: u64 = 1 << 63;
/// [`Parts`]' flag for a call a disabled breaker let through, above any generation.
const DISABLED: u64 = 1 << 62;

impl Parts {
    /// A call admitted under the state of `generation` (a half-open `probe` or not),
    /// counted in the in-flight ring as `ticket` at `start` (clock ticks), or not timed
    /// (`ticket` `None`).
    #[inline(always)]
    pub(super) fn new(generation: u64, probe: bool, ticket: Option<Ticket>, start: u64) -> Self {
        debug_assert!(generation < DISABLED, "a generation has 56 bits");
        Self {
            tag: generation | if probe { PROBE } else { 0 },
            ticket,
            start,
        }
    }

    /// A call a disabled breaker let through: nothing is recorded.
    pub(super) fn disabled(generation: u64) -> Self {
        debug_assert!(generation < DISABLED, "a generation has 56 bits");
        Self {
            tag: generation | DISABLED,
            ticket: None,
            start: 0,
        }
    }

    /// The generation of the state that admitted the call.
    #[inline(always)]
    pub(super) fn generation(&self) -> u64 {
        self.tag & !(PROBE | DISABLED)
    }

    /// `true` for a call a disabled breaker let through.
    #[inline(always)]
    pub(super) fn is_disabled(&self) -> bool {
        self.tag & DISABLED != 0
    }

    /// `true` for a half-open probe.
    #[inline(always)]
    pub(super) fn probe(&self) -> bool {
        self.tag & PROBE != 0
    }
}

/// A rejection as admission returns it: the rejecting state and the retry hint (already
/// counted and reported). Small and `Copy`, so the admission's `Result` stays in registers;
/// [`BreakerShared::rejected`] names it once a caller needs the public error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rejection {
    pub(super) state: BreakerState,
    pub(super) retry_after: Option<Duration>,
}

impl Rejection {
    pub(super) fn new(state: BreakerState, retry_after: Option<Duration>) -> Self {
        Self { state, retry_after }
    }
}

/// An admitted call inside `execute`: where to record its outcome. It borrows the breaker
/// (no reference count touched on the hot path); dropped without an outcome, it counts the
/// call as cancelled.
#[derive(Debug)]
pub(crate) struct Admission<'a> {
    shared: &'a BreakerShared,
    parts: Parts,
}

impl<'a> Admission<'a> {
    #[inline(always)]
    pub(super) fn new(shared: &'a BreakerShared, parts: Parts) -> Self {
        Self { shared, parts }
    }

    /// Records how the call ended (`class` is `None` for `Ok`) where the guard lies, for a
    /// caller that then [`defuse`](Self::defuse)s it at once. (A method taking the guard
    /// by value made the compiler copy it out of an `async` fn's state first: 48 bytes
    /// loaded straight after they were stored when the call was ready at once, a
    /// store-forwarding stall.) `BreakerShared::complete` never panics, so no drop can run
    /// between the two and count the call again as abandoned.
    #[inline(always)]
    pub(crate) fn record(&self, class: Option<ErrorClass>) {
        self.shared.complete(&self.parts, class);
    }

    /// Forgets a guard whose outcome is [`record`](Self::record)ed: the drop that would
    /// count it abandoned must not run (a borrow has nothing else to drop).
    #[inline(always)]
    pub(crate) fn defuse(self) {
        std::mem::forget(self);
    }

    /// The admission's numbers, the guard defused (a permit takes them over).
    fn into_parts(self) -> Parts {
        std::mem::ManuallyDrop::new(self).parts
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.shared.abandon(&self.parts);
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
    /// `None` once the outcome is recorded.
    shared: Option<Arc<BreakerShared>>,
    parts: Parts,
}

impl BreakerPermit {
    pub(super) fn new(admission: Admission<'_>, shared: Arc<BreakerShared>) -> Self {
        Self {
            parts: admission.into_parts(),
            shared: Some(shared),
        }
    }

    fn finish(mut self, class: Option<ErrorClass>) {
        if let Some(shared) = self.shared.take() {
            shared.complete(&self.parts, class);
        }
    }

    /// The call succeeded.
    pub fn success(self) {
        self.finish(None);
    }

    /// The call failed: it counts toward the failure rate.
    pub fn failure(self) {
        self.finish(Some(ErrorClass::Failure));
    }

    /// The call ended in a way that says nothing about the dependency: it is not counted
    /// (a half-open probe slot is given back).
    pub fn ignored(self) {
        self.finish(Some(ErrorClass::Ignored));
    }

    /// Records an outcome as [`Breaker::execute`](crate::Breaker::execute) would: `Ok` is
    /// a success, an `Err` counts as the breaker's classifier says (a failure without one).
    pub fn record<T, E: std::any::Any>(self, result: &Result<T, E>) {
        let class = match (result, &self.shared) {
            (Ok(_), _) | (Err(_), None) => None,
            (Err(e), Some(shared)) => Some(shared.classify(e)),
        };
        self.finish(class);
    }

    /// The name of the breaker that admitted the call.
    pub fn breaker_name(&self) -> &str {
        self.shared.as_ref().map_or("", |s| &s.name)
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.abandon(&self.parts);
        }
    }
}

impl fmt::Debug for BreakerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("breaker", &self.breaker_name())
            .field("probe", &self.parts.probe())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_the_generation_and_the_probe_flag_apart() {
        // the largest generation the state word carries (56 bits), and the smallest
        for generation in [0, 1, (1 << 56) - 1] {
            for probe in [false, true] {
                let parts = Parts::new(generation, probe, None, 7);
                assert_eq!(
                    (
                        parts.generation(),
                        parts.probe(),
                        parts.is_disabled(),
                        parts.start
                    ),
                    (generation, probe, false, 7)
                );
            }
            let parts = Parts::disabled(generation);
            assert_eq!(
                (parts.generation(), parts.probe(), parts.is_disabled()),
                (generation, false, true)
            );
        }
    }
}
