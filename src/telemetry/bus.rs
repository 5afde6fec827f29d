//! The event bus: two `tokio::sync::broadcast` lanes owned by the runtime, merged in
//! publication order by each [`EventStream`].
//!
//! Lifecycle events (transitions, restarts, degraded actors, backend health,
//! reconfigurations) and per-call events (rejections, retries) travel apart: a flood of
//! per-call events can make a slow subscriber lag on its lane, but never pushes a lifecycle
//! event out of the other. Every event carries a sequence number so a stream hands them out
//! in the order they were published.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::event::Event;
use super::metrics as m;
use super::DurationBounds;

/// Lanes: lifecycle first (it wins a tie), then per-call.
const LIFECYCLE: usize = 0;
const PER_CALL: usize = 1;

type Sequenced = (u64, Event);

/// The publishing side, cloned into every primitive's shared state. It outlives any actor
/// restart because the runtime, not an actor, owns it.
#[derive(Clone, Debug)]
pub(crate) struct Telemetry {
    lanes: [broadcast::Sender<Sequenced>; 2],
    sequence: Arc<AtomicU64>,
    /// Live subscriptions, kept here because `broadcast::Sender::receiver_count` takes a
    /// mutex, and rejections ask on every call.
    subscribers: Arc<AtomicUsize>,
    /// The bucket bounds of the breakers' call-duration histograms.
    duration_bounds: Arc<DurationBounds>,
}

impl Telemetry {
    /// `capacity` events held per lane.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            lanes: [
                broadcast::channel(capacity).0,
                broadcast::channel(capacity).0,
            ],
            sequence: Arc::new(AtomicU64::new(0)),
            subscribers: Arc::new(AtomicUsize::new(0)),
            duration_bounds: DurationBounds::standard(),
        }
    }

    /// The same, with call-duration histograms bucketed at `bounds`.
    pub(crate) fn with_duration_bounds(mut self, bounds: DurationBounds) -> Self {
        self.duration_bounds = Arc::new(bounds);
        self
    }

    /// The bucket bounds of call-duration histograms.
    pub(crate) fn duration_bounds(&self) -> &DurationBounds {
        &self.duration_bounds
    }

    /// `true` when at least one subscriber listens, so callers can skip building an event.
    #[inline]
    pub(crate) fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// `true` when someone would see a rejection: an event subscriber, or a `tracing`
    /// subscriber with `palisade::rejection` enabled at DEBUG. Rejections are frequent, so
    /// their events are built only then; checking the subscriber count alone left them out
    /// of `tracing` whenever no one had subscribed to palisade's events.
    ///
    /// Inline, only the subscriber count and `tracing`'s global level are read; the
    /// callsite's own filter is asked out of line, when DEBUG is on somewhere, so a denial's
    /// caller keeps a small frame.
    #[inline]
    pub(crate) fn observes_rejections(&self) -> bool {
        self.may_observe_rejections() && (self.has_subscribers() || traces_rejections())
    }

    /// `false` when no one would see a rejection, from two loads (the subscriber count and
    /// `tracing`'s global level); `true` when [`observes_rejections`](Self::observes_rejections)
    /// may be.
    #[inline]
    pub(crate) fn may_observe_rejections(&self) -> bool {
        self.has_subscribers() || tracing::level_enabled!(tracing::Level::DEBUG)
    }

    /// Records the event in `tracing` and publishes it on its lane. Never blocks: with no
    /// subscriber the event is only traced; a full lane overwrites its oldest event.
    pub(crate) fn emit(&self, event: Event) {
        event.trace();
        if self.has_subscribers() {
            let lane = if event.is_per_call() {
                PER_CALL
            } else {
                LIFECYCLE
            };
            let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
            // An error only means every subscriber left between the check and the send.
            let _ = self.lanes[lane].send((seq, event));
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventStream {
            lanes: [self.lanes[0].subscribe(), self.lanes[1].subscribe()],
            held: [None, None],
            closed: [false, false],
            subscribers: Arc::clone(&self.subscribers),
        }
    }
}

/// Whether a `tracing` subscriber wants `palisade::rejection` events at DEBUG.
#[cold]
#[inline(never)]
fn traces_rejections() -> bool {
    tracing::enabled!(target: "palisade::rejection", tracing::Level::DEBUG)
}

/// A subscription to the runtime's events, from [`Runtime::subscribe`](crate::Runtime::subscribe).
///
/// It sees every event published after it was created, in the order they were published.
/// Lifecycle events and per-call events (rejections, retries) are buffered apart, each up
/// to the runtime's `event_capacity`: one that falls further behind on either gets
/// `Err(RecvError::Lagged(n))` once, with `n` the number of events it lost there (also
/// added to `palisade_events_dropped_total`), then resumes with the oldest event still
/// held. Per-call events never push lifecycle events out.
#[derive(Debug)]
pub struct EventStream {
    lanes: [broadcast::Receiver<Sequenced>; 2],
    /// The next event of each lane, taken off it to compare sequence numbers.
    held: [Option<Sequenced>; 2],
    closed: [bool; 2],
    subscribers: Arc<AtomicUsize>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl EventStream {
    /// Waits for the next event.
    ///
    /// # Errors
    /// `RecvError::Lagged(n)` when `n` events were lost to lag; `RecvError::Closed` when the
    /// runtime is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: a cancelled `recv` loses no event.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        loop {
            match self.try_recv() {
                Ok(event) => return Ok(event),
                Err(TryRecvError::Lagged(n)) => return Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            // Both lanes are empty: wait for either. A branch that completes keeps its event
            // in `held` (broadcast's `recv` is cancel safe, so the other loses nothing).
            let [lifecycle, per_call] = &mut self.lanes;
            let (lane, result) = tokio::select! {
                biased;
                r = lifecycle.recv(), if !self.closed[LIFECYCLE] => (LIFECYCLE, r),
                r = per_call.recv(), if !self.closed[PER_CALL] => (PER_CALL, r),
                else => return Err(RecvError::Closed),
            };
            match result {
                Ok(event) => self.held[lane] = Some(event),
                Err(RecvError::Closed) => self.closed[lane] = true,
                Err(RecvError::Lagged(n)) => {
                    ::metrics::counter!(m::EVENTS_DROPPED).increment(n);
                    return Err(RecvError::Lagged(n));
                }
            }
        }
    }

    /// The next event if one is ready, without waiting.
    ///
    /// # Errors
    /// `TryRecvError::Empty` when none is ready, `Lagged(n)` and `Closed` as for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        for lane in [LIFECYCLE, PER_CALL] {
            if self.held[lane].is_some() || self.closed[lane] {
                continue;
            }
            match self.lanes[lane].try_recv() {
                Ok(event) => self.held[lane] = Some(event),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => self.closed[lane] = true,
                Err(TryRecvError::Lagged(n)) => {
                    ::metrics::counter!(m::EVENTS_DROPPED).increment(n);
                    return Err(TryRecvError::Lagged(n));
                }
            }
        }
        let lane = match (&self.held[LIFECYCLE], &self.held[PER_CALL]) {
            (Some((a, _)), Some((b, _))) => {
                if a <= b {
                    LIFECYCLE
                } else {
                    PER_CALL
                }
            }
            (Some(_), None) => LIFECYCLE,
            (None, Some(_)) => PER_CALL,
            (None, None) if self.closed == [true, true] => return Err(TryRecvError::Closed),
            (None, None) => return Err(TryRecvError::Empty),
        };
        let (_, event) = self.held[lane]
            .take()
            .expect("the lane chosen holds an event");
        Ok(event)
    }

    /// Events waiting to be read.
    pub fn len(&self) -> usize {
        self.lanes
            .iter()
            .map(broadcast::Receiver::len)
            .sum::<usize>()
            + self.held.iter().filter(|h| h.is_some()).count()
    }

    /// `true` when no event waits to be read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
