//! What a rate-limit check answers.

use std::fmt;
use std::time::Duration;

/// A check that was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allowed {
    /// Requests of cost 1 that would still be admitted right now.
    pub remaining: u32,
    /// Time until the limiter is back to its full quota if nothing else arrives.
    pub reset_after: Duration,
}

/// A check that was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Denied {
    /// The earliest time from now at which the same check would be admitted
    /// (`Duration::MAX` when it never can be: see [`reason`](Self::reason)).
    pub retry_after: Duration,
    /// Requests of cost 1 that would be admitted right now.
    pub remaining: u32,
    /// Time until the limiter is back to its full quota if nothing else arrives.
    pub reset_after: Duration,
    /// Why.
    pub reason: DenyReason,
}

/// Why a check was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The quota is spent for now; wait `retry_after`.
    Exhausted,
    /// The cost is larger than the limiter can ever admit at once; waiting will not help.
    ExceedsCapacity {
        /// The cost asked for.
        cost: u32,
        /// The most the limiter admits in one check.
        capacity: u32,
    },
    /// The per-key quota resolver returned a quota the limiter refuses (zero rate, zero
    /// period...); the field named is the one at fault.
    InvalidQuota {
        /// The quota field at fault.
        field: &'static str,
    },
    /// The limiter's state is in a remote backend (Redis, strict mode) that a check which
    /// never waits cannot reach: use `acquire`, `until_ready` or `execute` instead.
    NeedsAsync,
    /// The limiter's remote backend is down and its fail mode is `FailMode::Closed`.
    BackendDown,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DenyReason::Exhausted => write!(f, "rate limited; retry after {:?}", self.retry_after),
            DenyReason::ExceedsCapacity { cost, capacity } => write!(
                f,
                "a cost of {cost} exceeds the limiter's capacity of {capacity}; it can never be admitted"
            ),
            DenyReason::InvalidQuota { field } => {
                write!(f, "the quota resolved for this key is invalid (`{field}`)")
            }
            DenyReason::NeedsAsync => write!(
                f,
                "this limiter's state is in a remote backend that a non-waiting check cannot reach; use acquire, until_ready or execute"
            ),
            DenyReason::BackendDown => write!(
                f,
                "the limiter's backend is down and it fails closed; retry after {:?}",
                self.retry_after
            ),
        }
    }
}

impl std::error::Error for Denied {}

impl Denied {
    /// A spent quota, retried in `retry_after` nanoseconds.
    #[inline(always)]
    pub(crate) fn exhausted(retry_after: u64, remaining: u32, reset_after: Duration) -> Self {
        Denied {
            retry_after: Duration::from_nanos(retry_after),
            remaining,
            reset_after,
            reason: DenyReason::Exhausted,
        }
    }
}

/// A decision in nanoseconds, as the pure cores return it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed {
        remaining: u32,
        reset_after: u64,
    },
    Denied {
        retry_after: u64,
        remaining: u32,
        reset_after: u64,
    },
    ExceedsCapacity {
        cost: u32,
        capacity: u32,
    },
    /// The per-key quota resolver gave a quota the limiter refuses.
    InvalidQuota {
        field: &'static str,
    },
    /// A check that never waits on a limiter whose state needs a round trip.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    NeedsAsync,
    /// The backend is down and the limiter fails closed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    BackendDown {
        retry_after: u64,
    },
}

impl Decision {
    pub(crate) fn into_result(self) -> Result<Allowed, Denied> {
        match self {
            Decision::Allowed {
                remaining,
                reset_after,
            } => Ok(Allowed {
                remaining,
                reset_after: Duration::from_nanos(reset_after),
            }),
            Decision::Denied {
                retry_after,
                remaining,
                reset_after,
            } => Err(Denied::exhausted(
                retry_after,
                remaining,
                Duration::from_nanos(reset_after),
            )),
            Decision::ExceedsCapacity { cost, capacity } => Err(Denied {
                retry_after: Duration::MAX,
                remaining: 0,
                reset_after: Duration::ZERO,
                reason: DenyReason::ExceedsCapacity { cost, capacity },
            }),
            Decision::InvalidQuota { field } => Err(Denied {
                retry_after: Duration::MAX,
                remaining: 0,
                reset_after: Duration::ZERO,
                reason: DenyReason::InvalidQuota { field },
            }),
            Decision::NeedsAsync => Err(Denied {
                retry_after: Duration::MAX,
                remaining: 0,
                reset_after: Duration::ZERO,
                reason: DenyReason::NeedsAsync,
            }),
            Decision::BackendDown { retry_after } => Err(Denied {
                retry_after: Duration::from_nanos(retry_after),
                remaining: 0,
                reset_after: Duration::ZERO,
                reason: DenyReason::BackendDown,
            }),
        }
    }
}
