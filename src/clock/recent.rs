//! The coarse clock: the time-stamp counter as last read by a refresher thread, for
//! breakers built with [`CallTiming::Coarse`](crate::breaker::CallTiming::Coarse).
//!
//! A breaker times every call (slow-call detection and the duration histogram) with two
//! reads of the time-stamp counter, ~10 ns each on the project machine: a third of the
//! closed breaker's overhead (docs/PERFORMANCE.md). A coarse reading is one relaxed load of
//! the value a thread of palisade's stores every [`REFRESH_EVERY`]: a call's duration is
//! then off by up to about that much (more while the machine does not schedule the
//! refresher).
//!
//! The refresher runs only while some breaker holds a [`RecentLease`]: it stops at its next
//! tick after the last lease is dropped, and the next lease starts a new one. Leases,
//! refresher and stop are ordered by sequentially consistent operations on [`USERS`] and
//! [`RUNNING`]: a refresher that saw no users clears `RUNNING` and then looks at `USERS`
//! again; a lease adds to `USERS` and then tries to set `RUNNING`. One of the two sees the
//! other, so a lease never finds the clock without a refresher.
//!
//! With `test-util`, a coarse reading is tokio's clock, exact, so paused-time tests drive
//! coarse breakers as they drive the others.

#[cfg(not(feature = "test-util"))]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(feature = "test-util"))]
use std::time::Duration;

/// How often the refresher reads the counter.
#[cfg(not(feature = "test-util"))]
pub(crate) const REFRESH_EVERY: Duration = Duration::from_millis(1);

/// The counter's latest reading by the refresher (raw ticks).
#[cfg(not(feature = "test-util"))]
static RECENT: AtomicU64 = AtomicU64::new(0);
/// Leases held.
#[cfg(not(feature = "test-util"))]
static USERS: AtomicUsize = AtomicUsize::new(0);
/// Whether a refresher runs (or is about to).
#[cfg(not(feature = "test-util"))]
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Keeps the refresher running while held.
#[derive(Debug)]
pub(crate) struct RecentLease(());

impl RecentLease {
    /// A lease: the coarse clock is fresh when this returns, and kept fresh while the lease
    /// lives. `None` when the refresher thread cannot be started (use the precise clock).
    pub(crate) fn take() -> Option<Self> {
        #[cfg(not(feature = "test-util"))]
        {
            USERS.fetch_add(1, Ordering::SeqCst);
            refresh();
            if RUNNING
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
                && spawn_refresher()
                    .inspect_err(|e| {
                        tracing::warn!(target: "palisade::breaker", error = %e, "cannot start the coarse clock's thread: coarse breakers time calls precisely");
                    })
                    .is_err()
            {
                RUNNING.store(false, Ordering::SeqCst);
                USERS.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
        }
        Some(Self(()))
    }
}

impl Drop for RecentLease {
    fn drop(&mut self) {
        #[cfg(not(feature = "test-util"))]
        USERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The counter's latest reading (raw ticks, as [`Now`](super::Now) holds them).
#[cfg(not(feature = "test-util"))]
#[inline]
pub(crate) fn recent_raw() -> u64 {
    RECENT.load(Ordering::Relaxed)
}

#[cfg(not(feature = "test-util"))]
fn refresh() {
    // (`fetch_max`: a refresher that is stopping and a new lease may both store; the
    // reading never goes back)
    RECENT.fetch_max(super::process_counter_raw(), Ordering::Relaxed);
}

#[cfg(not(feature = "test-util"))]
fn spawn_refresher() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("palisade-coarse-clock".into())
        .spawn(|| loop {
            std::thread::sleep(REFRESH_EVERY);
            refresh();
            if USERS.load(Ordering::SeqCst) == 0 {
                RUNNING.store(false, Ordering::SeqCst);
                // a lease taken meanwhile either saw `RUNNING` set (and counts on this
                // thread: it carries on) or set it itself (and started another: this one ends)
                if USERS.load(Ordering::SeqCst) == 0
                    || RUNNING
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                {
                    return;
                }
            }
        })
        .map(drop)
}

/// Whether a refresher runs (tests).
#[cfg(all(test, not(feature = "test-util")))]
pub(crate) fn refresher_running() -> bool {
    RUNNING.load(Ordering::SeqCst)
}

/// Held by every unit test that takes leases, so the one that watches the refresher stop
/// is not fooled by another's lease.
#[cfg(all(test, not(feature = "test-util"), not(palisade_loom)))]
pub(crate) static TEST_LEASES: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(all(test, not(feature = "test-util"), not(palisade_loom)))]
mod tests {
    use super::*;

    /// Waits up to a second for `condition` (the refresher is a real thread).
    fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..1_000 {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        condition()
    }

    #[test]
    fn the_refresher_runs_while_a_lease_lives_and_stops_after_the_last() {
        let _alone = TEST_LEASES.lock().unwrap_or_else(|p| p.into_inner());
        let lease = RecentLease::take().expect("a refresher");
        let first = recent_raw();
        assert!(first > 0, "fresh when the lease is taken");
        assert!(
            eventually(|| recent_raw() > first),
            "the refresher moves the reading on"
        );
        let second = RecentLease::take().expect("a refresher");
        drop(lease);
        let now = recent_raw();
        assert!(
            eventually(|| recent_raw() > now),
            "still refreshed while a lease lives"
        );
        drop(second);
        assert!(
            eventually(|| !refresher_running()),
            "the refresher stops after the last lease"
        );
        let stopped = recent_raw();
        std::thread::sleep(REFRESH_EVERY * 5);
        assert_eq!(recent_raw(), stopped, "nothing refreshes a stopped clock");
        // and a new lease starts it again
        let again = RecentLease::take().expect("a refresher");
        let fresh = recent_raw();
        assert!(fresh > stopped, "fresh again when taken");
        assert!(eventually(|| recent_raw() > fresh), "refreshed again");
        drop(again);
    }
}
