//! Per-attempt timeout, distinct from the overall [deadline](super::deadline), and the lazy
//! time limit both are built on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::Stamp;
use crate::error::CallError;

/// Runs one attempt with a time limit; drops it and returns [`CallError::Timeout`] when the
/// limit passes. Use a [deadline](super::deadline) for a limit across all attempts.
///
/// # Cancel safety
/// As cancel safe as `fut`.
pub async fn timeout<F, T, E>(after: Duration, fut: F) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, CallError<E>>>,
{
    let Some(at) = Stamp::now().checked_add(after) else {
        return fut.await; // a limit beyond the clock's range never passes
    };
    CutOff::new(at, fut)
        .await
        .unwrap_or(Err(CallError::Timeout { after }))
}

pin_project_lite::pin_project! {
    /// Runs `fut` until `at`; `None` if it is still running then. Like
    /// `tokio::time::timeout_at`, the future is polled before the time is checked, but the
    /// timer is armed only after a first poll that did not finish: a call that completes at
    /// once never touches tokio's timer wheel (registering and dropping a timer costs more
    /// than the rest of a policy's layers) nor reads tokio's clock.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct CutOff<F> {
        #[pin]
        fut: F,
        at: Stamp,
        // Boxed: a tokio `Sleep` is large, and only a call that did not finish at once
        // needs it; inline it would grow (and slow) every call's future.
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F> CutOff<F> {
    pub(crate) fn new(at: Stamp, fut: F) -> Self {
        Self {
            fut,
            at,
            sleep: None,
        }
    }
}

impl<F: Future> Future for CutOff<F> {
    type Output = Option<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Some(v));
        }
        let at = *this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.to_instant())));
        sleep.as_mut().poll(cx).map(|()| None)
    }
}
