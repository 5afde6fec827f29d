//! The bulkhead's permits: lock-free counters for calls that find one free, in front of
//! tokio's fair semaphore for calls that queue.
//!
//! tokio's `Semaphore` takes its waiter list's mutex on every release, queue or no queue;
//! that lock was most of an uncontended `execute`. Here a permit given back while nobody
//! queues goes to a free count (one `fetch_add`) and the next call takes it with one
//! `fetch_sub`. While tasks queue, permits given back go to the semaphore, which hands them
//! out in FIFO order.
//!
//! Free permits sit in the shared count `free` or, a few at a time, in a count of the
//! thread that gave them back ([`Permits::cached`], one cache line per thread, numbered as
//! the tallies number threads): a thread takes from its own count first, so threads that
//! take and give back on their own cores never pull one line back and forth between them.
//! With one shared count, two and four threads on one bulkhead were 1.7-2.5x tokio's
//! semaphore (benches/contended_rounds.rs), every take and every give a line moved between
//! cores. A thread keeps at most `max_concurrent / 64` permits, none below 64 permits: a
//! small bulkhead keeps every free permit in the shared count, one take away from any
//! thread, rather than scattered over counts that only a scan of them all finds.
//!
//! The hand-over is race-free by a store-then-check on both sides (all `SeqCst`), count by
//! count: a queuing task registers in `waiting`, then looks in every count; a releaser adds
//! to one count, then looks at `waiting` and, seeing a task, moves what is free in that count
//! to the semaphore. Whichever runs second sees the other, so a permit is never left in a
//! count while a task sleeps in the queue. Permits a task leaves in the semaphore when it
//! gives up are taken from there by the next call that finds the counts empty.
//!
//! A call takes its permit with one `fetch_sub` (no retry loop: under contention a CAS loop
//! retried on every change another core made to `free`, 89 % of a contended `try_acquire`
//! by perf, and 1.5-2x tokio's semaphore from 2 and 4 threads). A count is signed so the
//! take can dip below zero; a take that finds nothing puts the unit back as a give does
//! (add, then look at `waiting`), so the dip is undone by the thread that made it and the
//! hand-over above still holds. Permits are taken from another thread's count only with a
//! compare-and-swap that never dips it.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use crate::sync::{AtomicI64, AtomicU32};
use crate::telemetry::{thread_stripe, STRIPES};

use crossbeam::utils::CachePadded;
use tokio::sync::Semaphore;

/// A thread keeps at most `max_concurrent / CACHE_DIVISOR` free permits in its own count.
const CACHE_DIVISOR: u32 = 64;

/// Per-thread counts: one a thread, and one that threads beyond [`STRIPES`] share (the
/// loom models use three: each of their threads has one of its own).
#[cfg(not(palisade_loom))]
const COUNTS: usize = STRIPES + 1;
#[cfg(palisade_loom)]
const COUNTS: usize = 3;

#[derive(Debug)]
pub(super) struct Permits {
    /// Free permits any thread takes (below zero only for the instant a take that found
    /// none takes to undo itself).
    free: CachePadded<AtomicI64>,
    /// Free permits given back by each thread (by [`thread_stripe`]; the last count is
    /// shared by threads beyond [`STRIPES`]), taken first by the same thread. Each below
    /// zero only for the instant of an undone take, as `free`.
    cached: Box<[CachePadded<AtomicI64>; COUNTS]>,
    /// How many free permits a thread's count keeps; a give beyond goes to `free`.
    cache_cap: AtomicI64,
    /// Tasks queued (or about to queue) for a permit.
    waiting: CachePadded<AtomicU32>,
    /// The FIFO queue; it holds permits only for queued tasks (and, briefly, ones a task
    /// that gave up left behind).
    queue: Semaphore,
}

impl Permits {
    pub(super) fn new(n: u32) -> Self {
        Self {
            free: CachePadded::new(AtomicI64::new(i64::from(n))),
            cached: Box::new(std::array::from_fn(|_| CachePadded::new(AtomicI64::new(0)))),
            cache_cap: AtomicI64::new(cache_cap(n)),
            waiting: CachePadded::new(AtomicU32::new(0)),
            queue: Semaphore::new(0),
        }
    }

    /// A new `max_concurrent`: how many free permits a thread may keep from now on (what
    /// a thread keeps beyond it stays free, and is taken as any other).
    pub(super) fn resized(&self, max_concurrent: u32) {
        self.cache_cap.store(cache_cap(max_concurrent), Relaxed);
    }

    /// The count of the thread numbered `stripe` (threads beyond the counts share the last).
    #[inline(always)]
    fn count_of(&self, stripe: usize) -> &AtomicI64 {
        &self.cached[stripe.min(COUNTS - 1)]
    }

    /// Takes a permit if one is free now.
    #[inline]
    pub(super) fn try_take(&self) -> bool {
        self.try_take_on(thread_stripe())
    }

    /// [`try_take`](Self::try_take) for the thread numbered `stripe`.
    #[inline]
    fn try_take_on(&self, stripe: usize) -> bool {
        let mine = self.count_of(stripe);
        if mine.load(Relaxed) > 0 && self.take_one(mine) {
            return true;
        }
        self.take_elsewhere()
    }

    /// A take that found nothing in its thread's count: the shared count, then any count
    /// (as a queued task looks: the two just found empty cost a load each), then the queue.
    #[inline(never)]
    fn take_elsewhere(&self) -> bool {
        self.take_one(&self.free) || self.take_free(1) == 1 || self.take_queued()
    }

    /// Takes one free permit from `count` with one locked subtraction; a take that finds
    /// none undoes it.
    #[inline]
    fn take_one(&self, count: &AtomicI64) -> bool {
        if count.fetch_sub(1, SeqCst) > 0 {
            return true;
        }
        self.put_back(count, 1);
        false
    }

    /// Gives `n` permits back: to the queue while tasks wait there, else to the calling
    /// thread's count (one permit, while it keeps fewer than its cap) or to `free`.
    #[inline]
    pub(super) fn give(&self, n: u32) {
        self.give_on(thread_stripe(), n);
    }

    /// [`give`](Self::give) from the thread numbered `stripe`.
    #[inline]
    fn give_on(&self, stripe: usize, n: u32) {
        if n == 0 {
            return;
        }
        if self.waiting.load(SeqCst) != 0 {
            self.to_queue(n);
            return;
        }
        let mine = self.count_of(stripe);
        let count = if n == 1 && mine.load(Relaxed) < self.cache_cap.load(Relaxed) {
            mine
        } else {
            &self.free
        };
        self.put_back(count, n);
    }

    /// Adds `n` to `count`, then hands what is free there to the queue if a task queued
    /// meanwhile (it may have found `count` empty).
    #[inline]
    fn put_back(&self, count: &AtomicI64, n: u32) {
        count.fetch_add(i64::from(n), SeqCst);
        crate::sync::store_then_check();
        if self.waiting.load(SeqCst) == 0 {
            return;
        }
        self.to_queue(take_from(count, n));
    }

    /// Hands `n` permits to the queue's waiters (out of line: the path without a queue
    /// stays small enough to inline into a permit's drop).
    #[cold]
    #[inline(never)]
    fn to_queue(&self, n: u32) {
        self.queue.add_permits(n as usize);
    }

    /// Counts a task in the queue; returns how many were there before it. Pair with
    /// [`leave`](Self::leave).
    pub(super) fn join(&self) -> u32 {
        let before = self.waiting.fetch_add(1, SeqCst);
        crate::sync::store_then_check();
        before
    }

    /// Counts a task out of the queue; returns how many are left.
    pub(super) fn leave(&self) -> u32 {
        self.waiting.fetch_sub(1, SeqCst).saturating_sub(1)
    }

    /// Waits for a permit (after [`join`](Self::join)); `false` only if the queue closed,
    /// which it never does.
    pub(super) async fn take_waiting(&self) -> bool {
        if self.take_free(1) == 1 {
            return true;
        }
        match self.queue.acquire().await {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Retires up to `n` free permits (a shrink); returns how many.
    pub(super) fn forget(&self, n: u32) -> u32 {
        let from_free = self.take_free(n);
        let rest = (n - from_free) as usize;
        // u32 fits: at most `rest`, itself below n.
        from_free + u32::try_from(self.queue.forget_permits(rest)).unwrap_or(0)
    }

    /// Permits free now.
    pub(super) fn available(&self) -> u64 {
        let counted = |c: &AtomicI64| u64::try_from(c.load(SeqCst)).unwrap_or(0);
        counted(&self.free)
            + self.cached.iter().map(|c| counted(c)).sum::<u64>()
            + self.queue.available_permits() as u64
    }

    /// Tasks queued now.
    pub(super) fn waiting(&self) -> u32 {
        self.waiting.load(SeqCst)
    }

    /// Takes up to `max` free permits from `free` and then every thread's count; returns
    /// how many.
    fn take_free(&self, max: u32) -> u32 {
        let mut taken = take_from(&self.free, max);
        for count in self.cached.iter() {
            if taken == max {
                break;
            }
            taken += take_from(count, max - taken);
        }
        taken
    }

    /// A permit a task that gave up left in the queue (never one a queued task is owed:
    /// the semaphore hands those to its waiters first).
    #[cold]
    fn take_queued(&self) -> bool {
        match self.queue.try_acquire() {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }
}

/// How many free permits one thread keeps, for `max_concurrent` permits.
fn cache_cap(max_concurrent: u32) -> i64 {
    i64::from(max_concurrent / CACHE_DIVISOR)
}

/// Takes up to `max` permits from `count` without ever taking it below zero; returns how
/// many.
fn take_from(count: &AtomicI64, max: u32) -> u32 {
    let mut free = count.load(SeqCst);
    loop {
        let take = free.min(i64::from(max));
        if take <= 0 {
            return 0;
        }
        match count.compare_exchange_weak(free, free - take, SeqCst, SeqCst) {
            // u32 fits: at most `max`
            Ok(_) => return u32::try_from(take).unwrap_or(max),
            Err(now) => free = now,
        }
    }
}

/// loom models (`scripts/loom`): every interleaving of two or three threads, each thread
/// on a count of its own (three counts), with threads keeping no permits (`cap` 0: every
/// give goes to `free`) and keeping one (`cap` 1: a give goes to the giver's count).
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    fn permits(n: u32, cap: i64) -> Arc<Permits> {
        let p = Permits::new(n);
        p.cache_cap.store(cap, Relaxed);
        Arc::new(p)
    }

    /// Free permits in `free` and every thread's count.
    fn counted(p: &Permits) -> i64 {
        p.free.load(SeqCst) + p.cached.iter().map(|c| c.load(SeqCst)).sum::<i64>()
    }

    /// A permit given back while a task joins the queue is never stranded in a count: the
    /// joiner finds it there, or it is in the queue where the sleeping task gets it.
    #[test]
    fn loom_hand_over_never_strands_a_permit() {
        for cap in [0, 1] {
            loom::model(move || {
                let p = permits(0, cap);
                let giver = {
                    let p = Arc::clone(&p);
                    loom::thread::spawn(move || p.give_on(1, 1))
                };
                p.join();
                let found = p.take_free(1) == 1;
                giver.join().expect("giver");
                let (free, queued) = (counted(&p), p.queue.available_permits());
                assert!(
                    found || (queued == 1 && free == 0),
                    "stranded (cap {cap}): found {found}, free {free}, queued {queued}"
                );
            });
        }
    }

    /// A take that finds nothing dips a count below zero and undoes it, while a permit is
    /// given back and a task joins the queue: the permit is taken once, by the taker or the
    /// joiner, or waits in the queue for the joiner; never stranded in a count, never two.
    #[test]
    fn loom_a_failed_take_never_strands_or_doubles_a_permit() {
        for cap in [0, 1] {
            loom::model(move || {
                let p = permits(0, cap);
                let taker = {
                    let p = Arc::clone(&p);
                    loom::thread::spawn(move || u32::from(p.try_take_on(1)))
                };
                let giver = {
                    let p = Arc::clone(&p);
                    loom::thread::spawn(move || p.give_on(2, 1))
                };
                p.join();
                let found = p.take_free(1);
                let taken = taker.join().expect("taker");
                giver.join().expect("giver");
                let (free, queued) = (counted(&p), p.queue.available_permits());
                assert!(
                    p.free.load(SeqCst) >= 0 && p.cached.iter().all(|c| c.load(SeqCst) >= 0),
                    "a dip was left (cap {cap})"
                );
                assert_eq!(
                    i64::from(taken) + i64::from(found) + free + queued as i64,
                    1,
                    "cap {cap}: taken {taken}, found {found}, free {free}, queued {queued}"
                );
                assert!(
                    taken == 1 || found == 1 || (queued == 1 && free == 0),
                    "stranded (cap {cap}): free {free}, queued {queued}"
                );
            });
        }
    }

    /// The owner of a count takes from it (load, then a `fetch_sub` that may dip) while
    /// another thread steals from it (compare-and-swap): the one permit there goes to
    /// exactly one of them, and the count ends at zero, never below.
    #[test]
    fn loom_an_owner_and_a_thief_never_both_take_one_kept_permit() {
        loom::model(|| {
            let p = permits(1, 1);
            assert!(p.try_take_on(0));
            p.give_on(0, 1);
            assert_eq!(p.cached[0].load(SeqCst), 1, "kept by thread 0");
            let thief = {
                let p = Arc::clone(&p);
                loom::thread::spawn(move || u32::from(p.try_take_on(1)))
            };
            let owner = u32::from(p.try_take_on(0));
            let stolen = thief.join().expect("thief");
            assert_eq!(owner + stolen, 1, "owner {owner}, thief {stolen}");
            assert_eq!(counted(&p), 0, "left behind");
            assert!(
                p.cached.iter().all(|c| c.load(SeqCst) == 0),
                "a dip was left"
            );
        });
    }

    /// Two takers on counts of their own and a giver over one permit: no permit is lost or
    /// duplicated, wherever the giver puts it: what was taken plus what is left is always
    /// the one permit.
    #[test]
    fn loom_permits_are_never_lost_or_duplicated() {
        for cap in [0, 1] {
            loom::model(move || {
                let p = permits(1, cap);
                assert!(p.try_take_on(0));
                let taker = |p: Arc<Permits>, stripe: usize| {
                    loom::thread::spawn(move || u32::from(p.try_take_on(stripe)))
                };
                let (a, b) = (taker(Arc::clone(&p), 1), taker(Arc::clone(&p), 2));
                p.give_on(0, 1);
                let taken = a.join().expect("a") + b.join().expect("b");
                let left = u32::try_from(p.available()).expect("small");
                assert_eq!(taken + left, 1, "cap {cap}: taken {taken}, left {left}");
            });
        }
    }
}

/// (Not under loom: its build has three counts, and these tests use every thread number.)
#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn permits_go_round_without_a_queue() {
        let p = Permits::new(2);
        assert!(p.try_take());
        assert!(p.try_take());
        assert!(!p.try_take());
        assert_eq!(p.available(), 0);
        p.give(1);
        assert_eq!(p.available(), 1);
        assert!(p.try_take());
        p.give(2);
        assert_eq!(p.forget(3), 2, "only what is free retires");
        assert_eq!(p.available(), 0);
    }

    #[test]
    fn a_thread_keeps_what_it_gives_back_and_other_threads_still_find_it() {
        let p = Permits::new(128);
        assert_eq!(p.cache_cap.load(Relaxed), 2, "128 / 64");
        for _ in 0..3 {
            assert!(p.try_take_on(0));
        }
        for _ in 0..3 {
            p.give_on(0, 1);
        }
        assert_eq!(p.cached[0].load(SeqCst), 2, "kept up to the cap");
        assert_eq!(p.free.load(SeqCst), 126, "the rest went back to free");
        // the thread takes its own first
        assert!(p.try_take_on(0));
        assert_eq!(p.cached[0].load(SeqCst), 1);
        // with free empty, another thread takes what the first one keeps
        assert_eq!(take_from(&p.free, 200), 126);
        assert!(p.try_take_on(1), "found in thread 0's count");
        assert!(!p.try_take_on(1), "nothing left anywhere");
        assert_eq!(p.available(), 0);
        // a shrink retires kept permits too
        p.give_on(2, 1);
        p.give_on(2, 1);
        assert_eq!(p.cached[2].load(SeqCst), 2);
        assert_eq!(p.forget(5), 2);
        assert_eq!(p.available(), 0);
    }

    #[test]
    fn every_leased_thread_number_has_a_count_of_its_own_and_the_rest_share_the_last() {
        let p = Permits::new(64 * 4);
        assert_eq!(p.cache_cap.load(Relaxed), 4);
        let n = STRIPES + 6;
        for stripe in 0..n {
            assert!(p.try_take_on(stripe));
        }
        for stripe in 0..n {
            p.give_on(stripe, 1);
        }
        for stripe in 0..STRIPES {
            assert_eq!(p.cached[stripe].load(SeqCst), 1, "thread number {stripe}");
        }
        // the six numbers from STRIPES on all land on the shared count: it keeps 4, the
        // other 2 go to free
        assert_eq!(p.cached[STRIPES].load(SeqCst), 4, "kept up to the cap");
        assert_eq!(
            p.free.load(SeqCst),
            64 * 4 - n as i64 + 2,
            "the rest in free"
        );
        assert_eq!(p.available(), 64 * 4);
    }

    #[test]
    fn counts_of_free_kept_and_queued_permits_add_up_and_retire_in_order() {
        let p = Permits::new(64 * 5);
        // 3 kept by thread 0, 5 by thread 1, 2 in the queue (given while tasks waited),
        // the rest in free
        for _ in 0..10 {
            assert!(p.try_take_on(0));
        }
        for _ in 0..3 {
            p.give_on(0, 1);
        }
        for _ in 0..5 {
            p.give_on(1, 1);
        }
        assert_eq!((p.join(), p.join()), (0, 1), "tasks queued before each");
        assert_eq!(p.waiting(), 2);
        p.give_on(0, 2);
        assert_eq!(p.leave(), 1, "one task left queued");
        assert_eq!(p.leave(), 0);
        assert_eq!(p.waiting(), 0);
        let free = 64 * 5 - 10;
        assert_eq!(p.free.load(SeqCst), free);
        assert_eq!(p.queue.available_permits(), 2);
        assert_eq!(p.available(), free as u64 + 3 + 5 + 2);
        // taking from several counts asks each only for what is still missing
        assert_eq!(take_from(&p.free, u32::MAX), free as u32);
        assert_eq!(p.take_free(4), 4, "3 from thread 0, 1 from thread 1");
        assert_eq!((p.cached[0].load(SeqCst), p.cached[1].load(SeqCst)), (0, 4));
        // a shrink retires the free and kept permits, then the queued ones
        assert_eq!(p.forget(5), 5, "4 kept, 1 queued");
        assert_eq!(p.queue.available_permits(), 1);
        assert_eq!(p.forget(5), 1, "only one was left");
        assert_eq!(p.available(), 0);
    }

    #[test]
    fn a_small_bulkhead_keeps_every_free_permit_shared() {
        let p = Permits::new(63);
        assert!(p.try_take_on(0));
        p.give_on(0, 1);
        assert_eq!(p.cached[0].load(SeqCst), 0);
        assert_eq!(p.free.load(SeqCst), 63);
        // a resize past 64 lets threads keep one
        p.resized(64);
        assert!(p.try_take_on(0));
        p.give_on(0, 1);
        assert_eq!(p.cached[0].load(SeqCst), 1);
    }

    #[tokio::test]
    async fn a_queued_task_gets_the_next_permit_given_back() {
        let p = std::sync::Arc::new(Permits::new(1));
        assert!(p.try_take());
        assert_eq!(p.join(), 0);
        let waiter = tokio::spawn({
            let p = std::sync::Arc::clone(&p);
            async move { p.take_waiting().await }
        });
        tokio::task::yield_now().await;
        p.give(1);
        assert!(waiter.await.expect("waiter"));
        assert_eq!(p.leave(), 0);
        assert_eq!(p.available(), 0, "the permit went to the waiter");
        // a permit given to the queue and left there is found by the next try
        p.join();
        p.give(1);
        p.leave();
        assert!(p.try_take());
    }

    #[test]
    fn a_permit_given_back_while_a_task_joins_is_never_stranded() {
        // Two threads meet at a barrier each round, then one gives a permit back while the
        // other joins the queue and looks in every count. Whatever the interleaving, the
        // joiner finds the permit or it ends up in the queue, where a sleeping task gets
        // it. Half the pools let the giver keep the permit in its own count.
        use std::sync::{Arc, Barrier};
        const ROUNDS: usize = 20_000;
        let pools: Arc<Vec<Permits>> = Arc::new(
            (0..ROUNDS)
                .map(|i| {
                    let p = Permits::new(0);
                    p.cache_cap.store(i64::from(i % 2 == 0), Relaxed);
                    p
                })
                .collect(),
        );
        let barrier = Arc::new(Barrier::new(2));
        let giver = std::thread::spawn({
            let (pools, barrier) = (Arc::clone(&pools), Arc::clone(&barrier));
            move || {
                for p in pools.iter() {
                    barrier.wait();
                    p.give_on(1, 1);
                }
            }
        });
        let mut found = Vec::with_capacity(ROUNDS);
        for p in pools.iter() {
            barrier.wait();
            p.join();
            found.push(p.take_free(1) == 1);
        }
        giver.join().expect("giver");
        for (p, found) in pools.iter().zip(found) {
            let free = p.free.load(SeqCst) + p.cached.iter().map(|c| c.load(SeqCst)).sum::<i64>();
            let queued = p.queue.available_permits();
            assert!(
                found || (queued == 1 && free == 0),
                "a permit left in a count while a task queues: free {free}, queued {queued}"
            );
        }
    }
}
