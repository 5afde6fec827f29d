//! A breaker per key (per downstream authority, per tenant...): each key gets its own
//! breaker from one config, created on first use; the table is bounded and only idle,
//! closed breakers are ever dropped.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Breaker, BreakerConfig, BreakerState, Instruments};
use crate::clock::Instant;
use crate::error::{ConfigError, SpawnError};
use crate::telemetry::{Telemetry, FLUSH_EVERY};

/// A keyed breaker's settings: the config every key's breaker runs, the most keys held at
/// once, and how long a closed breaker must go unused before it may be dropped.
///
/// # Defaults
/// - `max_keys`: 1,024
/// - `idle_after`: 10 minutes
#[derive(Clone, Debug)]
pub struct KeyedBreakerConfig {
    pub(crate) base: BreakerConfig,
    pub(crate) max_keys: u32,
    pub(crate) idle_after: Duration,
}

impl KeyedBreakerConfig {
    /// Every key's breaker runs `base`.
    pub fn new(base: BreakerConfig) -> Self {
        Self {
            base,
            max_keys: 1_024,
            idle_after: Duration::from_secs(600),
        }
    }

    /// The most keys held at once (at least 1). Past it, new keys share one **overflow**
    /// breaker (named `<name>/overflow`) until an idle key is dropped.
    pub fn max_keys(mut self, n: u32) -> Self {
        self.max_keys = n;
        self
    }

    /// How long a closed breaker goes unused before it may be dropped (a breaker that is
    /// open or half-open, or has a failure or slow call in its window, is never dropped:
    /// dropping it would forget what it learned).
    pub fn idle_after(mut self, d: Duration) -> Self {
        self.idle_after = d;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field and value refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.base.validate()?;
        if self.max_keys == 0 {
            return Err(ConfigError::refused("max_keys", 0, "must be at least 1"));
        }
        if self.idle_after.is_zero() {
            return Err(ConfigError::refused(
                "idle_after",
                self.idle_after,
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// A keyed breaker's state ([`KeyedBreaker::status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyedBreakerStatus {
    /// Keys held.
    pub keys: usize,
    /// The most keys held at once.
    pub max_keys: u32,
    /// Held breakers open (or forced open).
    pub open: usize,
    /// Held breakers half-open.
    pub half_open: usize,
    /// The state of the breaker keys past the cap share.
    pub overflow: BreakerState,
}

struct Slot {
    breaker: Breaker,
    last_used: Instant,
}

/// A breaker per key, from [`Runtime::keyed_breaker`](crate::Runtime::keyed_breaker).
/// Cheap to clone. Each key's breaker is named `<name>/<key>` in events and takes its
/// open-to-half-open step when the next call arrives.
///
/// # Metrics
/// Every key's breaker records into one set of series labelled `name = <name>`:
/// `palisade_calls_total`, `palisade_call_duration_seconds` and
/// `palisade_breaker_transitions_total` count the calls and moves of all its keys (a
/// recorder never forgets a series, so a set per key would grow it with every key ever
/// seen). How many keys are open or half-open is in [`status`](Self::status) and the
/// runtime's snapshot. The tallied call counts reach the recorder every second (a task on
/// the tokio runtime the keyed breaker was made on) and at the runtime's shutdown.
pub struct KeyedBreaker<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    name: Arc<str>,
    config: KeyedBreakerConfig,
    telemetry: Telemetry,
    table: Mutex<HashMap<K, Slot>>,
    overflow: Breaker,
    /// The metric handles every key's breaker (and the overflow one) records into.
    instruments: Arc<Instruments>,
}

impl<K> Clone for KeyedBreaker<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for KeyedBreaker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBreaker")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> KeyedBreaker<K> {
    pub(crate) fn new(
        name: Arc<str>,
        config: KeyedBreakerConfig,
        telemetry: Telemetry,
    ) -> Result<Self, SpawnError> {
        config.validate()?;
        let instruments = Instruments::shared_by_keys(&name, telemetry.duration_bounds());
        let overflow = Breaker::with_instruments(
            Arc::from(format!("{name}/overflow")),
            config.base.clone(),
            telemetry.clone(),
            Arc::clone(&instruments),
        )?;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flush_while_alive(Arc::downgrade(&instruments)));
        }
        Ok(Self {
            shared: Arc::new(Shared {
                name,
                config,
                telemetry,
                table: Mutex::new(HashMap::new()),
                overflow,
                instruments,
            }),
        })
    }

    /// Moves the call counts tallied so far into `palisade_calls_total` (every second on
    /// its own; the runtime calls it at shutdown).
    pub(crate) fn flush_counts(&self) {
        self.shared.instruments.flush();
    }

    /// The keyed breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// `key`'s breaker, created on first use. At the cap, idle closed breakers are dropped
    /// to make room; when none is idle, the key shares the overflow breaker.
    pub fn get(&self, key: &K) -> Breaker {
        let s = &self.shared;
        let now = Instant::now();
        let mut table = s.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = table.get_mut(key) {
            slot.last_used = now;
            return slot.breaker.clone();
        }
        if table.len() >= s.config.max_keys as usize {
            let idle_after = s.config.idle_after;
            table.retain(|_, slot| {
                let idle = now.saturating_duration_since(slot.last_used) >= idle_after;
                !(idle && is_quiet(&slot.breaker))
            });
            if table.len() >= s.config.max_keys as usize {
                return s.overflow.clone();
            }
        }
        let named = Arc::from(format!("{}/{key}", s.name));
        // the base config was validated when the keyed breaker was made
        match Breaker::with_instruments(
            named,
            s.config.base.clone(),
            s.telemetry.clone(),
            Arc::clone(&s.instruments),
        ) {
            Ok(breaker) => {
                table.insert(
                    key.clone(),
                    Slot {
                        breaker: breaker.clone(),
                        last_used: now,
                    },
                );
                breaker
            }
            Err(_) => s.overflow.clone(),
        }
    }

    /// The keys held now.
    pub fn len(&self) -> usize {
        self.shared
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// `true` when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keyed breaker's state now: keys held, the cap, and how many breakers are open or
    /// half-open. Changes nothing.
    pub fn status(&self) -> KeyedBreakerStatus {
        let table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut status = KeyedBreakerStatus {
            keys: table.len(),
            max_keys: self.shared.config.max_keys,
            open: 0,
            half_open: 0,
            overflow: self.shared.overflow.state(),
        };
        for slot in table.values() {
            match slot.breaker.state() {
                BreakerState::Open | BreakerState::ForcedOpen => status.open += 1,
                BreakerState::HalfOpen => status.half_open += 1,
                _ => {}
            }
        }
        status
    }

    /// The config every key's breaker runs.
    pub fn config(&self) -> BreakerConfig {
        self.shared.config.base.clone()
    }

    /// Each held key's breaker state.
    pub fn states(&self) -> Vec<(K, BreakerState)> {
        let table = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .iter()
            .map(|(k, slot)| (k.clone(), slot.breaker.state()))
            .collect()
    }
}

/// Flushes the keyed breaker's tallied counts every [`FLUSH_EVERY`] until it is gone.
async fn flush_while_alive(instruments: std::sync::Weak<Instruments>) {
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        match instruments.upgrade() {
            Some(set) => set.flush(),
            None => return,
        }
    }
}

/// A breaker that has learned nothing worth keeping: closed, no failure nor slow call in
/// its window (forgetting successes loses nothing).
fn is_quiet(breaker: &Breaker) -> bool {
    let status = breaker.status();
    status.state == BreakerState::Closed && status.failed == 0 && status.slow == 0
}
