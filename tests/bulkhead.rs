//! Bulkhead scenarios on paused time, through the public API.
#![allow(clippy::unwrap_used)]

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{next_matching, settle};
use palisade::{deadline, Bulkhead, BulkheadConfig, BulkheadRejected, CallError, Event, Runtime};
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

async fn spawn(name: &str, config: BulkheadConfig) -> (Runtime, Bulkhead) {
    let rt = Runtime::start().await.expect("runtime");
    let b = rt.bulkhead(name, config).await.expect("spawn");
    (rt, b)
}

fn config(max: u32, wait: Duration) -> BulkheadConfig {
    let b = BulkheadConfig::builder().max_concurrent(max);
    if wait.is_zero() { b } else { b.max_wait(wait) }
        .build()
        .expect("valid")
}

/// Holds a permit in a task until the returned sender is dropped or fired.
fn hold(b: &Bulkhead) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let b = b.clone();
    tokio::spawn(async move {
        b.execute(|| async move {
            let _ = rx.await;
            Ok::<_, ()>(())
        })
        .await
    });
    tx
}

/// Awaits every task, then checks that the bulkhead has all `max` permits back and nobody
/// waiting.
async fn await_all_then_idle(tasks: Vec<tokio::task::JoinHandle<()>>, b: &Bulkhead, max: u32) {
    for t in tasks {
        t.await.unwrap();
    }
    let s = b.status();
    assert_eq!((s.in_flight, s.available, s.waiting), (0, max, 0));
}

#[tokio::test(start_paused = true)]
async fn rejects_at_once_when_full_with_no_wait() {
    let (rt, b) = spawn("bh-nowait", config(1, Duration::ZERO)).await;
    let _p = b.try_acquire().expect("permit");
    let start = tokio::time::Instant::now();
    let r = b.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(r, Err(CallError::BulkheadFull { max_concurrent: 1, waited, .. }) if waited.is_zero())
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(matches!(
        b.try_acquire(),
        Err(BulkheadRejected::Full { .. })
    ));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_admitted_when_a_permit_frees_within_max_wait() {
    let (rt, b) = spawn("bh-admit", config(1, 50 * MS)).await;
    let release = hold(&b);
    settle().await;
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            b.execute(|| async { Ok::<_, ()>(tokio::time::Instant::now()) })
                .await
        }
    });
    settle().await;
    assert_eq!(b.status().waiting, 1);
    tokio::time::advance(49 * MS).await;
    let freed_at = tokio::time::Instant::now();
    drop(release);
    let ran_at = waiter.await.unwrap().expect("admitted");
    assert_eq!(ran_at, freed_at);
    assert_eq!(b.status().waiting, 0);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_rejected_at_max_wait() {
    let (rt, b) = spawn("bh-timeout", config(1, 50 * MS)).await;
    let _release = hold(&b);
    settle().await;
    let start = tokio::time::Instant::now();
    let r = b.execute(|| async { Ok::<_, ()>(()) }).await;
    assert!(
        matches!(r, Err(CallError::BulkheadFull { waited, .. }) if waited == 50 * MS),
        "{r:?}"
    );
    assert_eq!(start.elapsed(), 50 * MS);
    assert_eq!(b.status().waiting, 0);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_rejects_at_once() {
    let (rt, b) = spawn(
        "bh-queue",
        BulkheadConfig::builder()
            .max_concurrent(1)
            .max_wait(Duration::from_secs(1))
            .max_queue(2)
            .build()
            .unwrap(),
    )
    .await;
    let mut events = rt.subscribe();
    let _release = hold(&b);
    settle().await;
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.acquire().await.map(|_| ()) })
        })
        .collect();
    settle().await;
    assert_eq!(b.status().waiting, 2);
    let r = b.acquire().await;
    assert!(
        matches!(r, Err(BulkheadRejected::QueueFull { max_queue: 2, .. })),
        "{r:?}"
    );
    let e = next_matching(&mut events, |e| matches!(e, Event::CallRejected { .. })).await;
    assert!(matches!(
        e,
        Event::CallRejected {
            reason: palisade::telemetry::RejectReason::QueueFull,
            ..
        }
    ));
    for w in waiters {
        w.abort();
    }
    settle().await;
    assert_eq!(b.status().waiting, 0, "aborted waiters leave the queue");
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn waiters_are_admitted_in_fifo_order() {
    let (rt, b) = spawn("bh-fifo", config(1, Duration::from_secs(10))).await;
    let release = hold(&b);
    settle().await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (b, order) = (b.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            b.execute(|| async move {
                order.lock().unwrap().push(i);
                tokio::time::sleep(MS).await;
                Ok::<_, ()>(())
            })
            .await
        }));
        settle().await; // each waiter queues before the next arrives
    }
    drop(release);
    for t in tasks {
        t.await.unwrap().expect("admitted");
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_max_wait_wins() {
    let (rt, b) = spawn("bh-deadline", config(1, Duration::from_secs(10))).await;
    let _release = hold(&b);
    settle().await;
    let start = tokio::time::Instant::now();
    let r = deadline::within(30 * MS, b.execute(|| async { Ok::<_, ()>(()) })).await;
    assert!(
        matches!(r, Ok(Err(CallError::DeadlineExceeded { budget })) if budget == 30 * MS),
        "{r:?}"
    );
    assert_eq!(start.elapsed(), 30 * MS);
    // an expired deadline does not even queue
    let r = deadline::within(Duration::ZERO, async { b.acquire().await.map(|_| ()) }).await;
    assert!(
        matches!(
            r,
            Err(_) | Ok(Err(BulkheadRejected::DeadlineExceeded { .. }))
        ),
        "{r:?}"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn resize_up_wakes_waiters_and_resize_down_takes_effect_as_permits_return() {
    let (rt, b) = spawn("bh-resize", config(2, Duration::from_secs(10))).await;
    let mut events = rt.subscribe();
    let held: Vec<_> = (0..2).map(|_| hold(&b)).collect();
    settle().await;
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.execute(|| async { Ok::<_, ()>(()) }).await }
    });
    settle().await;
    assert_eq!(b.status().waiting, 1);
    b.resize(3).await.expect("grow");
    waiter.await.unwrap().expect("woken by the resize");
    next_matching(&mut events, |e| matches!(e, Event::Reconfigured { .. })).await;
    assert_eq!(b.status().max_concurrent, 3);
    assert_eq!(b.status().available, 1);

    // shrink to 1 while 2 are in flight: no permit is handed out until in flight < 1
    b.resize(1).await.expect("shrink");
    assert_eq!(b.status().available, 0);
    let mut held = held.into_iter();
    drop(held.next());
    settle().await;
    assert_eq!(
        (b.status().in_flight, b.status().available),
        (1, 0),
        "retired, not given back"
    );
    drop(held.next());
    settle().await;
    assert_eq!((b.status().in_flight, b.status().available), (0, 1));
    let e = b.resize(0).await.expect_err("zero");
    assert!(e.to_string().contains("max_concurrent"), "{e}");
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn killing_the_actor_under_load_loses_no_permit() {
    let (rt, b) = spawn("bh-kill", config(3, 100 * MS)).await;
    let mut events = rt.subscribe();
    let done = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (b, done) = (b.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                for _ in 0..10 {
                    let _ = b
                        .execute(|| async {
                            tokio::time::sleep(MS * (1 + i % 3)).await;
                            Ok::<_, ()>(())
                        })
                        .await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::advance(5 * MS).await;
    palisade::ractor::registry::where_is("palisade.bulkhead.bh-kill")
        .expect("running")
        .kill();
    next_matching(&mut events, |e| matches!(e, Event::ActorRestarted { .. })).await;
    await_all_then_idle(tasks, &b, 3).await;
    assert_eq!(done.load(Ordering::Relaxed), 200);
    rt.shutdown().await;
}

/// The permit hand-over between calls that find one free and calls that queue, on real
/// threads: every call gets through (the wait is far longer than the run) and every permit
/// comes back. A permit stranded where no queued task can see it would show as a call
/// rejected after its 10 s wait and as fewer than 2 permits available at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_unqueued_calls_on_two_threads_lose_no_permit() {
    let (rt, b) = spawn("bh-threads", config(2, 10_000 * MS)).await;
    let admitted = Arc::new(AtomicU32::new(0));
    // Every task starts in the queue: both permits are held until all 8 wait.
    let held = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (b, admitted) = (b.clone(), Arc::clone(&admitted));
            tokio::spawn(async move {
                for _ in 0..500 {
                    b.execute(|| async {
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(())
                    })
                    .await
                    .expect("admitted within the wait");
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for _ in 0..5_000 {
        if b.status().waiting == 8 {
            break;
        }
        tokio::time::sleep(MS).await;
    }
    assert_eq!(b.status().waiting, 8);
    drop(held);
    await_all_then_idle(tasks, &b, 2).await;
    assert_eq!(admitted.load(Ordering::Relaxed), 4_000);
    rt.shutdown().await;
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Success,
    Error,
    Panic,
    TimeoutDrop,
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Success),
        Just(Op::Error),
        Just(Op::Panic),
        Just(Op::TimeoutDrop),
        Just(Op::Abort)
    ]
}

static CASE: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever mix of outcomes, in flight never exceeds the limit and every permit returns.
    #[test]
    fn permits_balance_after_any_mix_of_outcomes(
        max in 1u32..5,
        ops in proptest::collection::vec((op(), 0u64..5), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async move {
            let name = format!("bh-prop-{}", CASE.fetch_add(1, Ordering::Relaxed));
            let (prt, b) = spawn(&name, config(max, 3 * MS)).await;
            let live = Arc::new(AtomicU32::new(0));
            let peak = Arc::new(AtomicU32::new(0));
            let mut tasks = Vec::new();
            for (op, ms) in ops {
                let (b, live, peak) = (b.clone(), Arc::clone(&live), Arc::clone(&peak));
                let task = tokio::spawn(async move {
                    let call = b.execute(|| async {
                        let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        struct Leave(Arc<AtomicU32>);
                        impl Drop for Leave { fn drop(&mut self) { self.0.fetch_sub(1, Ordering::SeqCst); } }
                        let _leave = Leave(Arc::clone(&live));
                        tokio::time::sleep(MS * ms as u32).await;
                        match op {
                            Op::Error => Err("error"),
                            Op::Panic => panic!("injected"),
                            Op::TimeoutDrop | Op::Abort => { pending::<()>().await; Ok(()) }
                            Op::Success => Ok(()),
                        }
                    });
                    if matches!(op, Op::TimeoutDrop) {
                        let _ = tokio::time::timeout(MS * 2, call).await;
                    } else {
                        let _ = call.await;
                    }
                });
                tasks.push((op, task));
            }
            tokio::time::advance(MS).await;
            for (op, task) in &tasks {
                if matches!(op, Op::Abort) { task.abort(); }
            }
            for (_, task) in tasks {
                let _ = task.await;
            }
            let s = b.status();
            assert!(peak.load(Ordering::SeqCst) <= max, "in flight exceeded the limit");
            assert_eq!((s.in_flight, s.available, s.waiting, s.max_concurrent), (0, max, 0, max));
            prt.shutdown().await;
        });
    }
}

/// Owned permits move into spawned tasks and give their slot back however the task ends:
/// done, panicked, or aborted while it waits.
#[tokio::test(start_paused = true)]
async fn owned_permits_move_into_tasks_and_always_come_back() {
    fn send_static<T: Send + Sync + 'static>(_: &T) {}
    let rt = Runtime::start().await.unwrap();
    let pool = rt
        .bulkhead(
            "bh-owned",
            BulkheadConfig::builder()
                .max_concurrent(2)
                .max_wait(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let a = pool.try_acquire_owned().unwrap();
    send_static(&a);
    assert_eq!(a.bulkhead_name(), "bh-owned");
    let b = pool.acquire_owned().await.unwrap();
    assert!(matches!(
        pool.try_acquire_owned(),
        Err(palisade::BulkheadRejected::Full { .. })
    ));
    let done = tokio::spawn(async move {
        let _held = a;
    });
    let panicked = tokio::spawn(async move {
        let _held = b;
        panic!("user bug");
    });
    done.await.unwrap();
    assert!(panicked.await.is_err());
    assert_eq!(pool.status().available, 2);
    // a waiter aborted while it queues takes nothing
    let held: Vec<_> = (0..2).map(|_| pool.try_acquire_owned().unwrap()).collect();
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire_owned().await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    assert_eq!(pool.status().waiting, 1);
    waiting.abort();
    assert!(waiting.await.is_err());
    drop(held);
    let s = pool.status();
    assert_eq!((s.available, s.in_flight, s.waiting), (2, 0, 0));
    rt.shutdown().await;
}
