//! Bulkhead: a concurrency limit with a bounded, time-limited FIFO wait queue.
//!
//! A call takes a permit before it runs and gives it back when it ends, however it ends:
//! completion, error, panic, or its future being dropped. When every permit is taken a call
//! waits up to `max_wait` (never past its [deadline](crate::deadline)) behind at most
//! `max_queue` earlier waiters, then is rejected with
//! [`CallError::BulkheadFull`].

mod actor;
mod config;
mod permit;
mod permits;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use actor::BulkheadCommand;
pub use config::{BulkheadConfig, BulkheadConfigBuilder};
pub use permit::{BulkheadPermit, OwnedBulkheadPermit};
use state::BulkheadShared;

use crate::error::{CallError, ControlError, SpawnError};
use crate::kind::Kind;
use crate::telemetry::Telemetry;

/// A named bulkhead, from [`Runtime::bulkhead`](crate::Runtime::bulkhead). Cheap to clone;
/// every clone shares the same permits.
#[derive(Clone, Debug)]
pub struct Bulkhead {
    shared: Arc<BulkheadShared>,
}

/// Why a bulkhead refused a permit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BulkheadRejected {
    /// Every permit was taken for the whole wait.
    #[error("bulkhead `{name}` is full ({max_concurrent} in flight) after waiting {waited:?}")]
    Full {
        /// The bulkhead's name.
        name: Arc<str>,
        /// Its limit.
        max_concurrent: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// The wait queue was full.
    #[error("bulkhead `{name}` wait queue is full ({max_queue} waiting)")]
    QueueFull {
        /// The bulkhead's name.
        name: Arc<str>,
        /// The queue's bound.
        max_queue: u32,
        /// The concurrency limit when the call was rejected.
        max_concurrent: u32,
    },
    /// The task's deadline ran out before a permit came free.
    #[error("deadline exceeded while waiting for bulkhead `{name}`")]
    DeadlineExceeded {
        /// The bulkhead's name.
        name: Arc<str>,
        /// The deadline scope's budget.
        budget: Duration,
    },
}

impl<E> From<BulkheadRejected> for CallError<E> {
    fn from(r: BulkheadRejected) -> Self {
        match r {
            BulkheadRejected::Full {
                name,
                max_concurrent,
                waited,
            } => CallError::BulkheadFull {
                name,
                max_concurrent,
                waited,
            },
            BulkheadRejected::QueueFull {
                name,
                max_queue,
                max_concurrent,
            } => CallError::QueueFull {
                name,
                max_queue,
                max_concurrent,
            },
            BulkheadRejected::DeadlineExceeded { budget, .. } => {
                CallError::DeadlineExceeded { budget }
            }
        }
    }
}

/// A snapshot of a bulkhead's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BulkheadStatus {
    /// Calls holding a permit.
    pub in_flight: u32,
    /// Permits free now.
    pub available: u32,
    /// Calls waiting for a permit.
    pub waiting: u32,
    /// The current limit.
    pub max_concurrent: u32,
}

impl Bulkhead {
    pub(crate) fn new(
        name: Arc<str>,
        config: BulkheadConfig,
        telemetry: Telemetry,
    ) -> Result<Self, SpawnError> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(BulkheadShared::new(name, &config, telemetry)),
        })
    }

    pub(crate) fn shared(&self) -> Arc<BulkheadShared> {
        Arc::clone(&self.shared)
    }

    /// Restarts of its actor since spawn, and whether it was left down.
    pub(crate) fn supervision(&self) -> (u32, bool) {
        (self.shared.slot.restarts(), self.shared.slot.is_degraded())
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs `f` under a permit, waiting for one as configured.
    ///
    /// # Errors
    /// [`CallError::BulkheadFull`] when no permit came free in time,
    /// [`CallError::QueueFull`] when the wait queue was full (the call did not wait),
    /// [`CallError::DeadlineExceeded`] when the task's deadline ran out first,
    /// [`CallError::Inner`] with `f`'s error.
    ///
    /// # Cancel safety
    /// Dropping the future gives the permit (or the place in the queue) back.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let pool = rt.bulkhead("doc-execute", palisade::BulkheadConfig::builder().max_concurrent(1).build()?).await?;
    /// let held = pool.try_acquire()?;
    /// let r = pool.execute(|| async { Ok::<_, std::io::Error>(()) }).await;
    /// assert!(matches!(r, Err(palisade::CallError::BulkheadFull { .. })));
    /// drop(held);
    /// assert!(pool.execute(|| async { Ok::<_, std::io::Error>(()) }).await.is_ok());
    /// # Ok(()) }
    /// ```
    pub async fn execute<F, Fut, T, E>(&self, f: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _permit = self.shared.acquire().await?;
        f().await.map_err(CallError::Inner)
    }

    /// A free permit without waiting and without reporting a rejection (the policy
    /// pipeline tries this before it waits).
    #[inline]
    pub(crate) fn acquire_now(&self) -> Option<BulkheadPermit<'_>> {
        self.shared.acquire_now()
    }

    /// Takes a permit without waiting.
    ///
    /// # Errors
    /// [`BulkheadRejected::Full`] when none is free.
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadRejected> {
        self.shared.try_acquire()
    }

    /// Takes a permit, waiting as configured, for callers who hold one across several steps.
    ///
    /// # Errors
    /// As for [`execute`](Self::execute), as a [`BulkheadRejected`].
    ///
    /// # Cancel safety
    /// Cancel safe: a dropped wait leaves the queue and takes no permit.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadRejected> {
        self.shared.acquire().await
    }

    /// Takes a permit without waiting, owned: it can move into a spawned task or a
    /// response body.
    ///
    /// # Errors
    /// [`BulkheadRejected::Full`] when none is free.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let pool = rt.bulkhead("doc-owned", palisade::BulkheadConfig::builder().max_concurrent(1).build()?).await?;
    /// let permit = pool.try_acquire_owned()?;
    /// let task = tokio::spawn(async move {
    ///     let _held = permit; // given back when the task ends
    /// });
    /// assert!(pool.try_acquire().is_err());
    /// task.await?;
    /// assert!(pool.try_acquire().is_ok());
    /// # Ok(()) }
    /// ```
    pub fn try_acquire_owned(&self) -> Result<OwnedBulkheadPermit, BulkheadRejected> {
        let permit = self.shared.try_acquire()?;
        Ok(permit.into_owned(Arc::clone(&self.shared)))
    }

    /// A free permit, owned, if one is free right now; `None` (nothing reported, nothing
    /// counted) when none is: for a caller that will wait instead.
    #[cfg(feature = "tower")]
    pub(crate) fn take_free_owned(&self) -> Option<OwnedBulkheadPermit> {
        let permit = self.shared.acquire_now()?;
        Some(permit.into_owned(Arc::clone(&self.shared)))
    }

    /// Takes a permit, waiting as configured, owned (see
    /// [`try_acquire_owned`](Self::try_acquire_owned)).
    ///
    /// # Errors
    /// As for [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    /// Cancel safe: a dropped wait leaves the queue and takes no permit.
    pub async fn acquire_owned(&self) -> Result<OwnedBulkheadPermit, BulkheadRejected> {
        let permit = self.shared.acquire().await?;
        Ok(permit.into_owned(Arc::clone(&self.shared)))
    }

    /// In flight, available, waiting and the limit, now.
    ///
    /// # Examples
    /// ```
    /// use palisade::BulkheadConfig;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = palisade::Runtime::start().await?;
    /// let pool = rt.bulkhead("doc-bh-status", BulkheadConfig::builder().max_concurrent(3).build()?).await?;
    /// let _held = pool.try_acquire()?;
    /// let s = pool.status();
    /// assert_eq!((s.in_flight, s.available, s.waiting, s.max_concurrent), (1, 2, 0, 3));
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> BulkheadStatus {
        self.shared.status()
    }

    /// Changes the concurrency limit through the actor. Growing wakes waiters at once;
    /// shrinking takes effect as permits come back.
    ///
    /// # Errors
    /// [`ControlError::Config`] for a refused size, [`ControlError::Unavailable`] when the
    /// actor is not running.
    ///
    /// # Cancel safety
    /// Once the first poll has handed the new size to the actor, dropping the future does
    /// not take it back: the actor applies it all the same, and only the answer is lost.
    /// Dropped before its first poll, nothing changes.
    pub async fn resize(&self, max_concurrent: u32) -> Result<(), ControlError> {
        let current = self.config();
        let config = BulkheadConfig {
            max_concurrent,
            ..current
        };
        self.reconfigure(config).await
    }

    /// Applies a whole new configuration through the actor, emitting
    /// [`Event::Reconfigured`](crate::Event::Reconfigured).
    ///
    /// # Errors
    /// As for [`resize`](Self::resize).
    ///
    /// # Cancel safety
    /// Once the first poll has handed the new config to the actor, dropping the future does
    /// not take it back: the actor applies it (or refuses it) all the same, and only the
    /// answer is lost. Dropped before its first poll, nothing changes.
    pub async fn reconfigure(&self, config: BulkheadConfig) -> Result<(), ControlError> {
        config::validate_max_concurrent(config.max_concurrent)?;
        self.shared
            .slot
            .ask(|reply| BulkheadCommand::Reconfigure(config, reply))
            .await
            .ok_or_else(|| ControlError::Unavailable {
                kind: Kind::Bulkhead,
                name: Arc::clone(&self.shared.name),
            })?
            .map_err(ControlError::from)
    }

    /// The configuration in force.
    pub fn config(&self) -> BulkheadConfig {
        self.shared.config()
    }

    /// Fault injection for supervision tests (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn inject_fault(&self, fault: crate::Fault) -> bool {
        self.shared.slot.inject(fault)
    }
}
