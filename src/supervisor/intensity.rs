//! Restart intensity: at most `max_restarts` restarts inside a sliding `window`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Instant;

/// The restarts of one child inside the window, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    /// Records an exit at `now` and says whether a restart is still allowed: it is while the
    /// window (ending at `now`, exits in it counted) holds at most `max_restarts` exits.
    pub(crate) fn allow(&mut self, now: Instant, max_restarts: u32, window: Duration) -> bool {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= max_restarts as usize
    }

    /// Exits counted in the window.
    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.restarts.len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_then_refuses_and_forgets_old_exits() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut r = RestartWindow::default();
        assert!(r.allow(t0, 2, w));
        assert!(r.allow(t0 + Duration::from_secs(1), 2, w));
        assert!(!r.allow(t0 + Duration::from_secs(2), 2, w));
        // 1 ns before the first exit leaves the window it still counts
        let mut r = RestartWindow::default();
        assert!(r.allow(t0, 1, w));
        assert!(!r.allow(t0 + w - Duration::from_nanos(1), 1, w));
        // at exactly `window` after the first exit, it no longer counts
        let mut r = RestartWindow::default();
        assert!(r.allow(t0, 1, w));
        assert!(r.allow(t0 + w, 1, w));
        assert_eq!(r.count(), 1);
    }

    #[test]
    fn zero_max_restarts_never_restarts() {
        let mut r = RestartWindow::default();
        assert!(!r.allow(Instant::now(), 0, Duration::from_secs(1)));
    }
}
