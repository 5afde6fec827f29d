//! The time source.
//!
//! Every time-based decision in palisade reads [`tokio::time::Instant`]. Without tokio's
//! `test-util` feature that type is a plain wrapper over [`std::time::Instant`] (no cost);
//! with it (palisade's `test-util` feature turns it on) it follows tokio's clock, so
//! `#[tokio::test(start_paused = true)]` and `tokio::time::advance` drive refills, windows,
//! open durations, backoffs and deadlines deterministically.
//!
//! Lock-free state stores time as `u64` nanoseconds since a [`Clock`]'s origin, which each
//! primitive captures when it is spawned. Without `test-util` that clock is the CPU's
//! time-stamp counter (`quanta`), the one hot-path read that is not tokio's.

mod recent;

use std::time::Duration;

pub(crate) use recent::RecentLease;
#[cfg(all(test, not(feature = "test-util"), not(palisade_loom)))]
pub(crate) use recent::TEST_LEASES;
pub(crate) use tokio::time::Instant;

/// Fixed-point position of [`Clock`]'s scale: it holds nanoseconds per `2^SCALE_BITS` ticks.
const SCALE_BITS: u32 = 40;

/// A monotonic clock anchored at its creation, read in *ticks* (the counter's own unit) or
/// in nanoseconds.
///
/// In production it reads the CPU's time-stamp counter through `quanta` (a fraction of the
/// cost of `std::time::Instant::now`: docs/PERFORMANCE.md, "Clock reads"); with the `test-util`
/// feature it reads tokio's clock, so paused-time tests drive it, and a tick is a nanosecond.
/// Hot paths that only compare and subtract times keep ticks and convert once, with an inline
/// multiply (quanta's own conversion is a call and two enum matches per read).
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    #[cfg(not(feature = "test-util"))]
    counter: quanta::Clock,
    #[cfg(not(feature = "test-util"))]
    origin: u64,
    #[cfg(feature = "test-util")]
    origin: Instant,
    /// Nanoseconds per `2^SCALE_BITS` ticks.
    scale: u64,
}

/// The process's time-stamp counter, made once. `quanta::Clock::new` asks the CPU about its
/// counter with `cpuid`, which a virtual machine traps: ~11 us each here, 76 % of the time a
/// keyed breaker spent making a new key's breaker (benches/keyed_memory.rs, perf). Clones
/// share the calibration.
#[cfg(not(feature = "test-util"))]
fn process_counter() -> quanta::Clock {
    shared_counter().clone()
}

#[cfg(not(feature = "test-util"))]
fn shared_counter() -> &'static quanta::Clock {
    static COUNTER: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    COUNTER.get_or_init(quanta::Clock::new)
}

/// A raw reading of the process's counter (the coarse clock's refresher).
#[cfg(not(feature = "test-util"))]
fn process_counter_raw() -> u64 {
    shared_counter().raw()
}

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn new() -> Self {
        #[cfg(not(feature = "test-util"))]
        {
            let counter = process_counter();
            let origin = counter.raw();
            // quanta's conversion is linear (a multiply and a shift), so its value at one
            // large delta gives the scale to 40 significant bits.
            let scale = counter.delta_as_nanos(0, 1 << SCALE_BITS).max(1);
            Self {
                counter,
                origin,
                scale,
            }
        }
        #[cfg(feature = "test-util")]
        Self {
            origin: Instant::now(),
            scale: 1 << SCALE_BITS,
        }
    }

    /// A reading of the time now.
    #[inline]
    pub(crate) fn now(&self) -> Now {
        #[cfg(not(feature = "test-util"))]
        {
            Now {
                raw: self.counter.raw(),
            }
        }
        #[cfg(feature = "test-util")]
        Now { at: Instant::now() }
    }

    /// A coarse reading of the time: the counter as the coarse clock's refresher last read
    /// it (see [`RecentLease`]; up to about a millisecond old), one relaxed load. Exact
    /// with `test-util`. Only meaningful while a [`RecentLease`] is held.
    #[inline]
    pub(crate) fn recent(&self) -> Now {
        #[cfg(not(feature = "test-util"))]
        {
            Now {
                raw: recent::recent_raw(),
            }
        }
        #[cfg(feature = "test-util")]
        self.now()
    }

    /// Ticks since the origin.
    #[inline]
    pub(crate) fn ticks(&self) -> u64 {
        self.ticks_at(self.now())
    }

    /// Ticks from the origin to `now`.
    #[inline]
    pub(crate) fn ticks_at(&self, now: Now) -> u64 {
        #[cfg(not(feature = "test-util"))]
        {
            now.raw.saturating_sub(self.origin)
        }
        #[cfg(feature = "test-util")]
        duration_nanos(now.at.saturating_duration_since(self.origin))
    }

    /// Nanoseconds since the origin (saturates after ~584 years).
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.nanos_at(self.now())
    }

    /// Nanoseconds from the origin to `now`.
    #[inline]
    pub(crate) fn nanos_at(&self, now: Now) -> u64 {
        self.to_nanos(self.ticks_at(now))
    }

    /// Nanoseconds in `ticks` (saturating).
    #[inline]
    pub(crate) fn to_nanos(&self, ticks: u64) -> u64 {
        let n = (u128::from(ticks) * u128::from(self.scale)) >> SCALE_BITS;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// The fewest ticks that make at least `nanos` nanoseconds, so that for any `t`,
    /// `t >= to_ticks(n)` exactly when `to_nanos(t) >= n` (saturating).
    pub(crate) fn to_ticks(&self, nanos: u64) -> u64 {
        let scale = u128::from(self.scale);
        let t = (u128::from(nanos) << SCALE_BITS).div_ceil(scale);
        // div_ceil can overshoot by one where to_nanos truncates: step back while it still fits.
        let t = if t > 0 && (((t - 1) * scale) >> SCALE_BITS) >= u128::from(nanos) {
            t - 1
        } else {
            t
        };
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Seconds in `ticks`, for histograms.
    #[inline]
    pub(crate) fn to_secs_f64(&self, ticks: u64) -> f64 {
        ticks as f64 * (self.scale as f64 / (1u64 << SCALE_BITS) as f64 * 1e-9)
    }
}

/// One reading of the time that any [`Clock`] and [`Stamp`] can use, so a caller that needs
/// the time in several places (the policy: deadline, breaker, limiter, timeout) reads the
/// counter once: the raw time-stamp counter in production (the same counter behind every
/// `Clock`), tokio's clock with `test-util`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    #[cfg(not(feature = "test-util"))]
    raw: u64,
    #[cfg(feature = "test-util")]
    at: Instant,
}

impl Now {
    /// Reads the time.
    #[inline]
    pub(crate) fn read() -> Self {
        #[cfg(not(feature = "test-util"))]
        {
            process_clock().now()
        }
        #[cfg(feature = "test-util")]
        Now { at: Instant::now() }
    }
}

/// A point in time that deadlines and timeouts compare, cheap to take: the time-stamp
/// counter on one process-wide [`Clock`] in production (no system call), tokio's clock with
/// `test-util` (so paused-time tests drive deadlines). Converted to an [`Instant`] only to
/// arm a timer or answer [`deadline::current`](crate::deadline::current).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    #[cfg(not(feature = "test-util"))]
    nanos: u64,
    #[cfg(feature = "test-util")]
    at: Instant,
}

#[cfg(not(feature = "test-util"))]
#[inline]
fn process_clock() -> &'static Clock {
    static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(Clock::new)
}

impl Stamp {
    /// Now.
    #[inline]
    pub(crate) fn now() -> Self {
        Self::at(Now::read())
    }

    /// The moment of a reading.
    #[inline]
    pub(crate) fn at(now: Now) -> Self {
        #[cfg(not(feature = "test-util"))]
        {
            Self {
                nanos: process_clock().nanos_at(now),
            }
        }
        #[cfg(feature = "test-util")]
        Self { at: now.at }
    }

    /// `self + d`, `None` past the clock's range.
    #[inline]
    pub(crate) fn checked_add(self, d: Duration) -> Option<Self> {
        #[cfg(not(feature = "test-util"))]
        {
            let nanos = self.nanos.checked_add(u64::try_from(d.as_nanos()).ok()?)?;
            Some(Self { nanos })
        }
        #[cfg(feature = "test-util")]
        Some(Self {
            at: self.at.checked_add(d)?,
        })
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    #[inline]
    pub(crate) fn saturating_duration_since(self, earlier: Stamp) -> Duration {
        #[cfg(not(feature = "test-util"))]
        {
            Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
        }
        #[cfg(feature = "test-util")]
        self.at.saturating_duration_since(earlier.at)
    }

    /// The same moment on tokio's clock (to arm a timer): now plus the time left until it,
    /// or now less the time since it.
    pub(crate) fn to_instant(self) -> Instant {
        #[cfg(not(feature = "test-util"))]
        {
            let (stamp, now) = (Stamp::now(), Instant::now());
            if self >= stamp {
                now.checked_add(self.saturating_duration_since(stamp))
                    .unwrap_or(now + Duration::from_secs(86_400 * 365 * 30))
            } else {
                now.checked_sub(stamp.saturating_duration_since(self))
                    .unwrap_or(now)
            }
        }
        #[cfg(feature = "test-util")]
        self.at
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_with(scale: u64) -> Clock {
        Clock {
            scale,
            ..Clock::new()
        }
    }

    #[test]
    fn to_ticks_is_the_exact_inverse_threshold_of_to_nanos() {
        // 1 GHz (identity), a 2.9 GHz and a 3.3 GHz counter, and a slow 24 MHz one.
        for scale in [
            1u64 << 40,
            379_145_082_865,
            333_174_749_519,
            45_812_984_490_667,
        ] {
            let c = clock_with(scale);
            for n in [0u64, 1, 2, 999, 1_000_000, 60_000_000_000, 1 << 50] {
                let t = c.to_ticks(n);
                assert!(c.to_nanos(t) >= n, "scale {scale}, {n} ns: {t} ticks");
                if t > 0 {
                    assert!(c.to_nanos(t - 1) < n, "scale {scale}, {n} ns: {t} ticks");
                }
            }
        }
    }

    #[test]
    fn conversions_saturate() {
        let c = clock_with(1 << 44);
        assert_eq!(c.to_nanos(u64::MAX), u64::MAX);
        assert_eq!(clock_with(1).to_ticks(u64::MAX), u64::MAX);
    }

    #[test]
    fn stamps_add_compare_and_map_onto_tokios_clock() {
        let start = Stamp::now();
        let later = start.checked_add(Duration::from_secs(5)).expect("in range");
        assert!(later > start);
        assert_eq!(
            later.saturating_duration_since(start),
            Duration::from_secs(5)
        );
        assert_eq!(start.saturating_duration_since(later), Duration::ZERO);
        assert!(start.checked_add(Duration::MAX).is_none());
        // On tokio's clock the stamp lands where a deadline set now would: within the time
        // these lines take (exactly, with test-util's clock).
        let expected = Instant::now() + Duration::from_secs(5);
        let mapped = later.to_instant();
        let skew = if mapped > expected {
            mapped - expected
        } else {
            expected - mapped
        };
        assert!(skew < Duration::from_millis(50), "{skew:?}");
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("the test machine has been up for a second");
        let before = Stamp::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(before.to_instant() < Instant::now());
        assert!(before.to_instant() > past);
    }
}
