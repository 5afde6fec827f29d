//! Instruction counts of the tower layers beside their peers (see benches/instructions.rs
//! for the method): runs `N` requests through one stack on a trivial `http` service.
//!
//! ```sh
//! cargo bench -p palisade-benches --bench layer_instructions --no-run
//! for n in 100000 1100000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/layer_instructions-* bulkhead $n
//! done   # (second total - first total) / 1,000,000 = instructions per request
//! ```
//!
//! Paths: `bare`, `bulkhead`, `bulkhead_backpressure`, `concurrency_limit` (tower), `keyed` (by peer IP),
//! `governor` (tower_governor), `limiter`, `limiter_headers`, `breaker`. Without arguments
//! (as `cargo bench` runs it) 1,000 requests of each.

use palisade::layer::{BreakerLayer, BulkheadLayer, KeyedLimiterLayer, LimiterLayer, PeerIp};
use tower_layer::Layer;

use support::http::{concurrency_limit, drive, governor, no_headers, Ok200, Primitives};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let which = args.next();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let rt = support::current_thread();
    rt.block_on(async move {
        let p = Primitives::spawn().await;
        let all = [
            "bare",
            "bulkhead",
            "bulkhead_backpressure",
            "concurrency_limit",
            "keyed",
            "governor",
            "limiter",
            "limiter_headers",
            "breaker",
        ];
        for path in all
            .into_iter()
            .filter(|p| which.as_deref().is_none_or(|w| w == *p))
        {
            match path {
                "bare" => drive(&mut Ok200, n).await,
                "bulkhead" => {
                    drive(&mut BulkheadLayer::new(&p.bulkhead).http().layer(Ok200), n).await
                }
                "bulkhead_backpressure" => {
                    let layer = BulkheadLayer::new(&p.bulkhead).http().backpressure(true);
                    drive(&mut layer.layer(Ok200), n).await
                }
                "concurrency_limit" => drive(&mut concurrency_limit(), n).await,
                "keyed" => {
                    let layer = KeyedLimiterLayer::new(&p.keyed, PeerIp).answer(no_headers());
                    drive(&mut layer.layer(Ok200), n).await
                }
                "governor" => drive(&mut governor(), n).await,
                "limiter" => {
                    drive(
                        &mut LimiterLayer::new(&p.limiter)
                            .answer(no_headers())
                            .layer(Ok200),
                        n,
                    )
                    .await
                }
                "limiter_headers" => {
                    drive(&mut LimiterLayer::new(&p.limiter).http().layer(Ok200), n).await
                }
                _ => drive(&mut BreakerLayer::new(&p.breaker).http().layer(Ok200), n).await,
            };
        }
        p.runtime.shutdown().await;
    });
}
