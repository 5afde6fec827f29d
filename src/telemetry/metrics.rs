//! Metric names: every series palisade records, in one place.
//!
//! palisade writes through the [`metrics`] facade and never installs a recorder unless asked
//! ([`prometheus::install`](super::prometheus::install)). Install the recorder **before**
//! spawning primitives: handles are cached at spawn time and a handle taken while no
//! recorder is installed records nothing. docs/METRICS.md lists the labels.

use metrics::{describe_counter, describe_gauge, Unit};

/// Counter: events lost by subscribers that lagged.
pub const EVENTS_DROPPED: &str = "palisade_events_dropped_total";
/// Counter `{kind, name}`: actor restarts by the supervisor.
pub const ACTOR_RESTARTS: &str = "palisade_actor_restarts_total";
/// Gauge `{kind, name}`: 1 while a primitive's actor is left down after too many restarts.
pub const ACTOR_DEGRADED: &str = "palisade_actor_degraded";
/// Counter `{kind, name}`: reconfigurations applied.
pub const RECONFIGURATIONS: &str = "palisade_reconfigurations_total";
/// Counter `{outcome}`: config file loads and reloads (`applied`, `rejected`).
pub const CONFIG_RELOADS: &str = "palisade_config_reloads_total";
/// Counter `{name, outcome}`: calls through a breaker by outcome (`success`, `failure`,
/// `slow_success`, `slow_failure`, `ignored`, `cancelled`, `rejected`).
pub const CALLS: &str = "palisade_calls_total";
/// Gauge `{name}`: a breaker's state (0 closed, 1 open, 2 half-open, 3 disabled,
/// 4 forced open, 5 metrics only).
pub const BREAKER_STATE: &str = "palisade_breaker_state";
/// Counter `{name, from, to}`: breaker transitions.
pub const BREAKER_TRANSITIONS: &str = "palisade_breaker_transitions_total";
/// Histogram `{name}`: duration of calls through a breaker, in seconds, written as the
/// series of a Prometheus classic histogram, [`CALL_DURATION_BUCKET`],
/// [`CALL_DURATION_COUNT`] and [`CALL_DURATION_SUM`] (bucketed per thread by palisade: see
/// docs/METRICS.md).
pub const CALL_DURATION: &str = "palisade_call_duration_seconds";
/// Counter `{name, le}`: calls through a breaker that took at most `le` seconds
/// (cumulative; `le` from 0.0005 to 10, and `+Inf`).
pub const CALL_DURATION_BUCKET: &str = "palisade_call_duration_seconds_bucket";
/// Counter `{name}`: calls through a breaker that ran to an outcome (the `+Inf` bucket).
pub const CALL_DURATION_COUNT: &str = "palisade_call_duration_seconds_count";
/// Gauge `{name}`: seconds spent in calls through a breaker, in total (only ever added to).
pub const CALL_DURATION_SUM: &str = "palisade_call_duration_seconds_sum";
/// Counter `{name, decision}`: rate-limit decisions (`allowed`, `denied`, `shadow_denied`).
pub const RATE_LIMIT: &str = "palisade_rate_limit_total";
/// Gauge `{name}`: keys a keyed limiter holds.
pub const LIMITER_KEYS: &str = "palisade_limiter_keys";
/// Counter `{name, reason}`: keys dropped by a keyed limiter (`idle`: only keys back at a
/// full quota are ever dropped).
pub const LIMITER_EVICTIONS: &str = "palisade_limiter_evictions_total";
/// Counter `{name}`: checks of new keys a keyed limiter decided on its shared overflow quota,
/// because every one of its `max_keys` held keys still held state.
pub const LIMITER_OVERFLOW: &str = "palisade_limiter_overflow_total";
/// Gauge `{name}`: 1 while a limiter's remote backend (Redis) answers, 0 while it is down.
pub const LIMITER_BACKEND_UP: &str = "palisade_limiter_backend_up";
/// Counter `{name, mode}`: checks a limiter decided by its fail mode because its backend was
/// down (`fail_open`, `fail_closed`, `local`).
pub const LIMITER_BACKEND_FALLBACKS: &str = "palisade_limiter_backend_fallbacks_total";
/// Counter `{name}`: lease refills a leased limiter took from its backend.
pub const LIMITER_LEASES: &str = "palisade_limiter_leases_total";
/// Gauge `{name}`: calls holding a bulkhead permit.
pub const BULKHEAD_IN_FLIGHT: &str = "palisade_bulkhead_in_flight";
/// Gauge `{name}`: calls waiting for a bulkhead permit.
pub const BULKHEAD_WAITING: &str = "palisade_bulkhead_waiting";
/// Counter `{name, reason}`: calls a bulkhead rejected (`full`, `queue_full`, `deadline`).
pub const BULKHEAD_REJECTED: &str = "palisade_bulkhead_rejected_total";
/// Counter `{name}`: retry attempts after a failure.
pub const RETRY_ATTEMPTS: &str = "palisade_retry_attempts_total";
/// Counter `{name, cause}`: retries that gave up.
pub const RETRY_EXHAUSTED: &str = "palisade_retry_exhausted_total";

/// Registers a description for every series. The runtime calls it at start.
pub fn describe() {
    describe_counter!(
        EVENTS_DROPPED,
        "Events lost by subscribers that lagged behind."
    );
    describe_counter!(
        ACTOR_RESTARTS,
        "Actor restarts performed by the palisade supervisor."
    );
    describe_gauge!(
        ACTOR_DEGRADED,
        "1 while an actor is left down after too many restarts."
    );
    describe_counter!(
        RECONFIGURATIONS,
        "Reconfigurations applied to running primitives."
    );
    describe_counter!(
        CONFIG_RELOADS,
        "Config file loads and reloads, by outcome (applied, rejected)."
    );
    describe_counter!(CALLS, "Calls through a circuit breaker, by outcome.");
    describe_gauge!(BREAKER_STATE, "Circuit breaker state (0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open, 5 metrics only).");
    describe_counter!(BREAKER_TRANSITIONS, "Circuit breaker state transitions.");
    describe_counter!(
        CALL_DURATION_BUCKET,
        Unit::Count,
        "Calls through a circuit breaker that took at most le seconds (a histogram's buckets)."
    );
    describe_counter!(
        CALL_DURATION_COUNT,
        Unit::Count,
        "Calls through a circuit breaker that ran to an outcome (a histogram's count)."
    );
    describe_gauge!(
        CALL_DURATION_SUM,
        Unit::Seconds,
        "Seconds spent in calls through a circuit breaker (a histogram's sum; only grows)."
    );
    describe_counter!(RATE_LIMIT, "Rate limit decisions.");
    describe_gauge!(LIMITER_KEYS, "Keys held by a keyed rate limiter.");
    describe_counter!(LIMITER_EVICTIONS, "Keys evicted by a keyed rate limiter.");
    describe_counter!(
        LIMITER_OVERFLOW,
        "Checks of new keys decided on a keyed limiter's shared overflow quota (every held key holds state)."
    );
    describe_gauge!(
        LIMITER_BACKEND_UP,
        "1 while a limiter's remote backend answers, 0 while it is down."
    );
    describe_counter!(
        LIMITER_BACKEND_FALLBACKS,
        "Checks decided by a limiter's fail mode while its backend was down."
    );
    describe_counter!(
        LIMITER_LEASES,
        "Lease refills a leased limiter took from its backend."
    );
    describe_gauge!(BULKHEAD_IN_FLIGHT, "Calls holding a bulkhead permit.");
    describe_gauge!(BULKHEAD_WAITING, "Calls waiting for a bulkhead permit.");
    describe_counter!(BULKHEAD_REJECTED, "Calls rejected by a bulkhead.");
    describe_counter!(RETRY_ATTEMPTS, "Retry attempts after a failure.");
    describe_counter!(RETRY_EXHAUSTED, "Retries that gave up.");
}
