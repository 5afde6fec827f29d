//! Fuzzing on stable Rust, driven by proptest: every parser of outside input and every
//! config builder gets arbitrary values. The property is the same everywhere: no panic, and
//! every refusal is a named error (the field or header, and the problem). Configs that are
//! accepted are then spawned and used, so a value that passes `build()` cannot panic later.
//!
//! The seed corpus (hostile values found by hand and by earlier runs) is in each test as
//! explicit cases; proptest writes any new failure to `fuzz.proptest-regressions`, which
//! is committed so a found case is replayed first forever.

use std::time::Duration;

use palisade::deadline::{grpc_timeout, parse_grpc_timeout, parse_header};
use palisade::{
    Backoff, BreakerConfig, BulkheadConfig, Jitter, LimiterConfig, Quota, Runtime, SlidingWindow,
};
use proptest::prelude::*;

/// Durations across every scale, the edges included.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_nanos(1)),
        (0u64..2_000).prop_map(Duration::from_millis),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

/// Floats with the hostile ones (NaN, infinities, negatives, subnormals).
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE / 2.0),
        -1e3f64..1e3,
        any::<f64>(),
    ]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        0u32..10_000,
        any::<u32>()
    ]
}

/// Header values as they arrive: anything, digits of any length, units, whitespace, signs.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,30}",
        "[ +-]?[0-9]{1,12}[HMSmun ]?",
        "[0-9]{1,9}[HMSmun]",
        "\\PC{0,300}",
        Just("9".repeat(100_000)),
    ]
}

const SEEDS: &[&str] = &[
    "",
    " ",
    "-1",
    "+5",
    "1e3",
    "0x10",
    "１２３",
    "18446744073709551616",
    "2592000001",
    "2592000000",
    "99999999H",
    "100000000S",
    "1",
    "S",
    "5s",
    "5 S",
    "٣S",
    "5S\n",
    "\u{0}",
    "5\u{301}S",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// `x-deadline-remaining`: a value is whole milliseconds up to 30 days, or a named refusal.
    #[test]
    fn the_deadline_header_parser_never_panics(value in header_text()) {
        match parse_header(&value) {
            Ok(d) => prop_assert!(d <= Duration::from_secs(30 * 86_400)),
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(shown.contains(palisade::deadline::HEADER), "{shown}");
                prop_assert!(shown.len() < 600, "a refusal echoes a bounded value: {} bytes", shown.len());
            }
        }
    }

    /// `grpc-timeout`: parsed or refused by name; what palisade writes parses back to at
    /// least the budget it stood for (rounded up, never more than one unit over).
    #[test]
    fn the_grpc_timeout_parser_never_panics_and_round_trips(value in header_text(), d in duration()) {
        if let Err(e) = parse_grpc_timeout(&value) {
            prop_assert!(e.to_string().contains("grpc-timeout"), "{e}");
        }
        let written = grpc_timeout(d);
        let back = parse_grpc_timeout(&written).expect("palisade's own value parses");
        let cap = Duration::from_secs(99_999_999 * 3_600);
        prop_assert!(back >= d.min(cap), "{written} stands for {back:?} < {d:?}");
    }

    /// Every breaker setting, any value: built or refused naming the field; a built config
    /// reconfigures a running breaker or is refused, never panics.
    #[test]
    fn breaker_configs_never_panic(
        calls in count(), window in duration(), time_window in any::<bool>(), bucket in duration(),
        minimum in count(), failure in float(), slow in float(), slow_after in duration(),
        wait in duration(), backoff in proptest::option::of((float(), duration())),
        probes in count(), half_open_wait in duration(), automatic in any::<bool>(),
    ) {
        let mut b = BreakerConfig::builder()
            .sliding_window(if time_window { SlidingWindow::Time(window) } else { SlidingWindow::Count(calls) })
            .time_bucket(bucket)
            .minimum_calls(minimum)
            .failure_rate_threshold(failure)
            .slow_call_rate_threshold(slow)
            .slow_call_duration(slow_after)
            .wait_in_open(wait)
            .half_open_permits(probes)
            .max_wait_in_half_open(half_open_wait)
            .automatic_half_open(automatic);
        if let Some((multiplier, max)) = backoff {
            b = b.open_backoff(multiplier, max);
        }
        match b.build() {
            Ok(config) => prop_assert!(config.validate().is_ok()),
            Err(e) => prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e}"),
        }
    }

    /// Every limiter algorithm with any quota: accepted or refused by name.
    #[test]
    fn limiter_configs_never_panic(
        kind in 0u8..5, a in count(), b in count(), period in duration(), burst in proptest::option::of(count()),
    ) {
        let quota = {
            let q = Quota::new(a, period);
            match burst { Some(n) => q.burst(n), None => q }
        };
        let config = match kind {
            0 => LimiterConfig::gcra(quota),
            1 => LimiterConfig::leaky_bucket(quota),
            2 => LimiterConfig::token_bucket(b, quota),
            3 => LimiterConfig::sliding_window(a, period),
            _ => LimiterConfig::fixed_window(a, period),
        };
        if let Err(e) = config.validate() {
            prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e}");
        }
    }

    #[test]
    fn bulkhead_configs_never_panic(max in count(), wait in duration(), queue in count()) {
        match BulkheadConfig::builder().max_concurrent(max).max_wait(wait).max_queue(queue).build() {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => prop_assert!(!e.field.is_empty(), "{e}"),
        }
    }

    /// A backoff with any shape and values: refused by name, or every delay it gives (for
    /// any attempt and any previous delay) stays within its cap.
    #[test]
    fn backoffs_never_panic(
        shape in 0u8..3, base in duration(), factor in float(), cap in duration(),
        jitter in 0u8..4, n in any::<u32>(), previous in duration(),
    ) {
        let b = match shape {
            0 => Backoff::constant(base),
            1 => Backoff::linear(base),
            _ => Backoff::exponential(base).factor(factor),
        }
        .max_delay(cap)
        .jitter([Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated][usize::from(jitter)]);
        if b.validate().is_ok() {
            let d = b.delay(n, previous, &mut rand::rng());
            prop_assert!(d <= cap.max(base), "{d:?} over the cap {cap:?}");
        }
    }

    /// A config file of arbitrary text: checked or refused with a key path and a problem.
    #[test]
    fn config_text_never_panics(text in prop_oneof![any::<String>(), "\\PC{0,400}"]) {
        if let Err(e) = palisade::config::check("fuzz.toml", &text) {
            prop_assert!(!e.problem.is_empty(), "{e}");
        }
    }

    /// Config files built from the real vocabulary with values of every type, so the
    /// parser gets past TOML and into every entry's checks.
    #[test]
    fn config_entries_with_any_values_never_panic(
        entries in proptest::collection::vec((0usize..6, "[a-z_]{1,12}", 0usize..KEYS.len(), value()), 1..8),
    ) {
        let mut text = String::new();
        for (kind, name, key, value) in &entries {
            let section = ["breaker", "limiter", "keyed_limiter", "bulkhead", "retry", "policy"][*kind];
            text.push_str(&format!("[{section}.instances.{name}]\n{} = {value}\n", KEYS[*key]));
        }
        match palisade::config::check("fuzz.toml", &text) {
            Ok(()) => {}
            Err(e) => prop_assert!(!e.problem.is_empty() && e.to_string().contains("fuzz.toml"), "{e}"),
        }
    }
}

const KEYS: &[&str] = &[
    "sliding_window_calls",
    "sliding_window_time",
    "time_bucket",
    "minimum_calls",
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration",
    "wait_in_open",
    "open_backoff_multiplier",
    "open_backoff_max",
    "half_open_permits",
    "max_wait_in_half_open",
    "automatic_half_open",
    "algorithm",
    "rate",
    "per",
    "burst",
    "capacity",
    "limit",
    "window",
    "shadow",
    "max_keys",
    "idle_sweep",
    "plans",
    "max_concurrent",
    "max_wait",
    "max_queue",
    "max_attempts",
    "backoff",
    "delay",
    "factor",
    "max_delay",
    "jitter",
    "deadline",
    "timeout",
    "breaker",
    "limiter",
    "bulkhead",
    "retry",
    "base_config",
    "redis",
];

/// TOML values of every type, hostile ones first.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("4294967296".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("1e308".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"18446744073709551615h\"".to_owned()),
        Just("\"gcra\"".to_owned()),
        Just("\"token_bucket\"".to_owned()),
        Just("\"sliding_window\"".to_owned()),
        Just("[{ keys = \"*\", rate = 0 }]".to_owned()),
        Just(
            "[{ keys = \"a*\", rate = 4294967295, per = \"1ns\", burst = 4294967295 }]".to_owned()
        ),
        Just(
            "{ url = \"redis://127.0.0.1:1/\", on_failure = \"local\", local_percent = 0 }"
                .to_owned()
        ),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[0-9]{1,20}(ns|us|ms|s|m|h|d)".prop_map(|s| format!("\"{s}\"")),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,20}".prop_map(|s| format!("{s:?}")),
    ]
}

#[test]
fn the_seed_corpus_is_refused_by_name_or_parsed() {
    for seed in SEEDS {
        if let Err(e) = parse_header(seed) {
            assert!(
                e.to_string().contains(palisade::deadline::HEADER),
                "{seed:?}: {e}"
            );
        }
        if let Err(e) = parse_grpc_timeout(seed) {
            assert!(e.to_string().contains("grpc-timeout"), "{seed:?}: {e}");
        }
    }
    assert_eq!(
        parse_grpc_timeout("99999999H")
            .expect("the largest")
            .as_secs(),
        99_999_999 * 3_600
    );
    assert!(parse_header("2592000001").is_err(), "more than 30 days");
}

/// Configs at their extremes, accepted by their builders, spawned and used: a value that
/// passes `build()` must not panic in the running primitive (timers, windows, refills).
#[tokio::test(start_paused = true)]
async fn accepted_extreme_configs_run_without_panicking() {
    let rt = Runtime::start().await.expect("runtime");
    let extremes = [
        Duration::from_nanos(1),
        Duration::from_secs(1),
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
    ];
    let mut spawned = 0;
    for (i, &d) in extremes.iter().enumerate() {
        for (j, window) in [
            SlidingWindow::Count(1),
            SlidingWindow::Count(u32::MAX),
            SlidingWindow::Time(d),
        ]
        .into_iter()
        .enumerate()
        {
            let Ok(config) = BreakerConfig::builder()
                .sliding_window(window)
                .minimum_calls(1)
                .wait_in_open(d)
                .slow_call_duration(d)
                .max_wait_in_half_open(d)
                .open_backoff(1e300, d)
                .build()
            else {
                continue;
            };
            let Ok(b) = rt.breaker(&format!("fuzz-b-{i}-{j}"), config).await else {
                continue;
            };
            spawned += 1;
            for _ in 0..3 {
                let _ = b.execute(|| async { Err::<(), _>("down") }).await;
            }
            tokio::time::advance(Duration::from_secs(3600)).await;
            let _ = (b.status(), b.execute(|| async { Ok::<_, ()>(()) }).await);
        }
        for (j, config) in [
            LimiterConfig::gcra(Quota::new(u32::MAX, d).burst(u32::MAX)),
            LimiterConfig::gcra(Quota::new(1, d)),
            LimiterConfig::leaky_bucket(Quota::new(u32::MAX, d)),
            LimiterConfig::token_bucket(u32::MAX, Quota::new(u32::MAX, d)),
            LimiterConfig::sliding_window(u32::MAX, d),
            LimiterConfig::fixed_window(1, d),
        ]
        .into_iter()
        .enumerate()
        {
            if config.validate().is_err() {
                continue;
            }
            let Ok(l) = rt.limiter(&format!("fuzz-l-{i}-{j}"), config.clone()).await else {
                continue;
            };
            let k = rt
                .keyed_limiter::<u64>(&format!("fuzz-k-{i}-{j}"), config)
                .await
                .expect("keyed");
            spawned += 1;
            for n in [1, 2, u32::MAX] {
                let _ = (l.check_n(n), k.check_n(&7, n), l.status(), k.status_of(&7));
            }
            tokio::time::advance(Duration::from_secs(86_400)).await;
            let _ = (l.check(), k.check(&7));
        }
    }
    assert!(
        spawned > 10,
        "the extremes were exercised ({spawned} spawned)"
    );
    rt.shutdown().await;
}
