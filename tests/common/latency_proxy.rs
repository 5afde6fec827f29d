//! A loopback TCP proxy that delays every byte it forwards, both ways, by a delay the test
//! changes while it runs: a slow network between palisade and a server. (`tc netem` would
//! be the usual tool; this VM's kernel has no queueing disciplines, and toxiproxy is not
//! packaged for Debian.)
//!
//! Each direction has a reader, which stamps every chunk with the time it is due, and a
//! writer, which sends it then: latency without a cap on throughput, in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The proxy; stops accepting when dropped.
pub struct LatencyProxy {
    port: u16,
    delay_micros: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl LatencyProxy {
    /// A proxy on a free 127.0.0.1 port in front of `127.0.0.1:target`, without delay.
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let delay_micros = Arc::new(AtomicU64::new(0));
        let delay = Arc::clone(&delay_micros);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(forward(in_read, out_write, Arc::clone(&delay)));
                tokio::spawn(forward(out_read, in_write, Arc::clone(&delay)));
            }
        });
        Self {
            port,
            delay_micros,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Every chunk read from now on is forwarded `delay` later (each way: a round trip
    /// takes twice as long).
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_micros.store(micros, Ordering::SeqCst);
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One direction: chunks stamped when read, written when due.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = Instant::now() + Duration::from_micros(delay.load(Ordering::SeqCst));
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
