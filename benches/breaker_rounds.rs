//! A closed breaker's `execute` against recloser's `AsyncRecloser::call`, the fastest
//! circuit-breaker peer, in interleaved rounds on one thread (see benches/limiter_rounds.rs
//! for why rounds): each round times `CALLS` calls of a ready async call through palisade,
//! then through recloser, then bare. Printed: the medians and best rounds (ns per call),
//! the overhead over the bare call of each, and the ratio of the overheads.
//!
//! Both count a window of 100 calls; recloser has no slow-call detection, so palisade's
//! figure includes timing every call (two clock reads) and the in-flight ring.
//!
//! `cargo bench -p palisade-benches --bench breaker_rounds`

use palisade::Runtime;
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
        let theirs = recloser::AsyncRecloser::from(
            recloser::Recloser::custom().closed_len(100).build(),
        );
        let ours = &ours;
        let theirs = &theirs;
        let mut p = Vec::new();
        let mut r = Vec::new();
        let mut bare = Vec::new();
        for warm in [true, false] {
            for _ in 0..(if warm { 1 } else { ROUNDS }) {
                let a = round(CALLS, |i| async move { ours.execute(|| call(i)).await.is_ok() }).await;
                let b = round(CALLS, |i| async move { theirs.call(call(i)).await.is_ok() }).await;
                let c = round(CALLS, |i| async move { call(i).await.is_ok() }).await;
                if !warm {
                    p.push(a);
                    r.push(b);
                    bare.push(c);
                }
            }
        }
        let won = p.iter().zip(&r).filter(|(a, b)| a < b).count();
        let (mp, mr, mb) = (median(&mut p), median(&mut r), median(&mut bare));
        println!(
            "breaker closed: palisade {mp:.2} ns, recloser {mr:.2} ns, bare {mb:.2} ns; overhead {:.2} vs {:.2} ns, ratio {:.2}; palisade faster in {won}/{ROUNDS} rounds",
            mp - mb,
            mr - mb,
            (mp - mb) / (mr - mb)
        );
        prt.shutdown().await;
    });
}
