//! A keyed limiter's shared state: a quota per key in a sharded table, with bounded memory.
//!
//! Keys are hashed once (foldhash's seeded `quality` hasher, so untrusted keys cannot aim at one shard) and
//! the hash picks both the shard and the slot. The table holds at most `max_keys` keys (one
//! count for all shards, so never one more). Only idle keys are ever dropped (back at a full
//! quota, so they carry nothing): the actor sweeps them every `idle_sweep`, and a new key
//! arriving at the cap first clears the idle keys of its shard (at most once a millisecond
//! per shard, so a flood of new keys cannot make every check walk a shard).
//!
//! A key that holds state is never dropped: dropping it would hand it a fresh quota, and
//! anyone could escape a per-key limit by touching enough new keys in between. So when every
//! held key holds state, new keys are decided on one **overflow** quota they all share (the
//! base config's), until idle keys make room. Counted in `palisade_limiter_overflow_total`.

use std::hash::{BuildHasher, Hash};

use foldhash::quality::RandomState;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam::utils::CachePadded;
use hashbrown::HashTable;
use metrics::{Counter, Gauge};

use super::algorithm::{Algorithm, Cell};
use super::backend::Backend;
use super::config::{KeyedLimiterConfig, LimiterConfig};
use super::decision::{Allowed, Decision, Denied};
use super::gcra::Gcra;
use super::params::Params;
use super::report::Reporter;
use super::LimiterCommand;
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::supervisor::child::ActorSlot;
use crate::telemetry::{metrics as m, Telemetry};

/// Shards: enough that 2 threads on different keys rarely meet.
const SHARDS: usize = 64;

/// A key of a GCRA-family limiter on the shared parameters: its TAT alone, 16 bytes for a
/// `u64` key, as governor's. Most keys of most limiters are these; memory per key and the
/// cache lines a check touches among 10^6 keys follow the entry's size (40 bytes made a
/// check 1.13-1.18x governor's at 10^6 keys, benches/limiter_rounds.rs).
struct Lean<K> {
    key: K,
    tat: u64,
}

/// Any other key's state: a window's (tag and counts), or a key a resolver gave its own
/// parameters; 40 bytes for a `u64` key. (Hashes are recomputed only when a shard grows.)
struct Entry<K> {
    key: K,
    cell: Cell,
    /// The key's own parameters (interval or window; 0: the base config's)...
    a: u64,
    /// ...and burst or limit.
    b: u32,
}

/// A lean entry's TAT as the cell the algorithms take.
#[inline(always)]
fn lean_cell(tat: u64) -> Cell {
    Cell { a: tat, b: 0 }
}

/// A coarse time stamp: nanoseconds / 2^20 (about 1.05 ms), wrapping after about 52 days.
fn stamp(now: u64) -> u32 {
    (now >> 20) as u32
}

/// One shard: its keys, and when a new key at the cap last cleared its idle keys.
struct Shard<K> {
    /// Keys on the shared parameters of a GCRA-family limiter.
    lean: HashTable<Lean<K>>,
    /// Every other key (each key lives in exactly one of the two).
    full: HashTable<Entry<K>>,
    /// [`stamp`] + 1 of the last clearing (0: never).
    cleared: u32,
}

/// Everything a keyed check reads and writes.
pub(crate) struct KeyedShared<K> {
    pub(crate) report: Reporter,
    shards: Box<[CachePadded<Mutex<Shard<K>>>]>,
    hasher: RandomState,
    max_keys: usize,
    len: AtomicUsize,
    /// The quota new keys share while every held key holds state.
    overflow: CachePadded<Mutex<Cell>>,
    /// When the next idle sweep is due (clock nanoseconds; only the actor touches it).
    next_sweep: AtomicU64,
    config: RwLock<KeyedLimiterConfig<K>>,
    /// The algorithm for keys without a resolver, as configured.
    base: RwLock<Algorithm>,
    /// The family every key runs (fixed for the limiter's life).
    family: Algorithm,
    /// The family is GCRA's (a TAT is the whole state): keys on the shared parameters sit
    /// in the shards' lean tables.
    lean: bool,
    /// The parameters table entries without their own run: the base's, or its local
    /// share while the table stands in for a remote backend.
    table: Params,
    pub(crate) clock: Clock,
    pub(crate) slot: ActorSlot<LimiterCommand>,
    keys_gauge: Gauge,
    evicted_idle: Counter,
    overflowed: Counter,
    /// Where the quotas live when not here (feature `redis`); the table then stands in
    /// while the backend is down (fail mode `Local`).
    #[cfg(feature = "redis")]
    remote: Option<super::redis::KeyedRemote<K>>,
}

impl<K> std::fmt::Debug for KeyedShared<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedShared")
            .field("name", &self.report.name)
            .field("keys", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedShared<K> {
    /// The keyed limiter `name`, its quotas kept in `backend` (which the runtime built
    /// from `config`).
    pub(crate) fn new(
        name: Arc<str>,
        config: KeyedLimiterConfig<K>,
        telemetry: Telemetry,
        backend: Backend,
    ) -> Result<Self, ConfigError> {
        let base = config.checked()?;
        #[cfg(feature = "redis")]
        let remote = match (backend, &config.base.redis, &config.redis_key) {
            (Backend::Redis(link), Some(redis), Some(encode)) => {
                Some(super::redis::KeyedRemote::new(
                    &name,
                    &config.base.kind,
                    redis,
                    Arc::clone(encode),
                    link,
                ))
            }
            _ => None,
        };
        #[cfg(not(feature = "redis"))]
        let Backend::Local = backend;
        let label = [("name", name.to_string())];
        let shared = Self {
            shards: (0..SHARDS)
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        lean: HashTable::new(),
                        full: HashTable::new(),
                        cleared: 0,
                    }))
                })
                .collect(),
            hasher: RandomState::default(),
            max_keys: config.max_keys as usize,
            len: AtomicUsize::new(0),
            overflow: CachePadded::new(Mutex::new(Cell::default())),
            next_sweep: AtomicU64::new(0),
            keys_gauge: metrics::gauge!(m::LIMITER_KEYS, &label),
            evicted_idle: metrics::counter!(m::LIMITER_EVICTIONS, "name" => name.to_string(), "reason" => "idle"),
            overflowed: metrics::counter!(m::LIMITER_OVERFLOW, &label),
            report: Reporter::new(name, telemetry, config.base.shadow),
            base: RwLock::new(base),
            family: base,
            lean: matches!(base, Algorithm::Gcra(_)),
            table: Params::new((0, 0)),
            config: RwLock::new(config),
            clock: Clock::new(),
            slot: ActorSlot::default(),
            #[cfg(feature = "redis")]
            remote,
        };
        shared.set_table(base);
        Ok(shared)
    }

    /// Sets the parameters of table entries that follow the base config.
    fn set_table(&self, base: Algorithm) {
        self.table.store(self.local(base).parts());
    }

    /// The algorithm an entry runs.
    #[inline]
    fn algorithm_of(&self, e: &Entry<K>) -> Algorithm {
        let family = &self.family;
        if e.a == 0 {
            let (a, b) = self.table.load();
            family.with_parts(a, b)
        } else {
            family.with_parts(e.a, e.b)
        }
    }

    /// The algorithm a key runs in the table: the configured one, or its local share while
    /// the table stands in for a remote backend.
    fn local(&self, algorithm: Algorithm) -> Algorithm {
        #[cfg(feature = "redis")]
        if let Some(percent) = self.remote.as_ref().and_then(|r| r.local_share) {
            return algorithm.scaled(percent);
        }
        algorithm
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<K>> {
        // High bits pick the shard; hashbrown uses the low bits for the slot.
        &self.shards[((hash >> 40) as usize) % SHARDS]
    }

    /// The quota and window `key` runs under (see `Algorithm::advertised`): its resolved
    /// quota, or the base one.
    #[cfg(feature = "tower")]
    pub(crate) fn advertised(&self, key: &K) -> (u32, std::time::Duration) {
        match self.resolved(key) {
            Some(Ok(algorithm)) => algorithm.advertised(),
            _ => self
                .base
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .advertised(),
        }
    }

    /// The quota a resolver gives `key`; `None` when there is no resolver (the key follows
    /// the base config).
    fn resolved(&self, key: &K) -> Option<Result<Algorithm, ConfigError>> {
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        let resolve = config.resolver.as_ref()?;
        Some(config.base.with_quota(resolve(key)?).algorithm())
    }

    /// A check that never waits.
    pub(crate) fn check_n(&self, key: &K, n: u32) -> Result<Allowed, Denied> {
        #[cfg(feature = "redis")]
        if self.remote.is_some() {
            return self.report.account(Decision::NeedsAsync);
        }
        self.report.account(self.check_table(key, n))
    }

    /// A check that may wait for a remote backend (the same as `check_n` on local state).
    pub(crate) async fn acquire_n(&self, key: &K, n: u32) -> Result<Allowed, Denied> {
        #[cfg(feature = "redis")]
        if let Some(remote) = &self.remote {
            let decision = match self.resolved(key) {
                None => {
                    let base = *self.base.read().unwrap_or_else(|p| p.into_inner());
                    remote
                        .check(key, &base, n, || self.check_table(key, n))
                        .await
                }
                Some(Ok(own)) => {
                    remote
                        .check(key, &own, n, || self.check_table(key, n))
                        .await
                }
                Some(Err(e)) => Decision::InvalidQuota { field: e.field },
            };
            return self.report.account(decision);
        }
        self.report.account(self.check_table(key, n))
    }

    /// A check against the in-process table.
    fn check_table(&self, key: &K, n: u32) -> Decision {
        let hash = self.hasher.hash_one(key);
        // A window's time is read under the shard's lock: read before it, a thread
        // preempted in between would decide at a time older than the key's state and write
        // a state for a past window, which the next caller reads as a fresh window
        // (over-admission). A TAT never goes back (`max(tat, now) + cost`), so an older
        // time only makes a GCRA-family check stricter: its time is read before the lock,
        // where the time-stamp counter does not wait for the lock's locked instruction.
        let early = self.lean.then(|| self.clock.nanos());
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        let now = early.unwrap_or_else(|| self.clock.nanos());
        if self.lean {
            if let Some(e) = shard.lean.find_mut(hash, |e| e.key == *key) {
                // lean keys exist only for the GCRA family: its core, inline
                let (a, b) = self.table.load();
                let gcra = Gcra {
                    interval: a,
                    burst: b,
                };
                let (tat, decision) = gcra.check(e.tat, now, n);
                if let Some(tat) = tat {
                    e.tat = tat;
                }
                return decision;
            }
        }
        if let Some(e) = shard.full.find_mut(hash, |e| e.key == *key) {
            let (cell, decision) = self.algorithm_of(e).check(e.cell, now, n);
            if let Some(cell) = cell {
                e.cell = cell;
            }
            return decision;
        }
        self.check_new_key(shard, hash, key, n, now)
    }

    /// A key the table does not hold yet: into the lean table when it follows the shared
    /// parameters of a GCRA-family limiter, else into the full one.
    #[inline(never)]
    fn check_new_key(
        &self,
        mut shard: std::sync::MutexGuard<'_, Shard<K>>,
        hash: u64,
        key: &K,
        n: u32,
        now: u64,
    ) -> Decision {
        // keys a resolver gave a quota carry its parameters; the others follow the shared
        // ones through the table's atomics (0: none of their own)
        let (a, b) = match self.resolved(key) {
            None => (0, 0),
            Some(Ok(own)) => self.local(own).parts(),
            Some(Err(e)) => return Decision::InvalidQuota { field: e.field },
        };
        if !self.take_room(&mut shard, now) {
            // the shard is not held while the shared overflow quota is checked
            drop(shard);
            return self.check_overflow(n);
        }
        self.keys_gauge.increment(1.0);
        if self.lean && a == 0 {
            let (cell, decision) = self.shared_algorithm().check(Cell::default(), now, n);
            let tat = cell.map_or(0, |c| c.a);
            shard.lean.insert_unique(
                hash,
                Lean {
                    key: key.clone(),
                    tat,
                },
                |e| self.hasher.hash_one(&e.key),
            );
            return decision;
        }
        let entry = Entry {
            key: key.clone(),
            cell: Cell::default(),
            a,
            b,
        };
        let (cell, decision) = self.algorithm_of(&entry).check(entry.cell, now, n);
        let entry = Entry {
            cell: cell.unwrap_or_default(),
            ..entry
        };
        shard
            .full
            .insert_unique(hash, entry, |e| self.hasher.hash_one(&e.key));
        decision
    }

    /// The algorithm of keys on the shared parameters.
    #[inline]
    fn shared_algorithm(&self) -> Algorithm {
        let (a, b) = self.table.load();
        self.family.with_parts(a, b)
    }

    /// Counts one more key held, if the table is below `max_keys`. At the cap, clears the
    /// shard's idle keys first (at most once per [`stamp`] per shard). `false`: no room.
    fn take_room(&self, shard: &mut Shard<K>, now: u64) -> bool {
        let take = || {
            self.len
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                    (len < self.max_keys).then_some(len + 1)
                })
                .is_ok()
        };
        if take() {
            return true;
        }
        let at = stamp(now).wrapping_add(1);
        if shard.cleared == at {
            return false;
        }
        shard.cleared = at;
        self.drop_idle(shard, now);
        take()
    }

    /// A new key's check while the table is full of keys that hold state: one quota (the
    /// base config's) shared by every such key.
    #[cold]
    #[inline(never)]
    fn check_overflow(&self, n: u32) -> Decision {
        self.overflowed.increment(1);
        let algorithm = self.shared_algorithm();
        let mut cell = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
        let (new, decision) = algorithm.check(*cell, self.clock.nanos(), n);
        if let Some(new) = new {
            *cell = new;
        }
        decision
    }

    /// Drops the shard's idle keys, and gives back the table's room beyond twice what it
    /// holds (or twice its share of `max_keys`, whichever is more). A table keeps its
    /// largest capacity otherwise, and the shards' sizes wander as keys come and go (a new
    /// key at the cap clears only its own shard): without this the tables' total capacity
    /// grew with the number of distinct keys ever seen. With it, the shards together hold at
    /// most about four slots per allowed key, however many keys pass.
    fn drop_idle(&self, shard: &mut Shard<K>, now: u64) {
        let before = shard.lean.len() + shard.full.len();
        let shared = self.shared_algorithm();
        shard
            .lean
            .retain(|e| !shared.is_idle(lean_cell(e.tat), now));
        shard
            .full
            .retain(|e| !self.algorithm_of(e).is_idle(e.cell, now));
        self.forget(before - shard.lean.len() - shard.full.len());
        let share = self.max_keys.div_ceil(SHARDS);
        let keep = shard.lean.len().max(share);
        if shard.lean.capacity() > 2 * keep {
            // the rehash walks what is left, as `retain` just walked every slot
            shard.lean.shrink_to(keep, |e| self.hasher.hash_one(&e.key));
        }
        let keep = shard.full.len().max(share);
        if shard.full.capacity() > 2 * keep {
            shard.full.shrink_to(keep, |e| self.hasher.hash_one(&e.key));
        }
    }

    fn forget(&self, idle: usize) {
        if idle == 0 {
            return;
        }
        self.len.fetch_sub(idle, Ordering::AcqRel);
        self.keys_gauge.decrement(idle as f64);
        self.evicted_idle.increment(idle as u64);
    }

    /// Sweeps idle keys if a sweep is due (every `idle_sweep`); returns the time to the next.
    pub(crate) fn sweep_if_due(&self) -> std::time::Duration {
        let every = self.idle_sweep();
        let now = self.clock.nanos();
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due {
            self.sweep(now);
            let next = now.saturating_add(u64::try_from(every.as_nanos()).unwrap_or(u64::MAX));
            self.next_sweep.store(next, Ordering::Relaxed);
            return every;
        }
        std::time::Duration::from_nanos(due - now)
    }

    /// Drops every idle key.
    fn sweep(&self, now: u64) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            self.drop_idle(&mut shard, now);
        }
    }

    /// The keyed limiter's state now.
    pub(crate) fn status(&self) -> super::KeyedLimiterStatus {
        let config = self.config.read().unwrap_or_else(|p| p.into_inner());
        super::KeyedLimiterStatus {
            kind: config.base.kind,
            keys: self.len(),
            max_keys: config.max_keys,
            shadow: config.base.shadow,
            remote: self.is_remote(),
            allowed: self.report.counts().0,
            denied: self.report.counts().1,
        }
    }

    /// What a check of one unit of `key` would get now from the table, spending nothing
    /// and storing nothing (a key not held answers as a fresh one would).
    pub(crate) fn status_of(&self, key: &K) -> super::LimiterStatus {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.nanos();
        let held = shard
            .lean
            .find(hash, |e| e.key == *key)
            .map(|e| (self.shared_algorithm(), lean_cell(e.tat)))
            .or_else(|| {
                shard
                    .full
                    .find(hash, |e| e.key == *key)
                    .map(|e| (self.algorithm_of(e), e.cell))
            });
        let decision = match held {
            Some((algorithm, cell)) => algorithm.check(cell, now, 1).1,
            None => {
                drop(shard);
                let algorithm = match self.resolved(key) {
                    None => Ok(self.shared_algorithm()),
                    Some(own) => own.map(|a| self.local(a)),
                };
                match algorithm {
                    Ok(a) => a.check(Cell::default(), now, 1).1,
                    Err(e) => Decision::InvalidQuota { field: e.field },
                }
            }
        };
        let config = self.config();
        // a remote quota's table only stands in while Redis is down: only Redis knows
        let answer = if self.is_remote() {
            None
        } else {
            super::status::one_unit(decision)
        };
        super::LimiterStatus::new(&config, answer, self.is_remote(), self.report.counts())
    }

    pub(crate) fn is_remote(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.remote.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// Makes the connection to a remote backend, if any (at spawn).
    pub(crate) async fn connect(&self) {
        #[cfg(feature = "redis")]
        if let Some(remote) = &self.remote {
            remote.connect().await;
        }
    }

    pub(crate) fn reset(&self, key: &K) -> bool {
        #[cfg(feature = "redis")]
        if let Some(remote) = &self.remote {
            remote.reset(key);
        }
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        let removed = shard
            .lean
            .find_entry(hash, |e| e.key == *key)
            .map(|e| e.remove())
            .is_ok()
            || shard
                .full
                .find_entry(hash, |e| e.key == *key)
                .map(|e| e.remove())
                .is_ok();
        drop(shard);
        if removed {
            self.len.fetch_sub(1, Ordering::AcqRel);
            self.keys_gauge.decrement(1.0);
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn idle_sweep(&self) -> std::time::Duration {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .idle_sweep
    }

    pub(crate) fn config(&self) -> LimiterConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .base
            .clone()
    }

    /// Applies a new base configuration keeping every key's state. Keys without a resolver
    /// take the new parameters; resolved keys keep theirs. Called by the actor.
    pub(crate) fn apply(&self, new: LimiterConfig) -> Result<String, ConfigError> {
        let algorithm = new.algorithm()?;
        let mut base = self.base.write().unwrap_or_else(|p| p.into_inner());
        if !algorithm.same_family(&base) {
            return Err(ConfigError::refused(
                "kind",
                new.kind,
                "a running limiter keeps its algorithm family; spawn a new limiter to change it",
            ));
        }
        let mut config = self.config.write().unwrap_or_else(|p| p.into_inner());
        new.keeps_backend_of(&config.base)?;
        *base = algorithm;
        drop(base);
        // keys without their own quota follow the table's parameters: one store, no walk
        self.set_table(algorithm);
        self.report.set_shadow(new.shadow);
        let change = format!("{:?}, shadow {}", new.kind, new.shadow);
        config.base = new;
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots the shards' tables hold (their capacity, used or not).
    fn capacity<K>(k: &KeyedShared<K>) -> usize {
        k.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.lean.capacity() + s.full.capacity()
            })
            .sum()
    }

    /// Memory stays bounded by `max_keys` however many distinct keys pass: a shard's table
    /// used to keep the largest capacity it ever reached, and as keys flowed the shards'
    /// sizes wandered (a new key at the cap clears only its own shard), so the tables'
    /// total capacity grew with the number of keys seen (RSS 24 -> 48 MiB from 10^6 to 10^7
    /// keys at max_keys 100,000, benches/keyed_memory.rs).
    #[test]
    fn table_capacity_stays_bounded_by_max_keys_under_a_stream_of_new_keys() {
        const MAX_KEYS: u32 = 2_000;
        // every key is idle again at once (a huge rate), so the cap always makes room
        let config = KeyedLimiterConfig::<u64>::new(LimiterConfig::gcra(
            crate::Quota::per_second(1_000_000_000).burst(1),
        ))
        .max_keys(MAX_KEYS);
        let k = KeyedShared::new(Arc::from("cap"), config, Telemetry::new(16), Backend::Local)
            .expect("keyed");
        let mut worst = 0;
        for key in 0..600_000u64 {
            let _ = k.check_table(&key, 1);
            if key % 50_000 == 0 {
                worst = worst.max(capacity(&k));
            }
        }
        worst = worst.max(capacity(&k));
        assert!(k.len() <= MAX_KEYS as usize);
        assert!(
            worst <= 4 * MAX_KEYS as usize + 64 * 8,
            "the tables hold {worst} slots for at most {MAX_KEYS} keys"
        );
    }

    /// Keys on the shared quota sit in the lean table, keys with a plan of their own in the
    /// full one; each answers by its own quota, is found again, reset and swept.
    #[test]
    fn shared_keys_go_lean_planned_keys_full_and_both_answer_by_their_quota() {
        let config = KeyedLimiterConfig::<u64>::new(LimiterConfig::gcra(crate::Quota::per_hour(2)))
            .quota_per_key_or_base(|k: &u64| (*k >= 100).then(|| crate::Quota::per_hour(5)));
        let k = KeyedShared::new(
            Arc::from("plans"),
            config,
            Telemetry::new(16),
            Backend::Local,
        )
        .expect("keyed");
        let admitted = |key: u64| {
            (0..10)
                .filter(|_| matches!(k.check_table(&key, 1), Decision::Allowed { .. }))
                .count()
        };
        assert_eq!(admitted(1), 2, "the shared quota");
        assert_eq!(admitted(100), 5, "the plan");
        let (lean, full): (usize, usize) = k.shards.iter().fold((0, 0), |(l, f), s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            (l + s.lean.len(), f + s.full.len())
        });
        assert_eq!((lean, full), (1, 1));
        assert_eq!(k.len(), 2);
        assert!(k.reset(&1) && k.reset(&100));
        assert_eq!(k.len(), 0);
        assert_eq!(admitted(1), 2, "a reset key starts afresh");
        assert_eq!(admitted(100), 5);
    }

    #[test]
    fn a_lean_entry_of_a_u64_key_takes_16_bytes_a_full_one_40() {
        assert_eq!(std::mem::size_of::<Lean<u64>>(), 16);
        assert_eq!(std::mem::size_of::<Entry<u64>>(), 40);
    }

    #[test]
    fn stamps_order_recency_across_a_wrap() {
        let now = u64::from(u32::MAX) << 20;
        let later = now + (5 << 20);
        assert_eq!(stamp(later).wrapping_sub(stamp(now)), 5);
    }
}
