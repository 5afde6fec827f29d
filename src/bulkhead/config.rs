//! Bulkhead configuration.

use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::ConfigError;

/// How many calls a [`Bulkhead`](super::Bulkhead) admits at once, and how long and how many
/// may wait for a permit.
///
/// # Defaults
/// - `max_concurrent`: 25
/// - `max_wait`: zero (reject at once when full)
/// - `max_queue`: 1024 waiters when `max_wait` is set (it must not be set with a zero `max_wait`)
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BulkheadConfig {
    pub(crate) max_concurrent: u32,
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_util::duration")
    )]
    pub(crate) max_wait: Duration,
    pub(crate) max_queue: u32,
}

impl BulkheadConfig {
    /// Checks every value, as `build()` and every spawn and reconfiguration do.
    ///
    /// # Errors
    /// [`ConfigError`] naming `max_concurrent` and the value it refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_max_concurrent(self.max_concurrent)
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
            max_queue: 1024,
        }
    }
}

impl BulkheadConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BulkheadConfigBuilder {
        BulkheadConfigBuilder::default()
    }

    /// Calls admitted at once.
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }

    /// How long a call may wait for a permit.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Calls that may wait at once.
    pub fn max_queue(&self) -> u32 {
        self.max_queue
    }
}

/// Builds a [`BulkheadConfig`]; see its defaults.
#[derive(Clone, Debug, Default)]
pub struct BulkheadConfigBuilder {
    max_concurrent: Option<u32>,
    max_wait: Option<Duration>,
    max_queue: Option<u32>,
}

impl BulkheadConfigBuilder {
    /// Calls admitted at once (at least 1).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = Some(n);
        self
    }

    /// How long a call may wait for a permit when all are taken; zero rejects at once.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// Calls that may wait at once; one more is rejected at once. Needs a non-zero `max_wait`.
    pub fn max_queue(mut self, n: u32) -> Self {
        self.max_queue = Some(n);
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming `max_concurrent` (zero or above the semaphore's maximum) or
    /// `max_queue` (set while `max_wait` is zero, so it could never be used).
    pub fn build(self) -> Result<BulkheadConfig, ConfigError> {
        let d = BulkheadConfig::default();
        let max_concurrent = self.max_concurrent.unwrap_or(d.max_concurrent);
        validate_max_concurrent(max_concurrent)?;
        let max_wait = self.max_wait.unwrap_or(d.max_wait);
        if self.max_queue.is_some() && max_wait.is_zero() {
            return Err(ConfigError::refused(
                "max_queue",
                self.max_queue.unwrap_or_default(),
                "has no effect with a zero max_wait (calls never wait); set max_wait too",
            ));
        }
        Ok(BulkheadConfig {
            max_concurrent,
            max_wait,
            max_queue: self.max_queue.unwrap_or(d.max_queue),
        })
    }
}

pub(crate) fn validate_max_concurrent(n: u32) -> Result<(), ConfigError> {
    if n == 0 {
        return Err(ConfigError::refused(
            "max_concurrent",
            n,
            "must be at least 1",
        ));
    }
    if n as usize > Semaphore::MAX_PERMITS {
        return Err(ConfigError::refused(
            "max_concurrent",
            n,
            format!("must be at most {}", Semaphore::MAX_PERMITS),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_values_naming_the_field() {
        let e = BulkheadConfig::builder()
            .max_concurrent(0)
            .build()
            .expect_err("zero");
        assert_eq!(e.field, "max_concurrent");
        let e = BulkheadConfig::builder()
            .max_queue(5)
            .build()
            .expect_err("queue without wait");
        assert_eq!(e.field, "max_queue");
        let ok = BulkheadConfig::builder()
            .max_queue(5)
            .max_wait(Duration::from_millis(1))
            .build()
            .expect("valid");
        assert_eq!((ok.max_concurrent, ok.max_queue), (25, 5));
    }
}
