//! A keyed limiter with its key bound, so a [`Policy`](super::Policy) (which has no type
//! parameter) can spend one key's quota per attempt.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::CallError;
use crate::limiter::{Denied, KeyedLimiter};

/// One unit of one key's quota, spent per attempt.
pub(crate) trait KeyedSpend: Send + Sync + fmt::Debug {
    /// Spends one unit without waiting, when the quota lives in this process.
    fn spend_now(&self) -> Option<Result<(), Denied>>;
    /// Spends one unit; waits only for a remote backend (one round trip).
    fn spend(&self) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + '_>>;
    /// The limiter's name, for the rejection.
    fn name(&self) -> &Arc<str>;
}

/// A keyed limiter and the key whose quota the policy spends.
pub(crate) struct Bound<K> {
    pub(crate) limiter: KeyedLimiter<K>,
    pub(crate) key: K,
    /// The quota lives in Redis: only `spend` can reach it.
    pub(crate) remote: bool,
}

impl<K> fmt::Debug for Bound<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound")
            .field("limiter", &self.limiter)
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedSpend for Bound<K> {
    fn spend_now(&self) -> Option<Result<(), Denied>> {
        (!self.remote).then(|| self.limiter.check(&self.key).map(drop))
    }

    fn spend(&self) -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send + '_>> {
        Box::pin(async move { self.limiter.acquire(&self.key, 1).await.map(drop) })
    }

    fn name(&self) -> &Arc<str> {
        self.limiter.name_arc()
    }
}

/// A denial of the bound key as the attempt's error.
pub(crate) fn refused<E>(spend: &dyn KeyedSpend, denied: Denied) -> CallError<E> {
    crate::limiter::rejection(spend.name(), denied)
}
