//! [`DeadlineLayer`]: the caller's deadline, read from the request, bounds everything the
//! handler does.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Rejected, Typed};
use super::future::{Finish, LayerFuture};
use crate::clock::Stamp;
use crate::deadline::{self as dl, Cut, Guarded, Scope};
use crate::error::CallError;

/// Opens a deadline scope for each request from the budget its caller sent:
/// [`x-deadline-remaining`](crate::deadline::HEADER) (whole milliseconds), else
/// `grpc-timeout`. The handler and everything it awaits inherit the deadline: palisade's
/// waits, retries and policies respect it, and calls it makes downstream send what is left
/// ([`deadline::header_value`](crate::deadline::header_value)).
///
/// - A request without a budget gets [`default_budget`](Self::default_budget) (none by
///   default: no deadline); one asking for more than [`max_budget`](Self::max_budget) gets
///   the maximum (a caller cannot make the server wait longer than it allows).
/// - A header that does not parse (garbage, negative, overflowing, non-ASCII) is ignored as
///   if absent: a bad header never fails a request nor reaches a panic.
/// - A budget already spent (`0`) never reaches the inner service: `DeadlineExceeded`, or a
///   504 with [`http`](Self::http). So is a request whose deadline passes while the inner
///   service works: its future is dropped.
///
/// `poll_ready` is the inner service's.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer<A = Typed> {
    answer: A,
    default: Option<Duration>,
    max: Option<Duration>,
}

impl DeadlineLayer {
    /// Reads budgets from requests; no default, no maximum.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<A> DeadlineLayer<A> {
    /// HTTP answers: a spent deadline is a 504.
    pub fn http(self) -> DeadlineLayer<Http> {
        self.answer(Http::default())
    }

    /// Another way to answer.
    pub fn answer<A2>(self, answer: A2) -> DeadlineLayer<A2> {
        DeadlineLayer {
            answer,
            default: self.default,
            max: self.max,
        }
    }

    /// The budget of a request that sends none.
    pub fn default_budget(mut self, budget: Duration) -> Self {
        self.default = Some(budget);
        self
    }

    /// The most a request may ask for.
    pub fn max_budget(mut self, budget: Duration) -> Self {
        self.max = Some(budget);
        self
    }

    /// The budget for a request with these headers.
    fn budget(&self, headers: &http::HeaderMap) -> Option<Duration> {
        let sent = headers
            .get(dl::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| dl::parse_header(v).ok())
            .or_else(|| {
                headers
                    .get("grpc-timeout")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| dl::parse_grpc_timeout(v).ok())
            });
        let budget = sent.or(self.default)?;
        Some(match self.max {
            Some(max) => budget.min(max),
            None => budget,
        })
    }
}

impl<S, A: Clone> Layer<S> for DeadlineLayer<A> {
    type Service = DeadlineService<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineService<S, A = Typed> {
    inner: S,
    layer: DeadlineLayer<A>,
}

impl<S, B, A> Service<http::Request<B>> for DeadlineService<S, A>
where
    S: Service<http::Request<B>>,
    A: Answer<S::Response, S::Error>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = DeadlineFuture<S::Future, A, Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| self.layer.answer.error(e))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let answer = self.layer.answer.clone();
        let scope = match self.layer.budget(req.headers()) {
            Some(budget) => {
                let scope = Scope::narrowed(budget);
                if scope.is_spent_at(Stamp::now()) {
                    let rejected = Rejected::new(CallError::DeadlineExceeded { budget });
                    return LayerFuture::answered(answer.reject(rejected), answer);
                }
                Some(scope)
            }
            None => None,
        };
        let inner = &mut self.inner;
        let fut = dl::in_scope(&scope, || inner.call(req));
        let inner = Guarded::new(scope, None, fut);
        LayerFuture::running(Scoped { inner }, InScope, answer)
    }
}

/// What a deadline layer does when the inner future ends or is cut: passes the result
/// on, or answers `DeadlineExceeded`.
#[doc(hidden)]
#[derive(Debug)]
pub struct InScope;

impl<T, E, A: Answer<T, E>> Finish<Result<Result<T, E>, CallError<Infallible>>, A> for InScope {
    type Output = Result<A::Response, A::Error>;

    #[inline]
    fn finish(
        &mut self,
        output: Result<Result<T, E>, CallError<Infallible>>,
        answer: &A,
    ) -> Self::Output {
        match output {
            Ok(result) => answer.pass(result, None),
            Err(cut) => answer.reject(Rejected::new(cut)),
        }
    }
}

pin_project! {
    /// The inner future inside a request's deadline scope, cut off at its deadline.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct Scoped<F> {
        #[pin]
        inner: Guarded<F>,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = Result<F::Output, CallError<Infallible>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|r| r.map_err(Cut::into_error))
    }
}

/// The response future of [`DeadlineService`]: the inner future inside the request's
/// deadline scope.
pub type DeadlineFuture<F, A, R> = LayerFuture<Scoped<F>, A, InScope, R>;
