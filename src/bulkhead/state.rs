//! The bulkhead's shared state: the permits (a lock-free counter in front of a fair queue),
//! counters and cached metric handles.
//! Callers hold this; the actor only resizes it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge};

use super::config::BulkheadConfig;
use super::permit::BulkheadPermit;
use super::permits::Permits;
use super::{BulkheadCommand, BulkheadRejected, BulkheadStatus};
use crate::clock::{duration_nanos, Instant};
use crate::deadline;
use crate::kind::Kind;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::{metrics as m, Event, RejectReason, RejectionGate, Telemetry};

/// Everything `execute` reads and writes.
#[derive(Debug)]
pub(crate) struct BulkheadShared {
    pub(crate) name: Arc<str>,
    /// Free permits and the FIFO queue. Permits are given back by [`BulkheadPermit`]'s drop.
    permits: Permits,
    max_concurrent: AtomicU32,
    max_wait_nanos: AtomicU64,
    max_queue: AtomicU32,
    /// Permits to retire as they come back, after a shrink found them in use.
    debt: AtomicU32,
    pub(crate) telemetry: Telemetry,
    rejections: RejectionGate,
    pub(crate) slot: ActorSlot<BulkheadCommand>,
    /// Set from [`in_flight`](Self::in_flight) by the actor (every second, after each
    /// command and when it stops): moved per permit, a recorder's gauge was two CAS loops
    /// on a shared line behind every call.
    in_flight_gauge: Gauge,
    waiting_gauge: Gauge,
    rejected: [Counter; 3],
}

impl BulkheadShared {
    pub(super) fn new(name: Arc<str>, config: &BulkheadConfig, telemetry: Telemetry) -> Self {
        let label = [("name", name.to_string())];
        let rejected = ["full", "queue_full", "deadline"].map(|reason| {
            metrics::counter!(m::BULKHEAD_REJECTED, "name" => name.to_string(), "reason" => reason)
        });
        Self {
            permits: Permits::new(config.max_concurrent),
            max_concurrent: AtomicU32::new(config.max_concurrent),
            max_wait_nanos: AtomicU64::new(duration_nanos(config.max_wait)),
            max_queue: AtomicU32::new(config.max_queue),
            debt: AtomicU32::new(0),
            telemetry,
            rejections: RejectionGate::default(),
            slot: ActorSlot::default(),
            in_flight_gauge: {
                let g = metrics::gauge!(m::BULKHEAD_IN_FLIGHT, &label);
                g.set(0.0);
                g
            },
            waiting_gauge: metrics::gauge!(m::BULKHEAD_WAITING, &label),
            rejected,
            name,
        }
    }

    /// Takes a permit without waiting.
    #[inline]
    pub(super) fn try_acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadRejected> {
        self.acquire_now()
            .ok_or_else(|| self.reject(RejectReason::BulkheadFull, Duration::ZERO))
    }

    /// A free permit, if one is free right now (no rejection reported when none is).
    #[inline]
    pub(super) fn acquire_now(&self) -> Option<BulkheadPermit<'_>> {
        self.permits.try_take().then(|| BulkheadPermit::new(self))
    }

    /// Takes a permit, waiting up to `max_wait` (and never past the task's deadline) in
    /// FIFO order behind earlier waiters.
    pub(super) async fn acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadRejected> {
        if let Some(p) = self.acquire_now() {
            return Ok(p);
        }
        let max_wait = Duration::from_nanos(self.max_wait_nanos.load(Ordering::Relaxed));
        if max_wait.is_zero() {
            return Err(self.reject(RejectReason::BulkheadFull, Duration::ZERO));
        }
        let left = deadline::remaining();
        if left.is_some_and(|l| l.is_zero()) {
            return Err(self.reject(RejectReason::Deadline, Duration::ZERO));
        }
        let queued = self.permits.join();
        let _waiting = WaitingGuard::new(self, queued + 1);
        if queued >= self.max_queue.load(Ordering::Relaxed) {
            return Err(self.reject(RejectReason::QueueFull, Duration::ZERO));
        }
        let (wait, cut_by_deadline) = match left {
            Some(l) if l < max_wait => (l, true),
            _ => (max_wait, false),
        };
        let start = Instant::now();
        match tokio::time::timeout(wait, self.permits.take_waiting()).await {
            Ok(true) => Ok(BulkheadPermit::new(self)),
            // The queue is never closed; treat it as full to be safe.
            Ok(false) => Err(self.reject(RejectReason::BulkheadFull, start.elapsed())),
            Err(_) if cut_by_deadline => Err(self.reject(RejectReason::Deadline, start.elapsed())),
            Err(_) => Err(self.reject(RejectReason::BulkheadFull, start.elapsed())),
        }
    }

    /// Gives one permit back, or retires it while a shrink is still owed permits.
    #[inline]
    pub(super) fn give_back_one(&self) {
        let mut owed = self.debt.load(Ordering::Acquire);
        while owed > 0 {
            match self.debt.compare_exchange_weak(
                owed,
                owed - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => owed = now,
            }
        }
        self.permits.give(1);
    }

    fn reject(&self, reason: RejectReason, waited: Duration) -> BulkheadRejected {
        let max_concurrent = self.max_concurrent.load(Ordering::Relaxed);
        let index = match reason {
            RejectReason::QueueFull => 1,
            RejectReason::Deadline => 2,
            _ => 0,
        };
        self.rejected[index].increment(1);
        if self.telemetry.observes_rejections() {
            if let Some(suppressed) = self.rejections.pass(reason) {
                self.telemetry.emit(Event::CallRejected {
                    name: Arc::clone(&self.name),
                    kind: Kind::Bulkhead,
                    reason,
                    retry_after: None,
                    shadow: false,
                    suppressed,
                });
            }
        }
        let name = Arc::clone(&self.name);
        match reason {
            RejectReason::QueueFull => BulkheadRejected::QueueFull {
                name,
                max_queue: self.max_queue.load(Ordering::Relaxed),
                max_concurrent,
            },
            RejectReason::Deadline => BulkheadRejected::DeadlineExceeded {
                name,
                budget: deadline::budget().unwrap_or(waited),
            },
            _ => BulkheadRejected::Full {
                name,
                max_concurrent,
                waited,
            },
        }
    }

    /// Calls holding a permit: every permit in circulation (the limit plus those a shrink
    /// will retire) that is not free. No counter of its own, so the hot path pays nothing.
    pub(super) fn in_flight(&self) -> u32 {
        let circulating = u64::from(self.max_concurrent.load(Ordering::Acquire))
            + u64::from(self.debt.load(Ordering::Acquire));
        u32::try_from(circulating.saturating_sub(self.permits.available())).unwrap_or(u32::MAX)
    }

    /// Sets the in-flight gauge to the count now (the actor's job).
    pub(crate) fn report_in_flight(&self) {
        self.in_flight_gauge.set(f64::from(self.in_flight()));
    }

    pub(super) fn config(&self) -> BulkheadConfig {
        BulkheadConfig {
            max_concurrent: self.max_concurrent.load(Ordering::Acquire),
            max_wait: Duration::from_nanos(self.max_wait_nanos.load(Ordering::Acquire)),
            max_queue: self.max_queue.load(Ordering::Acquire),
        }
    }

    pub(super) fn status(&self) -> BulkheadStatus {
        BulkheadStatus {
            in_flight: self.in_flight(),
            available: u32::try_from(self.permits.available()).unwrap_or(u32::MAX),
            waiting: self.permits.waiting(),
            max_concurrent: self.max_concurrent.load(Ordering::Acquire),
        }
    }

    /// Applies a new configuration (called by the actor only, so resizes never interleave).
    /// Growing first pays back permits a shrink still owes, then adds the rest (waking
    /// waiters); shrinking retires free permits at once and the rest as they come back.
    pub(super) fn apply(&self, config: &BulkheadConfig) -> String {
        let old = self
            .max_concurrent
            .swap(config.max_concurrent, Ordering::AcqRel);
        let new = config.max_concurrent;
        self.permits.resized(new);
        if new > old {
            let mut grow = new - old;
            let mut owed = self.debt.load(Ordering::Acquire);
            while owed > 0 && grow > 0 {
                let pay = owed.min(grow);
                match self.debt.compare_exchange(
                    owed,
                    owed - pay,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        grow -= pay;
                        break;
                    }
                    Err(now) => owed = now,
                }
            }
            self.permits.give(grow);
        } else if new < old {
            let shrink = old - new;
            let retired = self.permits.forget(shrink);
            self.debt.fetch_add(shrink - retired, Ordering::AcqRel);
            // A permit given back between the two steps above went back to the pool; take
            // it out again now rather than waiting for a later one.
            self.retire_free_permits();
        }
        self.max_wait_nanos
            .store(duration_nanos(config.max_wait), Ordering::Release);
        self.max_queue.store(config.max_queue, Ordering::Release);
        format!(
            "max_concurrent {old} -> {new}, max_wait {:?}, max_queue {}",
            config.max_wait, config.max_queue
        )
    }

    fn retire_free_permits(&self) {
        loop {
            let owed = self.debt.load(Ordering::Acquire);
            if owed == 0 || self.permits.available() == 0 {
                return;
            }
            if self.permits.forget(1) == 1 {
                if self
                    .debt
                    .compare_exchange(owed, owed - 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // Someone paid the debt meanwhile; the permit we took is surplus.
                    self.permits.give(1);
                }
            } else {
                return;
            }
        }
    }
}

/// Counts one waiter while it waits.
struct WaitingGuard<'a> {
    shared: &'a BulkheadShared,
}

impl<'a> WaitingGuard<'a> {
    fn new(shared: &'a BulkheadShared, now: u32) -> Self {
        shared.waiting_gauge.set(f64::from(now));
        Self { shared }
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        let now = self.shared.permits.leave();
        self.shared.waiting_gauge.set(f64::from(now));
    }
}
