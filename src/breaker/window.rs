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

    #[inline]
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
        self.totals.add(o);
        self.totals
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
    #[inline]
    pub(crate) fn record(&self, now: u64, o: Outcome) -> Totals {
        match self {
            Window::Count(w) => w.record(o),
            Window::Time(w) => w.lock().unwrap_or_else(|p| p.into_inner()).record(now, o),
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
