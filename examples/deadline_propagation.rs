//! A deadline crossing a service boundary: the front end gives a request 300 ms, spends
//! some, and sends what is left as `x-deadline-remaining`; the back end opens a scope from
//! the header, so its own retries stop when the caller's time is up.
//!
//! Run: `cargo run --example deadline_propagation`

use std::time::Duration;

use palisade::{deadline, Backoff, CallError, Retry};

/// The back end: reads the header, retries a failing store within the caller's budget.
async fn backend(header: &str) -> Result<&'static str, String> {
    let budget = deadline::parse_header(header).map_err(|e| e.to_string())?;
    println!(
        "  backend  | got {}={header}: {budget:?} left",
        deadline::HEADER
    );
    let retry = Retry::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(Duration::from_millis(60)))
        .build()
        .map_err(|e| e.to_string())?;
    let result = deadline::within(budget, async {
        retry
            .execute(|| async {
                println!(
                    "  backend  | store attempt, {:?} left",
                    deadline::remaining().unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<&str, _>("store unavailable")
            })
            .await
    })
    .await;
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(CallError::Inner(e))) => Err(format!("gave up within the budget: {e}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() {
    let answer = deadline::within(Duration::from_millis(300), async {
        println!("  frontend | request received with a 300 ms budget");
        tokio::time::sleep(Duration::from_millis(80)).await; // authentication, parsing...
        let header = deadline::header_value().expect("inside a deadline");
        println!(
            "  frontend | calling the back end with {}: {header}",
            deadline::HEADER
        );
        backend(&header).await
    })
    .await;
    println!("  frontend | answer: {answer:?}");
    println!(
        "  grpc     | the same budget as grpc-timeout: {}",
        deadline::grpc_timeout(Duration::from_millis(220))
    );
}
