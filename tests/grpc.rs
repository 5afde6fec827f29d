//! The tower layers under a real tonic server on 127.0.0.1, called by tonic-health's
//! generated client: rejections arrive as gRPC statuses.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade::layer::{
    BreakerLayer, DeadlineLayer, GrpcResponder, Http, LimiterLayer, PropagateDeadlineLayer,
};
use palisade::{BreakerConfig, LimiterConfig, Quota, Runtime};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Serves the health service behind `layer` on a free loopback port; a channel to it.
async fn serve<L>(layer: L) -> Channel
where
    L: tower_layer::Layer<tonic::service::Routes> + Clone + Send + 'static,
    L::Service: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower_service::Service<http::Request<tonic::body::Body>>>::Future:
        Send + 'static,
{
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn check() -> tonic::Request<HealthCheckRequest> {
    tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    })
}

#[tokio::test]
async fn a_rate_limited_call_is_resource_exhausted_with_a_pushback() {
    let rt = Runtime::start().await.unwrap();
    let api = rt
        .limiter("grpc-api", LimiterConfig::gcra(Quota::per_hour(1)))
        .await
        .unwrap();
    let mut client =
        HealthClient::new(serve(LimiterLayer::new(&api).answer(Http(GrpcResponder))).await);
    client.check(check()).await.unwrap();
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("grpc-api"), "{status:?}");
    let pushback: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pushback > 3_590_000 && pushback <= 3_600_000, "{pushback}");
    rt.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_is_unavailable() {
    let rt = Runtime::start().await.unwrap();
    let db = rt
        .breaker("grpc-db", BreakerConfig::default())
        .await
        .unwrap();
    let mut client =
        HealthClient::new(serve(BreakerLayer::new(&db).http().answer(Http(GrpcResponder))).await);
    client.check(check()).await.unwrap();
    db.force_open().await;
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    rt.shutdown().await;
}

#[tokio::test]
async fn a_spent_deadline_is_deadline_exceeded_and_grpc_timeout_is_read() {
    let mut client =
        HealthClient::new(serve(DeadlineLayer::new().answer(Http(GrpcResponder))).await);
    let mut spent = check();
    spent
        .metadata_mut()
        .insert("x-deadline-remaining", "0".parse().unwrap());
    let status = client.check(spent).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // tonic's own timeout goes out as grpc-timeout; a live one lets the call through
    let mut timed = check();
    timed.set_timeout(Duration::from_secs(5));
    client.check(timed).await.unwrap();
    // an overflowing grpc-timeout is ignored, never a panic
    let mut garbage = check();
    garbage
        .metadata_mut()
        .insert("grpc-timeout", "999999999999H".parse().unwrap());
    client.check(garbage).await.unwrap();
}

/// The deadline headers each request arrived with (`x-deadline-remaining`, `grpc-timeout`).
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// Records the deadline headers of every request it passes on.
#[derive(Clone)]
struct Recorder<S> {
    inner: S,
    seen: Seen,
}

impl<S, B> tower_service::Service<http::Request<B>> for Recorder<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        let get = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let seen = (get("x-deadline-remaining"), get("grpc-timeout"));
        self.seen.lock().unwrap().push(seen);
        self.inner.call(req)
    }
}

#[derive(Clone)]
struct RecordLayer(Seen);

impl<S> tower_layer::Layer<S> for RecordLayer {
    type Service = Recorder<S>;

    fn layer(&self, inner: S) -> Recorder<S> {
        Recorder {
            inner,
            seen: Arc::clone(&self.0),
        }
    }
}

#[tokio::test]
async fn a_tonic_client_sends_its_deadline_and_a_spent_one_sends_nothing() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let channel = tower_layer::Layer::layer(
        &PropagateDeadlineLayer::new().answer(Http(GrpcResponder)),
        serve(RecordLayer(Arc::clone(&seen))).await,
    );
    let mut client = HealthClient::new(channel);

    // outside a deadline scope: untouched
    client.check(check()).await.unwrap();
    // inside one: both headers, never more than is left; a longer grpc-timeout is lowered
    let mut long = check();
    long.set_timeout(Duration::from_secs(30));
    palisade::deadline::within(Duration::from_millis(800), client.check(long))
        .await
        .unwrap()
        .unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], (None, None), "{seen:?}");
        let ms: u64 = seen[1].0.as_deref().unwrap().parse().unwrap();
        assert!(ms <= 800 && ms > 0, "{seen:?}");
        let grpc = palisade::deadline::parse_grpc_timeout(seen[1].1.as_deref().unwrap()).unwrap();
        assert!(grpc <= Duration::from_millis(801), "{seen:?}");
    }
    // a spent deadline: DEADLINE_EXCEEDED, and nothing reached the server
    let spent = palisade::deadline::within(Duration::from_millis(20), async {
        std::thread::sleep(Duration::from_millis(30));
        client.check(check()).await
    })
    .await;
    match spent {
        Ok(Err(status)) => assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}"),
        Err(_) => {} // the scope's own cut came first: nothing sent either
        Ok(Ok(_)) => panic!("a call went out with a spent deadline"),
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}
