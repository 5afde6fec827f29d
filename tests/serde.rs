//! With the `serde` feature, the runtime's snapshot (every config and status) serializes:
//! durations as people write them, Redis URLs without their password.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use palisade::{BreakerConfig, BulkheadConfig, KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

#[tokio::test(start_paused = true)]
async fn the_snapshot_serializes_to_json() {
    let rt = Runtime::start().await.unwrap();
    let db = rt
        .breaker(
            "json-db",
            BreakerConfig::builder()
                .wait_in_open(Duration::from_millis(2500))
                .classifier(|_| palisade::ErrorClass::Failure)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    db.force_open().await;
    rt.limiter("json-api", LimiterConfig::gcra(Quota::per_second(10)))
        .await
        .unwrap();
    rt.keyed_limiter::<u32>(
        "json-users",
        KeyedLimiterConfig::new(LimiterConfig::sliding_window(5, Duration::from_secs(60))),
    )
    .await
    .unwrap();
    rt.bulkhead("json-pool", BulkheadConfig::default())
        .await
        .unwrap();
    let json = serde_json::to_value(rt.snapshot()).unwrap();
    let entries = json["primitives"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let db = &entries[0];
    assert_eq!(db["name"], "json-db");
    assert_eq!(db["kind"], "breaker");
    assert_eq!(db["config"]["kind"], "breaker");
    assert_eq!(db["config"]["config"]["wait_in_open"], "2500ms");
    assert!(
        db["config"]["config"].get("classifier").is_none(),
        "a closure is not data"
    );
    assert_eq!(db["status"]["status"]["state"], "forced_open");
    assert_eq!(db["degraded"], false);
    let api = &entries[2];
    assert_eq!(api["name"], "json-api");
    assert_eq!(api["config"]["config"]["kind"]["gcra"]["period"], "1s");
    assert_eq!(api["status"]["status"]["available"], 10);
    assert_eq!(api["status"]["status"]["retry_after"], "0s");
    let users = &entries[3];
    assert_eq!(users["status"]["kind"], "keyed_limiter");
    assert_eq!(users["status"]["status"]["max_keys"], 100_000);
    rt.shutdown().await;
}

#[test]
fn a_redis_password_never_reaches_the_json() {
    let config = LimiterConfig::gcra(Quota::per_second(10)).redis(palisade::RedisBackend::new(
        "redis://app:s3cret@cache:6379/0",
    ));
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    assert!(json.contains("redis://app:***@cache:6379/0"), "{json}");
}
