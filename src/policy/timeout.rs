//! Per-attempt timeout, distinct from the overall [deadline](super::deadline).

use std::future::Future;
use std::time::Duration;

use crate::clock::Stamp;
use crate::deadline::Guarded;
use crate::error::CallError;

/// Runs one attempt with a time limit; drops it and returns [`CallError::Timeout`] when the
/// limit passes. Use a [deadline](super::deadline) for a limit across all attempts.
///
/// Like `tokio::time::timeout`, the future is polled before the time is checked; a timer is
/// armed only after a first poll that did not finish.
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
    Guarded::new(None, Some((at, after)), fut)
        .await
        .unwrap_or(Err(CallError::Timeout { after }))
}
