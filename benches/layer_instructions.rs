//! Instruction counts of the tower layers beside their peers (see benches/instructions.rs
//! for the method): runs `N` requests through one stack on a trivial `http` service.
//!
//! ```sh
//! cargo bench -p palisade-benches --bench layer_instructions --no-run
//! for n in 100000 1100000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/layer_instructions-* bulkhead $n
//! done   # (second total - first total) / 1,000,000 = instructions per request
//! ```
//!
//! Paths: `bare`, `bulkhead`, `concurrency_limit` (tower), `keyed` (by peer IP),
//! `governor` (tower_governor), `limiter`, `limiter_headers`, `breaker`. Without arguments
//! (as `cargo bench` runs it) 1,000 requests of each.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use palisade::layer::{
    BreakerLayer, BulkheadLayer, Http, HttpResponder, KeyedLimiterLayer, LimiterLayer, PeerIp,
};
use palisade::{BreakerConfig, BulkheadConfig, LimiterConfig, Quota, Runtime, SlidingWindow};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_layer::Layer;

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

async fn drive<S>(mut svc: S, n: u64)
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let ready = svc.ready().await.expect("ready");
        black_box(ready.call(black_box(request())).await.is_ok());
    }
}

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
        let always = LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000));
        let limiter = prt.limiter("li", always.clone()).await.expect("limiter");
        let keyed = prt
            .keyed_limiter::<std::net::IpAddr>("li-ip", always)
            .await
            .expect("keyed");
        let bulkhead = prt
            .bulkhead(
                "li",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("valid"),
            )
            .await
            .expect("bulkhead");
        let breaker = prt
            .breaker(
                "li",
                BreakerConfig::builder()
                    .sliding_window(SlidingWindow::Count(100))
                    .build()
                    .expect("valid"),
            )
            .await
            .expect("breaker");
        let no_headers = Http(HttpResponder::new().rate_limit_headers(false));
        let all = [
            "bare",
            "bulkhead",
            "concurrency_limit",
            "keyed",
            "governor",
            "limiter",
            "limiter_headers",
            "breaker",
        ];
        let paths: Vec<&str> = match which.as_deref() {
            Some(one) => all.into_iter().filter(|p| *p == one).collect(),
            None => all.to_vec(),
        };
        for path in paths {
            match path {
                "bare" => drive(Ok200, n).await,
                "bulkhead" => drive(BulkheadLayer::new(&bulkhead).http().layer(Ok200), n).await,
                "concurrency_limit" => {
                    drive(
                        ServiceBuilder::new().concurrency_limit(100).service(Ok200),
                        n,
                    )
                    .await
                }
                "keyed" => {
                    let svc = KeyedLimiterLayer::new(&keyed, PeerIp)
                        .answer(no_headers)
                        .layer(Ok200);
                    drive(svc, n).await
                }
                "governor" => {
                    let config = tower_governor::governor::GovernorConfigBuilder::default()
                        .per_nanosecond(1)
                        .burst_size(1_000_000_000)
                        .finish()
                        .expect("tower_governor config");
                    drive(tower_governor::GovernorLayer::new(config).layer(Ok200), n).await
                }
                "limiter" => {
                    drive(
                        LimiterLayer::new(&limiter).answer(no_headers).layer(Ok200),
                        n,
                    )
                    .await
                }
                "limiter_headers" => {
                    drive(LimiterLayer::new(&limiter).http().layer(Ok200), n).await
                }
                _ => drive(BreakerLayer::new(&breaker).http().layer(Ok200), n).await,
            }
        }
        prt.shutdown().await;
    });
}
