//! The deadline of a request body: it must arrive whole in time, however steadily it trickles
//! (an idle timeout per chunk would let a client send one byte a second for ever).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;

/// Wraps the body of `request` so that reading it fails once `limit` has passed since now.
/// A request without a body is left alone: there is nothing to wait for.
pub(super) fn with_body_deadline(request: Request, limit: Duration) -> (Request, Arc<AtomicBool>) {
    let expired = Arc::new(AtomicBool::new(false));
    if request.body().is_end_stream() {
        return (request, expired);
    }
    let (parts, body) = request.into_parts();
    let body = DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limit)),
        expired: expired.clone(),
    };
    (Request::from_parts(parts, Body::new(body)), expired)
}

/// A request body that must arrive whole before a deadline, however steadily it trickles.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
