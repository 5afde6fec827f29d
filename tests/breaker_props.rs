//! proptest: for any sequence of outcomes, cancellations, panics and waits, the breaker
#![allow(clippy::unwrap_used)]
//! moves only along legal edges and half-open probe slots balance.

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palisade::telemetry::TransitionReason as R;
use palisade::{BreakerConfig, BreakerState as S, Event, Runtime, SlidingWindow};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Success,
    Failure,
    Slow,
    Cancel,
    Panic,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Success),
        3 => Just(Op::Failure),
        1 => Just(Op::Slow),
        1 => Just(Op::Cancel),
        1 => Just(Op::Panic),
        2 => (1u64..1500).prop_map(Op::Wait),
    ]
}

fn legal(from: S, to: S, reason: R) -> bool {
    match reason {
        R::Manual => true,
        R::FailureRate | R::SlowCallRate => from == S::Closed && to == S::Open,
        R::Timer => from == S::Open && to == S::HalfOpen,
        R::ProbesSucceeded => from == S::HalfOpen && to == S::Closed,
        R::ProbeFailed | R::HalfOpenTimeout => from == S::HalfOpen && to == S::Open,
        _ => false,
    }
}

static CASE: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn moves_only_along_legal_edges_and_probe_slots_balance(
        window in 1u32..6,
        permits in 1u32..4,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async move {
            let prt = Runtime::start().await.unwrap();
            let mut events = prt.subscribe();
            let config = BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(window))
                .minimum_calls(window)
                .slow_call_duration(Duration::from_millis(100))
                .slow_call_rate_threshold(50.0)
                .wait_in_open(Duration::from_millis(500))
                .half_open_permits(permits)
                .max_wait_in_half_open(Duration::from_millis(2000))
                .build()
                .unwrap();
            let name = format!("br-prop-{}", CASE.fetch_add(1, Ordering::Relaxed));
            let b = prt.breaker(&name, config).await.unwrap();
            let mut probes_recorded = 0u32;
            let mut last = S::Closed;
            for op in ops {
                let before = b.state();
                if before != S::HalfOpen { probes_recorded = 0; }
                let recorded = match op {
                    Op::Success => b.execute(|| async { Ok::<_, ()>(()) }).await.is_ok(),
                    Op::Failure => matches!(b.execute(|| async { Err::<(), _>(()) }).await, Err(palisade::CallError::Inner(()))),
                    Op::Slow => b.execute(|| async { tokio::time::sleep(Duration::from_millis(150)).await; Ok::<_, ()>(()) }).await.is_ok(),
                    Op::Cancel => { let _ = tokio::time::timeout(Duration::from_millis(1), b.execute(pending::<Result<(), ()>>)).await; false }
                    Op::Panic => {
                        let b2 = b.clone();
                        let r = tokio::spawn(async move { b2.execute(|| async { panic!("user bug") }).await as Result<(), palisade::CallError<()>> }).await;
                        // rejected calls never run the closure, so they do not panic
                        assert!(r.is_err() || matches!(r, Ok(Err(palisade::CallError::CircuitOpen { .. }))));
                        false
                    }
                    Op::Wait(ms) => { tokio::time::sleep(Duration::from_millis(ms)).await; false }
                };
                // The state first: `state()` applies a timer that is due (with its event),
                // so it is read before the events are drained.
                let now = b.state();
                // Transitions so far are continuous and legal.
                let mut entered_half_open = false;
                while let Ok(e) = events.try_recv() {
                    if let Event::BreakerTransition { from, to, reason, .. } = e {
                        assert_eq!(from, last, "transitions must chain");
                        assert!(legal(from, to, reason), "illegal edge {from} -> {to} ({reason:?})");
                        last = to;
                        if to == S::HalfOpen { probes_recorded = 0; entered_half_open = true; }
                    }
                }
                assert_eq!(now, last, "the state matches the last transition event");
                // A call that finds the open wait over moves the breaker to half-open itself
                // and runs as its first probe.
                if now == S::HalfOpen && recorded && (before == S::HalfOpen || entered_half_open) {
                    probes_recorded += 1;
                }
                // No call is in flight here: every probe slot not spent on a recorded probe is free.
                if now == S::HalfOpen {
                    assert_eq!(b.metrics().half_open_probes_left + probes_recorded, permits);
                }
            }
            prt.shutdown().await;
        });
    }
}
