//! Turning decisions into answers, metrics and events; shadow mode lives here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;

use super::decision::{Allowed, Decision, Denied};
use crate::telemetry::{metrics as m, Event, Kind, RejectReason, Telemetry};

/// Counts decisions (`palisade_rate_limit_total{name, decision}`, never a per-key label) and
/// publishes denials. Allowed checks only count.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub(crate) name: Arc<str>,
    pub(crate) telemetry: Telemetry,
    shadow: AtomicBool,
    allowed: Counter,
    denied: Counter,
    shadow_denied: Counter,
}

impl Reporter {
    pub(crate) fn new(name: Arc<str>, telemetry: Telemetry, shadow: bool) -> Self {
        let counter = |decision: &'static str| metrics::counter!(m::RATE_LIMIT, "name" => name.to_string(), "decision" => decision);
        Self {
            allowed: counter("allowed"),
            denied: counter("denied"),
            shadow_denied: counter("shadow_denied"),
            shadow: AtomicBool::new(shadow),
            telemetry,
            name,
        }
    }

    pub(crate) fn set_shadow(&self, on: bool) {
        self.shadow.store(on, Ordering::Release);
    }

    /// The answer for a decision. In shadow mode a denial is reported and then allowed.
    ///
    /// An admission is answered inline; anything else goes out of line, so the admitted
    /// path stays a few instructions in the caller.
    #[inline]
    pub(crate) fn account(&self, decision: Decision) -> Result<Allowed, Denied> {
        if let Decision::Allowed {
            remaining,
            reset_after,
        } = decision
        {
            self.allowed.increment(1);
            return Ok(Allowed {
                remaining,
                reset_after: Duration::from_nanos(reset_after),
            });
        }
        self.refuse(decision)
    }

    /// [`account`](Self::account) for everything but an admission.
    #[cold]
    #[inline(never)]
    fn refuse(&self, decision: Decision) -> Result<Allowed, Denied> {
        match decision.into_result() {
            Ok(a) => Ok(a),
            Err(d) => self.deny(d),
        }
    }

    /// Reports a denial (a decision, or a key whose quota could not be resolved).
    pub(crate) fn deny(&self, d: Denied) -> Result<Allowed, Denied> {
        let shadow = self.shadow.load(Ordering::Relaxed);
        if shadow {
            &self.shadow_denied
        } else {
            &self.denied
        }
        .increment(1);
        if self.telemetry.has_subscribers() {
            self.telemetry.emit(Event::CallRejected {
                name: Arc::clone(&self.name),
                kind: Kind::Limiter,
                reason: RejectReason::RateLimited,
                retry_after: Some(d.retry_after),
                shadow,
            });
        }
        if shadow {
            Ok(Allowed {
                remaining: 0,
                reset_after: d.reset_after,
            })
        } else {
            Err(d)
        }
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
