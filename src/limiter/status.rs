//! What a limiter says about itself without spending anything: [`LimiterStatus`] and
//! [`KeyedLimiterStatus`].

use std::time::Duration;

use super::config::{LimiterConfig, LimiterKind};
use super::decision::Decision;

/// A limiter's state now, from [`Limiter::status`](crate::Limiter::status) or
/// [`KeyedLimiter::status_of`](crate::KeyedLimiter::status_of). Taking it spends no quota.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LimiterStatus {
    /// The algorithm and its quota, as configured.
    pub kind: LimiterKind,
    /// Units a check could take now; `None` when the state lives in Redis and only a round
    /// trip could tell (strict mode). In leased mode: what this instance's lease holds.
    pub available: Option<u32>,
    /// How long until a check of one unit would be admitted: zero when one is available;
    /// `None` where `available` is.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::option_duration")
    )]
    pub retry_after: Option<Duration>,
    /// Time until the quota is full again if nothing else arrives (`None` as above).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::option_duration")
    )]
    pub reset_after: Option<Duration>,
    /// Shadow mode: denials are reported, and the check is let through.
    pub shadow: bool,
    /// The state lives in Redis.
    pub remote: bool,
    /// Checks admitted since spawn (for a key's status: the whole keyed limiter's).
    pub allowed: u64,
    /// Checks denied since spawn (shadow denials included; for a key's status: the whole
    /// keyed limiter's).
    pub denied: u64,
}

impl LimiterStatus {
    /// The status of a limiter running `config`, with what a check of one unit would get
    /// (`None`: only a remote backend could tell).
    pub(crate) fn new(
        config: &LimiterConfig,
        answer: Option<(u32, Duration, Duration)>,
        remote: bool,
        (allowed, denied): (u64, u64),
    ) -> Self {
        Self {
            kind: config.kind,
            available: answer.map(|a| a.0),
            retry_after: answer.map(|a| a.1),
            reset_after: answer.map(|a| a.2),
            shadow: config.shadow,
            remote,
            allowed,
            denied,
        }
    }
}

/// A keyed limiter's state now, from [`KeyedLimiter::status`](crate::KeyedLimiter::status).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyedLimiterStatus {
    /// The algorithm and the quota of keys without a plan of their own.
    pub kind: LimiterKind,
    /// Keys held in the process's table.
    pub keys: usize,
    /// The most keys the table holds.
    pub max_keys: u32,
    /// Shadow mode.
    pub shadow: bool,
    /// The quotas live in Redis (the table then only stands in while Redis is down).
    pub remote: bool,
    /// Checks admitted since spawn, every key together.
    pub allowed: u64,
    /// Checks denied since spawn (shadow denials included), every key together.
    pub denied: u64,
}

/// What a check of one unit would get, from the decision a pure core gives for the state
/// as it is: (available, retry_after, reset_after). `None` for a decision only a remote
/// backend could make.
pub(crate) fn one_unit(decision: Decision) -> Option<(u32, Duration, Duration)> {
    match decision {
        Decision::Allowed {
            remaining,
            reset_after,
        } => Some((
            remaining.saturating_add(1),
            Duration::ZERO,
            Duration::from_nanos(reset_after),
        )),
        Decision::Denied {
            retry_after,
            remaining,
            reset_after,
        } => Some((
            remaining,
            Duration::from_nanos(retry_after),
            Duration::from_nanos(reset_after),
        )),
        _ => None,
    }
}
