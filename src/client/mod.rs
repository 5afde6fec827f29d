//! Outbound HTTP with resilience (feature `reqwest`): [`Downstream`], a
//! [`reqwest-middleware`](https://docs.rs/reqwest-middleware) middleware that gives every
//! downstream authority (scheme, host and port) its own breaker, sends the task's deadline
//! along, honours a downstream's `Retry-After`, and retries idempotent requests.
//!
//! ```no_run
//! use palisade::breaker::KeyedBreakerConfig;
//! use palisade::client::Downstream;
//! use palisade::{Backoff, BreakerConfig};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = palisade::Runtime::start().await?;
//! let breakers = rt.keyed_breaker("outbound", KeyedBreakerConfig::new(BreakerConfig::default()))?;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(Downstream::new(&breakers).retry(3, Backoff::exponential(std::time::Duration::from_millis(50))))
//!     .build();
//! let answer = http.get("http://127.0.0.1:8080/").send().await?;
//! # Ok(()) }
//! ```
//!
//! A rejection is a `reqwest_middleware::Error::Middleware` whose `anyhow` error downcasts to
//! `CallError<Infallible>` (`CircuitOpen`, `RateLimited` for a `Retry-After` still running,
//! `DeadlineExceeded`).

mod authority;
mod downstream;
mod retry_after;

pub use authority::authority_of;
pub use downstream::Downstream;
