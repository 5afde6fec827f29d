//! Durations as a config file writes them: a whole number and a unit, `"250ms"`, `"30s"`,
//! `"1h"` (also `ns`, `us`, `m`, `d`); `"0s"` where zero is allowed. A bare number is refused:
//! it would be a guess whether it means seconds or milliseconds.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// What the parser expects, in every error it gives.
pub(crate) const EXPECTED: &str =
    "a duration: a whole number and a unit (ns, us, ms, s, m, h, d), such as \"250ms\", \"30s\" or \"1h\"";

/// Parses `"250ms"`, `"30s"`, `"1h"`... The error says what was wrong.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "{text:?} does not start with a number; expected {EXPECTED}"
        ));
    }
    let (number, unit) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is too large; expected {EXPECTED}"))?;
    let per_unit: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "" => return Err(format!("{text:?} has no unit; expected {EXPECTED}")),
        other => {
            return Err(format!(
                "{text:?} has the unknown unit {other:?}; expected {EXPECTED}"
            ))
        }
    };
    n.checked_mul(per_unit)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("{text:?} is too large; expected {EXPECTED}"))
}

/// `deserialize_with` for an optional duration field.
pub(crate) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(EXPECTED)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse(v).map(Some).map_err(E::custom)
        }
    }
    d.deserialize_str(Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_refusals() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("7us"), Ok(Duration::from_micros(7)));
        for bad in [
            "",
            "ms",
            "10",
            "10 parsecs",
            "-1s",
            "1.5s",
            "99999999999999999999s",
            "1e3ms",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("expected a duration"), "{bad}: {e}");
        }
        assert!(parse("18446744073709551615h")
            .expect_err("overflows")
            .contains("too large"));
    }
}
