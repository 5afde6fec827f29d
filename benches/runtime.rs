//! Restart latency (kill to re-registered under the same name) and the cost of publishing
//! an event with 0 and 1 subscribers (measured on the bulkhead's rejection path, which
//! publishes one `CallRejected` per rejection while someone subscribes).
//!
//! `cargo bench -p palisade-benches --bench runtime`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use palisade::ractor::registry::where_is;
use palisade::{BulkheadConfig, Runtime};

fn restart(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let prt = rt.block_on(async {
        Runtime::builder()
            .max_restarts(u32::MAX)
            .restart_window(Duration::from_nanos(1))
            .start()
            .await
            .expect("palisade runtime")
    });
    rt.block_on(async {
        prt.bulkhead(
            "bench-restart",
            BulkheadConfig::builder()
                .max_concurrent(1)
                .build()
                .expect("config"),
        )
        .await
        .expect("bulkhead")
    });
    c.bench_function("restart_kill_to_reregistered", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let old = where_is("palisade.bulkhead.bench-restart").expect("running");
                let id = old.get_id();
                let start = Instant::now();
                old.kill();
                // Bounded wait: 1 s at most per restart.
                loop {
                    if let Some(new) = where_is("palisade.bulkhead.bench-restart") {
                        if new.get_id() != id
                            && new.get_status() == palisade::ractor::ActorStatus::Running
                        {
                            break;
                        }
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(1),
                        "restart took over 1 s"
                    );
                    tokio::task::yield_now().await;
                }
                total += start.elapsed();
            }
            total
        })
    });
}

fn publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (prt, pool) = rt.block_on(async {
        let prt = Runtime::builder()
            .event_capacity(1024)
            .start()
            .await
            .expect("palisade runtime");
        let pool = prt
            .bulkhead(
                "bench-publish",
                BulkheadConfig::builder()
                    .max_concurrent(1)
                    .build()
                    .expect("config"),
            )
            .await
            .expect("bulkhead");
        (prt, pool)
    });
    let _held = pool.try_acquire().expect("permit");
    let mut g = c.benchmark_group("rejection_with_event");
    g.bench_function("0_subscribers", |b| {
        b.iter(|| black_box(pool.try_acquire().is_err()))
    });
    // Subscribers that never read: the channel overwrites, the publisher never waits.
    let mut subscribers = vec![prt.subscribe()];
    g.bench_function("1_subscriber", |b| {
        b.iter(|| black_box(pool.try_acquire().is_err()))
    });
    subscribers.extend((0..3).map(|_| prt.subscribe()));
    g.bench_function("4_subscribers", |b| {
        b.iter(|| black_box(pool.try_acquire().is_err()))
    });
    drop(subscribers);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = restart, publish
}
criterion_main!(benches);
