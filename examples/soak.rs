//! The chaos soak, as long as you like: callers hammer one `Policy` while a chaos task kills
//! actors, reconfigures every primitive and forces the breaker open and closed, and calls
//! panic and get cancelled; then every invariant is checked (tests/common/soak.rs lists
//! them; tests/soak.rs runs a bounded soak in CI).
//!
//! `cargo run --example soak -- --minutes 10` (default: 20 seconds). Needs palisade's
//! `test-util` feature (fault injection), which the workspace's tests turn on.

#[path = "../tests/common/soak.rs"]
mod soak;

use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let minutes: Option<u64> = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .and_then(|m| m.parse().ok());
    let wall = minutes.map_or(Duration::from_secs(20), |m| Duration::from_secs(m * 60));
    println!("soaking for {wall:?} (--minutes N to change)...");
    let handle = palisade::telemetry::prometheus::install_recorder()?;
    let budget = soak::Budget {
        calls_per_caller: u64::MAX,
        wall,
    };
    // a broken invariant panics inside, naming it
    soak::soak(budget, &handle).await;
    println!("every invariant held");
    Ok(())
}
