//! The response future the limiter layers share: a decided request runs the inner future
//! (an admitted one carries its `RateLimit` state to the answer); a request whose limiter
//! needs a round trip (a strict Redis limiter) runs one boxed future that decides, then
//! calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::answer::Answer;
use super::headers::RateLimitInfo;

/// A boxed future of the remote path.
pub(crate) type Remote<R> = Pin<Box<dyn Future<Output = R> + Send>>;

pin_project! {
    /// The response future of the limiter services.
    pub struct LimitedFuture<F, A, R> {
        #[pin]
        fut: Option<F>,
        ready: Option<R>,
        remote: Option<Remote<R>>,
        info: Option<RateLimitInfo>,
        answer: A,
    }
}

impl<F, A, R> LimitedFuture<F, A, R> {
    pub(crate) fn admitted(fut: F, info: Option<RateLimitInfo>, answer: A) -> Self {
        Self {
            fut: Some(fut),
            ready: None,
            remote: None,
            info,
            answer,
        }
    }

    pub(crate) fn answered(answer_now: R, answer: A) -> Self {
        Self {
            fut: None,
            ready: Some(answer_now),
            remote: None,
            info: None,
            answer,
        }
    }

    pub(crate) fn remote(remote: Remote<R>, answer: A) -> Self {
        Self {
            fut: None,
            ready: None,
            remote: Some(remote),
            info: None,
            answer,
        }
    }
}

impl<F, A, R> std::fmt::Debug for LimitedFuture<F, A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitedFuture")
            .field("running", &self.fut.is_some())
            .field("remote", &self.remote.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, T, E, A> Future for LimitedFuture<F, A, Result<A::Response, A::Error>>
where
    F: Future<Output = Result<T, E>>,
    A: Answer<T, E>,
{
    type Output = Result<A::Response, A::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(fut) = this.fut.as_pin_mut() {
            let result = ready!(fut.poll(cx));
            return Poll::Ready(this.answer.pass(result, this.info.as_ref()));
        }
        if let Some(remote) = this.remote {
            return remote.as_mut().poll(cx);
        }
        Poll::Ready(
            this.ready
                .take()
                .expect("LimitedFuture polled after it completed"),
        )
    }
}
