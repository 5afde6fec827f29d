//! The chaos soak engine, shared by tests/soak.rs (bounded for CI) and examples/soak.rs
//! (`--minutes N`): callers hammer one `Policy` (deadline, retry, breaker, limiter,
//! bulkhead, timeout) on a multi-thread runtime while a chaos task kills actors,
//! reconfigures every primitive, forces the breaker open and closed, and the callers
//! themselves cancel and panic calls. At the end, the invariants:
//!
//! - every bulkhead permit is back (nothing in flight, nobody waiting);
//! - the limiter never admitted more than its largest quota allows over the run;
//! - the callers' own tally, the metrics and the events agree exactly on the breaker's
//!   rejections (events count their `suppressed` folds; a lagging subscriber is told);
//! - no call outlived its deadline by more than a scheduling slack;
//! - no actor was left down, and a fresh call through every primitive succeeds.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade::ractor::registry::where_is;
use palisade::{
    Backoff, BreakerConfig, BulkheadConfig, CallError, Event, LimiterConfig, Policy, Quota, Retry,
    Runtime, SlidingWindow,
};

const DEADLINE: Duration = Duration::from_millis(150);
/// Scheduling slack on a loaded 2-core VM: a call may be seen to end this much after its
/// deadline (a hang would be seconds).
const SLACK: Duration = Duration::from_millis(500);
const CALLERS: u64 = 8;

/// How long a soak runs: a call budget per caller and a wall-clock cap, whichever ends first.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub calls_per_caller: u64,
    pub wall: Duration,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    circuit_open: AtomicU64,
    rate_limited: AtomicU64,
    bulkhead_full: AtomicU64,
    deadline: AtomicU64,
    timeout: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    admitted_by_limiter: AtomicU64,
    late: AtomicU64,
    worst_overrun_us: AtomicU64,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs one soak and checks every invariant, panicking with the broken one. Returns the
/// figures (also printed). Needs palisade's `test-util` (fault injection) and the only
/// Prometheus recorder of the process.
pub async fn soak(
    budget: Budget,
    handle: &palisade::telemetry::prometheus::PrometheusHandle,
) -> String {
    // The soak's own panics (calls that panic, injected actor panics) are expected: printing
    // each with a backtrace would stall a worker thread for milliseconds and show up as
    // calls overrunning their deadlines. Any other panic reports as usual.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or_default();
        if message != "a call panics" && !message.starts_with("injected panic") {
            report(info);
        }
    }));
    let rt = Runtime::builder()
        .max_restarts(100_000) // the chaos kills far more often than any real fault
        .event_capacity(4_096)
        .start()
        .await
        .expect("runtime");
    let mut events = rt.subscribe();
    let breaker_config = |threshold: f64| {
        BreakerConfig::builder()
            .sliding_window(SlidingWindow::Count(50))
            .minimum_calls(20)
            .failure_rate_threshold(threshold)
            .slow_call_duration(Duration::from_millis(40))
            .wait_in_open(Duration::from_millis(50))
            .half_open_permits(3)
            .build()
            .expect("breaker config")
    };
    // the largest quota the chaos ever sets: burst 40, 800 a second (about the callers'
    // pace, so the limiter binds at times)
    let quotas = [
        Quota::per_second(800).burst(40),
        Quota::per_second(400).burst(20),
    ];
    let bulkhead_config = |n: u32| {
        BulkheadConfig::builder()
            .max_concurrent(n)
            .max_wait(Duration::from_millis(5))
            .max_queue(8)
            .build()
            .expect("bulkhead config")
    };
    let breaker = rt
        .breaker("soak", breaker_config(50.0))
        .await
        .expect("breaker");
    let limiter = rt
        .limiter("soak", LimiterConfig::gcra(quotas[0]))
        .await
        .expect("limiter");
    let bulkhead = rt
        .bulkhead("soak", bulkhead_config(4))
        .await
        .expect("bulkhead");
    let policy = Policy::new()
        .deadline(DEADLINE)
        .retry(
            Retry::builder()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_millis(2)))
                .build()
                .expect("retry"),
        )
        .breaker(&breaker)
        .limiter(&limiter)
        .bulkhead(&bulkhead)
        .timeout(Duration::from_millis(60));

    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // the chaos
    let chaos = {
        let (rt, stop) = (rt.clone(), Arc::clone(&stop));
        let (breaker, limiter, bulkhead) = (breaker.clone(), limiter.clone(), bulkhead.clone());
        tokio::spawn(async move {
            let (mut seed, mut moves) = (0x9E37_79B9_7F4A_7C15u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                match xorshift(&mut seed) % 16 {
                    0 => {
                        for name in [
                            "palisade.breaker.soak",
                            "palisade.limiter.soak",
                            "palisade.bulkhead.soak",
                        ] {
                            if let Some(actor) = where_is(name) {
                                actor.kill();
                            }
                        }
                    }
                    1 => {
                        let _ = breaker.inject_fault(palisade::Fault::Panic);
                        let _ = bulkhead.inject_fault(palisade::Fault::Error);
                    }
                    2 => {
                        let t = if xorshift(&mut seed) & 1 == 0 {
                            50.0
                        } else {
                            80.0
                        };
                        let _ = breaker.reconfigure(breaker_config(t)).await;
                    }
                    3 => {
                        let q = quotas[(xorshift(&mut seed) % 2) as usize];
                        let _ = limiter.reconfigure(LimiterConfig::gcra(q)).await;
                    }
                    4 => {
                        let _ = bulkhead
                            .reconfigure(bulkhead_config(2 + (xorshift(&mut seed) % 5) as u32))
                            .await;
                    }
                    5 => breaker.force_open().await,
                    6..=8 => breaker.reset().await,
                    _ => {
                        let _ = rt.snapshot();
                    }
                }
                moves += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            moves
        })
    };

    // the callers
    let mut callers = Vec::new();
    for c in 0..CALLERS {
        let (policy, tally) = (policy.clone(), Arc::clone(&tally));
        callers.push(tokio::spawn(async move {
            let mut seed = 0x2545_F491_4F6C_DD1D ^ (c + 1);
            for _ in 0..budget.calls_per_caller {
                if start.elapsed() > budget.wall {
                    break;
                }
                let roll = xorshift(&mut seed) % 100;
                let work = Duration::from_micros(xorshift(&mut seed) % 3_000);
                let tally2 = Arc::clone(&tally);
                let call = {
                    let policy = policy.clone();
                    async move {
                        policy
                            .execute(|| {
                                tally2.admitted_by_limiter.fetch_add(1, Ordering::Relaxed);
                                async move {
                                    match roll {
                                        0..=71 => {
                                            tokio::time::sleep(work).await;
                                            Ok(())
                                        }
                                        72..=83 => Err("dependency error"),
                                        84..=88 => {
                                            // slow: past the per-attempt timeout
                                            tokio::time::sleep(Duration::from_millis(80)).await;
                                            Ok(())
                                        }
                                        89..=91 => panic!("a call panics"),
                                        _ => {
                                            tokio::time::sleep(Duration::from_millis(20)).await;
                                            Ok(())
                                        }
                                    }
                                }
                            })
                            .await
                    }
                };
                let began = Instant::now();
                // 92..: the caller gives up after 5 ms (a cancelled call)
                let outcome = if roll >= 92 {
                    tokio::time::timeout(Duration::from_millis(5), call)
                        .await
                        .ok()
                } else {
                    // a panicking call runs on its own task so the panic is caught
                    match tokio::spawn(call).await {
                        Ok(r) => Some(r),
                        Err(e) if e.is_panic() => {
                            tally.panicked.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    }
                };
                let took = began.elapsed();
                if took > DEADLINE + SLACK {
                    tally.late.fetch_add(1, Ordering::Relaxed);
                }
                let over = took.saturating_sub(DEADLINE).as_micros() as u64;
                tally.worst_overrun_us.fetch_max(over, Ordering::Relaxed);
                let counter = match outcome {
                    None => &tally.cancelled,
                    Some(Ok(())) => &tally.ok,
                    Some(Err(CallError::CircuitOpen { .. })) => &tally.circuit_open,
                    Some(Err(CallError::RateLimited { .. })) => &tally.rate_limited,
                    Some(Err(CallError::BulkheadFull { .. } | CallError::QueueFull { .. })) => {
                        &tally.bulkhead_full
                    }
                    Some(Err(CallError::DeadlineExceeded { .. })) => &tally.deadline,
                    Some(Err(CallError::Timeout { .. })) => &tally.timeout,
                    Some(Err(_)) => &tally.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                // callers pace themselves: a rejection is instant, and a caller spinning
                // on them would make the soak all rejections
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }));
    }
    for c in callers {
        c.await.expect("a caller task");
    }
    stop.store(true, Ordering::Relaxed);
    let moves = chaos.await.expect("chaos");
    let elapsed = start.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await; // actors restarted by now

    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let calls = t(&tally.ok)
        + t(&tally.failed)
        + t(&tally.circuit_open)
        + t(&tally.rate_limited)
        + t(&tally.bulkhead_full)
        + t(&tally.deadline)
        + t(&tally.timeout)
        + t(&tally.cancelled)
        + t(&tally.panicked);
    let figures = format!(
        "soak: {calls} calls in {elapsed:?}, {moves} chaos moves; ok {} failed {} circuit_open {} rate_limited {} bulkhead_full {} deadline {} timeout {} cancelled {} panicked {}; worst overrun past the deadline {} us, late {}",
        t(&tally.ok), t(&tally.failed), t(&tally.circuit_open), t(&tally.rate_limited), t(&tally.bulkhead_full),
        t(&tally.deadline), t(&tally.timeout), t(&tally.cancelled), t(&tally.panicked),
        t(&tally.worst_overrun_us), t(&tally.late),
    );
    println!("{figures}");
    assert!(
        calls >= CALLERS * 200.min(budget.calls_per_caller),
        "the soak ran ({calls} calls)"
    );
    assert!(moves > 50, "the chaos ran ({moves} moves)");

    // every permit back
    let b = bulkhead.status();
    assert_eq!((b.in_flight, b.waiting), (0, 0), "permits leaked: {b:?}");

    // never over the largest quota: burst + rate x time (the limiter is checked once per
    // attempt, before the call; `admitted_by_limiter` counts attempts that got past it)
    let bound = 40 + (800.0 * elapsed.as_secs_f64()).ceil() as u64;
    assert!(
        t(&tally.admitted_by_limiter) <= bound,
        "over quota: {} > {bound}",
        t(&tally.admitted_by_limiter)
    );

    // no call outlived its deadline by more than the slack
    assert_eq!(
        t(&tally.late),
        0,
        "calls ran past their deadline (worst {} us over)",
        t(&tally.worst_overrun_us)
    );

    // one more rejection after a quiet second: its event carries every rejection folded
    // since the last one, so the events can be summed exactly
    breaker.force_open().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let last = breaker.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(last, Err(CallError::CircuitOpen { .. })),
        "{last:?}"
    );

    // the runtime still serves through every primitive
    breaker.reset().await;
    let fresh = policy.execute(|| async { Ok::<_, ()>(7) }).await;
    assert_eq!(fresh.ok(), Some(7), "a fresh call after the chaos");
    assert!(rt.degraded().await.is_empty(), "no actor was left down");

    // events, metrics and the callers agree on the breaker's rejections. Rejections are
    // not retried, so each refused attempt ends its call: the callers saw each one once.
    let (mut seen, mut missed) = (0u64, 0u64);
    loop {
        match events.try_recv() {
            Ok(Event::CallRejected {
                kind: palisade::Kind::Breaker,
                suppressed,
                ..
            }) => seen += 1 + suppressed,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => missed += n,
            Err(_) => break,
        }
    }
    rt.shutdown().await; // flushes every tally into the metrics
    let scrape = handle.render();
    let metric = scrape
        .lines()
        .find(|l| {
            l.starts_with("palisade_calls_total{")
                && l.contains("name=\"soak\"")
                && l.contains("outcome=\"rejected\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let callers = t(&tally.circuit_open) + 1;
    let agreement = format!(
        "breaker rejections: callers {callers}, metric {metric}, events {seen} (lag notices for {missed} events); attempts past the limiter {} <= bound {bound}",
        t(&tally.admitted_by_limiter)
    );
    println!("{agreement}");
    assert_eq!(
        metric, callers,
        "the metric and the callers' tally disagree"
    );
    if missed == 0 {
        assert_eq!(
            seen, metric,
            "the events and the metric disagree, and no lag was reported"
        );
    }
    format!("{figures}\n{agreement}")
}
