//! The outbound middleware against real axum servers on 127.0.0.1: a breaker per
//! authority, `Retry-After` honoured, deadlines sent and respected, idempotent retries.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use palisade::breaker::KeyedBreakerConfig;
use palisade::client::Downstream;
use palisade::{deadline, Backoff, BreakerConfig, CallError, Runtime, SlidingWindow};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// A server answering with `script(call number)`: (status, Retry-After), echoing the
/// deadline header it received; it counts its calls.
async fn server(script: fn(u32) -> (u16, Option<&'static str>)) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let app = Router::new().route(
        "/",
        any(move |headers: HeaderMap| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let (status, retry_after) = script(n);
                let mut out = HeaderMap::new();
                if let Some(ra) = retry_after {
                    out.insert("retry-after", ra.parse().unwrap());
                }
                let seen = headers
                    .get(deadline::HEADER)
                    .map_or("none".to_owned(), |v| v.to_str().unwrap().to_owned());
                (StatusCode::from_u16(status).unwrap(), out, seen)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), calls)
}

fn client(downstream: Downstream) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(downstream)
        .build()
}

fn breakers(rt: &Runtime, name: &str) -> palisade::breaker::KeyedBreaker<String> {
    let config = BreakerConfig::builder()
        .sliding_window(SlidingWindow::Count(4))
        .minimum_calls(4)
        .wait_in_open(Duration::from_secs(600))
        .build()
        .unwrap();
    rt.keyed_breaker(name, KeyedBreakerConfig::new(config))
        .unwrap()
}

fn rejection(e: &reqwest_middleware::Error) -> &CallError<Infallible> {
    match e {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref().unwrap(),
        other => panic!("not a rejection: {other:?}"),
    }
}

#[tokio::test]
async fn one_bad_authority_opens_its_own_breaker_only() {
    let rt = Runtime::start().await.unwrap();
    let (bad, bad_calls) = server(|_| (500, None)).await;
    let (good, _) = server(|_| (200, None)).await;
    let keyed = breakers(&rt, "outbound");
    let http = client(Downstream::new(&keyed));
    for _ in 0..4 {
        assert_eq!(http.get(&bad).send().await.unwrap().status(), 500);
    }
    let e = http.get(&bad).send().await.unwrap_err();
    assert!(
        matches!(rejection(&e), CallError::CircuitOpen { .. }),
        "{e:?}"
    );
    assert_eq!(
        bad_calls.load(Ordering::SeqCst),
        4,
        "the rejected call was not sent"
    );
    for _ in 0..6 {
        assert_eq!(http.get(&good).send().await.unwrap().status(), 200);
    }
    assert_eq!(keyed.len(), 2);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_retry_after_fails_calls_fast_locally_and_is_not_a_health_failure() {
    let rt = Runtime::start().await.unwrap();
    let (busy, calls) = server(|_| (429, Some("30"))).await;
    let keyed = breakers(&rt, "outbound-ra");
    let http = client(Downstream::new(&keyed));
    assert_eq!(http.get(&busy).send().await.unwrap().status(), 429);
    let e = http.get(&busy).send().await.unwrap_err();
    match rejection(&e) {
        CallError::RateLimited { retry_after, .. } => {
            assert!(*retry_after > Duration::from_secs(29), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let states = keyed.states();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].1, palisade::BreakerState::Closed);
    rt.shutdown().await;
}

/// An HTTP-date 30 s ahead, made once (the scripted server hands out `&'static str`s).
static DATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[tokio::test]
async fn a_retry_after_given_as_an_http_date_is_honoured_too() {
    DATE.get_or_init(|| {
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30))
    });
    let rt = Runtime::start().await.unwrap();
    let (busy, calls) = server(|_| (503, DATE.get().map(String::as_str))).await;
    let keyed = breakers(&rt, "outbound-date");
    let http = client(Downstream::new(&keyed));
    assert_eq!(http.get(&busy).send().await.unwrap().status(), 503);
    let e = http.get(&busy).send().await.unwrap_err();
    let wait = rejection(&e).retry_after().expect("a wait");
    // the date has whole seconds: 29 to 30 s are left
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second call was not sent"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn the_deadline_goes_out_and_a_spent_one_sends_nothing() {
    let rt = Runtime::start().await.unwrap();
    let (echo, calls) = server(|_| (200, None)).await;
    let http = client(Downstream::new(&breakers(&rt, "outbound-dl")));
    let seen = deadline::within(Duration::from_millis(800), async {
        http.get(&echo).send().await.unwrap().text().await.unwrap()
    })
    .await
    .unwrap();
    let ms: u64 = seen.parse().unwrap();
    assert!(ms <= 800 && ms > 0, "{ms}");
    let outside = http.get(&echo).send().await.unwrap().text().await.unwrap();
    assert_eq!(outside, "none");

    let spent = deadline::within(Duration::from_millis(50), async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        // spend the rest without awaiting the deadline's own cut
        std::thread::sleep(Duration::from_millis(20));
        http.get(&echo).send().await
    })
    .await;
    let sent_before = calls.load(Ordering::SeqCst);
    match spent {
        Ok(Err(e)) => assert!(
            matches!(rejection(&e), CallError::DeadlineExceeded { .. }),
            "{e:?}"
        ),
        Err(_) => {} // the scope's own cut came first: nothing was sent either
        Ok(Ok(r)) => panic!("sent with a spent deadline: {}", r.status()),
    }
    assert_eq!(calls.load(Ordering::SeqCst), sent_before);
    assert_eq!(sent_before, 2);
    rt.shutdown().await;
}

#[tokio::test]
async fn idempotent_requests_are_retried_and_posts_are_not() {
    let rt = Runtime::start().await.unwrap();
    let (flaky, calls) = server(|n| if n % 3 == 0 { (200, None) } else { (502, None) }).await;
    let http = client(
        Downstream::new(&breakers(&rt, "outbound-retry"))
            .retry(3, Backoff::constant(Duration::from_millis(5))),
    );
    assert_eq!(http.get(&flaky).send().await.unwrap().status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        http.post(&flaky).body("x").send().await.unwrap().status(),
        502
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4, "a POST is sent once");
    rt.shutdown().await;
}

#[tokio::test]
async fn a_backoff_never_sleeps_past_the_deadline() {
    let rt = Runtime::start().await.unwrap();
    let (down, calls) = server(|_| (503, None)).await;
    let keyed = palisade::Runtime::keyed_breaker::<String>(
        &rt,
        "outbound-late",
        KeyedBreakerConfig::new(BreakerConfig::default()),
    )
    .unwrap();
    let http = client(Downstream::new(&keyed).retry(5, Backoff::constant(Duration::from_secs(2))));
    let started = Instant::now();
    let answer = deadline::within(Duration::from_millis(500), async {
        http.get(&down).send().await.unwrap().status()
    })
    .await
    .unwrap();
    assert_eq!(
        answer, 503,
        "the last answer, not a sleep into the deadline"
    );
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    rt.shutdown().await;
}
