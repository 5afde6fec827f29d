//! The bulkhead's actor half: applies resizes one at a time and reports them.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::config::BulkheadConfig;
use super::state::BulkheadShared;
use crate::error::ConfigError;
use crate::kind::Kind;
use crate::supervisor::child::{ActorSlot, Primitive};
use crate::supervisor::reconfigure::reconfigure;
use crate::telemetry::FLUSH_EVERY;

/// Messages particular to the bulkhead actor.
#[derive(Debug)]
pub(crate) enum BulkheadCommand {
    Reconfigure(BulkheadConfig, RpcReplyPort<Result<(), ConfigError>>),
}

impl Primitive for BulkheadShared {
    type Command = BulkheadCommand;
    const KIND: Kind = Kind::Bulkhead;

    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn slot(&self) -> &ActorSlot<BulkheadCommand> {
        &self.slot
    }

    fn upkeep(&self) -> Option<Duration> {
        self.report_in_flight();
        Some(FLUSH_EVERY)
    }

    fn stopped(&self) {
        self.report_in_flight();
    }

    async fn handle(&self, command: BulkheadCommand) {
        match command {
            BulkheadCommand::Reconfigure(config, reply) => reconfigure(
                (Kind::Bulkhead, &self.name),
                &self.telemetry,
                config,
                reply,
                |config| Ok(self.apply(&config)),
            ),
        }
    }
}
