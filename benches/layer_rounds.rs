//! The tower layers against their peers in interleaved rounds (the method of
//! benches/limiter_rounds.rs): each round drives `REQUESTS` requests through the bare
//! service, then palisade's stack, then the peer's, on one thread, so all three see the same
//! phase of the machine. Per case: the median overhead over the bare service of each side
//! (ns per request), the ratio of the medians, and the share of rounds palisade won.
//!
//! `cargo bench -p palisade-benches --bench layer_rounds` (optionally a case-name filter)

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use palisade::layer::{
    BreakerLayer, BulkheadLayer, Http, HttpResponder, KeyedLimiterLayer, LimiterLayer, PeerIp,
};
use palisade::{BreakerConfig, BulkheadConfig, LimiterConfig, Quota, Runtime, SlidingWindow};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_layer::Layer;

const ROUNDS: usize = 21;
const REQUESTS: u64 = 200_000;

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

/// Nanoseconds per request over one round.
async fn round<S>(svc: &mut S) -> f64
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let ready = svc.ready().await.expect("ready");
        black_box(ready.call(black_box(request())).await.is_ok());
    }
    start.elapsed().as_nanos() as f64 / REQUESTS as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn case<A, B>(name: &str, filter: &str, mut ours: A, mut theirs: B)
where
    A: Service<Request<Body>>,
    A::Error: std::fmt::Debug,
    B: Service<Request<Body>>,
    B::Error: std::fmt::Debug,
{
    if !name.contains(filter) {
        return;
    }
    let mut bare = Ok200;
    let (mut a, mut b, mut wins) = (Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        let base = round(&mut bare).await;
        let x = round(&mut ours).await - base;
        let y = round(&mut theirs).await - base;
        if x < y {
            wins += 1;
        }
        a.push(x);
        b.push(y);
    }
    let (x, y) = (median(&mut a), median(&mut b));
    println!(
        "{name:<40} palisade {x:>7.1} ns  peer {y:>7.1} ns  ratio {:.2}  won {wins}/{ROUNDS}",
        x / y
    );
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let prt = Runtime::start().await.expect("runtime");
        let always = LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000));
        let limiter = prt
            .limiter("rounds", always.clone())
            .await
            .expect("limiter");
        let keyed = prt
            .keyed_limiter::<std::net::IpAddr>("rounds-ip", always)
            .await
            .expect("keyed");
        let bulkhead = prt
            .bulkhead(
                "rounds",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("valid"),
            )
            .await
            .expect("bulkhead");
        let breaker = prt
            .breaker(
                "rounds",
                BreakerConfig::builder()
                    .sliding_window(SlidingWindow::Count(100))
                    .build()
                    .expect("valid"),
            )
            .await
            .expect("breaker");
        let no_headers = Http(HttpResponder::new().rate_limit_headers(false));
        let f = filter.as_str();

        case(
            "bulkhead vs tower ConcurrencyLimit",
            f,
            BulkheadLayer::new(&bulkhead).http().layer(Ok200),
            ServiceBuilder::new().concurrency_limit(100).service(Ok200),
        )
        .await;
        case(
            "bulkhead (typed answer) vs tower ConcurrencyLimit",
            f,
            BulkheadLayer::new(&bulkhead).layer(Ok200),
            ServiceBuilder::new().concurrency_limit(100).service(Ok200),
        )
        .await;
        case(
            "bulkhead (backpressure) vs tower ConcurrencyLimit",
            f,
            BulkheadLayer::new(&bulkhead)
                .http()
                .backpressure(true)
                .layer(Ok200),
            ServiceBuilder::new().concurrency_limit(100).service(Ok200),
        )
        .await;
        if "permit".contains(f) || f.is_empty() {
            // the owned permits alone: take and give back, no service around them
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(bulkhead.try_acquire_owned().is_ok());
                }
                a.push(t.elapsed().as_nanos() as f64 / REQUESTS as f64);
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(std::sync::Arc::clone(&sem).try_acquire_owned().is_ok());
                }
                b.push(t.elapsed().as_nanos() as f64 / REQUESTS as f64);
            }
            let (x, y) = (median(&mut a), median(&mut b));
            println!(
                "{:<40} palisade {x:>7.1} ns  peer {y:>7.1} ns  ratio {:.2}",
                "owned permit vs tokio OwnedSemaphorePermit",
                x / y
            );
        }
        let governor = tower_governor::governor::GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(1_000_000_000)
            .finish()
            .expect("tower_governor config");
        case(
            "keyed by peer IP vs tower_governor",
            f,
            KeyedLimiterLayer::new(&keyed, PeerIp)
                .answer(no_headers)
                .layer(Ok200),
            tower_governor::GovernorLayer::new(governor).layer(Ok200),
        )
        .await;
        case(
            "limiter vs tower-resilience",
            f,
            LimiterLayer::new(&limiter).answer(no_headers).layer(Ok200),
            ServiceBuilder::new()
                .layer(
                    tower_resilience::ratelimiter::RateLimiterLayer::builder()
                        .limit_for_period(1_000_000_000)
                        .refresh_period(std::time::Duration::from_secs(1))
                        .build()
                        .expect("tower-resilience rate limiter"),
                )
                .service(Ok200),
        )
        .await;
        case(
            "breaker vs tower-resilience",
            f,
            BreakerLayer::new(&breaker).http().layer(Ok200),
            ServiceBuilder::new()
                .layer(
                    tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                        .failure_rate_threshold(0.5)
                        .sliding_window_size(100)
                        .build()
                        .expect("tower-resilience config"),
                )
                .service(Ok200),
        )
        .await;
        prt.shutdown().await;
    });
}
