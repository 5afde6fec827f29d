//! Limiters on Redis against the physical limit: a plain `PING` round trip on the same kind
//! of connection, 1 and 64 concurrent tasks. Strict mode (one script call per check) and
//! leased mode (the lease spent with an atomic). Starts its own redis-server on a free
//! 127.0.0.1 port (needs `redis-server` installed; `bash scripts/test` installs it).
//!
//! `cargo bench -p palisade-benches --features redis --bench redis`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade::{LimiterConfig, Quota, RedisBackend, RedisMode, Runtime};

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/common/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// A quota no bench run can spend: the checks measure the path, not denials.
fn unlimited() -> LimiterConfig {
    LimiterConfig::gcra(Quota::per_second(1_000_000_000))
}

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Wall time for `iters` calls of `op` split over `tasks` concurrent tasks.
async fn concurrent<F, Fut>(iters: u64, tasks: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let per_task = iters.div_ceil(tasks);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    assert!(black_box(op().await), "a bench check failed");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("bench task");
    }
    start.elapsed()
}

fn redis(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = two_workers();
    let prt = rt.block_on(Runtime::start()).expect("palisade runtime");
    let backend = || RedisBackend::new(server.url()).prefix("bench");
    let strict = rt
        .block_on(prt.limiter("bench-strict", unlimited().redis(backend())))
        .expect("strict limiter");
    let leased = rt
        .block_on(prt.limiter(
            "bench-leased",
            unlimited().redis(backend().mode(RedisMode::Leased)),
        ))
        .expect("leased limiter");
    let conn = rt.block_on(async {
        let client = redis::Client::open(server.url()).expect("client");
        redis::aio::ConnectionManager::new(client)
            .await
            .expect("connection")
    });
    let script_conn = conn.clone();
    let ping = Arc::new(move || {
        let mut conn = conn.clone();
        async move {
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
            pong.is_ok()
        }
    });
    // The GCRA decision alone, hand-written (TIME, GET, SET PX) as EVALSHA on the same kind
    // of connection: what a minimal Lua limiter costs, without palisade around it.
    let gcra = Arc::new(redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local new = tat + tonumber(ARGV[1])
        if new - now > tonumber(ARGV[2]) then return 0 end
        redis.call('SET', KEYS[1], string.format('%.3f', new), 'PX', 1000)
        return 1
        ",
    ));
    let bare_script = Arc::new(move || {
        let mut conn = script_conn.clone();
        let gcra = Arc::clone(&gcra);
        async move {
            let mut call = gcra.key("bench:bare");
            call.arg(0.001).arg(1_000_000.0);
            let ok: Result<i64, _> = call.invoke_async(&mut conn).await;
            ok.is_ok()
        }
    });

    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(1));
    for tasks in [1u64, 64] {
        let p = Arc::clone(&ping);
        g.bench_function(format!("PING round trip, {tasks} tasks"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let p = Arc::clone(&p);
                concurrent(iters, tasks, move || p())
            })
        });
        let p = Arc::clone(&bare_script);
        g.bench_function(format!("bare GCRA script, {tasks} tasks"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let p = Arc::clone(&p);
                concurrent(iters, tasks, move || p())
            })
        });
        let l = strict.clone();
        g.bench_function(format!("strict acquire, {tasks} tasks"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let l = l.clone();
                concurrent(iters, tasks, move || {
                    let l = l.clone();
                    async move { l.acquire(1).await.is_ok() }
                })
            })
        });
        let l = leased.clone();
        g.bench_function(format!("leased acquire, {tasks} tasks"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let l = l.clone();
                concurrent(iters, tasks, move || {
                    let l = l.clone();
                    async move { l.acquire(1).await.is_ok() }
                })
            })
        });
    }
    g.finish();
    rt.block_on(prt.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = redis
}
criterion_main!(benches);
