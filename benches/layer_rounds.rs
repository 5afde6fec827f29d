//! The tower layers against their peers in interleaved rounds (the method of
//! benches/limiter_rounds.rs): each round drives `REQUESTS` requests through the bare
//! service, palisade's stack, the peer's, the peer's again, palisade's again and the bare
//! service again (ABBA: a drift of the machine's speed within a round weighs on both
//! sides alike), on one thread. The rounds run in `processes::PROCESSES` child processes,
//! `ROUNDS` each (see benches/support/processes.rs: one process's figures depend on its
//! memory layout). Per row, over every child's rounds: the median overhead over the bare
//! service of each side (ns per request), the ratio of the medians, the median of the
//! rounds' own ratios (*paired*), and the share of rounds palisade won.
//!
//! `cargo bench -p palisade-benches --bench layer_rounds` (optionally a case-name filter)

use std::hint::black_box;
use std::time::Instant;

use palisade::layer::{BreakerLayer, BulkheadLayer, KeyedLimiterLayer, LimiterLayer, PeerIp};
use tower_layer::Layer;

use support::http::{
    concurrency_limit, drive, governor, no_headers, resilience_breaker, resilience_limiter,
    shed_concurrency_limit, Ok200, Primitives, Stack,
};
use support::processes::{self, print_round, Row};

/// Rounds per child process.
const ROUNDS: usize = 3;
const REQUESTS: u64 = 200_000;

/// Nanoseconds per request over one round.
async fn round(svc: &mut impl Stack) -> f64 {
    drive(svc, REQUESTS).await.as_nanos() as f64 / REQUESTS as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row: `ROUNDS` rounds, each on stacks built afresh by `ours` and `theirs`.
///
/// Built afresh (not one stack for every round), and behind an allocation whose size
/// changes each round, so the rounds sample many heap placements: with one placement a
/// row's figures were bimodal between runs (tower's ConcurrencyLimit measured 16 ns in one
/// run and 31 ns in the next, the same code), as loads that alias a recent store's address
/// modulo 4 KiB stall or not.
async fn case<S1: Stack, S2: Stack>(
    name: &str,
    filter: &str,
    ours: impl Fn() -> S1,
    theirs: impl Fn() -> S2,
) {
    if !name.contains(filter) {
        return;
    }
    for r in 0..ROUNDS {
        let shift = vec![0u8; 16 + r * 1_000 % 4_096];
        let (mut bare, mut ours, mut theirs) = (Ok200, ours(), theirs());
        // ABBA around the bare service: a drift of the machine's speed within the round
        // weighs on both sides alike
        let base1 = round(&mut bare).await;
        let x1 = round(&mut ours).await;
        let y1 = round(&mut theirs).await;
        let y2 = round(&mut theirs).await;
        let x2 = round(&mut ours).await;
        let base2 = round(&mut bare).await;
        drop(black_box(shift));
        let base = (base1 + base2) / 2.0;
        let (x, y) = ((x1 + x2) / 2.0 - base, (y1 + y2) / 2.0 - base);
        print_round(name, x, y);
    }
}

/// The parent's report: every row's rounds pooled from the children.
fn summarize(rows: Vec<Row>) {
    for mut row in rows {
        let n = row.ours.len();
        let wins = row
            .ours
            .iter()
            .zip(&row.theirs)
            .filter(|(x, y)| x < y)
            .count();
        let mut paired: Vec<f64> = row
            .ours
            .iter()
            .zip(&row.theirs)
            .map(|(x, y)| x / y)
            .collect();
        let (x, y, r) = (
            median(&mut row.ours),
            median(&mut row.theirs),
            median(&mut paired),
        );
        println!(
            "{:<40} palisade {x:>7.1} ns  peer {y:>7.1} ns  ratio {:.2}  paired {r:.2}  won {wins}/{n}",
            row.name,
            x / y
        );
    }
}

fn main() {
    if !processes::is_child() {
        summarize(processes::run_children());
        return;
    }
    let filter = support::rounds::filter();
    let rt = support::current_thread();
    rt.block_on(async move {
        let p = Primitives::spawn().await;
        let f = filter.as_str();
        let bulkhead = BulkheadLayer::new(&p.bulkhead);
        case(
            "bulkhead vs tower ConcurrencyLimit",
            f,
            || bulkhead.clone().http().layer(Ok200),
            concurrency_limit,
        )
        .await;
        case(
            "bulkhead (typed answer) vs tower ConcurrencyLimit",
            f,
            || bulkhead.clone().layer(Ok200),
            concurrency_limit,
        )
        .await;
        case(
            "bulkhead vs tower LoadShed(ConcurrencyLimit)",
            f,
            || bulkhead.clone().http().layer(Ok200),
            shed_concurrency_limit,
        )
        .await;
        case(
            "bulkhead (typed) vs tower LoadShed(ConcurrencyLimit)",
            f,
            || bulkhead.clone().layer(Ok200),
            shed_concurrency_limit,
        )
        .await;
        case(
            "bulkhead (backpressure) vs tower ConcurrencyLimit",
            f,
            || bulkhead.clone().http().backpressure(true).layer(Ok200),
            concurrency_limit,
        )
        .await;
        if "permit".contains(f) || f.is_empty() {
            // the owned permits alone: take and give back, no service around them
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(100));
            for _ in 0..ROUNDS {
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(p.bulkhead.try_acquire_owned().is_ok());
                }
                let a = t.elapsed().as_nanos() as f64 / REQUESTS as f64;
                let t = Instant::now();
                for _ in 0..REQUESTS {
                    black_box(std::sync::Arc::clone(&sem).try_acquire_owned().is_ok());
                }
                let b = t.elapsed().as_nanos() as f64 / REQUESTS as f64;
                // (totals: no service around the permits)
                print_round("owned permit vs tokio OwnedSemaphorePermit", a, b);
            }
        }
        let keyed = KeyedLimiterLayer::new(&p.keyed, PeerIp).answer(no_headers());
        case(
            "keyed by peer IP vs tower_governor",
            f,
            || keyed.layer(Ok200),
            governor,
        )
        .await;
        let limiter = LimiterLayer::new(&p.limiter).answer(no_headers());
        case(
            "limiter vs tower-resilience",
            f,
            || limiter.layer(Ok200),
            resilience_limiter,
        )
        .await;
        let breaker = BreakerLayer::new(&p.breaker).http();
        case(
            "breaker vs tower-resilience",
            f,
            || breaker.layer(Ok200),
            resilience_breaker,
        )
        .await;
        p.runtime.shutdown().await;
    });
}
