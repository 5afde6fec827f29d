//! Quotas and limiter configurations.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::algorithm::Algorithm;
use super::fixed_window::FixedWindow;
use super::gcra::Gcra;
use super::sliding_window::SlidingWindow;
use super::{leaky_bucket, token_bucket};
use crate::clock::duration_nanos;
use crate::error::ConfigError;
#[cfg(feature = "redis")]
use crate::limiter::redis::{KeyEncoder, RedisBackend};

/// A rate: `count` units per `period`, with an optional burst (default: `count`).
///
/// Constructors accept any value; a zero rate, zero period or zero burst is refused with a
/// [`ConfigError`] naming the field when the limiter is spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Quota {
    count: u32,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    period: Duration,
    burst: Option<u32>,
}

impl Quota {
    /// `count` per `period`.
    pub fn new(count: u32, period: Duration) -> Self {
        Self {
            count,
            period,
            burst: None,
        }
    }

    /// `n` per second.
    pub fn per_second(n: u32) -> Self {
        Self::new(n, Duration::from_secs(1))
    }

    /// `n` per minute.
    pub fn per_minute(n: u32) -> Self {
        Self::new(n, Duration::from_secs(60))
    }

    /// `n` per hour.
    pub fn per_hour(n: u32) -> Self {
        Self::new(n, Duration::from_secs(3600))
    }

    /// Units admitted back to back from a full quota (at least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Units per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The burst in force (the count unless set).
    pub fn burst_size(&self) -> u32 {
        self.burst.unwrap_or(self.count)
    }

    /// The longest period, window or full refill a limiter accepts: 366 days. Longer ones
    /// are refused by name at spawn: a limiter that needs more than a year to give a unit
    /// back is a mistake, and a caller waiting on it (`until_ready`) would wait as long.
    pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

    /// The emission interval in nanoseconds, checking every value. `field` names the quota
    /// in errors (`quota`, `refill`).
    pub(crate) fn interval(&self, field: &'static str) -> Result<u64, ConfigError> {
        let f = |part| field_name(field, part);
        if self.count == 0 {
            return Err(ConfigError::refused(
                f("count"),
                self.count,
                "the rate must be at least 1 per period",
            ));
        }
        if self.period.is_zero() {
            return Err(ConfigError::refused(
                f("period"),
                self.period,
                "must be longer than zero",
            ));
        }
        if self.period > Self::MAX_PERIOD {
            return Err(ConfigError::refused(
                f("period"),
                self.period,
                "is longer than the limit of 366 days",
            ));
        }
        let period = duration_nanos(self.period);
        let interval = period / u64::from(self.count);
        if interval == 0 {
            return Err(ConfigError::refused(
                f("count"),
                self.count,
                format!(
                    "more than one unit per nanosecond (in {:?}) cannot be timed",
                    self.period
                ),
            ));
        }
        let burst = self.burst_size();
        if burst == 0 {
            return Err(ConfigError::refused(
                f("burst"),
                burst,
                "must be at least 1 (a request needs one unit)",
            ));
        }
        refill_fits(f("burst"), burst, interval)?;
        Ok(interval)
    }
}

/// Refilling `units` one per `interval` nanoseconds must fit in [`Quota::MAX_PERIOD`].
pub(crate) fn refill_fits(
    field: &'static str,
    units: u32,
    interval: u64,
) -> Result<(), ConfigError> {
    let full = u128::from(interval) * u128::from(units);
    if full > Quota::MAX_PERIOD.as_nanos() {
        return Err(ConfigError::refused(
            field,
            units,
            format!(
                "refilled one unit per {:?}, they take {:.0} days, longer than the limit of 366 days",
                Duration::from_nanos(interval),
                full as f64 / 86_400e9
            ),
        ));
    }
    Ok(())
}

fn field_name(field: &'static str, part: &'static str) -> &'static str {
    match (field, part) {
        ("refill", "count") => "refill.count",
        ("refill", "period") => "refill.period",
        ("refill", "burst") => "refill.burst",
        (_, "count") => "quota.count",
        (_, "period") => "quota.period",
        _ => "quota.burst",
    }
}

/// Which algorithm a limiter runs, with its parameters as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LimiterKind {
    /// GCRA over a quota.
    Gcra(Quota),
    /// A token bucket of `capacity` refilled at `refill`'s rate.
    TokenBucket {
        /// Tokens the bucket holds.
        capacity: u32,
        /// The refill rate.
        refill: Quota,
    },
    /// Sliding window (weighted two-counter estimate).
    SlidingWindow {
        /// Requests per window.
        limit: u32,
        /// The window.
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "crate::serde_util::duration")
        )]
        window: Duration,
    },
    /// Fixed, aligned windows.
    FixedWindow {
        /// Requests per window.
        limit: u32,
        /// The window.
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "crate::serde_util::duration")
        )]
        window: Duration,
    },
    /// Leaky bucket as a meter (no burst).
    LeakyBucket(Quota),
}

/// A rate limiter's configuration: the algorithm and whether it only reports (shadow mode).
///
/// Which to choose:
///
/// | algorithm | state per limiter or key | burst | choose it for |
/// |---|---|---|---|
/// | `gcra` | 8 bytes | up to `burst` back to back | the default: exact, smooth, tiny |
/// | `token_bucket` | 8 bytes (stored as GCRA) | up to `capacity` | "N tokens, refilled at R" |
/// | `sliding_window` | 16 bytes | up to `limit` per window, estimated across windows | "N per minute" quotas users read on a pricing page |
/// | `fixed_window` | 16 bytes | up to `2·limit` across a window edge | cheapest to explain; resets on the clock |
/// | `leaky_bucket` | 8 bytes (GCRA, burst 1) | none: requests spaced one interval apart | smoothing output to a fragile backend |
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LimiterConfig {
    pub(crate) kind: LimiterKind,
    pub(crate) shadow: bool,
    /// Where the state lives when not in this process (feature `redis`).
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<RedisBackend>,
}

impl LimiterConfig {
    fn of(kind: LimiterKind) -> Self {
        Self {
            kind,
            shadow: false,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// Keeps the limiter's state in Redis, so every instance that names the same key shares
    /// one global quota (feature `redis`). The handle's API does not change; checks that
    /// never wait ([`Limiter::check`](crate::Limiter::check)) work in
    /// [`RedisMode::Leased`](crate::RedisMode::Leased) only: in strict mode use
    /// [`acquire`](crate::Limiter::acquire), `until_ready` or `execute`.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, backend: RedisBackend) -> Self {
        self.redis = Some(backend);
        self
    }

    /// The Redis backend, if the state lives there.
    #[cfg(feature = "redis")]
    pub fn redis_backend(&self) -> Option<&RedisBackend> {
        self.redis.as_ref()
    }

    /// A reconfiguration may change the quota and shadow mode, never where the state lives.
    pub(crate) fn keeps_backend_of(&self, running: &LimiterConfig) -> Result<(), ConfigError> {
        #[cfg(feature = "redis")]
        if self.redis != running.redis {
            return Err(ConfigError::new(
                "redis",
                "a running limiter keeps its backend and its settings; spawn a new limiter to move its state",
            ));
        }
        let _ = running;
        Ok(())
    }

    /// GCRA over `quota`.
    pub fn gcra(quota: Quota) -> Self {
        Self::of(LimiterKind::Gcra(quota))
    }

    /// A token bucket holding `capacity` tokens, refilled at `refill`'s rate.
    pub fn token_bucket(capacity: u32, refill: Quota) -> Self {
        Self::of(LimiterKind::TokenBucket { capacity, refill })
    }

    /// At most about `limit` requests in any sliding `window`.
    pub fn sliding_window(limit: u32, window: Duration) -> Self {
        Self::of(LimiterKind::SlidingWindow { limit, window })
    }

    /// At most `limit` requests per aligned `window`.
    pub fn fixed_window(limit: u32, window: Duration) -> Self {
        Self::of(LimiterKind::FixedWindow { limit, window })
    }

    /// A leaky bucket leaking at `quota`'s rate: no burst.
    pub fn leaky_bucket(quota: Quota) -> Self {
        Self::of(LimiterKind::LeakyBucket(quota))
    }

    /// Shadow mode: decide and report (events, metrics) but never deny, to try a new limit
    /// on live traffic before enforcing it.
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
        self
    }

    /// The algorithm and its parameters.
    pub fn kind(&self) -> LimiterKind {
        self.kind
    }

    /// `true` in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// Checks every value, as every spawn and reconfiguration does: the quota or window,
    /// and the Redis backend's settings where there is one. (Constructors accept any value,
    /// so a config can be written before it is checked.)
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field at fault and the value it refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.algorithm()?;
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            backend.validate()?;
        }
        Ok(())
    }

    /// Checks the values and returns the algorithm's parameters.
    pub(crate) fn algorithm(&self) -> Result<Algorithm, ConfigError> {
        Ok(match self.kind {
            LimiterKind::Gcra(q) => Algorithm::Gcra(Gcra {
                interval: q.interval("quota")?,
                burst: q.burst_size(),
            }),
            LimiterKind::TokenBucket { capacity, refill } => {
                Algorithm::Gcra(token_bucket::params(capacity, &refill)?)
            }
            LimiterKind::LeakyBucket(q) => Algorithm::Gcra(leaky_bucket::params(&q)?),
            LimiterKind::SlidingWindow { limit, window } => {
                let (limit, window) = window_params(limit, window)?;
                Algorithm::Sliding(SlidingWindow { limit, window })
            }
            LimiterKind::FixedWindow { limit, window } => {
                let (limit, window) = window_params(limit, window)?;
                Algorithm::Fixed(FixedWindow { limit, window })
            }
        })
    }

    /// The same algorithm over another quota (a keyed limiter's per-key quota): the quota's
    /// count is the window limit or bucket capacity where the algorithm has one.
    pub(crate) fn with_quota(&self, q: Quota) -> LimiterConfig {
        let kind = match self.kind {
            LimiterKind::Gcra(_) => LimiterKind::Gcra(q),
            LimiterKind::TokenBucket { .. } => LimiterKind::TokenBucket {
                capacity: q.burst_size(),
                refill: q,
            },
            LimiterKind::LeakyBucket(_) => LimiterKind::LeakyBucket(q),
            LimiterKind::SlidingWindow { .. } => LimiterKind::SlidingWindow {
                limit: q.count,
                window: q.period,
            },
            LimiterKind::FixedWindow { .. } => LimiterKind::FixedWindow {
                limit: q.count,
                window: q.period,
            },
        };
        LimiterConfig {
            kind,
            ..self.clone()
        }
    }
}

fn window_params(limit: u32, window: Duration) -> Result<(u32, u64), ConfigError> {
    if limit == 0 {
        return Err(ConfigError::refused("limit", limit, "must be at least 1"));
    }
    if window.is_zero() {
        return Err(ConfigError::refused(
            "window",
            window,
            "must be longer than zero",
        ));
    }
    if window > Quota::MAX_PERIOD {
        return Err(ConfigError::refused(
            "window",
            window,
            "is longer than the limit of 366 days",
        ));
    }
    Ok((limit, duration_nanos(window)))
}

/// A per-key quota: a plan or tier decides each key's quota ("free" 10/s, "pro" 100/s).
pub type QuotaResolver<K> = Arc<dyn Fn(&K) -> Quota + Send + Sync>;

/// A resolver as the limiter holds it: `None` leaves the key on the base config.
pub(crate) type Resolve<K> = Arc<dyn Fn(&K) -> Option<Quota> + Send + Sync>;

/// A keyed limiter's configuration: the algorithm, per-key quotas, and memory bounds.
///
/// # Defaults
/// - every key gets the base config's quota (no resolver)
/// - `max_keys`: 100,000; at the cap, see [`max_keys`](Self::max_keys)
/// - `idle_sweep`: every 10 s the actor drops keys back at a full quota (they carry nothing)
pub struct KeyedLimiterConfig<K> {
    pub(crate) base: LimiterConfig,
    pub(crate) resolver: Option<Resolve<K>>,
    pub(crate) max_keys: u32,
    pub(crate) idle_sweep: Duration,
    #[cfg(feature = "redis")]
    pub(crate) redis_key: Option<KeyEncoder<K>>,
}

impl<K> Clone for KeyedLimiterConfig<K> {
    fn clone(&self) -> Self {
        Self {
            base: self.base.clone(),
            resolver: self.resolver.clone(),
            max_keys: self.max_keys,
            idle_sweep: self.idle_sweep,
            #[cfg(feature = "redis")]
            redis_key: self.redis_key.clone(),
        }
    }
}

impl<K> fmt::Debug for KeyedLimiterConfig<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiterConfig")
            .field("base", &self.base)
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .field("max_keys", &self.max_keys)
            .field("idle_sweep", &self.idle_sweep)
            .finish()
    }
}

impl<K> From<LimiterConfig> for KeyedLimiterConfig<K> {
    fn from(base: LimiterConfig) -> Self {
        Self {
            base,
            resolver: None,
            max_keys: 100_000,
            idle_sweep: Duration::from_secs(10),
            #[cfg(feature = "redis")]
            redis_key: None,
        }
    }
}

impl<K> KeyedLimiterConfig<K> {
    /// Every key limited by `base` unless a resolver says otherwise.
    pub fn new(base: LimiterConfig) -> Self {
        base.into()
    }

    /// Each key's quota, resolved once when the key is first seen (the base config's
    /// algorithm, over the resolved quota).
    pub fn quota_per_key<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&K) -> Quota + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(move |key: &K| Some(resolver(key))));
        self
    }

    /// Like [`quota_per_key`](Self::quota_per_key), for plans that cover some keys: a key
    /// the resolver gives `None` follows the base config (and its reconfigurations), as if
    /// there were no resolver. The config file's `plans` are built on this.
    pub fn quota_per_key_or_base<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&K) -> Option<Quota> + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// The most keys held at once (at least 1); the table never holds one more.
    ///
    /// Only idle keys (back at a full quota, so they carry nothing) are ever dropped: by the
    /// sweep every `idle_sweep`, and when a new key arrives at the cap. A key that holds
    /// state is never dropped, since dropping it would hand it a fresh quota (touching many
    /// new keys would then reset anyone's limit). While all `max_keys` held keys hold
    /// state, new keys are decided on one **overflow** quota they share (the base
    /// config's), counted in `palisade_limiter_overflow_total`; each gets its own quota once
    /// idle keys make room. Size `max_keys` for the keys active within one quota period.
    pub fn max_keys(mut self, n: u32) -> Self {
        self.max_keys = n;
        self
    }

    /// How often idle keys are dropped.
    pub fn idle_sweep(mut self, every: Duration) -> Self {
        self.idle_sweep = every;
        self
    }

    /// How a key becomes part of its Redis key (feature `redis`; required when the base
    /// config keeps its state in Redis). Keys that encode alike share a quota.
    #[cfg(feature = "redis")]
    pub fn redis_key<F>(mut self, encode: F) -> Self
    where
        F: Fn(&K) -> String + Send + Sync + 'static,
    {
        self.redis_key = Some(std::sync::Arc::new(encode));
        self
    }

    /// Checks every value, as every spawn does (a keyed limiter's base config included).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field at fault and the value it refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.checked().map(drop)
    }

    /// [`validate`](Self::validate), returning the base algorithm's parameters.
    pub(crate) fn checked(&self) -> Result<Algorithm, ConfigError> {
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.base.redis {
            if self.redis_key.is_none() {
                return Err(ConfigError::new(
                    "redis_key",
                    "a keyed limiter on Redis needs a key encoder: .redis_key(|k| k.to_string())",
                ));
            }
            if backend.mode != crate::limiter::redis::RedisMode::Strict {
                return Err(ConfigError::refused(
                    "redis.mode",
                    backend.mode,
                    "keyed limiters run strict on Redis (a lease per key would strand units across keys); use RedisMode::Strict",
                ));
            }
        }
        if self.max_keys == 0 {
            return Err(ConfigError::refused(
                "max_keys",
                self.max_keys,
                "must be at least 1",
            ));
        }
        if self.idle_sweep.is_zero() {
            return Err(ConfigError::refused(
                "idle_sweep",
                self.idle_sweep,
                "must be longer than zero",
            ));
        }
        self.base.algorithm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: LimiterConfig) -> &'static str {
        c.algorithm().expect_err("must be refused").field
    }

    #[test]
    fn bad_quotas_name_their_field() {
        assert_eq!(
            field(LimiterConfig::gcra(Quota::per_second(0))),
            "quota.count"
        );
        assert_eq!(
            field(LimiterConfig::gcra(Quota::new(1, Duration::ZERO))),
            "quota.period"
        );
        assert_eq!(
            field(LimiterConfig::gcra(Quota::per_second(5).burst(0))),
            "quota.burst"
        );
        assert_eq!(
            field(LimiterConfig::gcra(Quota::new(10, Duration::from_nanos(5)))),
            "quota.count"
        );
        assert_eq!(
            field(LimiterConfig::gcra(Quota::new(1, Duration::MAX))),
            "quota.period"
        );
        assert_eq!(
            field(LimiterConfig::gcra(Quota::per_hour(1).burst(u32::MAX))),
            "quota.burst"
        );
        assert_eq!(
            field(LimiterConfig::token_bucket(0, Quota::per_second(1))),
            "capacity"
        );
        assert_eq!(
            field(LimiterConfig::token_bucket(5, Quota::per_second(0))),
            "refill.count"
        );
        assert_eq!(
            field(LimiterConfig::sliding_window(0, Duration::from_secs(1))),
            "limit"
        );
        assert_eq!(
            field(LimiterConfig::fixed_window(5, Duration::ZERO)),
            "window"
        );
        assert_eq!(
            field(LimiterConfig::leaky_bucket(Quota::per_minute(0))),
            "quota.count"
        );
        let keyed =
            KeyedLimiterConfig::<u32>::new(LimiterConfig::gcra(Quota::per_second(1))).max_keys(0);
        assert_eq!(keyed.validate().expect_err("zero").field, "max_keys");
    }
}
