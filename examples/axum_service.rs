//! palisade in a real service: an axum API limited per API key (else per peer IP), under a
//! deadline read from its callers, calling a flaky downstream (500s, hangs, one 429 with
//! `Retry-After`) through a breaker, a retry and a per-attempt timeout that send the
//! remaining deadline downstream; `/metrics` for Prometheus; then a bounded load run that
//! prints what clients saw. Everything binds 127.0.0.1 and ends in a few seconds.
//!
//! Run: `cargo run --example axum_service`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::routing::get;
use axum::Router;
use palisade::layer::{DeadlineLayer, HeaderKey, KeyExtractor, KeyedLimiterLayer, PeerIp};
use palisade::{
    deadline, Backoff, BreakerConfig, CallError, Event, KeyedLimiterConfig, LimiterConfig, Policy,
    Quota, Retry, Runtime, SlidingWindow,
};

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

/// The flaky downstream: every 4th call a 500, every 7th hangs for 2 s, the 10th a 429
/// with `Retry-After: 1`; it answers with the deadline it was sent.
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
    if n == 10 {
        out.insert("retry-after", "1".parse().expect("a header value"));
        return (StatusCode::TOO_MANY_REQUESTS, out, sent);
    }
    if n % 7 == 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if n % 4 == 0 {
        return (StatusCode::INTERNAL_SERVER_ERROR, out, sent);
    }
    (
        StatusCode::OK,
        out,
        format!("quote 42 (downstream saw {sent} ms left)"),
    )
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    downstream: String,
    policy: Policy,
}

/// The API's handler: one downstream call through the policy, the deadline going out.
async fn quote(State(api): State<Api>) -> (StatusCode, String) {
    let result = api
        .policy
        .execute(|| {
            let (http, url) = (api.http.clone(), api.downstream.clone());
            async move {
                let mut req = http.get(url);
                if let Some(left) = deadline::header_value() {
                    req = req.header(deadline::HEADER, left);
                }
                let response = req.send().await.map_err(|e| e.to_string())?;
                match response.status().as_u16() {
                    500..=599 | 429 => Err(format!("downstream answered {}", response.status())),
                    _ => response.text().await.map_err(|e| e.to_string()),
                }
            }
        })
        .await;
    match result {
        Ok(body) => (StatusCode::OK, body),
        Err(CallError::CircuitOpen { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "breaker open".into())
        }
        Err(CallError::DeadlineExceeded { .. } | CallError::Timeout { .. }) => {
            (StatusCode::GATEWAY_TIMEOUT, "out of time".into())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
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

    let breaker = rt
        .breaker(
            "downstream",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(8))
                .minimum_calls(4)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_millis(300))
                .build()?,
        )
        .await?;
    let policy = Policy::new()
        .retry(
            Retry::builder()
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(20)))
                .build()?,
        )
        .breaker(&breaker)
        .timeout(Duration::from_millis(250));
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
        http: reqwest::Client::new(),
        downstream: format!("http://{down}/"),
        policy,
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

    // The load: 3 clients, 40 requests each, 10 ms apart; one sends no key.
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
                tokio::time::sleep(Duration::from_millis(10)).await;
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

    println!("what the breaker did:");
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
