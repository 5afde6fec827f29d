//! [`LimiterLayer`]: one shared quota in front of a tower service.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Typed};
use super::cost::{Cost, One};
use super::future::LayerFuture;
use super::limited::{decide, remote, verdict, LimitedFuture};
use crate::limiter::Limiter;

/// Puts a [`Limiter`] in front of a service: each request spends its cost (one unit, or
/// [`cost`](Self::cost)), decided in `call`; a denied request never reaches the inner
/// service. `poll_ready` is the inner service's.
///
/// A limiter on local state decides without an await; one whose state is in Redis in
/// strict mode makes its round trip inside the response future (the ready inner service
/// moves into it, a clone stays: the service must be `Clone`, as axum's and tonic's are).
///
/// With [`http`](Self::http) a denial is a 429 with `Retry-After` (whole seconds, rounded
/// up), and every response, admitted or not, carries `RateLimit-Policy` and `RateLimit`.
#[derive(Clone, Debug)]
pub struct LimiterLayer<A = Typed, W = One> {
    limiter: Limiter,
    answer: A,
    cost: W,
}

impl LimiterLayer {
    /// The layer for `limiter` (shared by every service it makes).
    pub fn new(limiter: &Limiter) -> Self {
        Self {
            limiter: limiter.clone(),
            answer: Typed,
            cost: One,
        }
    }
}

impl<A, W> LimiterLayer<A, W> {
    /// HTTP answers (429, `Retry-After`, the `RateLimit` fields).
    pub fn http(self) -> LimiterLayer<Http, W> {
        self.answer(Http::default())
    }

    /// Another way to answer (for example `Http(HttpResponder::new().problem_json(true))`).
    pub fn answer<A2>(self, answer: A2) -> LimiterLayer<A2, W> {
        LimiterLayer {
            limiter: self.limiter,
            answer,
            cost: self.cost,
        }
    }

    /// What each request costs ([`cost_fn`](super::cost_fn) for a closure).
    pub fn cost<W2>(self, cost: W2) -> LimiterLayer<A, W2> {
        LimiterLayer {
            limiter: self.limiter,
            answer: self.answer,
            cost,
        }
    }
}

impl<S, A: Clone, W: Clone> Layer<S> for LimiterLayer<A, W> {
    type Service = LimiterService<S, A, W>;

    fn layer(&self, inner: S) -> Self::Service {
        LimiterService {
            inner,
            limiter: self.limiter.clone(),
            answer: self.answer.clone(),
            cost: self.cost.clone(),
        }
    }
}

/// The service [`LimiterLayer`] makes. `Clone` (the clones share the quota).
#[derive(Clone, Debug)]
pub struct LimiterService<S, A = Typed, W = One> {
    inner: S,
    limiter: Limiter,
    answer: A,
    cost: W,
}

impl<S, Req, A, W> Service<Req> for LimiterService<S, A, W>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
    A: Answer<S::Response, S::Error> + Send + Sync + 'static,
    A::Response: Send,
    A::Error: Send,
    W: Cost<Req>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = LimitedFuture<S::Future, A, Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|e| self.answer.error(e))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let cost = self.cost.cost(&req);
        let limiter = &self.limiter;
        if limiter.is_remote() {
            let (limiter, wants) = (limiter.clone(), self.answer.wants_rate_limit());
            let decision = async move {
                let decision = limiter.acquire(cost).await;
                decide(limiter.name_arc(), || limiter.advertised(), decision, wants)
            };
            return remote(&mut self.inner, req, decision, &self.answer);
        }
        let decision = limiter.check_n(cost);
        match verdict(
            limiter.name_arc(),
            || limiter.advertised(),
            decision,
            &self.answer,
        ) {
            Ok(admitted) => {
                LayerFuture::running(self.inner.call(req), admitted, self.answer.clone())
            }
            Err(rejected) => rejected,
        }
    }
}
