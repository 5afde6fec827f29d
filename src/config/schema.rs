//! The file's shape, as serde reads it: per kind, `configs.<name>` templates and
//! `instances.<name>` entries (Resilience4j's shape). Every field is optional here (an
//! instance inherits what its `base_config` sets, then palisade's defaults); every struct
//! refuses unknown keys, so a typo is an error, never a silent default.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::duration::optional as duration;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(default)]
    pub breaker: Section,
    #[serde(default)]
    pub limiter: Section,
    #[serde(default)]
    pub keyed_limiter: Section,
    #[serde(default)]
    pub bulkhead: Section,
    #[serde(default)]
    pub retry: Section,
    #[serde(default)]
    pub policy: Section,
    #[serde(default)]
    pub reload: ReloadEntry,
}

/// `[reload]`: what a reload does with instances the file no longer declares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReloadEntry {
    #[serde(default)]
    pub removed: Removed,
}

/// `reload.removed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Removed {
    /// Reported, left running (the default).
    #[default]
    Report,
    /// Reported, then stopped and dropped from the runtime.
    Stop,
}

/// One kind's templates and instances (their bodies are read per entry, with their path).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Section {
    #[serde(default)]
    pub configs: BTreeMap<String, figment::value::Value>,
    #[serde(default)]
    pub instances: BTreeMap<String, figment::value::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakerEntry {
    pub base_config: Option<String>,
    pub sliding_window_calls: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub sliding_window_time: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub time_bucket: Option<Duration>,
    pub minimum_calls: Option<u32>,
    pub failure_rate_threshold: Option<f64>,
    pub slow_call_rate_threshold: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    pub slow_call_duration: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub wait_in_open: Option<Duration>,
    pub open_backoff_multiplier: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    pub open_backoff_max: Option<Duration>,
    pub half_open_permits: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub max_wait_in_half_open: Option<Duration>,
    pub automatic_half_open: Option<bool>,
    /// `"precise"`, `"coarse"` or `"untimed"`.
    pub call_timing: Option<crate::breaker::CallTiming>,
}

/// The rate-limiting algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Algorithm {
    Gcra,
    TokenBucket,
    SlidingWindow,
    FixedWindow,
    LeakyBucket,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimiterEntry {
    pub base_config: Option<String>,
    pub algorithm: Option<Algorithm>,
    /// GCRA, leaky bucket, token bucket refill: units per `per`.
    pub rate: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub per: Option<Duration>,
    /// GCRA, leaky bucket: the burst.
    pub burst: Option<u32>,
    /// Token bucket: the bucket's size.
    pub capacity: Option<u32>,
    /// Sliding and fixed windows: units per window.
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub window: Option<Duration>,
    pub shadow: Option<bool>,
    /// State in Redis (feature `redis`), shared by every instance.
    #[cfg(feature = "redis")]
    pub redis: Option<RedisEntry>,
    /// Keyed limiters only.
    pub max_keys: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub idle_sweep: Option<Duration>,
    pub plans: Option<Vec<PlanEntry>>,
}

/// A limiter's Redis backend.
#[cfg(feature = "redis")]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisEntry {
    /// One server (`redis://[:password@]host:port/db`)...
    pub url: Option<String>,
    /// ...or a cluster's seed nodes.
    pub cluster: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub key: Option<String>,
    pub mode: Option<RedisModeEntry>,
    #[serde(default, deserialize_with = "duration")]
    pub lease_window: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub lease_ttl: Option<Duration>,
    pub on_failure: Option<FailEntry>,
    /// `on_failure = "local"`: the share of the global rate, in percent.
    pub local_percent: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub open_for: Option<Duration>,
}

#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RedisModeEntry {
    Strict,
    Leased,
}

#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailEntry {
    Open,
    Closed,
    Local,
}

/// A keyed limiter's plan: the keys it covers and their quota.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanEntry {
    /// A glob over the key: `*` matches any run of characters (`"premium:*"`).
    pub keys: String,
    pub rate: u32,
    #[serde(default, deserialize_with = "duration")]
    pub per: Option<Duration>,
    pub burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkheadEntry {
    pub base_config: Option<String>,
    pub max_concurrent: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub max_wait: Option<Duration>,
    pub max_queue: Option<u32>,
}

/// Backoff shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackoffShape {
    Constant,
    Linear,
    Exponential,
}

/// Jitter kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JitterKind {
    None,
    Full,
    Equal,
    Decorrelated,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryEntry {
    pub base_config: Option<String>,
    pub max_attempts: Option<u32>,
    pub backoff: Option<BackoffShape>,
    #[serde(default, deserialize_with = "duration")]
    pub delay: Option<Duration>,
    pub factor: Option<f64>,
    #[serde(default, deserialize_with = "duration")]
    pub max_delay: Option<Duration>,
    pub jitter: Option<JitterKind>,
    pub retry_on_timeout: Option<bool>,
    pub retry_on_circuit_open: Option<bool>,
    pub retry_on_rate_limited: Option<bool>,
    pub retry_on_bulkhead_full: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyEntry {
    pub base_config: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub deadline: Option<Duration>,
    pub retry: Option<String>,
    pub breaker: Option<String>,
    pub limiter: Option<String>,
    pub bulkhead: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
}
