//! The live dashboard in real headless Chromium (Debian's `chromium`; scripts/test installs
//! it): the page loads from the admin server on 127.0.0.1, shows every primitive with its
//! state, changes when a breaker is forced open through the API, throws no script error,
//! and is saved as a screenshot (target/dashboard.png).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palisade::admin::Admin;
use palisade::{BreakerConfig, BulkheadConfig, LimiterConfig, Quota, Runtime};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A headless Chromium this test started (killed, and its profile removed, on drop).
struct Chromium {
    child: Child,
    profile: PathBuf,
    port: u16,
}

impl Chromium {
    fn start() -> Self {
        let bin = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .expect("no chromium on PATH: apt-get install -y chromium (scripts/test installs it)");
        let profile =
            std::env::temp_dir().join(format!("palisade-chromium-{}", std::process::id()));
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1600,1000",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/<id>"
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    let port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("chromium printed its DevTools port within 30 s");
        Self {
            child,
            profile,
            port,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One page's DevTools session: commands by id, and the script errors it reported.
struct Page {
    ws: Socket,
    next: u64,
    errors: Vec<String>,
}

impl Page {
    async fn open(chromium: &Chromium) -> Self {
        let body = reqwest::get(format!("http://127.0.0.1:{}/json/list", chromium.port))
            .await
            .expect("targets")
            .bytes()
            .await
            .expect("targets body");
        let targets: Value = serde_json::from_slice(&body).expect("targets json");
        let ws_url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("devtools socket");
        let mut page = Self {
            ws,
            next: 0,
            errors: Vec::new(),
        };
        page.call("Runtime.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(msg)).await.expect("send");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("devtools answers within 30 s")
                .expect("socket open")
                .expect("message");
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("devtools json");
            if v["method"] == "Runtime.exceptionThrown" {
                self.errors
                    .push(v["params"]["exceptionDetails"].to_string());
            }
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it returns `want` (bounded at 20 s).
    async fn until(&mut self, expression: &str, want: Value) {
        let mut seen = Value::Null;
        for _ in 0..200 {
            seen = self.eval(expression).await;
            if seen == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{expression}` stayed {seen}, never {want}");
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    bytes
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &v)| n | (u32::from(v) << (18 - 6 * i)));
            let keep = c.len().saturating_sub(1);
            (0..keep).map(move |i| (n >> (16 - 8 * i)) as u8)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_primitive_and_follows_a_forced_open_breaker() {
    let rt = Runtime::start().await.expect("runtime");
    let db = rt
        .breaker(
            "payments-db",
            BreakerConfig::builder()
                .minimum_calls(4)
                .build()
                .expect("config"),
        )
        .await
        .expect("breaker");
    let api = rt
        .limiter(
            "public-api",
            LimiterConfig::gcra(Quota::per_second(50).burst(20)),
        )
        .await
        .expect("limiter");
    let users = rt
        .keyed_limiter::<String>(
            "per-user",
            LimiterConfig::gcra(Quota::per_second(5).burst(5)),
        )
        .await
        .expect("keyed");
    let pool = rt
        .bulkhead(
            "checkout-pool",
            BulkheadConfig::builder()
                .max_concurrent(8)
                .build()
                .expect("config"),
        )
        .await
        .expect("bulkhead");
    // some traffic, so the cards have numbers
    for i in 0..6 {
        let _ = db
            .execute(|| async move {
                if i == 0 {
                    Err("timeout")
                } else {
                    Ok(())
                }
            })
            .await;
    }
    for _ in 0..40 {
        let _ = api.check();
    }
    for u in 0..12 {
        let _ = users.check(&format!("user-{u}"));
    }
    let _held = (
        pool.try_acquire_owned().expect("permit"),
        pool.try_acquire_owned().expect("permit"),
    );

    let server = Admin::new(&rt)
        .token("t0k")
        .snapshot_every(Duration::from_millis(500))
        .address("127.0.0.1:0".parse().expect("addr"))
        .serve()
        .await
        .expect("admin");
    let base = format!("http://{}", server.local_addr());

    let chromium = Chromium::start();
    let mut page = Page::open(&chromium).await;
    page.call("Page.navigate", json!({ "url": format!("{base}/") }))
        .await;

    // every primitive, with its state
    page.until(
        r#"document.querySelector('.breaker[data-name="payments-db"]')?.dataset.state ?? null"#,
        json!("closed"),
    )
    .await;
    page.until(
        r#"!!document.querySelector('.limiter[data-name="public-api"]')"#,
        json!(true),
    )
    .await;
    page.until(r#"document.querySelector('[data-kind="keyed_limiter"][data-name="per-user"]')?.innerText.includes('12') ?? false"#, json!(true)).await;
    page.until(r#"document.querySelector('.bulkhead[data-name="checkout-pool"]')?.dataset.inFlight ?? null"#, json!("2")).await;
    page.until(
        r#"document.getElementById('conn').dataset.up"#,
        json!("true"),
    )
    .await;
    let text = page.eval("document.body.innerText").await;
    // (headings are uppercased by CSS; innerText shows them so)
    let text = text.as_str().unwrap_or_default().to_lowercase();
    for words in [
        "circuit breakers",
        "rate limiters",
        "bulkheads",
        "recent events",
        "failure rate",
        "allowed/s",
    ] {
        assert!(text.contains(words), "the page lacks {words:?}:\n{text}");
    }

    // forced open through the API: the page follows over the event stream
    let r = reqwest::Client::new()
        .post(format!("{base}/api/breakers/payments-db/state"))
        .header("authorization", "Bearer t0k")
        .header("content-type", "application/json")
        .body(r#"{"state":"force_open"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    page.until(
        r#"document.querySelector('.breaker[data-name="payments-db"]')?.dataset.state ?? null"#,
        json!("forced_open"),
    )
    .await;
    page.until(
        r#"!!document.querySelector('#feed li[data-type="breaker_transition"]')"#,
        json!(true),
    )
    .await;
    let colour = page
        .eval(r#"getComputedStyle(document.querySelector('.breaker[data-name="payments-db"] .pill')).backgroundColor"#)
        .await;
    assert_eq!(
        colour,
        json!("rgb(248, 81, 73)"),
        "a forced-open breaker is red"
    );

    let shot = page
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = decode_base64(shot["data"].as_str().expect("png data"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    std::fs::write(&out, &png).expect("save the screenshot");

    assert!(page.errors.is_empty(), "script errors: {:?}", page.errors);
    drop(chromium);
    server.stop().await;
    rt.shutdown().await;
}
