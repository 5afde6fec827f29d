//! A direct limiter's shared state: one quota, its parameters in atomics, the store.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::algorithm::Algorithm;
use super::config::LimiterConfig;
use super::decision::{Allowed, Denied};
use super::report::Reporter;
use super::store::{LocalStore, StateStore};
use super::LimiterCommand;
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::Telemetry;

/// Everything `check` reads and writes.
#[derive(Debug)]
pub(crate) struct LimiterShared {
    pub(crate) report: Reporter,
    /// The algorithm family; its parameters live in `a` and `b` so a reconfiguration can
    /// change them while checks run.
    family: Algorithm,
    a: AtomicU64,
    b: AtomicU32,
    store: LocalStore,
    config: Mutex<LimiterConfig>,
    pub(crate) clock: Clock,
    pub(crate) slot: ActorSlot<LimiterCommand>,
}

impl LimiterShared {
    pub(crate) fn new(
        name: Arc<str>,
        config: LimiterConfig,
        telemetry: Telemetry,
    ) -> Result<Self, ConfigError> {
        let family = config.algorithm()?;
        let (a, b) = family.parts();
        Ok(Self {
            report: Reporter::new(name, telemetry, config.shadow),
            family,
            a: AtomicU64::new(a),
            b: AtomicU32::new(b),
            store: LocalStore::default(),
            config: Mutex::new(config),
            clock: Clock::new(),
            slot: ActorSlot::default(),
        })
    }

    #[inline]
    pub(crate) fn check_n(&self, n: u32) -> Result<Allowed, Denied> {
        let algorithm = self.family.with_parts(
            self.a.load(Ordering::Relaxed),
            self.b.load(Ordering::Relaxed),
        );
        let decision = self.store.check_n(&algorithm, self.clock.nanos(), n);
        self.report.account(decision)
    }

    pub(crate) fn reset(&self) {
        self.store.reset();
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
        if !algorithm.same_family(&self.family) {
            return Err(ConfigError::new(
                "kind",
                "a running limiter keeps its algorithm family; spawn a new limiter to change it",
            ));
        }
        let (a, b) = algorithm.parts();
        self.a.store(a, Ordering::Release);
        self.b.store(b, Ordering::Release);
        self.report.set_shadow(new.shadow);
        let change = format!("{:?}, shadow {}", new.kind, new.shadow);
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(change)
    }
}
