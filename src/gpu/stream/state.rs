//! `GpuState`: the recurrent state of a batch of streams, kept on the GPU between calls.

use crate::config::LstmConfig;
use crate::error::{Error, Result};
use crate::gpu::device::{
    drop_turn, guarded_now, staging, storage_zeros, submit_and_read, GpuContext, TurnEnd, TurnStart,
};
use crate::gpu::kernels::check_size;
use crate::tensor::Tensor;

/// h `[L*D, B, H_out]` and c `[L*D, B, H]` (f32, index `layer * D + direction`) of `B`
/// independent streams: what h0/c0 are to a forward pass and h_n/c_n come out as. A pass
/// run with a state ([`crate::gpu::GpuLstm::forward_state`], [`crate::gpu::GpuLstm::step`],
/// [`crate::gpu::GpuLstm::encode_with_state`]) starts from it and leaves its final state in it,
/// all on the GPU, so a long sequence can be fed in chunks or one step at a time.
pub struct GpuState {
    /// first field: takes the device's turn while the others drop (`drop_turn.rs`)
    _turn_start: TurnStart,
    h: wgpu::Buffer,
    c: wgpu::Buffer,
    /// (L*D, B, H_out, H)
    dims: (usize, usize, usize, usize),
    /// last field: gives the turn back
    _turn_end: TurnEnd,
}

impl GpuState {
    /// Zeros (PyTorch's default initial state) for `batch` streams of a model with `config`.
    pub fn zeros(ctx: &GpuContext, config: &LstmConfig, batch: usize) -> Result<Self> {
        let states = config.num_layers * config.num_directions();
        let dims = (states, batch, config.output_size(), config.hidden_size);
        let limits = ctx.device().limits();
        let len = |width: usize| states.saturating_mul(batch).saturating_mul(width);
        check_size(&limits, "the state h [L*D, B, H_out]", len(dims.2))?;
        check_size(&limits, "the state c [L*D, B, H]", len(dims.3))?;
        if batch == 0 {
            return Err(Error::Input("a state needs a batch of at least 1".into()));
        }
        guarded_now(ctx, "state allocation", || {
            let device = ctx.device();
            let (_turn_start, _turn_end) = drop_turn(ctx);
            Ok(Self {
                _turn_start,
                h: storage_zeros(device, "state h", states * batch * dims.2),
                c: storage_zeros(device, "state c", states * batch * dims.3),
                dims,
                _turn_end,
            })
        })
    }

    /// A state holding `h0` `[L*D, B, H_out]` and `c0` `[L*D, B, H]`.
    pub fn from_host(
        ctx: &GpuContext,
        config: &LstmConfig,
        h0: &Tensor,
        c0: &Tensor,
    ) -> Result<Self> {
        let batch = h0.shape().get(1).copied().unwrap_or(0);
        let state = Self::zeros(ctx, config, batch.max(1))?;
        state.write(ctx, h0, c0)?;
        Ok(state)
    }

    /// Overwrites the state with `h` `[L*D, B, H_out]` and `c` `[L*D, B, H]`.
    pub fn write(&self, ctx: &GpuContext, h: &Tensor, c: &Tensor) -> Result<()> {
        let (states, batch, h_out, hidden) = self.dims;
        h.expect_shape("h (the state's [L*D, B, H_out])", &[states, batch, h_out])?;
        c.expect_shape("c (the state's [L*D, B, H])", &[states, batch, hidden])?;
        guarded_now(ctx, "writing a state", || {
            let queue = ctx.queue();
            queue.write_buffer(&self.h, 0, bytemuck::cast_slice(h.data()));
            queue.write_buffer(&self.c, 0, bytemuck::cast_slice(c.data()));
            Ok(())
        })
    }

    /// Back to zeros (ordered after the work already submitted).
    pub fn reset(&self, ctx: &GpuContext) -> Result<()> {
        guarded_now(ctx, "resetting a state", || {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            encoder.clear_buffer(&self.h, 0, None);
            encoder.clear_buffer(&self.c, 0, None);
            ctx.submit([encoder.finish()]);
            Ok(())
        })
    }

    /// Copies the state to the host (blocks; see [`GpuState::read_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, ctx: &GpuContext) -> Result<(Tensor, Tensor)> {
        pollster::block_on(self.read_async(ctx))
    }

    /// Copies the state to the host: (h `[L*D, B, H_out]`, c `[L*D, B, H]`).
    pub async fn read_async(&self, ctx: &GpuContext) -> Result<(Tensor, Tensor)> {
        let (states, batch, h_out, hidden) = self.dims;
        let (h_len, c_len) = (states * batch * h_out, states * batch * hidden);
        let stage = guarded_now(ctx, "state readback", || {
            Ok(staging(ctx.device(), "state readback", h_len + c_len))
        })?;
        let mut h = submit_and_read(ctx, "state readback", &stage, h_len + c_len, |encoder| {
            let (h_bytes, c_bytes) = ((h_len * 4) as u64, (c_len * 4) as u64);
            encoder.copy_buffer_to_buffer(&self.h, 0, &stage, 0, h_bytes);
            encoder.copy_buffer_to_buffer(&self.c, 0, &stage, h_bytes, c_bytes);
            Ok(())
        })
        .await?;
        let c = h.split_off(h_len);
        Ok((
            Tensor::new([states, batch, h_out], h)?,
            Tensor::new([states, batch, hidden], c)?,
        ))
    }

    /// The h buffer `[L*D, B, H_out]`, f32.
    pub fn h_buffer(&self) -> &wgpu::Buffer {
        &self.h
    }

    /// The c buffer `[L*D, B, H]`, f32.
    pub fn c_buffer(&self) -> &wgpu::Buffer {
        &self.c
    }

    /// B: the streams it holds.
    pub fn batch(&self) -> usize {
        self.dims.1
    }

    /// Whether it fits a pass of `config` over `batch` streams; the error names both shapes.
    pub(crate) fn check(&self, config: &LstmConfig, batch: usize) -> Result<()> {
        let want = (
            config.num_layers * config.num_directions(),
            batch,
            config.output_size(),
            config.hidden_size,
        );
        if self.dims != want {
            return Err(Error::Input(format!(
                "the state holds (L*D, B, H_out, H) = {:?} but the pass needs {want:?}",
                self.dims
            )));
        }
        Ok(())
    }
}
