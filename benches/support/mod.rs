//! Shared bench harness (each bench binary uses part of it).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A current-thread tokio runtime.
pub(crate) fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Wall time for `iters` calls split over 2 threads, each on its own runtime; `make` builds
/// one thread's call.
pub(crate) fn two_threads<C, F, Fut>(iters: u64, make: C) -> Duration
where
    C: Fn() -> F,
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future,
{
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let mut call = make();
            s.spawn(move || {
                current_thread().block_on(async {
                    for _ in 0..iters / 2 {
                        std::hint::black_box(call().await);
                    }
                })
            });
        }
    });
    start.elapsed()
}
