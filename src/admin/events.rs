//! Events as the admin API sends them: one JSON object each, with a `type`.

use serde_json::{json, Value};

use crate::Event;

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The JSON of `event` (`type` is the variant in snake case).
pub(crate) fn to_json(event: &Event) -> Value {
    match event {
        Event::BreakerTransition {
            name,
            from,
            to,
            reason,
        } => json!({
            "type": "breaker_transition", "name": name, "from": from.as_str(),
            "to": to.as_str(), "reason": reason.as_str(),
        }),
        Event::CallRejected {
            name,
            kind,
            reason,
            retry_after,
            shadow,
            suppressed,
        } => json!({
            "type": "call_rejected", "name": name, "kind": kind.as_str(),
            "reason": reason.as_str(), "retry_after_ms": retry_after.map(ms),
            "shadow": shadow, "suppressed": suppressed,
        }),
        Event::RetryAttempt {
            name,
            attempt,
            delay,
            error,
        } => json!({
            "type": "retry_attempt", "name": name, "attempt": attempt,
            "delay_ms": ms(*delay), "error": error,
        }),
        Event::RetryExhausted {
            name,
            attempts,
            cause,
        } => json!({
            "type": "retry_exhausted", "name": name, "attempts": attempts, "cause": cause,
        }),
        Event::ActorRestarted {
            name,
            kind,
            restarts,
            cause,
        } => json!({
            "type": "actor_restarted", "name": name, "kind": kind.as_str(),
            "restarts": restarts, "cause": cause,
        }),
        Event::ActorDegraded {
            name,
            kind,
            restarts,
            window,
        } => json!({
            "type": "actor_degraded", "name": name, "kind": kind.as_str(),
            "restarts": restarts, "window_ms": ms(*window),
        }),
        Event::BackendHealth {
            name,
            healthy,
            cause,
        } => json!({
            "type": "backend_health", "name": name, "healthy": healthy, "cause": cause,
        }),
        Event::Reconfigured { name, kind, change } => json!({
            "type": "reconfigured", "name": name, "kind": kind.as_str(), "change": change,
        }),
        Event::ConfigReloaded {
            file,
            added,
            changed,
            removed,
        } => json!({
            "type": "config_reloaded", "name": file, "added": &**added,
            "changed": &**changed, "removed": &**removed,
        }),
        Event::ConfigRejected { file, error } => json!({
            "type": "config_rejected", "name": file, "error": error,
        }),
    }
}
