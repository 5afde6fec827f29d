//! A closed breaker's `execute` against recloser's `AsyncRecloser::call`, the fastest
//! circuit-breaker peer, in interleaved rounds on one thread (see benches/limiter_rounds.rs
//! for why rounds): each round times `CALLS` calls of a ready async call through palisade,
//! then through recloser, then bare. Printed: the medians and best rounds (ns per call),
//! the overhead over the bare call of each, and the ratio of the overheads.
//!
//! Both count a window of 100 calls; recloser has no slow-call detection, so palisade's
//! figure includes timing every call and the in-flight ring: two reads of the time-stamp
//! counter with the default `CallTiming::Precise`, two loads of the coarse clock with
//! `CallTiming::Coarse`. `CallTiming::Untimed` does what recloser does (failures alone
//! decide, no clock read): the like-for-like row. All three are timed in the same rounds.
//!
//! `cargo bench -p palisade-benches --bench breaker_rounds`

use palisade::{CallTiming, Runtime};
use support::rounds::{breaker_config, call, median, round};

const ROUNDS: usize = 31;
const CALLS: u64 = 1_000_000;

fn main() {
    let rt = support::current_thread();
    rt.block_on(async {
        let prt = Runtime::start().await.expect("runtime");
        let ours = prt
            .breaker("rounds-db", breaker_config())
            .await
            .expect("spawn");
        let coarse = prt
            .breaker(
                "rounds-db-coarse",
                support::rounds::breaker_timed(CallTiming::Coarse),
            )
            .await
            .expect("spawn");
        let untimed = prt
            .breaker(
                "rounds-db-untimed",
                support::rounds::breaker_timed(CallTiming::Untimed),
            )
            .await
            .expect("spawn");
        let theirs = recloser::AsyncRecloser::from(
            recloser::Recloser::custom().closed_len(100).build(),
        );
        let (ours, coarse, untimed, theirs) = (&ours, &coarse, &untimed, &theirs);
        let (mut p, mut q, mut u, mut r, mut bare) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for warm in [true, false] {
            for _ in 0..(if warm { 1 } else { ROUNDS }) {
                let a = round(CALLS, |i| async move { ours.execute(|| call(i)).await.is_ok() }).await;
                let d = round(CALLS, |i| async move { coarse.execute(|| call(i)).await.is_ok() }).await;
                let e = round(CALLS, |i| async move { untimed.execute(|| call(i)).await.is_ok() }).await;
                let b = round(CALLS, |i| async move { theirs.call(call(i)).await.is_ok() }).await;
                let c = round(CALLS, |i| async move { call(i).await.is_ok() }).await;
                if !warm {
                    p.push(a);
                    q.push(d);
                    u.push(e);
                    r.push(b);
                    bare.push(c);
                }
            }
        }
        let won = |v: &[f64]| v.iter().zip(&r).filter(|(a, b)| a < b).count();
        let (won_p, won_q, won_u) = (won(&p), won(&q), won(&u));
        let (mp, mq, mu, mr, mb) = (
            median(&mut p),
            median(&mut q),
            median(&mut u),
            median(&mut r),
            median(&mut bare),
        );
        println!(
            "breaker closed: recloser {mr:.2} ns, bare {mb:.2} ns, recloser's overhead {:.2} ns",
            mr - mb
        );
        for (timing, m, won) in [
            ("precise", mp, won_p),
            ("coarse", mq, won_q),
            ("untimed", mu, won_u),
        ] {
            println!(
                "  palisade, {timing:<7} {m:.2} ns; overhead {:.2} ns, ratio {:.2}; faster than recloser in {won}/{ROUNDS} rounds",
                m - mb,
                (m - mb) / (mr - mb)
            );
        }
        prt.shutdown().await;
    });
}
