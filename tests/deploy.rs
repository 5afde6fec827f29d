//! The deploy files: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`, Debian's prometheus package; scripts/test installs it), and every
//! series the rules and the Grafana dashboard query is one palisade writes, as a real
//! scrape shows.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy(""))
        .output()
        .expect("no promtool on PATH: apt-get install -y prometheus (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "prometheus-alerts.yml"]);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "prometheus-alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `palisade_*` name in `text`.
fn series_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("palisade_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn every_series_the_deploy_files_query_is_one_palisade_writes() {
    // the series palisade declares (src/telemetry/metrics.rs)
    let declared_src = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../src/telemetry/metrics.rs"),
    )
    .expect("metrics.rs");
    let declared: BTreeSet<String> = declared_src
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const"))
        .flat_map(series_in)
        .collect();
    assert!(declared.len() > 15, "{declared:?}");
    for file in ["grafana-dashboard.json", "prometheus-alerts.yml"] {
        let text = std::fs::read_to_string(deploy(file)).expect("deploy file");
        let used = series_in(&text);
        assert!(used.len() > 4, "{file} queries {used:?}");
        for name in &used {
            assert!(
                declared.contains(name),
                "{file} queries {name}, which palisade never writes"
            );
        }
    }

    // and a real scrape carries the core ones, with the labels the queries use
    let handle = palisade::telemetry::prometheus::install_recorder().expect("recorder");
    let rt = palisade::Runtime::start().await.expect("runtime");
    let db = rt
        .breaker("deploy-db", palisade::BreakerConfig::default())
        .await
        .expect("breaker");
    let api = rt
        .limiter(
            "deploy-api",
            palisade::LimiterConfig::gcra(palisade::Quota::per_second(1)),
        )
        .await
        .expect("limiter");
    let pool = rt
        .bulkhead("deploy-pool", palisade::BulkheadConfig::default())
        .await
        .expect("bulkhead");
    let _ = db.execute(|| async { Ok::<_, ()>(()) }).await;
    let _ = (api.check(), api.check());
    let _permit = pool.try_acquire().expect("permit");
    rt.shutdown().await; // flushes the limiter's tally
    let scrape = handle.render();
    for needle in [
        "palisade_breaker_state{name=\"deploy-db\"}",
        "palisade_calls_total{name=\"deploy-db\",outcome=\"success\"}",
        "palisade_call_duration_seconds_bucket{name=\"deploy-db\",le=\"0.5\"}",
        "palisade_rate_limit_total{name=\"deploy-api\",decision=\"denied\"}",
        "palisade_bulkhead_in_flight{name=\"deploy-pool\"}",
    ] {
        assert!(
            scrape.contains(needle),
            "the scrape lacks {needle}:\n{scrape}"
        );
    }
}
