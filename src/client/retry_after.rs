//! Reading a `Retry-After` (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` may impose: a hostile or broken header cannot shut an
/// authority for longer.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// The wait `value` asks for, at most [`MAX_WAIT`]: whole seconds (`"120"`), or an HTTP-date
/// (`"Wed, 21 Oct 2026 07:28:00 GMT"`, and the obsolete forms) measured from `now`. `None`
/// for anything else, and for a date already past.
pub(crate) fn wait(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // digits too many for a u64 are a very long wait, capped like any other
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let wait = at.duration_since(now).ok()?;
    Some(wait.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_dates_and_refusals() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").expect("date");
        let w = |v: &str| wait(v.as_bytes(), now);
        assert_eq!(w("120"), Some(Duration::from_secs(120)));
        assert_eq!(w(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(w("0"), Some(Duration::ZERO));
        assert_eq!(w("99999999999999999999999"), Some(MAX_WAIT));
        assert_eq!(
            w("Wed, 02 Dec 2026 10:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            w("Wednesday, 02-Dec-26 10:01:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(w("Wed Dec  2 10:00:05 2026"), Some(Duration::from_secs(5)));
        assert_eq!(w("Fri, 01 Jan 2100 00:00:00 GMT"), Some(MAX_WAIT));
        assert_eq!(
            w("Wed, 02 Dec 2026 09:59:00 GMT"),
            None,
            "a date already past"
        );
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Wed, 32 Dec 2026 10:00:00 GMT",
            "120s",
        ] {
            assert_eq!(w(bad), None, "{bad:?}");
        }
        assert_eq!(wait(&[0xff, 0xfe], now), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// Any bytes, and text shaped like the header's two forms with hostile parts
        /// (huge numbers, signs, years 0 and 9999, days past a month's end, any time of
        /// day): never a panic, never a wait past the cap; whole seconds always parse.
        #[test]
        fn any_value_is_a_capped_wait_or_ignored(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            shaped in proptest::prop_oneof![
                "[0-9]{0,30}",
                "[+-]?[0-9]{1,5}(\\.[0-9])?",
                "(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Xyz), [0-9]{1,2} (Jan|Feb|Dec|Foo) [0-9]{1,5} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2} (GMT|UTC|PST)",
                "(Monday|Sunday), [0-9]{2}-(Jan|Dec)-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
                "(Mon|Sun) (Jan|Dec) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}",
            ],
            now_secs in 0u64..(400 * 365 * 86_400),
        ) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs);
            for value in [bytes.as_slice(), shaped.as_bytes()] {
                if let Some(w) = wait(value, now) {
                    proptest::prop_assert!(w <= MAX_WAIT, "{w:?}");
                }
            }
            if !shaped.is_empty() && shaped.bytes().all(|b| b.is_ascii_digit()) {
                proptest::prop_assert!(wait(shaped.as_bytes(), now).is_some(), "{shaped}");
            }
        }
    }
}
