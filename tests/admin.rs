//! The admin API over real HTTP on 127.0.0.1: health, readiness, the snapshot, breaker
//! state changes behind a bearer token, the SSE stream's framing and its `lagged` notice,
//! and the Prometheus scrape.

use std::net::SocketAddr;
use std::time::Duration;

use palisade::admin::{Admin, Serving};
use palisade::{BreakerConfig, BreakerState, Runtime};
use serde_json::Value;

const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

async fn serve(admin: Admin) -> (Serving, String) {
    let server = admin.address(LOCAL).serve().await.expect("serve");
    let base = format!("http://{}", server.local_addr());
    (server, base)
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("get");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).expect("json"))
}

async fn post_state(
    base: &str,
    breaker: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/breakers/{breaker}/state"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req.send().await.expect("post");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, r.text().await.expect("text"), challenge)
}

#[tokio::test]
async fn health_ready_and_the_snapshot() {
    let rt = Runtime::start().await.expect("runtime");
    let db = rt
        .breaker("adm-db", BreakerConfig::default())
        .await
        .expect("breaker");
    let (server, base) = serve(Admin::new(&rt).ready_unless_open(["adm-db"])).await;
    assert!(server.local_addr().ip().is_loopback());

    let (status, body) = get_json(&format!("{base}/health")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get_json(&format!("{base}/ready")).await;
    assert_eq!(
        (status, body["ready"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    db.force_open().await;
    let (status, body) = get_json(&format!("{base}/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["reasons"][0].as_str(),
        Some("breaker adm-db is forced_open")
    );
    db.reset().await;

    let (status, body) = get_json(&format!("{base}/api/snapshot")).await;
    assert_eq!(status, 200);
    let entry = body["primitives"]
        .as_array()
        .expect("primitives")
        .iter()
        .find(|p| p["name"] == "adm-db")
        .expect("the breaker is in the snapshot")
        .clone();
    assert_eq!(entry["status"]["kind"], "breaker");
    assert_eq!(entry["status"]["status"]["state"], "closed");
    assert_eq!(entry["config"]["config"]["failure_rate_threshold"], 50.0);
    assert_eq!(entry["degraded"], false);
    server.stop().await;
    rt.shutdown().await;
}

#[tokio::test]
async fn breaker_state_changes_need_the_token() {
    let rt = Runtime::start().await.expect("runtime");
    let db = rt
        .breaker("adm-auth", BreakerConfig::default())
        .await
        .expect("breaker");
    let (server, base) = serve(Admin::new(&rt).token("s3cret")).await;
    let open = r#"{"state": "force_open"}"#;

    let (status, body, challenge) = post_state(&base, "adm-auth", None, open).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    let (status, body, _) = post_state(&base, "adm-auth", Some("guess"), open).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        db.status().state,
        BreakerState::Closed,
        "a refused write changes nothing"
    );

    let (status, body, _) = post_state(&base, "adm-auth", Some("s3cret"), open).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(db.status().state, BreakerState::ForcedOpen);
    for (state, expected) in [
        ("disable", BreakerState::Disabled),
        ("metrics_only", BreakerState::MetricsOnly),
        ("close", BreakerState::Closed),
        ("force_open", BreakerState::ForcedOpen),
        ("reset", BreakerState::Closed),
    ] {
        let (status, body, _) = post_state(
            &base,
            "adm-auth",
            Some("s3cret"),
            &format!(r#"{{"state":"{state}"}}"#),
        )
        .await;
        assert_eq!(status, 200, "{state}: {body}");
        assert_eq!(db.status().state, expected, "{state}");
    }
    let (status, body, _) =
        post_state(&base, "adm-auth", Some("s3cret"), r#"{"state":"ajar"}"#).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("force_open, disable, metrics_only, reset, close"),
        "{body}"
    );
    let (status, body, _) = post_state(&base, "adm-auth", Some("s3cret"), "not json").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = post_state(&base, "nobody", Some("s3cret"), open).await;
    assert_eq!(status, 404);
    server.stop().await;
    rt.shutdown().await;
}

/// Reads the SSE body until `want` SSE events (blocks separated by a blank line) arrived
/// (bounded at 10 s), returning them as (event, data).
async fn sse_events(
    resp: &mut reqwest::Response,
    want: usize,
    buf: &mut String,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                out.push((event, data));
                if out.len() == want {
                    return;
                }
            }
            let chunk = resp
                .chunk()
                .await
                .expect("chunk")
                .expect("the stream stays open");
            buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    })
    .await
    .expect("SSE events within 10 s");
    out
}

#[tokio::test]
async fn the_event_stream_frames_events_and_snapshots_and_says_when_a_client_lagged() {
    let rt = Runtime::builder()
        .event_capacity(8)
        .start()
        .await
        .expect("runtime");
    let db = rt
        .breaker("adm-sse", BreakerConfig::default())
        .await
        .expect("breaker");
    let (server, base) = serve(Admin::new(&rt).snapshot_every(Duration::from_secs(3600))).await;
    let mut resp = reqwest::get(format!("{base}/api/events"))
        .await
        .expect("events");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("text/event-stream")
    );
    let mut buf = String::new();
    let first = sse_events(&mut resp, 1, &mut buf).await;
    assert_eq!(first[0].0, "snapshot", "a snapshot comes first");
    let snap: Value = serde_json::from_str(&first[0].1).expect("snapshot json");
    assert!(snap["primitives"].as_array().is_some_and(|p| !p.is_empty()));

    db.force_open().await;
    let next = sse_events(&mut resp, 1, &mut buf).await;
    let event: Value = serde_json::from_str(&next[0].1).expect("event json");
    assert_eq!(next[0].0, "event");
    assert_eq!(
        (
            event["type"].as_str(),
            event["name"].as_str(),
            event["to"].as_str()
        ),
        (
            Some("breaker_transition"),
            Some("adm-sse"),
            Some("forced_open")
        )
    );

    // 40 transitions while the server's task cannot run (this test's runtime has one
    // thread and the loop never yields): the bus holds 8, so this client lags
    for _ in 0..20 {
        db.reset().await;
        db.force_open().await;
    }
    let rest = sse_events(&mut resp, 2, &mut buf).await;
    let lagged = rest
        .iter()
        .find(|(e, _)| e == "lagged")
        .unwrap_or_else(|| panic!("a lagged notice, got {rest:?}"));
    let missed: Value = serde_json::from_str(&lagged.1).expect("lagged json");
    assert!(missed["missed"].as_u64().is_some_and(|n| n > 0), "{missed}");
    server.stop().await;
    rt.shutdown().await;
}

#[tokio::test]
async fn the_snapshot_never_shows_a_redis_password() {
    let rt = Runtime::start().await.expect("runtime");
    let backend = palisade::RedisBackend::new("redis://user:hunter2@127.0.0.1:1/")
        .timeout(Duration::from_millis(50));
    let config = palisade::LimiterConfig::gcra(palisade::Quota::per_second(10)).redis(backend);
    rt.limiter("adm-redis", config)
        .await
        .expect("a limiter on an unreachable Redis starts in its fail mode");
    let (server, base) = serve(Admin::new(&rt)).await;
    let text = reqwest::get(format!("{base}/api/snapshot"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(text.contains("adm-redis"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
    server.stop().await;
    rt.shutdown().await;
}

#[tokio::test]
async fn metrics_are_scraped_from_the_admin_port() {
    let handle = palisade::telemetry::prometheus::install_recorder()
        .expect("the only recorder of this binary");
    let rt = Runtime::start().await.expect("runtime");
    let db = rt
        .breaker("adm-metrics", BreakerConfig::default())
        .await
        .expect("breaker");
    let _ = db.execute(|| async { Ok::<_, ()>(()) }).await;
    let (server, base) = serve(Admin::new(&rt).prometheus(handle)).await;
    let r = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("text");
    assert!(
        text.lines().any(|l| l.starts_with("palisade_calls_total{")
            && l.contains("name=\"adm-metrics\"")
            && l.contains("outcome=\"success\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    server.stop().await;
    // without a handle the endpoint says what is missing
    let (server, base) = serve(Admin::new(&rt)).await;
    let r = reqwest::get(format!("{base}/metrics")).await.expect("get");
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.expect("text").contains("Admin::prometheus"));
    server.stop().await;
    rt.shutdown().await;
}
