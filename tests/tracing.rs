//! Rejections reach `tracing` (target `palisade::rejection`, DEBUG) even when nobody has
//! subscribed to palisade's event stream. Its own test binary: it sets a `tracing`
//! subscriber for the test's thread.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade::{BreakerConfig, BulkheadConfig, LimiterConfig, Quota, Runtime, SlidingWindow};

/// Everything the fmt subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// A `tracing` subscriber for this thread that keeps what `filter` lets through.
fn capture(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(start_paused = true)]
async fn rejections_are_traced_without_an_event_subscriber() {
    let (captured, _guard) = capture("palisade::rejection=debug");

    let rt = Runtime::start().await.expect("runtime");
    let api = rt
        .limiter("traced-api", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .expect("spawn");
    let db = rt
        .breaker(
            "traced-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(2))
                .minimum_calls(2)
                .wait_in_open(Duration::from_secs(60))
                .build()
                .expect("valid"),
        )
        .await
        .expect("spawn");
    let pool = rt
        .bulkhead(
            "traced-pool",
            BulkheadConfig::builder()
                .max_concurrent(1)
                .build()
                .expect("valid"),
        )
        .await
        .expect("spawn");

    assert!(api.check().is_ok());
    assert!(api.check().is_err());
    for _ in 0..2 {
        let _ = db.execute(|| async { Err::<(), _>("boom") }).await;
    }
    assert!(db.execute(|| async { Ok::<_, ()>(()) }).await.is_err());
    let held = pool.try_acquire().expect("permit");
    assert!(pool.execute(|| async { Ok::<_, ()>(()) }).await.is_err());
    drop(held);

    let text = captured.text();
    let rejected = |name: &str| {
        text.lines()
            .any(|l| l.contains("call rejected") && l.contains(name))
    };
    assert!(
        rejected("traced-api"),
        "limiter rejection not traced:\n{text}"
    );
    assert!(
        rejected("traced-db"),
        "breaker rejection not traced:\n{text}"
    );
    assert!(
        rejected("traced-pool"),
        "bulkhead rejection not traced:\n{text}"
    );
    rt.shutdown().await;
}

/// A retry that never retried (its first attempt was a rejection it does not retry) logs
/// "retry gave up" at DEBUG, not INFO: a rejection flood logged one INFO line per request.
/// A retry that did retry still gives up at INFO.
#[tokio::test(start_paused = true)]
async fn a_retry_that_never_retried_gives_up_at_debug() {
    use palisade::{Backoff, CallError, Policy, Retry};

    let (captured, _guard) = capture("palisade::retry=info");

    let rt = Runtime::start().await.expect("runtime");
    let api = rt
        .limiter("traced-retry-api", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .expect("spawn");
    assert!(api.check().is_ok());
    let retry = |name: &str| {
        Retry::builder()
            .name(name)
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(1)))
            .build()
            .expect("valid")
    };
    let rejected = Policy::new().retry(retry("never-retried")).limiter(&api);
    for _ in 0..100 {
        let r = rejected.execute(|| async { Ok::<_, ()>(()) }).await;
        assert!(matches!(r, Err(CallError::RateLimited { .. })), "{r:?}");
    }
    let flaky = Policy::new().retry(retry("did-retry"));
    let r = flaky.execute(|| async { Err::<(), _>("boom") }).await;
    assert!(matches!(r, Err(CallError::Inner("boom"))));

    let text = captured.text();
    let gave_up = |name: &str| {
        text.lines()
            .filter(|l| l.contains("retry gave up") && l.contains(name))
            .count()
    };
    assert_eq!(gave_up("never-retried"), 0, "{text}");
    assert_eq!(gave_up("did-retry"), 1, "{text}");
    rt.shutdown().await;
}
