//! A running limiter's two parameters (interval or window, burst or limit), changed by a
//! reconfiguration while checks run, and always read as a pair: a sequence lock.
//!
//! With a plain atomic each, a check racing a reconfiguration could read the new interval
//! with the old burst: from (1 ms, burst 1,000) to (1 s, burst 1), such a check admits up
//! to 1,000 units at 1 s each, a quota neither config allows, and pushes the state 1,000 s
//! ahead. Here a writer makes the sequence odd, stores both, and makes it even again; a
//! reader takes a pair only when the sequence was even and unchanged around its loads.
//! Reading costs two loads of the sequence (plain moves on x86) and never waits unless a
//! write is under way; writes (reconfigurations, a remote backend's fail-over) are rare.

use std::sync::atomic::Ordering;

use crate::sync::{spin, AtomicU32, AtomicU64};

/// Two parameters read together.
#[derive(Debug)]
pub(crate) struct Params {
    seq: AtomicU32,
    a: AtomicU64,
    b: AtomicU32,
}

impl Params {
    pub(crate) fn new((a, b): (u64, u32)) -> Self {
        Self {
            seq: AtomicU32::new(0),
            a: AtomicU64::new(a),
            b: AtomicU32::new(b),
        }
    }

    /// Both parameters, as one write left them.
    #[inline(always)]
    pub(crate) fn load(&self) -> (u64, u32) {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            // acquire loads: the second read of the sequence cannot move above them, and a
            // value a writer stored makes its odd sequence visible to that read
            let a = self.a.load(Ordering::Acquire);
            let b = self.b.load(Ordering::Acquire);
            if before & 1 == 0 && self.seq.load(Ordering::Acquire) == before {
                return (a, b);
            }
            spin();
        }
    }

    /// Replaces both. Writers exclude one another (the odd sequence is taken by a CAS).
    pub(crate) fn store(&self, (a, b): (u64, u32)) {
        let mut seq = self.seq.load(Ordering::Relaxed);
        loop {
            if seq & 1 == 1 {
                spin();
                seq = self.seq.load(Ordering::Relaxed);
                continue;
            }
            match self.seq.compare_exchange_weak(
                seq,
                seq.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => seq = now,
            }
        }
        // release stores: the odd sequence is visible to any reader that loads either value
        self.a.store(a, Ordering::Release);
        self.b.store(b, Ordering::Release);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_store_replaces_both_and_the_sequence_wraps() {
        let p = Params::new((1, 10));
        assert_eq!(p.load(), (1, 10));
        p.seq.store(u32::MAX - 1, Ordering::Relaxed);
        p.store((2, 20));
        assert_eq!(p.load(), (2, 20));
        assert_eq!(p.seq.load(Ordering::Relaxed), 0, "wrapped to even");
    }

    #[test]
    fn readers_on_other_threads_never_see_a_mix() {
        let p = std::sync::Arc::new(Params::new((1, 10)));
        let writer = {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || {
                for i in 1..=20_000u32 {
                    p.store((u64::from(i), i * 10));
                }
            })
        };
        let mut reads = 0u32;
        while !writer.is_finished() || reads < 1_000 {
            let (a, b) = p.load();
            assert_eq!(u64::from(b), a * 10, "a mix of two writes");
            reads += 1;
        }
        writer.join().expect("the writer ran");
    }
}

/// loom models (`bash scripts/loom`): a check reading the parameters while a
/// reconfiguration writes them, and two writers at once.
#[cfg(all(test, palisade_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_a_check_never_reads_a_mix_of_old_and_new_parameters() {
        loom::model(|| {
            let p = Arc::new(Params::new((1, 10)));
            let q = Arc::clone(&p);
            let reconfigure = thread::spawn(move || q.store((2, 20)));
            let (a, b) = p.load();
            assert_eq!(u64::from(b), a * 10, "a mix of old and new: ({a}, {b})");
            reconfigure.join().unwrap();
            assert_eq!(p.load(), (2, 20));
        });
    }

    #[test]
    fn loom_two_writers_leave_one_of_their_pairs() {
        loom::model(|| {
            let p = Arc::new(Params::new((1, 10)));
            let q = Arc::clone(&p);
            let first = thread::spawn(move || q.store((2, 20)));
            p.store((3, 30));
            first.join().unwrap();
            let (a, b) = p.load();
            assert!(matches!((a, b), (2, 20) | (3, 30)), "({a}, {b})");
        });
    }
}
