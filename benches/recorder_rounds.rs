//! What installing the Prometheus recorder costs each hot path, in interleaved rounds in
//! one process: a primitive spawned before the recorder is installed keeps no-op metric
//! handles (the `metrics` macros resolve a handle when the primitive is made), one spawned
//! after records into the recorder. So each case times the same call on two primitives of
//! the same config, round after round on the same thread: without, then with.
//!
//! Printed per case: the median and best round of each (ns per call), the ratio of the
//! medians (with / without; the target of issue 19 is <= 1.2), and the rounds the recorder
//! side lost by less than 5 %.
//!
//! `cargo bench -p palisade-benches --bench recorder_rounds` (optionally a case filter)

use palisade::{BulkheadConfig, LimiterConfig, Quota, Runtime};
use support::rounds::{best, breaker_config, call, median, round};

const ROUNDS: usize = 31;
const CALLS: u64 = 500_000;

fn report(name: &str, mut without: Vec<f64>, mut with: Vec<f64>) {
    let close = without
        .iter()
        .zip(&with)
        .filter(|(a, b)| **b < **a * 1.05)
        .count();
    let (bw, bp) = (best(&without), best(&with));
    let (mw, mp) = (median(&mut without), median(&mut with));
    println!(
        "{name:<10} without {mw:6.2} ns (best {bw:6.2})  with the recorder {mp:6.2} ns (best {bp:6.2})  ratio {:.3}  within 5 % in {close}/{ROUNDS} rounds",
        mp / mw
    );
}

fn main() {
    let filter = support::rounds::filter();
    let rt = support::current_thread();
    rt.block_on(async move {
        let prt = Runtime::start().await.expect("runtime");
        let breaker = breaker_config();
        let quota = LimiterConfig::gcra(Quota::per_second(1_000_000_000).burst(1_000_000_000));
        let pool = BulkheadConfig::builder()
            .max_concurrent(100)
            .build()
            .expect("valid");
        let b0 = prt
            .breaker("plain-db", breaker.clone())
            .await
            .expect("spawn");
        let l0 = prt
            .limiter("plain-api", quota.clone())
            .await
            .expect("spawn");
        let p0 = prt
            .bulkhead("plain-pool", pool.clone())
            .await
            .expect("spawn");
        let _handle = palisade::telemetry::prometheus::install_recorder().expect("recorder");
        let b1 = prt.breaker("scraped-db", breaker).await.expect("spawn");
        let l1 = prt.limiter("scraped-api", quota).await.expect("spawn");
        let p1 = prt.bulkhead("scraped-pool", pool).await.expect("spawn");

        macro_rules! case {
            ($name:expr, $plain:expr, $scraped:expr) => {
                if $name.contains(filter.as_str()) {
                    // one round each to warm up
                    round(CALLS, $plain).await;
                    round(CALLS, $scraped).await;
                    let (mut without, mut with) = (Vec::new(), Vec::new());
                    for _ in 0..ROUNDS {
                        without.push(round(CALLS, $plain).await);
                        with.push(round(CALLS, $scraped).await);
                    }
                    report($name, without, with);
                }
            };
        }
        let (b0, b1, p0, p1) = (&b0, &b1, &p0, &p1);
        case!(
            "breaker",
            |i| async move { b0.execute(|| call(i)).await.is_ok() },
            |i| async move { b1.execute(|| call(i)).await.is_ok() }
        );
        case!("limiter", |_| async { l0.check().is_ok() }, |_| async {
            l1.check().is_ok()
        });
        case!(
            "bulkhead",
            |i| async move { p0.execute(|| call(i)).await.is_ok() },
            |i| async move { p1.execute(|| call(i)).await.is_ok() }
        );
        prt.shutdown().await;
    });
}
