//! `Policy::execute` on the success path with every layer, against a bare call, a tower
//! stack (timeout + tower-resilience circuit breaker + concurrency limit), and backon's
//! retry; and palisade's `Retry` alone.
//!
//! `cargo bench -p palisade-benches --bench policy`

use std::hint::black_box;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use criterion::{criterion_group, criterion_main, Criterion};
use palisade::{
    Backoff, BreakerConfig, BulkheadConfig, LimiterConfig, Policy, Quota, Retry, Runtime,
};
use tower::ServiceBuilder;

use support::{current_thread, serve, two_threads};

#[inline(never)]
async fn call(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

/// tower-resilience's retry wants a `Clone` error.
#[derive(Clone, Debug)]
struct BenchError;

#[inline(never)]
async fn cloneable_call(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

fn policies(c: &mut Criterion) {
    let rt = current_thread();
    let (full, no_timers, retry) = rt.block_on(async {
        let prt = Runtime::start().await.expect("runtime");
        let breaker = prt
            .breaker("bench-policy", BreakerConfig::default())
            .await
            .expect("breaker");
        let limiter = prt
            .limiter(
                "bench-policy",
                LimiterConfig::gcra(Quota::per_second(100_000_000).burst(1_000_000)),
            )
            .await
            .expect("limiter");
        let bulkhead = prt
            .bulkhead(
                "bench-policy",
                BulkheadConfig::builder()
                    .max_concurrent(64)
                    .build()
                    .expect("config"),
            )
            .await
            .expect("bulkhead");
        let retry = Retry::builder()
            .max_attempts(3)
            .backoff(Backoff::exponential(Duration::from_millis(10)))
            .build()
            .expect("retry");
        let no_timers = Policy::new()
            .retry(retry.clone())
            .breaker(&breaker)
            .limiter(&limiter)
            .bulkhead(&bulkhead);
        let full = no_timers
            .clone()
            .deadline(Duration::from_secs(10))
            .timeout(Duration::from_secs(1));
        (full, no_timers, retry)
    });
    let tower_stack = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .layer(
            tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_size(100)
                .build()
                .expect("tower-resilience config"),
        )
        .concurrency_limit(64)
        .service(tower::service_fn(call));

    let mut g = c.benchmark_group("policy_success");
    g.bench_function("bare_call", |b| b.to_async(&rt).iter(|| call(black_box(1))));
    g.bench_function("palisade_all_layers", |b| {
        b.to_async(&rt).iter(|| full.execute(|| call(black_box(1))))
    });
    g.bench_function("palisade_no_deadline_no_timeout", |b| {
        b.to_async(&rt)
            .iter(|| no_timers.execute(|| call(black_box(1))))
    });
    g.bench_function("tower_timeout_breaker_limit", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(tower_stack.clone(), iters))
    });
    g.finish();

    let mut g = c.benchmark_group("retry_success");
    g.bench_function("palisade_retry", |b| {
        b.to_async(&rt)
            .iter(|| retry.execute(|| call(black_box(1))))
    });
    let resilience_retry = ServiceBuilder::new()
        .layer(
            tower_resilience::retry::RetryLayer::<u64, u64, BenchError>::builder()
                .max_attempts(3)
                .exponential_backoff(Duration::from_millis(10))
                .build(),
        )
        .service(tower::service_fn(cloneable_call));
    g.bench_function("tower_resilience_retry", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(resilience_retry.clone(), iters))
    });
    g.bench_function("backon_retry", |b| {
        b.to_async(&rt)
            .iter(|| (|| call(black_box(1))).retry(ExponentialBuilder::default()))
    });
    g.finish();
}

/// The policy and the retry from 2 threads at once (wall time per call).
fn two_thread_policies(c: &mut Criterion) {
    let rt = current_thread();
    let (full, retry) = rt.block_on(async {
        let prt = Runtime::start().await.expect("runtime");
        let breaker = prt
            .breaker("bench-policy-2t", BreakerConfig::default())
            .await
            .expect("breaker");
        let limiter = prt
            .limiter(
                "bench-policy-2t",
                LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000)),
            )
            .await
            .expect("limiter");
        let bulkhead = prt
            .bulkhead(
                "bench-policy-2t",
                BulkheadConfig::builder()
                    .max_concurrent(64)
                    .build()
                    .expect("config"),
            )
            .await
            .expect("bulkhead");
        let retry = Retry::builder().max_attempts(3).build().expect("retry");
        let full = Policy::new()
            .deadline(Duration::from_secs(10))
            .retry(retry.clone())
            .breaker(&breaker)
            .limiter(&limiter)
            .bulkhead(&bulkhead)
            .timeout(Duration::from_secs(1));
        (full, retry)
    });
    let mut g = c.benchmark_group("policy_2_threads");
    g.bench_function("bare_call", |b| {
        b.iter_custom(|iters| two_threads(iters, || || call(1)))
    });
    g.bench_function("palisade_all_layers", |b| {
        b.iter_custom(|iters| {
            let p = &full;
            two_threads(iters, || move || p.execute(|| call(1)))
        })
    });
    g.bench_function("palisade_retry", |b| {
        b.iter_custom(|iters| {
            let r = &retry;
            two_threads(iters, || move || r.execute(|| call(1)))
        })
    });
    g.bench_function("backon_retry", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                || (|| call(1)).retry(ExponentialBuilder::default())
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = policies, two_thread_policies
}
criterion_main!(benches);
