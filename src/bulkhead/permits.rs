//! The bulkhead's permits: a lock-free counter for calls that find one free, in front of
//! tokio's fair semaphore for calls that queue.
//!
//! tokio's `Semaphore` takes its waiter list's mutex on every release, queue or no queue;
//! that lock was most of an uncontended `execute`. Here a permit given back while nobody
//! queues goes to `free` (one `fetch_add`) and the next call takes it with one CAS. While
//! tasks queue, permits given back go to the semaphore, which hands them out in FIFO order.
//!
//! The hand-over is race-free by a store-then-check on both sides (all `SeqCst`): a queuing
//! task registers in `waiting`, then looks in `free`; a releaser adds to `free`, then looks
//! at `waiting` and, seeing a task, moves what is free to the semaphore. Whichever runs second
//! sees the other, so a permit is never left in `free` while a task sleeps in the queue.
//! Permits a task leaves in the semaphore when it gives up are taken from there by the next
//! call that finds `free` empty.
//!
//! A call takes its permit with one `fetch_sub` (no retry loop: under contention a CAS loop
//! retried on every change another core made to `free`, 89 % of a contended `try_acquire`
//! by perf, and 1.5-2x tokio's semaphore from 2 and 4 threads). `free` is signed so the take
//! can dip below zero; a take that finds nothing puts the unit back as a give does (add,
//! then look at `waiting`), so the dip is undone by the thread that made it and the
//! hand-over above still holds.

use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicI64, AtomicU32};

use crossbeam::utils::CachePadded;
use tokio::sync::Semaphore;

#[derive(Debug)]
pub(super) struct Permits {
    /// Free permits, for the taking without a queue (below zero only for the instant a
    /// take that found none takes to undo itself).
    free: CachePadded<AtomicI64>,
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
            waiting: CachePadded::new(AtomicU32::new(0)),
            queue: Semaphore::new(0),
        }
    }

    /// Takes a permit if one is free now.
    #[inline]
    pub(super) fn try_take(&self) -> bool {
        self.take_one() || self.take_queued()
    }

    /// Takes one free permit with one locked subtraction; a take that finds none undoes it.
    #[inline]
    fn take_one(&self) -> bool {
        if self.free.fetch_sub(1, SeqCst) > 0 {
            return true;
        }
        self.put_back(1);
        false
    }

    /// Gives `n` permits back: to the queue while tasks wait there, else to `free`.
    #[inline]
    pub(super) fn give(&self, n: u32) {
        if n == 0 {
            return;
        }
        if self.waiting.load(SeqCst) == 0 {
            self.put_back(n);
        } else {
            self.queue.add_permits(n as usize);
        }
    }

    /// Adds `n` to `free`, then hands what is free to the queue if a task queued meanwhile
    /// (it may have found `free` empty).
    fn put_back(&self, n: u32) {
        self.free.fetch_add(i64::from(n), SeqCst);
        crate::sync::store_then_check();
        if self.waiting.load(SeqCst) == 0 {
            return;
        }
        let moved = self.take_free(n);
        self.queue.add_permits(moved as usize);
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
        u64::try_from(self.free.load(SeqCst)).unwrap_or(0) + self.queue.available_permits() as u64
    }

    /// Tasks queued now.
    pub(super) fn waiting(&self) -> u32 {
        self.waiting.load(SeqCst)
    }

    /// Takes up to `max` permits from `free`; returns how many.
    #[inline]
    fn take_free(&self, max: u32) -> u32 {
        let mut free = self.free.load(SeqCst);
        loop {
            let take = free.min(i64::from(max));
            if take <= 0 {
                return 0;
            }
            match self
                .free
                .compare_exchange_weak(free, free - take, SeqCst, SeqCst)
            {
                // u32 fits: at most `max`
                Ok(_) => return u32::try_from(take).unwrap_or(max),
                Err(now) => free = now,
            }
        }
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

/// loom models (`scripts/loom`): every interleaving of two or three threads.
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    /// A permit given back while a task joins the queue is never stranded in `free`: the
    /// joiner finds it there, or it is in the queue where the sleeping task gets it.
    #[test]
    fn loom_hand_over_never_strands_a_permit() {
        loom::model(|| {
            let p = Arc::new(Permits::new(0));
            let giver = {
                let p = Arc::clone(&p);
                loom::thread::spawn(move || p.give(1))
            };
            p.join();
            let found = p.take_free(1) == 1;
            giver.join().expect("giver");
            let (free, queued) = (p.free.load(SeqCst), p.queue.available_permits());
            assert!(
                found || (queued == 1 && free == 0),
                "stranded: found {found}, free {free}, queued {queued}"
            );
        });
    }

    /// A take that finds nothing dips `free` below zero and undoes it, while a permit is
    /// given back and a task joins the queue: the permit is taken once, by the taker or the
    /// joiner, or waits in the queue for the joiner; never stranded in `free`, never two.
    #[test]
    fn loom_a_failed_take_never_strands_or_doubles_a_permit() {
        loom::model(|| {
            let p = Arc::new(Permits::new(0));
            let taker = {
                let p = Arc::clone(&p);
                loom::thread::spawn(move || u32::from(p.take_one()))
            };
            let giver = {
                let p = Arc::clone(&p);
                loom::thread::spawn(move || p.give(1))
            };
            p.join();
            let found = p.take_free(1);
            let taken = taker.join().expect("taker");
            giver.join().expect("giver");
            let (free, queued) = (p.free.load(SeqCst), p.queue.available_permits());
            assert!(free >= 0, "a dip was left: free {free}");
            assert_eq!(
                i64::from(taken) + i64::from(found) + free + queued as i64,
                1,
                "taken {taken}, found {found}, free {free}, queued {queued}"
            );
            assert!(
                taken == 1 || found == 1 || (queued == 1 && free == 0),
                "stranded: free {free}, queued {queued}"
            );
        });
    }

    /// Two takers and a giver over one permit: no permit is lost or duplicated: what was
    /// taken plus what is left is always the one permit.
    #[test]
    fn loom_permits_are_never_lost_or_duplicated() {
        loom::model(|| {
            let p = Arc::new(Permits::new(1));
            assert!(p.try_take());
            let taker = |p: Arc<Permits>| loom::thread::spawn(move || u32::from(p.try_take()));
            let (a, b) = (taker(Arc::clone(&p)), taker(Arc::clone(&p)));
            p.give(1);
            let taken = a.join().expect("a") + b.join().expect("b");
            let left = u32::try_from(p.available()).expect("small");
            assert_eq!(taken + left, 1, "taken {taken}, left {left}");
        });
    }
}

#[cfg(test)]
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
        // other joins the queue and looks in `free`. Whatever the interleaving, the joiner
        // finds the permit in `free` or it ends up in the queue, where a sleeping task gets it.
        use std::sync::{Arc, Barrier};
        const ROUNDS: usize = 20_000;
        let pools: Arc<Vec<Permits>> = Arc::new((0..ROUNDS).map(|_| Permits::new(0)).collect());
        let barrier = Arc::new(Barrier::new(2));
        let giver = std::thread::spawn({
            let (pools, barrier) = (Arc::clone(&pools), Arc::clone(&barrier));
            move || {
                for p in pools.iter() {
                    barrier.wait();
                    p.give(1);
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
            let (free, queued) = (p.free.load(SeqCst), p.queue.available_permits());
            assert!(
                found || (queued == 1 && free == 0),
                "a permit left in free while a task queues: free {free}, queued {queued}"
            );
        }
    }
}
