//! [`Downstream`]: the middleware.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{Extensions, HeaderValue, Method};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use super::authority::authority_of;
use crate::breaker::KeyedBreaker;
use crate::clock::Instant;
use crate::deadline;
use crate::error::CallError;
use crate::layer::Verdict;
use crate::policy::Backoff;

/// The middleware: for each request, the authority's breaker (from a [`KeyedBreaker`]),
/// then the deadline, then the call; a 429 or a 503 with `Retry-After` makes the next calls
/// to that authority fail fast until the wait is over. Idempotent requests (GET, HEAD,
/// PUT, DELETE, OPTIONS, TRACE) whose body can be replayed are retried on transport errors
/// and 5xx when [`retry`](Self::retry) is set; a backoff that would outlast the deadline is
/// not slept: the last answer is returned.
///
/// Responses are judged as [`HttpClassifier`](crate::layer::HttpClassifier) does: 5xx and transport errors fail, 4xx
/// succeed, throttling is not counted.
#[derive(Clone, Debug)]
pub struct Downstream {
    breakers: KeyedBreaker<String>,
    retry: Option<(u32, Backoff)>,
    retry_any_method: bool,
    /// `Retry-After`s still running, per authority.
    waits: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Downstream {
    /// The middleware, keeping a breaker per authority in `breakers`.
    pub fn new(breakers: &KeyedBreaker<String>) -> Self {
        Self {
            breakers: breakers.clone(),
            retry: None,
            retry_any_method: false,
            waits: Arc::default(),
        }
    }

    /// Up to `max_attempts` attempts for idempotent requests, `backoff` between them.
    pub fn retry(mut self, max_attempts: u32, backoff: Backoff) -> Self {
        self.retry = (max_attempts > 1).then_some((max_attempts, backoff));
        self
    }

    /// Retries non-idempotent requests too (POST, PATCH): only when they are safe to repeat.
    pub fn retry_any_method(mut self, on: bool) -> Self {
        self.retry_any_method = on;
        self
    }

    /// The `Retry-After` still running for `authority`, if any.
    fn waiting(&self, authority: &str, now: Instant) -> Option<Duration> {
        let mut waits = self.waits.lock().unwrap_or_else(|p| p.into_inner());
        match waits.get(authority) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                waits.remove(authority);
                None
            }
            None => None,
        }
    }

    fn remember_wait(&self, authority: &str, response: &Response) {
        let Some(wait) = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| super::retry_after::wait(v.as_bytes(), std::time::SystemTime::now()))
        else {
            return;
        };
        let mut waits = self.waits.lock().unwrap_or_else(|p| p.into_inner());
        // bounded like the breakers: expired waits go first
        if waits.len() >= 1_024 {
            let now = Instant::now();
            waits.retain(|_, until| *until > now);
        }
        if waits.len() < 1_024 || waits.contains_key(authority) {
            waits.insert(authority.to_owned(), Instant::now() + wait);
        }
    }

    /// One attempt: the wait, the breaker, the deadline, the call, the verdict.
    async fn attempt(
        &self,
        authority: &str,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response, Failed> {
        if let Some(retry_after) = self.waiting(authority, Instant::now()) {
            return Err(Failed::Rejected(CallError::RateLimited {
                name: Arc::from(authority),
                retry_after,
            }));
        }
        if let Some(left) = deadline::remaining() {
            if left.is_zero() {
                let budget = deadline::budget().unwrap_or_default();
                return Err(Failed::Rejected(CallError::DeadlineExceeded { budget }));
            }
            if let Ok(v) = HeaderValue::try_from(deadline::header_value().unwrap_or_default()) {
                req.headers_mut().insert(deadline::HEADER, v);
            }
            let timeout = req.timeout_mut();
            *timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        let permit = self
            .breakers
            .get(&authority.to_owned())
            .try_acquire()
            .map_err(|r| Failed::Rejected(r.into()))?;
        let result = next.run(req, extensions).await;
        let verdict = match &result {
            Err(_) => Verdict::Failure,
            Ok(r) => crate::layer::verdict_of(r.status(), r.headers().contains_key(RETRY_AFTER)),
        };
        // throttling is not a health failure (the wait is kept below instead)
        verdict.record(permit, false);
        match result {
            Ok(response) => {
                if verdict == Verdict::Throttled {
                    self.remember_wait(authority, &response);
                }
                if verdict == Verdict::Failure {
                    Err(Failed::Status(response))
                } else {
                    Ok(response)
                }
            }
            Err(e) => Err(Failed::Transport(e)),
        }
    }
}

/// Why an attempt did not succeed.
enum Failed {
    /// palisade did not send it.
    Rejected(CallError<Infallible>),
    /// A 5xx (returned as the answer when it is the last).
    Status(Response),
    /// The request failed in transport.
    Transport(reqwest_middleware::Error),
}

impl Failed {
    fn retryable(&self) -> bool {
        !matches!(self, Failed::Rejected(_))
    }

    fn into_result(self) -> reqwest_middleware::Result<Response> {
        match self {
            Failed::Rejected(e) => {
                Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(e)))
            }
            Failed::Status(response) => Ok(response),
            Failed::Transport(e) => Err(e),
        }
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

#[async_trait::async_trait]
impl Middleware for Downstream {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let authority = authority_of(req.url());
        let retry = self
            .retry
            .filter(|_| self.retry_any_method || idempotent(req.method()))
            .filter(|_| req.try_clone().is_some());
        let Some((max_attempts, backoff)) = retry else {
            return match self.attempt(&authority, req, extensions, next).await {
                Ok(response) => Ok(response),
                Err(failed) => failed.into_result(),
            };
        };
        let mut previous = Duration::ZERO;
        let mut n = 1;
        loop {
            let Some(this_try) = req.try_clone() else {
                return Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!(
                    "the request body cannot be replayed"
                )));
            };
            let failed = match self
                .attempt(&authority, this_try, extensions, next.clone())
                .await
            {
                Ok(response) => return Ok(response),
                Err(failed) => failed,
            };
            if n >= max_attempts || !failed.retryable() {
                return failed.into_result();
            }
            let delay = backoff.delay(n, previous, &mut rand::rng());
            // never sleep past the deadline: the last answer is the answer
            if deadline::remaining().is_some_and(|left| left <= delay) {
                return failed.into_result();
            }
            tokio::time::sleep(delay).await;
            previous = delay;
            n += 1;
        }
    }
}
