//! [`BulkheadLayer`]: a concurrency limit around a tower service.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::answer::{Answer, Http, Typed};
use super::future::{Finish, LayerFuture};
use super::hold::{Hold, UntilBodyEnd, UntilResponse};
use crate::bulkhead::{Bulkhead, BulkheadRejected, OwnedBulkheadPermit};
use crate::error::CallError;

/// A wait for a permit (backpressure), in a `Mutex` only so the service stays `Sync` (axum
/// asks it of layered services): it is only ever reached through `&mut self`, never locked.
type Acquiring = std::sync::Mutex<
    Pin<Box<dyn Future<Output = Result<OwnedBulkheadPermit, BulkheadRejected>> + Send>>,
>;

/// Puts a [`Bulkhead`] in front of a service: at most `max_concurrent` requests in the
/// inner service at once. A request takes an owned permit; its response future holds it and
/// gives it back when dropped, whether it resolved or was cancelled (as tower's
/// `ConcurrencyLimit` does: every executor drops a future once it has resolved).
///
/// Two ways to meet a full bulkhead:
/// - **reject** (the default): `call` takes a free permit or rejects at once
///   (`CallError::BulkheadFull`, or a 503 with [`http`](Self::http)); `poll_ready` is the
///   inner service's. The bulkhead's wait queue is not used: a server sheds load rather than
///   queueing it behind its own workers.
/// - [**backpressure**](Self::backpressure): `poll_ready` waits for a permit as the bulkhead is
///   configured (`max_wait`, `max_queue`, the task's deadline), then for the inner service.
///   A wait that ends without a permit makes the next `call` answer with the rejection.
#[derive(Clone, Debug)]
pub struct BulkheadLayer<A = Typed, H = UntilResponse> {
    bulkhead: Bulkhead,
    answer: A,
    backpressure: bool,
    hold: H,
}

impl BulkheadLayer {
    /// The layer for `bulkhead` (shared by every service it makes).
    pub fn new(bulkhead: &Bulkhead) -> Self {
        Self {
            bulkhead: bulkhead.clone(),
            answer: Typed,
            backpressure: false,
            hold: UntilResponse,
        }
    }
}

impl<A, H> BulkheadLayer<A, H> {
    /// HTTP answers: a full bulkhead is a 503.
    pub fn http(self) -> BulkheadLayer<Http, H> {
        self.answer(Http::default())
    }

    /// Another way to answer.
    pub fn answer<A2>(self, answer: A2) -> BulkheadLayer<A2, H> {
        BulkheadLayer {
            bulkhead: self.bulkhead,
            answer,
            backpressure: self.backpressure,
            hold: self.hold,
        }
    }

    /// HTTP: the response body carries the permit, which goes back when the body ends,
    /// fails or is dropped (a streamed download keeps its slot while it streams). The
    /// response body becomes [`PermitBody<B>`](super::PermitBody).
    pub fn until_body_end(self) -> BulkheadLayer<A, UntilBodyEnd> {
        BulkheadLayer {
            bulkhead: self.bulkhead,
            answer: self.answer,
            backpressure: self.backpressure,
            hold: UntilBodyEnd,
        }
    }

    /// `poll_ready` waits for a permit instead of `call` rejecting at once.
    pub fn backpressure(mut self, on: bool) -> Self {
        self.backpressure = on;
        self
    }
}

impl<S, A: Clone, H: Copy> Layer<S> for BulkheadLayer<A, H> {
    type Service = BulkheadService<S, A, H>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead.clone(),
            answer: self.answer.clone(),
            backpressure: self.backpressure,
            hold: self.hold,
            reserved: None,
            acquiring: None,
        }
    }
}

/// The service [`BulkheadLayer`] makes. Its clones share the bulkhead; a clone starts
/// without a reserved permit.
pub struct BulkheadService<S, A = Typed, H = UntilResponse> {
    inner: S,
    bulkhead: Bulkhead,
    answer: A,
    backpressure: bool,
    hold: H,
    /// Backpressure: what `poll_ready` got for the next `call`.
    reserved: Option<Result<OwnedBulkheadPermit, BulkheadRejected>>,
    acquiring: Option<Acquiring>,
}

impl<S: Clone, A: Clone, H: Copy> Clone for BulkheadService<S, A, H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bulkhead: self.bulkhead.clone(),
            answer: self.answer.clone(),
            backpressure: self.backpressure,
            hold: self.hold,
            reserved: None,
            acquiring: None,
        }
    }
}

impl<S: std::fmt::Debug, A: std::fmt::Debug, H> std::fmt::Debug for BulkheadService<S, A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkheadService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead.name())
            .field("backpressure", &self.backpressure)
            .finish_non_exhaustive()
    }
}

impl<S, Req, A, H> Service<Req> for BulkheadService<S, A, H>
where
    S: Service<Req>,
    H: Hold<S::Response>,
    A: Answer<H::Response, S::Error>,
{
    type Response = A::Response;
    type Error = A::Error;
    type Future = BulkheadFuture<S::Future, A, H, Result<A::Response, A::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.backpressure && self.reserved.is_none() {
            // a free permit needs no wait (and no boxed future)
            if self.acquiring.is_none() {
                self.reserved = self.bulkhead.take_free_owned().map(Ok);
            }
            if self.reserved.is_none() {
                let bulkhead = &self.bulkhead;
                let acquiring = self.acquiring.get_or_insert_with(|| {
                    let bulkhead = bulkhead.clone();
                    std::sync::Mutex::new(Box::pin(async move { bulkhead.acquire_owned().await }))
                });
                let acquiring = acquiring.get_mut().unwrap_or_else(|p| p.into_inner());
                self.reserved = Some(ready!(acquiring.as_mut().poll(cx)));
                self.acquiring = None;
            }
        }
        self.inner.poll_ready(cx).map_err(|e| self.answer.error(e))
    }

    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        let permit = match self.reserved.take() {
            Some(reserved) => reserved,
            None => self.bulkhead.try_acquire_owned(),
        };
        match permit {
            Ok(permit) => LayerFuture::running(
                self.inner.call(req),
                BulkheadDone {
                    permit: Some(permit),
                    hold: self.hold,
                },
                self.answer.clone(),
            ),
            Err(rejected) => LayerFuture::rejected(&self.answer, CallError::from(rejected)),
        }
    }
}

/// What a bulkhead layer does when the inner future ends: hands the permit to the response
/// body ([`UntilBodyEnd`]) or leaves it to go back with the future.
#[doc(hidden)]
#[derive(Debug)]
pub struct BulkheadDone<H> {
    /// Taken by [`UntilBodyEnd`]; otherwise given back when the future is dropped.
    permit: Option<OwnedBulkheadPermit>,
    hold: H,
}

impl<T, E, A, H> Finish<Result<T, E>, A> for BulkheadDone<H>
where
    H: Hold<T>,
    A: Answer<H::Response, E>,
{
    type Output = Result<A::Response, A::Error>;

    #[inline]
    fn finish(&mut self, output: Result<T, E>, answer: &A) -> Self::Output {
        let output = output.map(|response| self.hold.hold(&mut self.permit, response));
        answer.pass(output, None)
    }
}

/// The response future of [`BulkheadService`]: holds the permit until it has resolved and
/// is dropped (or is dropped before).
pub type BulkheadFuture<F, A, H, R> = LayerFuture<F, A, BulkheadDone<H>, R>;
