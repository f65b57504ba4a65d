//! Chunking over T: the steps of a layer run in chunks, each with its own input projection
//! into a `pre` buffer that holds one chunk. A chunk is as long as `pre` may be (the binding
//! limit); for the per-step kernel, as the step-index slots allow; for the sequence kernel,
//! at most [`MAX_SEQUENCE_STEPS`], since its dispatch loops over the chunk's steps. The state
//! carries from chunk to chunk through the state slots, and every element is computed exactly
//! as without chunking, so the results are bitwise the same.

use crate::error::{Error, Result};
use crate::gpu::device::MAX_CHUNK_STEPS;
use crate::gpu::kernels::{binding_limit, Recurrence};

/// Steps per dispatch of the sequence kernel: lavapipe ends any shader loop after 65,535
/// iterations, and one very long dispatch can trip an OS's GPU watchdog.
pub(crate) const MAX_SEQUENCE_STEPS: usize = 16384;

/// Steps `[start, start + len)`; direction 1 runs them at times
/// `[seq_len - start - len, seq_len - start)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub start: usize,
    pub len: usize,
}

impl Chunk {
    /// The first time step `dir` visits in this chunk's time range (the row of `pre` 0).
    pub fn first_time(self, dir: usize, seq_len: usize) -> usize {
        if dir == 0 {
            self.start
        } else {
            seq_len - self.start - self.len
        }
    }
}

/// The longest chunk for a layer: `pre_row_floats` is one step of `pre` (B * D * 4H).
pub(crate) fn chunk_steps(
    limits: &wgpu::Limits,
    variant: Recurrence,
    seq_len: usize,
    pre_row_floats: usize,
    max_steps: Option<usize>,
) -> Result<usize> {
    let (limit, available) = binding_limit(limits);
    let row_bytes = pre_row_floats as u64 * 4;
    let by_memory = (available / row_bytes.max(1)) as usize;
    if by_memory == 0 {
        return Err(Error::Limit {
            what: format!("one step of the input projection [B, D*4H] ({row_bytes} bytes)"),
            limit,
            needed: row_bytes,
            available,
        });
    }
    let per_dispatch = if variant.is_sequence() {
        MAX_SEQUENCE_STEPS
    } else {
        MAX_CHUNK_STEPS
    };
    let mut len = seq_len.min(by_memory).min(per_dispatch);
    if let Some(max) = max_steps {
        len = len.min(max);
    }
    Ok(len.max(1))
}

/// The chunks of `seq_len` steps, `len` at a time.
pub(crate) fn chunks(seq_len: usize, len: usize) -> impl Iterator<Item = Chunk> {
    (0..seq_len).step_by(len.max(1)).map(move |start| Chunk {
        start,
        len: len.min(seq_len - start),
    })
}
