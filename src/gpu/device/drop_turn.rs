//! The device's turn while an owner of GPU resources drops. Dropping a buffer destroys it at
//! once when no pending work uses it, and on wgpu's GL backend that takes the driver
//! context's lock, which panics after waiting a few seconds. So an owner (a model, a state,
//! a trainer, uploaded weights) holds the context's turn
//! ([`GpuContext::serializes_device_work`]) while its fields drop: a [`TurnStart`] as its
//! first field takes it, a [`TurnEnd`] as its last gives it back (fields drop in the order
//! they are declared). Where the backend needs no turn, both do nothing.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::context::GpuContext;

/// Neither has dropped yet.
const FRESH: u8 = 0;
/// The start has dropped and holds the turn.
const HELD: u8 = 1;
/// The end dropped first (the pair was not dropped as an owner's fields): nothing to do.
const SKIP: u8 = 2;

/// Takes the turn when it drops; see the module's notes.
pub(crate) struct TurnStart {
    ctx: GpuContext,
    state: Arc<AtomicU8>,
}

/// Gives the turn back when it drops; see the module's notes.
pub(crate) struct TurnEnd {
    ctx: GpuContext,
    state: Arc<AtomicU8>,
}

/// The pair for an owner of `ctx`'s resources: the start as its first field, the end as
/// its last.
pub(crate) fn drop_turn(ctx: &GpuContext) -> (TurnStart, TurnEnd) {
    let state = Arc::new(AtomicU8::new(FRESH));
    (
        TurnStart {
            ctx: ctx.clone(),
            state: state.clone(),
        },
        TurnEnd {
            ctx: ctx.clone(),
            state,
        },
    )
}

impl Drop for TurnStart {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(FRESH, HELD, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if let Some(turn) = self.ctx.device_turn() {
                // held on past this drop, for the owner's other fields; `TurnEnd` ends it
                std::mem::forget(turn);
            }
        }
    }
}

impl Drop for TurnEnd {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(HELD, SKIP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: the start took the turn on this thread (an owner's fields drop on one
            // thread, the start first) and forgot its guard; this gives it back once.
            unsafe { self.ctx.end_forgotten_turn() };
        } else {
            self.state.store(SKIP, Ordering::Release);
        }
    }
}
