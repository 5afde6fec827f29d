//! Turning decisions into answers, metrics and events; shadow mode lives here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::decision::{Allowed, Decision, Denied};
use crate::clock::duration_nanos;
use crate::kind::Kind;
use crate::telemetry::{metrics as m, Event, RejectReason, RejectionGate, Tally, Telemetry};

/// Where each decision is counted in the tally.
const ALLOWED: usize = 0;
const DENIED: usize = 1;
const SHADOW_DENIED: usize = 2;

/// Counts decisions (`palisade_rate_limit_total{name, decision}`, never a per-key label) and
/// publishes denials. Allowed checks only count.
///
/// Counts go to a per-thread [`Tally`] that the limiter's actor flushes into the counters
/// (every second and when it stops): with a recorder installed a shared counter would be a
/// locked add on one cache line behind every check.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub(crate) name: Arc<str>,
    pub(crate) telemetry: Telemetry,
    rejections: RejectionGate,
    shadow: AtomicBool,
    decisions: Tally<3>,
}

impl Reporter {
    pub(crate) fn new(name: Arc<str>, telemetry: Telemetry, shadow: bool) -> Self {
        let counter = |decision: &'static str| metrics::counter!(m::RATE_LIMIT, "name" => name.to_string(), "decision" => decision);
        Self {
            decisions: Tally::new([
                counter("allowed"),
                counter("denied"),
                counter("shadow_denied"),
            ]),
            shadow: AtomicBool::new(shadow),
            rejections: RejectionGate::default(),
            telemetry,
            name,
        }
    }

    /// Decisions since spawn: (allowed, denied with shadow denials).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let denied = self
            .decisions
            .total(DENIED)
            .wrapping_add(self.decisions.total(SHADOW_DENIED));
        (self.decisions.total(ALLOWED), denied)
    }

    /// Moves the decisions counted so far into the `metrics` counters (the actor's job).
    pub(crate) fn flush(&self) {
        self.decisions.flush();
    }

    pub(crate) fn set_shadow(&self, on: bool) {
        self.shadow.store(on, Ordering::Release);
    }

    /// The answer for a decision. In shadow mode a denial is reported and then allowed.
    ///
    /// An admission and a plain denial are answered inline, so a caller that only asks
    /// `is_ok()` keeps none of the answer's arithmetic; counting and publishing a denial,
    /// and every rarer decision, go out of line (inlined, that work slowed the caller's
    /// loop). The denial's fields are built here from the decision's numbers, never copied
    /// whole from memory written field by field (a store-forwarding stall).
    #[inline]
    pub(crate) fn account(&self, decision: Decision) -> Result<Allowed, Denied> {
        match decision {
            Decision::Allowed {
                remaining,
                reset_after,
            } => {
                self.decisions.add(ALLOWED);
                Ok(Allowed {
                    remaining,
                    reset_after: Duration::from_nanos(reset_after),
                })
            }
            Decision::Denied {
                retry_after,
                remaining,
                reset_after,
            } => {
                let reset_after = Duration::from_nanos(reset_after);
                if self.count_denial(retry_after) {
                    return Ok(Allowed {
                        remaining: 0,
                        reset_after,
                    });
                }
                Err(Denied::exhausted(retry_after, remaining, reset_after))
            }
            _ => self.refuse(decision),
        }
    }

    /// [`account`](Self::account) for decisions other than an admission or a plain denial.
    #[cold]
    #[inline(never)]
    fn refuse(&self, decision: Decision) -> Result<Allowed, Denied> {
        match decision.into_result() {
            Ok(a) => Ok(a),
            Err(d) => {
                if self.count_denial(duration_nanos(d.retry_after)) {
                    Ok(Allowed {
                        remaining: 0,
                        reset_after: d.reset_after,
                    })
                } else {
                    Err(d)
                }
            }
        }
    }

    /// Counts and publishes a denial due to be retried in `retry_after` nanoseconds;
    /// `true` in shadow mode (the check is then allowed).
    ///
    /// Every call it makes is its last act (a thread's first count leases a stripe, an
    /// observed denial is published), so it keeps few values across calls: three
    /// registers saved where it saved five. It runs on every denial.
    #[inline(never)]
    fn count_denial(&self, retry_after: u64) -> bool {
        match crate::telemetry::leased_stripe() {
            Some(stripe) => self.count_denial_on(stripe, retry_after),
            None => self.count_first_denial(retry_after),
        }
    }

    /// [`count_denial`](Self::count_denial) on a thread that has counted nothing yet: its
    /// stripe is leased first.
    #[cold]
    #[inline(never)]
    fn count_first_denial(&self, retry_after: u64) -> bool {
        self.count_denial_on(crate::telemetry::thread_stripe(), retry_after)
    }

    /// [`count_denial`](Self::count_denial) on the calling thread's `stripe`.
    #[inline(always)]
    fn count_denial_on(&self, stripe: usize, retry_after: u64) -> bool {
        let shadow = self.shadow.load(Ordering::Relaxed);
        self.decisions
            .add_on(stripe, if shadow { SHADOW_DENIED } else { DENIED });
        if self.telemetry.may_observe_rejections() {
            return self.observe_denial(retry_after, shadow);
        }
        shadow
    }

    /// The rejection event when someone observes the denial, unless folded into a later
    /// one. Returns `shadow`.
    #[cold]
    #[inline(never)]
    fn observe_denial(&self, retry_after: u64, shadow: bool) -> bool {
        if !self.telemetry.observes_rejections() {
            return shadow;
        }
        if let Some(suppressed) = self.rejections.pass(RejectReason::RateLimited) {
            self.telemetry.emit(Event::CallRejected {
                name: Arc::clone(&self.name),
                kind: Kind::Limiter,
                reason: RejectReason::RateLimited,
                retry_after: Some(Duration::from_nanos(retry_after)),
                shadow,
                suppressed,
            });
        }
        shadow
    }
}

/// Waits until `check` admits, never past the task's deadline: a denial whose
/// `retry_after` does not fit in the time left is returned at once.
pub(crate) async fn until_ready<F, Fut>(mut check: F) -> Result<Allowed, Denied>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Allowed, Denied>>,
{
    use super::DenyReason::{BackendDown, Exhausted};
    loop {
        match check().await {
            Ok(a) => return Ok(a),
            Err(d) if !matches!(d.reason, Exhausted | BackendDown) => return Err(d),
            Err(d) => {
                if crate::deadline::remaining().is_some_and(|left| left < d.retry_after) {
                    return Err(d);
                }
                // tokio's timer rounds up to whole milliseconds; never sleep zero.
                tokio::time::sleep(d.retry_after.max(Duration::from_nanos(1))).await;
            }
        }
    }
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    fn denial() -> Decision {
        Decision::Denied {
            retry_after: 1_000,
            remaining: 0,
            reset_after: 2_000,
        }
    }

    #[test]
    fn a_denial_is_counted_on_a_thread_whose_first_count_it_is_and_after() {
        let report = Reporter::new(Arc::from("report-unit"), Telemetry::new(16), false);
        // a fresh thread: its first count leases its stripe (the out-of-line path)
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(report.account(denial()).is_err());
                assert!(report.account(denial()).is_err());
            });
        });
        assert_eq!(report.counts(), (0, 2));
        // shadow mode: counted apart, and the check is allowed
        report.shadow.store(true, Ordering::Relaxed);
        std::thread::scope(|s| {
            s.spawn(|| assert!(report.account(denial()).is_ok()));
        });
        assert_eq!(report.counts(), (0, 3));
        assert_eq!(report.decisions.total(SHADOW_DENIED), 1);
    }
}
