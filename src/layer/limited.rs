//! What the limiter layers share: a decision turned into the request's fate (admitted,
//! with the limiter's state for the answer, or answered at once), the remote path that
//! decides with a round trip before it calls, and the finish step that passes an admitted
//! result on with the limiter's state (the `RateLimit` fields of an HTTP answer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::answer::{Answer, Rejected};
use super::future::{Finish, LayerFuture};
use super::headers::RateLimitInfo;
use crate::limiter::{rejection, Allowed, Denied};

/// An admitted request's limiter state, for the answer.
#[doc(hidden)]
#[derive(Debug)]
pub struct Admitted {
    /// Boxed: a request whose answer writes no headers carries a null pointer, not 48
    /// bytes, through every move of its future.
    pub(crate) info: Option<Box<RateLimitInfo>>,
}

impl<T, E, A: Answer<T, E>> Finish<Result<T, E>, A> for Admitted {
    type Output = Result<A::Response, A::Error>;

    #[inline]
    fn finish(&mut self, output: Result<T, E>, answer: &A) -> Self::Output {
        answer.pass(output, self.info.as_deref())
    }

    /// Without rate-limit state to add, the inner poll goes through as it is.
    #[inline]
    fn poll_inner<F: Future<Output = Result<T, E>>>(
        &mut self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
        answer: &A,
    ) -> Poll<Self::Output> {
        if self.info.is_none() {
            return answer.forward(fut, cx);
        }
        let output = ready!(fut.poll(cx));
        Poll::Ready(self.finish(output, answer))
    }
}

/// The response future of the limiter services.
pub type LimitedFuture<F, A, R> = LayerFuture<F, A, Admitted, R>;

/// The limiter `name`'s `decision`: `Ok` admits the request, `Err` rejects it; each with
/// the limiter's state when the answer writes it (`advertised` gives the quota and window,
/// read only then).
/// The answer to a local denial, out of the admitted path.
#[cold]
fn answer_rejection<F, A: Answer<T, E>, T, E>(
    name: &Arc<str>,
    advertised: impl FnOnce() -> (u32, Duration),
    d: Denied,
    answer: &A,
) -> LimitedFuture<F, A, Result<A::Response, A::Error>> {
    let info = answer
        .wants_rate_limit()
        .then(|| RateLimitInfo::new(name, advertised(), d.remaining, d.reset_after));
    let rejected = Rejected::new(rejection(name, d)).with_rate_limit(info);
    LayerFuture::answered(answer.reject(rejected), answer.clone())
}

/// (The remote path's form of [`verdict`].)
#[inline]
pub(crate) fn decide(
    name: &Arc<str>,
    advertised: impl FnOnce() -> (u32, Duration),
    decision: Result<Allowed, Denied>,
    wants_rate_limit: bool,
) -> Result<Admitted, Rejected> {
    let info = |remaining, reset| {
        wants_rate_limit.then(|| RateLimitInfo::new(name, advertised(), remaining, reset))
    };
    match decision {
        Ok(a) => Ok(Admitted {
            info: info(a.remaining, a.reset_after).map(Box::new),
        }),
        Err(d) => {
            let info = info(d.remaining, d.reset_after);
            Err(Rejected::new(rejection(name, d)).with_rate_limit(info))
        }
    }
}

/// [`verdict`]'s answer: the admitted request's state, or the rejection's future (whose
/// output is `R`).
pub(crate) type Verdict<F, A, R> = Result<Admitted, LimitedFuture<F, A, R>>;

/// What a local check decided in `call`: the admitted request's state for its answer, or
/// the finished answer to the rejection. (The same as [`decide`], with the rejection's
/// answer built: this is every local check's path.) The caller calls the inner service
/// itself, so the request moves once, into that call (through a function that took it,
/// it was copied twice: 240 bytes each for an `http::Request`, benches/layer_rounds.rs).
#[inline(always)]
pub(crate) fn verdict<F, A, T, E>(
    name: &Arc<str>,
    advertised: impl FnOnce() -> (u32, Duration),
    decision: Result<Allowed, Denied>,
    answer: &A,
) -> Verdict<F, A, Result<A::Response, A::Error>>
where
    A: Answer<T, E>,
{
    match decision {
        Ok(a) => Ok(Admitted {
            info: answer
                .wants_rate_limit()
                .then(|| RateLimitInfo::new(name, advertised(), a.remaining, a.reset_after))
                .map(Box::new),
        }),
        Err(d) => Err(answer_rejection(name, advertised, d, answer)),
    }
}

/// The remote path (a limiter in Redis): `decision` makes its round trip inside the
/// response future, then the inner service that was made ready is called (a clone takes
/// its place in the service).
pub(crate) fn remote<S, Req, A, D>(
    inner: &mut S,
    req: Req,
    decision: D,
    answer: &A,
) -> LimitedFuture<S::Future, A, Result<A::Response, A::Error>>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
    A: Answer<S::Response, S::Error> + Send + Sync + 'static,
    A::Response: Send,
    A::Error: Send,
    D: Future<Output = Result<Admitted, Rejected>> + Send + 'static,
{
    let clone = inner.clone();
    let mut inner = std::mem::replace(inner, clone);
    let on_done = answer.clone();
    LayerFuture::remote(
        Box::pin(async move {
            match decision.await {
                Ok(mut admitted) => admitted.finish(inner.call(req).await, &on_done),
                Err(rejected) => on_done.reject(rejected),
            }
        }),
        answer.clone(),
    )
}
