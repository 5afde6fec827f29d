//! Serialization helpers for the `serde` feature: durations as human strings ("250ms",
//! "30s", "1.5s"), and Redis URLs with their password hidden.

use std::time::Duration;

use serde::Serializer;

/// A duration as a short human string: whole units where they fit ("250ms", "30s",
/// "2m", "1h"), else seconds with a fraction ("1.5s"), "0s" for zero.
pub(crate) fn human(d: &Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos % per == 0 {
            return format!("{}{unit}", nanos / per);
        }
    }
    unreachable!("every duration is a whole number of nanoseconds")
}

pub(crate) fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&human(d))
}

pub(crate) fn option_duration<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&human(d)),
        None => s.serialize_none(),
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn redacted_urls<S: Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| crate::error::redact_url(u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(&Duration::ZERO), "0s");
        assert_eq!(human(&Duration::from_millis(250)), "250ms");
        assert_eq!(human(&Duration::from_secs(30)), "30s");
        assert_eq!(human(&Duration::from_secs(120)), "2m");
        assert_eq!(human(&Duration::from_secs(7200)), "2h");
        assert_eq!(human(&Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(&Duration::from_nanos(7)), "7ns");
    }
}
