//! The root supervisor: spawns every primitive's actor linked to itself and restarts it,
//! over the same shared state and under the same registry name, after any exit it did not
//! ask for (panic, `Err` from a handler, `kill()` by anyone).
//!
//! ractor has no restart strategy of its own (its default `handle_supervisor_evt` stops the
//! supervisor), so this is ours: restart at once, count restarts per child in a sliding
//! window, and past `max_restarts` leave the child down, mark it degraded and say so with
//! [`Event::ActorDegraded`]. Callers never notice a restart: they hold the shared state,
//! never the actor.

pub(crate) mod child;
mod intensity;
pub(crate) mod reconfigure;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};

use crate::clock::Instant;
use crate::error::SpawnError;
use crate::kind::Kind;
use crate::telemetry::{metrics as m, Event, Telemetry};
use child::ChildSpec;
use intensity::RestartWindow;

/// Respawn attempts for one exit before the child is left down.
const MAX_SPAWN_TRIES: u32 = 8;

/// How long `shutdown` waits for one child to stop before it moves on.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Restart intensity: at most `max_restarts` restarts of one child inside `window`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Intensity {
    pub(crate) max_restarts: u32,
    pub(crate) window: Duration,
}

/// The supervisor's messages.
pub(crate) enum SupervisorMsg {
    /// Spawn a child and keep it running.
    Spawn(Arc<dyn ChildSpec>, RpcReplyPort<Result<(), SpawnError>>),
    /// The names (kind, name) of children left down after too many restarts.
    Degraded(RpcReplyPort<Vec<(Kind, Arc<str>)>>),
    /// Stop every child, waiting for each, then reply.
    StopAll(RpcReplyPort<()>),
    /// Stop one child for good (no restart) and forget it; replies whether it was there.
    Stop(Kind, Arc<str>, RpcReplyPort<bool>),
}

impl std::fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SupervisorMsg::Spawn(..) => "Spawn",
            SupervisorMsg::Degraded(..) => "Degraded",
            SupervisorMsg::StopAll(..) => "StopAll",
            SupervisorMsg::Stop(..) => "Stop",
        })
    }
}

/// One supervised child.
struct Child {
    spec: Arc<dyn ChildSpec>,
    cell: Option<ActorCell>,
    restarts: RestartWindow,
    degraded: bool,
}

/// The root supervisor actor (stateless; see [`SupervisorState`]).
#[derive(Debug, Default)]
pub(crate) struct Supervisor;

/// The supervisor's state.
pub(crate) struct SupervisorState {
    telemetry: Telemetry,
    intensity: Intensity,
    children: Vec<Child>,
    by_actor: HashMap<ActorId, usize>,
    stopping: bool,
}

impl std::fmt::Debug for SupervisorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorState")
            .field("children", &self.children.len())
            .field("stopping", &self.stopping)
            .finish()
    }
}

impl SupervisorState {
    async fn start_child(
        &mut self,
        index: usize,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), SpawnErr> {
        let child = &mut self.children[index];
        let cell = child.spec.spawn(myself.get_cell()).await?;
        self.by_actor.insert(cell.get_id(), index);
        child.cell = Some(cell);
        Ok(())
    }

    async fn on_exit(&mut self, id: ActorId, cause: String, myself: &ActorRef<SupervisorMsg>) {
        let Some(index) = self.by_actor.remove(&id) else {
            return;
        };
        if self.stopping {
            self.children[index].cell = None;
            return;
        }
        let Intensity {
            max_restarts,
            window,
        } = self.intensity;
        let child = &mut self.children[index];
        child.cell = None;
        let (kind, name) = (child.spec.kind(), Arc::clone(child.spec.name()));
        let labels = [
            ("kind", kind.as_str().to_owned()),
            ("name", name.to_string()),
        ];
        let mut cause = cause;
        // A respawn that fails (the new actor died while starting, say) counts as one more
        // exit; a bounded number of tries keeps a child that can never start from spinning
        // even when the intensity allows endless restarts.
        for _ in 0..MAX_SPAWN_TRIES {
            if !self.children[index]
                .restarts
                .allow(Instant::now(), max_restarts, window)
            {
                break;
            }
            let restarts = self.children[index].restarts.count();
            match self.start_child(index, myself).await {
                Ok(()) => {
                    self.children[index].spec.note_restart();
                    metrics::counter!(m::ACTOR_RESTARTS, &labels).increment(1);
                    self.telemetry.emit(Event::ActorRestarted {
                        name,
                        kind,
                        restarts,
                        cause: cause.into(),
                    });
                    return;
                }
                Err(e) => {
                    tracing::warn!(target: "palisade::supervisor", %kind, %name, error = %e, "restart failed; trying again");
                    cause = format!("restart failed: {e}");
                }
            }
        }
        self.degrade(index);
    }

    fn degrade(&mut self, index: usize) {
        let child = &mut self.children[index];
        child.degraded = true;
        child.spec.note_degraded();
        let (kind, name) = (child.spec.kind(), Arc::clone(child.spec.name()));
        let labels = [
            ("kind", kind.as_str().to_owned()),
            ("name", name.to_string()),
        ];
        metrics::gauge!(m::ACTOR_DEGRADED, &labels).set(1.0);
        self.telemetry.emit(Event::ActorDegraded {
            name,
            kind,
            restarts: child.restarts.count(),
            window: self.intensity.window,
        });
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = (Telemetry, Intensity);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (telemetry, intensity): (Telemetry, Intensity),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            telemetry,
            intensity,
            children: Vec::new(),
            by_actor: HashMap::new(),
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Spawn(spec, reply) => {
                let result = if state.stopping {
                    Err(SpawnError::ShutDown)
                } else {
                    let (kind, name) = (spec.kind(), spec.name().to_string());
                    state.children.push(Child {
                        spec,
                        cell: None,
                        restarts: RestartWindow::default(),
                        degraded: false,
                    });
                    let index = state.children.len() - 1;
                    state.start_child(index, &myself).await.map_err(|e| {
                        state.children.pop();
                        match e {
                            SpawnErr::ActorAlreadyRegistered(_) => {
                                SpawnError::NameTaken { kind, name }
                            }
                            other => SpawnError::Actor {
                                kind,
                                name,
                                reason: other.to_string(),
                            },
                        }
                    })
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::Degraded(reply) => {
                let list = state
                    .children
                    .iter()
                    .filter(|c| c.degraded)
                    .map(|c| (c.spec.kind(), Arc::clone(c.spec.name())))
                    .collect();
                let _ = reply.send(list);
            }
            SupervisorMsg::Stop(kind, name, reply) => {
                let found = state
                    .children
                    .iter()
                    .position(|c| c.spec.kind() == kind && c.spec.name() == &name);
                if let Some(index) = found {
                    let child = state.children.remove(index);
                    // its exit must not look like a crash: forget it before stopping it
                    state.by_actor.retain(|_, i| *i != index);
                    for i in state.by_actor.values_mut() {
                        if *i > index {
                            *i -= 1;
                        }
                    }
                    if let Some(cell) = child.cell {
                        let _ = cell
                            .stop_and_wait(Some("removed".into()), Some(STOP_TIMEOUT))
                            .await;
                    } else if child.degraded {
                        child.spec.stopped();
                    }
                }
                let _ = reply.send(found.is_some());
            }
            SupervisorMsg::StopAll(reply) => {
                state.stopping = true;
                for child in &mut state.children {
                    if let Some(cell) = child.cell.take() {
                        let _ = cell
                            .stop_and_wait(Some("runtime shutdown".into()), Some(STOP_TIMEOUT))
                            .await;
                    } else if child.degraded {
                        // no actor has flushed its counts since it was left down
                        child.spec.stopped();
                    }
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let cause = reason.unwrap_or_else(|| "stopped".to_owned());
                state.on_exit(cell.get_id(), cause, &myself).await;
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                state.on_exit(cell.get_id(), err.to_string(), &myself).await;
            }
            _ => {}
        }
        Ok(())
    }
}
