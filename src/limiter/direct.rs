//! A direct limiter's shared state: one quota, its parameters in atomics, the store.

use std::sync::{Arc, Mutex};

use super::algorithm::Algorithm;
use super::backend::Backend;
use super::config::LimiterConfig;
use super::decision::{Allowed, Denied};
use super::params::Params;
use super::report::Reporter;
use super::store::{LocalStore, Store};
use super::LimiterCommand;
use crate::clock::{Clock, Now};
use crate::error::ConfigError;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::Telemetry;

/// Everything `check` reads and writes.
#[derive(Debug)]
pub(crate) struct LimiterShared {
    pub(crate) report: Reporter,
    /// The algorithm family; its parameters live in `params` so a reconfiguration can
    /// change them while checks run.
    family: Algorithm,
    params: Params,
    store: Store,
    config: Mutex<LimiterConfig>,
    pub(crate) clock: Clock,
    pub(crate) slot: ActorSlot<LimiterCommand>,
}

impl LimiterShared {
    /// The limiter `name`, its state kept in `backend` (which the runtime built from
    /// `config`).
    pub(crate) fn new(
        name: Arc<str>,
        config: LimiterConfig,
        telemetry: Telemetry,
        backend: Backend,
    ) -> Result<Self, ConfigError> {
        let family = config.algorithm()?;
        let store = match backend {
            Backend::Local => Store::Local(LocalStore::default()),
            #[cfg(feature = "redis")]
            Backend::Redis(link) => match &config.redis {
                Some(redis) => Store::Redis(Box::new(super::redis::RedisStore::new(
                    &name,
                    &config.kind,
                    redis,
                    link,
                ))),
                None => Store::Local(LocalStore::default()),
            },
        };
        Ok(Self {
            report: Reporter::new(name, telemetry, config.shadow),
            family,
            params: Params::new(family.parts()),
            store,
            config: Mutex::new(config),
            clock: Clock::new(),
            slot: ActorSlot::default(),
        })
    }

    #[inline]
    fn algorithm(&self) -> Algorithm {
        let (a, b) = self.params.load();
        self.family.with_parts(a, b)
    }

    /// A check that never waits.
    #[inline]
    pub(crate) fn check_n(&self, n: u32) -> Result<Allowed, Denied> {
        self.check_n_at(n, self.clock.now())
    }

    /// [`check_n`](Self::check_n) with the time already read.
    ///
    /// The GCRA family on local state (the common case) is decided here, inline; windows and
    /// remote state go out of line, so callers that only ask `is_ok()` keep a short path.
    #[inline(always)]
    pub(crate) fn check_n_at(&self, n: u32, now: Now) -> Result<Allowed, Denied> {
        let algorithm = self.algorithm();
        if let (Algorithm::Gcra(g), Store::Local(local)) = (&algorithm, &self.store) {
            let decision = local.check_gcra(g, self.clock.nanos_at(now), n);
            return self.report.account(decision);
        }
        self.check_other(&algorithm, n, now)
    }

    /// [`check_n_at`](Self::check_n_at) for windows and remote state.
    #[inline(never)]
    fn check_other(&self, algorithm: &Algorithm, n: u32, now: Now) -> Result<Allowed, Denied> {
        let now = self.clock.nanos_at(now);
        let decision = match &self.store {
            Store::Local(local) => local.check_n(algorithm, now, n),
            #[cfg(feature = "redis")]
            Store::Redis(remote) => {
                let (decision, refill) = remote.check_now(algorithm, now, n);
                if refill && !self.start_refill() {
                    // no actor to take it (degraded, or restarting): a task of its own
                    remote.refill_in_background(algorithm, &self.clock);
                }
                decision
            }
        };
        self.report.account(decision)
    }

    /// A check that may wait for a remote backend (the same as `check_n` on local state).
    pub(crate) async fn acquire_n(&self, n: u32) -> Result<Allowed, Denied> {
        match &self.store {
            Store::Local(_) => self.check_n(n),
            #[cfg(feature = "redis")]
            Store::Redis(remote) => {
                let decision = remote
                    .check(&self.algorithm(), &self.clock, n, || self.start_refill())
                    .await;
                self.report.account(decision)
            }
        }
    }

    /// What a check of one unit would get now, spending nothing.
    pub(crate) fn status(&self) -> super::LimiterStatus {
        let config = self.config();
        let now = self.clock.nanos();
        let answer = match &self.store {
            Store::Local(local) => super::status::one_unit(local.peek(&self.algorithm(), now)),
            #[cfg(feature = "redis")]
            Store::Redis(remote) => remote.local_units(now).map(|units| {
                let units = u32::try_from(units).unwrap_or(u32::MAX);
                let wait = if units > 0 {
                    std::time::Duration::ZERO
                } else {
                    // a refill is one round trip away
                    std::time::Duration::from_millis(1)
                };
                (units, wait, std::time::Duration::ZERO)
            }),
        };
        super::LimiterStatus::new(&config, answer, self.is_remote(), self.report.counts())
    }

    /// Makes the connection to a remote backend, if any (at spawn).
    pub(crate) async fn connect(&self) {
        #[cfg(feature = "redis")]
        if let Store::Redis(remote) = &self.store {
            remote.connect().await;
        }
    }

    /// The quota and window in force (see `Algorithm::advertised`).
    #[cfg(feature = "tower")]
    pub(crate) fn advertised(&self) -> (u32, std::time::Duration) {
        self.algorithm().advertised()
    }

    /// `true` when checks reach a remote backend.
    #[inline]
    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self.store, Store::Local(_))
    }

    /// Hands a lease refill to the actor; `false` when no actor is running.
    #[cfg(feature = "redis")]
    fn start_refill(&self) -> bool {
        self.slot.tell(LimiterCommand::RefillLease)
    }

    /// Runs a lease refill (the actor's job).
    pub(crate) async fn refill_lease(&self) {
        #[cfg(feature = "redis")]
        if let Store::Redis(remote) = &self.store {
            remote.refill(&self.algorithm(), &self.clock).await;
        }
    }

    pub(crate) fn reset(&self) {
        match &self.store {
            Store::Local(local) => local.reset(),
            #[cfg(feature = "redis")]
            Store::Redis(remote) => remote.reset(),
        }
    }

    pub(crate) fn config(&self) -> LimiterConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies a new configuration keeping the state (no fresh burst). Called by the actor.
    pub(crate) fn apply(&self, new: LimiterConfig) -> Result<String, ConfigError> {
        let algorithm = new.algorithm()?;
        new.keeps_backend_of(&self.config())?;
        if !algorithm.same_family(&self.family) {
            return Err(ConfigError::refused(
                "kind",
                new.kind,
                "a running limiter keeps its algorithm family; spawn a new limiter to change it",
            ));
        }
        self.params.store(algorithm.parts());
        self.report.set_shadow(new.shadow);
        let change = format!("{:?}, shadow {}", new.kind, new.shadow);
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(change)
    }
}
