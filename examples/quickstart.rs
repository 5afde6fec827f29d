//! palisade in one minute: a runtime, a breaker and a bulkhead around a flaky, slow
//! dependency, the event stream printed as it happens, and a Prometheus scrape at the end.
//!
//! Run: `cargo run --example quickstart`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade::{BreakerConfig, BulkheadConfig, CallError, Event, Runtime, SlidingWindow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The dependency: healthy, then down for a while, then slow, then healthy again.
async fn dependency(call: u32) -> Result<&'static str, String> {
    match call {
        20..=39 => Err(format!("connection refused (call {call})")),
        40..=44 => {
            tokio::time::sleep(Duration::from_millis(120)).await;
            Ok("slow answer")
        }
        _ => {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok("answer")
        }
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
        Event::ActorRestarted {
            name, kind, cause, ..
        } => format!("{kind} `{name}` actor restarted after: {cause}"),
        other => format!("{other:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Metrics first: handles are cached when primitives are spawned.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    palisade::telemetry::prometheus::install(addr)?;

    let rt = Runtime::start().await?;
    let db = rt
        .breaker(
            "db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(10))
                .minimum_calls(5)
                .failure_rate_threshold(50.0)
                .slow_call_duration(Duration::from_millis(100))
                .slow_call_rate_threshold(60.0)
                .wait_in_open(Duration::from_millis(300))
                .half_open_permits(3)
                .build()?,
        )
        .await?;
    let pool = rt
        .bulkhead(
            "db-pool",
            BulkheadConfig::builder().max_concurrent(4).build()?,
        )
        .await?;

    // Print every event as it happens, from another task.
    let mut events = rt.subscribe();
    let printer = tokio::spawn(async move {
        // Rejections come in runs; show the first two of each run and count the rest.
        let mut run = 0u32;
        while let Ok(e) = events.recv().await {
            if matches!(e, Event::CallRejected { .. }) {
                run += 1;
                if run > 2 {
                    continue;
                }
            } else {
                if run > 2 {
                    println!("  event  | ... and {} more rejections", run - 2);
                }
                run = 0;
            }
            println!("  event  | {}", describe(&e));
        }
    });

    println!("== 1. traffic through a bulkhead and a breaker; the dependency fails from call 20");
    let calls = Arc::new(AtomicU32::new(0));
    let mut rejected_open = 0;
    for _ in 0..70 {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        let r = pool.execute(|| db.execute(|| dependency(n))).await;
        match r {
            Ok(_) => {}
            Err(CallError::Inner(CallError::CircuitOpen { .. })) => rejected_open += 1,
            Err(CallError::Inner(CallError::Inner(e))) if n % 5 == 0 => {
                println!("  call   | {n}: {e}")
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  ...    | {rejected_open} calls were rejected fast while the breaker was open");

    println!("== 2. a burst of 12 concurrent slow calls against a bulkhead of 4");
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.execute(|| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
    println!("  ...    | {full} of 12 were turned away by the bulkhead");

    println!("== 3. the breaker's actor is killed; the supervisor brings it back");
    if let Some(actor) = palisade::ractor::registry::where_is("palisade.breaker.db") {
        actor.kill();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = db.metrics();
    println!(
        "  state  | breaker `db` is {} (failure rate {:.0} %, slow-call rate {:.0} %, {} rejected in all)",
        m.state, m.failure_rate, m.slow_call_rate, m.not_permitted
    );

    println!("== 4. what Prometheus sees (GET http://{addr}/metrics)");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    for line in body
        .lines()
        .filter(|l| l.starts_with("palisade_") && !l.contains("_bucket"))
    {
        println!("  scrape | {line}");
    }

    rt.shutdown().await;
    printer.abort();
    Ok(())
}
