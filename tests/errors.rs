//! Errors keep what happened: each rejection its own variant with what the caller can act
//! on, and an inner error shown once in a chain. On paused time.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "test-util")]

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
