//! proptest: for any arrival pattern, admitted requests in any interval stay within the
//! algorithm's bound.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palisade::{LimiterConfig, Quota, Runtime};
use proptest::prelude::*;

static CASE: AtomicU32 = AtomicU32::new(0);

/// Admission times (ns since start) for arrivals separated by `gaps` (µs) with `costs`.
fn admitted(config: LimiterConfig, arrivals: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let prt = Runtime::start().await.unwrap();
        let name = format!("lim-prop-{}", CASE.fetch_add(1, Ordering::Relaxed));
        let l = prt.limiter(&name, config).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut out = Vec::new();
        for &(gap, cost) in arrivals {
            tokio::time::advance(Duration::from_micros(gap)).await;
            if l.check_n(cost).is_ok() {
                out.push((start.elapsed().as_nanos() as u64, cost));
            }
        }
        prt.shutdown().await;
        out
    })
}

/// The most units admitted in any closed interval of length `t`.
fn most_in(admitted: &[(u64, u32)], t: u64) -> u64 {
    let mut most = 0;
    for (i, &(start, _)) in admitted.iter().enumerate() {
        let sum: u64 = admitted[i..]
            .iter()
            .take_while(|(at, _)| *at <= start + t)
            .map(|(_, c)| u64::from(*c))
            .sum();
        most = most.max(sum);
    }
    most
}

fn arrivals() -> impl Strategy<Value = Vec<(u64, u32)>> {
    proptest::collection::vec((0u64..300_000, 1u32..4), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// GCRA (and so token and leaky buckets): at most burst + rate·t in any interval t.
    #[test]
    fn gcra_admits_at_most_burst_plus_rate_times_t(rate in 1u32..20, burst in 3u32..10, pattern in arrivals()) {
        let got = admitted(LimiterConfig::gcra(Quota::per_second(rate).burst(burst)), &pattern);
        let interval = 1_000_000_000 / u64::from(rate);
        for t in [0, interval / 2, interval, 3 * interval, 1_000_000_000, 5_000_000_000] {
            let bound = u64::from(burst) + t / interval;
            prop_assert!(most_in(&got, t) <= bound, "t={t}: {} > {bound}", most_in(&got, t));
        }
    }

    /// Sliding window: at most limit · (⌈t / window⌉ + 1) in any interval t (the current
    /// window's count never exceeds the limit).
    #[test]
    fn sliding_window_stays_within_its_documented_bound(limit in 3u32..20, pattern in arrivals()) {
        let window = 1_000_000_000u64;
        let got = admitted(LimiterConfig::sliding_window(limit, Duration::from_nanos(window)), &pattern);
        for t in [0, window / 3, window, 2 * window, 7 * window] {
            let bound = u64::from(limit) * (t.div_ceil(window) + 1);
            prop_assert!(most_in(&got, t) <= bound);
        }
        // and no more than `limit` in any one aligned window
        let mut per_window = std::collections::HashMap::new();
        for (at, c) in &got {
            *per_window.entry(at / window).or_insert(0u64) += u64::from(*c);
        }
        prop_assert!(per_window.values().all(|&n| n <= u64::from(limit)));
    }
}
