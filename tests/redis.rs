//! Limiters on a real redis-server (started by the tests on a free 127.0.0.1 port).
//!
//! These tests run on real time: Redis's clock is the server's. Quotas are per hour so no
//! refill lands while a test runs (and the bounds allow for the few that could).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use common::next_matching;
use common::redis_server::{RedisCluster, RedisServer};
use palisade::{
    CallError, ConfigError, DenyReason, Event, FailMode, KeyedLimiterConfig, LimiterConfig, Policy,
    Quota, RedisBackend, RedisMode, Runtime, SpawnError,
};

const HOUR: Duration = Duration::from_secs(3600);

fn backend(server: &RedisServer) -> RedisBackend {
    RedisBackend::new(server.url())
        .prefix("test")
        .timeout(Duration::from_millis(200))
        .open_for(Duration::from_millis(300))
}

fn config_error(e: SpawnError) -> ConfigError {
    match e {
        SpawnError::Config(c) => c,
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Runs `instances` limiters, each in its own OS thread, tokio runtime and palisade
/// runtime, all on one Redis key; each hammers its limiter from `tasks` tasks making
/// `attempts` checks each. Returns the total admitted.
fn hammer(
    server: &RedisServer,
    test: &str,
    config: LimiterConfig,
    mode: RedisMode,
    instances: usize,
    tasks: usize,
    attempts: usize,
) -> u64 {
    let threads: Vec<_> = (0..instances)
        .map(|i| {
            let config = config.clone().redis(backend(server).key(test).mode(mode));
            let name = format!("{test}-{i}");
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let rt = Runtime::start().await.unwrap();
                    let limiter = rt.limiter(&name, config).await.unwrap();
                    let workers: Vec<_> = (0..tasks)
                        .map(|_| {
                            let limiter = limiter.clone();
                            tokio::spawn(async move {
                                let mut admitted = 0u64;
                                for _ in 0..attempts {
                                    if limiter.acquire(1).await.is_ok() {
                                        admitted += 1;
                                    }
                                }
                                admitted
                            })
                        })
                        .collect();
                    let mut admitted = 0;
                    for w in workers {
                        admitted += w.await.unwrap();
                    }
                    rt.shutdown().await;
                    admitted
                })
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

/// The most a GCRA quota of `limit` per hour could admit over `elapsed`: the burst plus
/// one unit per interval that passed.
fn gcra_bound(limit: u64, elapsed: Duration) -> u64 {
    limit + (elapsed.as_secs_f64() / (3600.0 / limit as f64)).ceil() as u64
}

/// 4 runtimes hammer one GCRA quota of 500 per hour: the total admitted never exceeds the
/// limit, and (every instance spending every unit it took) reaches it.
fn four_runtimes_on_one_quota(test: &str, mode: RedisMode, attempts: usize) {
    let server = RedisServer::start();
    let started = Instant::now();
    let config = LimiterConfig::gcra(Quota::per_hour(500));
    let admitted = hammer(&server, test, config, mode, 4, 16, attempts);
    let bound = gcra_bound(500, started.elapsed());
    assert!(
        admitted <= bound,
        "{mode:?}: admitted {admitted}, the global limit allows {bound}"
    );
    assert!(
        admitted >= 500,
        "{mode:?}: {} attempts on a fresh quota of 500 admitted only {admitted}",
        4 * 16 * attempts
    );
}

#[test]
fn strict_mode_holds_the_global_limit_across_four_runtimes() {
    four_runtimes_on_one_quota("acc-strict", RedisMode::Strict, 40);
}

#[test]
fn leased_mode_holds_the_global_limit_across_four_runtimes() {
    four_runtimes_on_one_quota("acc-leased", RedisMode::Leased, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_strict_checks_share_round_trips_and_stay_exact() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "batched",
            LimiterConfig::gcra(Quota::per_hour(10)).redis(backend(&server)),
        )
        .await
        .unwrap();
    let before = server.calls("evalsha");
    let checks: Vec<_> = (0..64)
        .map(|i| {
            let l = l.clone();
            // mixed costs: 1 or 2
            tokio::spawn(async move { l.acquire(1 + i % 2).await.map(|_| 1 + i % 2) })
        })
        .collect();
    let mut spent = 0;
    for c in checks {
        if let Ok(cost) = c.await.unwrap() {
            spent += cost;
        }
    }
    assert!(
        (9..=10).contains(&spent),
        "the quota of 10 is spent by whole checks (a last check of cost 2 may not fit): {spent}"
    );
    let calls = server.calls("evalsha") - before;
    assert!(
        calls < 64,
        "64 concurrent checks went in {calls} script calls (queued checks go together)"
    );
    assert_eq!(
        l.acquire(1).await.unwrap_err().reason,
        DenyReason::Exhausted
    );
    rt.shutdown().await;
}

#[test]
fn every_window_algorithm_holds_the_global_limit_in_both_modes() {
    let server = RedisServer::start();
    let configs = [
        (
            "acc-bucket",
            LimiterConfig::token_bucket(300, Quota::per_hour(300)),
        ),
        ("acc-fixed", LimiterConfig::fixed_window(300, HOUR)),
        ("acc-sliding", LimiterConfig::sliding_window(300, HOUR)),
    ];
    for (test, config) in configs {
        for (mode, suffix) in [(RedisMode::Strict, "s"), (RedisMode::Leased, "l")] {
            let test = format!("{test}-{suffix}");
            let admitted = hammer(&server, &test, config.clone(), mode, 4, 8, 60);
            // 300 per hour: at most one more unit could refill while a test runs
            assert!(
                (300..=301).contains(&admitted),
                "{test}: admitted {admitted} of a global 300"
            );
        }
    }
}

#[tokio::test]
async fn strict_checks_answer_remaining_and_retry_after_from_redis() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let cases = [
        (
            "alg-gcra",
            LimiterConfig::gcra(Quota::per_hour(3)),
            HOUR / 3,
        ),
        (
            "alg-bucket",
            LimiterConfig::token_bucket(3, Quota::per_hour(3)),
            HOUR / 3,
        ),
        (
            "alg-leaky",
            LimiterConfig::leaky_bucket(Quota::per_hour(3)),
            HOUR / 3,
        ),
        ("alg-fixed", LimiterConfig::fixed_window(3, HOUR), HOUR),
        (
            "alg-sliding",
            LimiterConfig::sliding_window(3, HOUR),
            2 * HOUR,
        ),
    ];
    for (name, config, longest_wait) in cases {
        let l = rt
            .limiter(name, config.redis(backend(&server)))
            .await
            .unwrap();
        let burst = if name == "alg-leaky" { 1 } else { 3 };
        for left in (0..burst).rev() {
            let a = l.acquire(1).await.unwrap_or_else(|d| panic!("{name}: {d}"));
            assert_eq!(a.remaining, left, "{name}");
        }
        let d = l.acquire(1).await.unwrap_err();
        assert_eq!(d.reason, DenyReason::Exhausted, "{name}");
        assert_eq!(d.remaining, 0, "{name}");
        assert!(
            d.retry_after > Duration::ZERO && d.retry_after <= longest_wait,
            "{name}: retry_after {:?}",
            d.retry_after
        );
        // the decision is Redis's, not a local one: another limiter on the key agrees
        let twin = rt
            .limiter(
                &format!("{name}-twin"),
                l.config().redis(backend(&server).key(name)),
            )
            .await
            .unwrap();
        assert_eq!(
            twin.acquire(1).await.unwrap_err().reason,
            DenyReason::Exhausted,
            "{name}"
        );
        // a cost above the capacity is its own answer, without a round trip
        assert!(matches!(
            l.acquire(10).await.unwrap_err().reason,
            DenyReason::ExceedsCapacity { cost: 10, .. }
        ));
    }
    // execute says RateLimited with Redis's retry_after
    let l = rt.get_limiter("alg-gcra").unwrap();
    match l.execute(|| async { Ok::<_, ()>(()) }).await {
        Err(CallError::RateLimited { retry_after, .. }) => assert!(retry_after <= HOUR / 3),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn a_check_that_never_waits_needs_leased_mode() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let strict = rt
        .limiter(
            "sync-strict",
            LimiterConfig::gcra(Quota::per_hour(10)).redis(backend(&server)),
        )
        .await
        .unwrap();
    let d = strict.check().unwrap_err();
    assert_eq!(d.reason, DenyReason::NeedsAsync);
    assert!(d.to_string().contains("acquire"), "{d}");

    let leased = rt
        .limiter(
            "sync-leased",
            LimiterConfig::gcra(Quota::per_second(1000))
                .redis(backend(&server).mode(RedisMode::Leased)),
        )
        .await
        .unwrap();
    // the first acquire waits for the first lease (50 ms of the quota's rate: 50 units);
    // later checks spend it without waiting
    leased.acquire(1).await.unwrap();
    let a = leased.check().unwrap();
    assert!(
        a.remaining <= 48,
        "what is left of this instance's lease: {a:?}"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn each_fail_mode_while_redis_is_down_and_recovery_without_a_restart() {
    let mut server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let quota = LimiterConfig::gcra(Quota::per_hour(4));
    let open = rt
        .limiter(
            "down-open",
            quota
                .clone()
                .redis(backend(&server).on_failure(FailMode::Open)),
        )
        .await
        .unwrap();
    let closed = rt
        .limiter(
            "down-closed",
            quota
                .clone()
                .redis(backend(&server).on_failure(FailMode::Closed)),
        )
        .await
        .unwrap();
    let local = rt
        .limiter(
            "down-local",
            quota
                .clone()
                .redis(backend(&server).on_failure(FailMode::Local { percent: 50 })),
        )
        .await
        .unwrap();
    // spend the global quotas while Redis is up
    for l in [&open, &closed, &local] {
        for _ in 0..4 {
            l.acquire(1).await.unwrap();
        }
        assert_eq!(
            l.acquire(1).await.unwrap_err().reason,
            DenyReason::Exhausted
        );
    }

    server.stop();
    // fail open: admitted although the global quota is spent
    assert!(open.acquire(1).await.is_ok());
    next_matching(&mut events, |e| {
        matches!(e, Event::BackendHealth { name, healthy: false, .. } if &**name == "down-open")
    })
    .await;
    for _ in 0..20 {
        assert!(open.acquire(1).await.is_ok(), "fail open admits everything");
    }
    // fail closed: denied, saying the backend is down
    for _ in 0..20 {
        let d = closed.acquire(1).await.unwrap_err();
        assert_eq!(d.reason, DenyReason::BackendDown);
        assert!(d.retry_after > Duration::ZERO);
    }
    // local at 50 % of 4 per hour: a local burst of 2, then denied
    let answers: Vec<_> = futures_collect(&local, 6).await;
    assert_eq!(
        answers.iter().filter(|r| r.is_ok()).count(),
        2,
        "local share admits 2 of 6: {answers:?}"
    );
    assert!(answers[2..]
        .iter()
        .all(|r| r.as_ref().unwrap_err().reason == DenyReason::Exhausted));
    // the guard breakers opened: later checks did not even try Redis
    let guard = rt.get_breaker("down-closed.redis").unwrap();
    assert_ne!(guard.state(), palisade::BreakerState::Closed);
    assert!(guard.metrics().not_permitted > 0);

    server.restart();
    // The guard probes Redis again after open_for; the fresh server holds a fresh quota of
    // 4. Until the guard closes some checks still get BackendDown; every admitted check is
    // Redis's, so exactly 4 are admitted before Redis says Exhausted.
    let mut admitted = 0;
    let recovered = async {
        loop {
            match closed.acquire(1).await {
                Ok(_) => admitted += 1,
                Err(d) if d.reason == DenyReason::Exhausted => return,
                Err(d) => assert_eq!(d.reason, DenyReason::BackendDown),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), recovered)
        .await
        .expect("the limiter uses Redis again once it is back");
    assert_eq!(admitted, 4, "the fresh global quota, no more");
    next_matching(&mut events, |e| {
        matches!(e, Event::BackendHealth { name, healthy: true, .. } if &**name == "down-closed")
    })
    .await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_limiter_under_load_rides_out_an_outage() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let mut server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    // under load every denial is an event too: collect the health changes, skipping lag
    let mut events = rt.subscribe();
    let health = Arc::new(std::sync::Mutex::new(Vec::new()));
    let collector = {
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::BackendHealth { healthy, .. }) => {
                        health.lock().unwrap().push(healthy)
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let l = rt
        .limiter(
            "outage-leased",
            LimiterConfig::gcra(Quota::per_second(2_000)).redis(
                backend(&server)
                    .mode(RedisMode::Leased)
                    .lease_ttl(Duration::from_millis(200))
                    .on_failure(FailMode::Closed),
            ),
        )
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // [admitted, exhausted, backend down, anything else]
    let seen: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let admitted_after = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (l, stop, seen) = (l.clone(), Arc::clone(&stop), Arc::clone(&seen));
            let (after, restarted) = (Arc::clone(&admitted_after), Arc::clone(&restarted));
            tokio::spawn(async move {
                // bounded: at most 20 000 checks per task, one per millisecond
                for _ in 0..20_000 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let i = match l.acquire(1).await {
                        Ok(_) => {
                            if restarted.load(Ordering::Acquire) {
                                after.fetch_add(1, Ordering::AcqRel);
                            }
                            0
                        }
                        Err(d) if d.reason == DenyReason::Exhausted => 1,
                        Err(d) if d.reason == DenyReason::BackendDown => 2,
                        Err(_) => 3,
                    };
                    seen[i].fetch_add(1, Ordering::AcqRel);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop();
    // the lease runs out or expires: checks fail closed
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*health.lock().unwrap(), [false], "down, once");
    assert!(
        seen[2].load(Ordering::Acquire) > 0,
        "fail closed while down"
    );
    server.restart();
    restarted.store(true, Ordering::Release);
    let recovered = async {
        while admitted_after.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), recovered)
        .await
        .expect("leases come from Redis again once it is back");
    stop.store(true, Ordering::Release);
    for t in load {
        t.await.unwrap();
    }
    let counts: Vec<u64> = seen.iter().map(|c| c.load(Ordering::Acquire)).collect();
    assert!(counts[0] > 0, "{counts:?}");
    assert_eq!(
        counts[3], 0,
        "no answer other than admitted, exhausted or down: {counts:?}"
    );
    rt.shutdown().await;
    collector.abort();
    assert_eq!(*health.lock().unwrap(), [false, true], "down, then back");
}

async fn futures_collect(
    l: &palisade::Limiter,
    n: usize,
) -> Vec<Result<palisade::Allowed, palisade::Denied>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(l.acquire(1).await);
    }
    out
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_transparently() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "flush",
            LimiterConfig::gcra(Quota::per_hour(5)).redis(backend(&server)),
        )
        .await
        .unwrap();
    assert_eq!(l.acquire(1).await.unwrap().remaining, 4);
    assert_eq!(server.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK"));
    assert_eq!(
        l.acquire(1).await.unwrap().remaining,
        3,
        "state kept, script reloaded"
    );
    assert_eq!(
        rt.get_breaker("flush.redis").unwrap().metrics().failed,
        0,
        "a reload is not a backend failure"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn state_that_does_not_parse_is_a_backend_failure_not_a_misread() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let l = rt
        .limiter(
            "garbage",
            LimiterConfig::gcra(Quota::per_hour(5))
                .redis(backend(&server).on_failure(FailMode::Closed)),
        )
        .await
        .unwrap();
    assert!(l.acquire(1).await.is_ok());
    assert_eq!(
        server
            .command(&["SET", "test:garbage", "not-a-time"])
            .as_deref(),
        Some("+OK")
    );
    assert_eq!(
        l.acquire(1).await.unwrap_err().reason,
        DenyReason::BackendDown
    );
    let e = next_matching(&mut events, |e| matches!(e, Event::BackendHealth { .. })).await;
    match e {
        Event::BackendHealth { healthy, cause, .. } => {
            assert!(!healthy);
            assert!(
                cause.contains("test:garbage"),
                "the cause names the key: {cause}"
            );
        }
        _ => unreachable!(),
    }
    // a hash where a string is expected (another tool's key): a WRONGTYPE error, same answer
    assert_eq!(
        server.command(&["DEL", "test:garbage"]).as_deref(),
        Some(":1")
    );
    assert_eq!(
        server
            .command(&["HSET", "test:garbage", "x", "1"])
            .as_deref(),
        Some(":1")
    );
    assert_eq!(
        l.acquire(1).await.unwrap_err().reason,
        DenyReason::BackendDown
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn keyed_limiters_keep_a_global_quota_per_key() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let plans = |prefix: &'static str| {
        KeyedLimiterConfig::new(
            LimiterConfig::fixed_window(2, HOUR).redis(backend(&server).key("plans")),
        )
        .quota_per_key(|user: &String| {
            if user.starts_with("pro-") {
                Quota::per_hour(5)
            } else {
                Quota::per_hour(2)
            }
        })
        .redis_key(move |user: &String| format!("{prefix}{user}"))
    };
    let a = rt.keyed_limiter("keyed-a", plans("")).await.unwrap();
    let b = rt.keyed_limiter("keyed-b", plans("")).await.unwrap();
    let free = "free-1".to_owned();
    let pro = "pro-1".to_owned();
    // two limiters (two instances) share each key's quota
    assert!(a.acquire(&free, 1).await.is_ok());
    assert!(b.acquire(&free, 1).await.is_ok());
    assert_eq!(
        a.acquire(&free, 1).await.unwrap_err().reason,
        DenyReason::Exhausted
    );
    for _ in 0..5 {
        assert!(b.acquire(&pro, 1).await.is_ok());
    }
    assert!(a.acquire(&pro, 1).await.is_err());
    assert_eq!(
        a.check(&pro).unwrap_err().reason,
        DenyReason::NeedsAsync,
        "strict keyed checks need acquire"
    );
    match a.execute(&free, || async { Ok::<_, ()>(()) }).await {
        Err(CallError::RateLimited { .. }) => {}
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // the key is in Redis under prefix:key:encoded
    assert_eq!(
        server.command(&["EXISTS", "test:plans:pro-1"]).as_deref(),
        Some(":1")
    );
    assert_eq!(
        a.len(),
        0,
        "nothing is held in the local table while Redis answers"
    );
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_each_quota_lives_on_the_node_that_owns_its_slot() {
    let cluster = RedisCluster::start();
    let rt = Runtime::start().await.unwrap();
    let on_cluster = || {
        RedisBackend::cluster(cluster.urls())
            .prefix("test")
            .timeout(Duration::from_secs(1))
    };
    let users = |name: &str| {
        let config = KeyedLimiterConfig::new(
            LimiterConfig::gcra(Quota::per_hour(3)).redis(on_cluster().key("users")),
        )
        .redis_key(|user: &u32| user.to_string());
        let rt = rt.clone();
        let name = name.to_owned();
        async move { rt.keyed_limiter(&name, config).await.unwrap() }
    };
    // two instances of one keyed limiter share each user's quota
    let (a, b) = (users("cluster-a").await, users("cluster-b").await);
    for user in 0..30u32 {
        for i in 0..3 {
            let l = if i % 2 == 0 { &a } else { &b };
            l.acquire(&user, 1)
                .await
                .unwrap_or_else(|d| panic!("user {user}, check {i}: {d}"));
        }
        assert_eq!(
            b.acquire(&user, 1).await.unwrap_err().reason,
            DenyReason::Exhausted,
            "user {user}"
        );
    }
    let per_node: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.command(&["DBSIZE"])
                .and_then(|r| r.trim_start_matches(':').parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(
        per_node.iter().sum::<u64>(),
        30,
        "one key per user: {per_node:?}"
    );
    assert!(
        per_node.iter().all(|&n| n > 0),
        "30 keys spread over every node's slots: {per_node:?}"
    );
    // a direct limiter, strict and leased, and a script cache flushed on every node
    let strict = rt
        .limiter(
            "cluster-strict",
            LimiterConfig::fixed_window(5, HOUR).redis(on_cluster()),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        strict.acquire(1).await.unwrap();
    }
    for n in &cluster.nodes {
        assert_eq!(n.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK"));
    }
    for _ in 0..3 {
        strict.acquire(1).await.unwrap();
    }
    assert_eq!(
        strict.acquire(1).await.unwrap_err().reason,
        DenyReason::Exhausted
    );
    let leased = rt
        .limiter(
            "cluster-leased",
            LimiterConfig::gcra(Quota::per_second(1000))
                .redis(on_cluster().mode(RedisMode::Leased)),
        )
        .await
        .unwrap();
    leased.acquire(1).await.unwrap();
    assert!(
        leased.check().is_ok(),
        "spent from the lease taken on the cluster"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_policy_spends_a_redis_limiter_per_attempt() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "policy-redis",
            LimiterConfig::gcra(Quota::per_hour(2)).redis(backend(&server)),
        )
        .await
        .unwrap();
    let policy = Policy::new().limiter(&l);
    for _ in 0..2 {
        policy.execute(|| async { Ok::<_, ()>(1) }).await.unwrap();
    }
    assert!(matches!(
        policy.execute(|| async { Ok::<_, ()>(1) }).await,
        Err(CallError::RateLimited { .. })
    ));
    rt.shutdown().await;
}

#[tokio::test]
async fn bad_redis_settings_name_their_field() {
    let rt = Runtime::start().await.unwrap();
    let quota = LimiterConfig::gcra(Quota::per_second(5));
    let cases = [
        (RedisBackend::new("not a url"), "redis.url"),
        (RedisBackend::cluster(Vec::<String>::new()), "redis.url"),
        (
            RedisBackend::cluster(["redis://127.0.0.1:1/", "nope"]),
            "redis.url",
        ),
        (
            RedisBackend::new("redis://127.0.0.1:1/").prefix(""),
            "redis.prefix",
        ),
        (
            RedisBackend::new("redis://127.0.0.1:1/").key("a b"),
            "redis.key",
        ),
        (
            RedisBackend::new("redis://127.0.0.1:1/").timeout(Duration::ZERO),
            "redis.timeout",
        ),
        (
            RedisBackend::new("redis://127.0.0.1:1/")
                .lease_window(Duration::from_secs(2))
                .lease_ttl(Duration::from_secs(1)),
            "redis.lease_ttl",
        ),
        (
            RedisBackend::new("redis://127.0.0.1:1/").on_failure(FailMode::Local { percent: 0 }),
            "redis.on_failure",
        ),
    ];
    for (i, (backend, field)) in cases.into_iter().enumerate() {
        let e = rt
            .limiter(&format!("bad-{i}"), quota.clone().redis(backend))
            .await
            .unwrap_err();
        assert_eq!(config_error(e).field, field);
        assert!(
            rt.get_breaker(&format!("bad-{i}.redis")).is_none(),
            "no guard is left behind by a refused config"
        );
    }
    let keyed = KeyedLimiterConfig::<String>::new(
        quota
            .clone()
            .redis(RedisBackend::new("redis://127.0.0.1:1/")),
    );
    let e = rt
        .keyed_limiter("bad-keyed", keyed.clone())
        .await
        .unwrap_err();
    assert_eq!(config_error(e).field, "redis_key");
    let leased = KeyedLimiterConfig::<String>::new(
        quota.redis(RedisBackend::new("redis://127.0.0.1:1/").mode(RedisMode::Leased)),
    )
    .redis_key(|k| k.clone());
    let e = rt.keyed_limiter("bad-keyed-2", leased).await.unwrap_err();
    assert_eq!(config_error(e).field, "redis.mode");
    assert!(
        rt.get_breaker("bad-keyed-2.redis").is_none(),
        "refused before its guard is spawned"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_running_limiter_keeps_its_backend() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "keep-backend",
            LimiterConfig::gcra(Quota::per_hour(2)).redis(backend(&server)),
        )
        .await
        .unwrap();
    let moved = l.reconfigure(LimiterConfig::gcra(Quota::per_hour(2))).await;
    assert!(matches!(moved, Err(palisade::ControlError::Config(ref e)) if e.field == "redis"));
    // the quota may change and Redis's state stays: one unit spent of 2 per hour (TAT half
    // an hour ahead), then 3 per hour: one more fits, with nothing left (a fresh state
    // would say 2 left)
    l.acquire(1).await.unwrap();
    l.reconfigure(LimiterConfig::gcra(Quota::per_hour(3)).redis(backend(&server)))
        .await
        .unwrap();
    assert_eq!(l.acquire(1).await.unwrap().remaining, 0);
    assert_eq!(
        l.acquire(1).await.unwrap_err().reason,
        DenyReason::Exhausted
    );
    rt.shutdown().await;
}

/// A leased limiter whose actor is left down (a restart meltdown) keeps admitting from a
/// healthy Redis, through `acquire` and through `check`: the actor refilled the lease, and
/// a refill claim it never ran (or a check that could not hand one over) starved every
/// caller: 0 admitted, each `acquire` waiting ~100 ms for `Exhausted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_leased_limiter_keeps_refilling_from_redis() {
    let server = RedisServer::start();
    for (i, fail) in [FailMode::Closed, FailMode::Open].into_iter().enumerate() {
        let rt = Runtime::builder().max_restarts(0).start().await.unwrap();
        let mut events = rt.subscribe();
        let name = format!("degraded-leased-{i}");
        let l = rt
            .limiter(
                &name,
                LimiterConfig::gcra(Quota::per_second(2_000))
                    .redis(backend(&server).mode(RedisMode::Leased).on_failure(fail)),
            )
            .await
            .unwrap();
        // one lease first, so a refill is due soon after the actor is gone
        l.acquire(1).await.unwrap();
        palisade::ractor::registry::where_is(format!("palisade.limiter.{name}"))
            .expect("running")
            .kill();
        next_matching(&mut events, |e| matches!(e, Event::ActorDegraded { .. })).await;
        let start = Instant::now();
        let (mut acquired, mut checked) = (0u64, 0u64);
        let mut slowest = Duration::ZERO;
        while start.elapsed() < Duration::from_millis(600) {
            let t = Instant::now();
            acquired += u64::from(l.acquire(1).await.is_ok());
            slowest = slowest.max(t.elapsed());
            checked += u64::from(l.check().is_ok());
            tokio::task::yield_now().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        // the quota allows 2,000 a second; a tenth of that is far above the 0 seen before
        let floor = (2_000.0 * elapsed / 10.0) as u64;
        assert!(
            acquired + checked >= floor,
            "{fail:?}: admitted {acquired} + {checked} in {elapsed:.2} s, expected at least {floor}"
        );
        assert!(checked > 0, "{fail:?}: check() admitted nothing");
        assert!(
            slowest < Duration::from_millis(300),
            "{fail:?}: an acquire waited {slowest:?} on a healthy Redis"
        );
        rt.shutdown().await;
    }
}

/// The first checks after spawn, made at once from many tasks, are admitted while the
/// global quota has room: never `BackendDown`, and in leased mode never `Exhausted` (one
/// refill sized for the first check left the other waiters denied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_concurrent_checks_after_spawn_reach_a_healthy_redis() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    for (i, mode) in [RedisMode::Strict, RedisMode::Leased]
        .into_iter()
        .enumerate()
    {
        let l = rt
            .limiter(
                &format!("first-checks-{i}"),
                LimiterConfig::gcra(Quota::per_hour(1_000))
                    .redis(backend(&server).mode(mode).on_failure(FailMode::Closed)),
            )
            .await
            .unwrap();
        let checks: Vec<_> = (0..16)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.acquire(1).await })
            })
            .collect();
        for c in checks {
            let r = c.await.unwrap();
            assert!(r.is_ok(), "{mode:?}: {r:?}");
        }
    }
    rt.shutdown().await;
}

/// A loopback proxy to `port` that counts the connections it accepts and holds each
/// `delay` before forwarding it: a Redis that is slow to connect to.
async fn slow_proxy(
    port: u16,
    delay: Duration,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (proxy_port, accepted)
}

/// Spawning a Redis-backed limiter makes its connection, so the first checks do not race
/// it (they answered `BackendDown` while a lazy connection was still being made); a
/// backend that does not answer at spawn is reported down at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawning_a_redis_limiter_makes_its_connection() {
    use std::sync::atomic::Ordering;
    let server = RedisServer::start();
    let (port, accepted) = slow_proxy(server.port(), Duration::from_millis(30)).await;
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let url = format!("redis://127.0.0.1:{port}/");
    let l = rt
        .limiter(
            "connect-at-spawn",
            LimiterConfig::gcra(Quota::per_hour(100))
                .redis(RedisBackend::new(url.clone()).on_failure(FailMode::Closed)),
        )
        .await
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "connected at spawn");
    let checks: Vec<_> = (0..8)
        .map(|_| {
            let l = l.clone();
            tokio::spawn(async move { l.acquire(1).await })
        })
        .collect();
    for c in checks {
        let r = c.await.unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    let keyed = rt
        .keyed_limiter(
            "connect-at-spawn-keyed",
            KeyedLimiterConfig::new(
                LimiterConfig::gcra(Quota::per_hour(100))
                    .redis(RedisBackend::new(url).on_failure(FailMode::Closed)),
            )
            .redis_key(|k: &u32| k.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "the keyed one too");
    assert!(keyed.acquire(&1, 1).await.is_ok());

    // nothing listens here: spawn still succeeds, in the fail mode from the start
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let down = rt
        .limiter(
            "connect-at-spawn-down",
            LimiterConfig::gcra(Quota::per_hour(100)).redis(
                RedisBackend::new(format!("redis://127.0.0.1:{closed}/"))
                    .on_failure(FailMode::Closed),
            ),
        )
        .await
        .unwrap();
    let e = next_matching(&mut events, |e| {
        matches!(e, Event::BackendHealth { healthy: false, name, .. } if &**name == "connect-at-spawn-down")
    })
    .await;
    assert!(matches!(e, Event::BackendHealth { .. }));
    assert_eq!(
        down.acquire(1).await.unwrap_err().reason,
        DenyReason::BackendDown
    );
    // a call through it says so, with its own variant and a retry hint
    let r = down.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(r, Err(CallError::BackendDown { retry_after, .. }) if retry_after > Duration::ZERO),
        "{r:?}"
    );
    rt.shutdown().await;
}

/// A limiter whose backend is refused after validation (a cluster whose nodes disagree on
/// their credentials: every URL parses, the cluster client refuses them together) leaves
/// no `<name>.redis` guard behind, and the name stays free.
#[tokio::test(start_paused = true)]
async fn a_refused_redis_limiter_leaves_no_guard_behind() {
    let rt = Runtime::start().await.unwrap();
    let backend = RedisBackend::cluster([
        "redis://alice:one@127.0.0.1:1/",
        "redis://alice:two@127.0.0.1:2/",
    ]);
    let config = LimiterConfig::gcra(Quota::per_second(10)).redis(backend);
    let refused = rt.limiter("api", config).await.unwrap_err();
    assert!(
        refused.to_string().contains("cannot set up a connection"),
        "{refused}"
    );
    assert!(
        !refused.to_string().contains("two"),
        "a password shown: {refused}"
    );
    assert!(rt.get_breaker("api.redis").is_none(), "a guard was left");
    rt.limiter("api", LimiterConfig::gcra(Quota::per_second(10)))
        .await
        .unwrap();
    assert!(rt
        .snapshot()
        .primitives
        .iter()
        .all(|p| &*p.name != "api.redis"));
    rt.shutdown().await;
}

/// A plain tower service for the layer tests: echoes its request.
#[derive(Clone)]
struct Echo;

impl tower_service::Service<u32> for Echo {
    type Response = u32;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<u32, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        std::future::ready(Ok(n))
    }
}

/// The limiter layers decide a strict Redis limiter's checks with their round trip inside
/// the response future (the remote path), for a direct and a keyed limiter.
#[tokio::test]
async fn the_limiter_layers_decide_strict_redis_limits() {
    use palisade::layer::{key_fn, KeyedLimiterLayer, LimiterLayer};
    use tower_layer::Layer;
    use tower_service::Service;
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let config =
        LimiterConfig::gcra(Quota::per_hour(2)).redis(backend(&server).mode(RedisMode::Strict));
    let direct = rt.limiter("layer-redis", config.clone()).await.unwrap();
    let mut svc = LimiterLayer::new(&direct).layer(Echo);
    assert_eq!(svc.call(1).await.unwrap(), 1);
    assert_eq!(svc.call(2).await.unwrap(), 2);
    assert!(matches!(
        svc.call(3).await,
        Err(CallError::RateLimited { .. })
    ));

    let keyed = rt
        .keyed_limiter::<u32>(
            "layer-redis-keyed",
            KeyedLimiterConfig::new(config).redis_key(|k: &u32| k.to_string()),
        )
        .await
        .unwrap();
    let mut svc = KeyedLimiterLayer::new(&keyed, key_fn(|n: &u32| Some(*n % 2))).layer(Echo);
    assert_eq!(svc.call(2).await.unwrap(), 2);
    assert_eq!(svc.call(4).await.unwrap(), 4);
    assert!(
        matches!(svc.call(6).await, Err(CallError::RateLimited { .. })),
        "key 0 spent"
    );
    assert_eq!(
        svc.call(1).await.unwrap(),
        1,
        "key 1 has its own quota in Redis"
    );
    rt.shutdown().await;
}

/// What each Redis fault test uses: the backend's timeout, and how far past it an answer
/// may come (scheduling on a 2-core VM under a parallel test run).
const FAULT_TIMEOUT: Duration = Duration::from_millis(100);
const FAULT_BOUND: Duration = Duration::from_millis(200);

/// One limiter per mode (strict, leased) and fail mode (open, closed, local 50 %), each
/// on `url` with 8 of its 10 an hour spent while Redis answers.
async fn limiters_in_every_mode(
    rt: &Runtime,
    url: &str,
    test: &str,
) -> Vec<(String, RedisMode, FailMode, palisade::Limiter)> {
    let quota = LimiterConfig::gcra(Quota::per_hour(10).burst(10));
    let mut limiters = Vec::new();
    for mode in [RedisMode::Strict, RedisMode::Leased] {
        for (tag, fail) in [
            ("open", FailMode::Open),
            ("closed", FailMode::Closed),
            ("local", FailMode::Local { percent: 50 }),
        ] {
            let name = format!(
                "{test}-{}-{tag}",
                if mode == RedisMode::Strict {
                    "strict"
                } else {
                    "leased"
                }
            );
            let backend = RedisBackend::new(url)
                .prefix(test)
                .mode(mode)
                .timeout(FAULT_TIMEOUT)
                .open_for(Duration::from_millis(300))
                .on_failure(fail);
            let l = rt
                .limiter(&name, quota.clone().redis(backend))
                .await
                .unwrap();
            let mut spent = 0;
            for _ in 0..40 {
                if spent == 8 {
                    break;
                }
                if l.acquire(1).await.is_ok() {
                    spent += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            assert_eq!(spent, 8, "{name}");
            limiters.push((name, mode, fail, l));
        }
    }
    limiters
}

/// 12 checks on each limiter while Redis cannot answer in time: each mode keeps its bound
/// (fail open admits, strict fail closed admits nothing, the local share at most 5 of 10,
/// a leased limiter its 2 units left plus that share). Returns the longest answer.
async fn checks_while_redis_cannot_answer(
    limiters: &[(String, RedisMode, FailMode, palisade::Limiter)],
) -> Duration {
    let mut longest = Duration::ZERO;
    for (name, mode, fail, l) in limiters {
        let mut admitted = 0;
        for _ in 0..12 {
            let began = Instant::now();
            if l.acquire(1).await.is_ok() {
                admitted += 1;
            }
            longest = longest.max(began.elapsed());
        }
        match (mode, fail) {
            (_, FailMode::Open) => assert_eq!(admitted, 12, "{name}: fail open admits"),
            (RedisMode::Strict, FailMode::Closed) => {
                assert_eq!(admitted, 0, "{name}: fail closed denies")
            }
            // the local share of 10 an hour at 50 %: a burst of 5, whatever was spent remotely
            (RedisMode::Strict, _) => assert!(
                admitted <= 5,
                "{name}: {admitted} admitted past the local share"
            ),
            // a leased limiter spends what its lease still holds, then its fail mode: never more
            // than the 2 units left of the global quota plus the local share
            (RedisMode::Leased, FailMode::Closed) => assert!(admitted <= 2, "{name}: {admitted}"),
            (RedisMode::Leased, _) => assert!(admitted <= 2 + 5, "{name}: {admitted}"),
            _ => {}
        }
    }
    assert!(
        longest <= FAULT_TIMEOUT + FAULT_BOUND,
        "the longest answer while Redis could not answer in time: {longest:?}"
    );
    longest
}

/// Every limiter reports the backend down; strict limiters' guards have opened. (Strict
/// checks call Redis each time: enough failures to trip the guard. A leased limiter's
/// actor calls it once per refill, too few for the guard's window: it reports the backend
/// down and follows its fail mode all the same.)
async fn every_limiter_reports_redis_down(
    rt: &Runtime,
    events: &mut palisade::EventStream,
    limiters: &[(String, RedisMode, FailMode, palisade::Limiter)],
) {
    for (name, mode, ..) in limiters {
        next_matching(
            events,
            |e| matches!(e, Event::BackendHealth { name: n, healthy: false, .. } if **n == **name),
        )
        .await;
        if *mode == RedisMode::Strict {
            let guard = rt.get_breaker(&format!("{name}.redis")).unwrap();
            assert_ne!(
                guard.state(),
                palisade::BreakerState::Closed,
                "{name}: the guard opened"
            );
        }
    }
}

/// Once Redis answers again, every limiter reports it healthy and its guard closes,
/// within 10 s and without a restart.
async fn every_limiter_is_back_on_redis(
    rt: &Runtime,
    events: &mut palisade::EventStream,
    limiters: &[(String, RedisMode, FailMode, palisade::Limiter)],
) {
    let mut healthy = std::collections::HashSet::new();
    let back = async {
        loop {
            for (_, _, _, l) in limiters {
                let _ = l.acquire(1).await;
            }
            for e in common::drain(events) {
                if let Event::BackendHealth {
                    name,
                    healthy: true,
                    ..
                } = e
                {
                    healthy.insert(name.to_string());
                }
            }
            let done = limiters.iter().all(|(name, ..)| {
                healthy.contains(name)
                    && rt.get_breaker(&format!("{name}.redis")).unwrap().state()
                        == palisade::BreakerState::Closed
            });
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), back)
        .await
        .expect("every limiter is back on Redis, its guard closed, within 10 s");
}

/// A stalled Redis (SIGSTOP: connections open, nothing answers), in strict and leased
/// modes under every fail mode: every check answers within the backend's timeout plus a
/// small bound, the guard breakers open and close again after SIGCONT, and strict mode
/// never admits past the global quota unless told to fail open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_answers_within_the_timeout_in_every_mode() {
    let server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let limiters = limiters_in_every_mode(&rt, &server.url(), "stall").await;

    server.pause();
    let longest = checks_while_redis_cannot_answer(&limiters).await;
    every_limiter_reports_redis_down(&rt, &mut events, &limiters).await;

    server.resume();
    every_limiter_is_back_on_redis(&rt, &mut events, &limiters).await;
    println!("longest answer while Redis stalled: {longest:?} (timeout {FAULT_TIMEOUT:?})");
    rt.shutdown().await;
}

/// A Redis outage (the server killed, then started again empty on the same port), in
/// strict and leased modes under every fail mode: every check answers within the timeout
/// plus a small bound, each fail mode keeps its bound, the guards open, and once the
/// server is back every limiter returns to it without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_answers_within_the_timeout_in_every_mode() {
    let mut server = RedisServer::start();
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let limiters = limiters_in_every_mode(&rt, &server.url(), "outage").await;

    server.stop();
    let longest = checks_while_redis_cannot_answer(&limiters).await;
    every_limiter_reports_redis_down(&rt, &mut events, &limiters).await;

    server.restart();
    every_limiter_is_back_on_redis(&rt, &mut events, &limiters).await;
    println!("longest answer while Redis was down: {longest:?} (timeout {FAULT_TIMEOUT:?})");
    rt.shutdown().await;
}

/// A slow network to Redis (a proxy delaying every byte both ways), in strict and leased
/// modes under every fail mode. Slow but within the timeout (30 ms each way against a
/// 100 ms timeout), Redis still decides: strict limiters admit exactly the 2 units the
/// global quota has left, and nothing is reported down. Slower than the timeout (400 ms
/// each way), every check answers within the timeout plus a small bound, each fail mode
/// keeps its bound and the guards open; with the delay gone, everything is back on Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_network_to_redis_answers_within_the_timeout_in_every_mode() {
    let server = RedisServer::start();
    let proxy = common::latency_proxy::LatencyProxy::start(server.port()).await;
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let limiters = limiters_in_every_mode(&rt, &proxy.url(), "slow").await;

    // slow, within the timeout: Redis still decides
    proxy.set_delay(Duration::from_millis(30));
    let mut slowest = Duration::ZERO;
    for (name, mode, _, l) in &limiters {
        if *mode != RedisMode::Strict {
            continue;
        }
        let mut admitted = 0;
        for _ in 0..4 {
            let began = Instant::now();
            if l.acquire(1).await.is_ok() {
                admitted += 1;
            }
            slowest = slowest.max(began.elapsed());
        }
        assert_eq!(
            admitted, 2,
            "{name}: Redis decides while it answers in time"
        );
    }
    assert!(
        slowest >= Duration::from_millis(60),
        "the proxy delays a round trip: {slowest:?}"
    );
    let down: Vec<_> = common::drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, Event::BackendHealth { healthy: false, .. }))
        .collect();
    assert!(
        down.is_empty(),
        "a slow Redis within the timeout is not down: {down:?}"
    );

    // slower than the timeout
    proxy.set_delay(Duration::from_millis(400));
    let longest = checks_while_redis_cannot_answer(&limiters).await;
    every_limiter_reports_redis_down(&rt, &mut events, &limiters).await;

    proxy.set_delay(Duration::ZERO);
    every_limiter_is_back_on_redis(&rt, &mut events, &limiters).await;
    println!(
        "slow network: round trips of {slowest:?} within the timeout; longest answer {longest:?} with 800 ms round trips (timeout {FAULT_TIMEOUT:?})"
    );
    rt.shutdown().await;
}
