//! The live dashboard over a simulated workload: a dependency that is healthy, then fails
//! and slows down, then recovers, called through a breaker, a limiter, a keyed limiter and a
//! bulkhead. Open the printed URL to watch the breaker open, probe and close.
//!
//! `cargo run --example dashboard` (stops by itself after 20 s; `-- --seconds 600` to
//! watch longer, `-- --port 9464` for a fixed port; it binds 127.0.0.1 only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade::admin::Admin;
use palisade::{
    BreakerConfig, BulkheadConfig, LimiterConfig, Policy, Quota, Runtime, SlidingWindow,
};

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The dependency's health by phase: (failure share in percent, extra latency).
fn dependency(elapsed: Duration) -> (u64, Duration) {
    match elapsed.as_secs() % 30 {
        0..=7 => (2, Duration::from_millis(5)),    // healthy
        8..=15 => (85, Duration::from_millis(60)), // outage: failing and slow
        _ => (2, Duration::from_millis(5)),        // recovered
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = flag("--seconds", 20);
    let port = flag("--port", 0);
    let rt = Runtime::start().await?;
    let db = rt
        .breaker(
            "inventory-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(40))
                .minimum_calls(20)
                .failure_rate_threshold(50.0)
                .slow_call_duration(Duration::from_millis(50))
                .slow_call_rate_threshold(80.0)
                .wait_in_open(Duration::from_secs(2))
                .half_open_permits(4)
                .build()?,
        )
        .await?;
    let api = rt
        .limiter(
            "public-api",
            LimiterConfig::gcra(Quota::per_second(150).burst(30)),
        )
        .await?;
    let users = rt
        .keyed_limiter::<String>(
            "per-user",
            LimiterConfig::gcra(Quota::per_second(8).burst(8)),
        )
        .await?;
    let pool = rt
        .bulkhead(
            "checkout",
            BulkheadConfig::builder()
                .max_concurrent(6)
                .max_wait(Duration::from_millis(20))
                .max_queue(12)
                .build()?,
        )
        .await?;
    let policy = Policy::new()
        .breaker(&db)
        .limiter(&api)
        .bulkhead(&pool)
        .timeout(Duration::from_millis(200));

    let server = Admin::new(&rt)
        .address(([127, 0, 0, 1], u16::try_from(port)?).into())
        .snapshot_every(Duration::from_millis(500))
        .serve()
        .await?;
    println!(
        "dashboard: http://{}/  (running {seconds} s; --seconds N to run longer)",
        server.local_addr()
    );

    let start = Instant::now();
    let (ok, failed, rejected) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut workers = Vec::new();
    for worker in 0..8u64 {
        let (policy, users) = (policy.clone(), users.clone());
        let (ok, failed, rejected) = (ok.clone(), failed.clone(), rejected.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while start.elapsed() < Duration::from_secs(seconds) {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let user = format!("user-{}", (n >> 33) % 40);
                if users.check(&user).is_err() {
                    rejected.fetch_add(1, Ordering::Relaxed);
                } else {
                    let (fail_pct, latency) = dependency(start.elapsed());
                    let fails = (n >> 40) % 100 < fail_pct;
                    let r = policy
                        .execute(|| async move {
                            tokio::time::sleep(latency).await;
                            if fails {
                                Err("dependency error")
                            } else {
                                Ok(())
                            }
                        })
                        .await;
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.is_rejection() => rejected.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let (fail_pct, _) = dependency(start.elapsed());
        let b = db.status();
        println!(
            "{:>3}s  dependency failing {fail_pct:>2}%  breaker {:<10} failure rate {:>5.1}%  ok {:>5}  failed {:>4}  rejected {:>5}  in flight {}",
            start.elapsed().as_secs(),
            b.state.as_str(),
            b.failure_rate,
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            rejected.load(Ordering::Relaxed),
            pool.status().in_flight,
        );
    }
    for w in workers {
        w.await?;
    }
    server.stop().await;
    rt.shutdown().await;
    println!("done: the breaker opened during the outage and closed after it (see the dashboard's event feed)");
    Ok(())
}
