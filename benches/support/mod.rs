//! Shared bench harness (each bench binary uses part of it).

pub mod http;
pub mod processes;
pub mod rounds;

use std::time::{Duration, Instant};

/// A current-thread tokio runtime.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Wall time for `iters` calls split over 2 threads, each on its own runtime; `make` builds
/// one thread's call.
pub fn two_threads<C, F, Fut>(iters: u64, make: C) -> Duration
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

/// Wall time for `iters` requests through a tower service (`ready` then `call`), the way a
/// tower user drives it.
pub async fn serve<S>(mut svc: S, iters: u64) -> Duration
where
    S: tower::Service<u64>,
{
    use tower::ServiceExt;
    let start = Instant::now();
    for _ in 0..iters {
        let Ok(ready) = svc.ready().await else {
            panic!("the service was not ready")
        };
        std::hint::black_box(ready.call(std::hint::black_box(1)).await.is_ok());
    }
    start.elapsed()
}
