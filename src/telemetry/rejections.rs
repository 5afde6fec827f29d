//! Rejection events, thinned so a flood of them cannot bury everything else.
//!
//! Under overload a primitive may reject millions of calls a second. Publishing each as an
//! event would fill every subscriber's buffer with copies of one fact, and trace each one.
//! So each primitive publishes at most one [`CallRejected`](super::Event::CallRejected) per
//! reason per [`EVERY`]: the first rejection of a quiet spell goes out at once, the ones after
//! it are folded, and the next event published carries how many were (`suppressed`). The
//! `metrics` series still count every rejection.

use std::sync::atomic::{AtomicU64, Ordering};

use super::event::RejectReason;
use crate::clock::{duration_nanos, Clock};

/// At most one rejection event per primitive and reason this often.
pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reasons a gate keeps apart (one slot each).
const REASONS: usize = 8;

#[derive(Debug, Default)]
struct Slot {
    /// Clock nanoseconds from which the next event may go out.
    next: AtomicU64,
    /// Rejections folded since the last event.
    folded: AtomicU64,
}

/// One primitive's rejection events, thinned per reason.
#[derive(Debug)]
pub(crate) struct RejectionGate {
    clock: Clock,
    slots: [Slot; REASONS],
}

impl Default for RejectionGate {
    fn default() -> Self {
        Self {
            clock: Clock::new(),
            slots: Default::default(),
        }
    }
}

impl RejectionGate {
    /// `Some(folded)` when this rejection is to be published, with the number of rejections
    /// of the same reason folded since the previous event; `None` when it is folded.
    pub(crate) fn pass(&self, reason: RejectReason) -> Option<u64> {
        let slot = &self.slots[reason.index() % REASONS];
        let now = self.clock.nanos();
        let next = slot.next.load(Ordering::Acquire);
        if now >= next
            && slot
                .next
                .compare_exchange(
                    next,
                    now.saturating_add(duration_nanos(EVERY)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return Some(slot.folded.swap(0, Ordering::AcqRel));
        }
        slot.folded.fetch_add(1, Ordering::AcqRel);
        None
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_event_per_reason_per_interval_carrying_the_folded_count() {
        let gate = RejectionGate::default();
        assert_eq!(gate.pass(RejectReason::RateLimited), Some(0));
        for _ in 0..999 {
            assert_eq!(gate.pass(RejectReason::RateLimited), None);
        }
        assert_eq!(gate.pass(RejectReason::QueueFull), Some(0), "reasons apart");
        tokio::time::advance(EVERY - std::time::Duration::from_nanos(1)).await;
        assert_eq!(gate.pass(RejectReason::RateLimited), None);
        tokio::time::advance(std::time::Duration::from_nanos(1)).await;
        assert_eq!(gate.pass(RejectReason::RateLimited), Some(1000));
        assert_eq!(gate.pass(RejectReason::RateLimited), None);
    }
}
