//! Per-attempt timeout, distinct from the overall [deadline](super::deadline), and the lazy
//! time limit both are built on.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::clock::Instant;
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
    let Some(at) = Instant::now().checked_add(after) else {
        return fut.await; // a limit beyond the clock's range never passes
    };
    cut_off_at(at, fut)
        .await
        .unwrap_or(Err(CallError::Timeout { after }))
}

/// Runs `fut` until `at`, `None` if it is still running then. The first poll happens before
/// any timer exists, so a call that completes at once never touches tokio's timer wheel
/// (registering and dropping a timer costs more than the rest of a policy's layers). Like
/// `tokio::time::timeout`, the future is polled before the time is checked.
pub(crate) async fn cut_off_at<F: Future>(at: Instant, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Some(v);
    }
    // Boxed: a tokio `Sleep` is large, and only a call that did not finish at once needs it;
    // unboxed it would grow (and slow) every call's future.
    Box::pin(tokio::time::timeout_at(at, fut)).await.ok()
}
