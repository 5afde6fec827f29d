//! A limiter's way to Redis as the runtime builds it, in two steps so that nothing can
//! refuse the limiter once its guard breaker runs: [`RedisLink::set_up`] validates the
//! backend and sets the connection up; [`UnguardedLink::guarded`] puts it behind the guard
//! the runtime spawned (`<limiter>.redis`).

use std::sync::Arc;

use super::config::RedisBackend;
use super::fallback::Fallback;
use super::remote::{Conn, Remote};
use crate::breaker::{Breaker, BreakerConfig};
use crate::error::ConfigError;
use crate::telemetry::Telemetry;

/// The guarded connection and the fail mode a limiter's Redis store is built around.
#[derive(Debug)]
pub(crate) struct RedisLink {
    pub(super) remote: Remote,
    pub(super) fallback: Fallback,
}

/// A validated backend with its connection set up (not made), waiting for its guard.
pub(crate) struct UnguardedLink {
    conn: Conn,
    guard: BreakerConfig,
}

impl std::fmt::Debug for UnguardedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnguardedLink").finish_non_exhaustive()
    }
}

impl RedisLink {
    /// Validates `backend` and sets its connection up: every refusal happens here.
    pub(crate) fn set_up(backend: &RedisBackend) -> Result<UnguardedLink, ConfigError> {
        backend.validate()?;
        Ok(UnguardedLink {
            guard: backend.guard()?,
            conn: Conn::set_up(backend)?,
        })
    }
}

impl UnguardedLink {
    /// The config of the breaker that must guard this link.
    pub(crate) fn guard_config(&self) -> BreakerConfig {
        self.guard.clone()
    }

    /// The link behind `guard`, for the limiter `name`.
    pub(crate) fn guarded(
        self,
        name: &Arc<str>,
        backend: &RedisBackend,
        guard: Breaker,
        telemetry: Telemetry,
    ) -> RedisLink {
        RedisLink {
            remote: Remote::new(Arc::clone(name), self.conn, backend, guard, telemetry),
            fallback: Fallback::new(name, backend.on_failure),
        }
    }
}
