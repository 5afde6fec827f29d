//! Combinators: retry with backoff and jitter, deadlines that propagate, per-attempt
//! timeouts, and the [`Policy`] that composes them with breakers, limiters and bulkheads.

mod backoff;
mod budget;
mod keyed;
mod pipeline;
mod retry;
mod timeout;

/// The deadline module, also here (`palisade::policy::deadline`) where it used to live.
pub use crate::deadline;
pub use backoff::{Backoff, Jitter};
pub use budget::RetryBudget;
pub use pipeline::Policy;
pub use retry::{Retry, RetryBuilder, RetryInfo};
pub use timeout::timeout;
