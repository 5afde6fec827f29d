//! Applying a checked file to a runtime: every refusal found before anything changes, then
//! new instances spawned, changed ones reconfigured in place (windows and buckets kept),
//! removed ones reported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::declared::{Declared, KeyedDecl, PlanCell};
use super::error::ConfigFileError;
use super::schema::Removed;
use crate::limiter::KeyedLimiterConfig;
use crate::{
    Breaker, BreakerConfig, Bulkhead, BulkheadConfig, Limiter, LimiterConfig, Policy, Retry,
    Runtime,
};

/// What a load or a reload did, each entry as `kind.name` (`breaker.db`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Instances spawned (and retries and policies built).
    pub added: Vec<String>,
    /// Instances reconfigured in place: breakers keep their windows, limiters their buckets.
    pub changed: Vec<String>,
    /// Instances the file no longer declares. By default they keep running (handles stay
    /// valid, the runtime still lists them, and a later file that declares them again takes
    /// them back); with `[reload] removed = "stop"` they are stopped and dropped from the
    /// runtime ([`Runtime::remove`](crate::Runtime::remove)).
    pub removed: Vec<String>,
}

impl ReloadReport {
    /// `true` when the file changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The runtime's config: where it comes from and what was applied last.
#[derive(Debug, Default)]
pub(crate) struct ConfigState {
    pub path: Option<PathBuf>,
    pub env_prefix: String,
    /// The text last applied (a watcher reloads only when it changed).
    pub text: Option<String>,
    pub applied: Declared,
    pub plans: HashMap<String, PlanCell>,
    pub retries: HashMap<String, Retry>,
    pub policies: HashMap<String, Policy>,
    /// Instances a reload no longer found and left running (`reload.removed = "report"`): a
    /// later file that declares them again takes them back.
    pub detached: Declared,
}

/// `a`'s entries and those of `b` it lacks.
fn union<T: Clone>(a: &BTreeMap<String, T>, b: &BTreeMap<String, T>) -> BTreeMap<String, T> {
    let mut out = b.clone();
    out.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// `a`'s entries that `b` lacks.
fn minus<T: Clone, U>(a: &BTreeMap<String, T>, b: &BTreeMap<String, U>) -> BTreeMap<String, T> {
    a.iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `a` and `b` configure alike (configs compare by what they print: every field shows).
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Sorts the names of one kind into added, changed and removed.
fn diff<T>(
    kind: &str,
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    alike: impl Fn(&T, &T) -> bool,
    report: &mut ReloadReport,
) {
    for (name, n) in new {
        match old.get(name) {
            None => report.added.push(format!("{kind}.{name}")),
            Some(o) if !alike(o, n) => report.changed.push(format!("{kind}.{name}")),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        report.removed.push(format!("{kind}.{name}"));
    }
}

fn keyed_alike(a: &KeyedDecl, b: &KeyedDecl) -> bool {
    same(&a.base, &b.base)
        && a.max_keys == b.max_keys
        && a.idle_sweep == b.idle_sweep
        && a.plans == b.plans
}

/// A primitive a file declares by config alone: how to find, spawn and reconfigure it, and
/// what change it cannot take while it runs.
trait Declarable: Sized {
    type Config: Clone + std::fmt::Debug;
    /// The file's section name.
    const SECTION: &'static str;
    const KIND: crate::Kind;
    fn get(rt: &Runtime, name: &str) -> Option<Self>;
    /// Another primitive holds `name` (spawned in code, or a kind sharing the names).
    fn taken(rt: &Runtime, old: &Declared, name: &str) -> bool {
        let _ = old;
        Self::get(rt, name).is_some()
    }
    /// The change a running instance refuses: the field and why.
    fn fixed(old: &Self::Config, new: &Self::Config) -> Option<(&'static str, &'static str)>;
    async fn spawn(rt: &Runtime, name: &str, config: Self::Config) -> Result<(), String>;
    async fn reconfigure(&self, config: Self::Config) -> Result<(), String>;
}

impl Declarable for Breaker {
    type Config = BreakerConfig;
    const SECTION: &'static str = "breaker";
    const KIND: crate::Kind = crate::Kind::Breaker;
    fn get(rt: &Runtime, name: &str) -> Option<Self> {
        rt.get_breaker(name)
    }
    fn fixed(old: &BreakerConfig, new: &BreakerConfig) -> Option<(&'static str, &'static str)> {
        (old.sliding_window != new.sliding_window || old.time_bucket != new.time_bucket).then_some((
            "sliding_window",
            "the window's shape cannot change on a running breaker (its recorded outcomes would be lost); give the new shape a new name",
        ))
    }
    async fn spawn(rt: &Runtime, name: &str, config: BreakerConfig) -> Result<(), String> {
        rt.breaker(name, config)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
    async fn reconfigure(&self, config: BreakerConfig) -> Result<(), String> {
        Breaker::reconfigure(self, config)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Declarable for Limiter {
    type Config = LimiterConfig;
    const SECTION: &'static str = "limiter";
    const KIND: crate::Kind = crate::Kind::Limiter;
    fn get(rt: &Runtime, name: &str) -> Option<Self> {
        rt.get_limiter(name)
    }
    fn taken(rt: &Runtime, old: &Declared, name: &str) -> bool {
        rt.get_limiter(name).is_some() || old.keyed.contains_key(name)
    }
    fn fixed(old: &LimiterConfig, new: &LimiterConfig) -> Option<(&'static str, &'static str)> {
        family_changed(old, new)
    }
    async fn spawn(rt: &Runtime, name: &str, config: LimiterConfig) -> Result<(), String> {
        rt.limiter(name, config)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
    async fn reconfigure(&self, config: LimiterConfig) -> Result<(), String> {
        Limiter::reconfigure(self, config)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Declarable for Bulkhead {
    type Config = BulkheadConfig;
    const SECTION: &'static str = "bulkhead";
    const KIND: crate::Kind = crate::Kind::Bulkhead;
    fn get(rt: &Runtime, name: &str) -> Option<Self> {
        rt.get_bulkhead(name)
    }
    fn fixed(_: &BulkheadConfig, _: &BulkheadConfig) -> Option<(&'static str, &'static str)> {
        None
    }
    async fn spawn(rt: &Runtime, name: &str, config: BulkheadConfig) -> Result<(), String> {
        rt.bulkhead(name, config)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
    async fn reconfigure(&self, config: BulkheadConfig) -> Result<(), String> {
        Bulkhead::reconfigure(self, config)
            .await
            .map_err(|e| e.to_string())
    }
}

fn family_changed(
    old: &LimiterConfig,
    new: &LimiterConfig,
) -> Option<(&'static str, &'static str)> {
    if std::mem::discriminant(&old.kind()) != std::mem::discriminant(&new.kind()) {
        return Some((
            "algorithm",
            "the algorithm cannot change on a running limiter (its state would be lost); give it a new name",
        ));
    }
    #[cfg(feature = "redis")]
    if old.redis_backend() != new.redis_backend() {
        return Some((
            "redis",
            "the Redis backend cannot change on a running limiter (its connection and state are set up at spawn); give it a new name",
        ));
    }
    None
}

/// What the checks before any change need.
struct Check<'a> {
    rt: &'a Runtime,
    file: &'a Path,
    old: &'a Declared,
    snapshot: crate::Snapshot,
}

impl Check<'_> {
    fn refuse(&self, key: String, problem: impl Into<String>) -> ConfigFileError {
        ConfigFileError::at(self.file, key, problem)
    }

    fn degraded(&self, kind: crate::Kind, name: &str) -> bool {
        self.snapshot.get(kind, name).is_some_and(|p| p.degraded)
    }

    /// The refusals of one kind's instances.
    fn kind<P: Declarable>(
        &self,
        old: &BTreeMap<String, P::Config>,
        next: &BTreeMap<String, P::Config>,
    ) -> Result<(), ConfigFileError> {
        for (name, config) in next {
            let key = format!("{}.instances.{name}", P::SECTION);
            match old.get(name) {
                None if P::taken(self.rt, self.old, name) => {
                    return Err(self.refuse(
                        key,
                        format!(
                            "a {} named {name:?} already runs, spawned outside this file",
                            P::SECTION
                        ),
                    ))
                }
                Some(o) if !same(o, config) => {
                    if let Some((field, problem)) = P::fixed(o, config) {
                        return Err(self.refuse(format!("{key}.{field}"), problem));
                    }
                    if self.degraded(P::KIND, name) {
                        return Err(self.refuse(key, DEGRADED));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn keyed(&self, next: &BTreeMap<String, KeyedDecl>) -> Result<(), ConfigFileError> {
        for (name, decl) in next {
            let key = format!("keyed_limiter.instances.{name}");
            match self.old.keyed.get(name) {
                None if self.rt.get_limiter(name).is_some()
                    || self.rt.get_keyed_limiter::<String>(name).is_some()
                    || self.old.limiters.contains_key(name) =>
                {
                    return Err(self.refuse(
                        key,
                        format!("a limiter named {name:?} already runs, spawned outside this file"),
                    ))
                }
                Some(o) if !keyed_alike(o, decl) => {
                    if let Some((field, problem)) = family_changed(&o.base, &decl.base) {
                        return Err(self.refuse(format!("{key}.{field}"), problem));
                    }
                    if o.max_keys != decl.max_keys || o.idle_sweep != decl.idle_sweep {
                        return Err(self.refuse(
                            format!("{key}.max_keys"),
                            "max_keys and idle_sweep are fixed at spawn; give the new bounds a new name",
                        ));
                    }
                    if self.degraded(crate::Kind::Limiter, name) {
                        return Err(self.refuse(key, DEGRADED));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

const DEGRADED: &str = "its actor is down (degraded): it cannot be reconfigured";

/// Spawns one kind's new instances and reconfigures its changed ones.
async fn change<P: Declarable>(
    rt: &Runtime,
    file: &Path,
    old: &BTreeMap<String, P::Config>,
    next: &BTreeMap<String, P::Config>,
) -> Result<(), ConfigFileError> {
    for (name, config) in next {
        let failed =
            |e: String| ConfigFileError::at(file, format!("{}.instances.{name}", P::SECTION), e);
        match old.get(name) {
            None => P::spawn(rt, name, config.clone()).await.map_err(failed)?,
            Some(o) if !same(o, config) => {
                let running =
                    P::get(rt, name).ok_or_else(|| failed("no longer registered".into()))?;
                running.reconfigure(config.clone()).await.map_err(failed)?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Applies `next` (already checked) to `rt`: all of it, or (refused before any change)
/// none of it.
pub(crate) async fn apply(
    rt: &Runtime,
    state: &mut ConfigState,
    next: Declared,
) -> Result<ReloadReport, ConfigFileError> {
    let file = state.path.clone().unwrap_or_default();
    let mut report = ReloadReport::default();
    {
        let old = &state.applied;
        diff("breaker", &old.breakers, &next.breakers, same, &mut report);
        diff("limiter", &old.limiters, &next.limiters, same, &mut report);
        diff(
            "keyed_limiter",
            &old.keyed,
            &next.keyed,
            keyed_alike,
            &mut report,
        );
        diff(
            "bulkhead",
            &old.bulkheads,
            &next.bulkheads,
            same,
            &mut report,
        );
        diff(
            "retry",
            &old.retries,
            &next.retries,
            PartialEq::eq,
            &mut report,
        );
        diff(
            "policy",
            &old.policies,
            &next.policies,
            PartialEq::eq,
            &mut report,
        );
    }
    // what runs from files: the last one applied, and what earlier reloads left running
    let known = Declared {
        breakers: union(&state.applied.breakers, &state.detached.breakers),
        limiters: union(&state.applied.limiters, &state.detached.limiters),
        keyed: union(&state.applied.keyed, &state.detached.keyed),
        bulkheads: union(&state.applied.bulkheads, &state.detached.bulkheads),
        ..Declared::default()
    };
    let old = &known;

    // 1. Every refusal before any change.
    let check = Check {
        rt,
        file: &file,
        old,
        snapshot: rt.snapshot(),
    };
    check.kind::<Breaker>(&old.breakers, &next.breakers)?;
    check.kind::<Limiter>(&old.limiters, &next.limiters)?;
    check.keyed(&next.keyed)?;
    check.kind::<Bulkhead>(&old.bulkheads, &next.bulkheads)?;

    // 2. The changes. Only a runtime failing under us (shut down, an actor lost mid-way)
    //    can stop them part-way; the error says where.
    change::<Breaker>(rt, &file, &old.breakers, &next.breakers).await?;
    change::<Limiter>(rt, &file, &old.limiters, &next.limiters).await?;
    for (name, decl) in &next.keyed {
        let failed =
            |e: String| ConfigFileError::at(&file, format!("keyed_limiter.instances.{name}"), e);
        match old.keyed.get(name) {
            None => {
                let cell: PlanCell = Arc::new(RwLock::new(Arc::new(decl.plans.clone())));
                let plans = Arc::clone(&cell);
                let mut config = KeyedLimiterConfig::<String>::new(decl.base.clone())
                    .quota_per_key_or_base(move |k: &String| {
                        let plans = plans.read().unwrap_or_else(|p| p.into_inner());
                        plans.iter().find(|p| p.matches(k)).map(|p| p.quota)
                    });
                if let Some(n) = decl.max_keys {
                    config = config.max_keys(n);
                }
                if let Some(d) = decl.idle_sweep {
                    config = config.idle_sweep(d);
                }
                #[cfg(feature = "redis")]
                if decl.base.redis_backend().is_some() {
                    // string keys are their own Redis key part
                    config = config.redis_key(|k: &String| k.clone());
                }
                rt.keyed_limiter::<String>(name, config)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                state.plans.insert(name.clone(), cell);
            }
            Some(o) if !keyed_alike(o, decl) => {
                let running = rt
                    .get_keyed_limiter::<String>(name)
                    .ok_or_else(|| failed("no longer registered".into()))?;
                if !same(&o.base, &decl.base) {
                    running
                        .reconfigure(decl.base.clone())
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                }
                if let Some(cell) = state.plans.get(name) {
                    *cell.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(decl.plans.clone());
                }
            }
            Some(_) => {}
        }
    }
    change::<Bulkhead>(rt, &file, &old.bulkheads, &next.bulkheads).await?;

    // retries and policies are values: built again whole, then swapped in
    let mut retries = HashMap::new();
    for (name, decl) in &next.retries {
        let retry = decl.build(name, Some(rt)).map_err(|e| {
            ConfigFileError::at(&file, format!("retry.instances.{name}"), e.to_string())
        })?;
        retries.insert(name.clone(), retry);
    }
    let mut policies = HashMap::new();
    for (name, decl) in &next.policies {
        let mut policy = Policy::new();
        if let Some(d) = decl.deadline {
            policy = policy.deadline(d);
        }
        if let Some(r) = decl.retry.as_ref().and_then(|r| retries.get(r)) {
            policy = policy.retry(r.clone());
        }
        if let Some(b) = decl.breaker.as_deref().and_then(|b| rt.get_breaker(b)) {
            policy = policy.breaker(&b);
        }
        if let Some(l) = decl.limiter.as_deref().and_then(|l| rt.get_limiter(l)) {
            policy = policy.limiter(&l);
        }
        if let Some(b) = decl.bulkhead.as_deref().and_then(|b| rt.get_bulkhead(b)) {
            policy = policy.bulkhead(&b);
        }
        if let Some(t) = decl.timeout {
            policy = policy.timeout(t);
        }
        policies.insert(name.clone(), policy);
    }
    let gone = Declared {
        breakers: minus(&known.breakers, &next.breakers),
        limiters: minus(&known.limiters, &next.limiters),
        keyed: minus(&known.keyed, &next.keyed),
        bulkheads: minus(&known.bulkheads, &next.bulkheads),
        ..Declared::default()
    };
    state.detached = match next.removed {
        Removed::Report => gone,
        Removed::Stop => {
            let kinds = [
                (
                    crate::Kind::Breaker,
                    gone.breakers.keys().collect::<Vec<_>>(),
                ),
                (
                    crate::Kind::Limiter,
                    gone.limiters.keys().chain(gone.keyed.keys()).collect(),
                ),
                (crate::Kind::Bulkhead, gone.bulkheads.keys().collect()),
            ];
            for (kind, names) in kinds {
                for name in names {
                    rt.remove(kind, name).await;
                    state.plans.remove(name);
                }
            }
            Declared::default()
        }
    };
    state.retries = retries;
    state.policies = policies;
    state.applied = next;
    Ok(report)
}
