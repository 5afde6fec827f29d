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

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

/// Epochs per `slow_call_duration`, at least: detection lags by at most 1/8 of it.
const SPLIT: u64 = 8;
/// Slots in the ring (a power of two): an epoch's slot is reused only after it has been
/// flagged, which happens at most `2 * SPLIT + 1` epochs after it began.
const SLOTS: u64 = 32;
const FLAG: u64 = 1 << 63;

#[derive(Debug, Default)]
struct Slot {
    /// `epoch + 1` of the calls counted here (0: never used), with [`FLAG`] once flagged.
    tag: AtomicU64,
    started: AtomicU32,
    finished: AtomicU32,
}

/// Where a call was counted: its epoch's tag (`epoch + 1`, never zero, so an
/// `Option<Ticket>` takes 8 bytes in every call's admission).
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
        let fresh = slot.tag.load(SeqCst) & !FLAG != tag && self.open(slot, tag);
        slot.started.fetch_add(1, SeqCst);
        let ticket = std::num::NonZeroU64::new(tag).unwrap_or(std::num::NonZeroU64::MIN);
        (Ticket(ticket), fresh)
    }

    /// Takes `slot` over for the epoch tagged `tag` (once per epoch, by its first call).
    #[cold]
    #[inline(never)]
    fn open(&self, slot: &Slot, tag: u64) -> bool {
        let _g = self.reset.lock().unwrap_or_else(|p| p.into_inner());
        if slot.tag.load(SeqCst) & !FLAG < tag {
            slot.started.store(0, SeqCst);
            slot.finished.store(0, SeqCst);
            slot.tag.store(tag, SeqCst);
            return true;
        }
        false
    }

    /// Counts a call finishing. Returns `true` when it was already counted slow while running.
    #[inline]
    pub(crate) fn finish(&self, ticket: Ticket) -> bool {
        let mine = ticket.0.get();
        let slot = self.slot(mine - 1);
        slot.finished.fetch_add(1, SeqCst);
        let tag = slot.tag.load(SeqCst);
        // Flagged (counted by the actor), or the slot moved on to a newer epoch (the call
        // outlived the ring, so it was flagged before the slot was reused).
        tag & FLAG != 0 || tag & !FLAG != mine
    }

    /// Flags every epoch whose calls have all run `slow` by `now`, returning how many
    /// calls were still running in them, and when to scan next (if calls are in flight).
    pub(crate) fn scan(&self, now: u64, slow: u64) -> (u32, Option<u64>) {
        let len = 1u64 << epoch_shift(slow);
        let mut hung = 0u32;
        let mut next: Option<u64> = None;
        for slot in self.slots.iter() {
            let tag = slot.tag.load(SeqCst);
            if tag == 0 || tag & FLAG != 0 {
                continue;
            }
            let epoch = tag - 1;
            let due = (epoch + 1).saturating_mul(len).saturating_add(slow);
            if due <= now {
                slot.tag.fetch_or(FLAG, SeqCst);
                let running = slot
                    .started
                    .load(SeqCst)
                    .saturating_sub(slot.finished.load(SeqCst));
                hung = hung.saturating_add(running);
            } else if slot.started.load(SeqCst) > 0 {
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
