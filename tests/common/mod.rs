//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use palisade::{Event, EventStream};

pub mod latency_proxy;
pub mod redis_server;
pub mod soak;

/// The next event that `pred` accepts, skipping others; panics after 60 s of (paused) time.
pub async fn next_matching(
    events: &mut EventStream,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(e) => panic!("event stream failed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("no matching event within 60 s")
}

/// Every event already published, without waiting.
pub fn drain(events: &mut EventStream) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

/// Lets spawned tasks and actors run until they are idle (paused time does not move).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}
