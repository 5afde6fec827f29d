//! A real redis-server for the tests: started on a free 127.0.0.1 port without persistence,
//! stopped (and restarted on the same port) at will, killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One redis-server process (or none while stopped) on a fixed loopback port.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port. Panics, saying how to install it, when the
    /// `redis-server` binary is missing: the Redis tests are never skipped silently.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts a server with more arguments (cluster mode...).
    fn start_with(extra: Vec<String>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        let extra = extra
            .into_iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut server = Self {
            port,
            child: None,
            extra,
        };
        server.restart();
        server
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)); waits until
    /// it answers PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}). The Redis tests need a real server: \
                     install it with `apt-get install -y redis-server` (Debian/Ubuntu) or \
                     `brew install redis` (macOS)."
                )
            });
        self.child = Some(child);
        let started = Instant::now();
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer PING on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stalls the server (SIGSTOP): connections stay open, nothing answers. Only this
    /// test's own process is signalled.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let ok = Command::new("kill")
            .args([which, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {which} {} failed", child.id());
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one command and returns the first line of the reply (`+OK`, `:3`, `$5`...),
    /// `None` when the server does not answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(resp(args).as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }
}

impl RedisServer {
    /// Sends one command whose reply is a bulk string (INFO, CLUSTER INFO) and returns it
    /// (empty when the server does not answer).
    fn bulk(&self, args: &[&str]) -> String {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(resp(args).as_bytes());
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        let _ = reader.read_line(&mut header);
        let len: usize = header.trim_start_matches('$').trim().parse().unwrap_or(0);
        let mut body = vec![0; len];
        let _ = std::io::Read::read_exact(&mut reader, &mut body);
        String::from_utf8_lossy(&body).into_owned()
    }

    /// The `calls=` count of one command in `INFO commandstats` (0 when never called).
    pub fn calls(&self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{}:calls=", command.to_lowercase());
        self.bulk(&["INFO", "commandstats"])
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn cluster_ok(&self) -> bool {
        self.bulk(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
    }
}

/// One command in RESP.
fn resp(args: &[&str]) -> String {
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    request
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three primaries (no replicas) on free loopback ports, each node a
/// [`RedisServer`] with cluster mode on; stopped on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create` and waits until
    /// every node says `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("palisade-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes-{port}.conf".into(),
                    "--dir".into(),
                    dir.display().to_string(),
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port()));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (installed with redis-server)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let started = Instant::now();
        while !nodes.iter().all(|n| n.cluster_ok()) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the cluster did not reach cluster_state:ok within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { nodes, dir }
    }

    /// Seed URLs for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Keys held across the cluster.
    pub fn keys(&self) -> u64 {
        self.nodes
            .iter()
            .filter_map(|n| n.command(&["DBSIZE"]))
            .filter_map(|r| r.trim_start_matches(':').parse::<u64>().ok())
            .sum()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
