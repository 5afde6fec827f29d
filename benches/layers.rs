//! The tower layers on a trivial `http::Request` service, each beside its peer, in one run:
//! tower-resilience's circuit breaker, rate limiter and bulkhead layers, tower_governor's
//! `GovernorLayer` (keyed by peer IP) and tower's `ConcurrencyLimitLayer`. Always-allow
//! quotas (10^9/s, burst 10^9), breakers closed, 100 permits. Every row builds the same
//! request (with the peer address in its extensions) and drives `ready` then `call`.
//!
//! `cargo bench -p palisade-benches --bench layers`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use palisade::layer::{BreakerLayer, BulkheadLayer, KeyedLimiterLayer, LimiterLayer, PeerIp};
use tower_layer::Layer;

use support::current_thread;
use support::http::{
    concurrency_limit, drive, governor, no_headers, resilience_breaker, resilience_bulkhead,
    resilience_limiter, Ok200, Primitives, Stack,
};

/// One criterion function driving clones of `svc`.
fn row(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    svc: impl Stack,
) {
    g.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|n| {
            let mut svc = svc.clone();
            async move { drive(&mut svc, n).await }
        })
    });
}

fn layers(c: &mut Criterion) {
    let rt = current_thread();
    let p = rt.block_on(Primitives::spawn());

    let mut g = c.benchmark_group("layer_breaker");
    row(&mut g, &rt, "bare", Ok200);
    row(
        &mut g,
        &rt,
        "palisade",
        BreakerLayer::new(&p.breaker).http().layer(Ok200),
    );
    row(&mut g, &rt, "tower_resilience", resilience_breaker());
    g.finish();

    let mut g = c.benchmark_group("layer_limiter");
    row(&mut g, &rt, "bare", Ok200);
    row(
        &mut g,
        &rt,
        "palisade",
        LimiterLayer::new(&p.limiter)
            .answer(no_headers())
            .layer(Ok200),
    );
    row(
        &mut g,
        &rt,
        "palisade_ratelimit_headers",
        LimiterLayer::new(&p.limiter).http().layer(Ok200),
    );
    row(&mut g, &rt, "tower_resilience", resilience_limiter());
    g.finish();

    let mut g = c.benchmark_group("layer_keyed_by_ip");
    row(&mut g, &rt, "bare", Ok200);
    row(
        &mut g,
        &rt,
        "palisade",
        KeyedLimiterLayer::new(&p.keyed, PeerIp)
            .answer(no_headers())
            .layer(Ok200),
    );
    row(&mut g, &rt, "tower_governor", governor());
    g.finish();

    let mut g = c.benchmark_group("layer_bulkhead");
    row(&mut g, &rt, "bare", Ok200);
    row(
        &mut g,
        &rt,
        "palisade",
        BulkheadLayer::new(&p.bulkhead).http().layer(Ok200),
    );
    row(&mut g, &rt, "tower_concurrency_limit", concurrency_limit());
    row(&mut g, &rt, "tower_resilience", resilience_bulkhead());
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = layers
}
criterion_main!(benches);
