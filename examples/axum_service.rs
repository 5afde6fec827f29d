//! palisade in a real service: an axum API limited per API key (else per peer IP), under a
//! deadline read from its callers, calling a flaky downstream (500s, hangs, one 429 with
//! `Retry-After`) through palisade's reqwest middleware (a breaker per downstream host, the
//! deadline sent along and the request's timeout shrunk to it, `Retry-After` honoured,
//! idempotent retries that never sleep past the deadline); `/metrics` for Prometheus; then
//! a bounded load run that prints what clients saw. Everything binds 127.0.0.1 and ends in
//! a few seconds.
//!
//! Run: `cargo run --example axum_service`

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::routing::get;
use axum::Router;
use palisade::breaker::KeyedBreakerConfig;
use palisade::client::Downstream;
use palisade::layer::{DeadlineLayer, HeaderKey, KeyExtractor, KeyedLimiterLayer, PeerIp};
use palisade::{
    deadline, Backoff, BreakerConfig, CallError, Event, KeyedLimiterConfig, LimiterConfig, Quota,
    Runtime, SlidingWindow,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// The flaky downstream: healthy, then six 500s in a row (calls 4-9), one call that hangs
/// for 2 s (call 15), one 429 with `Retry-After: 1` (call 25); it answers with the deadline
/// it was sent.
async fn downstream(
    State(calls): State<Arc<AtomicU32>>,
    headers: HeaderMap,
) -> (StatusCode, HeaderMap, String) {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    let sent = headers
        .get(deadline::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let mut out = HeaderMap::new();
    match n {
        4..=9 => (StatusCode::INTERNAL_SERVER_ERROR, out, sent),
        15 => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            (StatusCode::OK, out, sent)
        }
        25 => {
            out.insert("retry-after", "1".parse().expect("a header value"));
            (StatusCode::TOO_MANY_REQUESTS, out, sent)
        }
        _ => (
            StatusCode::OK,
            out,
            format!("quote 42 (downstream saw {sent} ms left)"),
        ),
    }
}

#[derive(Clone)]
struct Api {
    http: ClientWithMiddleware,
    downstream: String,
}

/// What a downstream failure becomes for our own caller.
fn answer_for(e: &reqwest_middleware::Error) -> (StatusCode, String) {
    let rejection = match e {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<CallError<Infallible>>(),
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => {
            return (
                StatusCode::GATEWAY_TIMEOUT,
                "downstream too slow for our deadline".into(),
            )
        }
        reqwest_middleware::Error::Reqwest(_) => None,
    };
    match rejection {
        Some(CallError::CircuitOpen { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "breaker open".into())
        }
        Some(CallError::RateLimited { retry_after, .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("downstream asked us to wait {retry_after:?}"),
        ),
        Some(CallError::DeadlineExceeded { .. }) => {
            (StatusCode::GATEWAY_TIMEOUT, "out of time".into())
        }
        _ => (StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// The API's handler: one downstream call through the middleware, under the caller's
/// deadline (the DeadlineLayer opened it).
async fn quote(State(api): State<Api>) -> (StatusCode, String) {
    match api.http.get(&api.downstream).send().await {
        Ok(r) if r.status().is_success() => (StatusCode::OK, r.text().await.unwrap_or_default()),
        Ok(r) => (
            StatusCode::BAD_GATEWAY,
            format!("downstream answered {}", r.status()),
        ),
        Err(e) => answer_for(&e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = palisade::telemetry::prometheus::install_recorder()?;
    let rt = Runtime::start().await?;
    let mut events = rt.subscribe();

    let calls = Arc::new(AtomicU32::new(0));
    let down = serve(
        Router::new()
            .route("/", get(downstream))
            .with_state(Arc::clone(&calls)),
    )
    .await;
    println!("downstream (flaky) on http://{down}");

    // a breaker per downstream host, created on first use
    let breakers = rt.keyed_breaker::<String>(
        "downstream",
        KeyedBreakerConfig::new(
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(8))
                .minimum_calls(4)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_millis(300))
                .build()?,
        ),
    )?;
    let http = ClientBuilder::new(reqwest::Client::new())
        .with(Downstream::new(&breakers).retry(3, Backoff::exponential(Duration::from_millis(40))))
        .build();
    let per_client = rt
        .keyed_limiter(
            "api",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_second(40).burst(10))),
        )
        .await?;
    let keys = KeyExtractor::<axum::extract::Request>::or(
        HeaderKey::new(HeaderName::from_static("x-api-key")),
        PeerIp,
    );
    let api = Api {
        http,
        downstream: format!("http://{down}/"),
    };
    let metrics = prometheus.clone();
    let app = Router::new()
        .route("/quote", get(quote))
        .with_state(api)
        .layer(
            DeadlineLayer::new()
                .default_budget(Duration::from_millis(600))
                .max_budget(Duration::from_secs(2))
                .http(),
        )
        .layer(KeyedLimiterLayer::new(&per_client, keys).http())
        .route("/metrics", get(move || async move { metrics.render() }));
    let addr = serve(app).await;
    println!("API on http://{addr}: /quote (limited per x-api-key, else per IP), /metrics\n");

    // The load: 3 clients, 40 requests each, 25 ms apart; one sends no key.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in ["key-alice", "key-bob", ""] {
        let url = format!("http://{addr}/quote");
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seen = Vec::new();
            for _ in 0..40 {
                let mut req = http.get(&url).header(deadline::HEADER, "500");
                if !client.is_empty() {
                    req = req.header("x-api-key", client);
                }
                let t = Instant::now();
                let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                seen.push((status, t.elapsed()));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (
                if client.is_empty() {
                    "no key (by IP)"
                } else {
                    client
                },
                seen,
            )
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (client, seen) = task.await?;
        let mut by_status = BTreeMap::new();
        for (status, _) in &seen {
            *by_status.entry(*status).or_insert(0) += 1;
        }
        println!("{client:>16}: {by_status:?}  (status: count; 0 = no answer)");
        all.extend(seen.into_iter().map(|(_, t)| t));
    }
    println!(
        "  (429: our limiter; 503: the downstream's breaker open or its Retry-After running, \
         answered without calling it; 502: a 5xx after retries; 504: the deadline ran out)"
    );
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "latency: p50 {:?}, p99 {:?}, max {:?} (each request sent a 500 ms deadline)",
        pct(0.5),
        pct(0.99),
        all[all.len() - 1]
    );
    println!(
        "downstream called {} times in {:?}\n",
        calls.load(Ordering::SeqCst),
        started.elapsed()
    );

    println!("what the breakers did (one per downstream host):");
    while let Ok(event) = events.try_recv() {
        if let Event::BreakerTransition {
            name,
            from,
            to,
            reason,
        } = event
        {
            println!("  breaker `{name}`: {from} -> {to} ({})", reason.as_str());
        }
    }
    // the counters' per-thread tallies reach the recorder once a second
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let scrape = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    let lines: Vec<&str> = scrape
        .lines()
        .filter(|l| {
            [
                "palisade_rate_limit_total",
                "palisade_breaker_transitions_total",
                "palisade_retry_",
            ]
            .iter()
            .any(|series| l.starts_with(series))
        })
        .collect();
    println!("\n/metrics (excerpt):\n  {}", lines.join("\n  "));
    rt.shutdown().await;
    Ok(())
}
