//! [`BreakerLayer`]: a circuit breaker around a tower service.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Typed};
use super::classify::{ByBreaker, Classify, HttpClassifier};
use super::future::{Finish, LayerFuture};
use crate::breaker::{Breaker, BreakerPermit};
use crate::error::CallError;

/// Puts a [`Breaker`] in front of a service. A request the breaker does not admit never
/// reaches the inner service; an admitted one holds a [`BreakerPermit`] until its response
/// future resolves, and the classifier records how it ended (slow-call timing runs from
/// admission to response). A response future dropped before it resolves counts as
/// cancelled, never as a failure.
///
/// `poll_ready` is the inner service's: the breaker decides in `call`, so a rejection is
/// immediate and costs the inner service nothing.
///
/// - [`BreakerLayer::new`]: rejections are `CallError::CircuitOpen`, errors are judged by the
///   breaker's classifier ([`ByBreaker`]).
/// - [`http`](Self::http): rejections are 503 responses with `Retry-After`, and responses are
///   judged by status ([`HttpClassifier`]: 5xx fail, 429 and 503+`Retry-After` throttle).
#[derive(Clone, Debug)]
pub struct BreakerLayer<A = Typed, C = ByBreaker> {
    breaker: Breaker,
    answer: A,
    classify: C,
}

impl BreakerLayer {
    /// The layer for `breaker` (shared: every service it makes decides on the same state).
    pub fn new(breaker: &Breaker) -> Self {
        Self {
            breaker: breaker.clone(),
            answer: Typed,
            classify: ByBreaker,
        }
    }
}

impl<A, C> BreakerLayer<A, C> {
    /// HTTP answers ([`Http`]) and the HTTP classifier.
    pub fn http(self) -> BreakerLayer<Http, HttpClassifier> {
        BreakerLayer {
            breaker: self.breaker,
            answer: Http::default(),
            classify: HttpClassifier::default(),
        }
    }

    /// Another way to answer (for example `Http(responder)`).
    pub fn answer<A2>(self, answer: A2) -> BreakerLayer<A2, C> {
        BreakerLayer {
            breaker: self.breaker,
            answer,
            classify: self.classify,
        }
    }

    /// Another classifier.
    pub fn classify<C2>(self, classify: C2) -> BreakerLayer<A, C2> {
        BreakerLayer {
            breaker: self.breaker,
            answer: self.answer,
            classify,
        }
    }
}

impl<S, A: Clone, C: Clone> Layer<S> for BreakerLayer<A, C> {
    type Service = BreakerService<S, A, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            answer: self.answer.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The service [`BreakerLayer`] makes. `Clone` (the clones share the breaker).
#[derive(Clone, Debug)]
pub struct BreakerService<S, A = Typed, C = ByBreaker> {
    inner: S,
    breaker: Breaker,
    answer: A,
    classify: C,
}

impl<S, Req, A, C> Service<Req> for BreakerService<S, A, C>
where
    S: Service<Req>,
    A: Answer<S::Response, S::Error>,
    C: Classify<S::Response, S::Error>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = BreakerFuture<S::Future, A, C, Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|e| self.answer.error(e))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => {
                let done = BreakerDone {
                    permit: Some(permit),
                    classify: self.classify.clone(),
                };
                LayerFuture::running(self.inner.call(req), done, self.answer.clone())
            }
            Err(rejected) => LayerFuture::rejected(&self.answer, CallError::from(rejected)),
        }
    }
}

/// What a breaker layer does when the inner future ends: records the outcome on the
/// permit, then passes the result on.
#[doc(hidden)]
#[derive(Debug)]
pub struct BreakerDone<C> {
    /// Taken when the outcome is recorded; dropped unrecorded (the future dropped before
    /// it resolved), it counts as cancelled.
    permit: Option<BreakerPermit>,
    classify: C,
}

impl<T, E, A, C> Finish<Result<T, E>, A> for BreakerDone<C>
where
    A: Answer<T, E>,
    C: Classify<T, E>,
{
    type Output = Result<A::Response, A::Error>;

    #[inline]
    fn finish(&mut self, output: Result<T, E>, answer: &A) -> Self::Output {
        if let Some(permit) = self.permit.take() {
            self.classify.record(permit, &output);
        }
        answer.pass(output, None)
    }
}

/// The response future of [`BreakerService`].
pub type BreakerFuture<F, A, C, R> = LayerFuture<F, A, BreakerDone<C>, R>;
