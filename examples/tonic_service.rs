//! The same layers under a tonic (gRPC) server: a rate limit and the callers' deadlines,
//! answered with gRPC statuses; a client whose channel sends its deadline as
//! `grpc-timeout`. Uses tonic-health's generated service and client (no protoc). Binds
//! 127.0.0.1 and ends in about a second.
//!
//! Run: `cargo run --example tonic_service`

use std::time::Duration;

use palisade::layer::{DeadlineLayer, GrpcResponder, Http, LimiterLayer, PropagateDeadlineLayer};
use palisade::{deadline, LimiterConfig, Quota, Runtime};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_layer::Layer;

fn check() -> tonic::Request<HealthCheckRequest> {
    tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::start().await?;
    let limiter = rt
        .limiter("grpc", LimiterConfig::gcra(Quota::per_second(4).burst(3)))
        .await?;

    // The server: gRPC answers for every rejection.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .layer(DeadlineLayer::new().answer(Http(GrpcResponder)))
            .layer(LimiterLayer::new(&limiter).answer(Http(GrpcResponder)))
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    println!("gRPC health service on {addr}: 4 checks a second, bursts of 3\n");

    // The client: its channel sends the task's deadline along.
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(
        PropagateDeadlineLayer::new()
            .answer(Http(GrpcResponder))
            .layer(channel),
    );

    for n in 1..=5 {
        match client.check(check()).await {
            Ok(r) => println!("check {n}: {:?}", r.into_inner().status()),
            Err(status) => {
                let pushback = status
                    .metadata()
                    .get("grpc-retry-pushback-ms")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                println!(
                    "check {n}: {:?} ({}); retry in {pushback} ms",
                    status.code(),
                    status.message()
                );
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let within = deadline::within(Duration::from_millis(250), client.check(check())).await;
    println!(
        "\nafter 300 ms, under a 250 ms deadline (sent as grpc-timeout): {:?}",
        within.map(|r| r.map(|r| r.into_inner().status()))
    );
    let spent = deadline::within(Duration::from_millis(5), async {
        std::thread::sleep(Duration::from_millis(10)); // the budget goes while we work
        client.check(check()).await
    })
    .await;
    match spent {
        Ok(Err(status)) => println!(
            "with the deadline spent: {:?}, and nothing was sent",
            status.code()
        ),
        other => println!("with the deadline spent: {other:?}"),
    }
    rt.shutdown().await;
    Ok(())
}
