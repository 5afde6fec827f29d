//! What the limiter layers do when an admitted request's inner future ends: pass the
//! result on with the limiter's state (the `RateLimit` fields of an HTTP answer).

use super::answer::Answer;
use super::future::{Finish, LayerFuture};
use super::headers::RateLimitInfo;

/// An admitted request's limiter state, for the answer.
#[doc(hidden)]
#[derive(Debug)]
pub struct Admitted {
    pub(crate) info: Option<RateLimitInfo>,
}

impl<T, E, A: Answer<T, E>> Finish<Result<T, E>, A> for Admitted {
    type Output = Result<A::Response, A::Error>;

    #[inline]
    fn finish(self, output: Result<T, E>, answer: &A) -> Self::Output {
        answer.pass(output, self.info.as_ref())
    }
}

/// The response future of the limiter services.
pub type LimitedFuture<F, A, R> = LayerFuture<F, A, Admitted, R>;
