//! The event bus: a `tokio::sync::broadcast` channel owned by the runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::event::Event;
use super::metrics as m;

/// The publishing side, cloned into every primitive's shared state. It outlives any actor
/// restart because the runtime, not an actor, owns it.
#[derive(Clone, Debug)]
pub(crate) struct Telemetry {
    sender: broadcast::Sender<Event>,
    /// Live subscriptions, kept here because `broadcast::Sender::receiver_count` takes a
    /// mutex, and rejections ask on every call.
    subscribers: Arc<AtomicUsize>,
}

impl Telemetry {
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
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
    #[inline]
    pub(crate) fn observes_rejections(&self) -> bool {
        self.has_subscribers()
            || tracing::enabled!(target: "palisade::rejection", tracing::Level::DEBUG)
    }

    /// Records the event in `tracing` and publishes it. Never blocks: with no subscriber the
    /// event is only traced; a full channel overwrites the oldest event.
    pub(crate) fn emit(&self, event: Event) {
        event.trace();
        if self.has_subscribers() {
            // An error only means every subscriber left between the check and the send.
            let _ = self.sender.send(event);
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventStream {
            receiver: self.sender.subscribe(),
            subscribers: Arc::clone(&self.subscribers),
        }
    }
}

/// A subscription to the runtime's events, from [`Runtime::subscribe`](crate::Runtime::subscribe).
///
/// It sees every event published after it was created. One that falls more than the
/// channel's capacity behind gets `Err(RecvError::Lagged(n))` once, with `n` the number of
/// events it lost (also added to `palisade_events_dropped_total`), then resumes with the
/// oldest event still held.
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<Event>,
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
    pub async fn recv(&mut self) -> Result<Event, broadcast::error::RecvError> {
        let result = self.receiver.recv().await;
        count_lag(&result);
        result
    }

    /// The next event if one is ready, without waiting.
    ///
    /// # Errors
    /// `TryRecvError::Empty` when none is ready, `Lagged(n)` and `Closed` as for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Event, broadcast::error::TryRecvError> {
        let result = self.receiver.try_recv();
        if let Err(broadcast::error::TryRecvError::Lagged(n)) = result {
            ::metrics::counter!(m::EVENTS_DROPPED).increment(n);
        }
        result
    }

    /// Events waiting to be read.
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// `true` when no event waits to be read.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }
}

fn count_lag(result: &Result<Event, broadcast::error::RecvError>) {
    if let Err(broadcast::error::RecvError::Lagged(n)) = result {
        ::metrics::counter!(m::EVENTS_DROPPED).increment(*n);
    }
}
