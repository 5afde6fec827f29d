//! Leaky bucket as a meter: requests leave at a steady rate and no burst is allowed, so
//! admitted requests are spaced at least one interval apart. It is GCRA with a burst of 1
//! (zero tolerance); this module sets those parameters.

use super::config::Quota;
use super::gcra::Gcra;
use crate::error::ConfigError;

/// The GCRA parameters of a leaky bucket leaking at `quota`'s rate (its burst is ignored).
pub(crate) fn params(quota: &Quota) -> Result<Gcra, ConfigError> {
    Ok(Gcra {
        interval: quota.interval("quota")?,
        burst: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_one_request_per_interval_and_no_burst() {
        let g = params(&Quota::per_second(4).burst(100)).expect("valid");
        let (tat, _) = g.check(0, 0, 1);
        let tat = tat.expect("first");
        assert!(g.check(tat, 0, 1).0.is_none(), "no burst");
        assert!(g.check(tat, 249_999_999, 1).0.is_none());
        assert!(g.check(tat, 250_000_000, 1).0.is_some());
    }
}
