//! The admin endpoints.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde_json::{json, Value};

use super::events::to_json;
use super::Admin;
use crate::BreakerState;
use tokio::sync::broadcast::error::RecvError;

/// The dashboard: one page, no external resource.
const DASHBOARD: &str = include_str!("dashboard.html");

pub(super) fn router(admin: Admin) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .route("/api/breakers/{name}/state", post(breaker_state))
        .route("/metrics", get(metrics))
        .with_state(admin)
}

async fn dashboard() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // nothing may be fetched from outside: the page is whole
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        Html(DASHBOARD),
    )
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(admin): State<Admin>) -> Response {
    let snapshot = admin.runtime.snapshot();
    let mut reasons = Vec::new();
    if admin.runtime.is_shut_down() {
        reasons.push("the runtime is shut down".to_owned());
    }
    for name in admin.ready_breakers.iter() {
        match admin.runtime.get_breaker(name) {
            None => reasons.push(format!("breaker {name} does not exist")),
            Some(b) => {
                let state = b.status().state;
                if matches!(
                    state,
                    BreakerState::Open | BreakerState::ForcedOpen | BreakerState::HalfOpen
                ) {
                    reasons.push(format!("breaker {name} is {}", state.as_str()));
                }
            }
        }
    }
    if !admin.ready_ignores_degraded {
        for p in snapshot.degraded() {
            reasons.push(format!("{} {} is degraded", p.kind, p.name));
        }
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": reasons.is_empty(), "reasons": reasons })),
    )
        .into_response()
}

fn snapshot_json(admin: &Admin) -> Value {
    serde_json::to_value(admin.runtime.snapshot())
        .unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

async fn snapshot(State(admin): State<Admin>) -> Json<Value> {
    Json(snapshot_json(&admin))
}

/// The event stream: a snapshot first, then every event, a snapshot every
/// `snapshot_every`, and `lagged` (with how many were missed) when this client fell behind
/// the bus. A slow client never slows the server: the bus drops what it does not read.
async fn events(
    State(admin): State<Admin>,
) -> axum::response::Sse<impl Stream<Item = Result<Sse, Infallible>>> {
    let stream = admin.runtime.subscribe();
    let mut tick = tokio::time::interval(admin.snapshot_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let state = (admin, stream, tick, false);
    let body = futures_util::stream::unfold(
        state,
        |(admin, mut stream, mut tick, done)| async move {
            if done {
                return None;
            }
            let item = tokio::select! {
                _ = tick.tick() => Sse::default().event("snapshot").data(snapshot_json(&admin).to_string()),
                got = stream.recv() => match got {
                    Ok(event) => Sse::default().event("event").data(to_json(&event).to_string()),
                    Err(RecvError::Lagged(missed)) => Sse::default().event("lagged").data(json!({ "missed": missed }).to_string()),
                    Err(RecvError::Closed) => {
                        let bye = Sse::default().event("closed").data("{}");
                        return Some((Ok(bye), (admin, stream, tick, true)));
                    }
                },
            };
            Some((Ok(item), (admin, stream, tick, false)))
        },
    );
    axum::response::Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `None` when the request may write; else the refusal.
fn refused(admin: &Admin, headers: &HeaderMap) -> Option<Response> {
    let token = admin.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (status, message) = match given {
        None => (
            StatusCode::UNAUTHORIZED,
            "a bearer token is required: Authorization: Bearer <token>",
        ),
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => return None,
        Some(_) => (StatusCode::FORBIDDEN, "the bearer token is wrong"),
    };
    Some(
        (
            status,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"palisade\"")],
            Json(json!({ "error": message })),
        )
            .into_response(),
    )
}

/// Compares without stopping at the first difference (a token's prefix cannot be timed).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const STATES: &str = "force_open, disable, metrics_only, reset, close";

async fn breaker_state(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refusal) = refused(&admin, &headers) {
        return refusal;
    }
    let bad = |status: StatusCode, message: String| {
        (status, Json(json!({ "error": message }))).into_response()
    };
    let Some(breaker) = admin.runtime.get_breaker(&name) else {
        return bad(StatusCode::NOT_FOUND, format!("no breaker named {name:?}"));
    };
    let wanted = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v.get("state").and_then(Value::as_str).map(str::to_owned),
        Err(_) => None,
    };
    let Some(wanted) = wanted else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON body {{\"state\": ...}} with one of: {STATES}"),
        );
    };
    match wanted.as_str() {
        "force_open" => breaker.force_open().await,
        "disable" => breaker.disable().await,
        "metrics_only" => breaker.metrics_only().await,
        "reset" | "close" => breaker.reset().await,
        other => {
            return bad(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown state {:?}: expected one of {STATES}",
                    crate::error::echo(other)
                ),
            )
        }
    }
    Json(json!({ "name": name, "state": breaker.status().state.as_str() })).into_response()
}

async fn metrics(State(admin): State<Admin>) -> Response {
    match &admin.prometheus {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no Prometheus handle was given to the admin API (Admin::prometheus)",
        )
            .into_response(),
    }
}
