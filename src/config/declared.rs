//! What a file declares, as palisade's own configs: each entry of the file turned into the
//! config its builder checks, every refusal a field and a problem, which the reader places at the entry's key path.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::schema::{
    Algorithm, BackoffShape, BreakerEntry, BulkheadEntry, JitterKind, LimiterEntry, PlanEntry,
    PolicyEntry, Removed, RetryEntry,
};
use crate::breaker::{BreakerConfig, SlidingWindow};
use crate::bulkhead::BulkheadConfig;
use crate::error::ConfigError;
use crate::limiter::{LimiterConfig, Quota};
use crate::policy::{Backoff, Jitter};

/// A refusal inside one entry: the field (as the file spells it) and what was wrong.
pub(crate) type Refusal = (String, String);

fn refuse(field: &str, problem: impl Into<String>) -> Refusal {
    (field.to_owned(), problem.into())
}

fn from_builder(e: ConfigError) -> Refusal {
    let value = if e.value.is_empty() {
        String::new()
    } else {
        format!("{} ", e.value)
    };
    (e.field.to_owned(), format!("{value}refused: {}", e.problem))
}

/// Everything one file declares, checked.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub breakers: BTreeMap<String, BreakerConfig>,
    pub limiters: BTreeMap<String, LimiterConfig>,
    pub keyed: BTreeMap<String, KeyedDecl>,
    pub bulkheads: BTreeMap<String, BulkheadConfig>,
    pub retries: BTreeMap<String, RetryDecl>,
    pub policies: BTreeMap<String, PolicyDecl>,
    /// What happens to instances a reload no longer finds.
    pub removed: Removed,
}

/// A keyed limiter (keys are strings): its base config, bounds and plans.
#[derive(Clone, Debug)]
pub(crate) struct KeyedDecl {
    pub base: LimiterConfig,
    pub max_keys: Option<u32>,
    pub idle_sweep: Option<Duration>,
    pub plans: Vec<Plan>,
}

/// Keys matching `keys` (a glob, `*` any run of characters) get `quota`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub keys: String,
    pub quota: Quota,
}

impl Plan {
    pub(crate) fn matches(&self, key: &str) -> bool {
        glob(self.keys.as_bytes(), key.as_bytes())
    }
}

/// The plans a running keyed limiter reads (a reload swaps them; keys resolve once, when
/// first seen, so a new plan covers keys seen after it).
pub(crate) type PlanCell = Arc<RwLock<Arc<Vec<Plan>>>>;

/// `*` matches any run of bytes, everything else itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A retry, as declared (built into a [`Retry`](crate::Retry) per use, with its name).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RetryDecl {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub retry_on_timeout: Option<bool>,
    pub retry_on_circuit_open: Option<bool>,
    pub retry_on_rate_limited: Option<bool>,
    pub retry_on_bulkhead_full: Option<bool>,
}

/// A policy: the instances it names and its deadline and timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyDecl {
    pub deadline: Option<Duration>,
    pub retry: Option<String>,
    pub breaker: Option<String>,
    pub limiter: Option<String>,
    pub bulkhead: Option<String>,
    pub timeout: Option<Duration>,
}

pub(crate) fn breaker(e: &BreakerEntry) -> Result<BreakerConfig, Refusal> {
    let mut b = BreakerConfig::builder();
    match (e.sliding_window_calls, e.sliding_window_time) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                "sliding_window_calls",
                "set sliding_window_calls or sliding_window_time, not both",
            ))
        }
        (Some(n), None) => b = b.sliding_window(SlidingWindow::Count(n)),
        (None, Some(d)) => b = b.sliding_window(SlidingWindow::Time(d)),
        (None, None) => {}
    }
    if let Some(d) = e.time_bucket {
        b = b.time_bucket(d);
    }
    if let Some(n) = e.minimum_calls {
        b = b.minimum_calls(n);
    }
    if let Some(p) = e.failure_rate_threshold {
        b = b.failure_rate_threshold(p);
    }
    if let Some(p) = e.slow_call_rate_threshold {
        b = b.slow_call_rate_threshold(p);
    }
    if let Some(d) = e.slow_call_duration {
        b = b.slow_call_duration(d);
    }
    if let Some(d) = e.wait_in_open {
        b = b.wait_in_open(d);
    }
    match (e.open_backoff_multiplier, e.open_backoff_max) {
        (Some(m), Some(max)) => b = b.open_backoff(m, max),
        (None, None) => {}
        (Some(_), None) => {
            return Err(refuse(
                "open_backoff_max",
                "missing: open_backoff_multiplier needs open_backoff_max",
            ))
        }
        (None, Some(_)) => {
            return Err(refuse(
                "open_backoff_multiplier",
                "missing: open_backoff_max needs open_backoff_multiplier",
            ))
        }
    }
    if let Some(n) = e.half_open_permits {
        b = b.half_open_permits(n);
    }
    if let Some(d) = e.max_wait_in_half_open {
        b = b.max_wait_in_half_open(d);
    }
    if let Some(on) = e.automatic_half_open {
        b = b.automatic_half_open(on);
    }
    if let Some(timing) = e.call_timing {
        b = b.call_timing(timing);
    }
    b.build().map_err(from_builder)
}

fn at_least_one(field: &str, v: Option<u32>, algorithm: &str) -> Result<u32, Refusal> {
    match v {
        None => Err(refuse(
            field,
            format!("missing: a {algorithm} limiter needs {field}"),
        )),
        Some(0) => Err(refuse(field, "0 refused: must be at least 1")),
        Some(n) => Ok(n),
    }
}

fn nonzero(field: &str, d: Duration) -> Result<Duration, Refusal> {
    if d.is_zero() {
        Err(refuse(field, "0s refused: must be greater than zero"))
    } else {
        Ok(d)
    }
}

fn not_for(field: &str, present: bool, what: &str) -> Result<(), Refusal> {
    if present {
        Err(refuse(field, format!("does not apply to {what}")))
    } else {
        Ok(())
    }
}

/// A rate over `per` (default one second), with an optional burst.
fn quota(
    rate: Option<u32>,
    per: Option<Duration>,
    burst: Option<u32>,
    algorithm: &str,
) -> Result<Quota, Refusal> {
    let rate = at_least_one("rate", rate, algorithm)?;
    let per = nonzero("per", per.unwrap_or(Duration::from_secs(1)))?;
    let q = Quota::new(rate, per);
    match burst {
        Some(0) => Err(refuse("burst", "0 refused: must be at least 1")),
        Some(b) => Ok(q.burst(b)),
        None => Ok(q),
    }
}

/// A limiter's config; `keyed` says whether the keyed-only fields may appear.
pub(crate) fn limiter(e: &LimiterEntry, keyed: bool) -> Result<LimiterConfig, Refusal> {
    if !keyed {
        not_for(
            "max_keys",
            e.max_keys.is_some(),
            "a limiter (keyed limiters only)",
        )?;
        not_for(
            "idle_sweep",
            e.idle_sweep.is_some(),
            "a limiter (keyed limiters only)",
        )?;
        not_for(
            "plans",
            e.plans.is_some(),
            "a limiter (keyed limiters only)",
        )?;
    }
    let algorithm = e.algorithm.ok_or_else(|| {
        refuse(
            "algorithm",
            "missing: one of gcra, token_bucket, sliding_window, fixed_window, leaky_bucket",
        )
    })?;
    let config = match algorithm {
        Algorithm::Gcra | Algorithm::LeakyBucket => {
            let name = if algorithm == Algorithm::Gcra {
                "gcra"
            } else {
                "leaky_bucket"
            };
            not_for("capacity", e.capacity.is_some(), name)?;
            not_for("limit", e.limit.is_some(), name)?;
            not_for("window", e.window.is_some(), name)?;
            let q = quota(e.rate, e.per, e.burst, name)?;
            if algorithm == Algorithm::Gcra {
                LimiterConfig::gcra(q)
            } else {
                LimiterConfig::leaky_bucket(q)
            }
        }
        Algorithm::TokenBucket => {
            not_for(
                "burst",
                e.burst.is_some(),
                "token_bucket (its capacity is the burst)",
            )?;
            not_for("limit", e.limit.is_some(), "token_bucket")?;
            not_for("window", e.window.is_some(), "token_bucket")?;
            let capacity = at_least_one("capacity", e.capacity, "token_bucket")?;
            LimiterConfig::token_bucket(capacity, quota(e.rate, e.per, None, "token_bucket")?)
        }
        Algorithm::SlidingWindow | Algorithm::FixedWindow => {
            let name = if algorithm == Algorithm::SlidingWindow {
                "sliding_window"
            } else {
                "fixed_window"
            };
            for (field, present) in [
                ("rate", e.rate.is_some()),
                ("per", e.per.is_some()),
                ("burst", e.burst.is_some()),
                ("capacity", e.capacity.is_some()),
            ] {
                not_for(field, present, name)?;
            }
            let limit = at_least_one("limit", e.limit, name)?;
            let window = nonzero(
                "window",
                e.window.ok_or_else(|| {
                    refuse("window", format!("missing: a {name} limiter needs window"))
                })?,
            )?;
            if algorithm == Algorithm::SlidingWindow {
                LimiterConfig::sliding_window(limit, window)
            } else {
                LimiterConfig::fixed_window(limit, window)
            }
        }
    };
    let config = config.shadow(e.shadow.unwrap_or(false));
    #[cfg(feature = "redis")]
    let config = match &e.redis {
        Some(r) => {
            config.redis(redis(r).map_err(|(field, problem)| (format!("redis.{field}"), problem))?)
        }
        None => config,
    };
    config.validate().map_err(from_builder)?;
    Ok(config)
}

#[cfg(feature = "redis")]
fn redis(r: &super::schema::RedisEntry) -> Result<crate::RedisBackend, Refusal> {
    use super::schema::{FailEntry, RedisModeEntry};
    let mut b = match (&r.url, &r.cluster) {
        (Some(url), None) => crate::RedisBackend::new(url.clone()),
        (None, Some(nodes)) if !nodes.is_empty() => crate::RedisBackend::cluster(nodes.clone()),
        (Some(_), Some(_)) => return Err(refuse("url", "set url or cluster, not both")),
        _ => {
            return Err(refuse(
                "url",
                "missing: a server's url, or cluster = [seed nodes]",
            ))
        }
    };
    if let Some(p) = &r.prefix {
        b = b.prefix(p.clone());
    }
    if let Some(k) = &r.key {
        b = b.key(k.clone());
    }
    if let Some(m) = r.mode {
        b = b.mode(match m {
            RedisModeEntry::Strict => crate::RedisMode::Strict,
            RedisModeEntry::Leased => crate::RedisMode::Leased,
        });
    }
    if let Some(d) = r.lease_window {
        b = b.lease_window(d);
    }
    if let Some(d) = r.lease_ttl {
        b = b.lease_ttl(d);
    }
    match (r.on_failure, r.local_percent) {
        (Some(FailEntry::Local) | None, Some(percent)) => {
            b = b.on_failure(crate::FailMode::Local { percent });
        }
        (Some(FailEntry::Local), None) => {
            return Err(refuse(
                "local_percent",
                "missing: on_failure = \"local\" needs local_percent",
            ))
        }
        (Some(FailEntry::Open), None) => b = b.on_failure(crate::FailMode::Open),
        (Some(FailEntry::Closed), None) => b = b.on_failure(crate::FailMode::Closed),
        (Some(_), Some(_)) => {
            return Err(refuse(
                "local_percent",
                "applies to on_failure = \"local\" only",
            ))
        }
        (None, None) => {}
    }
    if let Some(d) = r.timeout {
        b = b.timeout(d);
    }
    if let Some(d) = r.open_for {
        b = b.open_for(d);
    }
    Ok(b)
}

pub(crate) fn keyed(e: &LimiterEntry) -> Result<KeyedDecl, Refusal> {
    let base = limiter(e, true)?;
    if e.max_keys == Some(0) {
        return Err(refuse("max_keys", "0 refused: must be at least 1"));
    }
    if let Some(d) = e.idle_sweep {
        nonzero("idle_sweep", d)?;
    }
    let mut plans = Vec::new();
    for (i, p) in e.plans.iter().flatten().enumerate() {
        plans.push(plan(p).map_err(|(field, problem)| (format!("plans[{i}].{field}"), problem))?);
    }
    Ok(KeyedDecl {
        base,
        max_keys: e.max_keys,
        idle_sweep: e.idle_sweep,
        plans,
    })
}

fn plan(p: &PlanEntry) -> Result<Plan, Refusal> {
    if p.keys.is_empty() {
        return Err(refuse("keys", "\"\" refused: a glob such as \"premium:*\""));
    }
    Ok(Plan {
        keys: p.keys.clone(),
        quota: quota(Some(p.rate), p.per, p.burst, "plan")?,
    })
}

pub(crate) fn bulkhead(e: &BulkheadEntry) -> Result<BulkheadConfig, Refusal> {
    let mut b = BulkheadConfig::builder();
    if let Some(n) = e.max_concurrent {
        b = b.max_concurrent(n);
    }
    if let Some(d) = e.max_wait {
        b = b.max_wait(d);
    }
    if let Some(n) = e.max_queue {
        b = b.max_queue(n);
    }
    b.build().map_err(from_builder)
}

pub(crate) fn retry(e: &RetryEntry) -> Result<RetryDecl, Refusal> {
    let delay = e.delay.unwrap_or(Duration::from_millis(100));
    let shape = e.backoff.unwrap_or(BackoffShape::Exponential);
    if e.factor.is_some() && shape != BackoffShape::Exponential {
        return Err(refuse("factor", "applies to the exponential backoff only"));
    }
    let mut backoff = match shape {
        BackoffShape::Constant => Backoff::constant(delay),
        BackoffShape::Linear => Backoff::linear(delay),
        BackoffShape::Exponential => Backoff::exponential(delay),
    };
    if let Some(f) = e.factor {
        backoff = backoff.factor(f);
    }
    if let Some(max) = e.max_delay {
        backoff = backoff.max_delay(max);
    }
    backoff = backoff.jitter(match e.jitter.unwrap_or(JitterKind::None) {
        JitterKind::None => Jitter::None,
        JitterKind::Full => Jitter::Full,
        JitterKind::Equal => Jitter::Equal,
        JitterKind::Decorrelated => Jitter::Decorrelated,
    });
    backoff.validate().map_err(from_builder)?;
    let decl = RetryDecl {
        max_attempts: e.max_attempts.unwrap_or(3),
        backoff,
        retry_on_timeout: e.retry_on_timeout,
        retry_on_circuit_open: e.retry_on_circuit_open,
        retry_on_rate_limited: e.retry_on_rate_limited,
        retry_on_bulkhead_full: e.retry_on_bulkhead_full,
    };
    decl.build("check", None).map_err(from_builder)?;
    Ok(decl)
}

impl RetryDecl {
    /// The retry, named `name`.
    pub(crate) fn build(
        &self,
        name: &str,
        events: Option<&crate::Runtime>,
    ) -> Result<crate::Retry, ConfigError> {
        let mut b = crate::Retry::builder()
            .name(name)
            .max_attempts(self.max_attempts)
            .backoff(self.backoff);
        if let Some(rt) = events {
            b = b.events(rt);
        }
        if let Some(on) = self.retry_on_timeout {
            b = b.retry_on_timeout(on);
        }
        if let Some(on) = self.retry_on_circuit_open {
            b = b.retry_on_circuit_open(on);
        }
        if let Some(on) = self.retry_on_rate_limited {
            b = b.retry_on_rate_limited(on);
        }
        if let Some(on) = self.retry_on_bulkhead_full {
            b = b.retry_on_bulkhead_full(on);
        }
        b.build()
    }
}

pub(crate) fn policy(e: &PolicyEntry) -> Result<PolicyDecl, Refusal> {
    if let Some(d) = e.deadline {
        nonzero("deadline", d)?;
    }
    if let Some(d) = e.timeout {
        nonzero("timeout", d)?;
    }
    Ok(PolicyDecl {
        deadline: e.deadline,
        retry: e.retry.clone(),
        breaker: e.breaker.clone(),
        limiter: e.limiter.clone(),
        bulkhead: e.bulkhead.clone(),
        timeout: e.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(b"premium:*", b"premium:42"));
        assert!(glob(b"*:gold", b"acme:gold"));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"premium:*", b"free:1"));
        assert!(!glob(b"a*b", b"acb-"));
        assert!(glob(b"exact", b"exact"));
        assert!(!glob(b"exact", b"exact2"));
    }
}
