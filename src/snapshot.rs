//! The runtime's whole picture: every primitive it holds, with its config, status,
//! restarts and the degraded flag ([`Runtime::snapshot`](crate::Runtime::snapshot)).

use std::sync::Arc;

use crate::breaker::{Breaker, BreakerConfig, BreakerStatus, KeyedBreaker, KeyedBreakerStatus};
use crate::bulkhead::{Bulkhead, BulkheadConfig, BulkheadStatus};
use crate::kind::Kind;
use crate::limiter::{KeyedLimiter, KeyedLimiterStatus, Limiter, LimiterConfig, LimiterStatus};

/// Every primitive a runtime holds, sorted by kind and name.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Snapshot {
    /// One entry per primitive.
    pub primitives: Vec<PrimitiveSnapshot>,
}

impl Snapshot {
    /// The entry of the primitive of `kind` named `name`.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&PrimitiveSnapshot> {
        self.primitives
            .iter()
            .find(|p| p.kind == kind && &*p.name == name)
    }

    /// The primitives whose actor was left down.
    pub fn degraded(&self) -> impl Iterator<Item = &PrimitiveSnapshot> {
        self.primitives.iter().filter(|p| p.degraded)
    }
}

/// One primitive as the runtime sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrimitiveSnapshot {
    /// What it is.
    pub kind: Kind,
    /// Its name.
    pub name: Arc<str>,
    /// Its configuration in force.
    pub config: PrimitiveConfig,
    /// Its status now.
    pub status: PrimitiveStatus,
    /// Restarts of its actor since spawn.
    pub restarts: u32,
    /// `true` when its actor exited too often and was left down (the handle keeps working
    /// on its last state; timers and reconfiguration stop).
    pub degraded: bool,
}

/// A primitive's configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", content = "config", rename_all = "snake_case")
)]
pub enum PrimitiveConfig {
    /// A circuit breaker's.
    Breaker(BreakerConfig),
    /// A rate limiter's (a keyed limiter's base config).
    Limiter(LimiterConfig),
    /// A bulkhead's.
    Bulkhead(BulkheadConfig),
}

/// A primitive's status.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", content = "status", rename_all = "snake_case")
)]
pub enum PrimitiveStatus {
    /// A circuit breaker's.
    Breaker(BreakerStatus),
    /// A direct rate limiter's.
    Limiter(LimiterStatus),
    /// A keyed rate limiter's.
    KeyedLimiter(KeyedLimiterStatus),
    /// A keyed breaker (its config is its keys' breaker config).
    KeyedBreaker(KeyedBreakerStatus),
    /// A bulkhead's.
    Bulkhead(BulkheadStatus),
}

/// A handle the runtime can take a snapshot of without knowing its type parameters.
pub(crate) trait Inspect: Send + Sync + std::fmt::Debug {
    fn snapshot(&self) -> PrimitiveSnapshot;

    /// Hands what the hot path tallied to the recorder (at shutdown), for primitives
    /// whose actor does not.
    fn flush_counts(&self) {}
}

fn entry(
    kind: Kind,
    name: &str,
    config: PrimitiveConfig,
    status: PrimitiveStatus,
    (restarts, degraded): (u32, bool),
) -> PrimitiveSnapshot {
    PrimitiveSnapshot {
        kind,
        name: Arc::from(name),
        config,
        status,
        restarts,
        degraded,
    }
}

impl Inspect for Breaker {
    fn snapshot(&self) -> PrimitiveSnapshot {
        entry(
            Kind::Breaker,
            self.name(),
            PrimitiveConfig::Breaker(self.config()),
            PrimitiveStatus::Breaker(self.status()),
            self.supervision(),
        )
    }
}

impl<K> Inspect for KeyedBreaker<K>
where
    K: std::hash::Hash + Eq + Clone + std::fmt::Display + Send + Sync + 'static,
{
    fn snapshot(&self) -> PrimitiveSnapshot {
        // its breakers run no actor: nothing restarts, nothing degrades
        entry(
            Kind::Breaker,
            self.name(),
            PrimitiveConfig::Breaker(self.config()),
            PrimitiveStatus::KeyedBreaker(self.status()),
            (0, false),
        )
    }

    fn flush_counts(&self) {
        KeyedBreaker::flush_counts(self);
    }
}

impl Inspect for Limiter {
    fn snapshot(&self) -> PrimitiveSnapshot {
        entry(
            Kind::Limiter,
            self.name(),
            PrimitiveConfig::Limiter(self.config()),
            PrimitiveStatus::Limiter(self.status()),
            self.supervision(),
        )
    }
}

impl<K> Inspect for KeyedLimiter<K>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    fn snapshot(&self) -> PrimitiveSnapshot {
        entry(
            Kind::Limiter,
            self.name(),
            PrimitiveConfig::Limiter(self.config()),
            PrimitiveStatus::KeyedLimiter(self.status()),
            self.supervision(),
        )
    }
}

impl Inspect for Bulkhead {
    fn snapshot(&self) -> PrimitiveSnapshot {
        entry(
            Kind::Bulkhead,
            self.name(),
            PrimitiveConfig::Bulkhead(self.config()),
            PrimitiveStatus::Bulkhead(self.status()),
            self.supervision(),
        )
    }
}
