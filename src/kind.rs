//! The kinds of primitive: what names, events, errors and metrics say a thing is.

use std::fmt;

/// The kind of primitive an event or error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Kind {
    /// A circuit breaker.
    Breaker,
    /// A rate limiter, direct or keyed.
    Limiter,
    /// A bulkhead.
    Bulkhead,
    /// A retry.
    Retry,
}

impl Kind {
    /// The lowercase name used in registry names, metric labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Breaker => "breaker",
            Kind::Limiter => "limiter",
            Kind::Bulkhead => "bulkhead",
            Kind::Retry => "retry",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
