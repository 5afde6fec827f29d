//! The one reconfiguration path every primitive's actor takes: apply, count, publish,
//! answer.

use std::sync::Arc;

use ractor::RpcReplyPort;

use crate::error::ConfigError;
use crate::kind::Kind;
use crate::telemetry::{metrics as m, Event, Telemetry};

/// Applies `config` with `apply` (which keeps the primitive's state and says what changed,
/// or refuses), counts it in `palisade_reconfigurations_total`, publishes
/// [`Event::Reconfigured`], and answers the caller waiting on `reply`.
pub(crate) fn reconfigure<C>(
    (kind, name): (Kind, &Arc<str>),
    telemetry: &Telemetry,
    config: C,
    reply: RpcReplyPort<Result<(), ConfigError>>,
    apply: impl FnOnce(C) -> Result<String, ConfigError>,
) {
    let result = apply(config).map(|change| {
        metrics::counter!(m::RECONFIGURATIONS, "kind" => kind.as_str(), "name" => name.to_string())
            .increment(1);
        telemetry.emit(Event::Reconfigured {
            name: Arc::clone(name),
            kind,
            change: change.into(),
        });
    });
    // the caller may have stopped waiting: the change stands all the same
    let _ = reply.send(result);
}
