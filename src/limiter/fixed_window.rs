//! Fixed window: at most `limit` per aligned window of `window` nanoseconds.
//!
//! State: the window's index + 1 (0: none yet) and its count. Pure: takes `now`.

use super::decision::Decision;

/// Fixed-window parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FixedWindow {
    pub(crate) limit: u32,
    pub(crate) window: u64,
}

/// The state of one fixed window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FixedState {
    /// Index of the current window + 1; 0 before the first request.
    pub(crate) tag: u64,
    pub(crate) count: u32,
}

impl FixedWindow {
    #[inline]
    pub(crate) fn check(&self, s: FixedState, now: u64, n: u32) -> (Option<FixedState>, Decision) {
        if n > self.limit {
            return (
                None,
                Decision::ExceedsCapacity {
                    cost: n,
                    capacity: self.limit,
                },
            );
        }
        let index = now / self.window;
        let count = if s.tag == index + 1 { s.count } else { 0 };
        let ends_in = (index + 1) * self.window - now;
        let left = self.limit - count;
        if n > left {
            return (
                None,
                Decision::Denied {
                    retry_after: ends_in,
                    remaining: left,
                    reset_after: ends_in,
                },
            );
        }
        (
            Some(FixedState {
                tag: index + 1,
                count: count + n,
            }),
            Decision::Allowed {
                remaining: left - n,
                reset_after: ends_in,
            },
        )
    }

    pub(crate) fn is_idle(&self, s: FixedState, now: u64) -> bool {
        s.tag != now / self.window + 1 || s.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_cost_of_the_whole_limit_fits_and_a_window_in_use_is_not_idle() {
        let w = FixedWindow {
            limit: 3,
            window: S,
        };
        let (s, d) = w.check(FixedState::default(), 2 * S + 7, 3);
        assert_eq!(
            d,
            Decision::Allowed {
                remaining: 0,
                reset_after: S - 7
            },
            "n == limit is admitted"
        );
        let s = s.expect("admitted");
        assert!(!w.is_idle(s, 2 * S + S / 2), "the current window holds 3");
        assert!(w.is_idle(s, 3 * S), "the next window starts empty");
        assert!(
            w.is_idle(FixedState { tag: 3, count: 0 }, 2 * S + S / 2),
            "the current window, nothing counted"
        );
    }

    #[test]
    fn limit_per_aligned_window_with_exact_retry_after() {
        let w = FixedWindow {
            limit: 3,
            window: S,
        };
        let mut s = FixedState::default();
        for _ in 0..3 {
            s = w.check(s, S / 2, 1).0.expect("admitted");
        }
        assert_eq!(
            w.check(s, S / 2, 1).1,
            Decision::Denied {
                retry_after: S / 2,
                remaining: 0,
                reset_after: S / 2
            }
        );
        assert!(
            w.check(s, S - 1, 1).0.is_none(),
            "1 ns before the window ends"
        );
        let (next, d) = w.check(s, S, 1);
        assert!(next.is_some());
        assert_eq!(
            d,
            Decision::Allowed {
                remaining: 2,
                reset_after: S
            }
        );
        assert!(w.is_idle(s, S));
        assert_eq!(
            w.check(s, S, 4).1,
            Decision::ExceedsCapacity {
                cost: 4,
                capacity: 3
            }
        );
    }
}
