//! Errors keep what happened: each rejection its own variant with what the caller can act
//! on, and an inner error shown once in a chain. On paused time.
#![allow(clippy::unwrap_used)]

use std::error::Error as _;
use std::time::Duration;

use palisade::{BulkheadConfig, CallError, KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

#[tokio::test(start_paused = true)]
async fn a_full_queue_is_not_a_full_bulkhead() {
    let rt = Runtime::start().await.unwrap();
    let pool = rt
        .bulkhead(
            "err-queue",
            BulkheadConfig::builder()
                .max_concurrent(1)
                .max_wait(Duration::from_secs(1))
                .max_queue(1)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let _held = pool.try_acquire_owned().unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.execute(|| async { Ok::<_, ()>(()) }).await }
    });
    tokio::task::yield_now().await;
    let r = pool.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(
            r,
            Err(CallError::QueueFull {
                max_queue: 1,
                max_concurrent: 1,
                ..
            })
        ),
        "{r:?}"
    );
    let waited = waiter.await.unwrap();
    assert!(
        matches!(waited, Err(CallError::BulkheadFull { waited, .. }) if waited == Duration::from_secs(1)),
        "{waited:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_quota_is_not_a_spent_one() {
    let rt = Runtime::start().await.unwrap();
    let users = rt
        .keyed_limiter(
            "err-plans",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_second(1)))
                .quota_per_key(|k: &u32| Quota::per_second(*k)),
        )
        .await
        .unwrap();
    let r = users.execute(&0, || async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(
            r,
            Err(CallError::InvalidQuota {
                field: "quota.count",
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(r.unwrap_err().retry_after(), None, "waiting will not help");
    users
        .execute(&3, || async { Ok::<_, ()>(()) })
        .await
        .unwrap();
    rt.shutdown().await;
}

/// A chain of errors prints the inner error once: `CallError::Inner` shows the inner
/// error's words and hands on its source, rather than showing it and returning it too.
#[tokio::test(start_paused = true)]
async fn an_inner_error_is_shown_once_in_a_chain() {
    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Query(#[source] std::io::Error);

    let rt = Runtime::start().await.unwrap();
    let db = rt
        .breaker("err-chain", palisade::BreakerConfig::default())
        .await
        .unwrap();
    let e = db
        .execute(|| async { Err::<(), _>(Query(std::io::Error::other("connection reset"))) })
        .await
        .unwrap_err();
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    assert_eq!(chain, ["query failed", "connection reset"]);
    rt.shutdown().await;
}

/// Every primitive refuses a bad value the same way: a `ConfigError` naming the field and
/// showing the value refused.
#[tokio::test(start_paused = true)]
async fn every_config_error_names_the_field_and_the_value() {
    use palisade::{Backoff, BreakerConfig, ConfigError, Retry, RetryBudget, SpawnError};

    let rt = Runtime::start().await.unwrap();
    let spawn_error = |e: SpawnError| match e {
        SpawnError::Config(c) => c,
        other => panic!("{other:?}"),
    };
    let limiter = |config| {
        let rt = rt.clone();
        async move { spawn_error(rt.limiter("err-config", config).await.unwrap_err()) }
    };
    let cases: Vec<(ConfigError, &str, &str)> = vec![
        (
            BreakerConfig::builder()
                .failure_rate_threshold(150.0)
                .build()
                .unwrap_err(),
            "failure_rate_threshold",
            "150.0",
        ),
        (
            BreakerConfig::builder()
                .wait_in_open(Duration::ZERO)
                .build()
                .unwrap_err(),
            "wait_in_open",
            "0ns",
        ),
        (
            BulkheadConfig::builder()
                .max_concurrent(0)
                .build()
                .unwrap_err(),
            "max_concurrent",
            "0",
        ),
        (
            limiter(LimiterConfig::fixed_window(0, Duration::from_secs(1))).await,
            "limit",
            "0",
        ),
        (
            limiter(LimiterConfig::gcra(Quota::new(5, Duration::ZERO))).await,
            "quota.period",
            "0ns",
        ),
        (
            Retry::builder().max_attempts(0).build().unwrap_err(),
            "max_attempts",
            "0",
        ),
        (
            Backoff::exponential(Duration::from_millis(1))
                .factor(0.5)
                .validate()
                .unwrap_err(),
            "backoff.factor",
            "0.5",
        ),
        (
            RetryBudget::new(2.0, Duration::from_secs(10)).unwrap_err(),
            "budget.ratio",
            "2.0",
        ),
    ];
    for (e, field, value) in cases {
        assert_eq!((e.field, e.value.as_str()), (field, value), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("invalid `{field}` = {value}: ")),
            "{e}"
        );
    }
    rt.shutdown().await;
}
