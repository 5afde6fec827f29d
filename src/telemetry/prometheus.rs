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

/// Installs the Prometheus recorder without an HTTP listener and returns the handle that
/// renders the exposition text (serve it from your own HTTP server).
///
/// # Errors
/// [`ExporterError::Install`] when a global recorder is already set.
pub fn install_recorder() -> Result<PrometheusHandle, ExporterError> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ExporterError::Install(e.to_string()))?;
    crate::telemetry::metrics::describe();
    Ok(handle)
}
