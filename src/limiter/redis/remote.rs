//! The connection to Redis, guarded by a palisade breaker, and the backend's health.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::Gauge;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::Script;
use tokio::sync::OnceCell;

use super::config::RedisBackend;
use super::scripts::Reply;
use crate::breaker::Breaker;
use crate::error::{CallError, ConfigError};
use crate::telemetry::{metrics as m, Event, Telemetry};

/// What a script call needs besides the key and the costs: the algorithm's period in
/// microseconds, its capacity, and whether to take up to each cost (a lease).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask {
    pub(crate) period_us: f64,
    pub(crate) capacity: u32,
    pub(crate) partial: bool,
}

/// The connection: one server's auto-reconnecting manager, or a cluster connection made on
/// first use (it needs the topology, so it cannot be made without a round trip).
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(Box<Cluster>),
}

pub(crate) struct Cluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

/// Runs `script` for `costs` on `conn`. The first call on a connection that dropped fails
/// while it reconnects: try once more on the new connection. (A lost reply may have spent
/// units twice: over-counting, never over-admitting.)
async fn invoke<C: ConnectionLike>(
    conn: &mut C,
    script: &Script,
    key: &str,
    ask: Ask,
    costs: &[u32],
) -> redis::RedisResult<Vec<i64>> {
    let mut call = script.prepare_invoke();
    call.key(key)
        .arg(ask.period_us)
        .arg(ask.capacity)
        .arg(u8::from(ask.partial))
        .arg(costs);
    match call.invoke_async::<Vec<i64>>(conn).await {
        Err(e) if e.is_connection_dropped() || e.is_io_error() => call.invoke_async(conn).await,
        other => other,
    }
}

/// One limiter's way to Redis. Every call goes through the guard breaker (named
/// `<limiter>.redis`) with a timeout; a failed call or an open guard means "down" and the
/// caller applies its fail mode.
pub(crate) struct Remote {
    conn: Conn,
    guard: Breaker,
    timeout: Duration,
    up: AtomicBool,
    up_gauge: Gauge,
    name: Arc<str>,
    telemetry: Telemetry,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("guard", &self.guard.name())
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish()
    }
}

impl Conn {
    /// Sets the connection up without making it ([`Remote::connect`] makes it at spawn):
    /// a limiter spawned while Redis is down starts in its fail mode and recovers when
    /// Redis answers.
    pub(crate) fn set_up(backend: &RedisBackend) -> Result<Self, ConfigError> {
        let refused = |e: redis::RedisError| {
            let urls: Vec<String> = backend
                .nodes
                .iter()
                .map(|u| crate::error::redact_url(u))
                .collect();
            ConfigError::refused(
                "redis.url",
                urls,
                format!("cannot set up a connection: {e}"),
            )
        };
        Ok(if backend.cluster {
            let client = ClusterClient::builder(backend.nodes.iter().map(String::as_str))
                .connection_timeout(backend.timeout)
                .response_timeout(backend.timeout)
                .retries(1)
                .build()
                .map_err(refused)?;
            Conn::Cluster(Box::new(Cluster {
                client,
                conn: OnceCell::new(),
            }))
        } else {
            let url = backend.nodes.first().map_or("", String::as_str);
            let client = redis::Client::open(url).map_err(refused)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(backend.timeout))
                .set_response_timeout(Some(backend.timeout))
                .set_number_of_retries(1)
                .set_max_delay(backend.open_for);
            Conn::Single(ConnectionManager::new_lazy_with_config(client, config).map_err(refused)?)
        })
    }
}

impl Remote {
    /// The connection `conn` behind the breaker `guard`.
    pub(crate) fn new(
        name: Arc<str>,
        conn: Conn,
        backend: &RedisBackend,
        guard: Breaker,
        telemetry: Telemetry,
    ) -> Self {
        let up_gauge = metrics::gauge!(m::LIMITER_BACKEND_UP, "name" => name.to_string());
        up_gauge.set(1.0);
        Self {
            conn,
            guard,
            timeout: backend.timeout,
            up: AtomicBool::new(true),
            up_gauge,
            name,
            telemetry,
        }
    }

    /// `false` from a failed call until the next call that succeeds.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Runs `script` on `key` for `costs` (decided in order), one answer per cost.
    /// `Err(retry_after)` when the backend is down (the guard's time left in open, or the
    /// call timeout).
    pub(crate) async fn run(
        &self,
        script: &Script,
        key: &str,
        ask: Ask,
        costs: &[u32],
    ) -> Result<Vec<Reply>, Duration> {
        let outcome = self
            .guard
            .execute(|| async {
                let answer = async {
                    match &self.conn {
                        Conn::Single(conn) => {
                            invoke(&mut conn.clone(), script, key, ask, costs).await
                        }
                        Conn::Cluster(cluster) => {
                            let conn = cluster
                                .conn
                                .get_or_try_init(|| cluster.client.get_async_connection())
                                .await?;
                            invoke(&mut conn.clone(), script, key, ask, costs).await
                        }
                    }
                };
                match tokio::time::timeout(self.timeout, answer).await {
                    Err(_) => Err(format!("no answer within {:?}", self.timeout)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(v)) => Reply::parse_all(&v, costs.len()),
                }
            })
            .await;
        match outcome {
            Ok(reply) => {
                self.health(true, || "recovered".into());
                Ok(reply)
            }
            Err(CallError::Inner(cause)) => {
                self.health(false, || cause.into());
                Err(self.timeout)
            }
            Err(rejected) => Err(rejected.retry_after().unwrap_or(self.timeout)),
        }
    }

    /// Makes the connection now (a `PING` through the guard, within the timeout), so the
    /// first checks after spawn do not race its making. A backend that does not answer is
    /// marked down at once: the limiter starts in its fail mode and recovers on the first
    /// call that succeeds, as after any outage.
    pub(crate) async fn connect(&self) {
        let outcome = self
            .guard
            .execute(|| async {
                let ping = async {
                    let ping = redis::cmd("PING");
                    match &self.conn {
                        Conn::Single(conn) => ping.query_async::<()>(&mut conn.clone()).await,
                        Conn::Cluster(cluster) => {
                            let conn = cluster
                                .conn
                                .get_or_try_init(|| cluster.client.get_async_connection())
                                .await?;
                            ping.query_async::<()>(&mut conn.clone()).await
                        }
                    }
                };
                match tokio::time::timeout(self.timeout, ping).await {
                    Err(_) => Err(format!("no answer within {:?}", self.timeout)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(())) => Ok(()),
                }
            })
            .await;
        match outcome {
            Ok(()) => self.health(true, || "recovered".into()),
            Err(CallError::Inner(cause)) => self.health(false, || cause.into()),
            Err(_) => self.health(false, || "the guard breaker is open".into()),
        }
    }

    /// The longest one call may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Deletes `key` without waiting (a reset); a failure leaves the key to expire.
    pub(crate) fn delete_in_background(&self, key: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let delete = redis::cmd("DEL").arg(key).clone();
        match &self.conn {
            Conn::Single(conn) => {
                let mut conn = conn.clone();
                runtime.spawn(async move {
                    let _: Result<(), _> = delete.query_async(&mut conn).await;
                });
            }
            Conn::Cluster(cluster) => {
                // made on first use: nothing to delete before any check reached the cluster
                if let Some(conn) = cluster.conn.get() {
                    let mut conn = conn.clone();
                    runtime.spawn(async move {
                        let _: Result<(), _> = delete.query_async(&mut conn).await;
                    });
                }
            }
        }
    }

    /// [`run`](Self::run) for a single cost.
    pub(crate) async fn run_one(
        &self,
        script: &Script,
        key: &str,
        ask: Ask,
        cost: u32,
    ) -> Result<Reply, Duration> {
        let replies = self.run(script, key, ask, &[cost]).await?;
        // `run` checked that there is exactly one answer per cost
        replies.into_iter().next().ok_or(self.timeout)
    }

    fn health(&self, up: bool, cause: impl FnOnce() -> Arc<str>) {
        if self.up.swap(up, Ordering::AcqRel) == up {
            return;
        }
        self.up_gauge.set(if up { 1.0 } else { 0.0 });
        self.telemetry.emit(Event::BackendHealth {
            name: Arc::clone(&self.name),
            healthy: up,
            cause: cause(),
        });
    }
}
