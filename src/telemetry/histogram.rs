//! Call durations as a Prometheus classic histogram, bucketed per thread and flushed by an
//! actor.
//!
//! A `metrics` histogram hands every sample to the recorder: with
//! metrics-exporter-prometheus that is a clock read of its own and a push through
//! crossbeam-epoch into a shared lock-free bucket, ~50 ns on every breaker call
//! (benches/recorder_rounds.rs: 65.8 ns without the recorder, 115.6 ns with it). The
//! `metrics` API has no way to hand over pre-counted buckets (`record_many` pushes the
//! sample `count` times), so buffering samples only moves that cost. A
//! [`DurationHistogram`] counts each call into its bucket on the calling thread's
//! [`Stripes`] (a compare per bucket boundary passed and two plain adds), and
//! [`flush`](DurationHistogram::flush) writes the series a Prometheus histogram is made of,
//! through `metrics` counters and a gauge, so any recorder carries them:
//!
//! - `<name>_bucket{le="..."}`: calls that took at most `le` seconds, cumulative, for
//!   every bound of the runtime's ([`BOUNDS`] unless `call_duration_buckets` chose others)
//!   and `+Inf` (counters);
//! - `<name>_count`: every call (a counter, equal to the `+Inf` bucket);
//! - `<name>_sum`: seconds spent in calls, in total (a gauge, since `metrics` counters are
//!   whole numbers; it is only ever added to, so `rate()` reads it as it reads a counter).
//!
//! `histogram_quantile(0.99, sum by (le) (rate(<name>_bucket[5m])))` gives percentiles,
//! and unlike a summary's quantiles, buckets add up across instances. Counts are exact;
//! they reach the recorder at the next flush (every [`FLUSH_EVERY`](super::FLUSH_EVERY)).

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge};

use crate::clock::Clock;
use crate::error::ConfigError;
use crate::sync::Mutex;

use super::Stripes;

/// The default upper bounds of the finite buckets, in seconds, with their `le` labels: the
/// common latency range of calls to other services, 500 us to 10 s.
pub(crate) const BOUNDS: [(f64, &str); FINITE] = [
    (0.0005, "0.0005"),
    (0.001, "0.001"),
    (0.0025, "0.0025"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
    (5.0, "5"),
    (10.0, "10"),
];
/// The most finite buckets a histogram has.
pub(crate) const FINITE: usize = 14;
/// The finite buckets and `+Inf`.
const BUCKETS: usize = FINITE + 1;
/// Where the stripes keep the sum, in clock ticks (after the buckets: 16 numbers, one
/// 128-byte stripe).
const SUM: usize = BUCKETS;

/// The finite bucket bounds of every call-duration histogram of a runtime
/// ([`RuntimeBuilder::call_duration_buckets`](crate::RuntimeBuilder::call_duration_buckets)):
/// 1 to [`FINITE`] durations, increasing, with their `le` labels (seconds).
#[derive(Debug, Clone)]
pub(crate) struct DurationBounds {
    nanos: Vec<u64>,
    labels: Vec<String>,
}

impl DurationBounds {
    /// [`BOUNDS`].
    pub(crate) fn standard() -> Arc<Self> {
        static STANDARD: std::sync::OnceLock<Arc<DurationBounds>> = std::sync::OnceLock::new();
        Arc::clone(STANDARD.get_or_init(|| {
            Arc::new(Self {
                nanos: BOUNDS.map(|(secs, _)| (secs * 1e9).round() as u64).to_vec(),
                labels: BOUNDS.map(|(_, label)| label.to_owned()).to_vec(),
            })
        }))
    }

    /// `bounds`, or why not, naming `call_duration_buckets`.
    pub(crate) fn new(bounds: &[Duration]) -> Result<Self, ConfigError> {
        let refuse =
            |why: String| ConfigError::refused("call_duration_buckets", format!("{bounds:?}"), why);
        if bounds.is_empty() || bounds.len() > FINITE {
            return Err(refuse(format!(
                "{} bounds: give 1 to {FINITE} (the +Inf bucket is always there)",
                bounds.len()
            )));
        }
        let mut nanos = Vec::with_capacity(bounds.len());
        for (i, b) in bounds.iter().enumerate() {
            let n = u64::try_from(b.as_nanos())
                .map_err(|_| refuse(format!("bound {i} ({b:?}) is past 584 years")))?;
            if n == 0 {
                return Err(refuse(format!(
                    "bound {i} is zero: bounds must be positive"
                )));
            }
            if nanos.last().is_some_and(|&last| n <= last) {
                return Err(refuse(format!(
                    "bound {i} ({b:?}) is not above the one before: bounds must increase"
                )));
            }
            nanos.push(n);
        }
        let labels = bounds.iter().map(|b| b.as_secs_f64().to_string()).collect();
        Ok(Self { nanos, labels })
    }

    /// The finite buckets.
    pub(crate) fn len(&self) -> usize {
        self.nanos.len()
    }
}

/// One histogram of call durations (a breaker's, or a keyed breaker's shared by its keys).
pub(crate) struct DurationHistogram {
    /// Per bucket, calls that fell in it (not cumulative); then the sum of their ticks.
    counts: Stripes<{ BUCKETS + 1 }>,
    /// Per finite bucket, the most clock ticks a call in it can take; `u64::MAX` from the
    /// `+Inf` bucket's index on (where a call past the last bound lands).
    bounds: [u64; BUCKETS],
    /// Converts ticks into seconds for the sum.
    clock: Clock,
    /// One per finite bucket in use, then `+Inf`.
    buckets: Vec<Counter>,
    count: Counter,
    sum: Gauge,
    /// What has been handed to the series so far: the cumulative bucket counts, then the
    /// sum in ticks. (Increments, not absolute values: a breaker removed and spawned again
    /// under its name carries on its series, as Prometheus expects of counters.)
    flushed: Mutex<[u64; BUCKETS + 1]>,
}

impl std::fmt::Debug for DurationHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationHistogram")
            .field("buckets", &self.cumulative())
            .finish_non_exhaustive()
    }
}

impl DurationHistogram {
    /// The histogram `{name=label}` with finite buckets `bounds`, written to the series
    /// `names` (bucket, count, sum), its bounds in the ticks of `clock` (every [`Clock`]
    /// of a process ticks at the same rate).
    pub(crate) fn new(
        names: [&'static str; 3],
        label: &str,
        clock: Clock,
        bounds: &DurationBounds,
    ) -> Self {
        let [bucket_name, count_name, sum_name] = names;
        let le = |i: usize| {
            bounds
                .labels
                .get(i)
                .map_or("+Inf", String::as_str)
                .to_owned()
        };
        Self {
            counts: Stripes::new(),
            bounds: std::array::from_fn(|i| {
                bounds
                    .nanos
                    .get(i)
                    .map_or(u64::MAX, |&n| ticks_at_most(&clock, n))
            }),
            clock,
            buckets: (0..=bounds.len().min(FINITE))
                .map(|i| metrics::counter!(bucket_name, "name" => label.to_string(), "le" => le(i)))
                .collect(),
            count: metrics::counter!(count_name, "name" => label.to_string()),
            sum: metrics::gauge!(sum_name, "name" => label.to_string()),
            flushed: Mutex::new([0; BUCKETS + 1]),
        }
    }

    /// Counts a call that took `ticks` clock ticks.
    #[inline]
    pub(crate) fn record(&self, ticks: u64) {
        // The first bucket whose bound the call did not pass, looked for from the smallest:
        // a compare per bound passed, so the calls that pay more than 4 took 5 ms or more.
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| ticks <= bound)
            .unwrap_or(FINITE); // (never: the `+Inf` bound takes every call)
        self.counts.add_two(bucket, 1, SUM, ticks);
    }

    /// Per bucket, the calls that took at most its bound (the last: every call).
    pub(crate) fn cumulative(&self) -> [u64; BUCKETS] {
        let mut running = 0u64;
        std::array::from_fn(|i| {
            running = running.wrapping_add(self.counts.total(i));
            running
        })
    }

    /// Seconds spent in the calls counted so far.
    #[cfg(test)]
    pub(crate) fn sum_secs(&self) -> f64 {
        self.clock.to_secs_f64(self.counts.total(SUM))
    }

    /// Hands what was counted since the last flush to the `metrics` series.
    pub(crate) fn flush(&self) {
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        // (the sum first: read after the counts, it could take in calls they do not)
        let sum = self.counts.total(SUM);
        let now = self.cumulative();
        // a stripe's number never goes down, so neither does a sum of them
        let infinite = self.buckets.len() - 1;
        for (i, total) in now.into_iter().enumerate().take(self.buckets.len()) {
            let delta = total.saturating_sub(flushed[i]);
            if delta > 0 {
                self.buckets[i].increment(delta);
                if i == infinite {
                    self.count.increment(delta);
                }
                flushed[i] = total;
            }
        }
        let delta = sum.wrapping_sub(flushed[SUM]);
        if delta > 0 {
            self.sum.increment(self.clock.to_secs_f64(delta));
            flushed[SUM] = sum;
        }
    }
}

/// The most ticks of `clock` that make at most `nanos` nanoseconds.
fn ticks_at_most(clock: &Clock, nanos: u64) -> u64 {
    // the fewest ticks that make more than `nanos`, less one
    clock.to_ticks(nanos.saturating_add(1)).saturating_sub(1)
}

#[cfg(all(test, not(palisade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn chosen_bounds_are_checked_by_name_and_used() {
        let ms = Duration::from_millis;
        for (bad, words) in [
            (vec![], "0 bounds"),
            (vec![ms(1); 15], "15 bounds"),
            (vec![ms(0), ms(1)], "bound 0 is zero"),
            (vec![ms(2), ms(2)], "bound 1 (2ms) is not above"),
            (vec![Duration::MAX], "past 584 years"),
        ] {
            let e = DurationBounds::new(&bad).expect_err("refused").to_string();
            assert!(
                e.contains("call_duration_buckets") && e.contains(words),
                "{bad:?}: {e}"
            );
        }
        let bounds = DurationBounds::new(&[ms(300), Duration::from_secs(2)]).expect("valid");
        assert_eq!(bounds.labels, ["0.3", "2"]);
        let clock = Clock::new();
        let h = DurationHistogram::new(
            ["c_bucket", "c_count", "c_sum"],
            "chosen",
            clock.clone(),
            &bounds,
        );
        let ticks = |nanos: u64| clock.to_ticks(nanos);
        h.record(ticks(300_000_000)); // on the bound: in le=0.3
        h.record(ticks(300_000_001));
        h.record(ticks(2_000_000_001)); // past the last bound: +Inf
        let c = h.cumulative();
        assert_eq!(&c[..3], &[1, 2, 3], "{c:?}");
        assert_eq!(h.buckets.len(), 3, "two bounds and +Inf");
    }

    #[test]
    fn bounds_are_increasing_and_their_labels_spell_them() {
        for pair in BOUNDS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{pair:?}");
        }
        for (secs, label) in BOUNDS {
            assert_eq!(label.parse::<f64>().expect("a number"), secs);
        }
    }

    #[test]
    fn a_call_lands_in_the_first_bucket_whose_bound_it_does_not_pass() {
        let clock = Clock::new();
        let h = DurationHistogram::new(
            ["t_bucket", "t_count", "t_sum"],
            "lands",
            clock.clone(),
            &DurationBounds::standard(),
        );
        let ticks = |nanos: u64| clock.to_ticks(nanos);
        // exactly 1 ms is in le=0.001; a nanosecond more is not
        h.record(ticks(1_000_000));
        h.record(ticks(1_000_001));
        h.record(0);
        h.record(ticks(60_000_000_000)); // a minute: +Inf only
        let c = h.cumulative();
        assert_eq!(c[0], 1, "le=0.0005: {c:?}");
        assert_eq!(c[1], 2, "le=0.001: {c:?}");
        assert_eq!(c[2], 3, "le=0.0025: {c:?}");
        assert_eq!(c[FINITE - 1], 3, "le=10: {c:?}");
        assert_eq!(c[FINITE], 4, "+Inf: {c:?}");
        let expected = 0.001 + 0.001_000_001 + 60.0;
        assert!((h.sum_secs() - expected).abs() < 1e-6, "{}", h.sum_secs());
    }
}
