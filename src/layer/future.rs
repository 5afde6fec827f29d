//! The one response future of every layer: the inner service's future running (with what
//! its layer must do when it ends), an answer decided in `call`, or (a limiter on Redis) a
//! boxed future that decides and then calls. The running state is an `Option` of its own
//! (its `None` takes a niche of the inner future where it has one, as most do), the other
//! two share one 16-byte field: the inner future, the layer's per-request state, 16 bytes
//! and the answer.
//! Apart rather than one enum over all three: the same instructions (callgrind: 1,667
//! against 1,664 a keyed-layer request), but the keyed layer measured 0.85-0.91 of
//! tower_governor apart against 0.97-1.03 as one enum (`layer_rounds`, six runs each; the
//! poll's first load, the state's tag, stalled less: it now reads another word of the
//! future and compares it once instead of decoding a niche).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::answer::{Answer, Rejected};
use crate::error::CallError;
use std::convert::Infallible;

/// A boxed future of the remote path.
pub(crate) type Remote<R> = Pin<Box<dyn Future<Output = R> + Send>>;

/// What a layer does when the inner future ends: turn its output into the answer (record
/// a breaker outcome, hand a permit to the body, add headers...). Implemented by each
/// layer's per-request state, which lives in the future and is dropped with it (a bulkhead
/// permit held until the response resolves goes back then, as tower's `ConcurrencyLimit`
/// does: giving it back before the response has left the future costs two copies of the
/// response). Not for use outside palisade.
#[doc(hidden)]
pub trait Finish<O, A> {
    /// The service's result.
    type Output;

    /// The answer for the inner future's `output` (called once).
    fn finish(&mut self, output: O, answer: &A) -> Self::Output;

    /// Polls the inner future, and once it is ready, [`finish`](Self::finish)es with its
    /// output.
    #[inline]
    fn poll_inner<F: Future<Output = O>>(
        &mut self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
        answer: &A,
    ) -> Poll<Self::Output> {
        let output = ready!(fut.poll(cx));
        Poll::Ready(self.finish(output, answer))
    }
}

pin_project! {
    /// The response future of the layers' services ([`BreakerFuture`](super::BreakerFuture),
    /// [`BulkheadFuture`](super::BulkheadFuture), [`LimitedFuture`](super::LimitedFuture),
    /// [`DeadlineFuture`](super::DeadlineFuture)).
    pub struct LayerFuture<F, A, X, R> {
        #[pin]
        running: Option<Running<F, X>>,
        other: Other<R>,
        answer: A,
    }
}

pin_project! {
    struct Running<F, X> {
        #[pin]
        fut: F,
        finish: X,
    }
}

/// Where a future that does not run the inner one gets its answer (`Answered(None)` beside
/// a running future, or once the answer was taken). Boxed: the admitted path's future stays
/// as small as the inner one allows.
enum Other<R> {
    Answered(Option<Box<R>>),
    Remote(Remote<R>),
}

impl<F, A, X, R> LayerFuture<F, A, X, R> {
    /// The inner future, and what to do when it ends.
    #[inline]
    pub(crate) fn running(fut: F, finish: X, answer: A) -> Self {
        Self {
            running: Some(Running { fut, finish }),
            other: Other::Answered(None),
            answer,
        }
    }

    /// An answer decided in `call` (a rejection).
    pub(crate) fn answered(ready: R, answer: A) -> Self {
        Self {
            running: None,
            other: Other::Answered(Some(Box::new(ready))),
            answer,
        }
    }

    /// A decision that needs a round trip, then the call.
    pub(crate) fn remote(remote: Remote<R>, answer: A) -> Self {
        Self {
            running: None,
            other: Other::Remote(remote),
            answer,
        }
    }
}

impl<F, A, X, T, E> LayerFuture<F, A, X, Result<T, E>> {
    /// The answer to a request rejected in `call` (the inner service not called), built
    /// out of the admitted path.
    #[cold]
    #[inline(never)]
    pub(crate) fn rejected<I, IE>(answer: &A, error: CallError<Infallible>) -> Self
    where
        A: Answer<I, IE, Response = T, Error = E>,
    {
        Self::answered(answer.reject(Rejected::new(error)), answer.clone())
    }
}

impl<F, A, X, R> std::fmt::Debug for LayerFuture<F, A, X, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match (&self.running, &self.other) {
            (Some(_), _) => "running",
            (None, Other::Answered(_)) => "answered",
            (None, Other::Remote(_)) => "remote",
        };
        f.debug_struct("LayerFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, A, X> Future for LayerFuture<F, A, X, X::Output>
where
    F: Future,
    X: Finish<F::Output, A>,
{
    type Output = X::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(running) = this.running.as_pin_mut() {
            let running = running.project();
            return running.finish.poll_inner(running.fut, cx, this.answer);
        }
        match this.other {
            Other::Answered(ready) => Poll::Ready(
                *ready
                    .take()
                    .expect("a layer's future polled after it completed"),
            ),
            Other::Remote(remote) => remote.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answered_and_remote_states_share_16_bytes() {
        // (the module's size claim: no tag word beside the two pointers)
        assert_eq!(std::mem::size_of::<Other<Result<String, String>>>(), 16);
    }
}
