//! Streaming with [`GpuLstm`]: the state of a batch of streams stays on the GPU ([`GpuState`])
//! and each call advances it: a chunk of a long sequence, one timestep from the host, or one
//! timestep recorded into the caller's encoder with the caller's buffers.

use super::state::GpuState;
use crate::error::{Error, Result};
use crate::gpu::device::{guarded, submit_and_read, PartTimer};
use crate::gpu::forward::GpuLstm;
use crate::gpu::kernels::to_u32;
use crate::gpu::plan::ProfiledDispatch;
use crate::shape::{Batched, Dims, Inputs};
use crate::tensor::Tensor;

/// Per dispatch of a profiled step, its description and (start, end) in µs of GPU time (see
/// [`GpuLstm::profile_step`]).
#[doc(hidden)]
pub type StepProfile = Vec<(ProfiledDispatch, (f64, f64))>;

impl GpuLstm {
    /// Runs the model on `x` (`[T, B, I]`, `[B, T, I]` when `batch_first`) starting from
    /// `state` and leaving the final state in it, on the GPU; returns the output (as
    /// [`GpuLstm::forward`]'s). Feeding a long sequence in chunks this way gives bitwise the
    /// output and final state of one forward over the whole sequence (a unidirectional
    /// model; a bidirectional one runs each chunk in both directions on its own).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_state(&mut self, x: &Tensor, state: &GpuState) -> Result<Tensor> {
        pollster::block_on(self.forward_state_async(x, state))
    }

    /// The async form of [`GpuLstm::forward_state`].
    pub async fn forward_state_async(&mut self, x: &Tensor, state: &GpuState) -> Result<Tensor> {
        if x.shape().len() != 3 {
            return Err(Error::Input(
                "forward_state needs a batched input [T, B, I] ([B, T, I] batch_first)".into(),
            ));
        }
        let batched = Batched::new(&self.weights.config, &Inputs::new(x))?;
        let dims = batched.dims;
        self.prepare_async(dims).await?;
        let ws = self.workspace()?;
        let y_len = ws.buffers.lens.0;
        let during = "forward with a state";
        let y = submit_and_read(self.context(), during, &ws.readback, y_len, |encoder| {
            self.write_batched(&batched)?;
            self.encode_with_state(encoder, state)?;
            let bytes = (y_len * 4) as u64;
            encoder.copy_buffer_to_buffer(ws.buffers.output(), 0, &ws.readback, 0, bytes);
            Ok(())
        })
        .await?;
        self.output_tensor(dims, y)
    }

    /// One timestep of a unidirectional model for B streams: `x_t` `[B, I]` in, the step's
    /// output `[B, O]` out (O: the head's width, else H_out), the state advanced on the GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, x_t: &Tensor, state: &GpuState) -> Result<Tensor> {
        pollster::block_on(self.step_async(x_t, state))
    }

    /// The async form of [`GpuLstm::step`].
    pub async fn step_async(&mut self, x_t: &Tensor, state: &GpuState) -> Result<Tensor> {
        let (x, batch) = self.one_step_input(x_t)?;
        let y = self.forward_state_async(&x, state).await?;
        let width = y.data().len() / batch.max(1);
        Tensor::new([batch, width], y.into_data())
    }

    /// Records one timestep entirely on the GPU into the caller's `encoder`: reads `input`
    /// (`[B, I]` f32, COPY_SRC), advances `state`, writes the step's output `[B, O]` into
    /// `output` (COPY_DST). Prepare the shape once with
    /// `prepare(Dims { seq_len: 1, batch: B })`; nothing is submitted or read back.
    pub fn encode_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        state: &GpuState,
    ) -> Result<()> {
        self.check_streamable()?;
        let ws = self.workspace()?;
        let batch = state.batch();
        if ws.dims != (Dims { seq_len: 1, batch }) {
            return Err(Error::Input(format!(
                "encode_step needs the shape (T, B) = (1, {batch}) prepared (prepare(Dims {{ seq_len: 1, batch: {batch} }})); the current one is ({}, {})",
                ws.dims.seq_len, ws.dims.batch
            )));
        }
        let x_bytes = (batch * self.weights.config.input_size * 4) as u64;
        let y_bytes = (ws.buffers.lens.0 * 4) as u64;
        self.encode_between(encoder, (input, x_bytes), (output, y_bytes), |encoder| {
            self.encode_with_state(encoder, state)
        })
    }

    /// Records a copy of the caller's `input` (its first `x_bytes`, COPY_SRC) into the
    /// prepared x buffer, then `pass`, then a copy of the first `y_bytes` of the output into
    /// the caller's `output` (COPY_DST); the caller's buffers are checked first.
    pub(crate) fn encode_between(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        (input, x_bytes): (&wgpu::Buffer, u64),
        (output, y_bytes): (&wgpu::Buffer, u64),
        pass: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        let ws = self.workspace()?;
        check_buffer("input", input, wgpu::BufferUsages::COPY_SRC, x_bytes)?;
        check_buffer("output", output, wgpu::BufferUsages::COPY_DST, y_bytes)?;
        encoder.copy_buffer_to_buffer(input, 0, &ws.buffers.x, 0, x_bytes);
        pass(encoder)?;
        encoder.copy_buffer_to_buffer(ws.buffers.output(), 0, output, 0, y_bytes);
        Ok(())
    }

    /// Records the pass of the prepared shape into `encoder`, starting from `state` and
    /// leaving the final state in it (the pass's own state copies read and write the state's
    /// buffers; the input must already be in [`GpuLstm::input_buffer`]).
    pub fn encode_with_state(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        state: &GpuState,
    ) -> Result<()> {
        let ws = self.workspace()?;
        ws.plan
            .encode_rebound(encoder, &self.state_rebinding(state)?);
        Ok(())
    }

    /// A streamed step's input `x_t` `[B, I]` as a one-step sequence `[1, B, I]`, and B.
    fn one_step_input(&self, x_t: &Tensor) -> Result<(Tensor, usize)> {
        self.check_streamable()?;
        let input = self.weights.config.input_size;
        let batch = x_t.shape().first().copied().unwrap_or(0);
        x_t.expect_shape("x_t (one step, [B, I])", &[batch, input])?;
        Ok((Tensor::new([1, batch, input], x_t.data().to_vec())?, batch))
    }

    /// The prepared pass's state buffers, each paired with the buffer of `state` its copies
    /// go to instead (h0 and h_n to h, c0 and c_n to c), after checking `state` fits.
    fn state_rebinding<'a>(
        &'a self,
        state: &'a GpuState,
    ) -> Result<[(&'a wgpu::Buffer, &'a wgpu::Buffer); 4]> {
        let ws = self.workspace()?;
        state.check(&self.weights.config, ws.dims.batch)?;
        let b = &ws.buffers;
        let (h, c) = (state.h_buffer(), state.c_buffer());
        Ok([(&b.h0, h), (&b.c0, c), (&b.h_n, h), (&b.c_n, c)])
    }

    /// One timestep like [`GpuLstm::step`], with every dispatch timestamped on its own:
    /// per dispatch its kernel, the copies recorded before it (count, bytes) and its (start,
    /// end) in µs of GPU time from a mark before the step's first command; the gap before a
    /// dispatch is its copies and the barriers. Last comes an end mark (kernel "-") after the
    /// final copies. `None` without TIMESTAMP_QUERY. For `bench --stream --breakdown`.
    #[doc(hidden)]
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile_step(&mut self, x_t: &Tensor, state: &GpuState) -> Result<Option<StepProfile>> {
        pollster::block_on(self.profile_step_async(x_t, state))
    }

    /// The async form of [`GpuLstm::profile_step`].
    #[doc(hidden)]
    pub async fn profile_step_async(
        &mut self,
        x_t: &Tensor,
        state: &GpuState,
    ) -> Result<Option<StepProfile>> {
        let (x, _) = self.one_step_input(x_t)?;
        let batched = Batched::new(&self.weights.config, &Inputs::new(&x))?;
        self.prepare_async(batched.dims).await?;
        let ctx = self.context().clone();
        let ws = self.workspace()?;
        // spans: a start mark, each dispatch, an end mark
        let spans = to_u32("dispatches", ws.plan.dispatch_count())? + 2;
        let Some(timer) =
            guarded(&ctx, "timer allocation", || Ok(PartTimer::new(&ctx, spans))).await?
        else {
            return Ok(None);
        };
        let parts = guarded(&ctx, "profiled step", || {
            self.write_batched(&batched)?;
            let rebind = self.state_rebinding(state)?;
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            timer.mark(&mut encoder, 0);
            let parts = ws
                .plan
                .encode_profiled(&mut encoder, &rebind, timer.queries(), 1);
            timer.mark(&mut encoder, spans - 1);
            timer.resolve(&mut encoder, spans);
            ctx.submit([encoder.finish()]);
            Ok(parts)
        })
        .await?;
        let times = timer.read_us_async(&ctx, spans).await?;
        Ok(Some(
            parts.into_iter().zip(times.into_iter().skip(1)).collect(),
        ))
    }

    /// Streaming runs forward in time only.
    fn check_streamable(&self) -> Result<()> {
        if self.weights.config.bidirectional {
            return Err(Error::Config(
                "streaming needs a unidirectional model; a bidirectional one reads the whole sequence backwards too".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a caller's `buffer` has `usage` and at least `bytes`; the error names it.
fn check_buffer(
    what: &str,
    buffer: &wgpu::Buffer,
    usage: wgpu::BufferUsages,
    bytes: u64,
) -> Result<()> {
    if !buffer.usage().contains(usage) {
        return Err(Error::Input(format!(
            "the {what} buffer needs {usage:?} usage; it has {:?}",
            buffer.usage()
        )));
    }
    if buffer.size() < bytes {
        return Err(Error::Input(format!(
            "the {what} buffer holds {} bytes; the step needs {bytes}",
            buffer.size()
        )));
    }
    Ok(())
}
