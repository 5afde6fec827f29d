//! Telemetry: the typed [`Event`] stream, `tracing` events and `metrics` series.
//!
//! Every event goes three ways: onto the runtime's broadcast channel (read it with
//! [`Runtime::subscribe`](crate::Runtime::subscribe)), into `tracing`, and into the
//! `metrics` series named in [`metrics`]. Rejection events are thinned to one per second
//! per primitive and reason (the rest folded into the next one's `suppressed`), and travel
//! in a lane of their own with retries, so they never push out lifecycle events.
//! Publishing never blocks: a subscriber that falls behind loses the oldest events and is
//! told how many with
//! [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged); the loss is
//! also counted in `palisade_events_dropped_total`.

mod bus;
mod event;
mod histogram;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod rejections;
mod tally;

pub use bus::EventStream;
pub(crate) use bus::Telemetry;
pub use event::{Event, Kind, RejectReason, TransitionReason};
pub(crate) use histogram::{DurationBounds, DurationHistogram};
pub(crate) use rejections::RejectionGate;
pub(crate) use tally::{leased_stripe, thread_stripe, Stripes, Tally, FLUSH_EVERY, STRIPES};
