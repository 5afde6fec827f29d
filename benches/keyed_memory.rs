//! Resident memory of keyed primitives under a stream of distinct keys, at several
//! `max_keys`: a table never holds more than `max_keys`, so memory must stay flat however
//! many keys pass.
//! - keyed limiter: 10^7 keys at `max_keys` 1,000 / 100,000 / 1,000,000;
//! - keyed breaker (one breaker per key, as the reqwest middleware keeps per authority):
//!   10^7 keys at `max_keys` 1,000 and 10,000, without and with the Prometheus recorder.
//!
//! One process per run (resident memory does not shrink back to the allocator's baseline
//! within a process); each prints RSS before and at marks along the stream.
//!
//! - memory per key beside governor: fresh u64 keys under a cap above them, RSS growth
//!   divided by the keys, each side in a process of its own; 10^6 keys (the row),
//!   then a sweep from 3·10^5 to 1.8·10^6. Both sides' tables double when 7/8 full, so
//!   memory per key is a sawtooth over the key count (17 bytes a bucket over a load between
//!   7/16 and 7/8): one point alone says where the tables stand in their doubling, the
//!   sweep says how the two compare at any count.
//!
//! `cargo bench -p palisade-benches --bench keyed_memory` (every run in turn), or
//! `... -- limiter 100000`, `... -- breaker 1000 [prometheus]`, `... -- per-key palisade`
//! (or `governor`) `[keys]` for one.

use std::time::Instant;

use palisade::{
    breaker::KeyedBreakerConfig, BreakerConfig, KeyedLimiterConfig, LimiterConfig, Quota, Runtime,
};

/// Resident set size in MiB, from /proc/self/statm.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn run(max_keys: u32) {
    let rt = support::current_thread();
    rt.block_on(async move {
        let runtime = Runtime::start().await.expect("runtime");
        // a quick refill: a key is idle (back at a full quota) a microsecond after its check,
        // so the table may evict it at the cap, as real keys become idle between requests
        let base = LimiterConfig::gcra(Quota::per_second(1_000_000).burst(5));
        let keyed = runtime
            .keyed_limiter::<u64>(
                "memory",
                KeyedLimiterConfig::new(base).max_keys(max_keys),
            )
            .await
            .expect("keyed");
        let before = rss_mib();
        let start = Instant::now();
        let mut marks = Vec::new();
        for key in 0..10_000_000u64 {
            let _ = keyed.check(&key);
            if [999_999, 1_999_999, 4_999_999, 9_999_999].contains(&key) {
                marks.push(format!("{:.1}", rss_mib()));
            }
        }
        println!(
            "max_keys {max_keys:>9}: RSS {before:.1} MiB before; after 1, 2, 5, 10 million keys: {} MiB; keys held {}; {:.1} s",
            marks.join(", "),
            keyed.status().keys,
            start.elapsed().as_secs_f64()
        );
        runtime.shutdown().await;
    });
}

/// A keyed breaker over 10^7 distinct keys, each making one successful call (a breaker
/// that learned nothing is idle after `idle_after`, 1 µs here, so the table may drop it).
fn run_breakers(max_keys: u32, prometheus: bool) {
    let rt = support::current_thread();
    rt.block_on(async move {
        let handle = prometheus
            .then(|| palisade::telemetry::prometheus::install_recorder().expect("recorder"));
        let runtime = Runtime::start().await.expect("runtime");
        let keyed = runtime
            .keyed_breaker::<u64>(
                "memory",
                KeyedBreakerConfig::new(BreakerConfig::default())
                    .max_keys(max_keys)
                    .idle_after(std::time::Duration::from_micros(1)),
            )
            .expect("keyed");
        let before = rss_mib();
        let start = Instant::now();
        let mut marks = Vec::new();
        for key in 0..10_000_000u64 {
            let _ = keyed
                .get(&key)
                .execute(|| async { Ok::<_, ()>(()) })
                .await;
            if key.is_multiple_of(50_000) {
                // the recorder keeps histogram samples until its upkeep drains them; this
                // loop never yields to the upkeep task, so it runs here, as often
                if let Some(h) = &handle {
                    h.run_upkeep();
                }
            }
            if [999_999, 1_999_999, 4_999_999, 9_999_999].contains(&key) {
                marks.push(format!("{:.1}", rss_mib()));
            }
        }
        println!(
            "keyed breaker, max_keys {max_keys:>6}{}: RSS {before:.1} MiB before; after 1, 2, 5, 10 million keys: {} MiB; keys held {}; {:.1} s",
            if prometheus { ", Prometheus recorder" } else { "" },
            marks.join(", "),
            keyed.len(),
            start.elapsed().as_secs_f64()
        );
        runtime.shutdown().await;
    });
}

/// RSS growth per key over `keys` fresh u64 keys, on an always-allow GCRA quota.
fn per_key(side: &str, keys: u64) {
    let rt = support::current_thread();
    rt.block_on(async move {
        let runtime = Runtime::start().await.expect("runtime");
        let ours = runtime
            .keyed_limiter::<u64>(
                "per-key",
                KeyedLimiterConfig::new(LimiterConfig::gcra(
                    Quota::per_second(1_000_000_000).burst(1_000_000_000),
                ))
                .max_keys(4_000_000),
            )
            .await
            .expect("keyed");
        let nz = |n| std::num::NonZeroU32::new(n).expect("non-zero");
        let theirs = governor::RateLimiter::<u64, _, _>::keyed(
            governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000_000_000)),
        );
        let before = rss_mib();
        for key in 0..keys {
            if side == "palisade" {
                let _ = ours.check(&key);
            } else {
                let _ = theirs.check_key(&key);
            }
        }
        let grown = (rss_mib() - before) * 1024.0 * 1024.0;
        println!(
            "memory per key, {side:<8}: {:.1} bytes ({:.1} MiB over {keys} keys)",
            grown / keys as f64,
            grown / (1024.0 * 1024.0)
        );
        runtime.shutdown().await;
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cap = args.get(1).and_then(|a| a.parse::<u32>().ok());
    match (args.first().map(String::as_str), cap) {
        (Some("limiter"), Some(cap)) => run(cap),
        (Some("per-key"), _) => per_key(
            args.get(1).map_or("palisade", String::as_str),
            args.get(2)
                .and_then(|k| k.parse().ok())
                .unwrap_or(1_000_000),
        ),
        (Some("breaker"), Some(cap)) => {
            run_breakers(cap, args.get(2).is_some_and(|a| a == "prometheus"))
        }
        _ => {
            // each run in a process of its own
            let me = std::env::current_exe().expect("own path");
            let mut runs: Vec<Vec<String>> = [1_000u32, 100_000, 1_000_000]
                .iter()
                .map(|cap| vec!["limiter".to_owned(), cap.to_string()])
                .collect();
            for prometheus in [false, true] {
                for cap in [1_000u32, 10_000] {
                    let mut run = vec!["breaker".to_owned(), cap.to_string()];
                    if prometheus {
                        run.push("prometheus".to_owned());
                    }
                    runs.push(run);
                }
            }
            for keys in [
                1_000_000u64,
                300_000,
                450_000,
                600_000,
                750_000,
                900_000,
                1_200_000,
                1_500_000,
                1_800_000,
            ] {
                for side in ["palisade", "governor"] {
                    runs.push(vec![
                        "per-key".to_owned(),
                        side.to_owned(),
                        keys.to_string(),
                    ]);
                }
            }
            for run in runs {
                let status = std::process::Command::new(&me)
                    .args(&run)
                    .status()
                    .expect("run one");
                assert!(status.success(), "{run:?} failed");
            }
        }
    }
}
