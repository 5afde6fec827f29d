//! The admin API and live dashboard (feature `admin`): an axum [`Router`] to nest into your
//! own app, or [`Admin::serve`] on an address (127.0.0.1 by default).
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /` | the live dashboard: one self-contained page, fed by `/api/events` |
//! | `GET /health` | liveness: 200 while the process answers |
//! | `GET /ready` | readiness: 503 with the reasons while a chosen breaker is open or an actor is degraded |
//! | `GET /api/snapshot` | every primitive: config, status, restarts, degraded (JSON) |
//! | `GET /api/events` | Server-Sent Events: `event` per runtime event, `snapshot` periodically, `lagged` when this client fell behind |
//! | `POST /api/breakers/{name}/state` | `{"state": "force_open" \| "disable" \| "metrics_only" \| "reset" \| "close"}` |
//! | `GET /metrics` | Prometheus text, when a handle was given ([`Admin::prometheus`]) |
//!
//! Writes need `Authorization: Bearer <token>` when a token is set ([`Admin::token`]), and
//! are refused (401) without one or (403) with a wrong one. Nothing secret is shown: Redis
//! passwords are redacted in every config. docs/OPERATIONS.md has the details.
//!
//! ```no_run
//! # async fn run(rt: palisade::Runtime) -> std::io::Result<()> {
//! let admin = palisade::admin::Admin::new(&rt)
//!     .token("s3cret")
//!     .ready_unless_open(["db"]);
//! let server = admin.serve().await?; // 127.0.0.1:9464
//! println!("dashboard: http://{}/", server.local_addr());
//! # Ok(()) }
//! ```

mod events;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::telemetry::prometheus::PrometheusHandle;
use crate::Runtime;

/// The address [`Admin::serve`] binds unless told otherwise: loopback only.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// Builds the admin router for a runtime.
#[derive(Clone)]
pub struct Admin {
    pub(crate) runtime: Runtime,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) ready_breakers: Arc<[String]>,
    pub(crate) ready_ignores_degraded: bool,
    pub(crate) snapshot_every: Duration,
    pub(crate) prometheus: Option<PrometheusHandle>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ready_breakers", &self.ready_breakers)
            .field("ready_ignores_degraded", &self.ready_ignores_degraded)
            .field("snapshot_every", &self.snapshot_every)
            .field("prometheus", &self.prometheus.is_some())
            .field("addr", &self.addr)
            .finish()
    }
}

impl Admin {
    /// The admin API over `runtime`: no token (writes open to whoever reaches the
    /// address), ready unless an actor is degraded, a snapshot on the event stream every
    /// second, bound to [`DEFAULT_ADDR`].
    pub fn new(runtime: &Runtime) -> Self {
        Self {
            runtime: runtime.clone(),
            token: None,
            ready_breakers: Arc::from(Vec::new()),
            ready_ignores_degraded: false,
            snapshot_every: Duration::from_secs(1),
            prometheus: None,
            addr: DEFAULT_ADDR,
        }
    }

    /// Writes (breaker state changes) need `Authorization: Bearer <token>`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// `/ready` answers 503 while any of these breakers is open, forced open or
    /// half-open.
    pub fn ready_unless_open<I, S>(mut self, breakers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ready_breakers = breakers.into_iter().map(Into::into).collect();
        self
    }

    /// `/ready` ignores degraded actors (by default one makes the process not ready).
    pub fn ready_ignores_degraded(mut self, on: bool) -> Self {
        self.ready_ignores_degraded = on;
        self
    }

    /// How often `/api/events` sends a `snapshot` (default 1 s; at least 100 ms).
    pub fn snapshot_every(mut self, every: Duration) -> Self {
        self.snapshot_every = every.max(Duration::from_millis(100));
        self
    }

    /// Serves `GET /metrics` from this Prometheus handle
    /// ([`prometheus::install_recorder`](crate::telemetry::prometheus::install_recorder)).
    pub fn prometheus(mut self, handle: PrometheusHandle) -> Self {
        self.prometheus = Some(handle);
        self
    }

    /// The address [`serve`](Self::serve) binds (default [`DEFAULT_ADDR`], loopback).
    pub fn address(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The router, to nest into your own app (`app.nest("/admin", admin.router())`).
    pub fn router(self) -> Router {
        routes::router(self)
    }

    /// Binds the address and serves the router on a task of its own until the returned
    /// [`Serving`] is stopped or dropped.
    ///
    /// # Errors
    /// The bind's error (the address in use, no permission).
    ///
    /// # Cancel safety
    /// Cancel safe: dropped before it returns, nothing is served (a bound listener is
    /// closed with it).
    pub async fn serve(self) -> std::io::Result<Serving> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let local = listener.local_addr()?;
        let app = self.router();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(target: "palisade::admin", error = %e, "admin server stopped");
            }
        });
        Ok(Serving {
            local,
            stop: Some(stop),
            task,
        })
    }
}

/// A running admin server; dropping it stops the server.
#[derive(Debug)]
pub struct Serving {
    local: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// The address it listens on (the port chosen, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops the server and waits for it to end; open requests and event streams are cut.
    ///
    /// # Cancel safety
    /// Cancel safe: the server is told to stop at the first poll and stops either way.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // event streams never end by themselves: a graceful shutdown would wait on them
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}
