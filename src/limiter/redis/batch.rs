//! Strict mode's way to one Redis key: checks that arrive while a call is in flight queue
//! up and go together in the next call (up to [`MAX_BATCH`]), each still decided on its
//! own, in arrival order, by the atomic script. One caller costs one round trip as before;
//! many concurrent callers cost one round trip and one script run per batch instead of one
//! each, so the limit stays exact while Redis's single thread stops being the bottleneck.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use tokio::sync::oneshot;

use super::remote::{Ask, Remote};
use super::scripts::Reply;

/// The most checks one script call carries.
pub(crate) const MAX_BATCH: usize = 256;

type Answer = Result<Reply, Duration>;

struct Waiting {
    cost: u32,
    ask: Ask,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// A flush task runs (or is about to): it will take what is queued.
    flushing: bool,
}

/// One Redis key of a strict limiter, with its queue of checks.
pub(crate) struct Batched {
    pub(crate) remote: Remote,
    script: &'static Script,
    pub(crate) key: String,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Batched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("key", &self.key)
            .field("remote", &self.remote)
            .finish()
    }
}

impl Batched {
    pub(crate) fn new(remote: Remote, script: &'static Script, key: String) -> Self {
        Self {
            remote,
            script,
            key,
            queue: Mutex::default(),
        }
    }

    /// The script this key runs.
    pub(crate) fn script(&self) -> &'static Script {
        self.script
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides one check of `cost` in Redis, in the next call to go.
    pub(crate) async fn check(self: &Arc<Self>, ask: Ask, cost: u32) -> Answer {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut q = self.queue();
            q.waiting.push(Waiting { cost, ask, answer });
            !std::mem::replace(&mut q.flushing, true)
        };
        if start {
            let me = Arc::clone(self);
            // The flush runs as its own task, so a caller that gives up cannot strand the
            // others queued behind it.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(async move { me.flush().await })),
                Err(_) => me.flush().await,
            }
        }
        answered.await.unwrap_or(Err(self.remote.timeout()))
    }

    /// Sends what is queued, batch after batch, until the queue is empty.
    async fn flush(&self) {
        let mut guard = FlushGuard {
            batched: self,
            done: false,
        };
        loop {
            let batch: Vec<Waiting> = {
                let mut q = self.queue();
                if q.waiting.is_empty() {
                    q.flushing = false;
                    guard.done = true;
                    return;
                }
                let n = q.waiting.len().min(MAX_BATCH);
                q.waiting.drain(..n).collect()
            };
            // the newest parameters (a reconfiguration applies from the next batch)
            let ask = batch[batch.len() - 1].ask;
            let costs: Vec<u32> = batch.iter().map(|w| w.cost).collect();
            match self.remote.run(self.script, &self.key, ask, &costs).await {
                Ok(replies) => {
                    for (w, reply) in batch.into_iter().zip(replies) {
                        let _ = w.answer.send(Ok(reply));
                    }
                }
                Err(retry) => {
                    for w in batch {
                        let _ = w.answer.send(Err(retry));
                    }
                }
            }
        }
    }
}

/// A flush that ends early (its task dropped at runtime shutdown) answers everyone queued
/// with "down" and lets the next check start a new flush.
struct FlushGuard<'a> {
    batched: &'a Batched,
    done: bool,
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let retry = self.batched.remote.timeout();
        let mut q = self.batched.queue();
        q.flushing = false;
        for w in q.waiting.drain(..) {
            let _ = w.answer.send(Err(retry));
        }
    }
}
