//! Per-thread counts for the hottest counters, flushed into `metrics` counters by an actor.
//!
//! With a recorder installed, a `metrics` counter is one atomic add on a line every thread
//! shares: behind every rate-limit check that was a locked instruction and, from 2 threads,
//! a cache line moving between cores (measured in benches/limiter.rs, group
//! `limiter_with_prometheus`). A [`Tally`] gives each live thread its own cache-padded
//! stripe instead: the thread adds with a plain load and store (no locked instruction, no
//! shared line), and the primitive's actor sums the stripes into the counters every
//! [`FLUSH_EVERY`] and when it stops, so shutdown leaves exact counts.
//!
//! Stripes are leased to threads from one process-wide pool of [`STRIPES`] (a thread gives
//! its stripe back when it exits, so a pool of reused worker threads never runs out);
//! threads beyond that share one more stripe and add to it atomically. A thread keeps its
//! stripe number in a const thread-local without a destructor (a count is one thread-local
//! load and a plain add); the lease behind it, a thread-local with a destructor, gives the
//! stripe back at thread exit and points the thread at the shared stripe for anything it
//! still counts while its thread-locals are torn down. Counts never get lost, only delayed:
//! a scrape may lag the checks by up to [`FLUSH_EVERY`]. (While a primitive's actor is left
//! down after a restart meltdown, its counts wait in the tally until the runtime shuts down,
//! when the supervisor flushes them.)
//!
//! Memory: `STRIPES + 1` cache-padded stripes per tally, 4.2 KiB on x86-64.
//!
//! # Memory ordering
//! A stripe is written by one thread at a time: its lease holder (or, for the shared
//! stripe, by atomic read-modify-writes). A lease moves between threads only through the
//! pool's mutex, which orders the old holder's last store before the new holder's first
//! load. The flusher's relaxed loads may miss the latest adds of a running thread; those are
//! counted at the next flush. Anything that happened before the actor's stop (a message
//! send) is seen by the stop's flush.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam::utils::CachePadded;
use metrics::Counter;

use crate::sync::{AtomicU64, AtomicUsize, Mutex};

/// How often an actor moves what the hot path counted (tallies, sampled gauges) into `metrics`.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Stripes leased one per thread; more threads share stripe number `STRIPES`.
pub(crate) const STRIPES: usize = 32;

/// `N` numbers, each kept per thread: a thread adds to its own stripe, and a reader sums
/// the stripes.
pub(crate) struct Stripes<const N: usize> {
    /// `STRIPES` leased stripes and the shared one.
    stripes: Box<[CachePadded<[AtomicU64; N]>; STRIPES + 1]>,
}

impl<const N: usize> Stripes<N> {
    /// Every number at zero.
    pub(crate) fn new() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| {
                CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
            })),
        }
    }

    /// Adds `n` to number `which` (< `N`).
    #[inline]
    pub(crate) fn add(&self, which: usize, n: u64) {
        // (a stripe number is never past the shared one; it spares a bounds check)
        let stripe = thread_stripe();
        Self::add_to(&self.stripes[stripe], stripe, which, n);
    }

    /// Adds `n` to number `a` and `m` to number `b` (each < `N`), finding the thread's
    /// stripe once.
    #[inline]
    pub(crate) fn add_two(&self, a: usize, n: u64, b: usize, m: u64) {
        let stripe = thread_stripe();
        let cells = &self.stripes[stripe];
        Self::add_to(cells, stripe, a, n);
        Self::add_to(cells, stripe, b, m);
    }

    /// [`add`](Self::add) on the calling thread's `stripe`, from [`leased_stripe`].
    #[inline]
    pub(crate) fn add_on(&self, stripe: usize, which: usize, n: u64) {
        Self::add_to(&self.stripes[stripe], stripe, which, n);
    }

    #[inline(always)]
    fn add_to(cells: &[AtomicU64; N], stripe: usize, which: usize, n: u64) {
        let cell = &cells[which];
        if stripe < STRIPES {
            // this thread holds the lease: nobody else writes this cell
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Number `which` so far, summed over the stripes. Successive reads never go down.
    pub(crate) fn total(&self, which: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s[which].load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// `N` counters, each tallied per thread.
pub(crate) struct Tally<const N: usize> {
    counts: Stripes<N>,
    counters: [Counter; N],
    /// What has been handed to `counters` so far.
    flushed: Mutex<[u64; N]>,
}

impl<const N: usize> std::fmt::Debug for Tally<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("totals", &(0..N).map(|i| self.total(i)).collect::<Vec<_>>())
            .finish()
    }
}

impl<const N: usize> Tally<N> {
    /// A tally in front of `counters`.
    pub(crate) fn new(counters: [Counter; N]) -> Self {
        Self {
            counts: Stripes::new(),
            counters,
            flushed: Mutex::new([0; N]),
        }
    }

    /// Adds one to counter `which` (< `N`).
    #[inline]
    pub(crate) fn add(&self, which: usize) {
        self.counts.add(which, 1);
    }

    /// [`add`](Self::add) on the calling thread's `stripe`, from [`leased_stripe`].
    #[inline]
    pub(crate) fn add_on(&self, stripe: usize, which: usize) {
        self.counts.add_on(stripe, which, 1);
    }

    /// Counter `which`'s count so far, flushed or not.
    pub(crate) fn total(&self, which: usize) -> u64 {
        self.counts.total(which)
    }

    /// Hands what was counted since the last flush to the `metrics` counters.
    pub(crate) fn flush(&self) {
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        for (which, done) in flushed.iter_mut().enumerate() {
            let total = self.total(which);
            let delta = total.wrapping_sub(*done);
            if delta > 0 {
                self.counters[which].increment(delta);
                *done = total;
            }
        }
    }
}

/// Numbers stripes and takes them back.
#[derive(Debug)]
struct Pool {
    free: Mutex<Vec<usize>>,
    next: AtomicUsize,
    size: usize,
}

impl Pool {
    #[cfg(not(palisade_loom))]
    const fn new(size: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            size,
        }
    }

    /// (loom's types are not `const`: a lazy static builds the pool in each model run)
    #[cfg(palisade_loom)]
    fn new(size: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            size,
        }
    }

    /// A free stripe, or `size` (the shared one) when all are leased.
    fn take(&self) -> usize {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stripe) = free.pop() {
            return stripe;
        }
        let fresh = self.next.load(Ordering::Relaxed);
        if fresh < self.size {
            self.next.store(fresh + 1, Ordering::Relaxed);
            fresh
        } else {
            self.size
        }
    }

    fn give(&self, stripe: usize) {
        if stripe < self.size {
            self.free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(stripe);
        }
    }
}

#[cfg(not(palisade_loom))]
static POOL: Pool = Pool::new(STRIPES);

#[cfg(not(palisade_loom))]
#[inline]
fn pool() -> &'static Pool {
    &POOL
}

/// Under loom each model run installs a pool of its own (its loom types live only as long as
/// the run; loom's `lazy_static` handed a freed pool to a thread-local's destructor).
#[cfg(palisade_loom)]
static MODEL_POOL: std::sync::Mutex<Option<std::sync::Arc<Pool>>> = std::sync::Mutex::new(None);

#[cfg(palisade_loom)]
fn pool() -> std::sync::Arc<Pool> {
    MODEL_POOL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .expect("the model installs a pool")
}

/// A thread's stripe, given back when the thread exits.
struct Lease(usize);

impl Drop for Lease {
    fn drop(&mut self) {
        // from here on this thread counts on the shared stripe
        let _ = STRIPE.try_with(|s| s.set(STRIPES));
        pool().give(self.0);
    }
}

/// [`STRIPE`] before the thread's first count.
const UNLEASED: usize = usize::MAX;

#[cfg(not(palisade_loom))]
thread_local! {
    /// The stripe the calling thread counts on: a plain thread-local without a destructor,
    /// so reading it is one load (no lazy-initialisation check).
    static STRIPE: Cell<usize> = const { Cell::new(UNLEASED) };
    /// The lease behind [`STRIPE`], whose destructor gives the stripe back.
    static LEASE: Lease = Lease(pool().take());
}

// the same under loom, whose thread-locals run their destructors when a model's thread ends
#[cfg(palisade_loom)]
loom::thread_local! {
    static STRIPE: Cell<usize> = Cell::new(UNLEASED);
    static LEASE: Lease = Lease(pool().take());
}

/// The calling thread's stripe (the shared one once its thread-locals are torn down).
#[inline]
fn this_threads_stripe() -> usize {
    let stripe = STRIPE.with(Cell::get);
    if stripe != UNLEASED {
        return stripe;
    }
    lease()
}

/// The calling thread's number among the threads alive now (below [`STRIPES`]), or
/// `STRIPES`, which more threads share, once all are taken: for other per-thread state
/// (a bulkhead's free permits per thread).
#[inline]
pub(crate) fn thread_stripe() -> usize {
    this_threads_stripe().min(STRIPES)
}

/// The calling thread's stripe if it has leased one ([`thread_stripe`] otherwise, which
/// leases it): for a caller that keeps the lease's call off its own path.
#[inline]
pub(crate) fn leased_stripe() -> Option<usize> {
    let stripe = STRIPE.with(Cell::get);
    (stripe != UNLEASED).then(|| stripe.min(STRIPES))
}

/// Takes a stripe for this thread at its first count.
#[cold]
#[inline(never)]
fn lease() -> usize {
    let stripe = LEASE.try_with(|l| l.0).unwrap_or(STRIPES);
    STRIPE.with(|s| s.set(stripe));
    stripe
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_pool_hands_out_each_stripe_once_then_the_shared_one_and_takes_them_back() {
        let pool = Pool::new(3);
        let taken: Vec<usize> = (0..5).map(|_| pool.take()).collect();
        assert_eq!(taken, [0, 1, 2, 3, 3]);
        pool.give(1);
        pool.give(3); // the shared stripe is nobody's to give back
        assert_eq!(pool.take(), 1);
        assert_eq!(pool.take(), 3);
    }

    #[test]
    fn counts_from_more_threads_than_stripes_add_up_exactly_and_stripes_come_back() {
        let tally = Tally::new([Counter::noop(), Counter::noop()]);
        let threads = STRIPES + 8;
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (tally, barrier) = (&tally, &barrier);
                    s.spawn(move || {
                        barrier.wait(); // all alive at once: some share the last stripe
                        for i in 0..1_000 {
                            tally.add(usize::from((i + t) % 3 == 0));
                        }
                    })
                })
                .collect();
            // Joined one by one: a join waits for the thread's exit, after its thread-locals
            // gave the stripes back. The scope's own wait ends as each closure returns,
            // before that: the stripes below then came back late, now and then (2 runs
            // in 40 found the pool still empty).
            for w in workers {
                w.join().expect("a counting thread");
            }
        });
        assert_eq!(tally.total(0) + tally.total(1), 1_000 * threads as u64);
        let ones: u64 = (0..threads)
            .map(|t| (0..1_000).filter(|i| (i + t) % 3 == 0).count() as u64)
            .sum();
        assert_eq!(tally.total(1), ones);

        // (in the same test, so no other test holds the pool's stripes meanwhile)
        // threads that exit give their stripe back: one after another, many more threads
        // than stripes, each finds a free stripe
        for _ in 0..(3 * STRIPES) {
            let stripe = std::thread::spawn(this_threads_stripe)
                .join()
                .expect("thread");
            assert!(
                stripe < STRIPES,
                "a stripe leaked: thread got the shared one"
            );
        }
    }
}

/// loom models (`bash scripts/loom`): counts from threads that exit and hand their stripe
/// to a newer thread, against a flush running meanwhile.
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// What the tally has handed to its counters so far.
    fn flushed(tally: &Tally<1>) -> u64 {
        tally.flushed.lock().unwrap_or_else(|p| p.into_inner())[0]
    }

    /// A thread counts twice and exits, giving its stripe back; a second thread counts
    /// once, on that stripe or another; the flusher runs while they do. No count is lost
    /// or counted twice, and a flush never hands over more than was counted.
    #[test]
    fn loom_no_count_is_lost_when_a_thread_exits_and_its_stripe_is_reused() {
        loom::model(|| {
            *MODEL_POOL.lock().unwrap() = Some(std::sync::Arc::new(Pool::new(STRIPES)));
            let tally = Arc::new(Tally::new([Counter::noop()]));
            let first = {
                let tally = Arc::clone(&tally);
                thread::spawn(move || {
                    tally.add(0);
                    tally.add(0);
                })
            };
            let second = {
                let tally = Arc::clone(&tally);
                thread::spawn(move || tally.add(0))
            };
            tally.flush();
            let midway = flushed(&tally);
            assert!(midway <= 3, "a flush handed over {midway} of 3 counts");
            first.join().unwrap();
            second.join().unwrap();
            tally.flush();
            assert_eq!(flushed(&tally), 3, "counts lost or doubled");
        });
    }
}
