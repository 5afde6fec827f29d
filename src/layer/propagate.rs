//! [`PropagateDeadlineLayer`]: the client side of a deadline. Outgoing requests carry what
//! is left of the task's deadline, so the next service never works past it.

use std::task::{Context, Poll};

use http::HeaderValue;
use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Rejected, Typed};
use super::future::LayerFuture;
use super::limited::{Admitted, LimitedFuture};
use crate::deadline::{self as dl};
use crate::error::CallError;

/// For clients (a tonic `Channel`, a hyper client, any tower service of `http::Request`s):
/// inside a deadline scope each request carries
/// [`x-deadline-remaining`](crate::deadline::HEADER) and `grpc-timeout` (lowered to what is
/// left when the request already had a longer one); a spent deadline sends nothing
/// (`CallError::DeadlineExceeded`, or a 504 / `DEADLINE_EXCEEDED` with an HTTP or gRPC
/// answer). Outside a scope requests pass untouched. `poll_ready` is the inner service's.
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateDeadlineLayer<A = Typed> {
    answer: A,
}

impl PropagateDeadlineLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<A> PropagateDeadlineLayer<A> {
    /// HTTP answers: a spent deadline is a 504 response.
    pub fn http(self) -> PropagateDeadlineLayer<Http> {
        self.answer(Http::default())
    }

    /// Another way to answer (for a tonic client, `Http(GrpcResponder)`).
    pub fn answer<A2>(self, answer: A2) -> PropagateDeadlineLayer<A2> {
        PropagateDeadlineLayer { answer }
    }
}

impl<S, A: Clone> Layer<S> for PropagateDeadlineLayer<A> {
    type Service = PropagateDeadline<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateDeadline {
            inner,
            answer: self.answer.clone(),
        }
    }
}

/// The service [`PropagateDeadlineLayer`] makes.
#[derive(Clone, Copy, Debug)]
pub struct PropagateDeadline<S, A = Typed> {
    inner: S,
    answer: A,
}

impl<S, B, A> Service<http::Request<B>> for PropagateDeadline<S, A>
where
    S: Service<http::Request<B>>,
    A: Answer<S::Response, S::Error>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = LimitedFuture<S::Future, A, Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|e| self.answer.error(e))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(left) = dl::remaining() {
            if left.is_zero() {
                let budget = dl::budget().unwrap_or_default();
                let rejected = Rejected::new(CallError::DeadlineExceeded { budget });
                return LayerFuture::answered(self.answer.reject(rejected), self.answer.clone());
            }
            let headers = req.headers_mut();
            if let Ok(v) = HeaderValue::try_from(dl::header_value().unwrap_or_default()) {
                headers.insert(dl::HEADER, v);
            }
            let theirs = headers
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| dl::parse_grpc_timeout(v).ok());
            if theirs.is_none_or(|t| t > left) {
                if let Ok(v) = HeaderValue::try_from(dl::grpc_timeout(left)) {
                    headers.insert("grpc-timeout", v);
                }
            }
        }
        LayerFuture::running(
            self.inner.call(req),
            Admitted { info: None },
            self.answer.clone(),
        )
    }
}
