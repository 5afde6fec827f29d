//! Sliding window, the two-counter weighted estimate (as Cloudflare describes it): the count
//! of the current aligned window plus the previous window's count weighted by how much of
//! the previous window still overlaps the sliding one:
//! `estimate = previous · (window - elapsed) / window + current`.
//!
//! Memory: two counters and a window index per limiter or key. Accuracy: the estimate
//! assumes the previous window's requests were spread evenly. The bound the tests check:
//! the current window's count never exceeds `limit`, so any interval of length `t` admits at
//! most `limit · (⌈t / window⌉ + 1)`.

use super::decision::Decision;

/// Sliding-window parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlidingWindow {
    pub(crate) limit: u32,
    pub(crate) window: u64,
}

/// The state of one sliding window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlidingState {
    /// Index of the current window + 1; 0 before the first request.
    pub(crate) tag: u64,
    pub(crate) previous: u32,
    pub(crate) current: u32,
}

impl SlidingWindow {
    /// The state rolled forward to the window holding `now`.
    fn roll(&self, s: SlidingState, index: u64) -> SlidingState {
        if s.tag == index + 1 {
            s
        } else if s.tag == index {
            SlidingState {
                tag: index + 1,
                previous: s.current,
                current: 0,
            }
        } else {
            SlidingState {
                tag: index + 1,
                previous: 0,
                current: 0,
            }
        }
    }

    #[inline]
    pub(crate) fn check(
        &self,
        s: SlidingState,
        now: u64,
        n: u32,
    ) -> (Option<SlidingState>, Decision) {
        if n > self.limit {
            return (
                None,
                Decision::ExceedsCapacity {
                    cost: n,
                    capacity: self.limit,
                },
            );
        }
        let w = u128::from(self.window);
        let index = now / self.window;
        let s = self.roll(s, index);
        let elapsed = u128::from(now - index * self.window);
        let (prev, cur, limit, cost) = (
            u128::from(s.previous),
            u128::from(s.current),
            u128::from(self.limit),
            u128::from(n),
        );
        // all in units of 1/window requests
        let used = prev * (w - elapsed) + cur * w;
        let capacity = limit * w;
        if used + cost * w <= capacity {
            let remaining = (capacity - used - cost * w) / w;
            let admitted = SlidingState {
                current: s.current + n,
                ..s
            };
            return (
                Some(admitted),
                Decision::Allowed {
                    remaining: saturate(remaining),
                    reset_after: self.reset_after(admitted, index, now),
                },
            );
        }
        let remaining = saturate(capacity.saturating_sub(used) / w);
        (
            None,
            Decision::Denied {
                retry_after: self.retry_after(s, elapsed, n),
                remaining,
                reset_after: self.reset_after(s, index, now),
            },
        )
    }

    /// Nanoseconds until state `s` (rolled to window `index`) weighs nothing: the quota is
    /// back in full once the last window with a count has slid out.
    fn reset_after(&self, s: SlidingState, index: u64, now: u64) -> u64 {
        if s.current > 0 {
            (index + 2) * self.window - now
        } else if s.previous > 0 {
            (index + 1) * self.window - now
        } else {
            0
        }
    }

    /// Nanoseconds until a cost of `n` fits, for a state rolled to the current window.
    fn retry_after(&self, s: SlidingState, elapsed: u128, n: u32) -> u64 {
        let w = u128::from(self.window);
        let (limit, cost) = (u128::from(self.limit), u128::from(n));
        let (prev, cur) = (u128::from(s.previous), u128::from(s.current));
        if cur + cost <= limit && prev > 0 {
            // Later in this window: prev·(w - e) <= (limit - cur - n)·w  =>  e >= w - free/prev.
            let free = (limit - cur - cost) * w;
            let e = w.saturating_sub(free / prev);
            if e < w {
                return saturate_u64(e.saturating_sub(elapsed));
            }
        }
        // In the next window, where the current count becomes the previous one:
        // cur·(w - e) <= (limit - n)·w  =>  e >= w - (limit - n)·w / cur.
        let until_next = w - elapsed;
        let free = (limit - cost) * w;
        let e = free.checked_div(cur).map_or(0, |f| w.saturating_sub(f));
        saturate_u64(until_next + e)
    }

    pub(crate) fn is_idle(&self, s: SlidingState, now: u64) -> bool {
        let index = now / self.window;
        let r = self.roll(s, index);
        r.previous == 0 && r.current == 0
    }
}

fn saturate(v: u128) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn saturate_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn admit(w: &SlidingWindow, s: &mut SlidingState, now: u64) -> Decision {
        let (next, d) = w.check(*s, now, 1);
        if let Some(next) = next {
            *s = next;
        }
        d
    }

    #[test]
    fn weighted_estimate_and_exact_retry_after() {
        let w = SlidingWindow {
            limit: 10,
            window: S,
        };
        let mut s = SlidingState::default();
        for _ in 0..10 {
            assert!(matches!(admit(&w, &mut s, 0), Decision::Allowed { .. }));
        }
        // the 11th in the same window waits for the next window, where the 10 weigh
        // 10·(1 - e): one slot frees at e = 0.1 s, so 1.1 s from now
        let d = admit(&w, &mut s, 0);
        assert_eq!(
            d,
            Decision::Denied {
                retry_after: S + S / 10,
                remaining: 0,
                reset_after: 2 * S
            }
        );
        // 1 ns before: still denied; at the time: admitted
        assert!(matches!(
            admit(&w, &mut s, S + S / 10 - 1),
            Decision::Denied { retry_after: 1, .. }
        ));
        assert!(matches!(
            admit(&w, &mut s, S + S / 10),
            Decision::Allowed { remaining: 0, .. }
        ));
        // half way through that window the previous 10 weigh 5: 5 + 1 used
        let d = admit(&w, &mut s, S + S / 2);
        assert!(matches!(d, Decision::Allowed { remaining: 3, .. }), "{d:?}");
        assert!(w.is_idle(s, 3 * S));
        assert!(!w.is_idle(s, 2 * S));
    }

    #[test]
    fn current_window_never_exceeds_the_limit() {
        let w = SlidingWindow {
            limit: 5,
            window: S,
        };
        let mut s = SlidingState::default();
        let mut admitted = 0;
        for i in 0..100 {
            if matches!(
                admit(&w, &mut s, S + i * (S / 100)),
                Decision::Allowed { .. }
            ) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5);
        assert_eq!(
            w.check(s, S, 6).1,
            Decision::ExceedsCapacity {
                cost: 6,
                capacity: 5
            }
        );
    }

    /// Every state of a small window, every cost, at instants across the window: each
    /// answer is exact, as a caller reads it.
    /// - `retry_after`: the same check is admitted then, and denied 1 ns before;
    /// - `remaining`: the largest cost admitted now, after this check;
    /// - `reset_after`: a check of the whole limit is admitted then (the quota is back in
    ///   full), and denied 1 ns before.
    #[test]
    fn every_answer_is_exact_over_every_small_state() {
        const W: u64 = 1_000;
        let w = SlidingWindow {
            limit: 4,
            window: W,
        };
        let admitted = |s: SlidingState, at: u64, n: u32| w.check(s, at, n).0.is_some();
        let largest_admitted = |s: SlidingState, at: u64| {
            (0..=w.limit)
                .rev()
                .find(|&k| admitted(s, at, k))
                .unwrap_or(0)
        };
        let assert_full_after = |s: SlidingState, now: u64, reset: u64, what: &str| {
            assert!(
                admitted(s, now + reset, w.limit),
                "{what}: not full at the reset"
            );
            if reset > 0 {
                assert!(
                    !admitted(s, now + reset - 1, w.limit),
                    "{what}: full 1 ns before the reset"
                );
            }
        };
        let mut cases = 0;
        for previous in 0..=4u32 {
            for current in 0..=4u32 {
                // the state of window 5 (tag 6); `now` in window 5, 6 or 7
                let s = SlidingState {
                    tag: 6,
                    previous,
                    current,
                };
                for now in [
                    5 * W,
                    5 * W + 1,
                    5 * W + 250,
                    6 * W - 1,
                    6 * W,
                    6 * W + 600,
                    7 * W + 3,
                ] {
                    for n in 0..=4u32 {
                        cases += 1;
                        let what = format!("prev {previous} cur {current} now {now} n {n}");
                        match w.check(s, now, n) {
                            (
                                Some(next),
                                Decision::Allowed {
                                    remaining,
                                    reset_after,
                                },
                            ) => {
                                assert_eq!(remaining, largest_admitted(next, now), "{what}");
                                assert_full_after(next, now, reset_after, &what);
                            }
                            (
                                None,
                                Decision::Denied {
                                    retry_after,
                                    remaining,
                                    reset_after,
                                },
                            ) => {
                                assert!(retry_after > 0, "{what}");
                                assert!(
                                    admitted(s, now + retry_after, n),
                                    "{what}: retry_after too soon"
                                );
                                assert!(
                                    !admitted(s, now + retry_after - 1, n),
                                    "{what}: retry_after too late"
                                );
                                assert_eq!(remaining, largest_admitted(s, now), "{what}");
                                assert_full_after(s, now, reset_after, &what);
                            }
                            other => panic!("{what}: {other:?}"),
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 5 * 7 * 5);
    }

    /// A state two or more windows old counts for nothing, and the new window counts
    /// from zero: 2 admitted, the 3rd waits for the first of them to weigh less.
    #[test]
    fn a_state_older_than_the_previous_window_starts_afresh() {
        const W: u64 = 1_000;
        let w = SlidingWindow {
            limit: 2,
            window: W,
        };
        let mut s = SlidingState::default();
        assert!(matches!(admit(&w, &mut s, 0), Decision::Allowed { .. }));
        assert_eq!(
            admit(&w, &mut s, 5 * W),
            Decision::Allowed {
                remaining: 1,
                reset_after: 2 * W
            }
        );
        assert_eq!(
            admit(&w, &mut s, 5 * W),
            Decision::Allowed {
                remaining: 0,
                reset_after: 2 * W
            }
        );
        // next window, the 2 weigh 2·(1 - e): one unit frees at e = W/2
        assert_eq!(
            admit(&w, &mut s, 5 * W),
            Decision::Denied {
                retry_after: W + W / 2,
                remaining: 0,
                reset_after: 2 * W
            }
        );
    }

    #[test]
    fn a_cost_of_the_whole_limit_fits_an_empty_window() {
        let w = SlidingWindow {
            limit: 5,
            window: S,
        };
        assert_eq!(
            w.check(SlidingState::default(), S, 5).1,
            Decision::Allowed {
                remaining: 0,
                reset_after: 2 * S
            }
        );
    }
}
