//! What a layer's service answers: the admitted call's result passed on, or a rejection,
//! as a typed error (any tower service) or as an HTTP response (services over `http`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::headers::RateLimitInfo;
use super::respond::{HttpResponder, Respond};
use crate::error::CallError;

/// A rejection as a layer saw it: why the request was not passed on, and the limiter's
/// state to advertise (the `RateLimit` header fields), when a limiter decided.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rejected {
    /// Why. Never [`CallError::Inner`]: the inner service was not called.
    pub error: CallError<Infallible>,
    /// The deciding limiter's quota and state.
    pub rate_limit: Option<RateLimitInfo>,
}

impl Rejected {
    pub(crate) fn new(error: CallError<Infallible>) -> Self {
        Self {
            error,
            rate_limit: None,
        }
    }

    pub(crate) fn with_rate_limit(mut self, info: Option<RateLimitInfo>) -> Self {
        self.rate_limit = info;
        self
    }
}

/// How a layer's service answers. Two are provided: [`Typed`] (rejections are errors:
/// `CallError<E>`) and [`Http`] (rejections are HTTP responses; the inner error passes
/// through unchanged).
pub trait Answer<T, E>: Clone {
    /// The service's response.
    type Response;
    /// The service's error.
    type Error;

    /// Whether [`pass`](Self::pass) and [`reject`](Self::reject) use the rate-limit state
    /// (the limiter layers work it out only then).
    fn wants_rate_limit(&self) -> bool {
        false
    }

    /// The inner service's result, passed on (an admitted HTTP response gets the limiter's
    /// `RateLimit` headers when `rate_limit` is given and the responder writes them).
    fn pass(
        &self,
        result: Result<T, E>,
        rate_limit: Option<&RateLimitInfo>,
    ) -> Result<Self::Response, Self::Error>;

    /// The answer to a rejected request.
    fn reject(&self, rejected: Rejected) -> Result<Self::Response, Self::Error>;

    /// Polls the inner service's future `fut` of an admitted request with no rate-limit
    /// state to add, and passes its result on ([`pass`](Self::pass) without one). [`Http`]
    /// returns the inner poll as it is, so the response is written once, where the layer's
    /// future returns it, not copied out and back in.
    #[inline]
    fn forward<F>(
        &self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Response, Self::Error>>
    where
        F: Future<Output = Result<T, E>>,
    {
        fut.poll(cx).map(|result| self.pass(result, None))
    }

    /// The inner service's own error (from `poll_ready`).
    fn error(&self, e: E) -> Self::Error;
}

/// Rejections as errors: the service's error is [`CallError<E>`], the inner service's own
/// errors arriving as [`CallError::Inner`]. The default, for any tower service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Typed;

impl<T, E> Answer<T, E> for Typed {
    type Response = T;
    type Error = CallError<E>;

    #[inline]
    fn pass(&self, result: Result<T, E>, _: Option<&RateLimitInfo>) -> Result<T, CallError<E>> {
        result.map_err(CallError::Inner)
    }

    fn reject(&self, rejected: Rejected) -> Result<T, CallError<E>> {
        Err(rejected.error.map_inner(|never| match never {}))
    }

    fn error(&self, e: E) -> CallError<E> {
        CallError::Inner(e)
    }
}

/// Rejections as HTTP responses, built by `R` (by default [`HttpResponder`]: 429, 503 or
/// 504 with `Retry-After` and the `RateLimit` fields). The inner service's errors pass
/// through unchanged, so the layer fits under axum, hyper and tonic as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Http<R = HttpResponder>(pub R);

impl<B, E, R: Respond<B>> Answer<http::Response<B>, E> for Http<R> {
    type Response = http::Response<B>;
    type Error = E;

    #[inline]
    fn wants_rate_limit(&self) -> bool {
        self.0.wants_rate_limit()
    }

    #[inline]
    fn pass(
        &self,
        result: Result<http::Response<B>, E>,
        rate_limit: Option<&RateLimitInfo>,
    ) -> Result<http::Response<B>, E> {
        let mut response = result?;
        if let Some(info) = rate_limit {
            self.0.admitted(&mut response, info);
        }
        Ok(response)
    }

    fn reject(&self, rejected: Rejected) -> Result<http::Response<B>, E> {
        Ok(self.0.respond(&rejected))
    }

    #[inline]
    fn forward<F>(
        &self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<http::Response<B>, E>>
    where
        F: Future<Output = Result<http::Response<B>, E>>,
    {
        fut.poll(cx)
    }

    fn error(&self, e: E) -> E {
        e
    }
}
