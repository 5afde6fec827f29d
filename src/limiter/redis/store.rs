//! A limiter's state in Redis: strict (a script call per check) or leased (batches spent
//! locally), with the fail mode applied while Redis is down.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use metrics::Counter;
use redis::Script;

use super::batch::Batched;
use super::config::{RedisBackend, RedisMode};
use super::fallback::Fallback;
use super::lease::Lease;
use super::link::RedisLink;
use super::remote::{Ask, Remote};
use super::scripts::{self, Reply};
use crate::clock::{duration_nanos, Clock};
use crate::limiter::algorithm::Algorithm;
use crate::limiter::config::LimiterKind;
use crate::limiter::decision::Decision;
use crate::limiter::store::LocalStore;
use crate::telemetry::metrics as m;

/// How long a check that found the lease empty suggests waiting when Redis said nothing
/// more precise (a refill is on its way).
const LEASE_RETRY: u64 = 1_000_000;

/// The answer of an empty lease while its refill is on the way.
const REFILL_PENDING: Decision = Decision::Denied {
    retry_after: LEASE_RETRY,
    remaining: 0,
    reset_after: 0,
};

fn ask(algorithm: &Algorithm, partial: bool) -> Ask {
    let (period, capacity) = algorithm.parts();
    Ask {
        period_us: period as f64 / 1_000.0,
        capacity,
        partial,
    }
}

fn capacity_check(algorithm: &Algorithm, n: u32) -> Option<Decision> {
    let (_, capacity) = algorithm.parts();
    (n > capacity).then_some(Decision::ExceedsCapacity { cost: n, capacity })
}

fn decision(r: Reply) -> Decision {
    let us = |v: u64| v.saturating_mul(1_000);
    if r.granted > 0 {
        Decision::Allowed {
            remaining: r.remaining,
            reset_after: us(r.reset_after_us),
        }
    } else {
        Decision::Denied {
            retry_after: us(r.retry_after_us).max(1),
            remaining: r.remaining,
            reset_after: us(r.reset_after_us),
        }
    }
}

fn units(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A direct limiter's state in Redis.
#[derive(Debug)]
pub(crate) struct RedisStore {
    /// The key, its connection and the queue of strict checks.
    target: Arc<Batched>,
    lease: Option<Arc<Lease>>,
    /// The costs of the checks waiting on the next refill (summed; the refill takes them).
    need: Arc<AtomicU32>,
    fallback: Fallback,
    local: LocalStore,
    leases: Counter,
}

impl RedisStore {
    /// The state of the limiter `name` in Redis, reached through `link`.
    pub(crate) fn new(
        name: &Arc<str>,
        kind: &LimiterKind,
        backend: &RedisBackend,
        link: RedisLink,
    ) -> Self {
        let RedisLink { remote, fallback } = link;
        let key = backend.key.as_deref().unwrap_or(name);
        Self {
            target: Arc::new(Batched::new(
                remote,
                scripts::for_kind(kind),
                format!("{}:{key}", backend.prefix),
            )),
            lease: (backend.mode == RedisMode::Leased).then(|| {
                Arc::new(Lease::new(
                    duration_nanos(backend.lease_window),
                    duration_nanos(backend.lease_ttl),
                    // no refill runs longer than the backend's timeout
                    duration_nanos(backend.timeout).saturating_mul(2),
                ))
            }),
            need: Arc::new(AtomicU32::new(0)),
            fallback,
            local: LocalStore::default(),
            leases: metrics::counter!(m::LIMITER_LEASES, "name" => name.to_string()),
        }
    }

    fn fail(&self, algorithm: &Algorithm, now: u64, n: u32, retry_after: u64) -> Decision {
        self.fallback.decide(retry_after, |percent| {
            self.local.check_n(&algorithm.scaled(percent), now, n)
        })
    }

    /// A check that never waits: leased mode spends the lease; strict mode cannot answer.
    /// The `bool` asks the caller to start a refill.
    #[inline]
    pub(crate) fn check_now(&self, algorithm: &Algorithm, now: u64, n: u32) -> (Decision, bool) {
        if let Some(d) = capacity_check(algorithm, n) {
            return (d, false);
        }
        let Some(lease) = &self.lease else {
            return (Decision::NeedsAsync, false);
        };
        let (spent, refill) = self.spend(lease, algorithm, now, n);
        (spent.unwrap_or(REFILL_PENDING), refill)
    }

    /// Spends `n` units of the lease. `None` when the lease is empty and only the refill
    /// under way can tell (Redis is up and gave no retry hint); the `bool` asks the caller
    /// to start a refill.
    fn spend(
        &self,
        lease: &Lease,
        algorithm: &Algorithm,
        now: u64,
        n: u32,
    ) -> (Option<Decision>, bool) {
        let left = lease.spend(n, now);
        if left.is_none() {
            // every check waiting on the next refill adds its cost: the batch covers them all
            self.need.fetch_add(n, Ordering::Relaxed);
        }
        let refill = lease.claim_refill(left, now);
        (self.answer(lease, algorithm, now, n, left), refill)
    }

    /// What a spend says: admitted from the lease, the fail mode while Redis is down, a
    /// denial until the time Redis said a unit is free, or `None` (wait for the refill).
    fn answer(
        &self,
        lease: &Lease,
        algorithm: &Algorithm,
        now: u64,
        n: u32,
        left: Option<u64>,
    ) -> Option<Decision> {
        if let Some(left) = left {
            return Some(Decision::Allowed {
                remaining: units(left),
                reset_after: 0,
            });
        }
        if !self.target.remote.is_up() {
            return Some(self.fail(algorithm, now, n, LEASE_RETRY));
        }
        lease.retry_in(now).map(|retry_after| Decision::Denied {
            retry_after,
            remaining: 0,
            reset_after: 0,
        })
    }

    /// A check that may wait for Redis: a script call (strict), or the lease (leased).
    ///
    /// A caller that finds the lease dry and claims its refill runs it (it would wait for it
    /// anyway); one that only finds it low hands the refill to the actor with
    /// `start_refill`, or to a task of its own when no actor runs (degraded). A caller that
    /// finds a refill under way waits for it once, then takes it over if it is lost. So the
    /// lease keeps filling with the actor down.
    pub(crate) async fn check(
        &self,
        algorithm: &Algorithm,
        clock: &Clock,
        n: u32,
        start_refill: impl Fn() -> bool,
    ) -> Decision {
        if let Some(d) = capacity_check(algorithm, n) {
            return d;
        }
        let Some(lease) = &self.lease else {
            return match self.target.check(ask(algorithm, false), n).await {
                Ok(reply) => decision(reply),
                Err(retry) => self.fail(algorithm, clock.nanos(), n, duration_nanos(retry)),
            };
        };
        let (spent, refill) = self.spend(lease, algorithm, clock.nanos(), n);
        if let Some(d) = spent {
            if refill && !start_refill() {
                self.refill_in_background(algorithm, clock);
            }
            return d;
        }
        if refill {
            self.refill(algorithm, clock).await;
        }
        // Wait for the lease to hold `n`, at most twice the backend's timeout: each turn
        // spends if it can, runs the next refill if nobody else does (a refill may grant
        // less than every waiter needs; a claim may be lost), or waits for the one under
        // way. Listening comes before looking, so a refill that lands in between is seen.
        let until = tokio::time::Instant::now() + self.target.remote.timeout() * 2;
        loop {
            let landed = lease.next_refill();
            tokio::pin!(landed);
            landed.as_mut().enable();
            let now = clock.nanos();
            let left = lease.spend(n, now);
            if left.is_some() || !self.target.remote.is_up() || lease.retry_in(now).is_some() {
                // admitted, or the fail mode, or Redis said when a unit is free
                return self
                    .answer(lease, algorithm, now, n, left)
                    .unwrap_or(REFILL_PENDING);
            }
            if lease.claim_refill(None, now) {
                self.need.fetch_add(n, Ordering::Relaxed);
                self.refill(algorithm, clock).await;
            } else if tokio::time::timeout_at(until, landed).await.is_err() {
                break;
            }
            if tokio::time::Instant::now() >= until {
                break;
            }
        }
        let now = clock.nanos();
        let left = lease.spend(n, now);
        self.answer(lease, algorithm, now, n, left)
            .unwrap_or(REFILL_PENDING)
    }

    /// Takes the next batch from Redis into the lease; the caller holds the refill claim.
    pub(crate) async fn refill(&self, algorithm: &Algorithm, clock: &Clock) {
        if let Some(refill) = self.refill_task(*algorithm, clock.clone()) {
            refill.await;
        }
    }

    /// Runs a claimed refill on a task of its own (no actor can take it): a check that
    /// never waits cannot run it itself. Outside a tokio runtime the claim is given back.
    pub(crate) fn refill_in_background(&self, algorithm: &Algorithm, clock: &Clock) {
        match (
            tokio::runtime::Handle::try_current(),
            self.refill_task(*algorithm, clock.clone()),
        ) {
            (Ok(runtime), Some(refill)) => {
                runtime.spawn(refill);
            }
            _ => self.release_refill(),
        }
    }

    /// A refill as a future that owns what it needs (so it can run on a task of its own).
    fn refill_task(
        &self,
        algorithm: Algorithm,
        clock: Clock,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let lease = Arc::clone(self.lease.as_ref()?);
        let target = Arc::clone(&self.target);
        let need = Arc::clone(&self.need);
        let leases = self.leases.clone();
        Some(async move {
            let claim = lease.hold_refill();
            let now = clock.nanos();
            let (_, capacity) = algorithm.parts();
            let need = need.swap(0, Ordering::Relaxed);
            let batch = lease.batch(now, algorithm.rate_per_ns(), need, (capacity / 4).max(1));
            let reply = target
                .remote
                .run_one(target.script(), &target.key, ask(&algorithm, true), batch)
                .await
                .ok();
            if reply.is_some_and(|r| r.granted > 0) {
                leases.increment(1);
            }
            claim.refilled(now, reply);
        })
    }

    /// Makes the connection (at spawn; see [`Remote::connect`]).
    pub(crate) async fn connect(&self) {
        self.target.remote.connect().await;
    }

    /// Units this instance can spend without a round trip: its lease (leased mode);
    /// `None` in strict mode (only Redis knows).
    pub(crate) fn local_units(&self, now: u64) -> Option<u64> {
        self.lease.as_ref().map(|lease| lease.units_at(now))
    }

    /// Gives back a refill claim nobody can run now.
    pub(crate) fn release_refill(&self) {
        if let Some(lease) = &self.lease {
            lease.release_refill();
        }
    }

    /// Back to a full quota: drops the lease and the local fallback state, and deletes the
    /// key in Redis (in the background: this never waits).
    pub(crate) fn reset(&self) {
        if let Some(lease) = &self.lease {
            lease.clear();
        }
        self.local.reset();
        let target = &self.target;
        target.remote.delete_in_background(target.key.clone());
    }
}

/// A keyed limiter's state in Redis: one key per limiter key, strict mode.
pub(crate) struct KeyedRemote<K> {
    remote: Remote,
    script: &'static Script,
    prefix: String,
    encode: super::KeyEncoder<K>,
    fallback: Fallback,
    /// The local share in fail mode `Local`, for the keyed table that stands in.
    pub(crate) local_share: Option<u32>,
}

impl<K> std::fmt::Debug for KeyedRemote<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRemote")
            .field("prefix", &self.prefix)
            .field("remote", &self.remote)
            .finish()
    }
}

impl<K> KeyedRemote<K> {
    pub(crate) fn new(
        name: &Arc<str>,
        kind: &LimiterKind,
        backend: &RedisBackend,
        encode: super::KeyEncoder<K>,
        link: RedisLink,
    ) -> Self {
        let RedisLink { remote, fallback } = link;
        let key = backend.key.as_deref().unwrap_or(name);
        Self {
            remote,
            script: scripts::for_kind(kind),
            prefix: format!("{}:{key}:", backend.prefix),
            encode,
            local_share: match backend.on_failure {
                super::FailMode::Local { percent } => Some(percent),
                _ => None,
            },
            fallback,
        }
    }

    fn key_of(&self, key: &K) -> String {
        format!("{}{}", self.prefix, (self.encode)(key))
    }

    /// One script call for `key`; `local` checks the stand-in table while Redis is down.
    pub(crate) async fn check(
        &self,
        key: &K,
        algorithm: &Algorithm,
        n: u32,
        local: impl FnOnce() -> Decision,
    ) -> Decision {
        if let Some(d) = capacity_check(algorithm, n) {
            return d;
        }
        match self
            .remote
            .run_one(self.script, &self.key_of(key), ask(algorithm, false), n)
            .await
        {
            Ok(reply) => decision(reply),
            Err(retry) => self.fallback.decide(duration_nanos(retry), |_| local()),
        }
    }

    /// Makes the connection (at spawn; see [`Remote::connect`]).
    pub(crate) async fn connect(&self) {
        self.remote.connect().await;
    }

    /// Deletes `key`'s state in Redis (in the background).
    pub(crate) fn reset(&self, key: &K) {
        self.remote.delete_in_background(self.key_of(key));
    }
}
