//! Retry, backoff, deadlines, timeouts and the Policy pipeline, on paused time.
#![allow(clippy::unwrap_used)]

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade::policy::RetryInfo;
use palisade::{
    deadline, Backoff, BreakerConfig, BreakerState, CallError, Event, LimiterConfig, Policy, Quota,
    Retry, RetryBudget, Runtime, SlidingWindow,
};

const MS: Duration = Duration::from_millis(1);

fn constant(ms: u64) -> Backoff {
    Backoff::constant(MS * ms as u32)
}

type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, String>> + Send>>;

/// A service that fails `fails` times, then succeeds; counts its calls.
fn flaky(fails: u32) -> (Arc<AtomicU32>, impl FnMut() -> Call) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    (calls, move || {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            if n <= fails {
                Err(format!("failure {n}"))
            } else {
                Ok(n)
            }
        })
    })
}

#[tokio::test(start_paused = true)]
async fn retries_with_the_exact_backoff_sequence_until_success() {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d = Arc::clone(&delays);
    let retry = Retry::builder()
        .max_attempts(5)
        .backoff(Backoff::exponential(100 * MS))
        .on_retry(move |i: &RetryInfo| d.lock().unwrap().push(i.delay))
        .build()
        .unwrap();
    let (calls, f) = flaky(3);
    let start = tokio::time::Instant::now();
    assert_eq!(retry.execute(f).await.unwrap(), 4);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(*delays.lock().unwrap(), vec![100 * MS, 200 * MS, 400 * MS]);
    assert_eq!(start.elapsed(), 700 * MS);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_and_when_retry_if_says_no() {
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(constant(10))
        .build()
        .unwrap();
    let (calls, f) = flaky(10);
    let r = retry.execute(f).await;
    assert!(
        matches!(r, Err(CallError::Inner(ref e)) if e == "failure 3"),
        "{r:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let picky = Retry::builder()
        .max_attempts(5)
        .backoff(constant(10))
        .retry_if(|e: &String| !e.contains("failure 1"))
        .build()
        .unwrap();
    let (calls, f) = flaky(10);
    let start = tokio::time::Instant::now();
    assert!(picky.execute(f).await.is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "retry_if false stops at once"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_retry_loop_short_without_sleeping_past_it() {
    let retry = Retry::builder()
        .max_attempts(10)
        .backoff(constant(100))
        .build()
        .unwrap();
    let (calls, f) = flaky(100);
    let start = tokio::time::Instant::now();
    let r = deadline::within(250 * MS, retry.execute(f)).await;
    // attempts at 0, 100, 200; the next backoff would end at 300 > 250: stop at 200 with
    // the last error, without sleeping
    assert!(
        matches!(r, Ok(Err(CallError::Inner(ref e))) if e == "failure 3"),
        "{r:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), 200 * MS);
}

#[tokio::test(start_paused = true)]
async fn nested_deadlines_take_the_minimum_and_cross_a_boundary_as_a_header() {
    let seen = deadline::within(300 * MS, async {
        tokio::time::sleep(50 * MS).await;
        let inner = deadline::within(Duration::from_secs(5), async { deadline::remaining() })
            .await
            .unwrap();
        let shorter = deadline::within(100 * MS, async { deadline::remaining() })
            .await
            .unwrap();
        // "send" the budget as a header, and open a scope from it on the other side
        let header = deadline::header_value().unwrap();
        let grpc = deadline::grpc_header_value().unwrap();
        (inner, shorter, header, grpc)
    })
    .await
    .unwrap();
    assert_eq!(
        seen.0,
        Some(250 * MS),
        "an inner scope never extends the outer one"
    );
    assert_eq!(seen.1, Some(100 * MS), "but may shorten it");
    assert_eq!(seen.2, "250");
    let budget = deadline::parse_header(&seen.2).unwrap();
    assert_eq!(deadline::parse_grpc_timeout(&seen.3).unwrap(), budget);
    let on_the_other_side = deadline::within(budget, async { deadline::remaining() })
        .await
        .unwrap();
    assert_eq!(on_the_other_side, Some(250 * MS));
    assert!(deadline::parse_header("soon").is_err());
    assert_eq!(deadline::remaining(), None, "no deadline outside a scope");
}

#[tokio::test(start_paused = true)]
async fn spawned_tasks_keep_the_deadline_only_when_asked() {
    let (carried, plain) = deadline::within(100 * MS, async {
        let carried = deadline::spawn(async { deadline::remaining() })
            .await
            .unwrap()
            .unwrap();
        let plain = tokio::spawn(async { deadline::remaining() }).await.unwrap();
        (carried, plain)
    })
    .await
    .unwrap();
    assert_eq!((carried, plain), (Some(100 * MS), None));
    let task = deadline::within(100 * MS, async { Some(deadline::spawn(pending::<()>())) })
        .await
        .unwrap()
        .unwrap();
    let start = tokio::time::Instant::now();
    assert!(
        task.await.unwrap().is_err(),
        "the spawned task is cut at the deadline too"
    );
    assert_eq!(start.elapsed(), 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_once_spent_and_recovers() {
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(constant(1))
        .budget(
            RetryBudget::new(0.5, Duration::from_secs(10))
                .unwrap()
                .min_retries(0),
        )
        .build()
        .unwrap();
    // 4 calls of which the first succeeds at once: deposits 4, so 2 retries are allowed
    let (_, ok) = flaky(0);
    retry.execute(ok).await.unwrap();
    let mut retried = 0;
    for _ in 0..3 {
        let (calls, f) = flaky(100);
        let _ = retry.execute(f).await;
        retried += calls.load(Ordering::SeqCst) - 1;
    }
    assert_eq!(retried, 2, "0.5 × 4 calls");
    // after the window the spent retries are forgotten
    tokio::time::advance(Duration::from_secs(10)).await;
    let (calls, f) = flaky(100);
    let _ = retry.execute(f).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "1 call: 0.5 retries, none yet"
    );
    let (calls, f) = flaky(100);
    let _ = retry.execute(f).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "2 calls: 1 retry");
}

#[tokio::test(start_paused = true)]
async fn rate_limited_rejections_are_retried_after_retry_after_when_opted_in() {
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "pol-limited",
            LimiterConfig::gcra(Quota::per_second(10).burst(1)),
        )
        .await
        .unwrap();
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(constant(1))
        .retry_on_rate_limited(true)
        .build()
        .unwrap();
    let policy = Policy::new().retry(retry).limiter(&l);
    let start = tokio::time::Instant::now();
    policy
        .execute(|| async { Ok::<_, String>(()) })
        .await
        .unwrap();
    policy
        .execute(|| async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        100 * MS,
        "waited the limiter's retry_after, not the 1 ms backoff"
    );
    let strict = Policy::new().limiter(&l);
    let r = strict.execute(|| async { Ok::<_, String>(()) }).await;
    assert!(
        matches!(r, Err(CallError::RateLimited { .. })),
        "not retried by default"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_whole_policy_against_a_flaky_service() {
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let db = rt
        .breaker(
            "pol-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(4))
                .minimum_calls(4)
                .wait_in_open(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let api = rt
        .limiter("pol-api", LimiterConfig::gcra(Quota::per_second(1000)))
        .await
        .unwrap();
    let pool = rt
        .bulkhead(
            "pol-pool",
            palisade::BulkheadConfig::builder()
                .max_concurrent(4)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let retry = Retry::builder()
        .name("pol-retry")
        .max_attempts(10)
        .backoff(constant(10))
        .events(&rt)
        .build()
        .unwrap();
    let policy = Policy::new()
        .deadline(Duration::from_secs(2))
        .retry(retry)
        .breaker(&db)
        .limiter(&api)
        .bulkhead(&pool)
        .timeout(100 * MS);
    let (calls, f) = flaky(100);
    let r = policy.execute(f).await;
    // 4 failures open the breaker; the 5th attempt is rejected and CircuitOpen is not retried
    assert!(
        matches!(
            r,
            Err(CallError::CircuitOpen {
                retry_after: Some(_),
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(db.state(), BreakerState::Open);
    let order: Vec<String> = common::drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            Event::RetryAttempt { attempt, .. } => Some(format!("retry {attempt}")),
            Event::BreakerTransition { to, .. } => Some(format!("breaker {to}")),
            Event::CallRejected { .. } => Some("rejected".into()),
            Event::RetryExhausted { cause, .. } => Some(format!("gave up: {cause}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "retry 1",
            "retry 2",
            "retry 3",
            "breaker open",
            "retry 4",
            "rejected",
            "gave up: not_retryable"
        ]
    );
    assert_eq!(pool.status().in_flight, 0);

    // a slow service: each attempt times out (a breaker failure), the deadline ends it all
    db.reset().await;
    let slow = Policy::new()
        .deadline(250 * MS)
        .retry(
            Retry::builder()
                .max_attempts(10)
                .backoff(constant(10))
                .build()
                .unwrap(),
        )
        .breaker(&db)
        .timeout(100 * MS);
    let start = tokio::time::Instant::now();
    let r = slow
        .execute(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, String>(())
        })
        .await;
    // attempts time out at 100 and 210 (10 ms backoffs between); the third starts at 220 and
    // the deadline cuts it at 250
    assert!(
        matches!(r, Err(CallError::DeadlineExceeded { budget }) if budget == 250 * MS),
        "{r:?}"
    );
    assert_eq!(start.elapsed(), 250 * MS);
    assert_eq!(
        db.metrics().failed,
        2,
        "timeouts count as failures; the cancelled attempt does not"
    );
    let fallback = slow
        .execute_with_fallback(|| async { Err::<u32, _>("down".to_string()) }, |_| Ok(42))
        .await;
    assert_eq!(fallback.unwrap(), 42);
    rt.shutdown().await;
}

#[test]
fn bad_retry_settings_are_refused_by_name() {
    assert_eq!(
        Retry::builder().max_attempts(0).build().unwrap_err().field,
        "max_attempts"
    );
    assert_eq!(
        Retry::builder()
            .backoff(Backoff::constant(Duration::ZERO))
            .build()
            .unwrap_err()
            .field,
        "backoff.base"
    );
    assert_eq!(
        RetryBudget::new(0.0, Duration::from_secs(1))
            .unwrap_err()
            .field,
        "budget.ratio"
    );
    assert_eq!(
        RetryBudget::new(1.5, Duration::from_secs(1))
            .unwrap_err()
            .field,
        "budget.ratio"
    );
    assert_eq!(
        RetryBudget::new(0.5, Duration::ZERO).unwrap_err().field,
        "budget.window"
    );
}

/// A per-attempt timeout that cuts a call which the breaker already counted slow while it
/// ran still counts the attempt as failed (the Policy's promise), and a deadline that cuts
/// a call past `slow_call_duration` counts it slow, so a dependency that hangs trips the
/// breaker even for callers with short deadlines.
#[tokio::test(start_paused = true)]
async fn timeouts_and_deadlines_that_cut_slow_calls_reach_the_breaker() {
    let rt = Runtime::start().await.unwrap();
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(10))
        .minimum_calls(10)
        .slow_call_duration(100 * MS)
        .build()
        .unwrap();
    let db = rt.breaker("pol-cut", config).await.unwrap();
    let timed = Policy::new().breaker(&db).timeout(300 * MS);
    let r = timed.execute(pending::<Result<(), ()>>).await;
    assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    let m = db.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (1, 1, 1), "{m:?}");

    let cut = Policy::new().breaker(&db).deadline(105 * MS);
    let r = cut.execute(pending::<Result<(), ()>>).await;
    assert!(
        matches!(r, Err(CallError::DeadlineExceeded { .. })),
        "{r:?}"
    );
    let m = db.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (2, 1, 2), "{m:?}");

    let quick = Policy::new().breaker(&db).deadline(50 * MS);
    let r = quick.execute(pending::<Result<(), ()>>).await;
    assert!(
        matches!(r, Err(CallError::DeadlineExceeded { .. })),
        "{r:?}"
    );
    assert_eq!(db.metrics().calls, 2, "cut before it was slow: not counted");
    rt.shutdown().await;
}

/// What a call reads of its deadline, and sends downstream as a header, is never more than
/// its attempt's timeout leaves: downstream was told ~600 ms while the attempt was cut at
/// 300 ms.
#[tokio::test(start_paused = true)]
async fn the_deadline_a_call_sees_is_never_later_than_its_timeout() {
    let policy = Policy::new().deadline(600 * MS).timeout(300 * MS);
    let seen = policy
        .execute(|| async { Ok::<_, ()>((deadline::header_value(), deadline::remaining())) })
        .await
        .unwrap();
    assert_eq!(seen, (Some("300".to_string()), Some(300 * MS)));
    // the deadline wins where it is the earlier
    let policy = Policy::new().deadline(200 * MS).timeout(300 * MS);
    let seen = policy
        .execute(|| async { Ok::<_, ()>(deadline::grpc_header_value()) })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some("200000u"));
    // a timeout alone is a deadline to the call, and the cut is still a timeout
    let alone = Policy::new().timeout(250 * MS);
    let seen = alone
        .execute(|| async { Ok::<_, ()>(deadline::header_value()) })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some("250"));
    let r = alone.execute(pending::<Result<(), ()>>).await;
    assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    let standalone = palisade::policy::timeout(100 * MS, async {
        Ok::<_, CallError<()>>(deadline::header_value())
    })
    .await
    .unwrap();
    assert_eq!(standalone.as_deref(), Some("100"));
}

/// A budget already spent makes no call at all: no request goes downstream carrying
/// `x-deadline-remaining: 0`.
#[tokio::test(start_paused = true)]
async fn a_spent_budget_makes_no_call() {
    let calls = AtomicU32::new(0);
    let call = || {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, ()>(()) }
    };
    let r = Policy::new().deadline(Duration::ZERO).execute(call).await;
    assert!(
        matches!(r, Err(CallError::DeadlineExceeded { .. })),
        "{r:?}"
    );
    let r = deadline::within(Duration::ZERO, async {
        calls.fetch_add(1, Ordering::SeqCst);
    })
    .await;
    assert!(r.is_err());
    // an outer scope spent while the task slept: the Policy inside makes no call either
    let nested = deadline::within(100 * MS, async {
        tokio::time::sleep(100 * MS).await;
        Policy::new()
            .deadline(SEC_10)
            .execute(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, ()>(()) }
            })
            .await
    })
    .await;
    assert!(
        matches!(nested, Ok(Err(CallError::DeadlineExceeded { .. }))),
        "{nested:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

const SEC_10: Duration = Duration::from_secs(10);

/// A hostile deadline header is refused with an error that echoes only the start of it.
#[test]
fn a_huge_deadline_header_is_echoed_cut_short() {
    let huge = "9".repeat(100_000);
    for e in [
        deadline::parse_header(&huge).expect_err("too large"),
        deadline::parse_grpc_timeout(&huge).expect_err("too many digits"),
    ] {
        assert!(e.value.len() < 100, "{} bytes", e.value.len());
        assert!(e.to_string().len() < 250, "{}", e);
        assert!(e.value.ends_with("... (99936 more bytes)"), "{}", e.value);
    }
}

/// A Policy spends one unit of the bound key's quota per attempt: retries spend more, and
/// other keys keep theirs.
#[tokio::test(start_paused = true)]
async fn a_policy_spends_a_keyed_limiter_per_attempt_for_the_key_it_is_given() {
    let rt = Runtime::start().await.unwrap();
    let users = rt
        .keyed_limiter::<String>("pol-keyed", LimiterConfig::gcra(Quota::per_hour(3)))
        .await
        .unwrap();
    let shared = Policy::new().retry(
        Retry::builder()
            .max_attempts(2)
            .backoff(constant(1))
            .build()
            .unwrap(),
    );
    let (calls, f) = flaky(1);
    let ann = shared.clone().keyed_limiter(&users, "ann".to_string());
    assert_eq!(
        ann.execute(f).await.unwrap(),
        2,
        "failed once, then ran again"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(users.status_of(&"ann".to_string()).available, Some(1));
    assert_eq!(users.status_of(&"bob".to_string()).available, Some(3));
    ann.execute(|| async { Ok::<_, ()>(()) }).await.unwrap();
    let r = ann.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(matches!(r, Err(CallError::RateLimited { .. })), "{r:?}");
    rt.shutdown().await;
}
