//! Half-open probe slots: how many probes an episode of half-open lets through, and the
//! outcomes that decide it.
//!
//! An episode is one stay in half-open, named by the generation of its state word. Both
//! words carry that generation as a tag, so every move is one compare-and-swap that
//! checks it belongs to the episode it means:
//! - `slots`: the tag (low 32 bits of the generation) and the slots left. A probe takes a
//!   slot only from the episode it was admitted under, and a probe that ends without a
//!   verdict (cancelled early, or an ignored error) gives it back only to that episode. A
//!   check of the state word followed by a separate add would let a late give-back or a
//!   late take land in the next episode: one probe too many, or a slot lost for good (the
//!   episode then never reaches its verdict).
//! - `tally`: the tag (low 16 bits) and the probes done, failed and slow, 16 bits each. One
//!   word, so the probe that completes the episode reads every outcome in one snapshot;
//!   with a counter each, the last probe could judge before an earlier probe's failure was
//!   added, and close the breaker on probes that failed.
//!
//! So `half_open_permits` is at most [`MAX_PERMITS`] (the config refuses more).

use std::sync::atomic::Ordering;

use super::window::{Outcome, Totals};
use crate::sync::{AtomicU32, AtomicU64};

/// The most probe permits a half-open episode can have (16-bit counts in `tally`).
pub(crate) const MAX_PERMITS: u32 = u16::MAX as u32;

const SLOT_TAG_SHIFT: u32 = 32;
const SLOTS_LEFT: u64 = (1 << SLOT_TAG_SHIFT) - 1;
const TALLY_TAG_SHIFT: u32 = 48;
const DONE_SHIFT: u32 = 32;
const FAILED_SHIFT: u32 = 16;
const COUNT: u64 = 0xffff;

fn slot_tag(generation: u64) -> u64 {
    generation & 0xffff_ffff
}

fn tally_tag(generation: u64) -> u64 {
    generation & COUNT
}

/// The probe slots and outcomes of the current half-open episode.
#[derive(Debug)]
pub(super) struct ProbeSlots {
    slots: AtomicU64,
    tally: AtomicU64,
    permits: AtomicU32,
}

impl ProbeSlots {
    /// No episode yet (generation 0 is the first closed state, never half-open).
    pub(super) fn new(permits: u32) -> Self {
        Self {
            slots: AtomicU64::new(0),
            tally: AtomicU64::new(0),
            permits: AtomicU32::new(permits),
        }
    }

    /// Starts the episode `generation` with `permits` slots. Called under the transition
    /// lock, before the state word that names the episode is published.
    pub(super) fn begin(&self, generation: u64, permits: u32) {
        let permits = permits.min(MAX_PERMITS);
        self.permits.store(permits, Ordering::Release);
        // swaps, not stores: the same in the real build (begin is cold), and loom then keeps
        // them in order with the probes' compare-and-swaps (its plain stores can land out of
        // the word's modification order: tokio-rs/loom#282)
        self.tally
            .swap(tally_tag(generation) << TALLY_TAG_SHIFT, Ordering::AcqRel);
        self.slots.swap(
            slot_tag(generation) << SLOT_TAG_SHIFT | u64::from(permits),
            Ordering::AcqRel,
        );
    }

    /// Takes a slot of episode `generation`. `None` when that episode is over (the caller
    /// reads the state again); `Some(false)` when every slot is taken.
    pub(super) fn take(&self, generation: u64) -> Option<bool> {
        let tag = slot_tag(generation);
        let mut word = self.slots.load(Ordering::Acquire);
        loop {
            if word >> SLOT_TAG_SHIFT != tag {
                return None;
            }
            if word & SLOTS_LEFT == 0 {
                return Some(false);
            }
            match self.slots.compare_exchange_weak(
                word,
                word - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(true),
                Err(now) => word = now,
            }
        }
    }

    /// Gives back a slot of episode `generation`, if that episode still runs.
    pub(super) fn give_back(&self, generation: u64) {
        let tag = slot_tag(generation);
        let _ = self
            .slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word >> SLOT_TAG_SHIFT == tag).then_some(word + 1)
            });
    }

    /// Counts a probe's outcome in episode `generation`. Returns the episode's totals with
    /// this probe in, and its permits, or `None` when that episode is over.
    pub(super) fn record(&self, generation: u64, o: Outcome) -> Option<(Totals, u32)> {
        let tag = tally_tag(generation);
        let add = 1 << DONE_SHIFT | u64::from(o.failed) << FAILED_SHIFT | u64::from(o.slow);
        let before = self
            .tally
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                // checked first: a full count would carry into the tag
                if word >> TALLY_TAG_SHIFT == tag && (word >> DONE_SHIFT) & COUNT < COUNT {
                    Some(word + add)
                } else {
                    None
                }
            })
            .ok()?;
        let after = before + add;
        let totals = Totals {
            calls: ((after >> DONE_SHIFT) & COUNT) as u32,
            failed: ((after >> FAILED_SHIFT) & COUNT) as u32,
            slow: (after & COUNT) as u32,
        };
        Some((totals, self.permits.load(Ordering::Acquire)))
    }

    /// Slots left in episode `generation` (0 when it is over).
    pub(super) fn left(&self, generation: u64) -> u32 {
        let word = self.slots.load(Ordering::Acquire);
        if word >> SLOT_TAG_SHIFT == slot_tag(generation) {
            (word & SLOTS_LEFT) as u32
        } else {
            0
        }
    }
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    const FAIL: Outcome = Outcome {
        failed: true,
        slow: false,
    };
    const OK: Outcome = Outcome {
        failed: false,
        slow: false,
    };

    #[test]
    fn an_episode_lets_through_its_permits_and_no_more() {
        let p = ProbeSlots::new(2);
        p.begin(3, 2);
        assert_eq!(p.take(3), Some(true));
        assert_eq!(p.take(3), Some(true));
        assert_eq!(p.take(3), Some(false));
        p.give_back(3);
        assert_eq!(p.left(3), 1);
        assert_eq!(p.take(3), Some(true));
    }

    #[test]
    fn a_late_probe_touches_no_later_episode() {
        let p = ProbeSlots::new(1);
        p.begin(3, 1);
        assert_eq!(p.take(3), Some(true));
        p.begin(5, 1);
        p.give_back(3);
        assert_eq!(p.left(5), 1, "a slot of episode 3 came back into episode 5");
        assert_eq!(
            p.take(3),
            None,
            "a caller of episode 3 took a slot of episode 5"
        );
        assert_eq!(p.record(3, FAIL), None);
        let (t, permits) = p.record(5, OK).expect("episode 5 runs");
        assert_eq!((t.calls, t.failed, permits), (1, 0, 1));
    }

    #[test]
    fn the_tally_counts_every_outcome_in_one_word() {
        let p = ProbeSlots::new(3);
        p.begin(7, 3);
        let slow_fail = Outcome {
            failed: true,
            slow: true,
        };
        p.record(7, FAIL).expect("episode 7 runs");
        p.record(7, slow_fail).expect("episode 7 runs");
        let (t, permits) = p.record(7, OK).expect("episode 7 runs");
        assert_eq!((t.calls, t.failed, t.slow, permits), (3, 2, 1, 3));
    }

    #[test]
    fn the_largest_episode_counts_to_its_end_without_spilling() {
        let p = ProbeSlots::new(MAX_PERMITS);
        p.begin(u64::MAX >> 8, MAX_PERMITS + 10);
        let mut last = None;
        for _ in 0..MAX_PERMITS {
            assert_eq!(p.take(u64::MAX >> 8), Some(true));
            last = p.record(u64::MAX >> 8, FAIL);
        }
        assert_eq!(p.take(u64::MAX >> 8), Some(false));
        let (t, permits) = last.expect("probes were recorded");
        assert_eq!((t.calls, t.failed, t.slow), (MAX_PERMITS, MAX_PERMITS, 0));
        assert_eq!(permits, MAX_PERMITS);
        assert_eq!(
            p.record(u64::MAX >> 8, FAIL),
            None,
            "the count would spill into the tag"
        );
    }
}

/// loom models (`bash scripts/loom`): every interleaving of a probe's take, give-back and
/// outcome against another probe and against the next episode beginning.
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    impl ProbeSlots {
        /// Slots left in episode `generation`, read by a read-modify-write. loom lets a plain
        /// load after `join` read a store older than one this thread already saw in the
        /// word's modification order (tokio-rs/loom#282 and #389), which C++ coherence
        /// forbids; an RMW always reads the latest value.
        fn left_latest(&self, generation: u64) -> u32 {
            let word = self.slots.fetch_add(0, Ordering::AcqRel);
            if word >> SLOT_TAG_SHIFT == slot_tag(generation) {
                (word & SLOTS_LEFT) as u32
            } else {
                0
            }
        }
    }

    /// A probe of episode 1 cancelled early gives its slot back while the breaker leaves
    /// half-open and comes back (episode 3): episode 3 has exactly its one slot.
    #[test]
    fn loom_a_late_give_back_never_adds_a_slot_to_the_next_episode() {
        loom::model(|| {
            let p = Arc::new(ProbeSlots::new(1));
            p.begin(1, 1);
            assert_eq!(p.take(1), Some(true));
            let q = Arc::clone(&p);
            let cancelled = thread::spawn(move || q.give_back(1));
            p.begin(3, 1);
            cancelled.join().unwrap();
            assert_eq!(
                p.left_latest(3),
                1,
                "episode 3 has more or fewer slots than permits"
            );
        });
    }

    /// A caller that saw episode 1 takes its slot while episode 3 begins: it takes episode
    /// 1's slot or none, never one of episode 3 (whose outcome it would never report).
    #[test]
    fn loom_a_late_take_never_steals_a_slot_of_the_next_episode() {
        loom::model(|| {
            let p = Arc::new(ProbeSlots::new(1));
            p.begin(1, 1);
            let q = Arc::clone(&p);
            let late = thread::spawn(move || q.take(1));
            p.begin(3, 1);
            let took = late.join().unwrap();
            assert!(took != Some(false), "episode 1 had a slot: {took:?}");
            assert_eq!(
                p.left_latest(3),
                1,
                "a caller of episode 1 took a slot of episode 3"
            );
        });
    }

    /// Two probes end together, one failed: the one that completes the episode judges
    /// with both outcomes counted.
    #[test]
    fn loom_the_last_probe_judges_with_every_outcome() {
        loom::model(|| {
            let p = Arc::new(ProbeSlots::new(2));
            p.begin(1, 2);
            let q = Arc::clone(&p);
            let failed = thread::spawn(move || {
                q.record(
                    1,
                    Outcome {
                        failed: true,
                        slow: true,
                    },
                )
            });
            let ok = p.record(
                1,
                Outcome {
                    failed: false,
                    slow: false,
                },
            );
            let failed = failed.join().unwrap();
            let last: Vec<Totals> = [ok, failed]
                .into_iter()
                .flatten()
                .map(|(t, _)| t)
                .filter(|t| t.calls == 2)
                .collect();
            assert_eq!(last.len(), 1, "exactly one probe completes the episode");
            assert_eq!((last[0].failed, last[0].slow), (1, 1), "{:?}", last[0]);
        });
    }
}
