//! gRPC answers to rejections, for the layers under a tonic server: a trailers-only
//! response (HTTP 200, `grpc-status` and `grpc-message` in the headers).

use std::convert::Infallible;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::Response;

use super::answer::Rejected;
use super::respond::Respond;
use crate::error::CallError;

/// Rejections as gRPC statuses:
///
/// | rejection | `grpc-status` |
/// |---|---|
/// | rate limited, over capacity, bulkhead or its queue full | `RESOURCE_EXHAUSTED` (8) |
/// | breaker open, rate limiter's backend down | `UNAVAILABLE` (14) |
/// | timeout, deadline spent | `DEADLINE_EXCEEDED` (4) |
/// | no key for a keyed limiter | `INVALID_ARGUMENT` (3) |
/// | the resolver refused a key's quota | `INTERNAL` (13) |
///
/// A rejection with a wait also carries `grpc-retry-pushback-ms` (the hint gRPC's retry
/// policy reads). Use it as `layer.answer(Http(GrpcResponder))`; the body type only needs
/// `Default` (tonic's does).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcResponder;

impl GrpcResponder {
    /// The gRPC status code of a rejection.
    pub fn code(&self, error: &CallError<Infallible>) -> u8 {
        match error {
            CallError::RateLimited { .. }
            | CallError::ExceedsCapacity { .. }
            | CallError::BulkheadFull { .. }
            | CallError::QueueFull { .. } => 8,
            CallError::CircuitOpen { .. } | CallError::BackendDown { .. } => 14,
            CallError::Timeout { .. } | CallError::DeadlineExceeded { .. } => 4,
            CallError::MissingKey { .. } => 3,
            CallError::InvalidQuota { .. } | CallError::Inner(_) => 13,
        }
    }
}

impl<B: Default> Respond<B> for GrpcResponder {
    fn respond(&self, rejected: &Rejected) -> Response<B> {
        let mut response = Response::new(B::default());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(self.code(&rejected.error))),
        );
        if let Ok(message) = HeaderValue::try_from(percent_encode(&rejected.error.to_string())) {
            headers.insert("grpc-message", message);
        }
        if let Some(wait) = rejected.error.retry_after() {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            headers.insert("grpc-retry-pushback-ms", HeaderValue::from(ms));
        }
        response
    }
}

/// `grpc-message` is percent-encoded: visible ASCII but `%` stays, the rest is `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("50% of `a`\né"), "50%25 of `a`%0A%C3%A9");
    }
}
