//! One limiter, one bulkhead, one keyed limiter and one breaker, each shared by 2 and 4
//! threads, against governor, tokio's semaphore and recloser, in interleaved rounds (issue
//! 19's contended rows, and more). Each round starts the threads at a barrier, each pinned
//! to a core (`core_affinity`; thread `i` on core `i % cores`), and times the wall clock
//! from the first thread's start to the last one's end, for `CALLS` calls in all;
//! palisade's round and the peer's alternate. Printed: medians and best rounds (ns per
//! call, wall time / calls), the ratio of the medians, and the rounds each side won.
//! - One more bulkhead case hands each permit from the thread that took it to another that
//!   gives it back (a task that moved between workers).
//! - The keyed cases have each thread check its own 10^4 keys in order.
//! - The breaker cases run a closed breaker's `execute` of a ready call against recloser's
//!   `AsyncRecloser::call`, each polled once without a runtime.
//!
//! `cargo bench -p palisade-benches --bench contended_rounds` (optionally a case filter)

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::Instant;

use palisade::{BulkheadConfig, LimiterConfig, Quota, Runtime};
use support::rounds::{best, median};

const ROUNDS: usize = 31;
const CALLS: u64 = 1_000_000;

/// Nanoseconds per call, wall time, `threads` pinned threads sharing `CALLS` calls of `f`
/// (which gets the thread's number).
///
/// The workers time themselves: the round runs from the first worker's start to the last
/// worker's end. (The main thread used to read the start after the barrier, but it is not
/// pinned and shares the cores with the workers: descheduled there, it read the start
/// late, after part or all of the work, and rounds of "0.00 ns" came out.)
fn round(threads: usize, f: &(impl Fn(usize) -> bool + Sync)) -> f64 {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let ready = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, cores) = (&ready, &cores);
                s.spawn(move || {
                    if !cores.is_empty() {
                        core_affinity::set_for_current(cores[t % cores.len()]);
                    }
                    ready.wait();
                    let start = Instant::now();
                    for _ in 0..CALLS / threads as u64 {
                        black_box(f(t));
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("one worker at least");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("one worker at least");
    last.duration_since(first).as_nanos() as f64 / CALLS as f64
}

/// Keys each thread of the keyed cases visits (its own, in order, pre-filled).
const KEYS_EACH: u64 = 10_000;

std::thread_local! {
    static VISITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The next of thread `t`'s own keys.
fn next_key(t: usize) -> u64 {
    let i = VISITS.with(|v| {
        let i = v.get();
        v.set(i + 1);
        i
    });
    t as u64 * KEYS_EACH + i % KEYS_EACH
}

/// The output of a future that is ready at its first poll (a closed breaker around a
/// ready call), polled here without a runtime, so threads run it as a plain function.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the call was not ready at its first poll"),
    }
}

/// One step of a hand-over: thread 0 takes a permit (retrying while none is free) and
/// queues it (waiting while the queue is full); thread 1 takes one from the queue (waiting
/// while it is empty) and drops it.
fn hand_over<P>(
    thread: usize,
    queue: &crossbeam::queue::ArrayQueue<P>,
    take: impl Fn() -> Option<P>,
) -> bool {
    if thread == 0 {
        let mut permit = loop {
            if let Some(p) = take() {
                break p;
            }
            std::hint::spin_loop();
        };
        loop {
            match queue.push(permit) {
                Ok(()) => return true,
                Err(back) => permit = back,
            }
            std::hint::spin_loop();
        }
    } else {
        loop {
            if let Some(p) = queue.pop() {
                drop(p);
                return true;
            }
            std::hint::spin_loop();
        }
    }
}

fn case(
    name: &str,
    filter: &str,
    peer: &str,
    threads: usize,
    ours: &(impl Fn(usize) -> bool + Sync),
    theirs: &(impl Fn(usize) -> bool + Sync),
) {
    if !name.contains(filter) {
        return;
    }
    round(threads, ours);
    round(threads, theirs);
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        p.push(round(threads, ours));
        g.push(round(threads, theirs));
    }
    let won = p.iter().zip(&g).filter(|(p, g)| p < g).count();
    let (bp, bg) = (best(&p), best(&g));
    let (mp, mg) = (median(&mut p), median(&mut g));
    println!(
        "{name:<24} palisade {mp:6.2} ns (best {bp:6.2})  {peer} {mg:6.2} ns (best {bg:6.2})  ratio {:.3}  won {won}/{ROUNDS}, lost {}/{ROUNDS}",
        mp / mg,
        ROUNDS - won
    );
}

fn main() {
    let filter = support::rounds::filter();
    let rt = support::current_thread();
    let prt = rt.block_on(Runtime::start()).expect("palisade runtime");
    let nz = |n| NonZeroU32::new(n).expect("non-zero");
    let limiter = rt
        .block_on(prt.limiter(
            "contended-api",
            LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000)),
        ))
        .expect("limiter");
    let gov = governor::RateLimiter::direct(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000_000_000)),
    );
    let bulkhead = rt
        .block_on(
            prt.bulkhead(
                "contended-pool",
                BulkheadConfig::builder()
                    .max_concurrent(100)
                    .build()
                    .expect("valid"),
            ),
        )
        .expect("bulkhead");
    let semaphore = tokio::sync::Semaphore::new(100);
    let breaker = rt
        .block_on(prt.breaker("contended-db", support::rounds::breaker_config()))
        .expect("breaker");
    let coarse = rt
        .block_on(prt.breaker(
            "contended-db-coarse",
            support::rounds::breaker_timed(palisade::CallTiming::Coarse),
        ))
        .expect("breaker");
    let recloser =
        recloser::AsyncRecloser::from(recloser::Recloser::custom().closed_len(100).build());
    let keyed = rt
        .block_on(
            prt.keyed_limiter::<u64>(
                "contended-keyed",
                palisade::KeyedLimiterConfig::new(LimiterConfig::gcra(
                    Quota::per_second(1_000_000_000).burst(1_000_000_000),
                ))
                .max_keys(100_000),
            ),
        )
        .expect("keyed limiter");
    let gov_keyed = governor::RateLimiter::<u64, _, _>::keyed(
        governor::Quota::per_second(nz(1_000_000_000)).allow_burst(nz(1_000_000_000)),
    );
    for key in 0..4 * KEYS_EACH {
        let _ = keyed.check(&key);
        let _ = gov_keyed.check_key(&key);
    }
    for threads in [2, 4] {
        case(
            &format!("limiter, {threads} threads"),
            &filter,
            "governor",
            threads,
            &|_| limiter.check().is_ok(),
            &|_| gov.check().is_ok(),
        );
        case(
            &format!("bulkhead, {threads} threads"),
            &filter,
            "tokio Semaphore",
            threads,
            &|_| bulkhead.try_acquire().is_ok(),
            &|_| semaphore.try_acquire().is_ok(),
        );
        case(
            &format!("keyed limiter, {threads} threads"),
            &filter,
            "governor",
            threads,
            &|t| keyed.check(&next_key(t)).is_ok(),
            &|t| gov_keyed.check_key(&next_key(t)).is_ok(),
        );
        for (timing, ours) in [("precise", &breaker), ("coarse", &coarse)] {
            case(
                &format!("breaker ({timing}), {threads} threads"),
                &filter,
                "recloser",
                threads,
                &|_| ready(ours.execute(|| async { Ok::<_, ()>(()) })).is_ok(),
                &|_| ready(recloser.call(async { Ok::<_, ()>(()) })).is_ok(),
            );
        }
    }
    // Permits taken on one thread and given back on another (a task that moved between
    // workers while it held its permit): thread 0 takes and hands each permit over a
    // bounded queue, thread 1 drops them. The same queue on both sides.
    let ours = crossbeam::queue::ArrayQueue::new(64);
    let theirs = crossbeam::queue::ArrayQueue::new(64);
    case(
        "bulkhead, taken on one thread, given back on another",
        &filter,
        "tokio Semaphore",
        2,
        &|t| hand_over(t, &ours, || bulkhead.try_acquire().ok()),
        &|t| hand_over(t, &theirs, || semaphore.try_acquire().ok()),
    );
    rt.block_on(prt.shutdown());
}
