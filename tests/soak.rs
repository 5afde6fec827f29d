//! The chaos soak, bounded for CI (at most 8 x 2,500 calls or 40 s; about 7 s here): the
//! engine and its invariants are in tests/common/soak.rs; `cargo run --example soak --
//! --minutes N` runs it longer.

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_keeps_every_invariant() {
    let handle = palisade::telemetry::prometheus::install_recorder().expect("recorder");
    let budget = common::soak::Budget {
        calls_per_caller: 2_500,
        wall: Duration::from_secs(40),
    };
    let figures = common::soak::soak(budget, &handle).await;
    assert!(figures.contains("breaker rejections"), "{figures}");
}
