//! Rate limiters: GCRA, token bucket, sliding window, fixed window and leaky bucket; direct
//! ([`Limiter`], one shared quota) and keyed ([`KeyedLimiter`], a quota per key).
//!
//! Checks never wait on the actor: the direct limiter's GCRA-family state is one atomic
//! (a CAS loop), window state a small mutex; a keyed limiter's keys live in 64 sharded
//! tables. The actor applies reconfigurations (keeping state: a config change hands nobody a
//! fresh burst) and sweeps idle keys. See [`LimiterConfig`] for which algorithm to choose.

mod actor;
mod algorithm;
mod backend;
mod config;
mod decision;
mod direct;
mod fixed_window;
mod gcra;
mod keyed;
mod leaky_bucket;
mod params;
#[cfg(feature = "redis")]
mod redis;
mod report;
mod sliding_window;
mod status;
mod store;
mod token_bucket;

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

pub(crate) use actor::LimiterCommand;
pub(crate) use backend::Backend;
pub use config::{KeyedLimiterConfig, LimiterConfig, LimiterKind, Quota, QuotaResolver};
pub use decision::{Allowed, Denied, DenyReason};
use direct::LimiterShared;
use keyed::KeyedShared;
#[cfg(feature = "redis")]
pub(crate) use redis::RedisLink;
#[cfg(feature = "redis")]
pub use redis::{FailMode, KeyEncoder, RedisBackend, RedisMode};
pub use status::{KeyedLimiterStatus, LimiterStatus};

use crate::error::{CallError, ControlError, SpawnError};
use crate::kind::Kind;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::Telemetry;

/// A denial as a call's error, each reason its own variant.
pub(crate) fn rejection<E>(name: &Arc<str>, d: Denied) -> CallError<E> {
    let name = Arc::clone(name);
    match d.reason {
        DenyReason::ExceedsCapacity { cost, capacity } => CallError::ExceedsCapacity {
            name,
            cost,
            capacity,
        },
        DenyReason::BackendDown => CallError::BackendDown {
            name,
            retry_after: d.retry_after,
        },
        DenyReason::InvalidQuota { field } => CallError::InvalidQuota { name, field },
        _ => CallError::RateLimited {
            name,
            retry_after: d.retry_after,
        },
    }
}

async fn reconfigure_through(
    slot: &ActorSlot<LimiterCommand>,
    name: &Arc<str>,
    config: LimiterConfig,
) -> Result<(), ControlError> {
    slot.ask(|reply| LimiterCommand::Reconfigure(Box::new(config), reply))
        .await
        .ok_or_else(|| ControlError::Unavailable {
            kind: Kind::Limiter,
            name: Arc::clone(name),
        })?
        .map_err(ControlError::from)
}

/// A named rate limiter with one shared quota, from
/// [`Runtime::limiter`](crate::Runtime::limiter). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Limiter {
    shared: Arc<LimiterShared>,
}

impl Limiter {
    pub(crate) fn new(
        name: Arc<str>,
        config: LimiterConfig,
        telemetry: Telemetry,
        backend: Backend,
    ) -> Result<Self, SpawnError> {
        Ok(Self {
            shared: Arc::new(LimiterShared::new(name, config, telemetry, backend)?),
        })
    }

    /// The name, shared (no copy).
    #[cfg(feature = "tower")]
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.shared.report.name
    }

    /// `true` when checks reach a remote backend (some need an await).
    #[cfg(feature = "tower")]
    pub(crate) fn is_remote(&self) -> bool {
        self.shared.is_remote()
    }

    /// The quota and window in force, as the `RateLimit` header fields advertise them.
    #[cfg(feature = "tower")]
    pub(crate) fn advertised(&self) -> (u32, std::time::Duration) {
        self.shared.advertised()
    }

    pub(crate) fn shared(&self) -> Arc<LimiterShared> {
        Arc::clone(&self.shared)
    }

    /// Restarts of its actor since spawn, and whether it was left down.
    pub(crate) fn supervision(&self) -> (u32, bool) {
        (self.shared.slot.restarts(), self.shared.slot.is_degraded())
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.report.name
    }

    /// Checks (and spends) one unit. Never waits.
    ///
    /// # Errors
    /// [`Denied`] with `retry_after` when the quota is spent.
    ///
    /// # Examples
    /// ```
    /// use palisade::{LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let api = rt.limiter("doc-api", LimiterConfig::gcra(Quota::per_hour(2))).await?;
    /// assert_eq!(api.check()?.remaining, 1);
    /// assert_eq!(api.check()?.remaining, 0);
    /// let denied = api.check().unwrap_err();
    /// // the next unit is due half an hour after the first (less the time these lines took)
    /// assert!(denied.retry_after <= std::time::Duration::from_secs(1800));
    /// assert!(denied.retry_after > std::time::Duration::from_secs(1799));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn check(&self) -> Result<Allowed, Denied> {
        self.shared.check_n(1)
    }

    /// Spends one unit or says why not, as a call error (the policy pipeline): without an
    /// await on local state, through [`acquire`](Self::acquire) on a remote backend.
    pub(crate) async fn admit<E>(&self) -> Result<(), CallError<E>> {
        match self.admit_now(self.shared.clock.now()) {
            Some(answer) => answer,
            None => self
                .acquire(1)
                .await
                .map(drop)
                .map_err(|d| rejection(&self.shared.report.name, d)),
        }
    }

    /// [`admit`](Self::admit) at `now` when it needs no await (local state); `None` when the
    /// state is remote.
    #[inline]
    pub(crate) fn admit_now<E>(&self, now: crate::clock::Now) -> Option<Result<(), CallError<E>>> {
        if self.shared.is_remote() {
            return None;
        }
        Some(
            self.shared
                .check_n_at(1, now)
                .map(drop)
                .map_err(|d| rejection(&self.shared.report.name, d)),
        )
    }

    /// Checks (and spends) `n` units, reaching the limiter's backend when its state is
    /// remote (one Redis round trip in strict mode; the lease, or one wait for its refill,
    /// in leased mode). On local state it is [`check_n`](Self::check_n) and never waits.
    ///
    /// # Errors
    /// [`Denied`], as for [`check_n`](Self::check_n); while a remote backend is down, what
    /// its fail mode says.
    ///
    /// # Cancel safety
    /// Cancel safe: a cancelled strict check may or may not have spent its units in Redis.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use palisade::{LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// // 1000 units a second: a request costs what it weighs (bytes, tokens, rows...)
    /// let bytes = rt.limiter("doc-bytes", LimiterConfig::gcra(Quota::per_second(1000))).await?;
    /// let ok = bytes.acquire(600).await?;
    /// assert_eq!(ok.remaining, 400);
    /// let denied = bytes.acquire(600).await.unwrap_err();
    /// assert!(denied.retry_after > Duration::ZERO, "200 more units arrive in 200 ms");
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, n: u32) -> Result<Allowed, Denied> {
        self.shared.acquire_n(n).await
    }

    /// The limiter's state now: its algorithm and quota, what a check of one unit would
    /// get (units available, `retry_after`, `reset_after`), shadow mode. Spends nothing.
    ///
    /// # Examples
    /// ```
    /// use palisade::{LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let api = rt.limiter("doc-status", LimiterConfig::gcra(Quota::per_hour(3))).await?;
    /// assert!(api.check().is_ok());
    /// let s = api.status();
    /// assert_eq!(s.available, Some(2));
    /// assert_eq!(api.status().available, Some(2), "asking spends nothing");
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> LimiterStatus {
        self.shared.status()
    }

    /// Checks (and spends) `n` units at once.
    ///
    /// # Errors
    /// [`Denied`]; with [`DenyReason::ExceedsCapacity`] when `n` is more than the limiter can
    /// ever admit at once (waiting would never help).
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<Allowed, Denied> {
        self.shared.check_n(n)
    }

    /// Waits until `n` units are admitted, never past the task's
    /// [deadline](crate::deadline). Without a deadline the wait is still bounded: no
    /// limiter takes longer than [`Quota::MAX_PERIOD`] (366 days) to refill, so set a
    /// deadline for any wait a caller should not sit through.
    ///
    /// # Errors
    /// [`Denied`] at once when the wait would not fit in the deadline, or the cost can never
    /// be admitted.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is spent until the check admits.
    pub async fn until_ready(&self, n: u32) -> Result<Allowed, Denied> {
        report::until_ready(|| self.shared.acquire_n(n)).await
    }

    /// Runs `f` if one unit is admitted now.
    ///
    /// # Errors
    /// [`CallError::RateLimited`] with `retry_after`; [`CallError::BackendDown`] when a
    /// remote backend is down and the limiter fails closed; or [`CallError::Inner`].
    ///
    /// # Cancel safety
    /// Cancel safe before `f` runs (nothing is spent until the check admits; a strict
    /// Redis check may or may not have spent its unit); after, as cancel safe as `f`.
    pub async fn execute<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.admit().await?;
        f().await.map_err(CallError::Inner)
    }

    /// Waits for a unit (see [`until_ready`](Self::until_ready)), then runs `f`.
    ///
    /// # Errors
    /// As for [`execute`](Self::execute).
    ///
    /// # Cancel safety
    /// Cancel safe while it waits: nothing is spent until the check admits (a strict Redis
    /// check may or may not have spent its unit); once `f` runs, as cancel safe as `f`.
    pub async fn execute_waiting<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.until_ready(1)
            .await
            .map_err(|d| rejection(&self.shared.report.name, d))?;
        f().await.map_err(CallError::Inner)
    }

    /// Back to a full quota.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// The configuration in force.
    pub fn config(&self) -> LimiterConfig {
        self.shared.config()
    }

    /// Changes the quota (same algorithm family) or shadow mode through the actor, keeping
    /// the current state, and emits [`Event::Reconfigured`](crate::Event::Reconfigured).
    ///
    /// # Errors
    /// [`ControlError::Config`] for a refused config or another family;
    /// [`ControlError::Unavailable`] when the actor is not running.
    ///
    /// # Cancel safety
    /// Once the first poll has handed the new config to the actor, dropping the future does
    /// not take it back: the actor applies it (or refuses it) all the same, and only the
    /// answer is lost. Dropped before its first poll, nothing changes.
    pub async fn reconfigure(&self, config: LimiterConfig) -> Result<(), ControlError> {
        reconfigure_through(&self.shared.slot, &self.shared.report.name, config).await
    }

    /// Fault injection for supervision tests (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn inject_fault(&self, fault: crate::Fault) -> bool {
        self.shared.slot.inject(fault)
    }
}

/// A named rate limiter with a quota per key (user, IP, API key), from
/// [`Runtime::keyed_limiter`](crate::Runtime::keyed_limiter). Cheap to clone.
///
/// Memory stays bounded whatever keys arrive: at most `max_keys` are held, and idle keys are
/// swept (counted in `palisade_limiter_evictions_total`). A key that holds state is never
/// dropped, so no one escapes a limit by flooding new keys: at the cap, new keys share one
/// overflow quota until idle keys make room (see
/// [`KeyedLimiterConfig::max_keys`](crate::KeyedLimiterConfig::max_keys)). Metrics never
/// carry the key.
pub struct KeyedLimiter<K> {
    shared: Arc<KeyedShared<K>>,
}

impl<K> Clone for KeyedLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> std::fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyedLimiter").field(&self.shared).finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedLimiter<K> {
    pub(crate) fn new(
        name: Arc<str>,
        config: KeyedLimiterConfig<K>,
        telemetry: Telemetry,
        backend: Backend,
    ) -> Result<Self, SpawnError> {
        Ok(Self {
            shared: Arc::new(KeyedShared::new(name, config, telemetry, backend)?),
        })
    }

    /// The quota and window `key` runs under, as the `RateLimit` header fields advertise
    /// them.
    #[cfg(feature = "tower")]
    pub(crate) fn advertised(&self, key: &K) -> (u32, std::time::Duration) {
        self.shared.advertised(key)
    }

    pub(crate) fn shared(&self) -> Arc<KeyedShared<K>> {
        Arc::clone(&self.shared)
    }

    /// Restarts of its actor since spawn, and whether it was left down.
    pub(crate) fn supervision(&self) -> (u32, bool) {
        (self.shared.slot.restarts(), self.shared.slot.is_degraded())
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.report.name
    }

    /// The name, shared (no copy).
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.shared.report.name
    }

    /// `true` when the quotas live in a remote backend.
    pub(crate) fn is_remote(&self) -> bool {
        self.shared.is_remote()
    }

    /// Checks (and spends) one unit of `key`'s quota. Never waits.
    ///
    /// # Errors
    /// [`Denied`] when the key's quota is spent (or its resolved quota is invalid).
    #[inline]
    pub fn check(&self, key: &K) -> Result<Allowed, Denied> {
        self.shared.check_n(key, 1)
    }

    /// Checks (and spends) `n` units of `key`'s quota.
    ///
    /// # Errors
    /// As for [`Limiter::check_n`].
    #[inline]
    pub fn check_n(&self, key: &K, n: u32) -> Result<Allowed, Denied> {
        self.shared.check_n(key, n)
    }

    /// Checks (and spends) `n` units of `key`'s quota, reaching the limiter's backend when
    /// its state is remote (one Redis round trip); on local state it never waits.
    ///
    /// # Errors
    /// As for [`Limiter::acquire`].
    ///
    /// # Cancel safety
    /// Cancel safe on local state (it never waits); a cancelled strict Redis check may or
    /// may not have spent its unit.
    pub async fn acquire(&self, key: &K, n: u32) -> Result<Allowed, Denied> {
        self.shared.acquire_n(key, n).await
    }

    /// Waits until `n` units of `key`'s quota are admitted, never past the deadline.
    ///
    /// # Errors
    /// As for [`Limiter::until_ready`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn until_ready(&self, key: &K, n: u32) -> Result<Allowed, Denied> {
        report::until_ready(|| self.shared.acquire_n(key, n)).await
    }

    /// Runs `f` if one unit of `key`'s quota is admitted now.
    ///
    /// # Errors
    /// [`CallError::RateLimited`] or [`CallError::Inner`].
    ///
    /// # Cancel safety
    /// Cancel safe before `f` runs (nothing is spent until the check admits; a strict Redis
    /// check may or may not have spent its unit); after, as cancel safe as `f`.
    pub async fn execute<F, Fut, T, E>(&self, key: &K, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.acquire(key, 1)
            .await
            .map_err(|d| rejection(&self.shared.report.name, d))?;
        f().await.map_err(CallError::Inner)
    }

    /// Waits for a unit of `key`'s quota, then runs `f`.
    ///
    /// # Errors
    /// As for [`execute`](Self::execute).
    ///
    /// # Cancel safety
    /// Cancel safe while it waits: nothing is spent until the check admits (a strict Redis
    /// check may or may not have spent its unit); once `f` runs, as cancel safe as `f`.
    pub async fn execute_waiting<F, Fut, T, E>(&self, key: &K, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.until_ready(key, 1)
            .await
            .map_err(|d| rejection(&self.shared.report.name, d))?;
        f().await.map_err(CallError::Inner)
    }

    /// Forgets `key`: its next check starts from a full quota. `true` if it was held.
    pub fn reset(&self, key: &K) -> bool {
        self.shared.reset(key)
    }

    /// The keyed limiter's state now: its algorithm and base quota, the keys held and the
    /// cap, shadow mode. Spends nothing.
    pub fn status(&self) -> KeyedLimiterStatus {
        self.shared.status()
    }

    /// What a check of one unit of `key` would get now (see [`Limiter::status`]). Spends
    /// nothing and stores nothing: a key not held answers as a fresh one would. For a
    /// quota kept in Redis, `available` is `None` (only Redis knows).
    ///
    /// # Examples
    /// ```
    /// use palisade::{LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let users = rt.keyed_limiter("doc-status-of", LimiterConfig::gcra(Quota::per_minute(5))).await?;
    /// users.check(&7_u64)?;
    /// assert_eq!(users.status_of(&7).available, Some(4));
    /// assert_eq!(users.status_of(&8).available, Some(5), "a key not held answers as a fresh one");
    /// assert_eq!(users.len(), 1, "asking stored nothing");
    /// # Ok(()) }
    /// ```
    pub fn status_of(&self, key: &K) -> LimiterStatus {
        self.shared.status_of(key)
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// `true` when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The base configuration in force.
    pub fn config(&self) -> LimiterConfig {
        self.shared.config()
    }

    /// Changes the base quota (keys without a resolver take it, keeping their state) or
    /// shadow mode through the actor.
    ///
    /// # Errors
    /// As for [`Limiter::reconfigure`].
    ///
    /// # Cancel safety
    /// Once the first poll has handed the new config to the actor, dropping the future does
    /// not take it back: the actor applies it (or refuses it) all the same, and only the
    /// answer is lost. Dropped before its first poll, nothing changes.
    pub async fn reconfigure(&self, config: LimiterConfig) -> Result<(), ControlError> {
        reconfigure_through(&self.shared.slot, &self.shared.report.name, config).await
    }

    /// Fault injection for supervision tests (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn inject_fault(&self, fault: crate::Fault) -> bool {
        self.shared.slot.inject(fault)
    }
}
