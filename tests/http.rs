//! The tower layers under a real axum server on 127.0.0.1, called by a real reqwest client:
//! statuses, headers, keys, breaker outcomes from responses, permits, deadlines. Real time,
//! with quotas and waits far from anything the test's own duration could reach.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use http::{HeaderName, StatusCode};
use palisade::layer::{
    BreakerLayer, BulkheadLayer, DeadlineLayer, HeaderKey, Http, HttpResponder, KeyExtractor,
    KeyedLimiterLayer, LimiterLayer, MissingKey, PeerIp, RespondWith,
};
use palisade::{
    BreakerConfig, BreakerState, BulkheadConfig, CallError, KeyedLimiterConfig, LimiterConfig,
    Quota, Runtime, SlidingWindow,
};
use tower_layer::Layer;
use tower_service::Service;

/// Serves `app` on a free loopback port (with the peer address for `PeerIp`).
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A handler that counts its calls.
fn counted(calls: &Arc<AtomicU32>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().route(
        "/",
        get(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    )
}

#[tokio::test]
async fn a_rate_limited_request_is_a_429_with_retry_after_and_ratelimit_fields() {
    let rt = Runtime::start().await.unwrap();
    let api = rt
        .limiter("api", LimiterConfig::gcra(Quota::per_hour(2)))
        .await
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let url = serve(counted(&calls).layer(LimiterLayer::new(&api).http())).await;
    let http = client();

    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        Some("\"api\";q=2;w=3600")
    );
    assert_eq!(header(&first, "ratelimit"), Some("\"api\";r=1;t=1800"));
    assert_eq!(header(&first, "retry-after"), None);
    assert_eq!(
        header(&first, "x-ratelimit-limit"),
        None,
        "the legacy trio is opt-in"
    );
    let second = http.get(&url).send().await.unwrap();
    assert_eq!(header(&second, "ratelimit"), Some("\"api\";r=0;t=3600"));

    let denied = http.get(&url).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    // half an hour until the next unit, less the milliseconds this took: rounded up
    assert_eq!(header(&denied, "retry-after"), Some("1800"));
    assert_eq!(header(&denied, "ratelimit"), Some("\"api\";r=0;t=3600"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the rejected request never ran"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn problem_json_and_the_legacy_headers_are_opt_in() {
    let rt = Runtime::start().await.unwrap();
    let api = rt
        .limiter(
            "api-pj",
            LimiterConfig::fixed_window(1, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let responder = HttpResponder::new().problem_json(true).legacy_headers(true);
    let app = counted(&Arc::default()).layer(LimiterLayer::new(&api).answer(Http(responder)));
    let url = serve(app).await;
    let http = client();
    let ok = http.get(&url).send().await.unwrap();
    assert_eq!(header(&ok, "x-ratelimit-limit"), Some("1"));
    assert_eq!(header(&ok, "x-ratelimit-remaining"), Some("0"));
    let denied = http.get(&url).send().await.unwrap();
    assert_eq!(denied.status(), 429);
    assert_eq!(
        header(&denied, "content-type"),
        Some("application/problem+json")
    );
    let retry: u64 = header(&denied, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = serde_json::from_str(&denied.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    assert_eq!(body["retry_after"], retry);
    assert!(
        body["detail"].as_str().unwrap().contains("api-pj"),
        "{body}"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn keys_isolate_clients_fall_back_to_the_peer_ip_and_follow_plans() {
    let rt = Runtime::start().await.unwrap();
    let per_client = rt
        .keyed_limiter(
            "clients",
            KeyedLimiterConfig::new(LimiterConfig::gcra(Quota::per_hour(1))).quota_per_key(
                |k: &palisade::layer::Either<String, std::net::IpAddr>| match k {
                    palisade::layer::Either::Left(key) if key.starts_with("paid-") => {
                        Quota::per_hour(3)
                    }
                    _ => Quota::per_hour(1),
                },
            ),
        )
        .await
        .unwrap();
    let keys =
        KeyExtractor::<Request>::or(HeaderKey::new(HeaderName::from_static("x-api-key")), PeerIp);
    let app = counted(&Arc::default()).layer(KeyedLimiterLayer::new(&per_client, keys).http());
    let url = serve(app).await;
    let http = client();
    let send = |key: Option<&str>| {
        let mut req = http.get(&url);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        async move { req.send().await.unwrap() }
    };

    assert_eq!(send(Some("free-a")).await.status(), 200);
    assert_eq!(send(Some("free-a")).await.status(), 429);
    assert_eq!(
        send(Some("free-b")).await.status(),
        200,
        "another key, its own quota"
    );
    // no key: the peer IP (127.0.0.1) is the key, with its own quota
    let by_ip = send(None).await;
    assert_eq!(by_ip.status(), 200);
    assert_eq!(send(None).await.status(), 429);
    // the paid plan's quota, through the layer
    for _ in 0..3 {
        let r = send(Some("paid-1")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "ratelimit-policy"),
            Some("\"clients\";q=3;w=3600")
        );
    }
    assert_eq!(send(Some("paid-1")).await.status(), 429);
    assert_eq!(per_client.len(), 4);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_with_the_chosen_status_or_bypasses() {
    let rt = Runtime::start().await.unwrap();
    let per_key = rt
        .keyed_limiter::<String>("keys", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .unwrap();
    let api_key = HeaderKey::new(HeaderName::from_static("x-api-key"));
    let calls = Arc::new(AtomicU32::new(0));
    let refusing = KeyedLimiterLayer::new(&per_key, api_key.clone()).answer(Http(
        HttpResponder::new().missing_key_status(StatusCode::UNAUTHORIZED),
    ));
    let url = serve(counted(&calls).layer(refusing)).await;
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // a header too long to be a key is no key
    let long = "k".repeat(300);
    let r = client()
        .get(&url)
        .header("x-api-key", long)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let bypassing = KeyedLimiterLayer::new(&per_key, api_key)
        .http()
        .missing_key(MissingKey::Bypass);
    let url = serve(counted(&calls).layer(bypassing)).await;
    for _ in 0..3 {
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(per_key.len(), 0);
    rt.shutdown().await;
}

/// A downstream whose status the test sets.
fn with_status(status: &Arc<AtomicU32>) -> Router {
    let status = Arc::clone(status);
    Router::new().route(
        "/",
        get(move || {
            let code = StatusCode::from_u16(status.load(Ordering::SeqCst) as u16).unwrap();
            async move {
                let mut r = http::Response::new(Body::from("x"));
                *r.status_mut() = code;
                if code == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut().insert("retry-after", "5".parse().unwrap());
                }
                r
            }
        }),
    )
}

#[tokio::test]
async fn five_hundreds_open_the_breaker_four_hundreds_and_throttling_do_not() {
    let rt = Runtime::start().await.unwrap();
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(4))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(600))
        .build()
        .unwrap();
    let db = rt.breaker("downstream", config).await.unwrap();
    let status = Arc::new(AtomicU32::new(404));
    let url = serve(with_status(&status).layer(BreakerLayer::new(&db).http())).await;
    let http = client();

    for _ in 0..8 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    }
    status.store(429, Ordering::SeqCst);
    for _ in 0..4 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 429);
    }
    status.store(503, Ordering::SeqCst); // with Retry-After: throttled, not counted
    for _ in 0..4 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 503);
    }
    assert_eq!(db.state(), BreakerState::Closed, "{:?}", db.status());
    assert_eq!(db.status().failed, 0);

    status.store(500, Ordering::SeqCst);
    for _ in 0..2 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 500);
    }
    assert_eq!(
        db.state(),
        BreakerState::Open,
        "2 failures in the last 4 calls"
    );
    let rejected = http.get(&url).send().await.unwrap();
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry: u64 = header(&rejected, "retry-after").unwrap().parse().unwrap();
    assert!((599..=600).contains(&retry), "{retry}");
    rt.shutdown().await;
}

#[tokio::test]
async fn a_full_bulkhead_is_a_503_and_a_dropped_request_gives_its_permit_back() {
    let rt = Runtime::start().await.unwrap();
    let pool = rt
        .bulkhead(
            "workers",
            BulkheadConfig::builder().max_concurrent(1).build().unwrap(),
        )
        .await
        .unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let (r2, e2) = (Arc::clone(&release), Arc::clone(&entered));
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (release, entered) = (Arc::clone(&r2), Arc::clone(&e2));
                async move {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        )
        .layer(BulkheadLayer::new(&pool).http().until_body_end());
    let url = serve(app).await;
    let http = client();

    let held = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().status() }
    });
    entered.notified().await;
    assert_eq!(pool.status().in_flight, 1);
    let full = http.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    release.notify_one();
    assert_eq!(held.await.unwrap(), 200);

    // a client that gives up mid-request: the server drops the request's future, and the
    // permit comes back
    let abandoned = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await }
    });
    entered.notified().await;
    assert_eq!(pool.status().in_flight, 1);
    abandoned.abort();
    let _ = abandoned.await;
    let mut waited = Duration::ZERO;
    while pool.status().in_flight != 0 {
        assert!(
            waited < Duration::from_secs(10),
            "the permit never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(pool.status().available, 1);
    rt.shutdown().await;
}

/// A handler that answers with the deadline it sees, in milliseconds ("none" without one).
fn deadline_echo(calls: &Arc<AtomicU32>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().route(
        "/",
        get(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                match palisade::deadline::remaining() {
                    Some(left) => left.as_millis().to_string(),
                    None => "none".to_owned(),
                }
            }
        }),
    )
}

#[tokio::test]
async fn the_callers_deadline_bounds_the_handler_and_garbage_is_ignored() {
    let calls = Arc::new(AtomicU32::new(0));
    let layer = DeadlineLayer::new()
        .max_budget(Duration::from_secs(5))
        .http();
    let url = serve(deadline_echo(&calls).layer(layer)).await;
    let http = client();
    let get = |name: &'static str, value: String| {
        let req = http.get(&url).header(name, value);
        async move { req.send().await.unwrap() }
    };

    let seen =
        |r: reqwest::Response| async move { r.text().await.unwrap().parse::<u64>().unwrap() };
    let ms = seen(get("x-deadline-remaining", "800".into()).await).await;
    assert!(ms <= 800 && ms > 0, "{ms}");
    let ms = seen(get("grpc-timeout", "300m".into()).await).await;
    assert!(ms <= 300 && ms > 0, "{ms}");
    // more than the server allows: capped
    let ms = seen(get("x-deadline-remaining", "60000".into()).await).await;
    assert!(ms <= 5000, "{ms}");
    // garbage never fails a request: as if absent
    for bad in ["-5", "12abc", "99999999999999999999999999", "", "1.5"] {
        let r = get("x-deadline-remaining", bad.into()).await;
        assert_eq!(r.status(), 200, "{bad}");
        assert_eq!(r.text().await.unwrap(), "none", "{bad}");
    }
    let r = get("grpc-timeout", "99999999999H".into()).await;
    assert_eq!(r.text().await.unwrap(), "none");
    // bytes that are not ASCII (obs-text), and a huge value: ignored too
    let r = http
        .get(&url)
        .header(
            "x-deadline-remaining",
            http::HeaderValue::from_bytes(b"5\xff0").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap().as_str()),
        (200, "none")
    );
    let r = get("x-deadline-remaining", "9".repeat(4000)).await;
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap().as_str()),
        (200, "none")
    );
    let before = calls.load(Ordering::SeqCst);
    // a spent budget never reaches the handler
    let spent = get("x-deadline-remaining", "0".into()).await;
    assert_eq!(spent.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(calls.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_deadline_that_runs_out_in_the_handler_is_a_504() {
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .layer(DeadlineLayer::new().http());
    let url = serve(app).await;
    let started = std::time::Instant::now();
    let r = client()
        .get(&url)
        .header("x-deadline-remaining", "100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hook_builds_its_own_response() {
    let rt = Runtime::start().await.unwrap();
    let api = rt
        .limiter("hooked", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .unwrap();
    let hook = RespondWith(|rejected: &palisade::layer::Rejected| {
        let mut r = http::Response::new(Body::from(format!("slow down: {}", rejected.error)));
        *r.status_mut() = StatusCode::IM_A_TEAPOT;
        HttpResponder::new().write_headers(rejected, r.headers_mut());
        r
    });
    let url =
        serve(counted(&Arc::default()).layer(LimiterLayer::new(&api).answer(Http(hook)))).await;
    let http = client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(header(&r, "retry-after"), Some("3600"));
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("slow down: rate limiter `hooked`"));
    rt.shutdown().await;
}

/// A plain (non-HTTP) tower service.
#[derive(Clone)]
struct Doubler;

impl Service<u32> for Doubler {
    type Response = u32;
    type Error = String;
    type Future = std::future::Ready<Result<u32, String>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), String>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        std::future::ready(if n == 0 {
            Err("zero".into())
        } else {
            Ok(n * 2)
        })
    }
}

#[tokio::test]
async fn non_http_services_get_typed_errors() {
    let rt = Runtime::start().await.unwrap();
    let api = rt
        .limiter("typed", LimiterConfig::gcra(Quota::per_hour(2)))
        .await
        .unwrap();
    let db = rt
        .breaker(
            "typed-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(2))
                .minimum_calls(2)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut svc = LimiterLayer::new(&api).layer(Doubler);
    assert_eq!(svc.call(21).await.unwrap(), 42);
    assert!(matches!(svc.call(0).await, Err(CallError::Inner(e)) if e == "zero"));
    assert!(matches!(
        svc.call(1).await,
        Err(CallError::RateLimited { .. })
    ));

    let mut guarded = BreakerLayer::new(&db).layer(Doubler);
    let _ = guarded.call(0).await;
    let _ = guarded.call(0).await;
    let open = guarded.call(1).await.unwrap_err();
    assert!(matches!(open, CallError::CircuitOpen { .. }), "{open:?}");
    let _: Result<(), Infallible> = Ok(());
    rt.shutdown().await;
}

/// A service over replayable HTTP requests that answers with the statuses it is given, in
/// order (then 200s), counting its calls.
#[derive(Clone)]
struct Scripted {
    statuses: Arc<std::sync::Mutex<Vec<u16>>>,
    calls: Arc<AtomicU32>,
}

impl Service<http::Request<String>> for Scripted {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<http::Response<String>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut statuses = self.statuses.lock().unwrap();
        let status = if statuses.is_empty() {
            200
        } else {
            statuses.remove(0)
        };
        let mut r = http::Response::new(String::new());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        std::future::ready(Ok(r))
    }
}

#[tokio::test(start_paused = true)]
async fn a_policy_layer_retries_5xx_counts_them_and_answers_rejections_in_http() {
    use palisade::layer::PolicyLayer;
    use palisade::policy::{Backoff, Retry};
    let rt = Runtime::start().await.unwrap();
    let db = rt
        .breaker(
            "policy-db",
            BreakerConfig::builder()
                .sliding_window(SlidingWindow::Count(10))
                .minimum_calls(10)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let api = rt
        .limiter("policy-api", LimiterConfig::gcra(Quota::per_hour(3)))
        .await
        .unwrap();
    let policy = palisade::Policy::new()
        .retry(
            Retry::builder()
                .max_attempts(3)
                .backoff(Backoff::constant(Duration::from_millis(10)))
                .build()
                .unwrap(),
        )
        .breaker(&db)
        .limiter(&api);
    let scripted = Scripted {
        statuses: Arc::new(std::sync::Mutex::new(vec![500, 502])),
        calls: Arc::default(),
    };
    let mut svc = PolicyLayer::new(policy).http().layer(scripted.clone());

    let ok = svc.call(http::Request::new(String::new())).await.unwrap();
    assert_eq!(
        ok.status(),
        200,
        "two 5xx retried, the third attempt answered"
    );
    assert_eq!(scripted.calls.load(Ordering::SeqCst), 3);
    assert_eq!(db.status().failed, 2, "{:?}", db.status());
    // the limiter's 3 units are spent by the 3 attempts: the next request is a 429
    let limited = svc.call(http::Request::new(String::new())).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        scripted.calls.load(Ordering::SeqCst),
        3,
        "never reached the service"
    );
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_policy_layers_last_failed_response_reaches_the_caller() {
    use palisade::layer::PolicyLayer;
    use palisade::policy::{Backoff, Retry};
    let policy = palisade::Policy::new().retry(
        Retry::builder()
            .max_attempts(2)
            .backoff(Backoff::constant(Duration::from_millis(1)))
            .build()
            .unwrap(),
    );
    let scripted = Scripted {
        statuses: Arc::new(std::sync::Mutex::new(vec![503, 500, 500])),
        calls: Arc::default(),
    };
    let mut svc = PolicyLayer::new(policy).http().layer(scripted.clone());
    let last = svc.call(http::Request::new(String::new())).await.unwrap();
    assert_eq!(last.status(), 500);
    assert_eq!(scripted.calls.load(Ordering::SeqCst), 2);

    // typed: a plain service's errors retried, then CallError::Inner
    let policy = palisade::Policy::new().retry(
        Retry::builder()
            .max_attempts(3)
            .backoff(Backoff::constant(Duration::from_millis(1)))
            .build()
            .unwrap(),
    );
    let mut typed = PolicyLayer::new(policy).layer(Doubler);
    assert_eq!(typed.call(4).await.unwrap(), 8);
    assert!(matches!(typed.call(0).await, Err(CallError::Inner(e)) if e == "zero"));
}

/// A streamed body: a chunk for each value sent, the end when the sender is dropped.
struct Gate(tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for Gate {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn until_body_end_holds_the_permit_while_the_body_streams() {
    let rt = Runtime::start().await.unwrap();
    let pool = rt
        .bulkhead(
            "streams",
            BulkheadConfig::builder().max_concurrent(1).build().unwrap(),
        )
        .await
        .unwrap();
    let sender = Arc::new(std::sync::Mutex::new(None));
    let slot = Arc::clone(&sender);
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                *slot.lock().unwrap() = Some(tx);
                async move { http::Response::new(Body::new(Gate(rx))) }
            }),
        )
        .layer(BulkheadLayer::new(&pool).http().until_body_end());
    let url = serve(app).await;
    let http = client();

    let mut streaming = http.get(&url).send().await.unwrap();
    assert_eq!(streaming.status(), 200);
    assert_eq!(
        pool.status().in_flight,
        1,
        "the response is out, its body is not"
    );
    let full = http.get(&url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);

    let tx = sender.lock().unwrap().take().unwrap();
    tx.send(bytes::Bytes::from_static(b"part 1")).await.unwrap();
    assert_eq!(&streaming.chunk().await.unwrap().unwrap()[..], b"part 1");
    assert_eq!(pool.status().in_flight, 1, "still streaming");
    drop(tx);
    assert!(streaming.chunk().await.unwrap().is_none());
    let mut waited = Duration::ZERO;
    while pool.status().in_flight != 0 {
        assert!(
            waited < Duration::from_secs(10),
            "the permit never came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    rt.shutdown().await;
}

#[tokio::test]
async fn in_backpressure_mode_a_full_bulkhead_makes_requests_wait_not_fail() {
    let rt = Runtime::start().await.unwrap();
    let pool = rt
        .bulkhead(
            "queued",
            BulkheadConfig::builder()
                .max_concurrent(1)
                .max_wait(Duration::from_secs(10))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(AtomicU32::new(0));
    let (r2, e2) = (Arc::clone(&release), Arc::clone(&entered));
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (release, entered) = (Arc::clone(&r2), Arc::clone(&e2));
                async move {
                    if entered.fetch_add(1, Ordering::SeqCst) == 0 {
                        release.notified().await;
                    }
                    "done"
                }
            }),
        )
        .layer(BulkheadLayer::new(&pool).http().backpressure(true));
    let url = serve(app).await;
    let http = client();
    let first = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().status() }
    });
    while entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let second = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        entered.load(Ordering::SeqCst),
        1,
        "the second waits for the permit"
    );
    assert!(!second.is_finished());
    release.notify_one();
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(second.await.unwrap(), 200, "it waited, then ran");
    assert_eq!(entered.load(Ordering::SeqCst), 2);
    rt.shutdown().await;
}
