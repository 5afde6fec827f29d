//! Leased mode: units taken from the global budget in batches, spent here with an atomic.
//!
//! A refill (single flight: one at a time) asks Redis for *up to* a batch sized to about
//! `lease_window` of this instance's recent traffic; the script takes them from the global
//! state before this instance spends any, so the instances together never admit more than
//! the global limit. Checks spend the lease with a CAS and ask for the next refill once the
//! lease is down to a quarter of the last batch, before it runs dry. Units not spent
//! `lease_ttl` after their refill are dropped, so a quiet instance cannot save up a burst.
//!
//! A refill claim records when it was taken. One older than `stale` (twice the backend's
//! timeout, longer than any refill runs) was lost: handed to an actor that died with it in
//! its mailbox, say. The next caller takes it over, so no lost claim can starve the lease.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::utils::CachePadded;
use tokio::sync::Notify;

use super::scripts::Reply;

/// One instance's lease.
#[derive(Debug)]
pub(crate) struct Lease {
    units: CachePadded<AtomicU64>,
    /// Clock nanoseconds after which unspent units are dropped.
    expires_at: AtomicU64,
    /// Clock nanoseconds before which Redis said no unit is free (0: unknown).
    retry_at: AtomicU64,
    /// Ask for a refill at or below this many units.
    low_water: AtomicU64,
    /// Clock nanoseconds + 1 when the refill under way was claimed (0: none).
    claimed_at: AtomicU64,
    /// A claim older than this many nanoseconds is taken over.
    stale: u64,
    /// Units right after the last refill, and when it was: the demand estimate.
    level_after_refill: AtomicU64,
    last_refill: AtomicU64,
    refilled: Notify,
    window: u64,
    ttl: u64,
}

impl Lease {
    /// `stale`: nanoseconds after which a claimed refill that has not ended is taken over.
    pub(crate) fn new(window: u64, ttl: u64, stale: u64) -> Self {
        Self {
            units: CachePadded::new(AtomicU64::new(0)),
            expires_at: AtomicU64::new(0),
            retry_at: AtomicU64::new(0),
            low_water: AtomicU64::new(0),
            claimed_at: AtomicU64::new(0),
            stale: stale.max(1),
            level_after_refill: AtomicU64::new(0),
            last_refill: AtomicU64::new(0),
            refilled: Notify::new(),
            window,
            ttl,
        }
    }

    /// Spends `n` units; `Some(units left)` when the lease held them.
    #[inline]
    pub(crate) fn spend(&self, n: u32, now: u64) -> Option<u64> {
        if now >= self.expires_at.load(Ordering::Acquire) {
            if self.units.load(Ordering::Relaxed) > 0 {
                self.units.store(0, Ordering::Release);
            }
            return None;
        }
        let n = u64::from(n);
        self.units
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_sub(n))
            .ok()
            .map(|before| before - n)
    }

    /// `true` when this caller should start a refill: the lease is low, and no refill runs
    /// (or the one claimed is stale: lost with whoever claimed it).
    #[inline]
    pub(crate) fn claim_refill(&self, left: Option<u64>, now: u64) -> bool {
        let low = left.is_none_or(|l| l <= self.low_water.load(Ordering::Relaxed));
        if !low {
            return false;
        }
        let claimed = self.claimed_at.load(Ordering::Relaxed);
        if claimed != 0 && now.saturating_sub(claimed - 1) < self.stale {
            return false;
        }
        self.claimed_at
            .compare_exchange(claimed, now + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives a claimed refill back without running it (nobody could run it now).
    pub(crate) fn release_refill(&self) {
        self.claimed_at.store(0, Ordering::Release);
    }

    /// Nanoseconds until Redis expects a free unit, if it said so.
    pub(crate) fn retry_in(&self, now: u64) -> Option<u64> {
        let at = self.retry_at.load(Ordering::Acquire);
        (at > now).then(|| at - now)
    }

    /// The batch to ask for: about `window` of recent demand (or of the quota's own rate
    /// before any demand is known), at least `need`, at most `max`.
    pub(crate) fn batch(&self, now: u64, rate_per_ns: f64, need: u32, max: u32) -> u32 {
        let last = self.last_refill.load(Ordering::Acquire);
        let left = self.units.load(Ordering::Acquire);
        let rate = if last == 0 || now <= last {
            rate_per_ns
        } else {
            let spent = self
                .level_after_refill
                .load(Ordering::Acquire)
                .saturating_sub(left);
            (spent as f64 / (now - last) as f64).max(rate_per_ns)
        };
        let want = (rate * self.window as f64).ceil();
        let want = if want.is_finite() {
            want.min(f64::from(u32::MAX)) as u32
        } else {
            1
        };
        want.max(need).max(1).min(max.max(need))
    }

    /// Records a refill's answer (`None`: the backend was down) and wakes the waiters.
    pub(crate) fn refilled(&self, now: u64, reply: Option<Reply>) {
        if let Some(r) = reply {
            if r.granted > 0 {
                let granted = u64::from(r.granted);
                // expiry first: a check that sees the new units also sees their expiry
                self.expires_at
                    .store(now.saturating_add(self.ttl), Ordering::Release);
                let level = self.units.fetch_add(granted, Ordering::AcqRel) + granted;
                self.level_after_refill.store(level, Ordering::Release);
                self.low_water.store(granted / 4, Ordering::Relaxed);
                self.retry_at.store(0, Ordering::Release);
            } else {
                let wait = r.retry_after_us.saturating_mul(1_000);
                self.retry_at
                    .store(now.saturating_add(wait), Ordering::Release);
                self.level_after_refill
                    .store(self.units.load(Ordering::Acquire), Ordering::Release);
            }
        }
        self.last_refill.store(now.max(1), Ordering::Release);
        self.release_refill();
        self.refilled.notify_waiters();
    }

    /// Guards a claimed refill: if the refill is dropped before [`refilled`](Self::refilled)
    /// (its caller cancelled, its actor killed), the claim is given back and the waiters
    /// woken, so the next check can refill instead of waiting on a refill that never ends.
    pub(crate) fn hold_refill(&self) -> RefillClaim<'_> {
        RefillClaim {
            lease: self,
            done: false,
        }
    }

    /// Resolves at the next refill's end.
    pub(crate) fn next_refill(&self) -> tokio::sync::futures::Notified<'_> {
        self.refilled.notified()
    }

    /// Units the lease holds at `now` (expired ones count as none).
    pub(crate) fn units_at(&self, now: u64) -> u64 {
        if now >= self.expires_at.load(Ordering::Acquire) {
            0
        } else {
            self.units.load(Ordering::Acquire)
        }
    }

    /// Drops the lease (a reset).
    pub(crate) fn clear(&self) {
        self.units.store(0, Ordering::Release);
    }
}

/// A refill under way; see [`Lease::hold_refill`].
pub(crate) struct RefillClaim<'a> {
    lease: &'a Lease,
    done: bool,
}

impl RefillClaim<'_> {
    /// Records the refill's answer (see [`Lease::refilled`]).
    pub(crate) fn refilled(mut self, now: u64, reply: Option<Reply>) {
        self.done = true;
        self.lease.refilled(now, reply);
    }
}

impl Drop for RefillClaim<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lease.release_refill();
            self.lease.refilled.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(n: u32) -> Option<Reply> {
        Some(Reply {
            granted: n,
            remaining: 0,
            retry_after_us: 0,
            reset_after_us: 0,
        })
    }

    #[test]
    fn spends_what_was_granted_and_no_more() {
        let lease = Lease::new(50_000_000, 1_000_000_000, 1_000);
        assert_eq!(lease.spend(1, 10), None);
        assert!(lease.claim_refill(None, 10));
        assert!(!lease.claim_refill(None, 10), "single flight");
        lease.refilled(10, granted(8));
        assert_eq!(lease.spend(5, 20), Some(3));
        assert!(
            !lease.claim_refill(Some(3), 20),
            "3 is above a quarter of 8"
        );
        assert_eq!(lease.spend(2, 30), Some(1));
        assert!(
            lease.claim_refill(Some(1), 30),
            "at a quarter: refill before running dry"
        );
        assert_eq!(lease.spend(2, 40), None, "never below zero");
        assert_eq!(lease.spend(1, 40), Some(0));
    }

    #[test]
    fn a_refill_dropped_half_way_gives_its_claim_back() {
        let lease = Lease::new(50, 1_000, 1_000);
        assert!(lease.claim_refill(None, 10));
        drop(lease.hold_refill());
        assert!(
            lease.claim_refill(None, 10),
            "not stuck on a refill that never ends"
        );
        lease.hold_refill().refilled(10, granted(3));
        assert_eq!(lease.spend(3, 20), Some(0));
    }

    #[test]
    fn a_lost_claim_is_taken_over_once_stale() {
        let lease = Lease::new(50, 1_000, 100);
        assert!(lease.claim_refill(None, 1_000), "claimed, then lost");
        assert!(!lease.claim_refill(None, 1_099), "1 ns before it is stale");
        assert!(lease.claim_refill(None, 1_100), "stale: taken over");
        assert!(!lease.claim_refill(None, 1_150), "the new claim holds");
        lease.hold_refill().refilled(1_150, granted(4));
        assert_eq!(lease.spend(4, 1_160), Some(0));
    }

    #[test]
    fn unspent_units_expire() {
        let lease = Lease::new(50, 1_000, 1_000);
        lease.refilled(100, granted(10));
        assert_eq!(lease.spend(1, 1_099), Some(9));
        assert_eq!(lease.spend(1, 1_100), None);
        assert_eq!(lease.spend(1, 1_050), None, "dropped, not paused");
    }

    #[test]
    fn a_refused_refill_says_when_to_retry() {
        let lease = Lease::new(50, 1_000, 1_000);
        lease.refilled(
            100,
            Some(Reply {
                granted: 0,
                remaining: 0,
                retry_after_us: 7,
                reset_after_us: 0,
            }),
        );
        assert_eq!(lease.retry_in(100), Some(7_000));
        assert_eq!(lease.retry_in(7_100), None);
    }

    #[test]
    fn batches_follow_demand_within_bounds() {
        let lease = Lease::new(1_000, 10_000, 1_000);
        // before any demand: the quota's rate (1 per 100 ns over a 1000 ns window)
        assert_eq!(lease.batch(5, 0.01, 1, 100), 10);
        assert_eq!(
            lease.batch(5, 0.01, 30, 100),
            30,
            "at least the cost waiting"
        );
        assert_eq!(lease.batch(5, 1.0, 1, 100), 100, "at most the cap");
        lease.refilled(1_000, granted(100));
        assert_eq!(lease.spend(50, 1_100), Some(50));
        // 50 spent in 1000 ns: 0.05 per ns over a 1000 ns window
        assert_eq!(lease.batch(2_000, 0.01, 1, 1_000), 50);
    }
}
