//! The tower layers on a trivial `http::Request` service, each beside its peer, in one run:
//! tower-resilience's circuit breaker, rate limiter and bulkhead layers, tower_governor's
//! `GovernorLayer` (keyed by peer IP) and tower's `ConcurrencyLimitLayer`. Always-allow
//! quotas (10^9/s, burst 10^9), breakers closed, 100 permits. Every row builds the same
//! request (with the peer address in its extensions) and drives `ready` then `call`.
//!
//! `cargo bench -p palisade-benches --bench layers`

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use palisade::layer::{
    BreakerLayer, BulkheadLayer, Http, HttpResponder, KeyedLimiterLayer, LimiterLayer, PeerIp,
};
use palisade::{BreakerConfig, BulkheadConfig, LimiterConfig, Quota, Runtime, SlidingWindow};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_layer::Layer;

use support::current_thread;

/// The trivial service: an empty 200.
#[derive(Clone, Copy)]
struct Ok200;

impl Service<Request<Body>> for Ok200 {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        ready(Ok(Response::new(Body::empty())))
    }
}

fn request() -> Request<Body> {
    let mut req = Request::new(Body::empty());
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 4242))));
    req
}

/// Wall time for `iters` requests through `svc`.
async fn drive<S>(mut svc: S, iters: u64) -> Duration
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iters {
        let ready = svc.ready().await.expect("ready");
        black_box(ready.call(black_box(request())).await.is_ok());
    }
    start.elapsed()
}

fn no_headers() -> Http {
    Http(HttpResponder::new().rate_limit_headers(false))
}

fn layers(c: &mut Criterion) {
    let rt = current_thread();
    let (breaker, limiter, keyed, bulkhead) = rt.block_on(async {
        let palisade = Runtime::start().await.expect("runtime");
        let breaker = palisade
            .breaker(
                "bench",
                BreakerConfig::builder()
                    .sliding_window(SlidingWindow::Count(100))
                    .build()
                    .expect("breaker config"),
            )
            .await
            .expect("breaker");
        let always = LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000));
        let limiter = palisade
            .limiter("bench", always.clone())
            .await
            .expect("limiter");
        let keyed = palisade
            .keyed_limiter::<std::net::IpAddr>("bench-ip", always)
            .await
            .expect("keyed limiter");
        let bulkhead = palisade
            .bulkhead(
                "bench",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("bulkhead config"),
            )
            .await
            .expect("bulkhead");
        (breaker, limiter, keyed, bulkhead)
    });

    let mut g = c.benchmark_group("layer_breaker");
    g.bench_function("bare", |b| b.to_async(&rt).iter_custom(|n| drive(Ok200, n)));
    let svc = BreakerLayer::new(&breaker).http().layer(Ok200);
    g.bench_function("palisade", |b| {
        b.to_async(&rt).iter_custom(|n| drive(svc.clone(), n))
    });
    let peer = ServiceBuilder::new()
        .layer(
            tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_size(100)
                .build()
                .expect("tower-resilience config"),
        )
        .service(Ok200);
    g.bench_function("tower_resilience", |b| {
        b.to_async(&rt).iter_custom(|n| drive(peer.clone(), n))
    });
    g.finish();

    let mut g = c.benchmark_group("layer_limiter");
    g.bench_function("bare", |b| b.to_async(&rt).iter_custom(|n| drive(Ok200, n)));
    let svc = LimiterLayer::new(&limiter)
        .answer(no_headers())
        .layer(Ok200);
    g.bench_function("palisade", |b| {
        b.to_async(&rt).iter_custom(|n| drive(svc.clone(), n))
    });
    let svc = LimiterLayer::new(&limiter).http().layer(Ok200);
    g.bench_function("palisade_ratelimit_headers", |b| {
        b.to_async(&rt).iter_custom(|n| drive(svc.clone(), n))
    });
    let peer = ServiceBuilder::new()
        .layer(
            tower_resilience::ratelimiter::RateLimiterLayer::builder()
                .limit_for_period(1_000_000_000)
                .refresh_period(Duration::from_secs(1))
                .build()
                .expect("tower-resilience rate limiter"),
        )
        .service(Ok200);
    g.bench_function("tower_resilience", |b| {
        b.to_async(&rt).iter_custom(|n| drive(peer.clone(), n))
    });
    g.finish();

    let mut g = c.benchmark_group("layer_keyed_by_ip");
    g.bench_function("bare", |b| b.to_async(&rt).iter_custom(|n| drive(Ok200, n)));
    let svc = KeyedLimiterLayer::new(&keyed, PeerIp)
        .answer(no_headers())
        .layer(Ok200);
    g.bench_function("palisade", |b| {
        b.to_async(&rt).iter_custom(|n| drive(svc.clone(), n))
    });
    let governor = tower_governor::governor::GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000_000)
        .finish()
        .expect("tower_governor config");
    let peer = tower_governor::GovernorLayer::new(governor).layer(Ok200);
    g.bench_function("tower_governor", |b| {
        b.to_async(&rt).iter_custom(|n| drive(peer.clone(), n))
    });
    g.finish();

    let mut g = c.benchmark_group("layer_bulkhead");
    g.bench_function("bare", |b| b.to_async(&rt).iter_custom(|n| drive(Ok200, n)));
    let svc = BulkheadLayer::new(&bulkhead).http().layer(Ok200);
    g.bench_function("palisade", |b| {
        b.to_async(&rt).iter_custom(|n| drive(svc.clone(), n))
    });
    let peer = ServiceBuilder::new().concurrency_limit(100).service(Ok200);
    g.bench_function("tower_concurrency_limit", |b| {
        b.to_async(&rt).iter_custom(|n| drive(peer.clone(), n))
    });
    let peer = ServiceBuilder::new()
        .layer(
            tower_resilience::bulkhead::BulkheadLayer::builder()
                .max_concurrent_calls(100)
                .build()
                .expect("tower-resilience bulkhead"),
        )
        .service(Ok200);
    g.bench_function("tower_resilience", |b| {
        b.to_async(&rt).iter_custom(|n| drive(peer.clone(), n))
    });
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
