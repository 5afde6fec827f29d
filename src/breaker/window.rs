//! Outcome windows: the counters behind the failure and slow-call rates.
//!
//! A count window is a lock-free ring of the last `n` outcomes with running totals. A time
//! window is Resilience4j's bucket ring (a pure core that takes `now`), behind an
//! uncontended mutex: moving it to the current bucket and recording must be one step.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crossbeam::utils::CachePadded;

/// One recorded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

const PRESENT: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

impl Outcome {
    fn bits(self) -> u8 {
        PRESENT | if self.failed { FAILED } else { 0 } | if self.slow { SLOW } else { 0 }
    }
}

/// Totals over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failed: u32,
    pub(crate) slow: u32,
}

impl Totals {
    /// Failure rate in percent; zero with no calls.
    pub(crate) fn failure_rate(&self) -> f64 {
        rate(self.failed, self.calls)
    }

    /// Slow-call rate in percent; zero with no calls.
    pub(crate) fn slow_call_rate(&self) -> f64 {
        rate(self.slow, self.calls)
    }

    fn add(&mut self, o: Outcome) {
        self.calls += 1;
        self.failed += u32::from(o.failed);
        self.slow += u32::from(o.slow);
    }

    fn sub(&mut self, t: Totals) {
        self.calls -= t.calls;
        self.failed -= t.failed;
        self.slow -= t.slow;
    }
}

fn rate(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// The last `n` outcomes, lock-free.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    cursor: CachePadded<AtomicU64>,
    calls: AtomicU32,
    failed: AtomicU32,
    slow: AtomicU32,
}

impl CountWindow {
    pub(crate) fn new(n: u32) -> Self {
        Self {
            slots: (0..n).map(|_| AtomicU8::new(0)).collect(),
            cursor: CachePadded::new(AtomicU64::new(0)),
            calls: AtomicU32::new(0),
            failed: AtomicU32::new(0),
            slow: AtomicU32::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn record(&self, o: Outcome) -> Totals {
        if !o.failed && !o.slow {
            // A window full of plain successes stays the same after one more: the healthy
            // steady state costs three loads instead of two read-modify-writes.
            let totals = self.totals();
            if totals.failed == 0 && totals.slow == 0 && totals.calls as usize == self.slots.len() {
                return totals;
            }
        }
        let len = self.slots.len() as u64;
        // usize fits: the index is below the slot count.
        let i = (self.cursor.fetch_add(1, Ordering::Relaxed) % len) as usize;
        let new = o.bits();
        let old = self.slots[i].swap(new, Ordering::AcqRel);
        if old & PRESENT == 0 {
            self.calls.fetch_add(1, Ordering::AcqRel);
        }
        for (flag, counter) in [(FAILED, &self.failed), (SLOW, &self.slow)] {
            match (old & flag != 0, new & flag != 0) {
                (false, true) => {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
                (true, false) => {
                    counter.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
        }
        self.totals()
    }

    /// Turns one recorded slow call that did not fail into a slow call that failed (a call
    /// the in-flight scan counted slow while it ran, which then failed), newest first.
    /// Which slot carries the flag does not change the totals. `None` when no such call is
    /// left in the window (it has aged out: nothing to amend).
    #[cold]
    pub(crate) fn mark_failed(&self) -> Option<Totals> {
        let len = self.slots.len() as u64;
        let cursor = self.cursor.load(Ordering::Acquire);
        for back in 1..=len {
            // usize fits: the index is below the slot count.
            let slot = &self.slots[(cursor.wrapping_sub(back) % len) as usize];
            let mut old = slot.load(Ordering::Acquire);
            while old & (PRESENT | SLOW | FAILED) == PRESENT | SLOW {
                match slot.compare_exchange(old, old | FAILED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        self.failed.fetch_add(1, Ordering::AcqRel);
                        return Some(self.totals());
                    }
                    Err(seen) => old = seen,
                }
            }
        }
        None
    }

    #[inline(always)]
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            calls: self.calls.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            slow: self.slow.load(Ordering::Acquire),
        }
    }

    pub(crate) fn reset(&self) {
        for s in self.slots.iter() {
            s.store(0, Ordering::Release);
        }
        self.cursor.store(0, Ordering::Release);
        for c in [&self.calls, &self.failed, &self.slow] {
            c.store(0, Ordering::Release);
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    totals: Totals,
    /// Of the slow calls, those that also failed.
    slow_failed: u32,
}

/// Outcomes of the last `n` buckets of `bucket_nanos` each (Resilience4j's algorithm):
/// moving to a newer bucket clears every bucket skipped over, so totals stay exact.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Vec<Bucket>,
    bucket_nanos: u64,
    head: u64,
    totals: Totals,
}

impl TimeWindow {
    pub(crate) fn new(n: u32, bucket_nanos: u64) -> Self {
        Self {
            buckets: vec![Bucket::default(); n as usize],
            bucket_nanos: bucket_nanos.max(1),
            head: 0,
            totals: Totals::default(),
        }
    }

    fn advance(&mut self, now: u64) -> usize {
        let epoch = now / self.bucket_nanos;
        let n = self.buckets.len() as u64;
        if epoch > self.head {
            let steps = (epoch - self.head).min(n);
            for k in (epoch - steps + 1)..=epoch {
                // usize fits: the index is below the bucket count.
                let b = &mut self.buckets[(k % n) as usize];
                self.totals.sub(b.totals);
                *b = Bucket::default();
            }
            self.head = epoch;
        }
        (self.head % n) as usize
    }

    /// Records `o` at `now` (nanoseconds, never earlier than a previous `now`).
    pub(crate) fn record(&mut self, now: u64, o: Outcome) -> Totals {
        let i = self.advance(now);
        self.buckets[i].totals.add(o);
        self.buckets[i].slow_failed += u32::from(o.slow && o.failed);
        self.totals.add(o);
        self.totals
    }

    /// [`CountWindow::mark_failed`] for buckets: the newest bucket still in the window with a
    /// slow call that did not fail gets a failure.
    pub(crate) fn mark_failed(&mut self, now: u64) -> Option<Totals> {
        self.advance(now);
        let n = self.buckets.len() as u64;
        for back in 0..n {
            // usize fits: the index is below the bucket count.
            let b = &mut self.buckets[((self.head + n - back) % n) as usize];
            if b.totals.slow > b.slow_failed {
                b.totals.failed += 1;
                b.slow_failed += 1;
                self.totals.failed += 1;
                return Some(self.totals);
            }
        }
        None
    }

    /// Totals of the window ending at `now`.
    pub(crate) fn totals(&mut self, now: u64) -> Totals {
        self.advance(now);
        self.totals
    }

    pub(crate) fn reset(&mut self) {
        for b in &mut self.buckets {
            *b = Bucket::default();
        }
        self.totals = Totals::default();
    }
}

/// Either window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(Mutex<TimeWindow>),
}

impl Window {
    // Always inline: out of line, the closed path of every call paid a call and the
    // setup of both windows' arguments (docs/PERFORMANCE.md, "Instructions per call").
    #[inline(always)]
    pub(crate) fn record(&self, now: u64, o: Outcome) -> Totals {
        match self {
            Window::Count(w) => w.record(o),
            Window::Time(w) => w.lock().unwrap_or_else(|p| p.into_inner()).record(now, o),
        }
    }

    /// Turns a recorded slow call into a slow call that failed (see
    /// [`CountWindow::mark_failed`]).
    pub(crate) fn mark_failed(&self, now: u64) -> Option<Totals> {
        match self {
            Window::Count(w) => w.mark_failed(),
            Window::Time(w) => w.lock().unwrap_or_else(|p| p.into_inner()).mark_failed(now),
        }
    }

    pub(crate) fn totals(&self, now: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals(),
            Window::Time(w) => w.lock().unwrap_or_else(|p| p.into_inner()).totals(now),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.lock().unwrap_or_else(|p| p.into_inner()).reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failed: false,
        slow: false,
    };
    const FAIL: Outcome = Outcome {
        failed: true,
        slow: false,
    };
    const SLOW: Outcome = Outcome {
        failed: false,
        slow: true,
    };

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = CountWindow::new(3);
        w.record(FAIL);
        w.record(FAIL);
        assert_eq!(
            w.record(SLOW),
            Totals {
                calls: 3,
                failed: 2,
                slow: 1
            }
        );
        // the first FAIL falls out
        assert_eq!(
            w.record(OK),
            Totals {
                calls: 3,
                failed: 1,
                slow: 1
            }
        );
        w.record(OK);
        assert_eq!(
            w.record(OK),
            Totals {
                calls: 3,
                failed: 0,
                slow: 0
            }
        );
        w.reset();
        assert_eq!(w.totals(), Totals::default());
    }

    #[test]
    fn a_window_full_of_successes_still_counts_the_next_failures_exactly() {
        let w = CountWindow::new(4);
        for _ in 0..10 {
            w.record(OK);
        }
        let full = Totals {
            calls: 4,
            failed: 0,
            slow: 0,
        };
        assert_eq!(w.totals(), full);
        // each failure evicts one success, whatever the cursor did while successes were skipped
        for k in 1..=4 {
            assert_eq!(
                w.record(FAIL),
                Totals {
                    calls: 4,
                    failed: k,
                    slow: 0
                }
            );
        }
        // and successes push them out again, oldest first
        for k in (0..4).rev() {
            assert_eq!(
                w.record(OK),
                Totals {
                    calls: 4,
                    failed: k,
                    slow: 0
                }
            );
        }
        assert_eq!(w.record(OK), full);
    }

    #[test]
    fn a_slow_call_marked_failed_counts_once_and_leaves_with_its_slot() {
        let w = CountWindow::new(3);
        assert_eq!(w.mark_failed(), None, "no slow call to amend");
        w.record(SLOW);
        w.record(OK);
        let t = |calls, failed, slow| Totals {
            calls,
            failed,
            slow,
        };
        assert_eq!(w.mark_failed(), Some(t(2, 1, 1)));
        assert_eq!(w.mark_failed(), None, "the one slow call is already failed");
        w.record(OK);
        // the slow, failed call falls out with its slot
        assert_eq!(w.record(OK), t(3, 0, 0));

        let mut tw = TimeWindow::new(2, 10);
        tw.record(0, SLOW);
        tw.record(15, OK);
        assert_eq!(
            tw.mark_failed(15),
            Some(t(2, 1, 1)),
            "found in an older bucket"
        );
        assert_eq!(tw.mark_failed(15), None);
        assert_eq!(tw.totals(20), t(1, 0, 0), "left with its bucket");
        assert_eq!(tw.mark_failed(20), None);
    }

    #[test]
    fn time_window_expires_at_exact_bucket_boundaries() {
        const S: u64 = 1_000_000_000;
        let mut w = TimeWindow::new(10, S);
        w.record(0, FAIL);
        w.record(S - 1, FAIL);
        w.record(S, OK);
        assert_eq!(
            w.totals(10 * S - 1),
            Totals {
                calls: 3,
                failed: 2,
                slow: 0
            }
        );
        // at 10 s the bucket [0, 1 s) leaves the window
        assert_eq!(
            w.totals(10 * S),
            Totals {
                calls: 1,
                failed: 0,
                slow: 0
            }
        );
        assert_eq!(
            w.totals(11 * S - 1),
            Totals {
                calls: 1,
                failed: 0,
                slow: 0
            }
        );
        assert_eq!(w.totals(11 * S), Totals::default());
        // a jump of far more than the window clears everything
        w.record(11 * S, SLOW);
        assert_eq!(w.totals(1_000 * S), Totals::default());
    }

    #[test]
    fn rates_are_percentages() {
        let t = Totals {
            calls: 4,
            failed: 1,
            slow: 2,
        };
        assert_eq!((t.failure_rate(), t.slow_call_rate()), (25.0, 50.0));
        assert_eq!(Totals::default().failure_rate(), 0.0);
    }
}
