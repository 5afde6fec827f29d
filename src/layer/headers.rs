//! The rate-limit header fields: `RateLimit-Policy` and `RateLimit` of
//! draft-ietf-httpapi-ratelimit-headers-10, the legacy `X-RateLimit-*` trio, and
//! `Retry-After` in whole seconds rounded up.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::limiter::{Allowed, Denied};

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A wait in whole seconds, rounded **up**: a client told to come back after it never
/// comes back early, and a wait that remains is never `0`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

/// A limiter's quota and state as the header fields advertise them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitInfo {
    /// The policy's name: the limiter's.
    pub policy: Arc<str>,
    /// The quota: the most requests (or units) admitted at once.
    pub quota: u32,
    /// The time a spent quota takes to come back in full.
    pub window: Duration,
    /// Units left now.
    pub remaining: u32,
    /// The time until the quota is full again.
    pub reset: Duration,
}

impl RateLimitInfo {
    /// The limiter `policy`'s quota and window (see `Limiter::advertised`), in the state
    /// an admission left.
    pub(crate) fn allowed(
        policy: &Arc<str>,
        (quota, window): (u32, Duration),
        a: &Allowed,
    ) -> Self {
        Self {
            policy: Arc::clone(policy),
            quota,
            window,
            remaining: a.remaining,
            reset: a.reset_after,
        }
    }

    /// The same, in the state a denial saw.
    pub(crate) fn denied(policy: &Arc<str>, (quota, window): (u32, Duration), d: &Denied) -> Self {
        Self {
            policy: Arc::clone(policy),
            quota,
            window,
            remaining: d.remaining,
            reset: d.reset_after,
        }
    }

    /// `"<policy>";q=<quota>;w=<window s>`.
    pub fn policy_value(&self) -> String {
        let mut v = sf_string(&self.policy);
        v.push_str(&format!(
            ";q={};w={}",
            self.quota,
            retry_after_secs(self.window).max(1)
        ));
        v
    }

    /// `"<policy>";r=<remaining>;t=<reset s>`.
    pub fn limit_value(&self) -> String {
        let mut v = sf_string(&self.policy);
        v.push_str(&format!(
            ";r={};t={}",
            self.remaining,
            retry_after_secs(self.reset)
        ));
        v
    }

    /// Writes `RateLimit-Policy` and `RateLimit`.
    pub fn write(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            (&RATELIMIT_POLICY, self.policy_value()),
            (&RATELIMIT, self.limit_value()),
        ] {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name.clone(), value);
            }
        }
    }

    /// Writes `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds).
    pub fn write_legacy(&self, headers: &mut HeaderMap) {
        headers.insert(X_LIMIT.clone(), HeaderValue::from(self.quota));
        headers.insert(X_REMAINING.clone(), HeaderValue::from(self.remaining));
        headers.insert(
            X_RESET.clone(),
            HeaderValue::from(retry_after_secs(self.reset)),
        );
    }
}

/// A structured-field string (RFC 8941): printable ASCII, `"` and `\` escaped; anything
/// else (names may hold any printable Unicode) becomes `_`.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero_while_a_wait_remains() {
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
        assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn field_values_follow_the_draft() {
        let info = RateLimitInfo {
            policy: Arc::from("api \"v1\"é"),
            quota: 100,
            window: Duration::from_secs(60),
            remaining: 42,
            reset: Duration::from_millis(1500),
        };
        assert_eq!(info.policy_value(), r#""api \"v1\"_";q=100;w=60"#);
        assert_eq!(info.limit_value(), r#""api \"v1\"_";r=42;t=2"#);
    }
}
