//! Circuit breaker scenarios on paused time, through the public API.
#![allow(clippy::unwrap_used)]

use std::future::pending;
use std::time::Duration;

use common::{drain, next_matching, settle};
use palisade::telemetry::TransitionReason as R;
use palisade::{
    Breaker, BreakerConfig, BreakerState as S, CallError, CallTiming, ControlError, ErrorClass,
    Event, EventStream, Runtime, SlidingWindow,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

async fn spawn(name: &str, config: BreakerConfig) -> (Runtime, Breaker, EventStream) {
    let rt = Runtime::start().await.expect("runtime");
    let events = rt.subscribe();
    let b = rt.breaker(name, config).await.expect("spawn");
    (rt, b, events)
}

fn count_window(n: u32) -> palisade::breaker::BreakerConfigBuilder {
    BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(n))
        .minimum_calls(n)
        .wait_in_open(10 * SEC)
        .half_open_permits(2)
}

async fn ok(b: &Breaker) -> Result<(), CallError<&'static str>> {
    b.execute(|| async { Ok(()) }).await
}

async fn fail(b: &Breaker) -> Result<(), CallError<&'static str>> {
    b.execute(|| async { Err("boom") }).await
}

async fn slow(b: &Breaker, d: Duration) -> Result<(), CallError<&'static str>> {
    b.execute(|| async move {
        tokio::time::sleep(d).await;
        Ok(())
    })
    .await
}

fn transitions(events: &mut EventStream) -> Vec<(S, S, R)> {
    drain(events)
        .into_iter()
        .filter_map(|e| match e {
            Event::BreakerTransition {
                from, to, reason, ..
            } => Some((from, to, reason)),
            _ => None,
        })
        .collect()
}

async fn next_transition(events: &mut EventStream) -> (S, S, R) {
    match next_matching(events, |e| matches!(e, Event::BreakerTransition { .. })).await {
        Event::BreakerTransition {
            from, to, reason, ..
        } => (from, to, reason),
        _ => unreachable!(),
    }
}

#[tokio::test(start_paused = true)]
async fn opens_exactly_at_the_failure_rate_threshold() {
    let (rt, b, mut ev) = spawn(
        "br-fail-at",
        count_window(10)
            .failure_rate_threshold(50.0)
            .build()
            .unwrap(),
    )
    .await;
    for _ in 0..5 {
        assert!(matches!(fail(&b).await, Err(CallError::Inner("boom"))));
    }
    for _ in 0..4 {
        ok(&b).await.expect("closed");
    }
    // 9 calls: below minimum_calls, even at 55 % failures
    assert_eq!(b.state(), S::Closed);
    ok(&b).await.expect("the 10th call runs");
    // 5 of 10 = 50 %: at the threshold
    assert_eq!(b.state(), S::Open);
    assert_eq!(
        transitions(&mut ev),
        vec![(S::Closed, S::Open, R::FailureRate)]
    );
    let r = ok(&b).await;
    assert!(
        matches!(r, Err(CallError::CircuitOpen { retry_after: Some(d), .. }) if d == 10 * SEC),
        "{r:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stays_closed_one_call_below_the_threshold_and_below_minimum_calls() {
    let (rt, b, mut ev) = spawn(
        "br-fail-below",
        count_window(10)
            .failure_rate_threshold(50.0)
            .build()
            .unwrap(),
    )
    .await;
    for _ in 0..4 {
        let _ = fail(&b).await;
    }
    for _ in 0..6 {
        ok(&b).await.expect("closed");
    }
    assert_eq!(b.state(), S::Closed);
    let m = b.metrics();
    assert_eq!((m.calls, m.failed, m.failure_rate), (10, 4, 40.0));
    assert!(transitions(&mut ev).is_empty());

    // minimum_calls 5 with 4 failures of 4: no trip until the 5th call
    let (_, b2, _) = (
        (),
        rt.breaker(
            "br-min-calls",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(10))
                .minimum_calls(5)
                .build()
                .unwrap(),
        )
        .await
        .unwrap(),
        (),
    );
    for _ in 0..4 {
        let _ = fail(&b2).await;
    }
    assert_eq!(b2.state(), S::Closed);
    let _ = fail(&b2).await;
    assert_eq!(b2.state(), S::Open);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_slow_call_rate_threshold() {
    let config = count_window(4)
        .slow_call_duration(SEC)
        .slow_call_rate_threshold(50.0)
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-slow", config).await;
    // tokio timers tick in whole milliseconds: 1 ms short of slow
    slow(&b, SEC - MS).await.expect("just short of slow");
    slow(&b, SEC).await.expect("exactly slow");
    ok(&b).await.unwrap();
    assert_eq!(b.state(), S::Closed);
    assert_eq!(b.metrics().slow, 1);
    slow(&b, 2 * SEC).await.expect("slow");
    // 2 slow of 4 = 50 %
    assert_eq!(b.state(), S::Open);
    assert_eq!(
        transitions(&mut ev),
        vec![(S::Closed, S::Open, R::SlowCallRate)]
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn open_to_half_open_by_the_timer_then_closed_when_probes_succeed() {
    let (rt, b, mut ev) = spawn("br-cycle", count_window(2).build().unwrap()).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::FailureRate)
    );

    tokio::time::advance(10 * SEC - Duration::from_nanos(1)).await;
    settle().await;
    assert_eq!(b.state(), S::Open);
    let r = ok(&b).await;
    assert!(
        matches!(r, Err(CallError::CircuitOpen { retry_after: Some(d), .. }) if d == Duration::from_nanos(1))
    );
    tokio::time::advance(Duration::from_nanos(1)).await;
    // the actor's timer moves the breaker without any traffic
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Open, S::HalfOpen, R::Timer)
    );
    assert_eq!(b.metrics().half_open_probes_left, 2);

    ok(&b).await.expect("probe 1");
    assert_eq!(b.state(), S::HalfOpen);
    ok(&b).await.expect("probe 2");
    assert_eq!(
        next_transition(&mut ev).await,
        (S::HalfOpen, S::Closed, R::ProbesSucceeded)
    );
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.consecutive_trips), (S::Closed, 0, 0));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_on_probe_failures_and_rejects_past_its_permits() {
    let (rt, b, mut ev) = spawn(
        "br-probe-fail",
        count_window(2)
            .failure_rate_threshold(50.0)
            .build()
            .unwrap(),
    )
    .await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(10 * SEC).await;
    settle().await;
    assert_eq!(b.state(), S::HalfOpen);
    // two probes in flight use both permits: a third call is rejected
    let p1 = tokio::spawn({
        let b = b.clone();
        async move { slow(&b, SEC).await }
    });
    let p2 = tokio::spawn({
        let b = b.clone();
        async move {
            b.execute(|| async {
                tokio::time::sleep(SEC).await;
                Err::<(), _>("boom")
            })
            .await
        }
    });
    settle().await;
    assert_eq!(b.metrics().half_open_probes_left, 0);
    // the hint: the shorter of slow_call_duration (60 s) and wait_in_open (10 s)
    assert!(matches!(
        ok(&b).await,
        Err(CallError::CircuitOpen {
            state: S::HalfOpen,
            retry_after: Some(d),
            ..
        }) if d == 10 * SEC
    ));
    p1.await.unwrap().expect("probe ok");
    assert!(p2.await.unwrap().is_err());
    // 1 failure of 2 probes = 50 %: open again
    assert_eq!(b.state(), S::Open);
    assert_eq!(
        transitions(&mut ev),
        vec![
            (S::Closed, S::Open, R::FailureRate),
            (S::Open, S::HalfOpen, R::Timer),
            (S::HalfOpen, S::Open, R::ProbeFailed)
        ]
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn max_wait_in_half_open_reopens_when_probes_never_decide() {
    let config = count_window(2)
        .max_wait_in_half_open(5 * SEC)
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-ho-wait", config).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(10 * SEC).await;
    assert_eq!(next_transition(&mut ev).await.1, S::Open);
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Open, S::HalfOpen, R::Timer)
    );
    tokio::time::advance(5 * SEC).await;
    assert_eq!(
        next_transition(&mut ev).await,
        (S::HalfOpen, S::Open, R::HalfOpenTimeout)
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_outcomes_older_than_the_window() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Time(10 * SEC))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-time", config).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(10 * SEC).await;
    // the two failures left the window: 2 more failures make 2 calls, not 4
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    assert_eq!(b.state(), S::Closed);
    assert_eq!(b.metrics().calls, 2);
    ok(&b).await.unwrap();
    ok(&b).await.unwrap();
    // 2 failures of 4 = 50 %
    assert_eq!(b.state(), S::Open);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn manual_states_and_reset() {
    let (rt, b, mut ev) = spawn("br-manual", count_window(2).build().unwrap()).await;
    b.force_open().await;
    assert!(matches!(
        ok(&b).await,
        Err(CallError::CircuitOpen {
            retry_after: None,
            ..
        })
    ));
    tokio::time::advance(3600 * SEC).await;
    assert_eq!(b.state(), S::ForcedOpen, "no timer leaves forced open");

    b.disable().await;
    for _ in 0..10 {
        let _ = fail(&b).await;
    }
    assert_eq!(
        (b.state(), b.metrics().calls),
        (S::Disabled, 0),
        "disabled records nothing"
    );

    b.metrics_only().await;
    for _ in 0..10 {
        let _ = fail(&b).await;
    }
    let m = b.metrics();
    assert_eq!(
        (m.state, m.calls, m.failure_rate),
        (S::MetricsOnly, 2, 100.0),
        "records, never opens"
    );

    b.reset().await;
    assert_eq!((b.state(), b.metrics().calls), (S::Closed, 0));
    let manual: Vec<_> = transitions(&mut ev)
        .into_iter()
        .map(|(f, t, r)| (f, t, r == R::Manual))
        .collect();
    assert_eq!(
        manual,
        vec![
            (S::Closed, S::ForcedOpen, true),
            (S::ForcedOpen, S::Disabled, true),
            (S::Disabled, S::MetricsOnly, true),
            (S::MetricsOnly, S::Closed, true)
        ]
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reconfiguration_keeps_the_window_and_refuses_a_new_shape() {
    let (rt, b, mut ev) = spawn(
        "br-reconf",
        count_window(4)
            .failure_rate_threshold(80.0)
            .build()
            .unwrap(),
    )
    .await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    ok(&b).await.unwrap();
    b.reconfigure(
        b.config()
            .to_builder()
            .failure_rate_threshold(50.0)
            .build()
            .unwrap(),
    )
    .await
    .expect("reconfigure");
    assert!(matches!(
        next_matching(&mut ev, |e| matches!(e, Event::Reconfigured { .. })).await,
        Event::Reconfigured { .. }
    ));
    assert_eq!(b.metrics().calls, 3, "the window is kept");
    ok(&b).await.unwrap();
    // 2 of 4 = 50 % under the new threshold
    assert_eq!(b.state(), S::Open);
    let e = b
        .reconfigure(
            b.config()
                .to_builder()
                .sliding_window(SlidingWindow::Count(8))
                .build()
                .unwrap(),
        )
        .await
        .expect_err("shape change");
    assert!(
        matches!(e, ControlError::Config(ref c) if c.field == "sliding_window"),
        "{e}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cancelled_or_panicking_probes_give_their_slot_back_and_are_not_failures() {
    let (rt, b, _ev) = spawn("br-cancel", count_window(2).build().unwrap()).await;
    // closed: a cancelled call is not a failure
    let cancelled = tokio::time::timeout(MS, b.execute(pending::<Result<(), ()>>)).await;
    assert!(cancelled.is_err());
    assert_eq!(b.metrics().calls, 0);
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(10 * SEC).await;
    settle().await;
    assert_eq!(b.state(), S::HalfOpen);

    let cancelled = tokio::time::timeout(MS, b.execute(pending::<Result<(), ()>>)).await;
    assert!(cancelled.is_err());
    assert_eq!(b.metrics().half_open_probes_left, 2);
    let panicked = tokio::spawn({
        let b = b.clone();
        async move { b.execute(|| async { panic!("user bug") }).await as Result<(), CallError<()>> }
    })
    .await;
    assert!(panicked.expect_err("panicked").is_panic());
    assert_eq!(b.metrics().half_open_probes_left, 2);
    assert_eq!(b.state(), S::HalfOpen);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn killed_while_open_the_restarted_actor_still_goes_half_open_on_time() {
    let (rt, b, mut ev) = spawn("br-kill-open", count_window(2).build().unwrap()).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(4 * SEC).await;
    palisade::ractor::registry::where_is("palisade.breaker.br-kill-open")
        .expect("running")
        .kill();
    next_matching(&mut ev, |e| matches!(e, Event::ActorRestarted { .. })).await;
    assert_eq!(b.state(), S::Open);
    tokio::time::advance(6 * SEC - Duration::from_nanos(1)).await;
    settle().await;
    assert_eq!(b.state(), S::Open);
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Open, S::HalfOpen, R::Timer)
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hanging_calls_count_as_slow_while_they_hang_and_trip_the_breaker() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(3))
        .minimum_calls(3)
        .slow_call_duration(8 * SEC)
        .slow_call_rate_threshold(60.0)
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-hang", config).await;
    let start = tokio::time::Instant::now();
    ok(&b).await.unwrap();
    let hangs: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.execute(pending::<Result<(), ()>>).await })
        })
        .collect();
    settle().await;
    assert_eq!(b.state(), S::Closed);
    // detected at the end of the calls' start epoch (the largest power of two nanoseconds
    // not above 1/8 of slow_call_duration: 2^29 ns = 0.536870912 s) plus slow_call_duration,
    // on the next millisecond (tokio's timer resolution)
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::SlowCallRate)
    );
    assert_eq!(start.elapsed(), Duration::from_millis(8_537));
    assert!(
        hangs.iter().all(|h| !h.is_finished()),
        "still hanging when the breaker opened"
    );
    let m = b.metrics();
    assert_eq!(m.state, S::Open);
    for h in hangs {
        h.abort();
    }
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn classifiers_decide_what_counts() {
    #[derive(Debug)]
    struct NotFound;
    let config = count_window(2)
        .classifier(|e| {
            if e.downcast_ref::<NotFound>().is_some() {
                ErrorClass::Success
            } else if e.downcast_ref::<std::io::Error>().is_some() {
                ErrorClass::Ignored
            } else {
                ErrorClass::Failure
            }
        })
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-classify", config).await;
    for _ in 0..4 {
        let _ = b.execute(|| async { Err::<(), _>(NotFound) }).await;
    }
    assert_eq!(
        (b.state(), b.metrics().failed, b.metrics().calls),
        (S::Closed, 0, 2)
    );
    b.reset().await;
    let _ = b
        .execute(|| async { Err::<(), _>(std::io::Error::other("x")) })
        .await;
    assert_eq!(b.metrics().calls, 0, "ignored");
    // per call: this call's error counts as a success whatever the config says
    let _ = b
        .execute_classified(|| async { Err::<(), _>("fine") }, |_| ErrorClass::Success)
        .await;
    let _ = b
        .execute_classified(|| async { Err::<(), _>("bad") }, |_| ErrorClass::Failure)
        .await;
    let m = b.metrics();
    assert_eq!((m.calls, m.failed), (2, 1));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn open_duration_grows_on_consecutive_trips() {
    let config = count_window(1)
        .wait_in_open(SEC)
        .open_backoff(2.0, 3 * SEC)
        .half_open_permits(1)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-backoff", config).await;
    let _ = fail(&b).await;
    let mut waits = vec![];
    for _ in 0..3 {
        match ok(&b).await {
            Err(CallError::CircuitOpen {
                retry_after: Some(d),
                ..
            }) => waits.push(d),
            other => panic!("{other:?}"),
        }
        tokio::time::advance(waits[waits.len() - 1]).await;
        settle().await;
        let _ = fail(&b).await; // the probe fails: open again, longer
    }
    assert_eq!(waits, vec![SEC, 2 * SEC, 3 * SEC]);
    rt.shutdown().await;
}

/// A dependency that hangs past `slow_call_duration` and then fails: the in-flight scan
/// counts each call slow while it runs, and the error at the end must still count as a
/// failure (Resilience4j's slow *and* failed call).
#[tokio::test(start_paused = true)]
async fn a_slow_call_that_fails_counts_as_slow_and_failed() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(4))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .slow_call_rate_threshold(100.0)
        .slow_call_duration(100 * MS)
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-slow-fail", config).await;
    ok(&b).await.unwrap();
    ok(&b).await.unwrap();
    let r = b
        .execute(|| async {
            tokio::time::sleep(300 * MS).await;
            Err::<(), _>("boom")
        })
        .await;
    assert!(matches!(r, Err(CallError::Inner("boom"))));
    let m = b.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (3, 1, 1), "{m:?}");
    assert_eq!(m.failure_rate, 100.0 / 3.0);
    // a second one: 2 failed of 4 trips the failure-rate threshold
    let _ = b
        .execute(|| async {
            tokio::time::sleep(300 * MS).await;
            Err::<(), _>("boom")
        })
        .await;
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::FailureRate)
    );
    rt.shutdown().await;
}

/// The same on a time window.
#[tokio::test(start_paused = true)]
async fn a_slow_call_that_fails_counts_as_failed_on_a_time_window() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Time(10 * SEC))
        .minimum_calls(2)
        .slow_call_rate_threshold(100.0)
        .slow_call_duration(100 * MS)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-slow-fail-time", config).await;
    ok(&b).await.unwrap();
    let _ = b
        .execute(|| async {
            tokio::time::sleep(2 * SEC).await;
            Err::<(), _>("boom")
        })
        .await;
    let m = b.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (2, 1, 1), "{m:?}");
    assert_eq!(b.state(), S::Open, "1 failed of 2 reaches 50 %");
    rt.shutdown().await;
}

/// A call cancelled after it has run past `slow_call_duration` (a caller's deadline, a
/// dropped future) counts as slow; one cancelled sooner says nothing about the dependency.
#[tokio::test(start_paused = true)]
async fn a_call_cut_after_running_slow_counts_slow_and_a_quick_cut_is_not_counted() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(4))
        .minimum_calls(2)
        .slow_call_rate_threshold(50.0)
        .slow_call_duration(SEC)
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-cut", config).await;
    let quick = palisade::deadline::within(500 * MS, b.execute(pending::<Result<(), ()>>)).await;
    assert!(quick.is_err());
    assert_eq!(b.metrics().calls, 0, "cut before it was slow: cancelled");
    // a 1.2 s cut: past slow_call_duration but before the in-flight scan flags the call
    // (end of its start epoch, 2^26 ns ≈ 67 ms, plus 1 s, plus the scan's delay)
    let r = palisade::deadline::within(1_030 * MS, b.execute(pending::<Result<(), ()>>)).await;
    assert!(r.is_err());
    let m = b.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (1, 0, 1), "{m:?}");
    ok(&b).await.unwrap();
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::SlowCallRate)
    );
    rt.shutdown().await;
}

/// A rejection in half-open (every probe permit taken) says so and gives a hint, instead of
/// claiming the breaker is forced open with no `retry_after`.
#[tokio::test(start_paused = true)]
async fn a_half_open_rejection_names_its_state_and_gives_a_hint() {
    let config = count_window(2)
        .max_wait_in_half_open(5 * SEC)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-half-open-full", config).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    assert_eq!(b.state(), S::Open);
    tokio::time::advance(10 * SEC).await;
    settle().await;
    assert_eq!(b.state(), S::HalfOpen);
    // two probes hang and take both permits
    let probes: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.execute(pending::<Result<(), ()>>).await })
        })
        .collect();
    settle().await;
    tokio::time::advance(2 * SEC).await;
    let e = ok(&b).await.expect_err("no probe permit left");
    match &e {
        CallError::CircuitOpen {
            state, retry_after, ..
        } => assert_eq!(
            (*state, *retry_after),
            (S::HalfOpen, Some(3 * SEC)),
            "what is left of max_wait_in_half_open"
        ),
        other => panic!("{other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains("half-open"), "{message}");
    assert!(!message.contains("forced"), "{message}");
    b.force_open().await;
    match ok(&b).await {
        Err(CallError::CircuitOpen {
            state: S::ForcedOpen,
            retry_after: None,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    for p in probes {
        p.abort();
    }
    rt.shutdown().await;
}

/// With its actor left down (degraded), nothing moves an open breaker to half-open on
/// time; `state()` and `metrics()` must still tell the state by the clock, not the stale
/// `Open` until the next call.
#[tokio::test(start_paused = true)]
async fn a_degraded_breaker_reports_its_state_by_the_clock() {
    let rt = Runtime::builder()
        .max_restarts(0)
        .start()
        .await
        .expect("runtime");
    let mut ev = rt.subscribe();
    let b = rt
        .breaker(
            "br-degraded-clock",
            count_window(2)
                .wait_in_open(10 * SEC)
                .max_wait_in_half_open(5 * SEC)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    palisade::ractor::registry::where_is("palisade.breaker.br-degraded-clock")
        .expect("running")
        .kill();
    next_matching(&mut ev, |e| matches!(e, Event::ActorDegraded { .. })).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    assert_eq!(b.state(), S::Open);
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::FailureRate)
    );
    tokio::time::advance(10 * SEC - MS).await;
    settle().await;
    assert_eq!(b.state(), S::Open, "1 ms before wait_in_open ends");
    tokio::time::advance(MS).await;
    settle().await;
    assert_eq!(b.metrics().state, S::HalfOpen);
    assert_eq!(b.state(), S::HalfOpen);
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Open, S::HalfOpen, R::Timer)
    );
    // no probe comes: max_wait_in_half_open ends half-open by the clock too
    tokio::time::advance(5 * SEC).await;
    settle().await;
    assert_eq!(b.state(), S::Open);
    assert_eq!(
        next_transition(&mut ev).await,
        (S::HalfOpen, S::Open, R::HalfOpenTimeout)
    );
    rt.shutdown().await;
}

/// A permit records what its holder says: a 5xx that came back as `Ok` is a failure, an
/// ignored call is not counted, the classifier decides for `record`, and slow-call timing
/// runs from the acquire to the record.
#[tokio::test(start_paused = true)]
async fn permits_record_the_outcome_their_holder_gives() {
    fn send_static<T: Send + Sync + 'static>(_: &T) {}
    let config = count_window(4)
        .slow_call_duration(SEC)
        .classifier(|e| {
            if e.downcast_ref::<u16>() == Some(&404) {
                ErrorClass::Success
            } else {
                ErrorClass::Failure
            }
        })
        .build()
        .unwrap();
    let (rt, b, mut ev) = spawn("br-permit", config).await;
    let p = b.try_acquire().unwrap();
    send_static(&p);
    p.success();
    b.try_acquire().unwrap().ignored();
    assert_eq!(b.metrics().calls, 1, "ignored: not counted");
    b.try_acquire().unwrap().record(&Err::<(), u16>(404));
    assert_eq!(
        (b.metrics().calls, b.metrics().failed),
        (2, 0),
        "classified a success"
    );
    // held across a response body in another task, for longer than slow_call_duration
    let p = b.try_acquire().unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(2 * SEC).await;
        p.failure();
    })
    .await
    .unwrap();
    let m = b.metrics();
    assert_eq!((m.calls, m.failed, m.slow), (3, 1, 1), "{m:?}");
    b.try_acquire().unwrap().record(&Err::<(), u16>(500));
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::FailureRate)
    );
    let e = b.try_acquire().expect_err("open");
    assert_eq!((e.state, &*e.name), (S::Open, "br-permit"));
    let as_call: CallError<()> = e.into();
    assert!(matches!(
        as_call,
        CallError::CircuitOpen {
            state: S::Open,
            retry_after: Some(_),
            ..
        }
    ));
    rt.shutdown().await;
}

/// A permit dropped without an outcome counts as cancelled, never as a failure, and gives
/// its half-open probe slot back.
#[tokio::test(start_paused = true)]
async fn a_dropped_permit_is_cancelled_and_gives_its_probe_slot_back() {
    let (rt, b, _ev) = spawn("br-permit-drop", count_window(2).build().unwrap()).await;
    drop(b.try_acquire().unwrap());
    assert_eq!(b.metrics().calls, 0, "cancelled: not counted");
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SEC).await;
    settle().await;
    assert_eq!(b.state(), S::HalfOpen);
    let probes: Vec<_> = (0..2).map(|_| b.try_acquire().unwrap()).collect();
    let full = b.try_acquire().expect_err("both probe permits taken");
    assert_eq!(full.state, S::HalfOpen);
    drop(probes);
    assert_eq!(b.metrics().half_open_probes_left, 2, "both slots back");
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), S::Closed);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_keyed_breaker_is_bounded_and_drops_only_idle_quiet_breakers() {
    use palisade::breaker::KeyedBreakerConfig;
    let rt = Runtime::start().await.unwrap();
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(2))
        .minimum_calls(2)
        .wait_in_open(Duration::from_secs(600))
        .build()
        .unwrap();
    let keyed = rt
        .keyed_breaker::<String>(
            "hosts",
            KeyedBreakerConfig::new(config.clone())
                .max_keys(2)
                .idle_after(Duration::from_secs(60)),
        )
        .unwrap();
    let key = |s: &str| s.to_owned();
    for _ in 0..2 {
        let _ = keyed
            .get(&key("a"))
            .execute(|| async { Err::<(), _>("down") })
            .await;
    }
    assert_eq!(keyed.get(&key("a")).state(), S::Open);
    keyed
        .get(&key("b"))
        .execute(|| async { Ok::<_, ()>(()) })
        .await
        .unwrap();
    assert_eq!(keyed.get(&key("b")).name(), "hosts/b");
    // at the cap, nothing idle: a new key shares the overflow breaker
    assert_eq!(keyed.get(&key("c")).name(), "hosts/overflow");
    assert_eq!(keyed.len(), 2);
    tokio::time::advance(Duration::from_secs(61)).await;
    // b is idle and learned nothing: dropped to make room; a is open: kept
    assert_eq!(keyed.get(&key("c")).name(), "hosts/c");
    assert_eq!(keyed.len(), 2);
    let states = keyed.states();
    assert!(states.contains(&(key("a"), S::Open)), "{states:?}");
    let status = keyed.status();
    assert_eq!((status.keys, status.max_keys, status.open), (2, 2, 1));
    let snapshot = rt.snapshot();
    let entry = snapshot.get(palisade::Kind::Breaker, "hosts").unwrap();
    assert!(
        matches!(&entry.status, palisade::snapshot::PrimitiveStatus::KeyedBreaker(s) if s.open == 1),
        "{entry:?}"
    );
    // the name is taken for breakers too
    assert!(matches!(
        rt.breaker("hosts", config).await,
        Err(palisade::SpawnError::NameTaken { .. })
    ));
    assert!(rt
        .keyed_breaker::<String>(
            "bad",
            KeyedBreakerConfig::new(BreakerConfig::default()).max_keys(0)
        )
        .unwrap_err()
        .to_string()
        .contains("max_keys"));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_untimed_breaker_is_decided_by_failures_alone() {
    let config = |timing| {
        count_window(4)
            .slow_call_duration(SEC)
            .call_timing(timing)
            .build()
            .unwrap()
    };
    let (rt, b, mut ev) = spawn("br-untimed", config(CallTiming::Untimed)).await;
    // the same breaker timed, on a runtime of its own (its events are not ours)
    let twin_rt = Runtime::start().await.unwrap();
    let precise = twin_rt
        .breaker("br-untimed-twin", config(CallTiming::Precise))
        .await
        .unwrap();
    for _ in 0..4 {
        slow(&b, 2 * SEC).await.unwrap();
        slow(&precise, 2 * SEC).await.unwrap();
    }
    // the timed twin counts 4 slow calls of 4 (100 %, the default threshold) and opens
    assert_eq!(precise.state(), S::Open);
    twin_rt.shutdown().await;
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.slow), (S::Closed, 4, 0));
    // a call that hangs is not counted while it runs either
    let hanging = tokio::time::timeout(10 * SEC, b.execute(pending::<Result<(), ()>>)).await;
    assert!(hanging.is_err());
    assert_eq!((b.state(), b.metrics().calls), (S::Closed, 4));

    let _ = fail(&b).await;
    let _ = fail(&b).await;
    // 2 failures of the last 4 calls = 50 %
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Closed, S::Open, R::FailureRate)
    );
    tokio::time::advance(10 * SEC - MS).await;
    assert!(matches!(
        ok(&b).await,
        Err(CallError::CircuitOpen { retry_after: Some(d), .. }) if d == MS
    ));
    tokio::time::advance(MS).await;
    assert_eq!(
        next_transition(&mut ev).await,
        (S::Open, S::HalfOpen, R::Timer)
    );
    // a cancelled probe gives its slot back; two that succeed close the breaker, slow as
    // they are (timed, 2 slow probes of 2 would reopen it)
    let cancelled = tokio::time::timeout(MS, b.execute(pending::<Result<(), ()>>)).await;
    assert!(cancelled.is_err());
    assert_eq!(b.metrics().half_open_probes_left, 2);
    slow(&b, 2 * SEC).await.expect("probe 1");
    slow(&b, 2 * SEC).await.expect("probe 2");
    assert_eq!(
        next_transition(&mut ev).await,
        (S::HalfOpen, S::Closed, R::ProbesSucceeded)
    );
    // calls through a policy are not timed either
    let policy = palisade::Policy::new().breaker(&b);
    for _ in 0..4 {
        let r: Result<(), CallError<()>> = policy
            .execute(|| async {
                tokio::time::sleep(2 * SEC).await;
                Ok(())
            })
            .await;
        r.unwrap();
    }
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.slow), (S::Closed, 4, 0));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_untimed_breaker_on_a_time_window_forgets_outcomes_older_than_the_window() {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Time(10 * SEC))
        .minimum_calls(4)
        .call_timing(CallTiming::Untimed)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-untimed-time", config).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    tokio::time::advance(10 * SEC).await;
    let _ = fail(&b).await;
    let _ = fail(&b).await;
    assert_eq!((b.state(), b.metrics().calls), (S::Closed, 2));
    ok(&b).await.unwrap();
    ok(&b).await.unwrap();
    assert_eq!(b.state(), S::Open);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn calls_keep_the_timing_they_were_admitted_with_across_a_reconfiguration() {
    let config = count_window(4)
        .slow_call_duration(SEC)
        .slow_call_rate_threshold(50.0)
        .build()
        .unwrap();
    let (rt, b, _ev) = spawn("br-retimed", config).await;
    let timed = tokio::spawn({
        let b = b.clone();
        async move { slow(&b, 2 * SEC).await }
    });
    settle().await;
    let untimed = b
        .config()
        .to_builder()
        .slow_call_rate_threshold(100.0)
        .call_timing(CallTiming::Untimed)
        .build()
        .unwrap();
    b.reconfigure(untimed).await.expect("reconfigure");
    let after = tokio::spawn({
        let b = b.clone();
        async move { slow(&b, 2 * SEC).await }
    });
    tokio::time::advance(3 * SEC).await;
    timed.await.unwrap().unwrap();
    after.await.unwrap().unwrap();
    // the call admitted while timed is counted slow, the one admitted untimed is not
    let m = b.metrics();
    assert_eq!((m.calls, m.slow), (2, 1));
    rt.shutdown().await;
}
