//! The runtime: a `Clone` handle to the root supervisor, the typed registry of handles and
//! the event bus.

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::breaker::{Breaker, BreakerConfig};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::error::{ConfigError, SpawnError, StartError};
use crate::kind::Kind;
use crate::limiter::{Backend, KeyedLimiter, KeyedLimiterConfig, Limiter, LimiterConfig};
use crate::snapshot::{Inspect, PrimitiveSnapshot, Snapshot};
use crate::supervisor::child::{ChildSpec, Primitive, PrimitiveSpec};
use crate::supervisor::{Intensity, Supervisor, SupervisorMsg};
use crate::telemetry::{EventStream, Telemetry};

/// The palisade runtime: start one per application, spawn named primitives from it at
/// startup, and subscribe to its events.
///
/// `Runtime` is a cheap `Clone` handle. Primitives keep working on their shared state even
/// after [`shutdown`](Runtime::shutdown) (their actors are gone, so timers stop).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rt = palisade::Runtime::builder().event_capacity(256).start().await?;
/// let pool = rt.bulkhead("payments", palisade::BulkheadConfig::builder().max_concurrent(2).build()?).await?;
/// assert!(rt.get_bulkhead("payments").is_some());
/// assert_eq!(pool.execute(|| async { Ok::<_, std::io::Error>(7) }).await?, 7);
/// rt.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    supervisor: ActorRef<SupervisorMsg>,
    telemetry: Telemetry,
    registry: Mutex<Registry>,
    shut_down: AtomicBool,
    /// The config file and what was applied from it (one reload at a time).
    #[cfg(feature = "config")]
    config: tokio::sync::Mutex<crate::config::ConfigState>,
    /// The file watcher, when asked for; dropped at shutdown.
    #[cfg(feature = "config")]
    watch: Mutex<Option<crate::config::Watch>>,
}

#[derive(Debug, Default)]
struct Registry {
    breakers: HashMap<Arc<str>, Breaker>,
    limiters: HashMap<Arc<str>, Limiter>,
    keyed: HashMap<Arc<str>, Box<dyn Any + Send + Sync>>,
    /// The keyed limiters again, as the snapshot sees them (without their key type).
    keyed_views: HashMap<Arc<str>, Arc<dyn Inspect>>,
    bulkheads: HashMap<Arc<str>, Bulkhead>,
    /// The keyed breakers, as the snapshot sees them (their breakers run no actor).
    keyed_breakers: HashMap<Arc<str>, Arc<dyn Inspect>>,
    /// Retries and policies a config file declared (values: a reload swaps them).
    #[cfg(feature = "config")]
    retries: HashMap<String, crate::Retry>,
    #[cfg(feature = "config")]
    policies: HashMap<String, crate::Policy>,
}

/// Builds a [`Runtime`].
///
/// # Defaults
/// - `event_capacity`: 1024 events held for a slow subscriber before it lags (per lane:
///   lifecycle events and per-call events are held apart); at most
///   [`MAX_EVENT_CAPACITY`](Self::MAX_EVENT_CAPACITY).
/// - `max_restarts`: 5 restarts of one actor inside `restart_window` (10 s); one more exit
///   leaves it down, degraded.
/// - `call_duration_buckets`: 0.5 ms to 10 s (see
///   [`call_duration_buckets`](Self::call_duration_buckets)).
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    event_capacity: usize,
    max_restarts: u32,
    restart_window: Duration,
    call_duration_buckets: Option<Vec<Duration>>,
    #[cfg(feature = "config")]
    config: crate::config::FileSettings,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self {
            event_capacity: 1024,
            max_restarts: 5,
            restart_window: Duration::from_secs(10),
            call_duration_buckets: None,
            #[cfg(feature = "config")]
            config: crate::config::FileSettings::default(),
        }
    }
}

impl RuntimeBuilder {
    /// The largest `event_capacity` accepted: 65,536 events per lane (the bus allocates
    /// every slot up front; a subscriber further behind is better told that it lagged).
    pub const MAX_EVENT_CAPACITY: usize = 1 << 16;

    /// Events the bus holds for a subscriber that has not read them yet, per lane (1 to
    /// [`MAX_EVENT_CAPACITY`](Self::MAX_EVENT_CAPACITY); checked by `start`).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Restarts of one actor allowed inside the restart window.
    pub fn max_restarts(mut self, max_restarts: u32) -> Self {
        self.max_restarts = max_restarts;
        self
    }

    /// The sliding window over which restarts are counted.
    pub fn restart_window(mut self, window: Duration) -> Self {
        self.restart_window = window;
        self
    }

    /// The upper bounds (`le`) of the finite buckets of every breaker's
    /// `palisade_call_duration_seconds` histogram, instead of the default 0.5 ms, 1, 2.5, 5,
    /// 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5 and 10 s: 1 to 14 durations, increasing (a
    /// `+Inf` bucket always follows). Put a bound on each latency objective you alert on,
    /// so the fraction of calls within it is exact. Checked by `start`.
    pub fn call_duration_buckets(mut self, bounds: impl IntoIterator<Item = Duration>) -> Self {
        self.call_duration_buckets = Some(bounds.into_iter().collect());
        self
    }

    /// Spawns everything `path` declares when the runtime starts (feature `config`; see
    /// [`palisade::config`](crate::config)). A refused file fails `start` with
    /// [`StartError::ConfigFile`]; [`Runtime::reload_config`] reads it again.
    #[cfg(feature = "config")]
    pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.path = Some(path.into());
        self
    }

    /// The prefix of the environment variables that override the config file
    /// (default [`ENV_PREFIX`](crate::config::ENV_PREFIX), `PALISADE_`).
    #[cfg(feature = "config")]
    pub fn config_env_prefix(mut self, prefix: &str) -> Self {
        self.config.env_prefix = prefix.to_owned();
        self
    }

    /// Watches the config file and reloads it when its text changes (its directory is
    /// watched, so editors' atomic renames and Kubernetes ConfigMap swaps are seen). Each
    /// outcome is an [`Event::ConfigReloaded`](crate::Event::ConfigReloaded) or
    /// [`Event::ConfigRejected`](crate::Event::ConfigRejected). Off by default.
    #[cfg(feature = "config")]
    pub fn watch_config(mut self, on: bool) -> Self {
        self.config.watch = on;
        self
    }

    /// Starts the root supervisor and returns the runtime.
    ///
    /// # Errors
    /// [`StartError::Config`] for an `event_capacity` of zero or above
    /// [`MAX_EVENT_CAPACITY`](Self::MAX_EVENT_CAPACITY), a zero `restart_window`, or
    /// `call_duration_buckets` that are empty, more than 14, zero or not increasing;
    /// [`StartError::Supervisor`] if the actor cannot start.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes may leave the root supervisor actor running
    /// with nothing attached to it (it holds no name and no primitive): another runtime
    /// starts freely.
    pub async fn start(self) -> Result<Runtime, StartError> {
        if self.event_capacity == 0 || self.event_capacity > Self::MAX_EVENT_CAPACITY {
            return Err(ConfigError::refused(
                "event_capacity",
                self.event_capacity,
                format!("must be between 1 and {}", Self::MAX_EVENT_CAPACITY),
            )
            .into());
        }
        if self.restart_window.is_zero() {
            return Err(ConfigError::refused(
                "restart_window",
                self.restart_window,
                "must be greater than zero",
            )
            .into());
        }
        let bounds = self
            .call_duration_buckets
            .as_deref()
            .map(crate::telemetry::DurationBounds::new)
            .transpose()?;
        crate::telemetry::metrics::describe();
        let mut telemetry = Telemetry::new(self.event_capacity);
        if let Some(bounds) = bounds {
            telemetry = telemetry.with_duration_bounds(bounds);
        }
        let intensity = Intensity {
            max_restarts: self.max_restarts,
            window: self.restart_window,
        };
        let (supervisor, _join) = Actor::spawn(None, Supervisor, (telemetry.clone(), intensity))
            .await
            .map_err(|e| StartError::Supervisor(e.to_string()))?;
        let runtime = Runtime {
            inner: Arc::new(Inner {
                supervisor,
                telemetry,
                registry: Mutex::new(Registry::default()),
                shut_down: AtomicBool::new(false),
                #[cfg(feature = "config")]
                config: tokio::sync::Mutex::new(crate::config::ConfigState::new(&self.config)),
                #[cfg(feature = "config")]
                watch: Mutex::new(None),
            }),
        };
        #[cfg(feature = "config")]
        if let Err(e) = runtime.start_config(&self.config).await {
            runtime.shutdown().await;
            return Err(StartError::ConfigFile(e));
        }
        Ok(runtime)
    }
}

impl Runtime {
    /// Starts a runtime with the default settings.
    ///
    /// # Errors
    /// [`StartError::Supervisor`] if the root supervisor cannot start.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes may leave the root supervisor actor running
    /// with nothing attached to it (it holds no name and no primitive): another runtime
    /// starts freely.
    ///
    /// # Examples
    /// ```
    /// use palisade::{BreakerConfig, Runtime};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = Runtime::start().await?;
    /// let db = rt.breaker("doc-start", BreakerConfig::default()).await?;
    /// assert_eq!(db.execute(|| async { Ok::<_, ()>(7) }).await.ok(), Some(7));
    /// rt.shutdown().await;
    /// assert!(rt.is_shut_down());
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Runtime, StartError> {
        RuntimeBuilder::default().start().await
    }

    /// A builder for a runtime with other settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Subscribes to every event published from now on.
    ///
    /// # Examples
    /// ```
    /// use palisade::{BreakerConfig, BreakerState, Event, Runtime};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = Runtime::start().await?;
    /// let mut events = rt.subscribe();
    /// let db = rt.breaker("doc-events", BreakerConfig::default()).await?;
    /// db.force_open().await;
    /// loop {
    ///     if let Event::BreakerTransition { name, to, .. } = events.recv().await? {
    ///         assert_eq!((&*name, to), ("doc-events", BreakerState::ForcedOpen));
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> EventStream {
        self.inner.telemetry.subscribe()
    }

    /// The event bus's publishing side (for retries that report on it).
    pub(crate) fn telemetry(&self) -> Telemetry {
        self.inner.telemetry.clone()
    }

    /// Spawns a circuit breaker named `name` (actor `palisade.breaker.<name>`).
    ///
    /// # Errors
    /// [`SpawnError`] for an empty, invalid or taken name, a shut-down runtime, or a config
    /// the breaker refuses.
    ///
    /// # Cancel safety
    /// Cancelling the returned future does not cancel the spawn, which runs on a task of
    /// its own: a primitive whose actor was started is always registered (find it with
    /// the `get_*` look-ups); the caller only stops waiting for the handle.
    pub async fn breaker(&self, name: &str, config: BreakerConfig) -> Result<Breaker, SpawnError> {
        let (rt, owned) = (self.clone(), name.to_owned());
        to_the_end(Kind::Breaker, name, async move {
            rt.spawn_breaker(&owned, config).await
        })
        .await
    }

    async fn spawn_breaker(
        &self,
        name: &str,
        config: BreakerConfig,
    ) -> Result<Breaker, SpawnError> {
        let name = self.admit(Kind::Breaker, name, |r, n| {
            r.breakers.contains_key(n) || r.keyed_breakers.contains_key(n)
        })?;
        let breaker = Breaker::new(name.clone(), config, self.inner.telemetry.clone())?;
        self.spawn(breaker.shared()).await?;
        self.register(|r| r.breakers.insert(name, breaker.clone()));
        Ok(breaker)
    }

    /// Spawns a rate limiter with one shared quota (actor `palisade.limiter.<name>`).
    ///
    /// A limiter on Redis makes its connection here, waiting at most the backend's timeout
    /// for a `PING`; one that gets no answer starts in its fail mode (see
    /// docs/DISTRIBUTED.md).
    ///
    /// # Errors
    /// [`SpawnError`] as for [`breaker`](Self::breaker); a zero rate or window is refused here.
    ///
    /// # Cancel safety
    /// Cancelling the returned future does not cancel the spawn, which runs on a task of
    /// its own: a primitive whose actor was started is always registered (find it with
    /// the `get_*` look-ups); the caller only stops waiting for the handle.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use palisade::{LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// // 100 a second, in bursts of at most 10
    /// let api = rt.limiter("doc-api", LimiterConfig::gcra(Quota::per_second(100).burst(10))).await?;
    /// let admitted = (0..20).filter(|_| api.check().is_ok()).count();
    /// assert_eq!(admitted, 10);
    /// let denied = api.check().unwrap_err();
    /// assert!(denied.retry_after > Duration::ZERO);
    /// # Ok(()) }
    /// ```
    pub async fn limiter(&self, name: &str, config: LimiterConfig) -> Result<Limiter, SpawnError> {
        let (rt, owned) = (self.clone(), name.to_owned());
        to_the_end(Kind::Limiter, name, async move {
            rt.spawn_limiter(&owned, config).await
        })
        .await
    }

    async fn spawn_limiter(
        &self,
        name: &str,
        config: LimiterConfig,
    ) -> Result<Limiter, SpawnError> {
        let name = self.admit(Kind::Limiter, name, |r, n| {
            r.limiters.contains_key(n) || r.keyed.contains_key(n)
        })?;
        config.validate()?;
        let backend = self.limiter_backend(&name, &config).await?;
        let limiter = Limiter::new(name.clone(), config, self.inner.telemetry.clone(), backend)?;
        // a remote backend's connection is made now, not by the first checks' race
        limiter.shared().connect().await;
        self.spawn(limiter.shared()).await?;
        self.register(|r| r.limiters.insert(name, limiter.clone()));
        Ok(limiter)
    }

    /// Spawns a keyed rate limiter: one quota per key (actor `palisade.limiter.<name>`).
    /// Accepts a [`LimiterConfig`] (same quota for every key) or a [`KeyedLimiterConfig`]
    /// (per-key quotas, key cap, idle eviction).
    ///
    /// # Errors
    /// [`SpawnError`] as for [`limiter`](Self::limiter).
    ///
    /// # Cancel safety
    /// Cancelling the returned future does not cancel the spawn, which runs on a task of
    /// its own: a primitive whose actor was started is always registered (find it with
    /// the `get_*` look-ups); the caller only stops waiting for the handle.
    ///
    /// # Examples
    /// ```
    /// use palisade::{KeyedLimiterConfig, LimiterConfig, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// // a quota per user: 2 a minute on the free plan, 100 on the paid one
    /// let per_user = rt
    ///     .keyed_limiter(
    ///         "doc-users",
    ///         KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_minute(2)))
    ///             .quota_per_key(|user: &String| {
    ///                 if user.starts_with("paid:") { Quota::per_minute(100) } else { Quota::per_minute(2) }
    ///             })
    ///             .max_keys(100_000),
    ///     )
    ///     .await?;
    /// let free = "free:ann".to_string();
    /// assert!(per_user.check(&free).is_ok() && per_user.check(&free).is_ok());
    /// assert!(per_user.check(&free).is_err(), "the free plan's 2 are spent");
    /// assert!(per_user.check(&"paid:bob".to_string()).is_ok(), "another key, its own quota");
    /// assert_eq!(per_user.status().keys, 2);
    /// # Ok(()) }
    /// ```
    pub async fn keyed_limiter<K>(
        &self,
        name: &str,
        config: impl Into<KeyedLimiterConfig<K>>,
    ) -> Result<KeyedLimiter<K>, SpawnError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        let (rt, owned, config) = (self.clone(), name.to_owned(), config.into());
        to_the_end(Kind::Limiter, name, async move {
            rt.spawn_keyed_limiter(&owned, config).await
        })
        .await
    }

    async fn spawn_keyed_limiter<K>(
        &self,
        name: &str,
        config: KeyedLimiterConfig<K>,
    ) -> Result<KeyedLimiter<K>, SpawnError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        let name = self.admit(Kind::Limiter, name, |r, n| {
            r.limiters.contains_key(n) || r.keyed.contains_key(n)
        })?;
        config.validate()?;
        let backend = self.limiter_backend(&name, &config.base).await?;
        let limiter =
            KeyedLimiter::new(name.clone(), config, self.inner.telemetry.clone(), backend)?;
        limiter.shared().connect().await;
        self.spawn(limiter.shared()).await?;
        let stored = limiter.clone();
        self.register(|r| {
            r.keyed_views.insert(
                Arc::clone(&name),
                Arc::new(stored.clone()) as Arc<dyn Inspect>,
            );
            r.keyed.insert(name, Box::new(stored))
        });
        Ok(limiter)
    }

    /// The backend a limiter named `name` keeps its state in, built from a validated
    /// `config`. For Redis: the connection is set up (any refusal happens here), then the
    /// breaker that guards it is spawned as `<name>.redis`; nothing refuses the limiter
    /// after that, so a refused limiter never leaves a guard behind.
    async fn limiter_backend(
        &self,
        name: &Arc<str>,
        config: &LimiterConfig,
    ) -> Result<Backend, SpawnError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &config.redis {
            let link = crate::limiter::RedisLink::set_up(redis)?;
            let guard_name = format!("{name}.redis");
            let guard = self.spawn_breaker(&guard_name, link.guard_config()).await?;
            let telemetry = self.inner.telemetry.clone();
            return Ok(Backend::Redis(link.guarded(name, redis, guard, telemetry)));
        }
        let _ = (name, config);
        Ok(Backend::Local)
    }

    /// Makes a breaker per key (per downstream host, per tenant...) from one config: see
    /// [`KeyedBreaker`](crate::breaker::KeyedBreaker). The name is taken as a breaker's
    /// is (a breaker and a keyed breaker cannot share one). Its breakers run no actor of
    /// their own: each moves from open to half-open when its next call arrives.
    ///
    /// # Errors
    /// [`SpawnError`] for an empty, invalid or taken name, a shut-down runtime, or a config
    /// refused by [`KeyedBreakerConfig::validate`](crate::breaker::KeyedBreakerConfig::validate).
    pub fn keyed_breaker<K>(
        &self,
        name: &str,
        config: crate::breaker::KeyedBreakerConfig,
    ) -> Result<crate::breaker::KeyedBreaker<K>, SpawnError>
    where
        K: Hash + Eq + Clone + std::fmt::Display + Send + Sync + 'static,
    {
        let name = self.admit(Kind::Breaker, name, |r, n| {
            r.breakers.contains_key(n) || r.keyed_breakers.contains_key(n)
        })?;
        let keyed = crate::breaker::KeyedBreaker::new(
            Arc::clone(&name),
            config,
            self.inner.telemetry.clone(),
        )?;
        let view = Arc::new(keyed.clone()) as Arc<dyn Inspect>;
        self.register(|r| r.keyed_breakers.insert(name, view));
        Ok(keyed)
    }

    /// Spawns a bulkhead (actor `palisade.bulkhead.<name>`).
    ///
    /// # Errors
    /// [`SpawnError`] as for [`breaker`](Self::breaker).
    ///
    /// # Cancel safety
    /// Cancelling the returned future does not cancel the spawn, which runs on a task of
    /// its own: a primitive whose actor was started is always registered (find it with
    /// the `get_*` look-ups); the caller only stops waiting for the handle.
    ///
    /// # Examples
    /// ```
    /// use palisade::{BulkheadConfig, CallError};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let pool = rt.bulkhead("doc-pool", BulkheadConfig::builder().max_concurrent(2).build()?).await?;
    /// let r = pool.execute(|| async { Ok::<_, ()>("ran") }).await;
    /// assert_eq!(r.ok(), Some("ran"));
    /// let (a, b) = (pool.try_acquire()?, pool.try_acquire()?);
    /// assert!(matches!(pool.execute(|| async { Ok::<_, ()>(()) }).await, Err(CallError::BulkheadFull { .. })));
    /// drop((a, b));
    /// assert_eq!(pool.status().available, 2);
    /// # Ok(()) }
    /// ```
    pub async fn bulkhead(
        &self,
        name: &str,
        config: BulkheadConfig,
    ) -> Result<Bulkhead, SpawnError> {
        let (rt, owned) = (self.clone(), name.to_owned());
        to_the_end(Kind::Bulkhead, name, async move {
            rt.spawn_bulkhead(&owned, config).await
        })
        .await
    }

    async fn spawn_bulkhead(
        &self,
        name: &str,
        config: BulkheadConfig,
    ) -> Result<Bulkhead, SpawnError> {
        let name = self.admit(Kind::Bulkhead, name, |r, n| r.bulkheads.contains_key(n))?;
        let bulkhead = Bulkhead::new(name.clone(), config, self.inner.telemetry.clone())?;
        self.spawn(bulkhead.shared()).await?;
        self.register(|r| r.bulkheads.insert(name, bulkhead.clone()));
        Ok(bulkhead)
    }

    /// Every primitive the runtime holds, with its kind, name, config, status, restarts
    /// and the degraded flag, sorted by kind and name. Never waits on an actor: each
    /// status is read from shared state, as the handles read it.
    ///
    /// # Examples
    /// ```
    /// use palisade::{BulkheadConfig, Kind};
    /// use palisade::snapshot::PrimitiveStatus;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let pool = rt.bulkhead("doc-snap", BulkheadConfig::builder().max_concurrent(2).build()?).await?;
    /// let _held = pool.try_acquire()?;
    /// let snap = rt.snapshot();
    /// let entry = snap.get(Kind::Bulkhead, "doc-snap").expect("held");
    /// assert!(matches!(entry.status, PrimitiveStatus::Bulkhead(s) if s.in_flight == 1));
    /// assert_eq!((entry.restarts, entry.degraded), (0, false));
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let registry = self.registry();
        let mut primitives: Vec<PrimitiveSnapshot> = registry
            .breakers
            .values()
            .map(Inspect::snapshot)
            .chain(registry.limiters.values().map(Inspect::snapshot))
            .chain(registry.keyed_views.values().map(|k| k.snapshot()))
            .chain(registry.keyed_breakers.values().map(|k| k.snapshot()))
            .chain(registry.bulkheads.values().map(Inspect::snapshot))
            .collect();
        drop(registry);
        primitives.sort_by(|a, b| (a.kind.as_str(), &a.name).cmp(&(b.kind.as_str(), &b.name)));
        Snapshot { primitives }
    }

    /// The breaker spawned under `name`, if any.
    pub fn get_breaker(&self, name: &str) -> Option<Breaker> {
        self.registry().breakers.get(name).cloned()
    }

    /// The (direct) limiter spawned under `name`, if any.
    pub fn get_limiter(&self, name: &str) -> Option<Limiter> {
        self.registry().limiters.get(name).cloned()
    }

    /// The keyed limiter spawned under `name` with key type `K`, if any.
    pub fn get_keyed_limiter<K: Hash + Eq + Clone + Send + Sync + 'static>(
        &self,
        name: &str,
    ) -> Option<KeyedLimiter<K>> {
        self.registry()
            .keyed
            .get(name)
            .and_then(|b| b.downcast_ref::<KeyedLimiter<K>>())
            .cloned()
    }

    /// The bulkhead spawned under `name`, if any.
    pub fn get_bulkhead(&self, name: &str) -> Option<Bulkhead> {
        self.registry().bulkheads.get(name).cloned()
    }

    /// Primitives whose actor exited too often and was left down, as `(kind, name)`.
    /// Empty after shutdown.
    ///
    /// # Cancel safety
    /// Cancel safe: it only asks the supervisor.
    pub async fn degraded(&self) -> Vec<(Kind, Arc<str>)> {
        ractor::call!(self.inner.supervisor, SupervisorMsg::Degraded).unwrap_or_default()
    }

    /// Stops the primitive of `kind` named `name` for good and drops it from the runtime:
    /// its actor stops without a restart, the `get_*` look-ups and the snapshot no longer
    /// list it, and its name is free again. Handles still held keep answering from the
    /// shared state, as after [`shutdown`](Self::shutdown) (timers and reconfiguration
    /// stop). A keyed limiter is a [`Kind::Limiter`]; a keyed breaker (no actor) is only
    /// dropped from the runtime. Returns whether there was one.
    ///
    /// # Cancel safety
    /// Once the first poll has asked the supervisor, the actor is stopped and forgotten
    /// whether or not the future completes; dropped before, nothing changes.
    pub async fn remove(&self, kind: Kind, name: &str) -> bool {
        let removed = {
            let mut r = self.registry();
            match kind {
                Kind::Breaker => {
                    r.breakers.remove(name).is_some()
                        || r.keyed_breakers.remove(name).is_some_and(|k| {
                            k.flush_counts();
                            true
                        })
                }
                Kind::Limiter => {
                    r.keyed_views.remove(name);
                    r.limiters.remove(name).is_some() || r.keyed.remove(name).is_some()
                }
                Kind::Bulkhead => r.bulkheads.remove(name).is_some(),
                Kind::Retry => false,
            }
        };
        let name: Arc<str> = Arc::from(name);
        let stopped =
            ractor::call!(self.inner.supervisor, SupervisorMsg::Stop, kind, name).unwrap_or(false);
        removed || stopped
    }

    /// `true` once [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::Acquire)
    }

    /// Stops every actor and the supervisor, and returns when they are gone. Handles keep
    /// answering from their shared state; spawning is refused from now on. Idempotent.
    ///
    /// # Cancel safety
    /// Not cancel safe: a cancelled shutdown may leave some actors running.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        #[cfg(feature = "config")]
        drop(
            self.inner
                .watch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        // keyed breakers run no actor: their counts are handed over here
        for keyed in self.registry().keyed_breakers.values() {
            keyed.flush_counts();
        }
        let _ = ractor::call!(self.inner.supervisor, SupervisorMsg::StopAll);
        let _ = self
            .inner
            .supervisor
            .stop_and_wait(Some("runtime shutdown".into()), None)
            .await;
    }

    /// The config state (feature `config`).
    #[cfg(feature = "config")]
    pub(crate) fn config_state(&self) -> &tokio::sync::Mutex<crate::config::ConfigState> {
        &self.inner.config
    }

    /// Where the file watcher is kept (dropped at shutdown).
    #[cfg(feature = "config")]
    pub(crate) fn watch_slot(&self) -> &Mutex<Option<crate::config::Watch>> {
        &self.inner.watch
    }

    /// A handle that does not keep the runtime alive (the file watcher holds one).
    #[cfg(feature = "config")]
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The runtime behind a [`downgrade`](Self::downgrade)d handle, while it lives.
    #[cfg(feature = "config")]
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Runtime> {
        weak.upgrade().map(|inner| Runtime { inner })
    }

    /// Swaps in a file's retries and policies.
    #[cfg(feature = "config")]
    pub(crate) fn set_declared_values(
        &self,
        retries: HashMap<String, crate::Retry>,
        policies: HashMap<String, crate::Policy>,
    ) {
        let mut registry = self.registry();
        registry.retries = retries;
        registry.policies = policies;
    }

    /// The retry a config file declared under `name` (feature `config`). Its events go to
    /// this runtime's bus.
    #[cfg(feature = "config")]
    pub fn get_retry(&self, name: &str) -> Option<crate::Retry> {
        self.registry().retries.get(name).cloned()
    }

    /// The policy a config file declared under `name` (feature `config`): the instances it
    /// names, composed. A reload that changes the policy swaps the one returned here; a
    /// clone taken before keeps the old composition (the instances in it are the same live
    /// primitives, reconfigured in place).
    #[cfg(feature = "config")]
    pub fn get_policy(&self, name: &str) -> Option<crate::Policy> {
        self.registry().policies.get(name).cloned()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn register<R>(&self, f: impl FnOnce(&mut Registry) -> R) {
        // The previous entry (always `None`: `admit` refused taken names) is dropped.
        let _ = f(&mut self.registry());
    }

    /// Validates a name and refuses a taken one or a shut-down runtime.
    fn admit(
        &self,
        kind: Kind,
        name: &str,
        taken: impl Fn(&Registry, &str) -> bool,
    ) -> Result<Arc<str>, SpawnError> {
        if self.is_shut_down() {
            return Err(SpawnError::ShutDown);
        }
        validate_name(kind, name)?;
        if taken(&self.registry(), name) {
            return Err(SpawnError::NameTaken {
                kind,
                name: name.to_owned(),
            });
        }
        Ok(Arc::from(name))
    }

    async fn spawn<P: Primitive>(&self, shared: Arc<P>) -> Result<(), SpawnError> {
        let spec: Arc<dyn ChildSpec> = Arc::new(PrimitiveSpec { shared });
        match ractor::call!(self.inner.supervisor, SupervisorMsg::Spawn, spec) {
            Ok(result) => result,
            Err(_) => Err(SpawnError::ShutDown),
        }
    }
}

/// Names become registry names and metric labels: printable, no whitespace, at most 128 bytes.
fn validate_name(kind: Kind, name: &str) -> Result<(), SpawnError> {
    let problem = if name.is_empty() {
        return Err(SpawnError::EmptyName { kind });
    } else if name.len() > 128 {
        "longer than 128 bytes"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(SpawnError::InvalidName {
        kind,
        name: crate::error::echo(name),
        problem,
    })
}

/// Runs a spawn on a task of its own and waits for it. Cancelling the wait does not cancel
/// the spawn: once the supervisor was asked, the primitive is spawned and registered, where
/// a caller cancelled between the two used to leave a named actor with no handle (and its
/// name taken for good).
async fn to_the_end<T, F>(kind: Kind, name: &str, spawn: F) -> Result<T, SpawnError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, SpawnError>> + Send + 'static,
{
    match tokio::spawn(spawn).await {
        Ok(result) => result,
        Err(e) => Err(SpawnError::Actor {
            kind,
            name: crate::error::echo(name),
            reason: format!("the spawn did not finish: {e}"),
        }),
    }
}
