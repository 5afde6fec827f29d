//! The tower layers against their peers in interleaved rounds (the method of
//! benches/limiter_rounds.rs): each round drives `REQUESTS` requests through the bare
//! service, palisade's stack, the peer's, the peer's again, palisade's again and the bare
//! service again (ABBA: a drift of the machine's speed within a round weighs on both
//! sides alike), on one thread. Per case: the median overhead over the bare service of each
//! side (ns per request), the ratio of the medians, the median of the rounds' own ratios
//! (*paired*), and the share of rounds palisade won.
//!
//! `cargo bench -p palisade-benches --bench layer_rounds` (optionally a case-name filter)

use std::hint::black_box;
use std::time::Instant;

use palisade::layer::{BreakerLayer, BulkheadLayer, KeyedLimiterLayer, LimiterLayer, PeerIp};
use tower_layer::Layer;

use support::http::{
    concurrency_limit, drive, governor, no_headers, resilience_breaker, resilience_limiter, Ok200,
    Primitives, Stack,
};

const ROUNDS: usize = 21;
const REQUESTS: u64 = 200_000;

/// Nanoseconds per request over one round.
async fn round(svc: &mut impl Stack) -> f64 {
    drive(svc, REQUESTS).await.as_nanos() as f64 / REQUESTS as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn case(name: &str, filter: &str, mut ours: impl Stack, mut theirs: impl Stack) {
    if !name.contains(filter) {
        return;
    }
    let mut bare = Ok200;
    let (mut a, mut b, mut paired, mut wins) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        // ABBA around the bare service: a drift of the machine's speed within the round
        // weighs on both sides alike
        let base1 = round(&mut bare).await;
        let x1 = round(&mut ours).await;
        let y1 = round(&mut theirs).await;
        let y2 = round(&mut theirs).await;
        let x2 = round(&mut ours).await;
        let base2 = round(&mut bare).await;
        let base = (base1 + base2) / 2.0;
        let (x, y) = ((x1 + x2) / 2.0 - base, (y1 + y2) / 2.0 - base);
        if x < y {
            wins += 1;
        }
        a.push(x);
        b.push(y);
        paired.push(x / y);
    }
    let (x, y, r) = (median(&mut a), median(&mut b), median(&mut paired));
    println!(
        "{name:<40} palisade {x:>7.1} ns  peer {y:>7.1} ns  ratio {:.2}  paired {r:.2}  won {wins}/{ROUNDS}",
        x / y
    );
}

fn main() {
    let filter = support::rounds::filter();
    let rt = support::current_thread();
    rt.block_on(async move {
        let p = Primitives::spawn().await;
        let f = filter.as_str();
        let bulkhead = BulkheadLayer::new(&p.bulkhead);
        case(
            "bulkhead vs tower ConcurrencyLimit",
            f,
            bulkhead.clone().http().layer(Ok200),
            concurrency_limit(),
        )
        .await;
        case(
            "bulkhead (typed answer) vs tower ConcurrencyLimit",
            f,
            bulkhead.clone().layer(Ok200),
            concurrency_limit(),
        )
        .await;
        case(
            "bulkhead (backpressure) vs tower ConcurrencyLimit",
            f,
            bulkhead.http().backpressure(true).layer(Ok200),
            concurrency_limit(),
        )
        .await;
        if "permit".contains(f) || f.is_empty() {
            // the owned permits alone: take and give back, no service around them
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(p.bulkhead.try_acquire_owned().is_ok());
                }
                a.push(t.elapsed().as_nanos() as f64 / REQUESTS as f64);
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(std::sync::Arc::clone(&sem).try_acquire_owned().is_ok());
                }
                b.push(t.elapsed().as_nanos() as f64 / REQUESTS as f64);
            }
            let (x, y) = (median(&mut a), median(&mut b));
            println!(
                "{:<40} palisade {x:>7.1} ns  peer {y:>7.1} ns  ratio {:.2}",
                "owned permit vs tokio OwnedSemaphorePermit",
                x / y
            );
        }
        let keyed = KeyedLimiterLayer::new(&p.keyed, PeerIp).answer(no_headers());
        case(
            "keyed by peer IP vs tower_governor",
            f,
            keyed.layer(Ok200),
            governor(),
        )
        .await;
        let limiter = LimiterLayer::new(&p.limiter).answer(no_headers());
        case(
            "limiter vs tower-resilience",
            f,
            limiter.layer(Ok200),
            resilience_limiter(),
        )
        .await;
        let breaker = BreakerLayer::new(&p.breaker).http();
        case(
            "breaker vs tower-resilience",
            f,
            breaker.layer(Ok200),
            resilience_breaker(),
        )
        .await;
        p.runtime.shutdown().await;
    });
}
