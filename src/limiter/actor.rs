//! The limiters' actor half: reconfiguration (keeping state) and, for keyed limiters, the
//! periodic sweep of idle keys.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::config::LimiterConfig;
use super::direct::LimiterShared;
use super::keyed::KeyedShared;
use super::report::Reporter;
use crate::error::ConfigError;
use crate::supervisor::child::{ActorSlot, Primitive};
use crate::telemetry::{metrics as m, Event, Kind};

/// Messages particular to a limiter actor.
#[derive(Debug)]
pub(crate) enum LimiterCommand {
    Reconfigure(LimiterConfig, RpcReplyPort<Result<(), ConfigError>>),
}

/// Applies a reconfiguration (direct or keyed: `apply` says how), reports it, and answers.
fn reconfigure(
    command: LimiterCommand,
    report: &Reporter,
    apply: impl FnOnce(LimiterConfig) -> Result<String, ConfigError>,
) {
    let LimiterCommand::Reconfigure(config, reply) = command;
    let result = apply(config).map(|change| {
        metrics::counter!(m::RECONFIGURATIONS, "kind" => "limiter", "name" => report.name.to_string())
            .increment(1);
        report.telemetry.emit(Event::Reconfigured {
            name: Arc::clone(&report.name),
            kind: Kind::Limiter,
            change: change.into(),
        });
    });
    let _ = reply.send(result);
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
        reconfigure(command, &self.report, |config| self.apply(config));
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
        reconfigure(command, &self.report, |config| self.apply(config));
    }
}
