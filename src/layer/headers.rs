//! The rate-limit header fields: `RateLimit-Policy` and `RateLimit` of
//! draft-ietf-httpapi-ratelimit-headers-10, the legacy `X-RateLimit-*` trio, and
//! `Retry-After` in whole seconds rounded up.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

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

/// A thread's last `RateLimit-Policy` value: for which limiter, quota and window.
type LastPolicy = (Arc<str>, u32, Duration, HeaderValue);

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
    /// The limiter `policy`'s quota and window (see `Limiter::advertised`), with what a
    /// decision left: `remaining` units, full again after `reset`.
    pub(crate) fn new(
        policy: &Arc<str>,
        (quota, window): (u32, Duration),
        remaining: u32,
        reset: Duration,
    ) -> Self {
        Self {
            policy: Arc::clone(policy),
            quota,
            window,
            remaining,
            reset,
        }
    }

    /// `"<policy>";q=<quota>;w=<window s>`.
    pub fn policy_value(&self) -> String {
        String::from_utf8(self.policy_bytes()).unwrap_or_default()
    }

    /// `"<policy>";r=<remaining>;t=<reset s>`.
    pub fn limit_value(&self) -> String {
        String::from_utf8(self.limit_bytes()).unwrap_or_default()
    }

    // Built byte by byte (no `format!`): these go on every response a limiter decides.
    fn policy_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.policy.len() + 32);
        push_sf_string(&mut v, &self.policy);
        v.extend_from_slice(b";q=");
        push_u64(&mut v, u64::from(self.quota));
        v.extend_from_slice(b";w=");
        push_u64(&mut v, retry_after_secs(self.window).max(1));
        v
    }

    fn limit_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.policy.len() + 32);
        push_sf_string(&mut v, &self.policy);
        v.extend_from_slice(b";r=");
        push_u64(&mut v, u64::from(self.remaining));
        v.extend_from_slice(b";t=");
        push_u64(&mut v, retry_after_secs(self.reset));
        v
    }

    /// Writes `RateLimit-Policy` and `RateLimit`.
    pub fn write(&self, headers: &mut HeaderMap) {
        if let Some(policy) = self.policy_header() {
            headers.insert(RATELIMIT_POLICY.clone(), policy);
        }
        if let Ok(limit) = HeaderValue::try_from(self.limit_bytes()) {
            headers.insert(RATELIMIT.clone(), limit);
        }
    }

    /// The `RateLimit-Policy` value. It changes only when a limiter is reconfigured (or, for
    /// a keyed limiter with plans, from plan to plan), so each thread keeps the last one it
    /// built and hands out clones while the policy is the same.
    fn policy_header(&self) -> Option<HeaderValue> {
        thread_local! {
            static LAST: RefCell<Option<LastPolicy>> = const { RefCell::new(None) };
        }
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if let Some((policy, quota, window, value)) = &*last {
                if Arc::ptr_eq(policy, &self.policy)
                    && *quota == self.quota
                    && *window == self.window
                {
                    return Some(value.clone());
                }
            }
            let value = HeaderValue::try_from(self.policy_bytes()).ok()?;
            *last = Some((
                Arc::clone(&self.policy),
                self.quota,
                self.window,
                value.clone(),
            ));
            Some(value)
        })
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

/// Appends `s` as a structured-field string (RFC 8941): printable ASCII, `"` and `\`
/// escaped; anything else (names may hold any printable Unicode) becomes `_`.
fn push_sf_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            ' '..='~' => out.push(c as u8),
            _ => out.push(b'_'),
        }
    }
    out.push(b'"');
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
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
    fn numbers_in_decimal() {
        for n in [0u64, 7, 10, 99, 1_000_000_007, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(String::from_utf8(v).expect("ASCII digits"), n.to_string());
        }
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
        // the written fields, twice (the second policy value from the thread's cache), then
        // with another quota (the cache must not answer)
        for quota in [100, 100, 7] {
            let info = RateLimitInfo {
                quota,
                ..info.clone()
            };
            let mut headers = HeaderMap::new();
            info.write(&mut headers);
            assert_eq!(headers[&RATELIMIT_POLICY], info.policy_value().as_str());
            assert_eq!(headers[&RATELIMIT], info.limit_value().as_str());
        }
        assert_eq!(info.limit_value(), r#""api \"v1\"_";r=42;t=2"#);
    }

    /// Reads back an RFC 8941 string item `"..."` and what follows it.
    fn sf_string(value: &str) -> Option<(String, &str)> {
        let rest = value.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, &rest[i + 1..])),
                ' '..='~' => out.push(c),
                _ => return None,
            }
        }
        None
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// Any limiter name (quotes, backslashes, control characters, any Unicode), any
        /// numbers and durations up to `Duration::MAX`: both fields are always written, as
        /// RFC 8941 items the draft's grammar reads back, and the legacy trio too.
        #[test]
        fn any_decision_writes_fields_the_draft_grammar_reads_back(
            name in "\\PC{0,40}|[\"\\\\ \t\x00-\x1f\x7f]{0,10}",
            quota in proptest::prelude::any::<u32>(),
            remaining in proptest::prelude::any::<u32>(),
            window_ns in proptest::prelude::any::<u64>(),
            reset_secs in proptest::prelude::any::<u64>(),
            reset_ns in 0u32..1_000_000_000,
        ) {
            let info = RateLimitInfo {
                policy: Arc::from(name.as_str()),
                quota,
                window: Duration::from_nanos(window_ns),
                remaining,
                reset: Duration::new(reset_secs, reset_ns),
            };
            let mut headers = HeaderMap::new();
            info.write(&mut headers);
            info.write_legacy(&mut headers);
            let field = |h: &HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let policy = field(&RATELIMIT_POLICY).expect("RateLimit-Policy written");
            let limit = field(&RATELIMIT).expect("RateLimit written");
            let expected_name: String = name
                .chars()
                .map(|c| if (' '..='~').contains(&c) { c } else { '_' })
                .collect();
            let (read, params) = sf_string(&policy).expect("a string item");
            proptest::prop_assert_eq!(&read, &expected_name);
            proptest::prop_assert_eq!(
                params,
                format!(";q={quota};w={}", retry_after_secs(info.window).max(1))
            );
            let (read, params) = sf_string(&limit).expect("a string item");
            proptest::prop_assert_eq!(&read, &expected_name);
            proptest::prop_assert_eq!(
                params,
                format!(";r={remaining};t={}", retry_after_secs(info.reset))
            );
            proptest::prop_assert!(headers.contains_key(&X_LIMIT) && headers.contains_key(&X_RESET));
        }
    }
}
