//! What a check answers while the backend is down: the limiter's [`FailMode`].

use std::sync::Arc;

use metrics::Counter;

use super::config::FailMode;
use crate::limiter::decision::Decision;
use crate::telemetry::metrics as m;

/// Applies the fail mode and counts every check it decides
/// (`palisade_limiter_backend_fallbacks_total{name, mode}`).
#[derive(Debug)]
pub(crate) struct Fallback {
    mode: FailMode,
    counted: Counter,
}

impl Fallback {
    pub(crate) fn new(name: &Arc<str>, mode: FailMode) -> Self {
        let label = match mode {
            FailMode::Open => "fail_open",
            FailMode::Closed => "fail_closed",
            FailMode::Local { .. } => "local",
        };
        Self {
            mode,
            counted: metrics::counter!(m::LIMITER_BACKEND_FALLBACKS, "name" => name.to_string(), "mode" => label),
        }
    }

    /// The decision for a check while the backend is down. `local` checks the local
    /// limiter at a share (percent) of the global rate.
    pub(crate) fn decide(&self, retry_after: u64, local: impl FnOnce(u32) -> Decision) -> Decision {
        self.counted.increment(1);
        match self.mode {
            FailMode::Open => Decision::Allowed {
                remaining: 0,
                reset_after: 0,
            },
            FailMode::Closed => Decision::BackendDown { retry_after },
            FailMode::Local { percent } => local(percent),
        }
    }
}
