//! Supervision shown live: a breaker's actor is killed while the breaker is open; callers
//! keep getting answers, the supervisor restarts the actor over the same state, and the
//! restarted actor still moves the breaker to half-open on time.
//!
//! Run: `cargo run --example supervised_restart`

use std::time::{Duration, Instant};

use palisade::{BreakerConfig, Event, Runtime, SlidingWindow};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::start().await?;
    let mut events = rt.subscribe();
    let db = rt
        .breaker(
            "orders-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(3))
                .minimum_calls(3)
                .wait_in_open(Duration::from_millis(300))
                .build()?,
        )
        .await?;
    let start = Instant::now();
    for _ in 0..3 {
        let _ = db
            .execute(|| async { Err::<(), _>("timeout talking to orders-db") })
            .await;
    }
    println!(
        "{:>4} ms  breaker is {}",
        start.elapsed().as_millis(),
        db.state()
    );

    let actor =
        palisade::ractor::registry::where_is("palisade.breaker.orders-db").expect("running");
    println!(
        "{:>4} ms  killing actor {:?}",
        start.elapsed().as_millis(),
        actor.get_id()
    );
    actor.kill();
    let r = db.execute(|| async { Ok::<_, String>(()) }).await;
    println!(
        "{:>4} ms  a call during the restart is answered at once: {r:?}",
        start.elapsed().as_millis()
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match e {
            Event::ActorRestarted { cause, .. } => {
                let new = palisade::ractor::registry::where_is("palisade.breaker.orders-db")
                    .expect("registered again");
                println!(
                    "{:>4} ms  restarted ({cause}) as {:?}, state still {}",
                    start.elapsed().as_millis(),
                    new.get_id(),
                    db.state()
                );
            }
            Event::BreakerTransition {
                from, to, reason, ..
            } => {
                println!(
                    "{:>4} ms  {from} -> {to} ({})",
                    start.elapsed().as_millis(),
                    reason.as_str()
                );
                if to == palisade::BreakerState::HalfOpen {
                    break;
                }
            }
            _ => {}
        }
    }
    rt.shutdown().await;
    Ok(())
}
