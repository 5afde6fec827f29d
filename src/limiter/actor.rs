//! The limiters' actor half: reconfiguration (keeping state) and, for keyed limiters, the
//! periodic sweep of idle keys.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::config::LimiterConfig;
use super::direct::LimiterShared;
use super::keyed::KeyedShared;
use crate::error::ConfigError;
use crate::kind::Kind;
use crate::supervisor::child::{ActorSlot, Primitive};
use crate::supervisor::reconfigure::reconfigure;
use crate::telemetry::FLUSH_EVERY;

/// Messages particular to a limiter actor.
#[derive(Debug)]
pub(crate) enum LimiterCommand {
    Reconfigure(Box<LimiterConfig>, RpcReplyPort<Result<(), ConfigError>>),
    /// Leased mode: take the next batch of units from the backend.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    RefillLease,
}

impl Primitive for LimiterShared {
    type Command = LimiterCommand;
    const KIND: Kind = Kind::Limiter;

    fn name(&self) -> &Arc<str> {
        &self.report.name
    }

    fn slot(&self) -> &ActorSlot<LimiterCommand> {
        &self.slot
    }

    fn upkeep(&self) -> Option<Duration> {
        self.report.flush();
        Some(FLUSH_EVERY)
    }

    fn stopped(&self) {
        self.report.flush();
    }

    async fn handle(&self, command: LimiterCommand) {
        match command {
            LimiterCommand::Reconfigure(config, reply) => {
                reconfigure(
                    (Kind::Limiter, &self.report.name),
                    &self.report.telemetry,
                    *config,
                    reply,
                    |config| self.apply(config),
                );
            }
            LimiterCommand::RefillLease => self.refill_lease().await,
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Primitive for KeyedShared<K> {
    type Command = LimiterCommand;
    const KIND: Kind = Kind::Limiter;

    fn name(&self) -> &Arc<str> {
        &self.report.name
    }

    fn slot(&self) -> &ActorSlot<LimiterCommand> {
        &self.slot
    }

    fn upkeep(&self) -> Option<Duration> {
        self.report.flush();
        Some(self.sweep_if_due().min(FLUSH_EVERY))
    }

    fn stopped(&self) {
        self.report.flush();
    }

    async fn handle(&self, command: LimiterCommand) {
        // keyed limiters hold no lease
        if let LimiterCommand::Reconfigure(config, reply) = command {
            reconfigure(
                (Kind::Limiter, &self.report.name),
                &self.report.telemetry,
                *config,
                reply,
                |config| self.apply(config),
            );
        }
    }
}
