//! Window limiters checked from more OS threads than the machine has cores, on the real
//! clock (the one place the limiter tests leave paused time: preemption is what they probe).
//!
//! Each test counts what the limiter admitted while every thread ran, and compares it with
//! the most any correct window limiter could admit in that time: a window of length `w`
//! holds at most `limit`, and checks spread over `t` touch at most `⌊t / w⌋ + 2` windows.
//! The bound cannot fail spuriously: a slow machine only admits less. Loops are bounded in
//! count and time.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use palisade::{KeyedLimiterConfig, LimiterConfig, Runtime};

const THREADS: usize = 8;
const RUN: Duration = Duration::from_millis(600);
const CHECKS_PER_THREAD: u64 = 400_000;

/// Runs `check` from `THREADS` threads; returns (admitted, elapsed from before the first
/// check to after the last).
fn hammer(check: impl Fn() -> bool + Send + Sync + 'static) -> (u64, Duration) {
    let check = Arc::new(check);
    let admitted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (check, admitted) = (Arc::clone(&check), Arc::clone(&admitted));
            thread::spawn(move || {
                let mut mine = 0;
                for i in 0..CHECKS_PER_THREAD {
                    if check() {
                        mine += 1;
                    }
                    if i % 256 == 0 && start.elapsed() >= RUN {
                        break;
                    }
                }
                admitted.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (admitted.load(Ordering::Relaxed), start.elapsed())
}

/// Fails unless `admitted` is at most what a correct window limiter could admit in
/// `elapsed`, and more than nothing.
fn assert_possible(name: &str, admitted: u64, elapsed: Duration, limit: u32, window: Duration) {
    let windows = (elapsed.as_nanos() / window.as_nanos()) as u64 + 2;
    let bound = u64::from(limit) * windows;
    assert!(
        admitted <= bound,
        "{name}: admitted {admitted} in {elapsed:?}, at most {bound} possible"
    );
    assert!(admitted > 0, "{name}: nothing admitted");
}

async fn direct(name: &str, config: LimiterConfig, limit: u32, window: Duration) {
    let rt = Runtime::start().await.unwrap();
    let l = rt.limiter(name, config).await.unwrap();
    let (admitted, elapsed) =
        tokio::task::spawn_blocking(move || hammer(move || l.check().is_ok()))
            .await
            .unwrap();
    assert_possible(name, admitted, elapsed, limit, window);
    rt.shutdown().await;
}

async fn keyed(name: &str, config: LimiterConfig, limit: u32, window: Duration) {
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .keyed_limiter::<u64>(name, KeyedLimiterConfig::new(config))
        .await
        .unwrap();
    let (admitted, elapsed) =
        tokio::task::spawn_blocking(move || hammer(move || l.check(&7).is_ok()))
            .await
            .unwrap();
    assert_possible(name, admitted, elapsed, limit, window);
    rt.shutdown().await;
}

const W: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_never_admits_more_than_possible_from_8_threads() {
    direct("fixed", LimiterConfig::fixed_window(10, W), 10, W).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_window_never_admits_more_than_possible_from_8_threads() {
    direct("sliding", LimiterConfig::sliding_window(10, W), 10, W).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_fixed_window_never_admits_more_than_possible_from_8_threads() {
    keyed("keyed-fixed", LimiterConfig::fixed_window(10, W), 10, W).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_sliding_window_never_admits_more_than_possible_from_8_threads() {
    keyed("keyed-sliding", LimiterConfig::sliding_window(10, W), 10, W).await;
}
