//! Slow calls detected while they run.
//!
//! Calls are counted by start time in a ring of epochs, each a power of two nanoseconds
//! between 1/16 and 1/8 of `slow_call_duration` (so an epoch is a shift, not a division).
//! Once an epoch is old enough that every call started in it has run `slow_call_duration`,
//! the actor flags it: the calls still running there are counted slow at that moment, so a
//! dependency that hangs trips the breaker without waiting for callers' timeouts. A call
//! that finishes after its epoch was flagged is not counted a second time.
//!
//! Times are in any one unit (the breaker passes clock ticks). The hot path pays one load
//! and one `fetch_add` at start and at finish; the actor is nudged once per epoch that sees
//! traffic.
//!
//! A call is counted exactly once: by the scan (and its `finish` says so) or by its own
//! outcome. Two limits, each needing a thread preempted between two adjacent instructions
//! for at least half the ring (about two `slow_call_duration`s): a start whose epoch's slot
//! was reused meanwhile, and a finish whose slot is reused between its tag check and its
//! count, touch the newer epoch's counts.

use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicU64, Mutex};

/// Epochs per `slow_call_duration`, at least: detection lags by at most 1/8 of it.
const SPLIT: u64 = 8;
/// Slots in the ring (a power of two): an epoch's slot is reused only after it has been
/// flagged, which happens at most `2 * SPLIT + 1` epochs after it began.
const SLOTS: u64 = 32;
/// In a slot's `counts`: the epoch was flagged (its running calls counted slow).
const FLAG: u64 = 1 << 63;
/// In a slot's `counts`: one call started (bits 32..63 count starts, 0..32 finishes).
const STARTED: u64 = 1 << 32;
const FINISHED_MASK: u64 = STARTED - 1;
/// In a ticket: the call started after its epoch was flagged (so no scan counted it).
const LATE: u64 = 1 << 62;

#[derive(Debug, Default)]
struct Slot {
    /// `epoch + 1` of the calls counted here (0: never used).
    tag: AtomicU64,
    /// The flag, the calls started and the calls finished, in one word: flagging and
    /// counting what still runs is one read-modify-write, so a call finishing during a scan
    /// is either in the scan's count or sees the flag, never neither (a loom model found
    /// the race when the flag and the counts were separate atomics).
    counts: AtomicU64,
}

fn started(counts: u64) -> u64 {
    (counts & !FLAG) >> 32
}

fn finished(counts: u64) -> u64 {
    counts & FINISHED_MASK
}

/// Where a call was counted: its epoch's tag (`epoch + 1`, never zero, so an
/// `Option<Ticket>` takes 8 bytes in every call's admission), with [`LATE`] for a call
/// that started into an epoch already flagged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(std::num::NonZeroU64);

/// The ring of in-flight calls by start epoch.
#[derive(Debug)]
pub(crate) struct InFlight {
    slots: Box<[Slot]>,
    reset: Mutex<()>,
}

impl InFlight {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            reset: Mutex::new(()),
        }
    }

    fn slot(&self, epoch: u64) -> &Slot {
        // usize fits: the index is below SLOTS.
        &self.slots[(epoch & (SLOTS - 1)) as usize]
    }

    /// Counts a call starting at `now`. The flag says the epoch is new, so the actor should
    /// be nudged to schedule its scan.
    #[inline]
    pub(crate) fn start(&self, now: u64, slow: u64) -> (Ticket, bool) {
        let epoch = now >> epoch_shift(slow);
        let slot = self.slot(epoch);
        let tag = epoch + 1;
        let fresh = slot.tag.load(SeqCst) != tag && self.open(slot, tag);
        let before = slot.counts.fetch_add(STARTED, SeqCst);
        // A start the scan already passed (the caller read the time, then was preempted
        // past the flag): the scan's count does not hold it, so its outcome counts itself.
        let late = if before & FLAG != 0 { LATE } else { 0 };
        let ticket = std::num::NonZeroU64::new(tag | late).unwrap_or(std::num::NonZeroU64::MIN);
        (Ticket(ticket), fresh)
    }

    /// Takes `slot` over for the epoch tagged `tag` (once per epoch, by its first call).
    #[cold]
    #[inline(never)]
    fn open(&self, slot: &Slot, tag: u64) -> bool {
        let _g = self.reset.lock().unwrap_or_else(|p| p.into_inner());
        if slot.tag.load(SeqCst) < tag {
            slot.counts.store(0, SeqCst);
            slot.tag.store(tag, SeqCst);
            return true;
        }
        false
    }

    /// Counts a call finishing. Returns `true` when it was already counted slow while running.
    #[inline]
    pub(crate) fn finish(&self, ticket: Ticket) -> bool {
        let ticket = ticket.0.get();
        if ticket & LATE != 0 {
            return false;
        }
        let slot = self.slot(ticket - 1);
        // The slot moved on to a newer epoch: the call outlived the ring, so its epoch was
        // flagged (and the call counted) before the slot was reused; its counts are another
        // epoch's now and stay untouched.
        if slot.tag.load(SeqCst) != ticket {
            return true;
        }
        slot.counts.fetch_add(1, SeqCst) & FLAG != 0
    }

    /// Flags every epoch whose calls have all run `slow` by `now`, returning how many
    /// calls were still running in them, and when to scan next (if calls are in flight).
    pub(crate) fn scan(&self, now: u64, slow: u64) -> (u32, Option<u64>) {
        let len = 1u64 << epoch_shift(slow);
        let mut hung = 0u32;
        let mut next: Option<u64> = None;
        for slot in self.slots.iter() {
            let tag = slot.tag.load(SeqCst);
            let counts = slot.counts.load(SeqCst);
            if tag == 0 || counts & FLAG != 0 {
                continue;
            }
            let epoch = tag - 1;
            let due = (epoch + 1).saturating_mul(len).saturating_add(slow);
            if due <= now {
                // the flag and the snapshot of what still runs, in one step
                let at_flag = slot.counts.fetch_or(FLAG, SeqCst);
                let running = started(at_flag).saturating_sub(finished(at_flag));
                hung = hung.saturating_add(u32::try_from(running).unwrap_or(u32::MAX));
            } else if started(counts) > 0 {
                // Scheduled even if every call so far has finished: more may start in this
                // epoch without a nudge (only its first call nudges).
                next = Some(next.map_or(due, |n: u64| n.min(due)));
            }
        }
        (hung, next)
    }
}

/// log2 of the epoch length: the largest power of two not above `slow / SPLIT`.
#[inline]
fn epoch_shift(slow: u64) -> u32 {
    (slow / SPLIT).max(1).ilog2()
}

/// loom models (`scripts/loom`).
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    /// A call finishing while the actor flags its epoch is counted exactly once: slow by
    /// the scan (and `finish` says so), or by its own outcome (and the scan left it out).
    #[test]
    fn loom_a_call_finishing_during_a_scan_is_counted_once() {
        loom::model(|| {
            let f = Arc::new(InFlight::new());
            let slow = 1024;
            let (call, _) = f.start(0, slow);
            let caller = {
                let f = Arc::clone(&f);
                loom::thread::spawn(move || f.finish(call))
            };
            let (hung, _) = f.scan(1152, slow);
            let counted_slow = caller.join().expect("caller");
            assert_eq!(
                hung,
                u32::from(counted_slow),
                "scan counted {hung} slow, finish says counted slow: {counted_slow}"
            );
        });
    }

    /// The same with the call's start racing the scan too (a start the scan passed counts
    /// itself), and a second call: every call once, whatever the interleaving.
    #[test]
    fn loom_calls_starting_and_finishing_during_a_scan_are_counted_once() {
        loom::model(|| {
            let f = Arc::new(InFlight::new());
            let slow = 1024;
            let (first, _) = f.start(0, slow); // opens the epoch
            let caller = {
                let f = Arc::clone(&f);
                loom::thread::spawn(move || {
                    let (second, _) = f.start(5, slow);
                    u32::from(f.finish(second)) + u32::from(f.finish(first))
                })
            };
            let (hung, _) = f.scan(1152, slow);
            let counted_slow = caller.join().expect("caller");
            assert_eq!(
                hung, counted_slow,
                "scan counted {hung}, finishes say {counted_slow}"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hanging_calls_are_counted_once_when_due() {
        let f = InFlight::new();
        let slow = 1024;
        let (a, fresh) = f.start(0, slow);
        assert!(fresh);
        let (b, fresh) = f.start(50, slow);
        assert!(!fresh);
        let (c, _) = f.start(99, slow);
        assert!(!f.finish(c), "finished before the scan: counted normally");
        // epochs are 128 ns: epoch 0 is [0, 128), due at 128 + 1024
        assert_eq!(f.scan(1151, slow), (0, Some(1152)));
        assert_eq!(
            f.scan(0, slow),
            (0, Some(1152)),
            "scheduled while calls are counted"
        );
        assert_eq!(f.scan(1152, slow), (2, None));
        assert_eq!(f.scan(5_000, slow), (0, None), "never counted twice");
        assert!(f.finish(a), "already counted slow");
        assert!(f.finish(b));
    }

    #[test]
    fn epochs_are_a_power_of_two_between_a_sixteenth_and_an_eighth() {
        for slow in [
            1u64,
            7,
            8,
            800,
            1024,
            1_000_000_007,
            60_000_000_000,
            u64::MAX,
        ] {
            let len = 1u64 << epoch_shift(slow);
            assert!(len <= (slow / SPLIT).max(1), "{slow}: {len}");
            assert!(
                u128::from(len) * 2 * u128::from(SPLIT) > u128::from(slow),
                "{slow}: {len}"
            );
        }
    }

    #[test]
    fn a_call_outliving_the_ring_is_treated_as_counted() {
        let f = InFlight::new();
        let slow = 1024;
        let (a, _) = f.start(0, slow);
        f.scan(1152, slow);
        // epoch 32 reuses slot 0
        let (_, fresh) = f.start(32 * 128, slow);
        assert!(fresh);
        assert!(f.finish(a));
    }
}
