//! The generic child: one actor shell that every primitive (breaker, limiter, bulkhead)
//! runs in, and the spec the supervisor uses to (re)spawn it with the same shared state.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use crate::kind::Kind;

/// The primitive-specific half of a child actor. Implemented by each primitive's shared
/// state (`Arc<...>`); the actor shell holds no state of its own, so a restart loses nothing.
pub(crate) trait Primitive: Send + Sync + 'static {
    /// Messages particular to this primitive (reconfigure, manual state changes...).
    type Command: Send + 'static;

    /// What this primitive is.
    const KIND: Kind;

    /// The primitive's user-given name.
    fn name(&self) -> &Arc<str>;

    /// Where the hot path finds the current actor.
    fn slot(&self) -> &ActorSlot<Self::Command>;

    /// Periodic work due now (timers, expiry, health). Returns when to run again, if ever.
    /// Runs on start (so a restarted actor re-arms its timers from shared state), on every
    /// nudge, on every timer tick and after every command.
    fn upkeep(&self) -> Option<Duration>;

    /// Handles one command.
    fn handle(&self, command: Self::Command) -> impl Future<Output = ()> + Send;

    /// The actor stopped (shutdown, or on its way to a restart): last words, such as
    /// flushing counts that upkeep would have flushed later.
    fn stopped(&self) {}
}

/// The messages of a child actor.
#[derive(Debug)]
pub(crate) enum ChildMsg<C> {
    /// The hot path saw something that may need upkeep (deduplicated: one in flight).
    Nudge,
    /// The upkeep timer fired.
    Tick,
    /// A primitive-specific command.
    Command(C),
    /// Fault injection for supervision tests: the handler panics.
    #[cfg(feature = "test-util")]
    Panic,
    /// Fault injection for supervision tests: the handler returns `Err`.
    #[cfg(feature = "test-util")]
    Fail,
}

/// A failure to inject into a primitive's actor, to test supervision (feature `test-util`).
/// To test a kill, find the actor with `palisade::ractor::registry::where_is` and `kill()` it.
#[cfg(feature = "test-util")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The actor's message handler panics.
    Panic,
    /// The actor's message handler returns `Err`.
    Error,
}

/// The current actor of a primitive, as the hot path and handles see it.
#[derive(Debug)]
pub(crate) struct ActorSlot<C> {
    current: Mutex<Option<ActorRef<ChildMsg<C>>>>,
    nudge_pending: AtomicBool,
    /// Restarts since spawn, and whether the supervisor left the actor down: written by
    /// the supervisor, read by status queries that must not wait on it.
    restarts: AtomicU32,
    degraded: AtomicBool,
}

impl<C: Send + 'static> Default for ActorSlot<C> {
    fn default() -> Self {
        Self {
            current: Mutex::new(None),
            nudge_pending: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
            degraded: AtomicBool::new(false),
        }
    }
}

impl<C> ActorSlot<C> {
    /// Restarts of the primitive's actor since spawn.
    pub(crate) fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Acquire)
    }

    /// `true` once the supervisor has left the actor down.
    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }
}

impl<C: Send + 'static> ActorSlot<C> {
    fn set(&self, actor: Option<ActorRef<ChildMsg<C>>>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = actor;
    }

    fn get(&self) -> Option<ActorRef<ChildMsg<C>>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks the actor for upkeep, at most one request in flight. Never waits.
    #[inline]
    pub(crate) fn nudge(&self) {
        if self.nudge_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let sent = self.get().is_some_and(|a| a.cast(ChildMsg::Nudge).is_ok());
        if !sent {
            // No actor right now (restarting or degraded): let a later nudge try again.
            // A restarted actor runs its upkeep on start anyway.
            self.nudge_pending.store(false, Ordering::Release);
        }
    }

    /// Sends a command without waiting for anything; `false` when no actor is running.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn tell(&self, command: C) -> bool {
        self.get()
            .is_some_and(|a| a.cast(ChildMsg::Command(command)).is_ok())
    }

    /// Sends a command built around a reply port and waits for the reply. `None` when no
    /// actor is running or it stopped before replying.
    pub(crate) async fn ask<R: Send + 'static>(
        &self,
        make: impl FnOnce(ractor::RpcReplyPort<R>) -> C,
    ) -> Option<R> {
        let actor = self.get()?;
        let (tx, rx) = ractor::concurrency::oneshot();
        actor.cast(ChildMsg::Command(make(tx.into()))).ok()?;
        rx.await.ok()
    }

    /// Makes the current actor fail (supervision tests). `false` when no actor runs.
    #[cfg(feature = "test-util")]
    pub(crate) fn inject(&self, fault: Fault) -> bool {
        let msg = match fault {
            Fault::Panic => ChildMsg::Panic,
            Fault::Error => ChildMsg::Fail,
        };
        self.get().is_some_and(|a| a.cast(msg).is_ok())
    }
}

/// The actor shell. Stateless: all state is the primitive's shared state `P`.
#[derive(Debug)]
pub(crate) struct ChildActor<P>(std::marker::PhantomData<fn() -> P>);

impl<P> Default for ChildActor<P> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// The pending upkeep timer (ractor's `send_after` task).
type Timer<C> = JoinHandle<Result<(), ractor::MessagingErr<ChildMsg<C>>>>;

/// The actor's private state: the shared state and the pending upkeep timer.
#[derive(Debug)]
pub(crate) struct ChildState<P: Primitive> {
    shared: Arc<P>,
    timer: Option<Timer<P::Command>>,
}

impl<P: Primitive> ChildState<P> {
    fn run_upkeep(&mut self, myself: &ActorRef<ChildMsg<P::Command>>) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        if let Some(delay) = self.shared.upkeep() {
            self.timer = Some(myself.send_after(delay, || ChildMsg::Tick));
        }
    }
}

impl<P: Primitive> Actor for ChildActor<P> {
    type Msg = ChildMsg<P::Command>;
    type State = ChildState<P>;
    type Arguments = Arc<P>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        shared: Arc<P>,
    ) -> Result<Self::State, ActorProcessingErr> {
        shared.slot().set(Some(myself.clone()));
        shared.slot().nudge_pending.store(false, Ordering::Release);
        let mut state = ChildState {
            shared,
            timer: None,
        };
        state.run_upkeep(&myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        clear_if_current(&state.shared, &myself);
        state.shared.stopped();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ChildMsg::Nudge => {
                state
                    .shared
                    .slot()
                    .nudge_pending
                    .store(false, Ordering::Release);
            }
            ChildMsg::Tick => {}
            ChildMsg::Command(c) => state.shared.handle(c).await,
            #[cfg(feature = "test-util")]
            ChildMsg::Panic => {
                clear_if_current(&state.shared, &myself);
                panic!("injected panic in {} `{}`", P::KIND, state.shared.name())
            }
            #[cfg(feature = "test-util")]
            ChildMsg::Fail => {
                clear_if_current(&state.shared, &myself);
                return Err(
                    format!("injected failure in {} `{}`", P::KIND, state.shared.name()).into(),
                );
            }
        }
        state.run_upkeep(&myself);
        Ok(())
    }
}

fn clear_if_current<P: Primitive>(shared: &Arc<P>, me: &ActorRef<ChildMsg<P::Command>>) {
    let slot = shared.slot();
    let mut cur = slot.current.lock().unwrap_or_else(|p| p.into_inner());
    if cur.as_ref().is_some_and(|a| a.get_id() == me.get_id()) {
        *cur = None;
    }
}

/// Everything the supervisor needs to spawn a child, and spawn it again after a crash.
pub(crate) trait ChildSpec: Send + Sync + 'static {
    /// What the child is.
    fn kind(&self) -> Kind;
    /// The child's user-given name.
    fn name(&self) -> &Arc<str>;
    /// The child's last words when its actor is not running to say them (a degraded child
    /// at shutdown): what [`Primitive::stopped`] does.
    fn stopped(&self);
    /// The supervisor restarted the child's actor.
    fn note_restart(&self);
    /// The supervisor left the child's actor down.
    fn note_degraded(&self);
    /// Spawns the actor linked to `supervisor`, under `palisade.<kind>.<name>`, over the
    /// same shared state every time.
    fn spawn(
        &self,
        supervisor: ActorCell,
    ) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send + '_>>;
}

/// The registry name of a primitive: `palisade.<kind>.<name>`.
pub(crate) fn registry_name(kind: Kind, name: &str) -> String {
    format!("palisade.{}.{}", kind.as_str(), name)
}

/// The spec of a [`ChildActor`] over shared state `P`.
#[derive(Debug)]
pub(crate) struct PrimitiveSpec<P> {
    pub(crate) shared: Arc<P>,
}

impl<P: Primitive> ChildSpec for PrimitiveSpec<P> {
    fn kind(&self) -> Kind {
        P::KIND
    }

    fn name(&self) -> &Arc<str> {
        self.shared.name()
    }

    fn stopped(&self) {
        self.shared.stopped();
    }

    fn note_restart(&self) {
        self.shared.slot().restarts.fetch_add(1, Ordering::AcqRel);
    }

    fn note_degraded(&self) {
        self.shared.slot().degraded.store(true, Ordering::Release);
    }

    fn spawn(
        &self,
        supervisor: ActorCell,
    ) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send + '_>> {
        Box::pin(async move {
            let (actor, _join) = Actor::spawn_linked(
                Some(registry_name(P::KIND, self.shared.name())),
                ChildActor::<P>::default(),
                Arc::clone(&self.shared),
                supervisor,
            )
            .await?;
            Ok(actor.get_cell())
        })
    }
}
