//! Backoff: how long to wait before each retry. A pure core: the n-th delay from `n`, the
//! previous delay and a random source, so tests can seed the randomness.
//!
//! Jitter follows the well-known AWS analysis ("Exponential Backoff And Jitter"):
//! - `None`: the computed delay `d`.
//! - `Full`: uniform in `[0, d]`.
//! - `Equal`: `d/2` plus uniform in `[0, d/2]`.
//! - `Decorrelated`: uniform in `[base, 3 · previous]`, capped at `max_delay`.

use std::time::Duration;

use rand::RngExt;

use crate::error::ConfigError;

/// The shape of the delay sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Constant,
    Linear,
    Exponential { factor: f64 },
}

/// Randomization applied to each delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomization: exact delays.
    #[default]
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// `d/2` plus uniform in `[0, d/2]`.
    Equal,
    /// Uniform in `[base, 3 · previous delay]`, capped.
    Decorrelated,
}

/// A backoff: constant, linear or exponential delays, capped at `max_delay`, with jitter.
///
/// # Defaults
/// - `max_delay`: 30 s
/// - `factor` (exponential): 2
/// - `jitter`: `None`
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use palisade::policy::{Backoff, Jitter};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let b = Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(1));
/// // before jitter: 100 ms, 200 ms, 400 ms, 800 ms, then the cap
/// let delays: Vec<_> = (1..=5).map(|n| b.base_delay(n).as_millis()).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000]);
/// assert_eq!(Backoff::linear(Duration::from_millis(50)).base_delay(3), Duration::from_millis(150));
/// // full jitter draws each delay from [0, base]
/// let jittered = b.jitter(Jitter::Full);
/// let d = jittered.delay(3, Duration::ZERO, &mut rand::rng());
/// assert!(d <= Duration::from_millis(400));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    shape: Shape,
    base: Duration,
    max_delay: Duration,
    jitter: Jitter,
}

impl Backoff {
    fn of(shape: Shape, base: Duration) -> Self {
        Self {
            shape,
            base,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::None,
        }
    }

    /// The same delay every time.
    pub fn constant(delay: Duration) -> Self {
        Self::of(Shape::Constant, delay)
    }

    /// `base`, `2·base`, `3·base`...
    pub fn linear(base: Duration) -> Self {
        Self::of(Shape::Linear, base)
    }

    /// `base`, `base·factor`, `base·factor²`... (factor 2 unless set).
    pub fn exponential(base: Duration) -> Self {
        Self::of(Shape::Exponential { factor: 2.0 }, base)
    }

    /// The growth factor of an exponential backoff (at least 1; ignored by other shapes).
    pub fn factor(mut self, factor: f64) -> Self {
        if let Shape::Exponential { .. } = self.shape {
            self.shape = Shape::Exponential { factor };
        }
        self
    }

    /// No delay exceeds this.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Randomization of each delay.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming `backoff.base` (zero), `backoff.max_delay` (below the base) or
    /// `backoff.factor` (below 1, or not finite).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::refused(
                "backoff.base",
                self.base,
                "must be longer than zero",
            ));
        }
        if self.max_delay < self.base {
            return Err(ConfigError::refused(
                "backoff.max_delay",
                self.max_delay,
                format!("must not be shorter than the base delay ({:?})", self.base),
            ));
        }
        if let Shape::Exponential { factor } = self.shape {
            if !(factor >= 1.0 && factor.is_finite()) {
                return Err(ConfigError::refused(
                    "backoff.factor",
                    factor,
                    "must be a finite number of at least 1",
                ));
            }
        }
        Ok(())
    }

    /// The delay after attempt `n` (from 1) without jitter, capped at `max_delay`.
    pub fn base_delay(&self, n: u32) -> Duration {
        let n = n.max(1);
        let d = match self.shape {
            Shape::Constant => self.base,
            Shape::Linear => self.base.saturating_mul(n),
            Shape::Exponential { factor } => {
                let exp = i32::try_from(n - 1).unwrap_or(i32::MAX);
                let secs = self.base.as_secs_f64() * factor.powi(exp);
                if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
                    self.max_delay
                } else {
                    Duration::from_secs_f64(secs)
                }
            }
        };
        d.min(self.max_delay)
    }

    /// The delay after attempt `n` (from 1), given the previous delay (for decorrelated
    /// jitter; pass zero for the first) and a random source.
    pub fn delay(&self, n: u32, previous: Duration, rng: &mut impl rand::Rng) -> Duration {
        let d = self.base_delay(n);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => Duration::from_nanos(rng.random_range(0..=nanos(d))),
            Jitter::Equal => {
                let half = nanos(d) / 2;
                Duration::from_nanos(half + rng.random_range(0..=nanos(d) - half))
            }
            Jitter::Decorrelated => {
                let low = nanos(self.base);
                let high = nanos(previous.max(self.base)).saturating_mul(3).max(low);
                Duration::from_nanos(rng.random_range(low..=high)).min(self.max_delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    fn seq(b: Backoff, n: u32) -> Vec<Duration> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut prev = Duration::ZERO;
        (1..=n)
            .map(|i| {
                prev = b.delay(i, prev, &mut rng);
                prev
            })
            .collect()
    }

    #[test]
    fn equal_jitter_spreads_over_the_upper_half() {
        let d = Duration::from_millis(100);
        let b = Backoff::constant(d).jitter(Jitter::Equal);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws: Vec<_> = (0..200)
            .map(|_| b.delay(1, Duration::ZERO, &mut rng))
            .collect();
        assert!(draws.iter().all(|x| *x >= d / 2 && *x <= d), "{draws:?}");
        assert!(
            draws.iter().any(|x| *x > d * 3 / 4),
            "never above three quarters"
        );
    }

    #[test]
    fn a_cap_equal_to_the_base_is_accepted() {
        let d = Duration::from_millis(100);
        assert!(Backoff::constant(d).max_delay(d).validate().is_ok());
        assert!(Backoff::constant(d).max_delay(d / 2).validate().is_err());
    }

    #[test]
    fn an_exponential_delay_past_any_duration_is_the_cap() {
        // 2^99 seconds is finite as an f64 but no Duration holds it
        let b = Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(30));
        assert_eq!(b.base_delay(100), Duration::from_secs(30));
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn exact_sequences_without_jitter() {
        assert_eq!(seq(Backoff::constant(100 * MS), 3), [100 * MS; 3]);
        assert_eq!(
            seq(Backoff::linear(100 * MS), 4),
            [100 * MS, 200 * MS, 300 * MS, 400 * MS]
        );
        assert_eq!(
            seq(Backoff::exponential(100 * MS).max_delay(500 * MS), 5),
            [100 * MS, 200 * MS, 400 * MS, 500 * MS, 500 * MS]
        );
        assert_eq!(
            seq(Backoff::exponential(10 * MS).factor(3.0), 3),
            [10 * MS, 30 * MS, 90 * MS]
        );
        assert_eq!(
            Backoff::exponential(MS).base_delay(u32::MAX),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn jitter_stays_within_bounds_for_many_seeds() {
        let base = Backoff::exponential(100 * MS).max_delay(Duration::from_secs(2));
        for seed in 0..500u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut prev = Duration::ZERO;
            for n in 1..8 {
                let d = base.base_delay(n);
                let full = base.jitter(Jitter::Full).delay(n, prev, &mut rng);
                assert!(full <= d);
                let equal = base.jitter(Jitter::Equal).delay(n, prev, &mut rng);
                assert!(equal >= d / 2 && equal <= d, "{equal:?} vs {d:?}");
                let dec = base.jitter(Jitter::Decorrelated).delay(n, prev, &mut rng);
                assert!(dec >= 100 * MS && dec <= Duration::from_secs(2));
                assert!(dec <= prev.max(100 * MS) * 3);
                prev = dec;
            }
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        let f = |b: Backoff| b.validate().expect_err("refused").field;
        assert_eq!(f(Backoff::constant(Duration::ZERO)), "backoff.base");
        assert_eq!(
            f(Backoff::linear(MS * 10).max_delay(MS)),
            "backoff.max_delay"
        );
        assert_eq!(f(Backoff::exponential(MS).factor(0.5)), "backoff.factor");
        assert_eq!(
            f(Backoff::exponential(MS).factor(f64::NAN)),
            "backoff.factor"
        );
    }
}
