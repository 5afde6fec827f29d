//! [`PolicyLayer`]: a whole [`Policy`] (deadline, retry, breaker, limiter, bulkhead,
//! timeout) around a tower service.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Rejected, Typed};
use super::classify::{HttpClassifier, Verdict};
use crate::error::CallError;
use crate::policy::Policy;

/// Which responses a policy treats as failed attempts: retried (when the policy retries)
/// and counted by its breaker. A failed last attempt's response still reaches the caller.
pub trait Judge<T>: Clone {
    /// `true` when `response` is a failure.
    fn failed(&self, response: &T) -> bool;
}

/// Every `Ok` response is a success (the default for non-HTTP services: only `Err` fails).
#[derive(Clone, Copy, Debug, Default)]
pub struct OkIsSuccess;

impl<T> Judge<T> for OkIsSuccess {
    #[inline]
    fn failed(&self, _: &T) -> bool {
        false
    }
}

/// A 5xx (not a throttling 503 with `Retry-After`, unless throttling counts) is a failure.
impl<B> Judge<http::Response<B>> for HttpClassifier {
    fn failed(&self, response: &http::Response<B>) -> bool {
        let verdict = super::classify::verdict_of(
            response.status(),
            response.headers().contains_key(http::header::RETRY_AFTER),
        );
        verdict == Verdict::Failure || (verdict == Verdict::Throttled && self.counts_throttling())
    }
}

/// Runs each request through a [`Policy`]. Every attempt calls a clone of the inner service
/// with a clone of the request, so both must be `Clone` (an HTTP request whose body is
/// `String`, `Bytes` or `Full`; a unary gRPC message): a request that cannot be replayed
/// cannot be retried. For streaming bodies use the single-primitive layers.
///
/// `poll_ready` is always ready: each attempt waits for the inner service's readiness
/// inside the policy (under its deadline and timeout). The response future is boxed.
///
/// With [`http`](Self::http) a rejection is an HTTP answer (429, 503, 504) and a 5xx
/// response is a failed attempt (retried, counted by the breaker) that still reaches the
/// caller when it is the last.
#[derive(Clone, Debug)]
pub struct PolicyLayer<A = Typed, J = OkIsSuccess> {
    policy: Policy,
    answer: A,
    judge: J,
}

impl PolicyLayer {
    /// The layer for `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            answer: Typed,
            judge: OkIsSuccess,
        }
    }
}

impl<A, J> PolicyLayer<A, J> {
    /// HTTP answers, and 5xx responses as failed attempts.
    pub fn http(self) -> PolicyLayer<Http, HttpClassifier> {
        PolicyLayer {
            policy: self.policy,
            answer: Http::default(),
            judge: HttpClassifier::default(),
        }
    }

    /// Another way to answer.
    pub fn answer<A2>(self, answer: A2) -> PolicyLayer<A2, J> {
        PolicyLayer {
            policy: self.policy,
            answer,
            judge: self.judge,
        }
    }

    /// Another judge of responses.
    pub fn judge<J2>(self, judge: J2) -> PolicyLayer<A, J2> {
        PolicyLayer {
            policy: self.policy,
            answer: self.answer,
            judge,
        }
    }
}

impl<S, A: Clone, J: Clone> Layer<S> for PolicyLayer<A, J> {
    type Service = PolicyService<S, A, J>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`PolicyLayer`] makes.
#[derive(Clone, Debug)]
pub struct PolicyService<S, A = Typed, J = OkIsSuccess> {
    inner: S,
    layer: PolicyLayer<A, J>,
}

/// An attempt's failure inside the policy: the inner service's error, or a response the
/// judge failed (kept, so the last one reaches the caller).
enum Attempt<E, T> {
    Inner(E),
    Failed(T),
}

impl<E: fmt::Debug, T> fmt::Debug for Attempt<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Inner(e) => e.fmt(f),
            Attempt::Failed(_) => f.write_str("a failed response"),
        }
    }
}

/// The response future of [`PolicyService`].
pub type PolicyFuture<R> = Pin<Box<dyn Future<Output = R> + Send>>;

impl<S, Req, A, J> Service<Req> for PolicyService<S, A, J>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: fmt::Debug + Send + 'static,
    Req: Clone + Send + Sync + 'static,
    A: Answer<S::Response, S::Error> + Send + Sync + 'static,
    A::Response: Send,
    A::Error: Send,
    J: Judge<S::Response> + Send + Sync + 'static,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = PolicyFuture<Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let (inner, layer) = (self.inner.clone(), self.layer.clone());
        Box::pin(async move {
            let PolicyLayer {
                policy,
                answer,
                judge,
            } = layer;
            let result = policy
                .execute(|| {
                    let (mut svc, req, judge) = (inner.clone(), req.clone(), judge.clone());
                    async move {
                        poll_fn(|cx| svc.poll_ready(cx))
                            .await
                            .map_err(Attempt::Inner)?;
                        match svc.call(req).await {
                            Ok(response) if judge.failed(&response) => {
                                Err(Attempt::Failed(response))
                            }
                            Ok(response) => Ok(response),
                            Err(e) => Err(Attempt::Inner(e)),
                        }
                    }
                })
                .await;
            match result.map_err(CallError::into_rejection) {
                Ok(response) => answer.pass(Ok(response), None),
                Err(Err(Attempt::Failed(response))) => answer.pass(Ok(response), None),
                Err(Err(Attempt::Inner(e))) => answer.pass(Err(e), None),
                Err(Ok(rejection)) => answer.reject(Rejected::new(rejection)),
            }
        })
    }
}
