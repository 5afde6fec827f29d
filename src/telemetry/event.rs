//! The typed events palisade publishes.

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::BreakerState;
pub use crate::kind::Kind;

/// Why a circuit breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransitionReason {
    /// The failure rate reached its threshold.
    FailureRate,
    /// The slow-call rate reached its threshold.
    SlowCallRate,
    /// The open wait ran out (open -> half-open).
    Timer,
    /// Enough probes succeeded in half-open.
    ProbesSucceeded,
    /// The probes' failure or slow-call rate reached a threshold in half-open.
    ProbeFailed,
    /// Half-open lasted longer than `max_wait_in_half_open`.
    HalfOpenTimeout,
    /// A user call: `force_open`, `disable`, `metrics_only`, `reset` and the like.
    Manual,
}

impl TransitionReason {
    /// The lowercase label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionReason::FailureRate => "failure_rate",
            TransitionReason::SlowCallRate => "slow_call_rate",
            TransitionReason::Timer => "timer",
            TransitionReason::ProbesSucceeded => "probes_succeeded",
            TransitionReason::ProbeFailed => "probe_failed",
            TransitionReason::HalfOpenTimeout => "half_open_timeout",
            TransitionReason::Manual => "manual",
        }
    }
}

/// Why a call was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The breaker was open, forced open, or out of half-open probe permits.
    CircuitOpen,
    /// The rate limiter's quota was spent.
    RateLimited,
    /// The bulkhead had no permit in time.
    BulkheadFull,
    /// The bulkhead's wait queue was full.
    QueueFull,
    /// The caller's deadline did not leave time to wait for a permit.
    Deadline,
}

impl RejectReason {
    /// A small number per reason, for tables indexed by reason.
    pub(crate) fn index(self) -> usize {
        match self {
            RejectReason::CircuitOpen => 0,
            RejectReason::RateLimited => 1,
            RejectReason::BulkheadFull => 2,
            RejectReason::QueueFull => 3,
            RejectReason::Deadline => 4,
        }
    }

    /// The lowercase label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::CircuitOpen => "circuit_open",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::BulkheadFull => "bulkhead_full",
            RejectReason::QueueFull => "queue_full",
            RejectReason::Deadline => "deadline",
        }
    }
}

/// Something that happened in the runtime. Every variant is also a `tracing` event.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A circuit breaker changed state.
    BreakerTransition {
        /// The breaker's name.
        name: Arc<str>,
        /// The state it left.
        from: BreakerState,
        /// The state it entered.
        to: BreakerState,
        /// Why.
        reason: TransitionReason,
    },
    /// A primitive rejected a call or a check.
    ///
    /// Published at most once per second per primitive and reason (the first rejection of a
    /// quiet spell at once); the rejections in between are folded into the next event's
    /// `suppressed`. The `metrics` series count every rejection.
    CallRejected {
        /// The primitive's name.
        name: Arc<str>,
        /// The primitive's kind.
        kind: Kind,
        /// Why it rejected.
        reason: RejectReason,
        /// When the caller may try again, where the primitive knows.
        retry_after: Option<Duration>,
        /// `true` when the primitive runs in shadow mode: it reports but lets the call pass.
        shadow: bool,
        /// Rejections of the same primitive and reason since its previous `CallRejected`
        /// that were not published one by one.
        suppressed: u64,
    },
    /// A retry is about to sleep and try again.
    RetryAttempt {
        /// The retry's name (`"retry"` when it has none).
        name: Arc<str>,
        /// The attempt that just failed, from 1.
        attempt: u32,
        /// The backoff before the next attempt.
        delay: Duration,
        /// The failed attempt's error, as text.
        error: Arc<str>,
    },
    /// A retry gave up.
    RetryExhausted {
        /// The retry's name.
        name: Arc<str>,
        /// Attempts made.
        attempts: u32,
        /// Why it stopped: `"max_attempts"`, `"deadline"`, `"budget"` or `"not_retryable"`.
        cause: &'static str,
    },
    /// The supervisor restarted a primitive's actor after an exit it did not ask for.
    ActorRestarted {
        /// The primitive's name.
        name: Arc<str>,
        /// The primitive's kind.
        kind: Kind,
        /// How many restarts fall in the current restart window, this one included.
        restarts: u32,
        /// What ended the previous actor (panic message, handler error, or `killed`).
        cause: Arc<str>,
    },
    /// A primitive's actor exited too often inside the restart window and is left down.
    /// Its handle keeps working on its last state; timers and reconfiguration stop.
    ActorDegraded {
        /// The primitive's name.
        name: Arc<str>,
        /// The primitive's kind.
        kind: Kind,
        /// Restarts counted in the window.
        restarts: u32,
        /// The restart window.
        window: Duration,
    },
    /// A limiter's remote backend (Redis) went down or came back. While down, checks follow
    /// the limiter's fail mode (allow, deny, or a local limiter at a share of the rate).
    BackendHealth {
        /// The limiter's name.
        name: Arc<str>,
        /// `true` when the backend answers again; `false` when it stopped answering.
        healthy: bool,
        /// What was seen: the backend's error, or `recovered`.
        cause: Arc<str>,
    },
    /// A running primitive took a new configuration.
    Reconfigured {
        /// The primitive's name.
        name: Arc<str>,
        /// The primitive's kind.
        kind: Kind,
        /// What changed, in words.
        change: Arc<str>,
    },
    /// A config file was read and applied, whole (feature `config`).
    ConfigReloaded {
        /// The file.
        file: Arc<str>,
        /// Instances spawned, as `kind.name` (`breaker.db`).
        added: Arc<[Arc<str>]>,
        /// Running instances reconfigured (their windows and buckets kept).
        changed: Arc<[Arc<str>]>,
        /// Instances the file no longer declares: left running, reported.
        removed: Arc<[Arc<str>]>,
    },
    /// A config file was refused: nothing of it was applied (feature `config`).
    ConfigRejected {
        /// The file.
        file: Arc<str>,
        /// Why, with the key path (the `config::ConfigFileError` as text).
        error: Arc<str>,
    },
}

impl Event {
    /// `true` for events about single calls (rejections, retries), which travel in their
    /// own lane so that however many there are, they never push out lifecycle events
    /// (transitions, restarts, degraded actors, backend health, reconfigurations).
    pub(crate) fn is_per_call(&self) -> bool {
        matches!(
            self,
            Event::CallRejected { .. } | Event::RetryAttempt { .. } | Event::RetryExhausted { .. }
        )
    }

    /// The name of the primitive (or retry) the event is about.
    pub fn name(&self) -> &str {
        match self {
            Event::BreakerTransition { name, .. }
            | Event::CallRejected { name, .. }
            | Event::RetryAttempt { name, .. }
            | Event::RetryExhausted { name, .. }
            | Event::ActorRestarted { name, .. }
            | Event::ActorDegraded { name, .. }
            | Event::BackendHealth { name, .. }
            | Event::Reconfigured { name, .. } => name,
            Event::ConfigReloaded { file, .. } | Event::ConfigRejected { file, .. } => file,
        }
    }

    pub(crate) fn trace(&self) {
        match self {
            Event::BreakerTransition {
                name,
                from,
                to,
                reason,
            } => tracing::info!(
                target: "palisade::breaker",
                breaker = %name, from = from.as_str(), to = to.as_str(), reason = reason.as_str(),
                "circuit breaker transition"
            ),
            Event::CallRejected {
                name,
                kind,
                reason,
                retry_after,
                shadow,
                suppressed,
            } => tracing::debug!(
                target: "palisade::rejection",
                name = %name, kind = kind.as_str(), reason = reason.as_str(),
                retry_after = ?retry_after, shadow, suppressed,
                "call rejected"
            ),
            Event::RetryAttempt {
                name,
                attempt,
                delay,
                error,
            } => tracing::debug!(
                target: "palisade::retry",
                retry = %name, attempt, delay = ?delay, error = %error,
                "retrying"
            ),
            // A retry that never retried (the first attempt was not retryable, often a
            // rejection) says nothing new: debug, so a rejection flood does not log at info.
            Event::RetryExhausted {
                name,
                attempts,
                cause,
            } if *attempts <= 1 => tracing::debug!(
                target: "palisade::retry",
                retry = %name, attempts, cause,
                "retry gave up"
            ),
            Event::RetryExhausted {
                name,
                attempts,
                cause,
            } => tracing::info!(
                target: "palisade::retry",
                retry = %name, attempts, cause,
                "retry gave up"
            ),
            Event::ActorRestarted {
                name,
                kind,
                restarts,
                cause,
            } => tracing::warn!(
                target: "palisade::supervisor",
                name = %name, kind = kind.as_str(), restarts, cause = %cause,
                "actor restarted"
            ),
            Event::ActorDegraded {
                name,
                kind,
                restarts,
                window,
            } => tracing::error!(
                target: "palisade::supervisor",
                name = %name, kind = kind.as_str(), restarts, window = ?window,
                "actor exited too often; left down (degraded)"
            ),
            Event::BackendHealth {
                name,
                healthy,
                cause,
            } => {
                if *healthy {
                    tracing::info!(target: "palisade::backend", limiter = %name, cause = %cause, "limiter backend recovered");
                } else {
                    tracing::warn!(target: "palisade::backend", limiter = %name, cause = %cause, "limiter backend down; checks follow the fail mode");
                }
            }
            Event::Reconfigured { name, kind, change } => tracing::info!(
                target: "palisade::config",
                name = %name, kind = kind.as_str(), change = %change,
                "reconfigured"
            ),
            Event::ConfigReloaded {
                file,
                added,
                changed,
                removed,
            } => tracing::info!(
                target: "palisade::config",
                file = %file, added = ?added, changed = ?changed, removed = ?removed,
                "config applied"
            ),
            Event::ConfigRejected { file, error } => tracing::error!(
                target: "palisade::config",
                file = %file, error = %error,
                "config rejected; nothing applied"
            ),
        }
    }
}
