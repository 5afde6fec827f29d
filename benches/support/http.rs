//! What the layer benches share: the trivial `http` service, the request every row builds,
//! the loop that drives a stack, the primitives behind the stacks, and their peers' setup.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use palisade::layer::{Http, HttpResponder};
use palisade::{
    Breaker, BreakerConfig, Bulkhead, BulkheadConfig, KeyedLimiter, Limiter, LimiterConfig, Quota,
    Runtime, SlidingWindow,
};
use tower::{Service, ServiceExt};

/// The trivial service: an empty 200.
#[derive(Clone, Copy, Debug)]
pub struct Ok200;

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

/// The request every row builds: the peer address in its extensions, as axum's
/// `ConnectInfo` puts it there.
pub fn request() -> Request<Body> {
    let mut req = Request::new(Body::empty());
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 4242))));
    req
}

/// Wall time for `n` requests through `svc` (`ready`, then `call`).
pub async fn drive<S>(svc: &mut S, n: u64) -> Duration
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..n {
        let ready = svc.ready().await.expect("ready");
        black_box(ready.call(black_box(request())).await.is_ok());
    }
    start.elapsed()
}

/// The HTTP answer without the `RateLimit` fields (tower-resilience and tower_governor
/// write none by default).
pub fn no_headers() -> Http {
    Http(HttpResponder::new().rate_limit_headers(false))
}

/// The primitives behind the stacks: a closed breaker (count window of 100), always-allow
/// quotas (10^9/s, burst 10^9), 100 bulkhead permits.
#[derive(Debug)]
pub struct Primitives {
    pub runtime: Runtime,
    pub breaker: Breaker,
    pub limiter: Limiter,
    pub keyed: KeyedLimiter<IpAddr>,
    pub bulkhead: Bulkhead,
}

impl Primitives {
    pub async fn spawn() -> Self {
        let runtime = Runtime::start().await.expect("runtime");
        let breaker = runtime
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
        let limiter = runtime
            .limiter("bench", always.clone())
            .await
            .expect("limiter");
        let keyed = runtime
            .keyed_limiter::<IpAddr>("bench-ip", always)
            .await
            .expect("keyed limiter");
        let bulkhead = runtime
            .bulkhead(
                "bench",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("bulkhead config"),
            )
            .await
            .expect("bulkhead");
        Self {
            runtime,
            breaker,
            limiter,
            keyed,
            bulkhead,
        }
    }
}

/// A peer's stack over [`Ok200`], as the rows drive it.
pub trait Stack: Service<Request<Body>, Error: std::fmt::Debug> + Clone {}

impl<S: Service<Request<Body>, Error: std::fmt::Debug> + Clone> Stack for S {}

/// tower_governor's layer keyed by peer IP, always allowing.
pub fn governor() -> impl Stack {
    use tower_layer::Layer;
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000_000)
        .finish()
        .expect("tower_governor config");
    tower_governor::GovernorLayer::new(config).layer(Ok200)
}

/// tower-resilience's circuit breaker, closed (window of 100).
pub fn resilience_breaker() -> impl Stack {
    tower::ServiceBuilder::new()
        .layer(
            tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_size(100)
                .build()
                .expect("tower-resilience config"),
        )
        .service(Ok200)
}

/// tower-resilience's rate limiter, always allowing.
pub fn resilience_limiter() -> impl Stack {
    tower::ServiceBuilder::new()
        .layer(
            tower_resilience::ratelimiter::RateLimiterLayer::builder()
                .limit_for_period(1_000_000_000)
                .refresh_period(Duration::from_secs(1))
                .build()
                .expect("tower-resilience rate limiter"),
        )
        .service(Ok200)
}

/// tower-resilience's bulkhead, 100 permits.
pub fn resilience_bulkhead() -> impl Stack {
    tower::ServiceBuilder::new()
        .layer(
            tower_resilience::bulkhead::BulkheadLayer::builder()
                .max_concurrent_calls(100)
                .build()
                .expect("tower-resilience bulkhead"),
        )
        .service(Ok200)
}

/// tower's concurrency limit, 100 permits.
pub fn concurrency_limit() -> impl Stack {
    tower::ServiceBuilder::new()
        .concurrency_limit(100)
        .service(Ok200)
}

/// tower's concurrency limit under its load shedder: a full limit answers `Overloaded` at
/// once instead of holding `poll_ready` back (tower's way to reject rather than wait, as
/// palisade's bulkhead layer does by default).
pub fn shed_concurrency_limit() -> impl Stack {
    tower::ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(100)
        .service(Ok200)
}
