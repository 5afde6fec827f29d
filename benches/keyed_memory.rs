//! Resident memory of a keyed limiter under 10^7 distinct keys, at several `max_keys`: the
//! table never holds more than `max_keys`, so memory must stay flat however many keys pass.
//! One process per `max_keys` (resident memory does not shrink back to the allocator's
//! baseline within a process); each prints RSS before, after 10^6 and after 10^7 keys.
//!
//! `cargo bench -p palisade-benches --bench keyed_memory` (all three caps in turn), or
//! `... -- 100000` for one.

use std::time::Instant;

use palisade::{KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

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

fn main() {
    let cap = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse::<u32>().ok());
    match cap {
        Some(cap) => run(cap),
        None => {
            // each cap in a process of its own
            let me = std::env::current_exe().expect("own path");
            for cap in [1_000u32, 100_000, 1_000_000] {
                let status = std::process::Command::new(&me)
                    .arg(cap.to_string())
                    .status()
                    .expect("run one cap");
                assert!(status.success(), "max_keys {cap} failed");
            }
        }
    }
}
