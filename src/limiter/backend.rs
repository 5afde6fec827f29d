//! Where a limiter keeps its state, as the runtime hands it over: in memory, or in Redis
//! behind a guard breaker the runtime spawned (feature `redis`). The limiter builds its
//! store around it; it never spawns anything itself.

/// A limiter's backend, built by [`Runtime`](crate::Runtime) before the limiter.
#[derive(Debug)]
pub(crate) enum Backend {
    /// In this process's memory.
    Local,
    /// In Redis, shared by every instance.
    #[cfg(feature = "redis")]
    Redis(super::redis::RedisLink),
}
