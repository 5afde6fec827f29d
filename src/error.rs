//! Error types: what a wrapped call returns, what a bad config says, why a spawn failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::kind::Kind;

/// Why a call made through a palisade primitive did not return
/// the inner call's value.
///
/// Every rejection carries what the caller can act on: the primitive's name and, where one
/// exists, how long to wait before trying again.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use palisade::{CallError, LimiterConfig, Quota};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rt = palisade::Runtime::start().await?;
/// let api = rt.limiter("doc-errors", LimiterConfig::gcra(Quota::per_hour(1))).await?;
/// let call = || api.execute(|| async { Ok::<_, std::io::Error>("done") });
/// assert_eq!(call().await?, "done");
/// match call().await {
///     Err(CallError::RateLimited { name, retry_after }) => {
///         assert_eq!(&*name, "doc-errors");
///         assert!(retry_after > Duration::from_secs(3000));
///     }
///     other => panic!("expected a rejection, got {other:?}"),
/// }
/// let e = call().await.unwrap_err();
/// assert!(e.is_rejection() && e.retry_after().is_some() && e.into_inner().is_none());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The call ran and returned this error.
    Inner(E),
    /// The circuit breaker did not permit the call.
    CircuitOpen {
        /// The breaker's name.
        name: Arc<str>,
        /// The state that rejected the call: [`Open`](crate::BreakerState::Open),
        /// [`HalfOpen`](crate::BreakerState::HalfOpen) (every probe permit was taken) or
        /// [`ForcedOpen`](crate::BreakerState::ForcedOpen).
        state: crate::BreakerState,
        /// When to try again. Open: the time left until the breaker lets probes through.
        /// Half-open: a hint, the time by which the probes under way are expected to
        /// decide (what is left of `max_wait_in_half_open` when set, else the shorter of
        /// `slow_call_duration` and `wait_in_open`). `None` when forced open: waiting
        /// alone never ends that.
        retry_after: Option<Duration>,
    },
    /// The rate limiter denied the call.
    RateLimited {
        /// The limiter's name.
        name: Arc<str>,
        /// The earliest time from now at which the same request could be admitted.
        retry_after: Duration,
    },
    /// The rate limiter cannot ever admit the call's cost at once: waiting will not help.
    ExceedsCapacity {
        /// The limiter's name.
        name: Arc<str>,
        /// The cost asked for.
        cost: u32,
        /// The most the limiter admits in one check.
        capacity: u32,
    },
    /// The rate limiter's remote backend (Redis) is down and the limiter fails closed.
    BackendDown {
        /// The limiter's name.
        name: Arc<str>,
        /// When the backend is worth asking again.
        retry_after: Duration,
    },
    /// A keyed limiter's per-key quota resolver gave this key a quota it refuses.
    InvalidQuota {
        /// The limiter's name.
        name: Arc<str>,
        /// The quota field at fault.
        field: &'static str,
    },
    /// The bulkhead had no free permit within its wait time.
    BulkheadFull {
        /// The bulkhead's name.
        name: Arc<str>,
        /// Its concurrency limit when the call was rejected.
        max_concurrent: u32,
        /// How long the call waited for a permit before it was rejected.
        waited: Duration,
    },
    /// The bulkhead's wait queue was full: the call did not wait.
    QueueFull {
        /// The bulkhead's name.
        name: Arc<str>,
        /// The queue's bound.
        max_queue: u32,
        /// Its concurrency limit when the call was rejected.
        max_concurrent: u32,
    },
    /// One attempt ran longer than its timeout and was dropped.
    Timeout {
        /// The per-attempt timeout that ran out.
        after: Duration,
    },
    /// The task's deadline ran out (see [`deadline`](crate::deadline)).
    DeadlineExceeded {
        /// The budget of the scope whose deadline ran out.
        budget: Duration,
    },
    /// A keyed limiter's layer found no key in the request and rejects such requests
    /// (feature `tower`; see `layer::MissingKey`).
    MissingKey {
        /// The limiter's name.
        name: Arc<str>,
    },
}

impl<E> CallError<E> {
    /// The inner error, if the call itself failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// `true` when the call was rejected or cut short by palisade rather than failing itself.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, CallError::Inner(_))
    }

    /// The wait the rejecting primitive suggests before the next attempt, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::CircuitOpen { retry_after, .. } => *retry_after,
            CallError::RateLimited { retry_after, .. }
            | CallError::BackendDown { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The inner error, or the rejection without an inner type (the layers answer it).
    #[cfg(feature = "tower")]
    pub(crate) fn into_rejection(self) -> Result<CallError<std::convert::Infallible>, E> {
        match self {
            CallError::Inner(e) => Err(e),
            rejection => Ok(rejection.map_inner(|_| unreachable!("Inner is matched above"))),
        }
    }

    /// Maps the inner error, keeping every rejection as it is.
    pub fn map_inner<F, E2>(self, f: F) -> CallError<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            CallError::Inner(e) => CallError::Inner(f(e)),
            CallError::CircuitOpen {
                name,
                state,
                retry_after,
            } => CallError::CircuitOpen {
                name,
                state,
                retry_after,
            },
            CallError::RateLimited { name, retry_after } => {
                CallError::RateLimited { name, retry_after }
            }
            CallError::ExceedsCapacity {
                name,
                cost,
                capacity,
            } => CallError::ExceedsCapacity {
                name,
                cost,
                capacity,
            },
            CallError::BackendDown { name, retry_after } => {
                CallError::BackendDown { name, retry_after }
            }
            CallError::InvalidQuota { name, field } => CallError::InvalidQuota { name, field },
            CallError::QueueFull {
                name,
                max_queue,
                max_concurrent,
            } => CallError::QueueFull {
                name,
                max_queue,
                max_concurrent,
            },
            CallError::BulkheadFull {
                name,
                max_concurrent,
                waited,
            } => CallError::BulkheadFull {
                name,
                max_concurrent,
                waited,
            },
            CallError::Timeout { after } => CallError::Timeout { after },
            CallError::DeadlineExceeded { budget } => CallError::DeadlineExceeded { budget },
            CallError::MissingKey { name } => CallError::MissingKey { name },
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // transparent: the inner error's own words, and its source as the source (so a
            // chain of errors never prints the inner error twice)
            CallError::Inner(e) => e.fmt(f),
            CallError::CircuitOpen {
                name,
                state,
                retry_after,
            } => f.write_str(&crate::breaker::describe(name, *state, *retry_after)),
            CallError::RateLimited { name, retry_after } => {
                write!(
                    f,
                    "rate limiter `{name}` denied the call; retry after {retry_after:?}"
                )
            }
            CallError::ExceedsCapacity {
                name,
                cost,
                capacity,
            } => write!(
                f,
                "rate limiter `{name}` can never admit a cost of {cost} (its capacity is {capacity})"
            ),
            CallError::BackendDown { name, retry_after } => write!(
                f,
                "rate limiter `{name}`'s backend is down and it fails closed; retry after {retry_after:?}"
            ),
            CallError::InvalidQuota { name, field } => write!(
                f,
                "rate limiter `{name}` refused the quota resolved for this key (`{field}`)"
            ),
            CallError::BulkheadFull {
                name,
                max_concurrent,
                waited,
            } => write!(
                f,
                "bulkhead `{name}` is full ({max_concurrent} in flight) after waiting {waited:?}"
            ),
            CallError::QueueFull {
                name,
                max_queue,
                max_concurrent,
            } => write!(
                f,
                "bulkhead `{name}` is full ({max_concurrent} in flight) and so is its wait queue ({max_queue})"
            ),
            CallError::Timeout { after } => write!(f, "call timed out after {after:?}"),
            CallError::DeadlineExceeded { budget } => {
                write!(f, "deadline exceeded (budget {budget:?})")
            }
            CallError::MissingKey { name } => {
                write!(f, "rate limiter `{name}` found no key in the request")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Inner(e) => e.source(),
            _ => None,
        }
    }
}

/// A configuration value broke a rule. Names the field, the value refused and the rule.
///
/// Every primitive's config is refused by the same rule: in full where it is used (at
/// spawn and at reconfiguration), and early where a builder builds it (`build()` runs the
/// same check); `validate()` on each config runs it on demand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`{}: {problem}", shown(value))]
#[non_exhaustive]
pub struct ConfigError {
    /// The configuration field at fault, as the builder spells it.
    pub field: &'static str,
    /// The value refused, as written in Rust (`Debug`), cut short when long; empty where
    /// the rule is about how two fields fit together rather than one value.
    pub value: String,
    /// The rule it broke.
    pub problem: String,
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" = {value}")
    }
}

impl ConfigError {
    /// A rule about how fields fit together (no one value to show).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            value: String::new(),
            problem: problem.into(),
        }
    }

    /// `value` of `field` broke `problem`.
    pub(crate) fn refused(
        field: &'static str,
        value: impl fmt::Debug,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            field,
            value: echo(&format!("{value:?}")),
            problem: problem.into(),
        }
    }
}

/// Why the runtime could not spawn a primitive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The name was empty.
    #[error("a {kind} name must not be empty")]
    EmptyName {
        /// What was being spawned.
        kind: Kind,
    },
    /// The name holds characters a registry name or a metric label should not.
    #[error("invalid {kind} name `{name}`: {problem}")]
    InvalidName {
        /// What was being spawned.
        kind: Kind,
        /// The name as given, cut to its first 64 bytes (with how many more there were)
        /// and its control characters escaped.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A primitive of that kind already runs under that name (in this process: ractor's
    /// registry is process-wide).
    #[error("a {kind} named `{name}` is already running")]
    NameTaken {
        /// What was being spawned.
        kind: Kind,
        /// The name as given.
        name: String,
    },
    /// The runtime was shut down.
    #[error("the runtime is shut down")]
    ShutDown,
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// ractor could not start the actor.
    #[error("the {kind} actor `{name}` failed to start: {reason}")]
    Actor {
        /// What was being spawned.
        kind: Kind,
        /// The name as given.
        name: String,
        /// ractor's reason.
        reason: String,
    },
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A runtime setting was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The root supervisor actor could not start.
    #[error("the root supervisor failed to start: {0}")]
    Supervisor(String),
    /// The config file was refused (feature `config`); nothing of it was spawned.
    #[cfg(feature = "config")]
    #[error(transparent)]
    ConfigFile(#[from] crate::config::ConfigFileError),
}

/// Why a control request (reconfigure, resize, manual state) to a running primitive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The primitive's actor is not running: restarting, degraded, or the runtime is shut down.
    #[error("the {kind} `{name}` has no running actor (restarting, degraded or shut down)")]
    Unavailable {
        /// The primitive's kind.
        kind: Kind,
        /// The primitive's name.
        name: Arc<str>,
    },
    /// The new configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The most bytes of untrusted input an error echoes.
pub(crate) const ECHO_LIMIT: usize = 64;

/// Untrusted input as an error may echo it: at most [`ECHO_LIMIT`] bytes (cut at a
/// character boundary, with how much was left out), control characters escaped, so a
/// 100 kB header or a name with a newline cannot flood or forge a log line.
pub(crate) fn echo(input: &str) -> String {
    let mut end = input.len().min(ECHO_LIMIT);
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = input[..end]
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if end < input.len() {
        out.push_str(&format!("... ({} more bytes)", input.len() - end));
    }
    out
}

/// A Redis URL with any password replaced by `***`: never shown in an error or a snapshot.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                // `redis://password@host`: the whole userinfo may be the password
                format!("{scheme}://***@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://app:s3cret@cache:6379/0"),
            "redis://app:***@cache:6379/0"
        );
        assert_eq!(redact_url("rediss://s3cret@cache"), "rediss://***@cache");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn echo_cuts_long_input_at_a_char_boundary_and_escapes_controls() {
        assert_eq!(echo("db"), "db");
        assert_eq!(echo("a\nb"), "a\\nb");
        let long = "é".repeat(50_000);
        let e = echo(&long);
        assert!(e.starts_with(&"é".repeat(32)), "{e}");
        assert!(e.ends_with("... (99936 more bytes)"), "{e}");
        assert!(e.len() < 100);
    }
}
