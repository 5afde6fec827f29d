//! The rest of issue 19's rows, each against its fastest peer in interleaved rounds on one
//! thread (see benches/limiter_rounds.rs for why rounds): each round times `CALLS` calls of
//! a ready async call through palisade, through the peer, and bare. Printed per case: the
//! medians (ns per call), the overheads over the bare call, their ratio, and the rounds
//! palisade won.
//!
//! - `retry`: `Retry::execute` whose first attempt succeeds, against backon's
//!   `Retryable::retry` with `ExponentialBuilder::default()` (3 retries; palisade: 3 attempts).
//! - `bulkhead`: `Bulkhead::execute` (100 permits) against tokio's
//!   `Semaphore::try_acquire`, the call, and the permit's drop.
//! - `policy`: a `Policy` of breaker, limiter and bulkhead against governor's `check`,
//!   tokio's `Semaphore::try_acquire` and recloser's `AsyncRecloser::call`, composed by
//!   hand (always-allow quota, 100 permits, breakers closed with a count window of 100).
//! - `policy_coarse`: the same with the breaker's calls timed on the coarse clock
//!   (`CallTiming::Coarse`).
//! - `policy_untimed`: the same with the breaker's calls not timed (`CallTiming::Untimed`:
//!   failures alone decide, as in recloser), the like-for-like row.
//!
//! `cargo bench -p palisade-benches --bench composed_rounds` (optionally a case-name filter)

use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use governor::{Quota as GQuota, RateLimiter};
use palisade::{Backoff, BulkheadConfig, CallTiming, LimiterConfig, Policy, Quota, Retry, Runtime};
use support::rounds::{breaker_timed, call, filter, median, round};
use tokio::sync::Semaphore;

const ROUNDS: usize = 31;
const CALLS: u64 = 1_000_000;

/// Runs one case: `ours` and `theirs` each give one round's ns per call.
async fn case<A, AF, B, BF>(name: &str, mut ours: A, mut theirs: B)
where
    A: FnMut() -> AF,
    AF: Future<Output = f64>,
    B: FnMut() -> BF,
    BF: Future<Output = f64>,
{
    let f = filter();
    if !name.contains(f.as_str()) {
        return;
    }
    let bare_round = || round(CALLS, |i| async move { call(i).await.is_ok() });
    // a round each to warm up
    ours().await;
    theirs().await;
    bare_round().await;
    let (mut p, mut t, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        p.push(ours().await);
        t.push(theirs().await);
        b.push(bare_round().await);
    }
    let won = p.iter().zip(&t).filter(|(p, t)| p < t).count();
    let (mp, mt, mb) = (median(&mut p), median(&mut t), median(&mut b));
    println!(
        "{name:<13} palisade {mp:6.2} ns, peer {mt:6.2} ns, bare {mb:5.2} ns; overhead {:6.2} vs {:6.2} ns, ratio {:.3} (totals {:.3}); palisade faster in {won}/{ROUNDS} rounds",
        mp - mb,
        mt - mb,
        (mp - mb) / (mt - mb),
        mp / mt
    );
}

fn main() {
    let rt = support::current_thread();
    rt.block_on(async {
        let prt = Runtime::start().await.expect("runtime");

        let retry = Retry::builder()
            .max_attempts(3)
            .backoff(Backoff::exponential(Duration::from_millis(1)))
            .build()
            .expect("retry");
        let retry = &retry;
        case(
            "retry",
            || {
                round(
                    CALLS,
                    |i| async move { retry.execute(|| call(i)).await.is_ok() },
                )
            },
            || {
                round(CALLS, |i| async move {
                    (|| call(i))
                        .retry(ExponentialBuilder::default())
                        .await
                        .is_ok()
                })
            },
        )
        .await;

        let bulkhead = prt
            .bulkhead(
                "composed-bulkhead",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("config"),
            )
            .await
            .expect("bulkhead");
        let semaphore = Semaphore::new(100);
        let (bulkhead, semaphore) = (&bulkhead, &semaphore);
        case(
            "bulkhead",
            || {
                round(CALLS, |i| async move {
                    bulkhead.execute(|| call(i)).await.is_ok()
                })
            },
            || {
                round(CALLS, |i| async move {
                    match semaphore.try_acquire() {
                        Ok(_permit) => call(i).await.is_ok(),
                        Err(_) => false,
                    }
                })
            },
        )
        .await;

        let breaker = prt
            .breaker("composed-breaker", breaker_timed(CallTiming::Precise))
            .await
            .expect("breaker");
        let coarse_breaker = prt
            .breaker("composed-breaker-coarse", breaker_timed(CallTiming::Coarse))
            .await
            .expect("breaker");
        let untimed_breaker = prt
            .breaker(
                "composed-breaker-untimed",
                breaker_timed(CallTiming::Untimed),
            )
            .await
            .expect("breaker");
        let limiter = prt
            .limiter(
                "composed-limiter",
                LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000)),
            )
            .await
            .expect("limiter");
        let policy = Policy::new()
            .breaker(&breaker)
            .limiter(&limiter)
            .bulkhead(bulkhead);
        let coarse_policy = Policy::new()
            .breaker(&coarse_breaker)
            .limiter(&limiter)
            .bulkhead(bulkhead);
        let untimed_policy = Policy::new()
            .breaker(&untimed_breaker)
            .limiter(&limiter)
            .bulkhead(bulkhead);
        let billion = NonZeroU32::new(1_000_000_000).expect("non-zero");
        let governor = RateLimiter::direct(GQuota::per_second(billion).allow_burst(billion));
        let recloser =
            recloser::AsyncRecloser::from(recloser::Recloser::custom().closed_len(100).build());
        let (governor, recloser) = (&governor, &recloser);
        let by_hand = || {
            round(CALLS, |i| async move {
                if governor.check().is_err() {
                    return false;
                }
                let Ok(_permit) = semaphore.try_acquire() else {
                    return false;
                };
                recloser.call(call(i)).await.is_ok()
            })
        };
        for (name, policy) in [
            ("policy", &policy),
            ("policy_coarse", &coarse_policy),
            ("policy_untimed", &untimed_policy),
        ] {
            case(
                name,
                || {
                    round(CALLS, |i| async move {
                        policy.execute(|| call(i)).await.is_ok()
                    })
                },
                by_hand,
            )
            .await;
        }

        prt.shutdown().await;
    });
}
