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
use crate::supervisor::child::{ActorSlot, Primitive};
use crate::telemetry::{metrics as m, Event, Kind};

/// Messages particular to a limiter actor.
#[derive(Debug)]
pub(crate) enum LimiterCommand {
    Reconfigure(LimiterConfig, RpcReplyPort<Result<(), ConfigError>>),
}

fn reconfigured(name: &Arc<str>, telemetry: &crate::telemetry::Telemetry, change: String) {
    metrics::counter!(m::RECONFIGURATIONS, "kind" => "limiter", "name" => name.to_string())
        .increment(1);
    telemetry.emit(Event::Reconfigured {
        name: Arc::clone(name),
        kind: Kind::Limiter,
        change: change.into(),
    });
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
        None
    }

    async fn handle(&self, command: LimiterCommand) {
        let LimiterCommand::Reconfigure(config, reply) = command;
        let result = self
            .apply(config)
            .map(|change| reconfigured(&self.report.name, &self.report.telemetry, change));
        let _ = reply.send(result);
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
        self.sweep();
        Some(self.idle_sweep())
    }

    async fn handle(&self, command: LimiterCommand) {
        let LimiterCommand::Reconfigure(config, reply) = command;
        let result = self
            .apply(config)
            .map(|change| reconfigured(&self.report.name, &self.report.telemetry, change));
        let _ = reply.send(result);
    }
}
