//! Per-user rate limits by plan: free users get 5 requests a second with a burst of 5, pro
//! users 50; memory stays bounded however many users show up.
//!
//! Run: `cargo run --example per_user_plans`

use std::time::Duration;

use palisade::{KeyedLimiterConfig, LimiterConfig, Quota, Runtime};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::start().await?;
    let config = KeyedLimiterConfig::new(LimiterConfig::sliding_window(5, Duration::from_secs(1)))
        .quota_per_key(|user: &String| match user.split(':').next() {
            Some("pro") => Quota::per_second(50),
            _ => Quota::per_second(5),
        })
        .max_keys(1_000);
    let api = rt.keyed_limiter("api-per-user", config).await?;

    for user in ["free:ann", "pro:bob"] {
        let key = user.to_string();
        let mut admitted = 0;
        let mut first_denial = None;
        for _ in 0..60 {
            match api.check(&key) {
                Ok(_) => admitted += 1,
                Err(d) if first_denial.is_none() => first_denial = Some(d.retry_after),
                Err(_) => {}
            }
        }
        println!(
            "{user}: {admitted} of 60 admitted; first denial said retry after {first_denial:?}"
        );
    }

    // Ten thousand one-off users: the limiter holds at most max_keys of them.
    for i in 0..10_000 {
        let _ = api.check(&format!("free:visitor-{i}"));
    }
    println!(
        "keys held after 10,000 one-off users: {} (cap 1,000)",
        api.len()
    );
    rt.shutdown().await;
    Ok(())
}
