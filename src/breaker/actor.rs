//! The breaker's actor half: the open -> half-open timer, the half-open time limit, the scan
//! for calls hanging past `slow_call_duration`, and reconfiguration. A restarted actor
//! re-arms all of these from the shared state in its first upkeep.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::config::BreakerConfig;
use super::state::BreakerShared;
use crate::error::ConfigError;
use crate::kind::Kind;
use crate::supervisor::child::{ActorSlot, Primitive};
use crate::supervisor::reconfigure::reconfigure;
use crate::telemetry::FLUSH_EVERY;

/// Messages particular to the breaker actor.
#[derive(Debug)]
pub(crate) enum BreakerCommand {
    Reconfigure(BreakerConfig, RpcReplyPort<Result<(), ConfigError>>),
}

impl Primitive for BreakerShared {
    type Command = BreakerCommand;
    const KIND: Kind = Kind::Breaker;

    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn slot(&self) -> &ActorSlot<BreakerCommand> {
        &self.slot
    }

    fn upkeep(&self) -> Option<Duration> {
        self.flush_counts();
        Some(BreakerShared::upkeep(self).map_or(FLUSH_EVERY, |d| d.min(FLUSH_EVERY)))
    }

    fn stopped(&self) {
        self.flush_counts();
    }

    async fn handle(&self, command: BreakerCommand) {
        match command {
            BreakerCommand::Reconfigure(config, reply) => reconfigure(
                (Kind::Breaker, &self.name),
                &self.telemetry,
                config,
                reply,
                |config| self.apply(config),
            ),
        }
    }
}
