//! Interleaved rounds: the harness of the `*_rounds` benches (see benches/limiter_rounds.rs
//! for why rounds on this VM), and the call and breaker config they time.

use std::hint::black_box;
use std::time::Instant;

use palisade::{BreakerConfig, CallTiming, SlidingWindow};

/// A ready async call: what the primitives wrap in the benches.
#[inline(never)]
pub async fn call(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

/// Nanoseconds per call over one round of `calls` awaited calls of `f`.
pub async fn round<F, Fut>(calls: u64, mut f: F) -> f64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for i in 0..calls {
        black_box(f(i).await);
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// The case filter: the first argument that is not a flag (`cargo bench` passes
/// `--bench`), or "" for every case.
pub fn filter() -> String {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default()
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The smallest.
pub fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MAX, f64::min)
}

/// The benches' closed breaker: a count window of 100 that never trips on the first 100.
pub fn breaker_config() -> BreakerConfig {
    breaker_timed(CallTiming::Precise)
}

/// [`breaker_config`] with calls timed as `timing` says.
pub fn breaker_timed(timing: CallTiming) -> BreakerConfig {
    BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(100))
        .minimum_calls(100)
        .call_timing(timing)
        .build()
        .expect("valid")
}
