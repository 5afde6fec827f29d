//! How a breaker layer judges a finished request: an HTTP response that arrived as
//! `Ok(500)` must count as a failure, a 429 as throttling, a 404 as a success.

use std::any::Any;

use http::header::RETRY_AFTER;
use http::StatusCode;

use crate::breaker::BreakerPermit;

/// What a finished request says about the dependency's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Healthy.
    Success,
    /// Unhealthy: counts toward the failure rate.
    Failure,
    /// The dependency asked us to slow down (a 429, or a 503 with `Retry-After`): worth a
    /// retry after the wait, and by default not a health failure.
    Throttled,
    /// Says nothing about the dependency: not counted.
    Ignored,
}

impl Verdict {
    /// Records this verdict on `permit`; throttling counts as a failure only when
    /// `throttled_is_failure`.
    pub fn record(self, permit: BreakerPermit, throttled_is_failure: bool) {
        match self {
            Verdict::Success => permit.success(),
            Verdict::Failure => permit.failure(),
            Verdict::Throttled if throttled_is_failure => permit.failure(),
            Verdict::Throttled | Verdict::Ignored => permit.ignored(),
        }
    }
}

/// Records a finished request on the breaker's permit.
pub trait Classify<T, E>: Clone {
    /// Records how `result` ended on `permit`.
    fn record(&self, permit: BreakerPermit, result: &Result<T, E>);
}

/// Ok is a success; an `Err` counts as the breaker's own classifier says
/// ([`BreakerConfigBuilder::classifier`](crate::breaker::BreakerConfigBuilder::classifier);
/// a failure without one). The default for non-HTTP services.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByBreaker;

impl<T, E: Any> Classify<T, E> for ByBreaker {
    #[inline]
    fn record(&self, permit: BreakerPermit, result: &Result<T, E>) {
        permit.record(result);
    }
}

/// The HTTP classifier: a transport error or a 5xx is a failure; a 429, or a 503 with
/// `Retry-After`, is [throttled](Verdict::Throttled) (not counted, unless
/// [`throttled_is_failure`](Self::throttled_is_failure)); anything else (1xx-4xx) is a
/// success: a 404 is the client's problem, not the dependency's.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpClassifier {
    throttled_is_failure: bool,
}

impl HttpClassifier {
    /// The default classification.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts throttling as a failure (off by default: a dependency that sheds load on
    /// purpose is not broken).
    pub fn throttled_is_failure(mut self, on: bool) -> Self {
        self.throttled_is_failure = on;
        self
    }

    /// Whether throttling counts as a failure.
    pub fn counts_throttling(&self) -> bool {
        self.throttled_is_failure
    }

    /// The verdict on one response.
    pub fn verdict<B, E>(&self, result: &Result<http::Response<B>, E>) -> Verdict {
        match result {
            Err(_) => Verdict::Failure,
            Ok(r) => verdict_of(r.status(), r.headers().contains_key(RETRY_AFTER)),
        }
    }
}

/// The verdict on a status (and whether a `Retry-After` came with it).
pub fn verdict_of(status: StatusCode, retry_after: bool) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after)
    {
        Verdict::Throttled
    } else if status.is_server_error() {
        Verdict::Failure
    } else {
        Verdict::Success
    }
}

impl<B, E> Classify<http::Response<B>, E> for HttpClassifier {
    fn record(&self, permit: BreakerPermit, result: &Result<http::Response<B>, E>) {
        self.verdict(result)
            .record(permit, self.throttled_is_failure);
    }
}

/// A closure `Fn(&Result<T, E>) -> Verdict` as the classifier (throttling is not counted).
#[derive(Clone, Copy, Debug)]
pub struct ClassifyFn<F>(pub F);

impl<T, E, F> Classify<T, E> for ClassifyFn<F>
where
    F: Fn(&Result<T, E>) -> Verdict + Clone,
{
    fn record(&self, permit: BreakerPermit, result: &Result<T, E>) {
        (self.0)(result).record(permit, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_at_the_edges() {
        assert_eq!(verdict_of(StatusCode::OK, false), Verdict::Success);
        assert_eq!(verdict_of(StatusCode::NOT_FOUND, false), Verdict::Success);
        assert_eq!(
            verdict_of(StatusCode::TOO_MANY_REQUESTS, false),
            Verdict::Throttled
        );
        assert_eq!(
            verdict_of(StatusCode::INTERNAL_SERVER_ERROR, false),
            Verdict::Failure
        );
        assert_eq!(
            verdict_of(StatusCode::SERVICE_UNAVAILABLE, false),
            Verdict::Failure
        );
        assert_eq!(
            verdict_of(StatusCode::SERVICE_UNAVAILABLE, true),
            Verdict::Throttled
        );
        assert_eq!(
            verdict_of(StatusCode::GATEWAY_TIMEOUT, true),
            Verdict::Failure
        );
    }
}
