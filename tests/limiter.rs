//! Rate limiters through the public API, on paused time.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::next_matching;
use palisade::limiter::DenyReason;
use palisade::{
    deadline, CallError, ControlError, Event, KeyedLimiterConfig, LimiterConfig, Quota, Runtime,
    SpawnError,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// Spends the quota at one instant and checks the request at the limit, one past it, the
/// exact retry_after, and admission after waiting it.
async fn boundary(
    rt: &Runtime,
    name: &str,
    config: LimiterConfig,
    limit: u32,
    retry_after: Duration,
) {
    let l = rt.limiter(name, config).await.unwrap();
    for i in 0..limit {
        let a = l
            .check()
            .unwrap_or_else(|d| panic!("{name}: request {i} denied: {d}"));
        assert_eq!(
            a.remaining,
            limit - i - 1,
            "{name}: remaining after request {i}"
        );
    }
    let d = l.check().expect_err("one past the limit");
    assert_eq!(
        (d.retry_after, d.reason),
        (retry_after, DenyReason::Exhausted),
        "{name}"
    );
    tokio::time::advance(retry_after - Duration::from_nanos(1)).await;
    assert!(l.check().is_err(), "{name}: 1 ns before retry_after");
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert!(l.check().is_ok(), "{name}: at retry_after");
}

#[tokio::test(start_paused = true)]
async fn every_algorithm_at_its_exact_boundaries() {
    let rt = Runtime::start().await.unwrap();
    boundary(
        &rt,
        "lim-gcra",
        LimiterConfig::gcra(Quota::per_second(10)),
        10,
        100 * MS,
    )
    .await;
    boundary(
        &rt,
        "lim-gcra-burst",
        LimiterConfig::gcra(Quota::per_second(10).burst(3)),
        3,
        100 * MS,
    )
    .await;
    boundary(
        &rt,
        "lim-bucket",
        LimiterConfig::token_bucket(5, Quota::per_second(2)),
        5,
        500 * MS,
    )
    .await;
    boundary(
        &rt,
        "lim-leaky",
        LimiterConfig::leaky_bucket(Quota::per_second(4)),
        1,
        250 * MS,
    )
    .await;
    // windows are aligned to the limiter's clock origin (its spawn): the quota is spent at 0
    boundary(
        &rt,
        "lim-fixed",
        LimiterConfig::fixed_window(3, SEC),
        3,
        SEC,
    )
    .await;
    // the 4th waits for the next window, where the 3 weigh 3·(1 - e): one slot frees at e = 1/3
    boundary(
        &rt,
        "lim-sliding",
        LimiterConfig::sliding_window(3, 3 * SEC),
        3,
        4 * SEC,
    )
    .await;
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn costs_execute_and_impossible_requests() {
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter("lim-cost", LimiterConfig::gcra(Quota::per_second(10)))
        .await
        .unwrap();
    assert_eq!(l.check_n(7).unwrap().remaining, 3);
    let d = l.check_n(4).expect_err("only 3 left");
    assert_eq!((d.remaining, d.retry_after), (3, 100 * MS));
    let d = l.check_n(11).expect_err("never fits");
    assert_eq!(
        d.reason,
        DenyReason::ExceedsCapacity {
            cost: 11,
            capacity: 10
        }
    );
    assert_eq!(d.retry_after, Duration::MAX);
    assert!(d.to_string().contains("can never be admitted"), "{d}");
    l.check_n(3).unwrap();
    let r = l.execute(|| async { Ok::<_, ()>(1) }).await;
    assert!(
        matches!(r, Err(CallError::RateLimited { retry_after, .. }) if retry_after == 100 * MS),
        "{r:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn waiting_variants_wait_exactly_and_never_past_the_deadline() {
    let rt = Runtime::start().await.unwrap();
    let l = rt
        .limiter(
            "lim-wait",
            LimiterConfig::gcra(Quota::per_second(10).burst(1)),
        )
        .await
        .unwrap();
    l.check().unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        l.execute_waiting(|| async { Ok::<_, ()>(5) })
            .await
            .unwrap(),
        5
    );
    assert_eq!(start.elapsed(), 100 * MS);
    // the next unit is 100 ms away; a 50 ms deadline cannot wait for it: denied at once
    let start = tokio::time::Instant::now();
    let r = deadline::within(50 * MS, l.until_ready(1)).await.unwrap();
    assert_eq!(r.expect_err("does not fit").retry_after, 100 * MS);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let r = deadline::within(150 * MS, l.until_ready(1)).await.unwrap();
    assert!(r.is_ok());
    assert!(
        l.until_ready(2).await.is_err(),
        "a cost above the burst is refused, not awaited"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn denials_publish_events_and_shadow_mode_never_denies() {
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let l = rt
        .limiter("lim-events", LimiterConfig::fixed_window(1, SEC))
        .await
        .unwrap();
    l.check().unwrap();
    assert!(l.check().is_err());
    let e = next_matching(&mut events, |e| matches!(e, Event::CallRejected { .. })).await;
    assert!(
        matches!(e, Event::CallRejected { shadow: false, retry_after: Some(d), .. } if d == SEC)
    );

    let s = rt
        .limiter(
            "lim-shadow",
            LimiterConfig::fixed_window(1, SEC).shadow(true),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(s.check().is_ok(), "shadow mode never denies");
    }
    let e = next_matching(&mut events, |e| e.name() == "lim-shadow").await;
    assert!(
        matches!(e, Event::CallRejected { shadow: true, .. }),
        "{e:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reconfiguration_keeps_the_state_and_the_family() {
    let rt = Runtime::start().await.unwrap();
    let mut events = rt.subscribe();
    let l = rt
        .limiter("lim-reconf", LimiterConfig::gcra(Quota::per_second(10)))
        .await
        .unwrap();
    for _ in 0..10 {
        l.check().unwrap();
    }
    l.reconfigure(LimiterConfig::gcra(Quota::per_second(100)))
        .await
        .unwrap();
    next_matching(&mut events, |e| matches!(e, Event::Reconfigured { .. })).await;
    // no fresh burst: the spent quota is still spent (the TAT is kept, the next unit is
    // due in 1 s minus the new 100-burst tolerance: denied now)
    let d = l.check().expect_err("no fresh burst from a config change");
    assert_eq!(d.remaining, 0);
    let e = l
        .reconfigure(LimiterConfig::fixed_window(5, SEC))
        .await
        .expect_err("family");
    assert!(
        matches!(e, ControlError::Config(ref c) if c.field == "kind"),
        "{e}"
    );
    let e = l
        .reconfigure(LimiterConfig::gcra(Quota::per_second(0)))
        .await
        .expect_err("zero");
    assert!(
        matches!(e, ControlError::Config(ref c) if c.field == "quota.count"),
        "{e}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn keyed_reconfiguration_moves_every_key_without_a_quota_of_its_own() {
    let rt = Runtime::start().await.unwrap();
    let hour = Duration::from_secs(3600);
    let base = rt
        .keyed_limiter::<u32>("keyed-reconf", LimiterConfig::gcra(Quota::per_hour(2)))
        .await
        .unwrap();
    let tiers = rt
        .keyed_limiter::<u32>(
            "keyed-reconf-tiers",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_hour(2)))
                .quota_per_key(|_| Quota::per_hour(2)),
        )
        .await
        .unwrap();
    for l in [&base, &tiers] {
        l.check_n(&7, 2).unwrap();
        assert_eq!(l.check(&7).unwrap_err().retry_after, hour / 2);
        l.reconfigure(LimiterConfig::gcra(Quota::per_hour(4)))
            .await
            .unwrap();
    }
    // the spent key keeps its TAT (an hour ahead) under the new interval of 15 minutes
    assert_eq!(base.check(&7).unwrap_err().retry_after, hour / 4);
    assert_eq!(base.check_n(&8, 4).unwrap().remaining, 0, "new keys too");
    // a key whose quota came from the resolver keeps it
    assert_eq!(tiers.check(&7).unwrap_err().retry_after, hour / 2);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_quotas_are_refused_at_spawn_naming_the_field() {
    let rt = Runtime::start().await.unwrap();
    let e = rt
        .limiter("lim-bad", LimiterConfig::gcra(Quota::per_second(0)))
        .await
        .expect_err("zero rate");
    assert!(
        matches!(e, SpawnError::Config(ref c) if c.field == "quota.count"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "invalid `quota.count` = 0: the rate must be at least 1 per period"
    );
    let e = rt
        .keyed_limiter::<u64>(
            "lim-bad-keyed",
            LimiterConfig::sliding_window(10, Duration::ZERO),
        )
        .await
        .expect_err("zero window");
    assert!(
        matches!(e, SpawnError::Config(ref c) if c.field == "window"),
        "{e}"
    );
    assert!(rt.get_limiter("lim-bad").is_none());
    // absurd periods, windows and refills are refused by name: `until_ready` on them would
    // have waited up to 146 years
    let year = Duration::from_secs(366 * 86_400);
    let absurd = [
        (LimiterConfig::sliding_window(10, 146 * year), "window"),
        (LimiterConfig::fixed_window(10, year + SEC), "window"),
        (LimiterConfig::gcra(Quota::new(1, 2 * year)), "quota.period"),
        (
            LimiterConfig::gcra(Quota::per_second(1).burst(u32::MAX)),
            "quota.burst",
        ),
        (
            LimiterConfig::token_bucket(u32::MAX, Quota::per_minute(1)),
            "capacity",
        ),
        (
            LimiterConfig::leaky_bucket(Quota::new(1, 400 * 86_400 * SEC)),
            "quota.period",
        ),
    ];
    for (i, (config, field)) in absurd.into_iter().enumerate() {
        let e = rt
            .limiter(&format!("lim-absurd-{i}"), config)
            .await
            .expect_err(field);
        assert!(
            matches!(e, SpawnError::Config(ref c) if c.field == field),
            "{field}: {e}"
        );
        assert!(e.to_string().contains("366 days"), "{e}");
    }
    // the limit itself is accepted: a yearly quota
    rt.limiter("lim-yearly", LimiterConfig::fixed_window(1000, year))
        .await
        .expect("a year is the limit");
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn keyed_limits_per_plan_reset_and_idle_eviction() {
    let rt = Runtime::start().await.unwrap();
    let config = KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_second(1)))
        .quota_per_key(|user: &String| {
            if user.starts_with("pro-") {
                Quota::per_second(10)
            } else if user.starts_with("broken-") {
                Quota::per_second(0)
            } else {
                Quota::per_second(2)
            }
        })
        .idle_sweep(10 * SEC);
    let users = rt.keyed_limiter("lim-plans", config).await.unwrap();
    let (free, pro) = ("free-ann".to_string(), "pro-bob".to_string());
    assert_eq!(users.check(&free).unwrap().remaining, 1);
    users.check(&free).unwrap();
    assert!(users.check(&free).is_err(), "free: 2 per second");
    for _ in 0..10 {
        users.check(&pro).unwrap();
    }
    assert!(users.check(&pro).is_err(), "pro: 10 per second");
    let d = users
        .check(&"broken-carl".to_string())
        .expect_err("invalid resolved quota");
    assert_eq!(
        d.reason,
        DenyReason::InvalidQuota {
            field: "quota.count"
        }
    );
    assert_eq!(users.len(), 2, "an invalid key is not stored");
    assert!(users.reset(&free));
    assert_eq!(
        users.check(&free).unwrap().remaining,
        1,
        "reset: full quota again"
    );
    assert!(rt.get_keyed_limiter::<String>("lim-plans").is_some());
    assert!(
        rt.get_keyed_limiter::<u64>("lim-plans").is_none(),
        "typed look-up"
    );
    // both keys are back at a full quota after 1 s; the sweep at 10 s drops them
    tokio::time::advance(10 * SEC).await;
    common::settle().await;
    assert_eq!(users.len(), 0);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_million_distinct_keys_never_hold_more_than_the_cap_nor_reset_a_held_key() {
    let rt = Runtime::start().await.unwrap();
    let cap = 10_000;
    let keyed = rt
        .keyed_limiter(
            "lim-memory",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_hour(5))).max_keys(cap),
        )
        .await
        .unwrap();
    let mut most = 0;
    let mut admitted = 0u64;
    for key in 0..1_000_000u64 {
        admitted += u64::from(keyed.check(&key).is_ok());
        most = most.max(keyed.len());
        if key % 100_000 == 0 {
            tokio::time::advance(MS).await;
        }
    }
    assert_eq!(most, cap as usize, "never one key more than the cap");
    assert_eq!(keyed.len(), cap as usize);
    // each held key once, then the new keys past the cap share one quota of 5 per hour
    assert_eq!(admitted, u64::from(cap) + 5);
    // a held key kept its state through the flood: its quota is still partly spent
    assert_eq!(keyed.check(&0).unwrap().remaining, 3);
    rt.shutdown().await;
}

/// Touching many new keys between two checks of a key at its limit must not hand that key
/// a fresh quota (the key escaped its limit when the table dropped the least recently seen
/// keys to make room).
#[tokio::test(start_paused = true)]
async fn flooding_new_keys_never_resets_a_held_keys_quota() {
    let rt = Runtime::start().await.unwrap();
    let keyed = rt
        .keyed_limiter(
            "lim-escape",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_minute(1))).max_keys(64),
        )
        .await
        .unwrap();
    let victim = u64::MAX;
    let mut admitted = 0;
    let mut fresh = 0u64;
    for _ in 0..20 {
        admitted += u32::from(keyed.check(&victim).is_ok());
        for _ in 0..200 {
            let _ = keyed.check(&fresh);
            fresh += 1;
            assert!(keyed.len() <= 64, "held {} keys", keyed.len());
        }
        tokio::time::advance(MS).await;
    }
    assert_eq!(admitted, 1, "1 per minute, whatever other keys do");
    // once the held keys are back at a full quota they are idle, and make room
    tokio::time::advance(SEC * 60).await;
    assert!(
        keyed.check(&(fresh + 1)).is_ok(),
        "a new key gets its own quota"
    );
    assert!(keyed.check(&(fresh + 1)).is_err(), "its own: 1 per minute");
    assert!(
        keyed.check(&victim).is_ok(),
        "the victim's next unit, a minute on"
    );
    rt.shutdown().await;
}

#[test]
fn two_threads_hammering_one_limiter_never_admit_more_than_the_quota() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (prt, gcra, fixed) = rt.block_on(async {
        let prt = Runtime::start().await.unwrap();
        let gcra = prt
            .limiter(
                "lim-threads-gcra",
                LimiterConfig::gcra(Quota::per_hour(1000)),
            )
            .await
            .unwrap();
        let fixed = prt
            .limiter(
                "lim-threads-fixed",
                LimiterConfig::fixed_window(1000, Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        (prt, gcra, fixed)
    });
    for limiter in [gcra, fixed] {
        let admitted = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..50_000 {
                        if limiter.check().is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // per hour: one more unit takes 3.6 s, far longer than 100,000 checks
        assert_eq!(admitted.load(Ordering::Relaxed), 1000, "{}", limiter.name());
    }
    rt.block_on(prt.shutdown());
}

/// `status()` tells what a check of one unit would get, for every algorithm, and spends
/// nothing; a keyed limiter's `status_of` stores no key.
#[tokio::test(start_paused = true)]
async fn status_tells_what_a_check_would_get_and_spends_nothing() {
    let rt = Runtime::start().await.unwrap();
    for (i, config) in [
        LimiterConfig::gcra(Quota::per_second(2)),
        LimiterConfig::token_bucket(2, Quota::per_second(2)),
        LimiterConfig::fixed_window(2, SEC),
        LimiterConfig::sliding_window(2, SEC),
    ]
    .into_iter()
    .enumerate()
    {
        let l = rt
            .limiter(&format!("lim-status-{i}"), config.clone())
            .await
            .unwrap();
        let s = l.status();
        assert_eq!(
            (s.kind, s.available, s.retry_after, s.shadow, s.remote),
            (config.kind(), Some(2), Some(Duration::ZERO), false, false),
            "{config:?}"
        );
        l.check().unwrap();
        l.check().unwrap();
        let s = l.status();
        assert_eq!(s.available, Some(0), "{config:?}");
        assert!(s.retry_after.unwrap() > Duration::ZERO, "{config:?}");
        assert_eq!(l.status(), s, "asking twice changes nothing");
        assert_eq!(
            Some(l.check().unwrap_err().retry_after),
            s.retry_after,
            "{config:?}: the status's retry_after is the check's"
        );
    }
    let keyed = rt
        .keyed_limiter::<u64>(
            "lim-status-keyed",
            LimiterConfig::gcra(Quota::per_second(3)),
        )
        .await
        .unwrap();
    keyed.check(&1).unwrap();
    assert_eq!(keyed.status_of(&1).available, Some(2));
    assert_eq!(keyed.status_of(&9).available, Some(3), "a fresh key");
    let s = keyed.status();
    assert_eq!(
        (s.keys, s.max_keys),
        (1, 100_000),
        "status_of stored nothing"
    );
    rt.shutdown().await;
}
