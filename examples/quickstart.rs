//! palisade in one run: a runtime with a breaker, a per-user limiter, a bulkhead and a retry
//! policy around a simulated flaky, slow dependency; the event stream printed as it happens;
//! a supervised restart; and a Prometheus scrape of the run's own metrics at the end.
//!
//! Run: `cargo run --example quickstart`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade::{
    Backoff, BreakerConfig, BulkheadConfig, CallError, Event, KeyedLimiterConfig, LimiterConfig,
    Policy, Quota, Retry, Runtime, SlidingWindow,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The dependency: healthy, then down for a while, then healthy again.
async fn inventory(call: u32) -> Result<&'static str, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    match call {
        12..=17 => Err(format!("connection refused (call {call})")),
        _ => Ok("42 in stock"),
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::BreakerTransition {
            name,
            from,
            to,
            reason,
        } => {
            format!("breaker `{name}`: {from} -> {to} ({})", reason.as_str())
        }
        Event::CallRejected {
            name,
            kind,
            reason,
            retry_after,
            ..
        } => {
            format!(
                "{kind} `{name}` rejected a call ({}), retry after {retry_after:?}",
                reason.as_str()
            )
        }
        Event::RetryAttempt {
            name,
            attempt,
            delay,
            error,
        } => {
            format!("retry `{name}`: attempt {attempt} failed ({error}); next in {delay:?}")
        }
        Event::RetryExhausted {
            name,
            attempts,
            cause,
        } => format!("retry `{name}` gave up after {attempts} ({cause})"),
        Event::ActorRestarted {
            name, kind, cause, ..
        } => format!("{kind} `{name}` actor restarted after: {cause}"),
        Event::ActorDegraded {
            name,
            kind,
            restarts,
            ..
        } => {
            format!("{kind} `{name}` actor left down after {restarts} exits (degraded; its handle still works)")
        }
        Event::Reconfigured { name, kind, change } => {
            format!("{kind} `{name}` reconfigured: {change}")
        }
        other => format!("{other:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Metrics first: handles are cached when primitives are spawned.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    palisade::telemetry::prometheus::install(addr)?;

    let rt = Runtime::builder()
        .max_restarts(1)
        .restart_window(Duration::from_secs(60))
        .start()
        .await?;
    let mut events = rt.subscribe();
    let printer = tokio::spawn(async move {
        // Rejections come in runs; show the first two of each run and count the rest.
        let mut run = 0u32;
        while let Ok(e) = events.recv().await {
            // A fast rejection and the retry giving up on it come as a pair: one "run".
            if matches!(
                e,
                Event::CallRejected { .. }
                    | Event::RetryExhausted {
                        cause: "not_retryable",
                        ..
                    }
            ) {
                run += 1;
                if run > 2 {
                    continue;
                }
            } else {
                if run > 2 {
                    println!("  event  | ... and {} more like these", run - 2);
                }
                run = 0;
            }
            println!("  event  | {}", describe(&e));
        }
    });

    let db = rt
        .breaker(
            "inventory",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(10))
                .minimum_calls(5)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_millis(150))
                .half_open_permits(2)
                .build()?,
        )
        .await?;
    let pool = rt
        .bulkhead(
            "inventory-pool",
            BulkheadConfig::builder().max_concurrent(4).build()?,
        )
        .await?;
    let plans = KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_second(5))).quota_per_key(
        |user: &String| {
            if user.starts_with("pro:") {
                Quota::per_second(50)
            } else {
                Quota::per_second(5).burst(3)
            }
        },
    );
    let users = rt.keyed_limiter("per-user", plans).await?;
    let retry = Retry::builder()
        .name("inventory-retry")
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(5)))
        .events(&rt)
        .build()?;
    let policy = Policy::new()
        .deadline(Duration::from_millis(500))
        .retry(retry)
        .breaker(&db)
        .bulkhead(&pool)
        .timeout(Duration::from_millis(100));

    println!("== 1. requests through a policy (deadline, retry, breaker, bulkhead, timeout); the dependency fails from call 12");
    let calls = Arc::new(AtomicU32::new(0));
    let (mut ok, mut open) = (0, 0);
    for _ in 0..40 {
        let r = policy
            .execute(|| {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                inventory(n)
            })
            .await;
        match r {
            Ok(_) => ok += 1,
            Err(CallError::CircuitOpen { .. }) => open += 1,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    println!("  total  | {ok} answered, {open} rejected fast by the open breaker, {} calls reached the dependency", calls.load(Ordering::Relaxed));

    tokio::time::sleep(Duration::from_millis(10)).await; // let the printer catch up
    println!("== 2. per-user limits: a free user (3 burst, 5/s) and a pro user (50/s) each send 8 requests at once");
    for user in ["free:ann", "pro:bob"] {
        let admitted = (0..8)
            .filter(|_| users.check(&user.to_string()).is_ok())
            .count();
        println!("  limit  | {user}: {admitted} of 8 admitted");
    }

    tokio::time::sleep(Duration::from_millis(10)).await; // let the printer catch up
    println!("== 3. a burst of 10 slow calls against a bulkhead of 4");
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.execute(|| async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok::<_, String>(())
                })
                .await
            })
        })
        .collect();
    let mut full = 0;
    for task in burst {
        if matches!(task.await?, Err(CallError::BulkheadFull { .. })) {
            full += 1;
        }
    }
    println!("  total  | {full} of 10 turned away; then the pool grows to 8 through its actor");
    pool.resize(8).await?;

    tokio::time::sleep(Duration::from_millis(10)).await; // let the printer catch up
    println!("== 4. supervision: the breaker's actor is killed once, the limiter's twice (max 1 restart a minute)");
    for name in [
        "palisade.breaker.inventory",
        "palisade.limiter.per-user",
        "palisade.limiter.per-user",
    ] {
        if let Some(actor) = palisade::ractor::registry::where_is(name) {
            actor.kill();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let admitted = (0..3)
        .filter(|_| users.check(&"free:cy".to_string()).is_ok())
        .count();
    println!("  state  | breaker is {}; the degraded limiter still answers: {admitted} of 3 admitted for a new user", db.state());

    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::time::sleep(Duration::from_millis(10)).await; // let the printer catch up
    println!("== 5. what Prometheus sees (GET http://{addr}/metrics), palisade series only");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    for line in body
        .lines()
        .filter(|l| l.starts_with("palisade_") && !l.contains("quantile") && !l.ends_with(" 0"))
    {
        println!("  scrape | {line}");
    }

    rt.shutdown().await;
    printer.abort();
    Ok(())
}
