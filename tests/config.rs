//! Config files: what a file spawns, the precise error each bad file gets, environment
//! overrides, all-or-nothing reloads that keep windows, and the file watcher.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palisade::config::ConfigFileError;
use palisade::{Event, Runtime, StartError};

/// A fresh directory under the system's temp dir, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// Writes `text` to `palisade.toml` in the directory (atomically: a rename, as editors
    /// save), returning the path.
    fn write(&self, text: &str) -> PathBuf {
        let path = self.0.join("palisade.toml");
        let tmp = self.0.join(".palisade.toml.tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An env prefix no other test uses (tests share the process environment).
fn prefix(test: &str) -> String {
    format!("PALISADE_TEST_{}_", test.to_uppercase())
}

async fn start(path: &PathBuf, test: &str) -> Result<Runtime, StartError> {
    Runtime::builder()
        .config_file(path)
        .config_env_prefix(&prefix(test))
        .start()
        .await
}

async fn refused(text: &str) -> ConfigFileError {
    let dir = Dir::new();
    let path = dir.write(text);
    match start(&path, "refused").await {
        Err(StartError::ConfigFile(e)) => e,
        Err(other) => panic!("expected a config file error for\n{text}\ngot {other}"),
        Ok(rt) => {
            rt.shutdown().await;
            panic!("accepted a bad file:\n{text}")
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_example_file_spawns_everything_it_declares() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../palisade.example.toml");
    let rt = start(&path, "example")
        .await
        .expect("the example file loads");
    let db = rt.get_breaker("db").expect("breaker db");
    assert_eq!(
        db.config().minimum_calls(),
        20,
        "the instance's key wins over its template"
    );
    assert_eq!(
        db.config().sliding_window(),
        palisade::SlidingWindow::Count(100),
        "the template's key fills what the instance leaves out"
    );
    assert_eq!(db.config().call_timing(), palisade::CallTiming::Coarse);
    for name in ["api", "uploads", "search"] {
        assert!(rt.get_limiter(name).is_some(), "limiter {name}");
    }
    assert!(rt.get_bulkhead("payments").is_some());
    assert!(rt.get_retry("standard").is_some());
    let per_user = rt
        .get_keyed_limiter::<String>("per_user")
        .expect("keyed limiter");
    // plans: premium keys get 50 at once, others the base burst of 10
    let premium = (0..60)
        .filter(|_| per_user.check(&"premium:7".to_owned()).is_ok())
        .count();
    let free = (0..60)
        .filter(|_| per_user.check(&"free:7".to_owned()).is_ok())
        .count();
    assert_eq!((premium, free), (50, 10));
    let checkout = rt.get_policy("checkout").expect("policy");
    let out = checkout
        .execute(|| async { Ok::<_, std::io::Error>(7) })
        .await;
    assert_eq!(out.ok(), Some(7));
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn each_bad_file_gets_one_precise_error() {
    // (file, key path in the error, words the problem must contain)
    let cases: &[(&str, &str, &str)] = &[
        (
            "[breaker.instances.db]\nwait_in_open = \"10 parsecs\"\n",
            "breaker.instances.db.wait_in_open",
            "unknown unit \"parsecs\"",
        ),
        (
            "[breaker.instances.db]\nwait_in_open = 10\n",
            "breaker.instances.db.wait_in_open",
            "expected a duration",
        ),
        (
            "[breaker.instances.db]\nwait_in_opn = \"10s\"\n",
            "breaker.instances.db.wait_in_opn",
            "unknown field",
        ),
        ("[breakr.instances.db]\n", "breakr", "unknown field"),
        (
            "[breaker.instances.db]\ncall_timing = \"fast\"\n",
            "breaker.instances.db.call_timing",
            "unknown variant: found `fast`, expected `one of `precise`, `coarse`, `untimed``",
        ),
        (
            "[breaker.instances.db]\ncall_timing = \"untimed\"\nslow_call_rate_threshold = 50.0\n",
            "breaker.instances.db.slow_call_rate_threshold",
            "needs timed calls, and call_timing is untimed",
        ),
        (
            "[breaker.instances.db]\nbase_config = \"strict\"\n",
            "breaker.instances.db.base_config",
            "unknown base_config \"strict\"",
        ),
        (
            "[limiter.instances.api]\nalgorithm = \"gcra\"\nrate = 0\n",
            "limiter.instances.api.rate",
            "0 refused",
        ),
        (
            "[limiter.instances.api]\nalgorithm = \"gcra\"\nrate = 10\nwindow = \"1s\"\n",
            "limiter.instances.api.window",
            "does not apply to gcra",
        ),
        (
            "[limiter.instances.api]\nalgorithm = \"lottery\"\nrate = 10\n",
            "limiter.instances.api.algorithm",
            "unknown variant",
        ),
        (
            "[limiter.instances.api]\nrate = 10\n",
            "limiter.instances.api.algorithm",
            "missing",
        ),
        (
            "[limiter.instances.x]\nalgorithm = \"gcra\"\nrate = 1\n[keyed_limiter.instances.x]\nalgorithm = \"gcra\"\nrate = 1\n",
            "keyed_limiter.instances.x",
            "duplicate name",
        ),
        (
            "[breaker.instances.db]\nfailure_rate_threshold = 150.0\n",
            "breaker.instances.db.failure_rate_threshold",
            "150",
        ),
        (
            "[breaker.instances.db]\nsliding_window_calls = 10\nsliding_window_time = \"10s\"\n",
            "breaker.instances.db.sliding_window_calls",
            "not both",
        ),
        (
            "[policy.instances.p]\nbreaker = \"nope\"\n",
            "policy.instances.p.breaker",
            "\"nope\" is not a breaker this file declares",
        ),
        (
            "[keyed_limiter.instances.k]\nalgorithm = \"gcra\"\nrate = 1\nplans = [{ keys = \"a*\", rate = 0 }]\n",
            "keyed_limiter.instances.k.plans[0].rate",
            "0 refused",
        ),
        (
            "[breaker.configs.base]\nbase_config = \"other\"\n",
            "breaker.configs.base.base_config",
            "only instances",
        ),
        ("[breaker.instances]\ndb = 5\n", "breaker.instances.db", "expected a table"),
    ];
    for (file, key, words) in cases {
        let e = refused(file).await;
        assert_eq!(&e.key, key, "for\n{file}\ngot: {e}");
        assert!(e.problem.contains(words), "for\n{file}\ngot: {e}");
        let shown = e.to_string();
        assert!(
            shown.contains("palisade.toml") && shown.contains(key),
            "{shown}"
        );
    }
    // a TOML syntax error, a duplicate key: the file, and TOML's own words
    let e = refused("[breaker.instances.db]\nminimum_calls = 1\nminimum_calls = 2\n").await;
    assert!(e.problem.contains("duplicate"), "{e}");
    // no file at all
    let e = match start(&PathBuf::from("/nonexistent/palisade.toml"), "missing").await {
        Err(StartError::ConfigFile(e)) => e,
        other => panic!("expected a config file error, got {:?}", other.map(|_| ())),
    };
    assert!(e.problem.contains("cannot read the file"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn environment_overrides_win_over_the_file() {
    let dir = Dir::new();
    let path = dir.write("[breaker.instances.env_db]\nwait_in_open = \"60s\"\nminimum_calls = 5\n");
    let p = prefix("env");
    std::env::set_var(format!("{p}BREAKER__INSTANCES__ENV_DB__WAIT_IN_OPEN"), "7s");
    let rt = start(&path, "env").await.expect("start");
    let config = rt.get_breaker("env_db").expect("db").config();
    assert!(
        format!("{config:?}").contains("wait_in_open: 7s"),
        "{config:?}"
    );
    assert_eq!(config.minimum_calls(), 5, "the file's other keys stay");
    rt.shutdown().await;
    // a bad override names the variable
    std::env::set_var(
        format!("{p}BREAKER__INSTANCES__ENV_DB__WAIT_IN_OPEN"),
        "soon",
    );
    let e = match start(&path, "env").await {
        Err(StartError::ConfigFile(e)) => e,
        other => panic!("expected a config file error, got {:?}", other.map(|_| ())),
    };
    std::env::remove_var(format!("{p}BREAKER__INSTANCES__ENV_DB__WAIT_IN_OPEN"));
    assert_eq!(e.key, "breaker.instances.env_db.wait_in_open", "{e}");
    let origin = e.origin.clone().unwrap_or_default();
    assert!(
        origin.contains(&format!("{p}BREAKER__INSTANCES__ENV_DB__WAIT_IN_OPEN")),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_applies_all_of_a_file_or_none_of_it_and_windows_survive() {
    let dir = Dir::new();
    let path = dir.write(
        "[breaker.instances.rl_db]\nsliding_window_calls = 10\nminimum_calls = 10\nfailure_rate_threshold = 50.0\n\
         [limiter.instances.rl_api]\nalgorithm = \"gcra\"\nrate = 5\nburst = 5\n",
    );
    let rt = start(&path, "reload").await.expect("start");
    let mut events = rt.subscribe();
    let db = rt.get_breaker("rl_db").expect("db");
    let api = rt.get_limiter("rl_api").expect("api");
    for _ in 0..4 {
        let _ = db.execute(|| async { Err::<(), _>("down") }).await;
    }
    for _ in 0..3 {
        api.check().expect("within the burst");
    }

    // half valid: the breaker change is fine, the new limiter is not: nothing changes
    dir.write(
        "[breaker.instances.rl_db]\nsliding_window_calls = 10\nminimum_calls = 10\nfailure_rate_threshold = 90.0\n\
         [limiter.instances.rl_api]\nalgorithm = \"gcra\"\nrate = 5\nburst = 5\n\
         [limiter.instances.rl_new]\nalgorithm = \"gcra\"\nrate = 0\n",
    );
    let e = rt
        .reload_config()
        .await
        .expect_err("the half-valid file is refused");
    assert_eq!(e.key, "limiter.instances.rl_new.rate");
    assert!(format!("{:?}", db.config()).contains("failure_rate_threshold: 50.0"));
    assert!(rt.get_limiter("rl_new").is_none());
    let rejected =
        common::next_matching(&mut events, |e| matches!(e, Event::ConfigRejected { .. })).await;
    let Event::ConfigRejected { error, .. } = rejected else {
        unreachable!()
    };
    assert!(error.contains("limiter.instances.rl_new.rate"), "{error}");

    // a whole valid edit: reconfigured in place, the window and the bucket kept
    dir.write(
        "[breaker.instances.rl_db]\nsliding_window_calls = 10\nminimum_calls = 10\nfailure_rate_threshold = 90.0\n\
         [limiter.instances.rl_api]\nalgorithm = \"gcra\"\nrate = 5\nburst = 6\n\
         [bulkhead.instances.rl_pool]\nmax_concurrent = 2\n",
    );
    let report = rt.reload_config().await.expect("applied");
    assert_eq!(report.changed, ["breaker.rl_db", "limiter.rl_api"]);
    assert_eq!(report.added, ["bulkhead.rl_pool"]);
    assert!(report.removed.is_empty());
    assert!(format!("{:?}", db.config()).contains("failure_rate_threshold: 90.0"));
    assert_eq!(
        db.metrics().failed,
        4,
        "the recorded window survived the reload"
    );
    // 3 of the burst were spent before; the new burst of 6 leaves 3
    let left = (0..10).filter(|_| api.check().is_ok()).count();
    assert_eq!(left, 3, "the bucket survived the reload");
    assert!(rt.get_bulkhead("rl_pool").is_some());
    let reloaded =
        common::next_matching(&mut events, |e| matches!(e, Event::ConfigReloaded { .. })).await;
    let Event::ConfigReloaded { changed, added, .. } = reloaded else {
        unreachable!()
    };
    assert_eq!((changed.len(), added.len()), (2, 1));

    // a removed instance is reported and keeps running
    dir.write("[breaker.instances.rl_db]\nsliding_window_calls = 10\nminimum_calls = 10\nfailure_rate_threshold = 90.0\n");
    let report = rt.reload_config().await.expect("applied");
    assert_eq!(report.removed, ["limiter.rl_api", "bulkhead.rl_pool"]);
    assert!(
        rt.get_limiter("rl_api").is_some(),
        "removed from the file, still running"
    );

    // what cannot change on a running instance refuses the reload
    dir.write("[breaker.instances.rl_db]\nsliding_window_calls = 20\n");
    let e = rt.reload_config().await.expect_err("a new window shape");
    assert_eq!(e.key, "breaker.instances.rl_db.sliding_window", "{e}");
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_name_spawned_in_code_is_not_taken_over_by_a_reload() {
    let dir = Dir::new();
    let path = dir.write("");
    let rt = start(&path, "taken").await.expect("start");
    rt.breaker("tk_db", palisade::BreakerConfig::default())
        .await
        .expect("spawned in code");
    dir.write("[breaker.instances.tk_db]\nminimum_calls = 3\n");
    let e = rt.reload_config().await.expect_err("taken");
    assert_eq!(e.key, "breaker.instances.tk_db");
    assert!(e.problem.contains("already runs"), "{e}");
    rt.shutdown().await;
}

/// The watcher sees an atomic rename in the file's directory and reloads (real time: the
/// OS reports the change; bounded at 20 s).
#[tokio::test]
async fn the_watcher_reloads_an_edited_file() {
    let dir = Dir::new();
    let path = dir.write("[bulkhead.instances.w_pool]\nmax_concurrent = 2\n");
    let rt = Runtime::builder()
        .config_file(&path)
        .config_env_prefix(&prefix("watch"))
        .watch_config(true)
        .start()
        .await
        .expect("start");
    let mut events = rt.subscribe();
    let pool = rt.get_bulkhead("w_pool").expect("pool");
    assert_eq!(pool.config().max_concurrent(), 2);
    // the watcher may need a moment before it sees events
    tokio::time::sleep(Duration::from_millis(300)).await;
    dir.write("[bulkhead.instances.w_pool]\nmax_concurrent = 5\n");
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(Event::ConfigReloaded { changed, .. }) = events.recv().await {
                return changed;
            }
        }
    })
    .await
    .expect("a reload within 20 s");
    assert_eq!(&*seen[0], "bulkhead.w_pool");
    assert_eq!(pool.config().max_concurrent(), 5);
    // a bad edit is rejected and changes nothing
    dir.write("[bulkhead.instances.w_pool]\nmax_concurrent = \"many\"\n");
    let error = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(Event::ConfigRejected { error, .. }) = events.recv().await {
                return error;
            }
        }
    })
    .await
    .expect("a rejection within 20 s");
    assert!(
        error.contains("bulkhead.instances.w_pool.max_concurrent"),
        "{error}"
    );
    assert_eq!(pool.config().max_concurrent(), 5);
    rt.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn removed_instances_are_left_running_and_taken_back_or_stopped_when_asked() {
    let dir = Dir::new();
    let both = "[breaker.instances.rm_a]\nminimum_calls = 5\n[bulkhead.instances.rm_b]\nmax_concurrent = 3\n";
    let path = dir.write(both);
    let rt = start(&path, "removed").await.expect("start");
    let kept = rt.get_bulkhead("rm_b").expect("rm_b");

    // report (the default): left running, then taken back when declared again
    dir.write("[breaker.instances.rm_a]\nminimum_calls = 5\n");
    let report = rt.reload_config().await.expect("applied");
    assert_eq!(report.removed, ["bulkhead.rm_b"]);
    assert!(rt.get_bulkhead("rm_b").is_some(), "left running");
    dir.write("[breaker.instances.rm_a]\nminimum_calls = 5\n[bulkhead.instances.rm_b]\nmax_concurrent = 4\n");
    let report = rt
        .reload_config()
        .await
        .expect("declared again: taken back, not refused");
    assert_eq!(report.added, ["bulkhead.rm_b"]);
    assert_eq!(
        kept.config().max_concurrent(),
        4,
        "the running one was reconfigured"
    );

    // stop: stopped and dropped; the name is free again
    dir.write("[reload]\nremoved = \"stop\"\n[breaker.instances.rm_a]\nminimum_calls = 5\n");
    let report = rt.reload_config().await.expect("applied");
    assert_eq!(report.removed, ["bulkhead.rm_b"]);
    assert!(
        rt.get_bulkhead("rm_b").is_none(),
        "dropped from the runtime"
    );
    assert!(rt
        .snapshot()
        .get(palisade::Kind::Bulkhead, "rm_b")
        .is_none());
    assert!(
        kept.try_acquire().is_ok(),
        "a handle still held answers from its state"
    );
    rt.bulkhead("rm_b", palisade::BulkheadConfig::default())
        .await
        .expect("the name is free again");
    // a bad [reload] value is refused like any other
    dir.write("[reload]\nremoved = \"vanish\"\n");
    let e = rt.reload_config().await.expect_err("unknown variant");
    assert_eq!(e.key, "reload.removed", "{e}");
    rt.shutdown().await;
}

/// Limiters declared on Redis (a real redis-server on loopback): two instances naming one
/// Redis `key` share one quota through the server, as two processes reading the file
/// would (one process cannot hold one name twice).
#[tokio::test]
async fn limits_declared_on_redis_share_one_quota_through_the_server() {
    let server = common::redis_server::RedisServer::start();
    let dir = Dir::new();
    let path = dir.write(&format!(
        "[limiter.configs.shared]\nalgorithm = \"gcra\"\nrate = 5\nper = \"1h\"\nburst = 5\n\
         redis = {{ url = \"{url}\", prefix = \"cfgtest\", key = \"api\", timeout = \"500ms\", on_failure = \"closed\" }}\n\
         [limiter.instances.redis_api_a]\nbase_config = \"shared\"\n\
         [limiter.instances.redis_api_b]\nbase_config = \"shared\"\n\
         [keyed_limiter.configs.users]\nalgorithm = \"gcra\"\nrate = 5\nper = \"1h\"\nburst = 5\n\
         redis = {{ url = \"{url}\", prefix = \"cfgtest\", key = \"users\", timeout = \"500ms\" }}\n\
         [keyed_limiter.instances.redis_users_a]\nbase_config = \"users\"\n\
         [keyed_limiter.instances.redis_users_b]\nbase_config = \"users\"\n",
        url = server.url()
    ));
    let rt = start(&path, "redis").await.expect("runtime");
    let (api_a, api_b) = (
        rt.get_limiter("redis_api_a").expect("api a"),
        rt.get_limiter("redis_api_b").expect("api b"),
    );
    assert!(api_a.status().remote, "the state lives in Redis");
    let mut admitted = 0;
    for i in 0..10 {
        let limiter = if i % 2 == 0 { &api_a } else { &api_b };
        if limiter.acquire(1).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "one quota of 5 for both");
    let (users_a, users_b) = (
        rt.get_keyed_limiter::<String>("redis_users_a")
            .expect("users a"),
        rt.get_keyed_limiter::<String>("redis_users_b")
            .expect("users b"),
    );
    let key = "user-1".to_owned();
    let mut admitted = 0;
    for i in 0..10 {
        let limiter = if i % 2 == 0 { &users_a } else { &users_b };
        if limiter.acquire(&key, 1).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "one quota per key for both");
    // a backend cannot change under a running limiter
    dir.write(&format!(
        "[limiter.instances.redis_api_a]\nalgorithm = \"gcra\"\nrate = 5\nper = \"1h\"\nburst = 5\n\
         redis = {{ url = \"{}\", prefix = \"other\", key = \"api\" }}\n",
        server.url()
    ));
    let e = rt.reload_config().await.expect_err("another backend");
    assert_eq!(e.key, "limiter.instances.redis_api_a.redis", "{e}");
    // and a bad backend entry names its key
    dir.write("[limiter.instances.x]\nalgorithm = \"gcra\"\nrate = 1\nredis = { url = \"redis://h/\", on_failure = \"local\" }\n");
    let e = rt
        .reload_config()
        .await
        .expect_err("local without a percent");
    assert_eq!(e.key, "limiter.instances.x.redis.local_percent", "{e}");
    rt.shutdown().await;
}
