//! Rate limiter checks against governor in the same run: direct GCRA check (admitted,
//! reading `remaining`, denied), keyed check over 10^4 keys, 2 threads on one limiter, the
//! same with a Prometheus recorder installed; and memory per key at 10^6 keys (RSS growth).
//!
//! `cargo bench -p palisade-benches --bench limiter`

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use palisade::{KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

use tower::ServiceBuilder;

use support::{current_thread, serve};

#[inline(never)]
async fn call(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

const RATE: u32 = 100_000_000;
const BURST: u32 = 1_000_000;

fn governor_quota() -> governor::Quota {
    let nz = |n| NonZeroU32::new(n).expect("non-zero");
    governor::Quota::per_second(nz(RATE)).allow_burst(nz(BURST))
}

fn quota() -> Quota {
    Quota::per_second(RATE).burst(BURST)
}

/// Resident memory in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn limiters(c: &mut Criterion) {
    let rt = current_thread();
    let prt = rt.block_on(Runtime::start()).expect("palisade runtime");
    let direct = rt
        .block_on(prt.limiter("bench-direct", LimiterConfig::gcra(quota())))
        .expect("limiter");
    let keyed = rt
        .block_on(prt.keyed_limiter::<u64>(
            "bench-keyed",
            KeyedLimiterConfig::new(LimiterConfig::gcra(quota())).max_keys(2_000_000),
        ))
        .expect("keyed");
    let gov_direct = governor::RateLimiter::direct(governor_quota());
    let gov_keyed = governor::RateLimiter::<u64, _, _>::keyed(governor_quota());

    // With 10^8/s the quota outlasts the loop (a check every ~20 ns spends 5·10^7/s): this
    // is the admitted path with a big burst.
    let mut g = c.benchmark_group("limiter_direct");
    g.bench_function("palisade", |b| b.iter(|| black_box(direct.check().is_ok())));
    g.bench_function("governor", |b| {
        b.iter(|| black_box(gov_direct.check().is_ok()))
    });
    g.finish();

    let nz = |n| NonZeroU32::new(n).expect("non-zero");
    let fast = rt
        .block_on(prt.limiter(
            "bench-allowed",
            LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000)),
        ))
        .expect("limiter");
    let gov_fast = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000)),
    );
    let mut g = c.benchmark_group("limiter_direct_allowed");
    g.bench_function("palisade", |b| b.iter(|| black_box(fast.check().is_ok())));
    g.bench_function("governor", |b| {
        b.iter(|| black_box(gov_fast.check().is_ok()))
    });
    g.finish();

    // The answer a caller reads (`remaining`): governor computes it only with its
    // state-information middleware.
    let gov_info = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000)),
    )
    .with_middleware::<governor::middleware::StateInformationMiddleware>();
    let mut g = c.benchmark_group("limiter_direct_allowed_remaining");
    g.bench_function("palisade", |b| {
        b.iter(|| black_box(fast.check().map(|a| a.remaining).unwrap_or(0)))
    });
    g.bench_function("governor", |b| {
        b.iter(|| {
            black_box(
                gov_info
                    .check()
                    .map(|s| s.remaining_burst_capacity())
                    .unwrap_or(0),
            )
        })
    });
    g.finish();

    // The denied path: one unit an hour, spent before measuring.
    let spent = rt
        .block_on(prt.limiter("bench-denied", LimiterConfig::gcra(Quota::per_hour(1))))
        .expect("limiter");
    let gov_spent = governor::RateLimiter::direct(governor::Quota::per_hour(nz(1)));
    assert!(spent.check().is_ok() && spent.check().is_err());
    assert!(gov_spent.check().is_ok() && gov_spent.check().is_err());
    let mut g = c.benchmark_group("limiter_direct_denied");
    g.bench_function("palisade", |b| b.iter(|| black_box(spent.check().is_ok())));
    g.bench_function("governor", |b| {
        b.iter(|| black_box(gov_spent.check().is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("limiter_keyed_10k_keys");
    let mut i = 0u64;
    g.bench_function("palisade", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(keyed.check(&i).is_ok())
        })
    });
    let mut i = 0u64;
    g.bench_function("governor", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(gov_keyed.check_key(&i).is_ok())
        })
    });
    g.finish();

    // How a keyed check's cost grows with the number of keys in play.
    let mut g = c.benchmark_group("limiter_keyed_by_key_count");
    for keys in [100u64, 10_000, 1_000_000] {
        let ours = rt
            .block_on(prt.keyed_limiter::<u64>(
                &format!("bench-keys-{keys}"),
                KeyedLimiterConfig::new(LimiterConfig::gcra(quota())).max_keys(2_000_000),
            ))
            .expect("keyed");
        let theirs = governor::RateLimiter::<u64, _, _>::keyed(governor_quota());
        for k in 0..keys {
            let _ = ours.check(&k);
            let _ = theirs.check_key(&k);
        }
        let mut i = 0u64;
        g.bench_function(format!("palisade/{keys}"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys;
                black_box(ours.check(&i).is_ok())
            })
        });
        let mut i = 0u64;
        g.bench_function(format!("governor/{keys}"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys;
                black_box(theirs.check_key(&i).is_ok())
            })
        });
    }
    g.finish();

    // execute around a call, against tower-resilience's rate limiter layer.
    let mut g = c.benchmark_group("limiter_execute");
    g.bench_function("palisade", |b| {
        b.to_async(&rt)
            .iter(|| direct.execute(|| call(black_box(1))))
    });
    let resilience = ServiceBuilder::new()
        .layer(
            tower_resilience::ratelimiter::RateLimiterLayer::builder()
                .limit_for_period(1_000_000_000)
                .refresh_period(Duration::from_secs(10))
                .build()
                .expect("tower-resilience rate limiter"),
        )
        .service(tower::service_fn(call));
    g.bench_function("tower_resilience_ratelimiter", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(resilience.clone(), iters))
    });
    g.finish();

    let mut g = c.benchmark_group("limiter_direct_2_threads");
    g.bench_function("palisade", |b| {
        b.iter_custom(|iters| timed_threads(iters, || black_box(direct.check().is_ok())))
    });
    g.bench_function("governor", |b| {
        b.iter_custom(|iters| timed_threads(iters, || black_box(gov_direct.check().is_ok())))
    });
    g.finish();

    // Memory per key: RSS growth over 10^6 fresh keys (measured once, printed).
    let before = rss();
    for k in 1_000_000..2_000_000u64 {
        let _ = keyed.check(&k);
    }
    let palisade_bytes = rss().saturating_sub(before) as f64 / 1e6;
    let before = rss();
    for k in 1_000_000..2_000_000u64 {
        let _ = gov_keyed.check_key(&k);
    }
    let governor_bytes = rss().saturating_sub(before) as f64 / 1e6;
    println!("memory per key (RSS growth over 10^6 u64 keys): palisade {palisade_bytes:.0} B, governor {governor_bytes:.0} B");
    rt.block_on(prt.shutdown());
}

/// Wall time for `iters` checks split over 2 threads (plain threads: checks are sync),
/// from the moment both are ready (a barrier) to the last one's end.
fn timed_threads(iters: u64, check: impl Fn() -> bool + Sync) -> Duration {
    let ready = std::sync::Barrier::new(3);
    let start = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                ready.wait();
                for _ in 0..iters / 2 {
                    check();
                }
            });
        }
        ready.wait();
        std::time::Instant::now()
    });
    start.elapsed()
}

/// The same checks with a Prometheus recorder installed, as most services run: decision
/// counts then reach a real counter. Runs last: the recorder stays installed for the rest
/// of the process, and only primitives spawned after it record.
fn with_prometheus(c: &mut Criterion) {
    let rt = current_thread();
    let _handle = rt
        .block_on(async { palisade::telemetry::prometheus::install_recorder() })
        .expect("recorder");
    let prt = rt.block_on(Runtime::start()).expect("palisade runtime");
    let direct = rt
        .block_on(prt.limiter("bench-recorded", LimiterConfig::gcra(quota())))
        .expect("limiter");
    let spent = rt
        .block_on(prt.limiter(
            "bench-recorded-denied",
            LimiterConfig::gcra(Quota::per_hour(1)),
        ))
        .expect("limiter");
    assert!(spent.check().is_ok() && spent.check().is_err());
    let nz = |n| NonZeroU32::new(n).expect("non-zero");
    let gov_direct = governor::RateLimiter::direct(governor_quota());
    let gov_spent = governor::RateLimiter::direct(governor::Quota::per_hour(nz(1)));
    assert!(gov_spent.check().is_ok() && gov_spent.check().is_err());

    let mut g = c.benchmark_group("limiter_with_prometheus");
    g.bench_function("palisade_admitted", |b| {
        b.iter(|| black_box(direct.check().is_ok()))
    });
    g.bench_function("governor_admitted", |b| {
        b.iter(|| black_box(gov_direct.check().is_ok()))
    });
    g.bench_function("palisade_denied", |b| {
        b.iter(|| black_box(spent.check().is_ok()))
    });
    g.bench_function("governor_denied", |b| {
        b.iter(|| black_box(gov_spent.check().is_ok()))
    });
    g.bench_function("palisade_2_threads", |b| {
        b.iter_custom(|iters| timed_threads(iters, || black_box(direct.check().is_ok())))
    });
    g.bench_function("governor_2_threads", |b| {
        b.iter_custom(|iters| timed_threads(iters, || black_box(gov_direct.check().is_ok())))
    });
    g.finish();
    rt.block_on(prt.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = limiters, with_prometheus
}
criterion_main!(benches);
