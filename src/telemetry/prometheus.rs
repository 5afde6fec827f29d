//! The Prometheus exporter, one call away (feature `prometheus`, on by default).

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;
pub use metrics_exporter_prometheus::PrometheusHandle;

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// The exporter could not be built or a recorder is already installed.
    #[error("could not install the prometheus exporter: {0}")]
    Install(String),
}

/// Installs the Prometheus recorder as the global `metrics` recorder and serves
/// `GET /metrics` (any path, in fact) over HTTP on `addr`. Returns a handle that renders
/// the same text without a scrape.
///
/// Call it inside a tokio runtime (the listener is a task on it) and before spawning
/// primitives. Call it once per process: the global recorder can be set only once.
///
/// # Errors
/// [`ExporterError::Install`] when the listener cannot bind or a recorder is already set.
pub fn install(addr: SocketAddr) -> Result<PrometheusHandle, ExporterError> {
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .build()
        .map_err(|e| ExporterError::Install(e.to_string()))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| ExporterError::Install(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(target: "palisade::telemetry", error = ?e, "prometheus listener stopped");
        }
    });
    crate::telemetry::metrics::describe();
    Ok(handle)
}

/// How often histogram samples are drained into their summaries (the exporter's default).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder without an HTTP listener and returns the handle that
/// renders the exposition text (serve it from your own HTTP server).
///
/// # Upkeep
/// The exporter keeps every histogram sample (a breaker records one per call) until it
/// drains them into their summaries. Called inside a tokio runtime, this spawns the task
/// that drains them every 5 seconds, as [`install`] does; called outside one, call
/// [`PrometheusHandle::run_upkeep`] every few seconds yourself, or samples pile up until the
/// next render.
///
/// # Errors
/// [`ExporterError::Install`] when a global recorder is already set.
pub fn install_recorder() -> Result<PrometheusHandle, ExporterError> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ExporterError::Install(e.to_string()))?;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let upkeep = handle.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_EVERY).await;
                upkeep.run_upkeep();
            }
        });
    }
    crate::telemetry::metrics::describe();
    Ok(handle)
}
