//! HTTP answers to rejections: the status, `Retry-After`, the `RateLimit` header fields and
//! an optional `application/problem+json` body (RFC 9457).

use std::convert::Infallible;
use std::fmt::Write as _;

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};

use super::answer::Rejected;
use super::headers::{retry_after_secs, RateLimitInfo};
use crate::error::CallError;

/// Builds the HTTP response for a rejected request, and may add headers to admitted ones.
/// [`HttpResponder`] is the default; [`RespondWith`] wraps a closure (your own response).
pub trait Respond<B>: Clone {
    /// The response to a rejected request. The inner service was not called.
    fn respond(&self, rejected: &Rejected) -> Response<B>;

    /// Adds the limiter's state to an admitted response (by default, nothing).
    fn admitted(&self, response: &mut Response<B>, info: &RateLimitInfo) {
        let _ = (response, info);
    }

    /// Whether this responder writes the limiter's state (by default, no: the limiter
    /// layers then skip working it out).
    fn wants_rate_limit(&self) -> bool {
        false
    }
}

/// The default HTTP answers:
///
/// | rejection | status | headers |
/// |---|---|---|
/// | rate limited | 429 | `Retry-After` (whole seconds, rounded up), `RateLimit-Policy`, `RateLimit` |
/// | backend down (a limiter on Redis failing closed) | 503 | `Retry-After` |
/// | cost over the limiter's capacity (waiting cannot help) | 413 | `RateLimit-Policy` |
/// | breaker open or half-open and full | 503 | `Retry-After` when the breaker knows |
/// | bulkhead or its queue full | 503 | |
/// | timeout, deadline spent | 504 | |
/// | no key for a keyed limiter (when set to reject) | 400, or [`missing_key_status`](Self::missing_key_status) | |
/// | the resolver refused a key's quota | 500 | |
///
/// The `RateLimit-Policy` and `RateLimit` fields follow
/// [draft-ietf-httpapi-ratelimit-headers-10](https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/)
/// (`"<limiter>";q=<quota>;w=<window s>` and `"<limiter>";r=<remaining>;t=<reset s>`); they go
/// on admitted responses too. The legacy `X-RateLimit-Limit/-Remaining/-Reset` trio is
/// opt-in ([`legacy_headers`](Self::legacy_headers)), and so is an
/// `application/problem+json` body ([`problem_json`](Self::problem_json)); otherwise the body
/// is empty.
#[derive(Clone, Copy, Debug)]
pub struct HttpResponder {
    problem_json: bool,
    legacy_headers: bool,
    rate_limit_headers: bool,
    missing_key_status: StatusCode,
}

impl Default for HttpResponder {
    fn default() -> Self {
        Self {
            problem_json: false,
            legacy_headers: false,
            rate_limit_headers: true,
            missing_key_status: StatusCode::BAD_REQUEST,
        }
    }
}

impl HttpResponder {
    /// The default answers (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rejections carry an `application/problem+json` body (RFC 9457) naming the primitive,
    /// the reason and the wait. Off by default.
    pub fn problem_json(mut self, on: bool) -> Self {
        self.problem_json = on;
        self
    }

    /// Adds `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds)
    /// beside the draft's fields. Off by default.
    pub fn legacy_headers(mut self, on: bool) -> Self {
        self.legacy_headers = on;
        self
    }

    /// Writes the draft's `RateLimit-Policy` and `RateLimit` fields. On by default.
    pub fn rate_limit_headers(mut self, on: bool) -> Self {
        self.rate_limit_headers = on;
        self
    }

    /// The status for a request a keyed limiter found no key in (when it rejects those).
    pub fn missing_key_status(mut self, status: StatusCode) -> Self {
        self.missing_key_status = status;
        self
    }

    /// The status this responder gives a rejection.
    pub fn status(&self, error: &CallError<Infallible>) -> StatusCode {
        match error {
            CallError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CallError::ExceedsCapacity { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CallError::CircuitOpen { .. }
            | CallError::BackendDown { .. }
            | CallError::BulkheadFull { .. }
            | CallError::QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Timeout { .. } | CallError::DeadlineExceeded { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            CallError::MissingKey { .. } => self.missing_key_status,
            CallError::InvalidQuota { .. } | CallError::Inner(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Writes the headers of a rejection into `headers` (for a hook that builds its own
    /// response but keeps these).
    pub fn write_headers(&self, rejected: &Rejected, headers: &mut HeaderMap) {
        if let Some(wait) = rejected.error.retry_after() {
            let secs = retry_after_secs(wait);
            if secs > 0 {
                headers.insert(RETRY_AFTER, HeaderValue::from(secs));
            }
        }
        if let Some(info) = &rejected.rate_limit {
            self.write_rate_limit(info, headers);
        }
    }

    fn write_rate_limit(&self, info: &RateLimitInfo, headers: &mut HeaderMap) {
        if self.rate_limit_headers {
            info.write(headers);
        }
        if self.legacy_headers {
            info.write_legacy(headers);
        }
    }

    /// The problem+json body of a rejection.
    pub fn problem(&self, rejected: &Rejected) -> String {
        let status = self.status(&rejected.error);
        let mut body = String::with_capacity(160);
        body.push_str("{\"type\":\"about:blank\",\"title\":");
        json_string(&mut body, status.canonical_reason().unwrap_or("Rejected"));
        let _ = write!(body, ",\"status\":{}", status.as_u16());
        body.push_str(",\"detail\":");
        json_string(&mut body, &rejected.error.to_string());
        if let Some(wait) = rejected.error.retry_after() {
            let _ = write!(body, ",\"retry_after\":{}", retry_after_secs(wait));
        }
        body.push('}');
        body
    }
}

impl<B: From<String>> Respond<B> for HttpResponder {
    fn respond(&self, rejected: &Rejected) -> Response<B> {
        let body = if self.problem_json {
            self.problem(rejected)
        } else {
            String::new()
        };
        let mut response = Response::new(B::from(body));
        *response.status_mut() = self.status(&rejected.error);
        self.write_headers(rejected, response.headers_mut());
        if self.problem_json {
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
        }
        response
    }

    fn admitted(&self, response: &mut Response<B>, info: &RateLimitInfo) {
        self.write_rate_limit(info, response.headers_mut());
    }

    #[inline]
    fn wants_rate_limit(&self) -> bool {
        self.rate_limit_headers || self.legacy_headers
    }
}

/// A closure as the responder: your own response for every rejection (admitted responses
/// are passed on untouched). [`HttpResponder::write_headers`] adds the default headers to
/// a response you build.
#[derive(Clone, Copy, Debug)]
pub struct RespondWith<F>(pub F);

impl<B, F> Respond<B> for RespondWith<F>
where
    F: Fn(&Rejected) -> Response<B> + Clone,
{
    fn respond(&self, rejected: &Rejected) -> Response<B> {
        (self.0)(rejected)
    }
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\u000ad\\u0001é\"");
    }
}
