//! Circuit breaker `execute` in the closed state against a bare call, failsafe-rs and
//! tower-resilience's circuit breaker, in one run; and 2 threads on one breaker.
//!
//! `cargo bench -p palisade-benches --bench breaker`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::futures::CircuitBreaker as _;
use palisade::{BreakerConfig, Runtime, SlidingWindow};
use tower::ServiceBuilder;

use support::{current_thread, serve, two_threads};

#[inline(never)]
async fn call(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

/// A breaker with a count window of 100 on a runtime of its own.
async fn spawn_breaker(name: &str) -> palisade::Breaker {
    let prt = Runtime::start().await.expect("palisade runtime");
    prt.breaker(
        name,
        BreakerConfig::builder()
            .sliding_window(SlidingWindow::Count(100))
            .build()
            .expect("config"),
    )
    .await
    .expect("breaker")
}

/// Wall time for `iters` calls through `breaker` from 2 threads.
fn breaker_2_threads(breaker: &palisade::Breaker, iters: u64) -> Duration {
    two_threads(iters, || {
        let breaker = breaker.clone();
        move || {
            let breaker = breaker.clone();
            async move { breaker.execute(|| call(1)).await.ok() }
        }
    })
}

fn closed_state(c: &mut Criterion) {
    let rt = current_thread();
    let breaker = rt.block_on(spawn_breaker("bench"));
    let failsafe = failsafe::Config::new().build();
    let tower_cb = ServiceBuilder::new()
        .layer(
            tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_size(100)
                .build()
                .expect("tower-resilience config"),
        )
        .service(tower::service_fn(call));

    let mut g = c.benchmark_group("breaker_closed");
    g.bench_function("bare_call", |b| b.to_async(&rt).iter(|| call(black_box(1))));
    g.bench_function("palisade", |b| {
        b.to_async(&rt)
            .iter(|| breaker.execute(|| call(black_box(1))))
    });
    g.bench_function("failsafe", |b| {
        b.to_async(&rt).iter(|| failsafe.call(call(black_box(1))))
    });
    g.bench_function("tower_resilience", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(tower_cb.clone(), iters))
    });
    g.finish();

    // 2 threads on one breaker: wall time per call with both threads calling.
    let mut g = c.benchmark_group("breaker_closed_2_threads");
    g.bench_function("palisade", |b| {
        b.iter_custom(|iters| breaker_2_threads(&breaker, iters))
    });
    g.bench_function("failsafe", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let failsafe = failsafe.clone();
                move || {
                    let failsafe = failsafe.clone();
                    async move { failsafe.call(call(1)).await.ok() }
                }
            })
        })
    });
    g.finish();
}

/// The closed state with a Prometheus recorder installed, as most services run: the outcome
/// counter and the duration histogram then record for real. Runs last: the recorder stays
/// installed for the rest of the process, and only primitives spawned after it record.
fn with_prometheus(c: &mut Criterion) {
    let rt = current_thread();
    let _handle = rt
        .block_on(async { palisade::telemetry::prometheus::install_recorder() })
        .expect("recorder");
    let breaker = rt.block_on(spawn_breaker("bench-recorded"));
    let mut g = c.benchmark_group("breaker_with_prometheus");
    g.bench_function("bare_call", |b| b.to_async(&rt).iter(|| call(black_box(1))));
    g.bench_function("palisade", |b| {
        b.to_async(&rt)
            .iter(|| breaker.execute(|| call(black_box(1))))
    });
    g.bench_function("palisade_2_threads", |b| {
        b.iter_custom(|iters| breaker_2_threads(&breaker, iters))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = closed_state, with_prometheus
}
criterion_main!(benches);
