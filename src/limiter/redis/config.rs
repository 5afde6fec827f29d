//! How a limiter keeps its state in Redis: where, in which mode, and what to do when Redis
//! is down.

use std::time::Duration;

use crate::breaker::{BreakerConfig, SlidingWindow};
use crate::error::ConfigError;

/// How checks reach Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RedisMode {
    /// One atomic script call per check: the global limit is exact; each check costs a
    /// round trip.
    Strict,
    /// The limiter's actor takes a batch of units from the global budget (sized to about
    /// `lease_window` of this instance's traffic) and checks spend it with an atomic. Units
    /// leave the global budget before they are spent, so the global limit holds; units an
    /// instance holds but does not spend within `lease_ttl` are dropped (under-use).
    Leased,
}

/// What checks do while the backend is down (the guard breaker is open, or a call failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FailMode {
    /// Admit every check (counted in `palisade_limiter_backend_fallbacks_total{mode="fail_open"}`).
    Open,
    /// Deny every check with [`DenyReason::BackendDown`](crate::DenyReason::BackendDown).
    Closed,
    /// Check a local limiter of the same algorithm at `percent` of the global rate
    /// (for example 25 with four instances).
    Local {
        /// The share of the global rate, in percent (1..=100).
        percent: u32,
    },
}

/// A Redis backend for a limiter: `LimiterConfig::gcra(q).redis(RedisBackend::new(url))`.
///
/// # Defaults
/// - `prefix`: `"palisade"`; the key is `<prefix>:<key>` (`<prefix>:<key>:<encoded key>` for
///   keyed limiters), one key per quota, so it works on Redis Cluster
/// - `key`: the limiter's name (set it to share one quota between limiters of other names)
/// - `mode`: [`RedisMode::Strict`]; `lease_window` 50 ms; `lease_ttl` 1 s
/// - `on_failure`: [`FailMode::Local`] at 100 %
/// - `timeout`: 100 ms per Redis call (a slower answer counts as a failure)
/// - `open_for`: 1 s: the guard breaker's wait in open before it probes Redis again
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RedisBackend {
    /// One server's URL, or a cluster's seed nodes.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::redacted_urls")
    )]
    pub(crate) nodes: Vec<String>,
    pub(crate) cluster: bool,
    pub(crate) prefix: String,
    pub(crate) key: Option<String>,
    pub(crate) mode: RedisMode,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) lease_window: Duration,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) lease_ttl: Duration,
    pub(crate) on_failure: FailMode,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) timeout: Duration,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) open_for: Duration,
}

impl RedisBackend {
    /// A backend at `url` (`redis://host:port/db`).
    pub fn new(url: impl Into<String>) -> Self {
        Self::on(vec![url.into()], false)
    }

    /// A Redis Cluster, found from any of its `nodes` (`redis://host:port`). Each quota is
    /// one key, so each check runs on the one node that owns its slot; the client follows
    /// the cluster's topology (moved slots, failovers).
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::on(nodes.into_iter().map(Into::into).collect(), true)
    }

    fn on(nodes: Vec<String>, cluster: bool) -> Self {
        Self {
            nodes,
            cluster,
            prefix: "palisade".into(),
            key: None,
            mode: RedisMode::Strict,
            lease_window: Duration::from_millis(50),
            lease_ttl: Duration::from_secs(1),
            on_failure: FailMode::Local { percent: 100 },
            timeout: Duration::from_millis(100),
            open_for: Duration::from_secs(1),
        }
    }

    /// The key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The quota's key (default: the limiter's name). Limiters with the same prefix and key
    /// share one global quota.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Strict or leased.
    pub fn mode(mut self, mode: RedisMode) -> Self {
        self.mode = mode;
        self
    }

    /// Leased mode: a lease covers about this much of this instance's traffic.
    pub fn lease_window(mut self, d: Duration) -> Self {
        self.lease_window = d;
        self
    }

    /// Leased mode: units not spent this long after they were taken are dropped.
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d;
        self
    }

    /// What checks do while Redis is down.
    pub fn on_failure(mut self, mode: FailMode) -> Self {
        self.on_failure = mode;
        self
    }

    /// The longest a Redis call may take before it counts as a failure.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How long the guard breaker stays open before it probes Redis again.
    pub fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// The mode.
    pub fn redis_mode(&self) -> RedisMode {
        self.mode
    }

    /// The fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.on_failure
    }

    /// The breaker that guards this backend (named `<limiter>.redis`): it opens when half
    /// of the last 10 calls (at least 5) failed or took longer than the timeout.
    pub(crate) fn guard(&self) -> Result<BreakerConfig, ConfigError> {
        BreakerConfig::builder()
            .sliding_window(SlidingWindow::Count(10))
            .minimum_calls(5)
            .failure_rate_threshold(50.0)
            .slow_call_duration(self.timeout)
            .wait_in_open(self.open_for)
            .half_open_permits(2)
            .build()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError::refused(
                "redis.prefix",
                &self.prefix,
                "must be non-empty, without whitespace",
            ));
        }
        if self
            .key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::refused(
                "redis.key",
                self.key.as_deref().unwrap_or_default(),
                "must be non-empty, without whitespace",
            ));
        }
        if self.nodes.is_empty() {
            return Err(ConfigError::new(
                "redis.url",
                "a cluster needs at least one node to start from",
            ));
        }
        for url in &self.nodes {
            redis::Client::open(url.as_str()).map_err(|_| {
                ConfigError::refused(
                    "redis.url",
                    crate::error::redact_url(url),
                    "is not a valid redis:// or rediss:// URL",
                )
            })?;
        }
        for (field, d) in [
            ("redis.lease_window", self.lease_window),
            ("redis.lease_ttl", self.lease_ttl),
            ("redis.timeout", self.timeout),
            ("redis.open_for", self.open_for),
        ] {
            if d.is_zero() {
                return Err(ConfigError::refused(field, d, "must be longer than zero"));
            }
        }
        if self.lease_ttl < self.lease_window {
            return Err(ConfigError::refused(
                "redis.lease_ttl",
                self.lease_ttl,
                "must be at least the lease window (a lease would expire before it is spent)",
            ));
        }
        if let FailMode::Local { percent } = self.on_failure {
            if !(1..=100).contains(&percent) {
                return Err(ConfigError::refused(
                    "redis.on_failure",
                    self.on_failure,
                    "a local share must be 1..=100 percent",
                ));
            }
        }
        Ok(())
    }
}
