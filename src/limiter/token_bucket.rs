//! Token bucket: `capacity` tokens, refilled at a steady rate.
//!
//! A token bucket with capacity `c` refilled one token per `t` admits exactly what GCRA with
//! burst `c` and interval `t` admits: the bucket's token count at `now` is
//! `(now + c·t - tat) / t` for GCRA's TAT. So it is stored as a TAT (one atomic `u64`, no
//! lost refills between two reads of the clock) and checked by the GCRA core; this module
//! turns bucket terms into those parameters.

use super::config::Quota;
use super::gcra::Gcra;
use crate::error::ConfigError;

/// The GCRA parameters of a bucket holding `capacity` tokens refilled at `refill`'s rate.
pub(crate) fn params(capacity: u32, refill: &Quota) -> Result<Gcra, ConfigError> {
    if capacity == 0 {
        return Err(ConfigError::refused(
            "capacity",
            capacity,
            "a token bucket needs a capacity of at least 1",
        ));
    }
    let interval = refill.interval("refill")?;
    super::config::refill_fits("capacity", capacity, interval)?;
    Ok(Gcra {
        interval,
        burst: capacity,
    })
}

/// Tokens in the bucket at `now` for state `tat` (for docs and tests).
#[cfg(test)]
pub(crate) fn tokens(g: &Gcra, tat: u64, now: u64) -> u64 {
    (now + g.interval * u64::from(g.burst)).saturating_sub(tat.max(now)) / g.interval
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::decision::Decision;

    #[test]
    fn drains_and_refills_one_token_per_interval() {
        // 5 tokens, refilled 2 per second: one token every 500 ms
        let g = params(5, &Quota::per_second(2)).expect("valid");
        let mut tat = 0;
        for left in (0..5).rev() {
            let (new, d) = g.check(tat, 0, 1);
            tat = new.expect("admitted");
            assert!(matches!(d, Decision::Allowed { remaining, .. } if remaining == left));
        }
        assert_eq!(tokens(&g, tat, 0), 0);
        assert!(
            g.check(tat, 499_999_999, 1).0.is_none(),
            "1 ns before a token arrives"
        );
        assert_eq!(tokens(&g, tat, 500_000_000), 1);
        assert!(g.check(tat, 500_000_000, 1).0.is_some());
        assert_eq!(
            tokens(&g, tat, 10_000_000_000),
            5,
            "never more than capacity"
        );
        assert!(params(0, &Quota::per_second(1)).is_err());
    }
}
