//! The runtime, its supervisor and its event bus, through the public API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use common::{next_matching, settle};
use palisade::ractor::registry::where_is;
use palisade::{BulkheadConfig, CallError, ControlError, Event, Fault, Kind, Runtime, SpawnError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

fn two_permits() -> BulkheadConfig {
    BulkheadConfig::builder()
        .max_concurrent(2)
        .build()
        .expect("valid config")
}

#[tokio::test(start_paused = true)]
async fn killed_or_panicking_or_failing_actor_is_restarted_over_the_same_state() {
    let rt = Runtime::start().await.expect("runtime");
    let mut events = rt.subscribe();
    let pool = rt
        .bulkhead("rt-restart", two_permits())
        .await
        .expect("spawn");
    let registry_name = "palisade.bulkhead.rt-restart";

    // Shared state the actor does not own: one permit held across every restart.
    let held = pool.try_acquire().expect("permit");
    let first = where_is(registry_name).expect("registered");

    first.kill();
    // The handle keeps working while the actor is down or restarting.
    assert_eq!(
        pool.execute(|| async { Ok::<_, ()>(1) })
            .await
            .expect("call"),
        1
    );
    let e = next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    let Event::ActorRestarted {
        name,
        kind,
        restarts,
        cause,
    } = e
    else {
        unreachable!()
    };
    assert_eq!((&*name, kind, restarts), ("rt-restart", Kind::Bulkhead, 1));
    assert!(cause.contains("kill"), "cause: {cause}");
    let second = where_is(registry_name).expect("registered again");
    assert_ne!(first.get_id(), second.get_id());

    assert!(pool.inject_fault(Fault::Panic));
    let e = next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    let Event::ActorRestarted {
        restarts, cause, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(restarts, 2);
    assert!(cause.contains("injected panic"), "cause: {cause}");

    assert!(pool.inject_fault(Fault::Error));
    let e = next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    let Event::ActorRestarted {
        restarts, cause, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(restarts, 3);
    assert!(cause.contains("injected failure"), "cause: {cause}");

    // Same shared state: the permit taken before the restarts is still counted.
    let status = pool.status();
    assert_eq!((status.in_flight, status.available), (1, 1));
    // The new actor serves control requests.
    pool.resize(3)
        .await
        .expect("resize through the restarted actor");
    assert_eq!(pool.status().max_concurrent, 3);
    drop(held);
    assert_eq!(pool.status().available, 3);
    assert!(rt.degraded().await.is_empty());
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn too_many_restarts_leave_the_child_down_and_degraded() {
    let rt = Runtime::builder()
        .max_restarts(2)
        .restart_window(Duration::from_secs(60))
        .start()
        .await
        .expect("runtime");
    let mut events = rt.subscribe();
    let pool = rt
        .bulkhead("rt-degraded", two_permits())
        .await
        .expect("spawn");
    let name = "palisade.bulkhead.rt-degraded";
    for round in 1..=2 {
        where_is(name).expect("running").kill();
        let e = next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
        assert!(matches!(e, Event::ActorRestarted { restarts, .. } if restarts == round));
    }
    where_is(name).expect("running").kill();
    let e = next_matching(&mut events, |e| matches!(e, Event::ActorDegraded { .. })).await;
    let Event::ActorDegraded {
        name: n,
        kind,
        restarts,
        window,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(
        (&*n, kind, restarts, window),
        ("rt-degraded", Kind::Bulkhead, 3, Duration::from_secs(60))
    );
    settle().await;
    assert!(where_is(name).is_none(), "left down");
    assert_eq!(
        rt.degraded().await,
        vec![(Kind::Bulkhead, "rt-degraded".into())]
    );

    // The handle still answers from its last state; control needs the actor.
    let held = pool.try_acquire().expect("permit");
    assert_eq!(pool.status().in_flight, 1);
    drop(held);
    assert!(matches!(
        pool.resize(5).await,
        Err(ControlError::Unavailable { .. })
    ));
    assert_eq!(pool.status().max_concurrent, 2);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_window_do_not_accumulate() {
    let rt = Runtime::builder()
        .max_restarts(1)
        .restart_window(Duration::from_secs(10))
        .start()
        .await
        .expect("runtime");
    let mut events = rt.subscribe();
    let _pool = rt
        .bulkhead("rt-window", two_permits())
        .await
        .expect("spawn");
    for _ in 0..3 {
        where_is("palisade.bulkhead.rt-window")
            .expect("running")
            .kill();
        let e = next_matching(&mut events, |e| {
            matches!(
                e,
                Event::ActorRestarted { .. } | Event::ActorDegraded { .. }
            )
        })
        .await;
        assert!(
            matches!(e, Event::ActorRestarted { restarts: 1, .. }),
            "{e:?}"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    rt.shutdown().await;
}

/// A bulkhead of one permit.
async fn one_permit(rt: &Runtime, name: &str) -> palisade::Bulkhead {
    rt.bulkhead(
        name,
        BulkheadConfig::builder()
            .max_concurrent(1)
            .build()
            .expect("valid"),
    )
    .await
    .expect("spawn")
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_never_reads_blocks_nobody_and_learns_what_it_lost() {
    let rt = Runtime::builder()
        .event_capacity(8)
        .start()
        .await
        .expect("runtime");
    let mut idle = rt.subscribe();
    let pool = one_permit(&rt, "rt-lag").await;
    let _held = pool.try_acquire().expect("permit");
    // 1,000 rejections a second apart (each one is published: one per second per reason),
    // each an event nobody reads: none of them waits.
    for _ in 0..1_000 {
        let r = pool.execute(|| async { Ok::<_, ()>(()) }).await;
        assert!(matches!(r, Err(CallError::BulkheadFull { .. })));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    match idle.recv().await {
        Err(RecvError::Lagged(n)) => assert_eq!(n, 1_000 - 8),
        other => panic!("expected Lagged, got {other:?}"),
    }
    for _ in 0..8 {
        assert!(matches!(
            idle.recv().await,
            Ok(Event::CallRejected { suppressed: 0, .. })
        ));
    }
    assert!(matches!(idle.try_recv(), Err(TryRecvError::Empty)));
    rt.shutdown().await;
}

/// A rejection flood neither floods the event stream nor pushes lifecycle events out of a
/// lagging subscriber's buffer: the restart and the degraded actor still arrive, and the
/// rejections come as one event per second, carrying how many were folded into it.
#[tokio::test(start_paused = true)]
async fn a_rejection_flood_never_costs_a_subscriber_a_lifecycle_event() {
    let rt = Runtime::builder()
        .event_capacity(16)
        .max_restarts(1)
        .restart_window(Duration::from_secs(60))
        .start()
        .await
        .expect("runtime");
    let mut slow = rt.subscribe();
    let pool = one_permit(&rt, "rt-flood").await;
    let _held = pool.try_acquire().expect("permit");
    let name = "palisade.bulkhead.rt-flood";
    let mut rejected = 0u64;
    for round in 0..3 {
        for _ in 0..50_000 {
            assert!(pool.execute(|| async { Ok::<_, ()>(()) }).await.is_err());
            rejected += 1;
        }
        if round < 2 {
            where_is(name).expect("running").kill();
            settle().await;
        }
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        rt.degraded().await.len(),
        1,
        "killed twice with one restart allowed"
    );
    let mut lifecycle = vec![];
    let mut published = 0u64;
    let mut folded = 0u64;
    loop {
        match slow.try_recv() {
            Ok(Event::CallRejected { suppressed, .. }) => {
                published += 1;
                folded += suppressed;
            }
            Ok(e @ (Event::ActorRestarted { .. } | Event::ActorDegraded { .. })) => {
                lifecycle.push(e)
            }
            Ok(_) => {}
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("lost events: {e:?}"),
        }
    }
    assert!(
        matches!(
            lifecycle.as_slice(),
            [Event::ActorRestarted { .. }, Event::ActorDegraded { .. }]
        ),
        "{lifecycle:?}"
    );
    // one event per second of flood; the first two carry what was folded before them
    assert_eq!(published, 3);
    assert_eq!(folded, 2 * 49_999);
    assert!(published + folded <= rejected);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_names_taken_names_and_a_shut_down_runtime_are_refused_clearly() {
    let rt = Runtime::start().await.expect("runtime");
    let e = rt.bulkhead("", two_permits()).await.expect_err("empty");
    assert!(matches!(
        e,
        SpawnError::EmptyName {
            kind: Kind::Bulkhead
        }
    ));
    assert_eq!(e.to_string(), "a bulkhead name must not be empty");
    let e = rt
        .bulkhead("has space", two_permits())
        .await
        .expect_err("space");
    assert!(matches!(e, SpawnError::InvalidName { .. }), "{e}");
    let e = rt
        .bulkhead(&"x".repeat(129), two_permits())
        .await
        .expect_err("long");
    assert!(matches!(e, SpawnError::InvalidName { .. }), "{e}");
    // a hostile name is echoed cut short and with its control characters escaped
    let e = rt
        .bulkhead(&format!("evil\n{}", "x".repeat(100_000)), two_permits())
        .await
        .expect_err("long");
    let message = e.to_string();
    assert!(message.len() < 200, "{} bytes", message.len());
    assert!(message.contains("evil\\n"), "{message}");
    assert!(message.contains("more bytes"), "{message}");

    rt.bulkhead("rt-taken", two_permits()).await.expect("first");
    let e = rt
        .bulkhead("rt-taken", two_permits())
        .await
        .expect_err("taken");
    assert_eq!(
        e.to_string(),
        "a bulkhead named `rt-taken` is already running"
    );
    // ractor's registry is process-wide: another runtime cannot take the name either.
    let other = Runtime::start().await.expect("runtime");
    let e = other
        .bulkhead("rt-taken", two_permits())
        .await
        .expect_err("taken elsewhere");
    assert!(matches!(e, SpawnError::NameTaken { .. }), "{e}");
    // Another kind may use the same name.
    rt.breaker("rt-taken", palisade::BreakerConfig::default())
        .await
        .expect("other kind");

    rt.shutdown().await;
    let e = rt
        .bulkhead("rt-after", two_permits())
        .await
        .expect_err("shut down");
    assert!(matches!(e, SpawnError::ShutDown));
    assert_eq!(e.to_string(), "the runtime is shut down");
    other.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_actor_and_handles_keep_answering() {
    let rt = Runtime::start().await.expect("runtime");
    let mut events = rt.subscribe();
    let pool = rt
        .bulkhead("rt-shutdown", two_permits())
        .await
        .expect("spawn");
    let db = rt
        .breaker("rt-shutdown", palisade::BreakerConfig::default())
        .await
        .expect("spawn");
    assert!(where_is("palisade.bulkhead.rt-shutdown").is_some());
    assert!(rt.get_bulkhead("rt-shutdown").is_some() && rt.get_breaker("rt-shutdown").is_some());
    assert!(rt.get_bulkhead("nope").is_none());
    rt.shutdown().await;
    assert!(rt.is_shut_down());
    assert!(where_is("palisade.bulkhead.rt-shutdown").is_none());
    assert!(where_is("palisade.breaker.rt-shutdown").is_none());
    // A requested stop is not a crash: no restart, no degradation.
    settle().await;
    assert!(common::drain(&mut events).iter().all(|e| !matches!(
        e,
        Event::ActorRestarted { .. } | Event::ActorDegraded { .. }
    )));
    assert_eq!(
        pool.execute(|| async { Ok::<_, ()>(2) })
            .await
            .expect("call"),
        2
    );
    assert_eq!(
        db.execute(|| async { Ok::<_, ()>(3) }).await.expect("call"),
        3
    );
    rt.shutdown().await; // idempotent
}

#[tokio::test]
async fn runtime_settings_are_checked() {
    let e = Runtime::builder()
        .event_capacity(0)
        .start()
        .await
        .expect_err("zero capacity");
    assert!(e.to_string().contains("event_capacity"), "{e}");
    // absurd capacities are refused by name instead of aborting on allocation
    for absurd in [1usize << 40, usize::MAX / 2, usize::MAX] {
        let e = Runtime::builder()
            .event_capacity(absurd)
            .start()
            .await
            .expect_err("absurd capacity");
        assert!(e.to_string().contains("event_capacity"), "{e}");
        assert!(e.to_string().contains(&absurd.to_string()), "{e}");
    }
    let most = palisade::RuntimeBuilder::MAX_EVENT_CAPACITY;
    let rt = Runtime::builder()
        .event_capacity(most)
        .start()
        .await
        .expect("the largest capacity");
    rt.shutdown().await;
    let e = Runtime::builder()
        .restart_window(Duration::ZERO)
        .start()
        .await
        .expect_err("zero window");
    assert!(e.to_string().contains("restart_window"), "{e}");
    let ms = Duration::from_millis;
    for (bad, words) in [
        (vec![], "0 bounds"),
        (vec![ms(5), ms(1)], "not above the one before"),
        (vec![Duration::ZERO], "is zero"),
    ] {
        let e = Runtime::builder()
            .call_duration_buckets(bad.clone())
            .start()
            .await
            .expect_err("bad buckets");
        assert!(
            e.to_string().contains("call_duration_buckets") && e.to_string().contains(words),
            "{bad:?}: {e}"
        );
    }
    let rt = Runtime::builder()
        .call_duration_buckets([ms(300), ms(1_000)])
        .start()
        .await
        .expect("two bounds");
    let db = rt
        .breaker("rt-buckets", palisade::BreakerConfig::default())
        .await
        .expect("spawn");
    db.execute(|| async { Ok::<_, ()>(()) })
        .await
        .expect("closed");
    rt.shutdown().await;
}

/// Per-call events (here, thousands of retries) travel in their own lane: a subscriber that
/// lags on them still gets every lifecycle event, in the order published.
#[tokio::test(start_paused = true)]
async fn a_retry_storm_never_pushes_a_restart_out_of_a_lagging_subscriber() {
    use palisade::{Backoff, Policy, Retry};

    let rt = Runtime::builder()
        .event_capacity(8)
        .start()
        .await
        .expect("runtime");
    let mut slow = rt.subscribe();
    let pool = rt.bulkhead("rt-storm", two_permits()).await.expect("spawn");
    let storm = Policy::new().retry(
        Retry::builder()
            .max_attempts(2_000)
            .backoff(Backoff::constant(Duration::from_millis(1)))
            .events(&rt)
            .build()
            .expect("valid"),
    );
    let r = storm.execute(|| async { Err::<(), _>("down") }).await;
    assert!(matches!(r, Err(CallError::Inner("down"))));
    where_is("palisade.bulkhead.rt-storm")
        .expect("running")
        .kill();
    settle().await;
    let r = storm.execute(|| async { Err::<(), _>("down") }).await;
    assert!(r.is_err());
    drop(pool);
    let (mut lost, mut restarts, mut retries) = (0, 0, 0);
    loop {
        match slow.try_recv() {
            Ok(Event::ActorRestarted { .. }) => restarts += 1,
            Ok(Event::RetryAttempt { .. }) => retries += 1,
            Ok(_) => {}
            Err(TryRecvError::Lagged(n)) => lost += n,
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(restarts, 1, "the restart survived the storm");
    assert!(lost > 3_000, "the storm did overflow its lane: {lost}");
    assert!(retries <= 8, "{retries}");
    rt.shutdown().await;
}

/// The snapshot lists every primitive with its config and status, read without waiting on
/// any actor, and tells restarts and the degraded flag.
#[tokio::test(start_paused = true)]
async fn the_snapshot_shows_every_primitive_with_status_restarts_and_degraded() {
    use palisade::snapshot::{PrimitiveConfig, PrimitiveStatus};
    use palisade::{BreakerConfig, BreakerState, KeyedLimiterConfig, LimiterConfig, Quota};

    let rt = Runtime::builder()
        .max_restarts(1)
        .restart_window(Duration::from_secs(60))
        .start()
        .await
        .expect("runtime");
    let mut events = rt.subscribe();
    let db = rt
        .breaker("snap-db", BreakerConfig::default())
        .await
        .expect("spawn");
    let api = rt
        .limiter("snap-api", LimiterConfig::gcra(Quota::per_hour(10)))
        .await
        .expect("spawn");
    let users = rt
        .keyed_limiter::<u64>(
            "snap-users",
            KeyedLimiterConfig::new(LimiterConfig::fixed_window(5, Duration::from_secs(60)))
                .max_keys(100),
        )
        .await
        .expect("spawn");
    let pool = rt
        .bulkhead("snap-pool", two_permits())
        .await
        .expect("spawn");
    db.force_open().await;
    api.check().expect("admitted");
    users.check(&1).expect("admitted");
    users.check(&2).expect("admitted");
    let _held = pool.try_acquire().expect("permit");
    where_is("palisade.bulkhead.snap-pool")
        .expect("running")
        .kill();
    next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    where_is("palisade.limiter.snap-api")
        .expect("running")
        .kill();
    next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    where_is("palisade.limiter.snap-api")
        .expect("running")
        .kill();
    next_matching(&mut events, |e| matches!(e, Event::ActorDegraded { .. })).await;

    let snap = rt.snapshot();
    let names: Vec<_> = snap.primitives.iter().map(|p| (p.kind, &*p.name)).collect();
    assert_eq!(
        names,
        [
            (Kind::Breaker, "snap-db"),
            (Kind::Bulkhead, "snap-pool"),
            (Kind::Limiter, "snap-api"),
            (Kind::Limiter, "snap-users"),
        ]
    );
    let db_entry = snap.get(Kind::Breaker, "snap-db").expect("listed");
    assert!(matches!(
        &db_entry.status,
        PrimitiveStatus::Breaker(s) if s.state == BreakerState::ForcedOpen
    ));
    assert!(matches!(db_entry.config, PrimitiveConfig::Breaker(_)));
    let api_entry = snap.get(Kind::Limiter, "snap-api").expect("listed");
    assert!(matches!(
        &api_entry.status,
        PrimitiveStatus::Limiter(s) if s.available == Some(9)
    ));
    assert_eq!((api_entry.restarts, api_entry.degraded), (1, true));
    let users_entry = snap.get(Kind::Limiter, "snap-users").expect("listed");
    assert!(matches!(
        &users_entry.status,
        PrimitiveStatus::KeyedLimiter(s) if s.keys == 2 && s.max_keys == 100
    ));
    let pool_entry = snap.get(Kind::Bulkhead, "snap-pool").expect("listed");
    assert!(matches!(
        &pool_entry.status,
        PrimitiveStatus::Bulkhead(s) if s.in_flight == 1
    ));
    assert_eq!((pool_entry.restarts, pool_entry.degraded), (1, false));
    assert_eq!(snap.degraded().count(), 1);
    assert_eq!(
        api.check().map(|a| a.remaining),
        Ok(8),
        "the snapshot spent nothing"
    );
    rt.shutdown().await;
}

/// Cancelling a spawn after it has begun leaves no orphan: the primitive is spawned and
/// registered all the same (before, a caller cancelled between the supervisor's spawn and
/// the registration left a named actor with no handle, and a later spawn of the name got
/// `NameTaken`).
#[tokio::test(start_paused = true)]
async fn a_cancelled_spawn_still_registers_what_it_spawned() {
    let rt = Runtime::start().await.expect("runtime");
    for name in ["rt-cancelled-a", "rt-cancelled-b"] {
        // polled once, then dropped
        let cancelled =
            tokio::time::timeout(Duration::ZERO, rt.bulkhead(name, two_permits())).await;
        assert!(cancelled.is_err(), "cancelled before it could finish");
    }
    settle().await;
    for name in ["rt-cancelled-a", "rt-cancelled-b"] {
        let pool = rt.get_bulkhead(name).expect("registered after all");
        assert!(pool.try_acquire().is_ok(), "and working");
        assert!(
            where_is(format!("palisade.bulkhead.{name}")).is_some(),
            "its actor runs"
        );
        assert!(matches!(
            rt.bulkhead(name, two_permits()).await,
            Err(SpawnError::NameTaken { .. })
        ));
    }
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_removed_primitive_stops_for_good_and_frees_its_name() {
    let rt = palisade::Runtime::start().await.expect("runtime");
    let mut events = rt.subscribe();
    let db = rt
        .breaker("removed-db", palisade::BreakerConfig::default())
        .await
        .expect("breaker");
    assert!(where_is("palisade.breaker.removed-db").is_some());
    assert!(rt.remove(palisade::Kind::Breaker, "removed-db").await);
    common::settle().await;
    assert!(rt.get_breaker("removed-db").is_none());
    assert!(rt
        .snapshot()
        .get(palisade::Kind::Breaker, "removed-db")
        .is_none());
    assert!(
        where_is("palisade.breaker.removed-db").is_none(),
        "the actor is gone"
    );
    assert!(
        !common::drain(&mut events)
            .iter()
            .any(|e| matches!(e, palisade::Event::ActorRestarted { .. })),
        "a removal is not a crash: no restart"
    );
    assert!(
        db.execute(|| async { Ok::<_, ()>(1) }).await.is_ok(),
        "the handle still answers"
    );
    assert!(
        !rt.remove(palisade::Kind::Breaker, "removed-db").await,
        "already gone"
    );
    rt.breaker("removed-db", palisade::BreakerConfig::default())
        .await
        .expect("the name is free again");
    rt.shutdown().await;
}
