//! Limiter state in Redis (feature `redis`), so a limit holds across every instance of a
//! service: `LimiterConfig::gcra(q).redis(RedisBackend::new("redis://10.0.0.5/"))`.
//!
//! - [`config`]: where, which [`RedisMode`], which [`FailMode`].
//! - `scripts`: one atomic Lua script per algorithm, on the server's clock.
//! - `remote`: the connection, guarded by a palisade breaker named `<limiter>.redis`, and
//!   the backend's health ([`Event::BackendHealth`](crate::Event::BackendHealth)).
//! - `lease`: leased mode's local batch of units.
//! - `fallback`: the fail mode while Redis is down.
//! - `batch`: strict checks that queue up during a round trip go together in the next.
//! - `store`: strict and leased checks for direct and keyed limiters.
//!
//! docs/DISTRIBUTED.md explains the modes and their trade-offs.

mod batch;
mod config;
mod fallback;
mod lease;
mod link;
mod remote;
mod scripts;
mod store;

use std::sync::Arc;

pub use config::{FailMode, RedisBackend, RedisMode};
pub(crate) use link::RedisLink;
pub(crate) use store::{KeyedRemote, RedisStore};

/// Turns a keyed limiter's key into the text of its Redis key.
pub type KeyEncoder<K> = Arc<dyn Fn(&K) -> String + Send + Sync>;
