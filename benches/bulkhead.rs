//! Uncontended bulkhead `execute` against tokio's `Semaphore` (`try_acquire` around the call)
//! and tower's `ConcurrencyLimit`, in one run; and 2 threads on one bulkhead.
//!
//! `cargo bench -p palisade-benches --bench bulkhead`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use palisade::{BulkheadConfig, Runtime};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

use support::{current_thread, serve, two_threads};

#[inline(never)]
async fn call(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

async fn with_semaphore(sem: &Semaphore) -> Result<u64, std::io::Error> {
    let _permit = sem.try_acquire().expect("uncontended");
    call(black_box(1)).await
}

/// A bulkhead of 64 permits on a runtime of its own.
async fn spawn_bulkhead(name: &str) -> palisade::Bulkhead {
    let prt = Runtime::start().await.expect("palisade runtime");
    prt.bulkhead(
        name,
        BulkheadConfig::builder()
            .max_concurrent(64)
            .build()
            .expect("config"),
    )
    .await
    .expect("bulkhead")
}

fn uncontended(c: &mut Criterion) {
    let rt = current_thread();
    let bulkhead = rt.block_on(spawn_bulkhead("bench"));
    let sem = Arc::new(Semaphore::new(64));
    let limited = ServiceBuilder::new()
        .concurrency_limit(64)
        .service(tower::service_fn(call));
    let resilience = ServiceBuilder::new()
        .layer(
            tower_resilience::bulkhead::BulkheadLayer::builder()
                .max_concurrent_calls(64)
                .build()
                .expect("tower-resilience bulkhead"),
        )
        .service(tower::service_fn(call));

    let mut g = c.benchmark_group("bulkhead_uncontended");
    g.bench_function("bare_call", |b| b.to_async(&rt).iter(|| call(black_box(1))));
    g.bench_function("tokio_semaphore", |b| {
        b.to_async(&rt).iter(|| with_semaphore(&sem))
    });
    g.bench_function("palisade", |b| {
        b.to_async(&rt)
            .iter(|| bulkhead.execute(|| call(black_box(1))))
    });
    g.bench_function("tower_concurrency_limit", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(limited.clone(), iters))
    });
    g.bench_function("tower_resilience_bulkhead", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| serve(resilience.clone(), iters))
    });
    g.finish();

    let mut g = c.benchmark_group("bulkhead_2_threads");
    g.bench_function("palisade", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let bulkhead = bulkhead.clone();
                move || {
                    let bulkhead = bulkhead.clone();
                    async move { bulkhead.execute(|| call(1)).await.ok() }
                }
            })
        })
    });
    g.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let sem = Arc::clone(&sem);
                move || {
                    let sem = sem.clone();
                    async move { with_semaphore(&sem).await.ok() }
                }
            })
        })
    });
    g.finish();
}

/// `execute` with a Prometheus recorder installed: the in-flight gauge then records for
/// real. Runs last: the recorder stays installed for the rest of the process.
fn with_prometheus(c: &mut Criterion) {
    let rt = current_thread();
    let _handle = rt
        .block_on(async { palisade::telemetry::prometheus::install_recorder() })
        .expect("recorder");
    let bulkhead = rt.block_on(spawn_bulkhead("bench-recorded"));
    let sem = Arc::new(Semaphore::new(64));
    let mut g = c.benchmark_group("bulkhead_with_prometheus");
    g.bench_function("palisade", |b| {
        b.to_async(&rt)
            .iter(|| bulkhead.execute(|| call(black_box(1))))
    });
    g.bench_function("tokio_semaphore", |b| {
        b.to_async(&rt).iter(|| with_semaphore(&sem))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = uncontended, with_prometheus
}
criterion_main!(benches);
