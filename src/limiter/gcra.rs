//! GCRA (the generic cell rate algorithm), the core of GCRA, token-bucket and leaky-bucket
//! limiters: one `u64` of state, the theoretical arrival time (TAT) of the next request.
//!
//! With emission interval `t` (period / rate) and burst `b`, a request of cost `n` at `now`
//! is admitted when `max(tat, now) + n·t <= now + b·t`; admitting moves the TAT there.
//! Pure: takes `now` (nanoseconds), returns the new state and the decision.

use super::decision::Decision;

/// GCRA parameters in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval: nanoseconds per unit of quota.
    pub(crate) interval: u64,
    /// Burst: units admitted back to back from a full quota.
    pub(crate) burst: u32,
}

impl Gcra {
    /// Checks a cost of `n` at `now` against state `tat`. Returns the new state when admitted.
    #[inline(always)]
    pub(crate) fn check(&self, tat: u64, now: u64, n: u32) -> (Option<u64>, Decision) {
        let new = self.admit(tat, now, n);
        (new, self.answer(tat, now, n, new))
    }

    /// The decision alone: the new state when a cost of `n` at `now` is admitted against
    /// state `tat`. A CAS loop runs only this between reading the state and swapping it, so
    /// the window in which another thread can get in stays short; the answer's arithmetic
    /// ([`answer`](Self::answer)) comes after, and vanishes when the caller drops it.
    #[inline(always)]
    pub(crate) fn admit(&self, tat: u64, now: u64, n: u32) -> Option<u64> {
        if n > self.burst {
            return None;
        }
        let t = self.interval;
        let limit = now.saturating_add(t.saturating_mul(u64::from(self.burst)));
        let new = tat.max(now).saturating_add(t.saturating_mul(u64::from(n)));
        (new <= limit).then_some(new)
    }

    /// The answer for what [`admit`](Self::admit) decided (`admitted`, from the same `tat`,
    /// `now` and `n`).
    ///
    /// The usual answers need no division: from a full quota (`tat <= now`) what remains is
    /// `burst - n` exactly, and a denied single unit leaves nothing. A state beyond the
    /// current limit (the burst was cut by a reconfiguration) is denied with nothing left.
    #[inline(always)]
    pub(crate) fn answer(&self, tat: u64, now: u64, n: u32, admitted: Option<u64>) -> Decision {
        if n > self.burst {
            return Decision::ExceedsCapacity {
                cost: n,
                capacity: self.burst,
            };
        }
        let t = self.interval;
        let limit = now.saturating_add(t.saturating_mul(u64::from(self.burst)));
        let Some(new) = admitted else {
            let tat = tat.max(now);
            let remaining = if n == 1 {
                // tat + t > limit: less than one unit is left
                0
            } else {
                units(limit.saturating_sub(tat) / t)
            };
            return Decision::Denied {
                retry_after: tat.saturating_add(t.saturating_mul(u64::from(n))) - limit,
                remaining,
                reset_after: tat - now,
            };
        };
        if tat <= now {
            // a full quota: n <= burst, so new = now + n·t and (limit - new) / t = burst - n.
            // (Exactly, unless `now + burst·t` saturates: configs cap burst·t at 366 days,
            // so only after 583 years on the limiter's clock; burst - n is the right answer
            // there too, where the division would say less.)
            return Decision::Allowed {
                remaining: self.burst - n,
                reset_after: new - now,
            };
        }
        Decision::Allowed {
            remaining: units((limit - new) / t),
            reset_after: new - now,
        }
    }

    /// `true` when the state is back to a full quota at `now` (the key carries nothing).
    pub(crate) fn is_idle(&self, tat: u64, now: u64) -> bool {
        tat <= now
    }
}

fn units(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// 10 per second, burst 10: interval 100 ms.
    fn ten_per_second() -> Gcra {
        Gcra {
            interval: 100 * MS,
            burst: 10,
        }
    }

    fn run(g: &Gcra, tat: &mut u64, now: u64, n: u32) -> Decision {
        let (new, d) = g.check(*tat, now, n);
        if let Some(new) = new {
            *tat = new;
        }
        d
    }

    #[test]
    fn burst_then_exact_retry_after_then_refill() {
        let g = ten_per_second();
        let mut tat = 0;
        for i in 0..10 {
            let d = run(&g, &mut tat, 0, 1);
            assert_eq!(
                d,
                Decision::Allowed {
                    remaining: 9 - i,
                    reset_after: u64::from(i + 1) * 100 * MS
                }
            );
        }
        // the request one past the limit: retry exactly one interval later
        assert_eq!(
            run(&g, &mut tat, 0, 1),
            Decision::Denied {
                retry_after: 100 * MS,
                remaining: 0,
                reset_after: 1000 * MS
            }
        );
        // 1 ns before the retry time: still denied by 1 ns
        assert_eq!(
            run(&g, &mut tat, 100 * MS - 1, 1),
            Decision::Denied {
                retry_after: 1,
                remaining: 0,
                reset_after: 900 * MS + 1
            }
        );
        // at the retry time: admitted, nothing left
        assert!(matches!(
            run(&g, &mut tat, 100 * MS, 1),
            Decision::Allowed { remaining: 0, .. }
        ));
        // a full refill after reset_after
        assert!(g.is_idle(tat, 1100 * MS));
        assert!(!g.is_idle(tat, 1100 * MS - 1));
    }

    #[test]
    fn cost_weighted_and_impossible_costs() {
        let g = ten_per_second();
        let mut tat = 0;
        assert!(matches!(
            run(&g, &mut tat, 0, 7),
            Decision::Allowed { remaining: 3, .. }
        ));
        assert_eq!(
            run(&g, &mut tat, 0, 4),
            Decision::Denied {
                retry_after: 100 * MS,
                remaining: 3,
                reset_after: 700 * MS
            }
        );
        assert_eq!(
            run(&g, &mut tat, 0, 11),
            Decision::ExceedsCapacity {
                cost: 11,
                capacity: 10
            }
        );
    }

    /// The textbook GCRA, every field by division, in u128 (no saturation to reason about).
    fn reference(g: &Gcra, tat: u64, now: u64, n: u32) -> (Option<u64>, Decision) {
        if n > g.burst {
            return (
                None,
                Decision::ExceedsCapacity {
                    cost: n,
                    capacity: g.burst,
                },
            );
        }
        let (t, now128) = (u128::from(g.interval), u128::from(now));
        let tat = u128::from(tat).max(now128);
        let limit = now128 + t * u128::from(g.burst);
        let new = tat + t * u128::from(n);
        let u = |v: u128| u64::try_from(v).expect("fits in the grid");
        if new > limit {
            let remaining = u32::try_from(limit.saturating_sub(tat) / t).expect("fits");
            return (
                None,
                Decision::Denied {
                    retry_after: u(new - limit),
                    remaining,
                    reset_after: u(tat - now128),
                },
            );
        }
        (
            Some(u(new)),
            Decision::Allowed {
                remaining: u32::try_from((limit - new) / t).expect("fits"),
                reset_after: u(new - now128),
            },
        )
    }

    #[test]
    fn agrees_with_the_textbook_algorithm_on_a_grid() {
        let mut cases = 0;
        for interval in [1, 3, 7, 100, 1_000_003] {
            for burst in [1, 2, 5, 10] {
                let g = Gcra { interval, burst };
                let span = interval * u64::from(burst);
                let now = 10 * span + 17;
                // states from long idle to far beyond the limit (a burst cut by a
                // reconfiguration), at and around every unit boundary
                let mut tats = vec![0, now - 1, now, now + 1];
                for k in 0..=2 * u64::from(burst) {
                    let at = now + k * interval;
                    tats.extend([at - 1, at, at + 1]);
                }
                for tat in tats {
                    for n in 0..=burst + 1 {
                        assert_eq!(
                            g.check(tat, now, n),
                            reference(&g, tat, now, n),
                            "interval {interval} burst {burst} tat {tat} now {now} n {n}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 1_000);
    }

    proptest::proptest! {
        /// Away from the grid: any interval, burst, state, time and cost (kept where the
        /// reference's u128 results fit in u64) gets the textbook answer.
        #[test]
        fn agrees_with_the_textbook_algorithm_anywhere(
            interval in 1u64..=1_000_000_000_000,
            burst in 1u32..=1_000_000,
            now in 0u64..=1u64 << 50,
            tat_offset in 0u64..=1u64 << 52,
            n in 0u32..=1_000_001,
        ) {
            let g = Gcra { interval, burst };
            // states from long idle to far past the limit
            let tat = (now >> 1).saturating_add(tat_offset);
            proptest::prop_assert_eq!(g.check(tat, now, n), reference(&g, tat, now, n));
        }

        /// Checks decided one after another (as a keyed limiter's shard lock orders them)
        /// at times read earlier, some older than the state they meet (a thread preempted
        /// between reading the clock and taking the lock): the state never goes back, and
        /// over any span of the times read no more are admitted than the quota allows,
        /// `burst + span / interval`. What lets a GCRA-family keyed check read the clock
        /// before its shard's lock.
        #[test]
        fn checks_at_times_older_than_the_state_never_admit_more_than_the_quota(
            interval in 1u64..=1_000,
            burst in 1u32..=20,
            steps in proptest::collection::vec((0u64..=2_000, 0u64..=3_000), 1..200),
        ) {
            let g = Gcra { interval, burst };
            let (mut tat, mut clock) = (0u64, 10_000u64);
            let mut admitted = Vec::new();
            for (advance, lag) in steps {
                clock += advance;
                let read = clock - lag; // read `lag` before the check is decided
                if let (Some(new), _) = g.check(tat, read, 1) {
                    proptest::prop_assert!(new >= tat, "the state went back: {tat} -> {new}");
                    tat = new;
                    admitted.push(read);
                }
            }
            admitted.sort_unstable();
            for (i, a) in admitted.iter().enumerate() {
                for (count, b) in (1u64..).zip(&admitted[i..]) {
                    let allowed = u64::from(burst) + (b - a) / interval;
                    proptest::prop_assert!(
                        count <= allowed,
                        "{count} admitted between {a} and {b}, the quota allows {allowed}"
                    );
                }
            }
        }
    }

    /// Where `now + burst·t` saturates u64 (583 years on the clock), a full quota still
    /// answers `burst - n` left, and the reset saturates with it.
    #[test]
    fn a_full_quota_near_the_end_of_the_clock_answers_burst_minus_n() {
        let g = Gcra {
            interval: 100,
            burst: 4,
        };
        let now = u64::MAX - 10;
        let (new, d) = g.check(0, now, 1);
        assert_eq!(new, Some(u64::MAX));
        assert_eq!(
            d,
            Decision::Allowed {
                remaining: 3,
                reset_after: 10
            }
        );
    }
}
