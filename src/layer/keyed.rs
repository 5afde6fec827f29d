//! [`KeyedLimiterLayer`]: a quota per client (API key, peer IP, tenant...) in front of a
//! tower service.

use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Rejected, Typed};
use super::cost::{Cost, One};
use super::future::LayerFuture;
use super::key::KeyExtractor;
use super::limited::{decide, remote, verdict, Admitted, LimitedFuture};
use crate::error::CallError;
use crate::limiter::KeyedLimiter;

/// What a keyed layer does with a request its extractor finds no key in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// Rejects it: `CallError::MissingKey`, or (HTTP) the responder's
    /// [`missing_key_status`](super::HttpResponder::missing_key_status), 400 by default.
    #[default]
    Reject,
    /// Passes it on unlimited.
    Bypass,
}

/// Puts a [`KeyedLimiter`] in front of a service: the [`KeyExtractor`] reads each request's
/// key, and the request spends its cost from that key's quota (per-key plans from the
/// limiter's quota resolver apply as they do for direct checks). Decided in `call`; a
/// denied request never reaches the inner service. `poll_ready` is the inner service's.
///
/// With [`http`](Self::http) a denial is a 429 with `Retry-After`, and every response
/// carries the key's `RateLimit-Policy` and `RateLimit` fields.
#[derive(Clone, Debug)]
pub struct KeyedLimiterLayer<K, X, A = Typed, W = One> {
    limiter: KeyedLimiter<K>,
    keys: X,
    answer: A,
    cost: W,
    missing: MissingKey,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static, X> KeyedLimiterLayer<K, X> {
    /// The layer for `limiter`, keyed by `keys`.
    pub fn new(limiter: &KeyedLimiter<K>, keys: X) -> Self {
        Self {
            limiter: limiter.clone(),
            keys,
            answer: Typed,
            cost: One,
            missing: MissingKey::Reject,
        }
    }
}

impl<K, X, A, W> KeyedLimiterLayer<K, X, A, W> {
    /// HTTP answers (429, `Retry-After`, the `RateLimit` fields).
    pub fn http(self) -> KeyedLimiterLayer<K, X, Http, W> {
        self.answer(Http::default())
    }

    /// Another way to answer.
    pub fn answer<A2>(self, answer: A2) -> KeyedLimiterLayer<K, X, A2, W> {
        KeyedLimiterLayer {
            limiter: self.limiter,
            keys: self.keys,
            answer,
            cost: self.cost,
            missing: self.missing,
        }
    }

    /// What each request costs.
    pub fn cost<W2>(self, cost: W2) -> KeyedLimiterLayer<K, X, A, W2> {
        KeyedLimiterLayer {
            limiter: self.limiter,
            keys: self.keys,
            answer: self.answer,
            cost,
            missing: self.missing,
        }
    }

    /// What to do with a request that has no key (rejected by default).
    pub fn missing_key(mut self, missing: MissingKey) -> Self {
        self.missing = missing;
        self
    }
}

impl<S, K, X: Clone, A: Clone, W: Clone> Layer<S> for KeyedLimiterLayer<K, X, A, W> {
    type Service = KeyedLimiterService<S, K, X, A, W>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedLimiterService {
            inner,
            limiter: self.limiter.clone(),
            keys: self.keys.clone(),
            answer: self.answer.clone(),
            cost: self.cost.clone(),
            missing: self.missing,
        }
    }
}

/// The service [`KeyedLimiterLayer`] makes. `Clone` (the clones share the quotas).
#[derive(Clone, Debug)]
pub struct KeyedLimiterService<S, K, X, A = Typed, W = One> {
    inner: S,
    limiter: KeyedLimiter<K>,
    keys: X,
    answer: A,
    cost: W,
    missing: MissingKey,
}

impl<S, Req, K, X, A, W> Service<Req> for KeyedLimiterService<S, K, X, A, W>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    X: KeyExtractor<Req, Key = K>,
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
        let Some(key) = self.keys.extract(&req) else {
            return match self.missing {
                MissingKey::Bypass => LayerFuture::running(
                    self.inner.call(req),
                    Admitted { info: None },
                    self.answer.clone(),
                ),
                MissingKey::Reject => {
                    let name = Arc::clone(self.limiter.name_arc());
                    let answer = self
                        .answer
                        .reject(Rejected::new(CallError::MissingKey { name }));
                    LayerFuture::answered(answer, self.answer.clone())
                }
            };
        };
        let cost = self.cost.cost(&req);
        let limiter = &self.limiter;
        if limiter.is_remote() {
            let (limiter, wants) = (limiter.clone(), self.answer.wants_rate_limit());
            let decision = async move {
                let decision = limiter.acquire(&key, cost).await;
                decide(
                    limiter.name_arc(),
                    || limiter.advertised(&key),
                    decision,
                    wants,
                )
            };
            return remote(&mut self.inner, req, decision, &self.answer);
        }
        let decision = limiter.check_n(&key, cost);
        match verdict(
            limiter.name_arc(),
            || limiter.advertised(&key),
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
