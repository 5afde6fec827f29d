//! Per-attempt timeout, distinct from the overall [deadline](super::deadline).

use std::future::Future;
use std::time::Duration;

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
    match tokio::time::timeout(after, fut).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout { after }),
    }
}
