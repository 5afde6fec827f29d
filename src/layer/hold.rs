//! How long a bulkhead layer holds an admitted request's permit: until the response future
//! resolves ([`UntilResponse`], the default), or until a streamed HTTP body ends
//! ([`UntilBodyEnd`]: the body carries the permit).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::bulkhead::OwnedBulkheadPermit;

/// When an admitted request gives its bulkhead permit back.
pub trait Hold<T>: Copy {
    /// The response, as the layer passes it on.
    type Response;

    /// The response of a request holding `permit`: the permit stays in the response future
    /// (and goes back when the future is dropped) unless this takes it.
    fn hold(self, permit: &mut Option<OwnedBulkheadPermit>, response: T) -> Self::Response;
}

/// The permit goes back with the response future: when it has resolved and is dropped (as
/// tower's `ConcurrencyLimit` gives its permit back), or is dropped before resolving.
#[derive(Clone, Copy, Debug, Default)]
pub struct UntilResponse;

impl<T> Hold<T> for UntilResponse {
    type Response = T;

    #[inline]
    fn hold(self, _: &mut Option<OwnedBulkheadPermit>, response: T) -> T {
        response
    }
}

/// The permit goes back when the response body ends, fails or is dropped: a streamed
/// download keeps its slot while it streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct UntilBodyEnd;

impl<B> Hold<http::Response<B>> for UntilBodyEnd {
    type Response = http::Response<PermitBody<B>>;

    fn hold(
        self,
        permit: &mut Option<OwnedBulkheadPermit>,
        response: http::Response<B>,
    ) -> Self::Response {
        response.map(|inner| PermitBody {
            inner,
            permit: permit.take(),
        })
    }
}

pin_project! {
    /// A response body that holds a bulkhead permit until it ends ([`UntilBodyEnd`]).
    #[derive(Debug, Default)]
    pub struct PermitBody<B> {
        #[pin]
        inner: B,
        permit: Option<OwnedBulkheadPermit>,
    }
}

impl<B> PermitBody<B> {
    /// `true` while the body still holds its permit.
    pub fn holds_permit(&self) -> bool {
        self.permit.is_some()
    }
}

/// A rejection's body (it holds no permit).
impl<B: From<String>> From<String> for PermitBody<B> {
    fn from(s: String) -> Self {
        Self {
            inner: B::from(s),
            permit: None,
        }
    }
}

impl<B: Body> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if matches!(frame, None | Some(Err(_))) {
            this.permit.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
