//! Tower layers for every primitive (feature `tower`): put palisade in front of an axum,
//! hyper or tonic service, or any `tower::Service`.
//!
//! | layer | what it does |
//! |---|---|
//! | [`BreakerLayer`] | a circuit breaker; HTTP responses judged by status ([`HttpClassifier`]) |
//! | [`LimiterLayer`] | one shared quota, a cost per request |
//! | [`KeyedLimiterLayer`] | a quota per key ([`KeyExtractor`]: API key, peer IP, closure...) |
//! | [`BulkheadLayer`] | a concurrency limit, permit held until the response resolves |
//! | [`DeadlineLayer`] | the caller's deadline header opens the handler's deadline scope |
//! | [`PropagateDeadlineLayer`] | clients: outgoing requests carry the task's deadline (`x-deadline-remaining`, `grpc-timeout`) |
//! | [`PolicyLayer`] | a whole [`Policy`](crate::Policy): deadline, retry, breaker, limiter, bulkhead, timeout (replayable requests) |
//!
//! **Every decision is made in `call`.** `poll_ready` is the inner service's (the bulkhead
//! in [backpressure](BulkheadLayer::backpressure) mode waits for its permit there), so a
//! rejected request costs the inner service nothing and never reaches it.
//!
//! **Answers.** By default a layer's service returns [`CallError<E>`](crate::CallError):
//! the inner error as `Inner(E)`, or the rejection ([`Typed`]). With `.http()` rejections
//! become responses ([`Http`] with [`HttpResponder`]): 429 + `Retry-After` when rate limited,
//! 503 when a breaker is open or a bulkhead full, 504 when the deadline is spent, and the
//! `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10 on every
//! response a limiter decided; `.answer(Http(RespondWith(|rejected| ...)))` builds your own.
//! Under a tonic server, `.answer(Http(GrpcResponder))` answers with gRPC statuses
//! (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`).
//!
//! Services are `Clone` and share the primitive's state; their futures are `Send` when the
//! inner service's are.
//!
//! ```
//! use std::convert::Infallible;
//! use palisade::layer::{BreakerLayer, LimiterLayer};
//! use palisade::{BreakerConfig, LimiterConfig, Quota};
//! use tower_layer::Layer;
//! use tower_service::Service;
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = palisade::Runtime::start().await?;
//! let api = rt.limiter("doc-layer", LimiterConfig::gcra(Quota::per_hour(1))).await?;
//! let db = rt.breaker("doc-layer-db", BreakerConfig::default()).await?;
//!
//! let handler = tower_service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, Infallible>(http::Response::new(String::from("hello")))
//! });
//! let mut svc = LimiterLayer::new(&api).http().layer(BreakerLayer::new(&db).http().layer(handler));
//!
//! let first = svc.call(http::Request::new(String::new())).await?;
//! assert_eq!(first.status(), 200);
//! assert_eq!(first.headers()["ratelimit"], "\"doc-layer\";r=0;t=3600");
//! let second = svc.call(http::Request::new(String::new())).await?;
//! assert_eq!(second.status(), 429);
//! assert_eq!(second.headers()["retry-after"], "3600");
//! # Ok(()) }
//! # #[derive(Clone)] struct ServiceFn<F>(F);
//! # fn tower_service_fn<F>(f: F) -> ServiceFn<F> { ServiceFn(f) }
//! # impl<F: FnMut(R) -> Fut, R, Fut: std::future::Future<Output = Result<T, E>>, T, E> Service<R> for ServiceFn<F> {
//! #     type Response = T; type Error = E; type Future = Fut;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, r: R) -> Fut { (self.0)(r) }
//! # }
//! ```

mod answer;
mod breaker;
mod bulkhead;
mod classify;
mod cost;
mod deadline;
mod future;
mod grpc;
mod headers;
mod hold;
mod key;
mod keyed;
mod limited;
mod limiter;
mod policy;
mod propagate;
mod respond;

pub use answer::{Answer, Http, Rejected, Typed};
pub use breaker::{BreakerFuture, BreakerLayer, BreakerService};
pub use bulkhead::{BulkheadFuture, BulkheadLayer, BulkheadService};
pub use classify::{verdict_of, ByBreaker, Classify, ClassifyFn, HttpClassifier, Verdict};
pub use cost::{cost_fn, Cost, CostFn, One};
pub use deadline::{DeadlineFuture, DeadlineLayer, DeadlineService};
pub use future::{Finish, LayerFuture};
pub use grpc::GrpcResponder;
pub use headers::{retry_after_secs, RateLimitInfo, RATELIMIT, RATELIMIT_POLICY};
pub use hold::{Hold, PermitBody, UntilBodyEnd, UntilResponse};
pub use key::{key_fn, Either, Global, HeaderKey, KeyExtractor, KeyFn, Or, PeerIp};
pub use keyed::{KeyedLimiterLayer, KeyedLimiterService, MissingKey};
pub use limited::LimitedFuture;
pub use limiter::{LimiterLayer, LimiterService};
pub use policy::{Judge, OkIsSuccess, PolicyFuture, PolicyLayer, PolicyService};
pub use propagate::{PropagateDeadline, PropagateDeadlineLayer};
pub use respond::{HttpResponder, Respond, RespondWith};

/// Compile-time proof that the services and their futures are `Send` when the inner
/// service's are (servers spawn them on a multi-thread runtime).
#[allow(dead_code)]
fn futures_are_send() {
    use std::convert::Infallible;
    use std::future::Ready;

    type Req = http::Request<String>;
    type Res = http::Response<String>;
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<
        BreakerFuture<
            Ready<Result<Res, Infallible>>,
            Http,
            HttpClassifier,
            Result<Res, Infallible>,
        >,
    >();
    send::<
        BulkheadFuture<
            Ready<Result<Res, Infallible>>,
            Http,
            UntilResponse,
            Result<Res, Infallible>,
        >,
    >();
    send::<LimitedFuture<Ready<Result<Res, Infallible>>, Http, Result<Res, Infallible>>>();
    send::<DeadlineFuture<Ready<Result<Res, Infallible>>, Http, Result<Res, Infallible>>>();
    // axum asks layered services to be Sync too
    send_sync::<BulkheadService<(), Http>>();
    send_sync::<BreakerService<(), Http, HttpClassifier>>();
    send_sync::<LimiterService<(), Http>>();
    send_sync::<DeadlineService<(), Http>>();
    let _ = std::marker::PhantomData::<Req>;
}
