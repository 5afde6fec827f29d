//! A fixed-count harness for instruction counts: runs `N` calls of one hot path, for
//! `valgrind --tool=callgrind`, which counts instructions (repeatable whatever else the
//! machine does, unlike times). The count per call is the slope between two runs, which
//! removes start-up (quanta's calibration varies run to run):
//!
//! ```sh
//! cargo bench -p palisade-benches --bench instructions --no-run  # prints the binary's path
//! for n in 100000 1100000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/instructions-* breaker $n
//! done   # (second total - first total) / 1,000,000 = instructions per call
//! ```
//!
//! Paths: `breaker` (closed `execute`), `breaker_coarse` (the same, timed on the coarse
//! clock: `CallTiming::Coarse`), `breaker_untimed` (not timed: `CallTiming::Untimed`), `policy` (deadline, breaker, limiter, bulkhead,
//! timeout), `limiter` (a direct GCRA `check`), `limiter_denied` (the same, denied),
//! `governor` / `governor_denied` (the peer limiter's `check`, admitted and denied),
//! `recloser` (the peer breaker's `AsyncRecloser::call`), `bare` (the call alone). Run without arguments (as `cargo bench` does) it makes 1,000 calls of each.

use std::hint::black_box;
use std::time::Duration;

use palisade::{BulkheadConfig, CallTiming, LimiterConfig, Policy, Quota, Runtime};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let which = args.next();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let prt = Runtime::start().await.expect("runtime");
        let b = prt
            .breaker("instructions-db", support::rounds::breaker_config())
            .await
            .expect("spawn");
        let coarse = prt
            .breaker(
                "instructions-db-coarse",
                support::rounds::breaker_timed(CallTiming::Coarse),
            )
            .await
            .expect("spawn");
        let untimed = prt
            .breaker(
                "instructions-db-untimed",
                support::rounds::breaker_timed(CallTiming::Untimed),
            )
            .await
            .expect("spawn");
        let l = prt
            .limiter(
                "instructions-api",
                LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000)),
            )
            .await
            .expect("spawn");
        let spent = prt
            .limiter(
                "instructions-spent",
                LimiterConfig::gcra(Quota::per_hour(1)),
            )
            .await
            .expect("spawn");
        let nz = |n| std::num::NonZeroU32::new(n).expect("non-zero");
        let gov = governor::RateLimiter::direct(
            governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000_000_000)),
        );
        let gov_spent = governor::RateLimiter::direct(governor::Quota::per_hour(nz(1)));
        assert!(spent.check().is_ok() && gov_spent.check().is_ok());
        let p = prt
            .bulkhead(
                "instructions-pool",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("valid"),
            )
            .await
            .expect("spawn");
        let recloser =
            recloser::AsyncRecloser::from(recloser::Recloser::custom().closed_len(100).build());
        let policy = Policy::new()
            .deadline(Duration::from_secs(10))
            .breaker(&b)
            .limiter(&l)
            .bulkhead(&p)
            .timeout(Duration::from_secs(1));
        let paths: &[&str] = match which.as_deref() {
            Some("policy") => &["policy"],
            Some("limiter") => &["limiter"],
            Some("limiter_denied") => &["limiter_denied"],
            Some("governor") => &["governor"],
            Some("governor_denied") => &["governor_denied"],
            Some("recloser") => &["recloser"],
            Some("bare") => &["bare"],
            Some("breaker_coarse") => &["breaker_coarse"],
            Some("breaker_untimed") => &["breaker_untimed"],
            Some(_) => &["breaker"],
            None => &[
                "breaker",
                "breaker_coarse",
                "breaker_untimed",
                "policy",
                "limiter",
                "limiter_denied",
                "governor",
                "governor_denied",
                "recloser",
                "bare",
            ],
        };
        // One loop per path, the path chosen before it: a choice made in the loop was part
        // of every call's count (string compares, more for paths later in the chain).
        macro_rules! each_call {
            (|$i:ident| $call:expr) => {{
                let mut sum = 0u64;
                for $i in 0..n {
                    sum = sum.wrapping_add($call.unwrap_or(0));
                }
                sum
            }};
        }
        let mut sum = 0u64;
        for path in paths {
            sum = sum.wrapping_add(match *path {
                "recloser" => each_call!(|i| recloser
                    .call(async move { Ok::<_, ()>(black_box(i)) })
                    .await
                    .ok()),
                "bare" => each_call!(|i| async move { Ok::<_, ()>(black_box(i)) }.await.ok()),
                "limiter" => each_call!(|i| l.check().ok().map(|_| i)),
                "limiter_denied" => each_call!(|i| spent.check().ok().map(|_| i)),
                "governor" => each_call!(|i| gov.check().ok().map(|_| i)),
                "governor_denied" => each_call!(|i| gov_spent.check().ok().map(|_| i)),
                "policy" => each_call!(|i| policy
                    .execute(|| async move { Ok::<_, ()>(black_box(i)) })
                    .await
                    .ok()),
                "breaker_coarse" => each_call!(|i| coarse
                    .execute(|| async move { Ok::<_, ()>(black_box(i)) })
                    .await
                    .ok()),
                "breaker_untimed" => each_call!(|i| untimed
                    .execute(|| async move { Ok::<_, ()>(black_box(i)) })
                    .await
                    .ok()),
                _ => each_call!(|i| b
                    .execute(|| async move { Ok::<_, ()>(black_box(i)) })
                    .await
                    .ok()),
            });
        }
        black_box(sum);
        prt.shutdown().await;
    });
}
