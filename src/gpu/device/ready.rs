//! Polling a future once: what is known at once natively (an error scope's pop) without
//! blocking, and nothing on the web, where it comes later.

/// The output of `future` if it is ready at once, without blocking: an error scope's pop
/// on native backends, where errors are known as soon as the call returns. On the web it is
/// pending; the caller's own scopes then report the error.
pub(crate) fn ready_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}
