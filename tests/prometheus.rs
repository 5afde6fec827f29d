//! A real Prometheus scrape over HTTP on 127.0.0.1. Its own test binary: the global
#![allow(clippy::unwrap_used)]
//! `metrics` recorder can be installed once per process.

use std::time::Duration;

use palisade::{
    BreakerConfig, BulkheadConfig, KeyedLimiterConfig, LimiterConfig, Quota, Runtime, SlidingWindow,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the exporter");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("send request");
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .expect("read response");
    assert!(
        body.starts_with("HTTP/1.1 200"),
        "status line: {}",
        body.lines().next().unwrap_or("")
    );
    body
}

fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palisade_series_are_scraped_over_http() {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address")
    };
    let handle = palisade::telemetry::prometheus::install(addr).expect("install exporter");

    let rt = Runtime::builder()
        .event_capacity(1)
        .start()
        .await
        .expect("runtime");
    let mut lagging = rt.subscribe();
    let db = rt
        .breaker(
            "scraped-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(4))
                .minimum_calls(4)
                .build()
                .expect("valid"),
        )
        .await
        .expect("spawn");
    let pool = rt
        .bulkhead(
            "scraped-pool",
            BulkheadConfig::builder()
                .max_concurrent(1)
                .build()
                .expect("valid"),
        )
        .await
        .expect("spawn");
    for _ in 0..4 {
        let _ = db.execute(|| async { Err::<(), _>("boom") }).await;
    }
    let _ = db.execute(|| async { Ok::<_, ()>(()) }).await; // rejected: open
    let held = pool.try_acquire().expect("permit");
    for _ in 0..9 {
        let _ = pool.execute(|| async { Ok::<_, ()>(()) }).await;
    }
    drop(held);
    // 1 transition (the lifecycle lane: kept) + 1 breaker rejection + 1 bulkhead rejection
    // (the other 8 folded into it) on the per-call lane, which holds 1: 1 lost.
    match lagging.recv().await {
        Err(RecvError::Lagged(n)) => assert_eq!(n, 1),
        other => panic!("expected lag, got {other:?}"),
    }
    assert!(matches!(
        lagging.recv().await,
        Ok(palisade::Event::BreakerTransition { .. })
    ));

    // The listener is a task; give it a moment to bind (bounded: 50 tries of 20 ms).
    let mut body = None;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            body = Some(scrape(addr).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut body = body.expect("the exporter never listened");
    // Breaker outcomes are tallied per thread and flushed by the breaker's actor (every
    // second): wait for the flush that carries them (bounded: 40 tries of 50 ms).
    for _ in 0..40 {
        if value(
            &body,
            r#"palisade_calls_total{name="scraped-db",outcome="rejected"}"#,
        ) == Some(1.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = scrape(addr).await;
    }
    assert_eq!(
        value(
            &body,
            r#"palisade_calls_total{name="scraped-db",outcome="failure"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &body,
            r#"palisade_calls_total{name="scraped-db",outcome="rejected"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&body, r#"palisade_breaker_state{name="scraped-db"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            r#"palisade_breaker_transitions_total{name="scraped-db",from="closed",to="open"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            r#"palisade_bulkhead_rejected_total{name="scraped-pool",reason="full"}"#
        ),
        Some(9.0)
    );
    assert_eq!(value(&body, "palisade_events_dropped_total"), Some(1.0));
    assert!(
        body.contains("# HELP palisade_calls_total"),
        "descriptions are registered"
    );
    assert!(handle.render().contains("palisade_bulkhead_in_flight"));

    // Rate-limit decisions are tallied per thread and flushed by the limiter's actor: every
    // second while it runs, and when it stops.
    let api = rt
        .limiter("scraped-api", LimiterConfig::gcra(Quota::per_hour(3)))
        .await
        .expect("spawn");
    let trial = rt
        .keyed_limiter::<u32>(
            "scraped-trial",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_hour(1)).shadow(true)),
        )
        .await
        .expect("spawn");
    let checks = |n: usize| {
        for _ in 0..n {
            let _ = api.check();
            let _ = trial.check(&7);
        }
    };
    checks(5); // api: 3 allowed, 2 denied; trial: 1 allowed, 4 shadow-denied
    let series = |decision: &str, name: &str| {
        format!(r#"palisade_rate_limit_total{{name="{name}",decision="{decision}"}}"#)
    };
    let mut flushed = None;
    for _ in 0..40 {
        let body = scrape(addr).await;
        // the series exist (at 0) from the spawn on; wait for the first flush
        if value(&body, &series("denied", "scraped-api")).is_some_and(|v| v > 0.0) {
            flushed = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = flushed.expect("the periodic flush never reached the exporter");
    assert_eq!(value(&body, &series("allowed", "scraped-api")), Some(3.0));
    assert_eq!(value(&body, &series("denied", "scraped-api")), Some(2.0));
    assert_eq!(value(&body, &series("allowed", "scraped-trial")), Some(1.0));
    assert_eq!(
        value(&body, &series("shadow_denied", "scraped-trial")),
        Some(4.0)
    );

    // The in-flight gauge is sampled by the bulkhead's actor (every second and at stop).
    let in_flight = r#"palisade_bulkhead_in_flight{name="scraped-pool"}"#;
    let held = pool.try_acquire().expect("permit");
    let mut sampled = None;
    for _ in 0..40 {
        sampled = value(&scrape(addr).await, in_flight);
        if sampled == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sampled, Some(1.0), "the held permit never showed");
    drop(held);

    checks(2);
    rt.shutdown().await;
    // no wait: stopping flushed what the second round counted, and sampled the gauge
    let body = scrape(addr).await;
    assert_eq!(value(&body, in_flight), Some(0.0));
    assert_eq!(value(&body, &series("denied", "scraped-api")), Some(4.0));
    assert_eq!(
        value(&body, &series("shadow_denied", "scraped-trial")),
        Some(6.0)
    );

    // A limiter whose actor was left down (degraded) flushes nothing while it runs on its
    // last state; shutting the runtime down flushes it.
    let lonely = Runtime::builder()
        .max_restarts(0)
        .start()
        .await
        .expect("runtime");
    let orphan = lonely
        .limiter("scraped-degraded", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .expect("spawn");
    palisade::ractor::registry::where_is("palisade.limiter.scraped-degraded")
        .expect("running")
        .kill();
    let mut left_down = false;
    for _ in 0..40 {
        if !lonely.degraded().await.is_empty() {
            left_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left_down, "the limiter's actor was never left down");
    for _ in 0..3 {
        let _ = orphan.check();
    }
    lonely.shutdown().await;
    let body = scrape(addr).await;
    assert_eq!(
        value(&body, &series("denied", "scraped-degraded")),
        Some(2.0)
    );

    keyed_breakers_keep_one_series_set_and_export_their_counts(addr).await;
    call_durations_are_exact_histogram_buckets(addr).await;
}

/// Call durations are a classic histogram: cumulative `_bucket{le}` counters, `_count`, and
/// `_sum` in seconds, each exact. The calls run on a runtime of their own with tokio's
/// clock paused (on another thread; the recorder is global); each moves the clock on by
/// exactly its duration (`advance`: a sleep would round up to the timer's millisecond), so
/// calls land on the bucket bounds themselves.
async fn call_durations_are_exact_histogram_buckets(addr: std::net::SocketAddr) {
    let millis = |ms: u64| Duration::from_millis(ms);
    // 0, 0 and 1 ms, 5 ms (on a bound: counted in it), 5 ms and 1 ns, 2 s, 20 s (+Inf only)
    let durations = [
        Duration::ZERO,
        Duration::ZERO,
        millis(1),
        millis(5),
        millis(5) + Duration::from_nanos(1),
        millis(2_000),
        millis(20_000),
    ];
    std::thread::spawn(move || {
        let paused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("paused runtime");
        paused.block_on(async {
            let rt = Runtime::start().await.expect("runtime");
            let db = rt
                .breaker("timed-db", BreakerConfig::default())
                .await
                .expect("spawn");
            for duration in durations {
                db.execute(|| async move {
                    tokio::time::advance(duration).await;
                    Ok::<_, ()>(())
                })
                .await
                .expect("closed");
            }
            rt.shutdown().await; // flushes the breaker's tallies

            // a runtime's own bounds: the bucket at 300 ms is exact
            let rt = Runtime::builder()
                .call_duration_buckets([millis(300), millis(2_000)])
                .start()
                .await
                .expect("runtime");
            let slo = rt
                .breaker("timed-slo", BreakerConfig::default())
                .await
                .expect("spawn");
            for duration in [
                millis(300),
                millis(300) + Duration::from_nanos(1),
                millis(3_000),
            ] {
                slo.execute(|| async move {
                    tokio::time::advance(duration).await;
                    Ok::<_, ()>(())
                })
                .await
                .expect("closed");
            }
            rt.shutdown().await;
        });
    })
    .join()
    .expect("the timed calls ran");

    let body = scrape(addr).await;
    let bucket = |le: &str| {
        value(
            &body,
            &format!(r#"palisade_call_duration_seconds_bucket{{name="timed-db",le="{le}"}}"#),
        )
    };
    let expected = [
        ("0.0005", 2.0),
        ("0.001", 3.0),
        ("0.0025", 3.0),
        ("0.005", 4.0),
        ("0.01", 5.0),
        ("0.025", 5.0),
        ("0.05", 5.0),
        ("0.1", 5.0),
        ("0.25", 5.0),
        ("0.5", 5.0),
        ("1", 5.0),
        ("2.5", 6.0),
        ("5", 6.0),
        ("10", 6.0),
        ("+Inf", 7.0),
    ];
    for (le, count) in expected {
        assert_eq!(bucket(le), Some(count), "le={le}:\n{body}");
    }
    assert_eq!(
        value(
            &body,
            r#"palisade_call_duration_seconds_count{name="timed-db"}"#
        ),
        Some(7.0)
    );
    let sum = value(
        &body,
        r#"palisade_call_duration_seconds_sum{name="timed-db"}"#,
    )
    .expect("the sum is exported");
    assert!(
        (sum - 22.011_000_001).abs() < 1e-9,
        "sum {sum}, expected 22.011000001"
    );
    for family in [
        "# TYPE palisade_call_duration_seconds_bucket counter",
        "# TYPE palisade_call_duration_seconds_count counter",
        "# TYPE palisade_call_duration_seconds_sum gauge",
    ] {
        assert!(body.contains(family), "{family} missing:\n{body}");
    }
    let slo = |le: &str| {
        value(
            &body,
            &format!(r#"palisade_call_duration_seconds_bucket{{name="timed-slo",le="{le}"}}"#),
        )
    };
    assert_eq!(
        (slo("0.3"), slo("2"), slo("+Inf"), slo("0.0005")),
        (Some(1.0), Some(2.0), Some(3.0), None),
        "{body}"
    );
    // the summary the exporter made of a `metrics` histogram is gone
    assert!(!body.contains("palisade_call_duration_seconds{"), "{body}");
}

/// The breakers of a keyed breaker record into one set of series labelled with the keyed
/// breaker's name: 3,000 authorities through a cap of 10 add no series per key (a recorder
/// never forgets one: a set per key grew it by 3.8 KiB per key ever seen), and their call
/// counts reach the scrape (per-key tallies had no actor to flush them: none ever did).
async fn keyed_breakers_keep_one_series_set_and_export_their_counts(addr: std::net::SocketAddr) {
    let rt = Runtime::start().await.expect("runtime");
    let keyed = rt
        .keyed_breaker::<u32>(
            "scraped-hosts",
            palisade::breaker::KeyedBreakerConfig::new(BreakerConfig::default())
                .max_keys(10)
                .idle_after(Duration::from_nanos(1)),
        )
        .expect("keyed breaker");
    for key in 0..3_000u32 {
        let outcome = keyed
            .get(&key)
            .execute(|| async move {
                if key % 3 == 0 {
                    Err(())
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(outcome.is_ok() == (key % 3 != 0), "key {key}");
    }
    rt.shutdown().await;
    let body = scrape(addr).await;
    let per_key: Vec<&str> = body
        .lines()
        .filter(|l| l.contains("name=\"scraped-hosts/"))
        .take(3)
        .collect();
    assert!(per_key.is_empty(), "series per key: {per_key:?}");
    let calls = |outcome: &str| {
        value(
            &body,
            &format!(r#"palisade_calls_total{{name="scraped-hosts",outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(calls("success"), Some(2_000.0));
    assert_eq!(calls("failure"), Some(1_000.0));
    assert_eq!(
        value(
            &body,
            r#"palisade_call_duration_seconds_count{name="scraped-hosts"}"#
        ),
        Some(3_000.0)
    );
}
