//! The one error path of the GPU calls: every library call that touches the device runs
//! under [`Scopes`] (validation, out-of-memory and internal error scopes, which wgpu keeps
//! per thread) and turns what they caught into this crate's [`Error`]. Buffer helpers note
//! each allocation (`allocations.rs`), so that an out-of-memory error can name the buffer and
//! its size.
//!
//! A call that finds the device lost returns [`Error::DeviceLost`] before touching it.
//!
//! The scopes are per thread, so a call must pop them on the thread that pushed them. The
//! async calls keep no scope open across an `.await` that can suspend: the pops resolve at
//! once on native backends, and the waits for the GPU come after the scopes are popped.

use super::allocations;
use super::context::GpuContext;
use super::ready::ready_now;
use crate::error::{Error, Result};

/// Error scopes pushed for one library call (pop them with [`Scopes::finish`]), and the
/// device's turn where the backend needs one ([`GpuContext::serializes_device_work`]),
/// held until the scopes are popped.
pub(crate) struct Scopes<'a> {
    turn: Option<parking_lot::ReentrantMutexGuard<'a, ()>>,
    during: &'static str,
    internal: wgpu::ErrorScopeGuard,
    out_of_memory: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    first_allocation: usize,
}

impl<'a> Scopes<'a> {
    /// Pushes the scopes for `during`, or [`Error::DeviceLost`] if the device is lost.
    pub fn push(ctx: &'a GpuContext, during: &'static str) -> Result<Self> {
        ctx.check_alive(during)?;
        let turn = ctx.device_turn();
        let device = ctx.device();
        let first_allocation = allocations::open();
        Ok(Self {
            turn,
            during,
            internal: device.push_error_scope(wgpu::ErrorFilter::Internal),
            out_of_memory: device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            validation: device.push_error_scope(wgpu::ErrorFilter::Validation),
            first_allocation,
        })
    }

    /// Pops the scopes: the first error they caught, as [`Error`]. Device loss comes first,
    /// then out of memory (naming the largest allocation of the call; a buffer larger than
    /// `max_buffer_size` is out of memory too), then validation and internal errors.
    /// The turn ends with the pops, before the first wait (so that the future holds no
    /// lock and stays `Send`).
    pub fn finish(self, ctx: &'a GpuContext) -> impl std::future::Future<Output = Result<()>> + 'a {
        let during = self.during;
        // all three popped before the first wait: a pop takes effect when called, and a
        // scope left to its guard's drop (a caller that stops polling, as `guarded_now` on
        // the web) would be popped out of order
        let validation = self.validation.pop();
        let out_of_memory = self.out_of_memory.pop();
        let internal = self.internal.pop();
        drop(self.turn);
        let first_allocation = self.first_allocation;
        report(
            ctx,
            during,
            first_allocation,
            (validation, out_of_memory, internal),
        )
    }
}

/// What the popped scopes caught, as [`Error`] (see [`Scopes::finish`]).
async fn report(
    ctx: &GpuContext,
    during: &'static str,
    first_allocation: usize,
    (validation, out_of_memory, internal): (
        impl std::future::Future<Output = Option<wgpu::Error>>,
        impl std::future::Future<Output = Option<wgpu::Error>>,
        impl std::future::Future<Output = Option<wgpu::Error>>,
    ),
) -> Result<()> {
    let (validation, out_of_memory, internal) =
        (validation.await, out_of_memory.await, internal.await);
    let allocations = allocations::close(first_allocation);
    ctx.check_alive(during)?;
    let limits = ctx.device().limits();
    let largest = |too_big: bool| {
        allocations
            .iter()
            .filter(|(_, bytes)| !too_big || *bytes > limits.max_buffer_size)
            .max_by_key(|(_, bytes)| *bytes)
    };
    let out_of_memory_error = |what, bytes| Error::OutOfMemory {
        what,
        bytes,
        max_buffer_size: limits.max_buffer_size,
        max_binding: limits.max_storage_buffer_binding_size,
    };
    let too_big = largest(true).filter(|_| validation.is_some());
    if let Some((label, bytes)) = too_big.or(out_of_memory.as_ref().and(largest(false))) {
        return Err(out_of_memory_error(format!("{label} ({during})"), *bytes));
    }
    match validation.or(out_of_memory).or(internal) {
        Some(wgpu::Error::OutOfMemory { .. }) => Err(out_of_memory_error(during.to_string(), 0)),
        Some(source) => Err(Error::Gpu { during, source }),
        None => Ok(()),
    }
}

/// Runs `body` under [`Scopes`] for `during`: its result, unless the GPU reported an error
/// (which then comes first: it is usually the cause of any error `body` returned).
pub(crate) async fn guarded<T>(
    ctx: &GpuContext,
    during: &'static str,
    body: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let scopes = Scopes::push(ctx, during)?;
    let out = ctx.contained(during, body);
    scopes.finish(ctx).await?;
    out
}

/// [`guarded`] for calls that do not wait (recording, uploads): the scopes' errors are known
/// at once on native backends; on the web, where they come later, such a call reports none
/// and the next waiting call's scopes or readback report the failure.
pub(crate) fn guarded_now<T>(
    ctx: &GpuContext,
    during: &'static str,
    body: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let scopes = Scopes::push(ctx, during)?;
    let out = ctx.contained(during, body);
    ready_now(scopes.finish(ctx)).unwrap_or(Ok(()))?;
    out
}
