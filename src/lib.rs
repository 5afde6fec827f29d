//! # palisade
//!
//! An actor-based resilience runtime for async Rust: named circuit breakers
//! ([`breaker`]), rate limiters ([`limiter`]) and bulkheads ([`bulkhead`]), each a supervised
//! [ractor] actor over lock-free shared state; retries, backoff, deadlines that propagate,
//! timeouts and the [`Policy`] that composes them ([`policy`]); and telemetry ([`telemetry`]:
//! typed events, `tracing`, `metrics`, Prometheus). With the `redis` feature a limiter keeps
//! its quota in Redis, shared by every instance of a service (`RedisBackend`: strict or
//! leased, guarded by a breaker, with a `FailMode`; see docs/DISTRIBUTED.md).
//!
//! One rule shapes everything: **actors own the lifecycle, atomics own the hot path**.
//! `execute` never sends a message and waits for a reply; it works on shared atomics and
//! nudges the primitive's actor with a rare, deduplicated `cast`. The actor owns timers,
//! reconfiguration and telemetry fan-out, and the runtime's supervisor restarts it over the
//! same shared state if it dies. See docs/ARCHITECTURE.md.
//!
//! ```
//! use std::time::Duration;
//! use palisade::{BreakerConfig, BulkheadConfig, CallError, Runtime, SlidingWindow};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = Runtime::start().await?;
//! let db = rt.breaker("crate-doc-db", BreakerConfig::builder()
//!     .sliding_window(SlidingWindow::Count(10))
//!     .minimum_calls(5)
//!     .failure_rate_threshold(50.0)
//!     .wait_in_open(Duration::from_secs(30))
//!     .build()?).await?;
//! let pool = rt.bulkhead("crate-doc-pool", BulkheadConfig::builder().max_concurrent(8).build()?).await?;
//! let mut events = rt.subscribe();
//!
//! for _ in 0..5 {
//!     let r = pool.execute(|| db.execute(|| async { Err::<(), _>("connection refused") })).await;
//!     assert!(r.is_err());
//! }
//! // five failures out of five: the breaker opened and says so
//! assert_eq!(db.state(), palisade::BreakerState::Open);
//! assert!(matches!(events.recv().await?, palisade::Event::BreakerTransition { .. }));
//! let r = db.execute(|| async { Ok::<_, &str>(()) }).await;
//! assert!(matches!(r, Err(CallError::CircuitOpen { .. })));
//! rt.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `prometheus` | on | [`telemetry::prometheus`]: install the exporter on an address, or get a render handle |
//! | `redis` | off | limits shared by every instance through Redis (`RedisBackend`, docs/DISTRIBUTED.md) |
//! | `serde` | off | `Serialize` for every status and config and the [`Runtime::snapshot`]: durations as `"250ms"`, Redis passwords hidden |
//! | `tower` | off | `layer`: tower layers for every primitive, HTTP and gRPC answers to rejections (docs/INTEGRATIONS.md) |
//! | `axum` | off | `tower`, and the peer-IP key from axum's `ConnectInfo` |
//! | `reqwest` | off | `client::Downstream`: a reqwest-middleware middleware (a breaker per authority, deadlines out, `Retry-After`, idempotent retries) |
//! | `test-util` | off | time follows tokio's clock (paused-time tests); fault injection (`Fault`, `inject_fault`) |
//!
//! ## Glossary
//! - **permit**: the right to run one call (bulkhead slot, half-open probe slot, rate quota unit).
//! - **closed / open / half-open**: a breaker passing calls / rejecting them / letting a few
//!   probe calls decide.
//! - **slow call**: a call that ran (or is still running) at least `slow_call_duration`.
//! - **in flight**: admitted and not yet finished.
//! - **rejected**: refused by a primitive without running.
//! - **deadline**: the time by which a task's work must be done, inherited by inner scopes.

#[cfg(feature = "admin")]
pub mod admin;
pub mod breaker;
pub mod bulkhead;
#[cfg(feature = "reqwest")]
pub mod client;
mod clock;
#[cfg(feature = "config")]
pub mod config;
pub mod deadline;
mod error;
mod kind;
#[cfg(feature = "tower")]
pub mod layer;
pub mod limiter;
pub mod policy;
mod runtime;
#[cfg(feature = "serde")]
mod serde_util;
pub mod snapshot;
mod supervisor;
mod sync;
pub mod telemetry;

pub use breaker::{
    Breaker, BreakerConfig, BreakerMetrics, BreakerPermit, BreakerRejected, BreakerState,
    BreakerStatus, CallTiming, ErrorClass, SlidingWindow,
};
pub use bulkhead::{
    Bulkhead, BulkheadConfig, BulkheadRejected, BulkheadStatus, OwnedBulkheadPermit,
};
pub use error::{CallError, ConfigError, ControlError, SpawnError, StartError};
pub use kind::Kind;
pub use limiter::{
    Allowed, Denied, DenyReason, KeyedLimiter, KeyedLimiterConfig, KeyedLimiterStatus, Limiter,
    LimiterConfig, LimiterKind, LimiterStatus, Quota,
};
#[cfg(feature = "redis")]
pub use limiter::{FailMode, KeyEncoder, RedisBackend, RedisMode};
pub use policy::{Backoff, Jitter, Policy, Retry, RetryBudget};
pub use runtime::{Runtime, RuntimeBuilder};
pub use snapshot::Snapshot;
#[cfg(feature = "test-util")]
pub use supervisor::child::Fault;
pub use telemetry::{Event, EventStream};

/// The actor framework palisade runs on, re-exported so users can find a primitive's actor
/// by its registry name: `palisade::ractor::registry::where_is("palisade.breaker.db")`.
pub use ractor;
