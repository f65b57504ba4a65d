//! `GpuLstm`: an LSTM whose weights live on the GPU, uploaded once, reused by every call.

use std::sync::Arc;

use super::buffers::{read_f32_async, submit_and_read};
use super::choice::KernelChoice;
use super::context::GpuContext;
use super::forward::ForwardOptions;
use super::guard::{guarded, guarded_now};
use super::plan::Plan;
use super::plan::ProfiledDispatch;
use super::resident::{GpuWeights, ResidentWeights};
use super::sizes::to_u32;
use super::state::GpuState;
use super::timer::{GpuTimer, PartTimer};
use super::variant::StepVariant;
use super::workspace::Workspace;
use crate::error::{Error, Result};
use crate::shape::{Batched, Dims, Inputs, LstmOutput};
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// An LSTM (and optional head) resident on a GPU. Weights are uploaded once by
/// [`GpuLstm::new`] (or shared with other models and pools through [`GpuWeights`]); buffers
/// for a given `(T, B)` are allocated on first use of that shape and reused after, for the
/// last [`PREPARED_SHAPES`] shapes used.
///
/// Host-level use: [`GpuLstm::forward`]. Embedding in a wgpu application:
/// [`GpuLstm::prepare`], write [`GpuLstm::input_buffer`], [`GpuLstm::encode`] into your
/// encoder, then read [`GpuLstm::output_buffer`] (and `h_n`/`c_n`) on the GPU.
///
/// The recurrent kernel is chosen per shape and device ([`StepVariant::choose`]);
/// [`GpuLstm::set_kernel`] forces one.
pub struct GpuLstm {
    ctx: GpuContext,
    pub(crate) weights: Arc<ResidentWeights>,
    options: ForwardOptions,
    /// the prepared shapes, most recently used first
    workspaces: Vec<Workspace>,
    /// made on the first timed forward
    timer: Option<GpuTimer>,
}

/// Per dispatch of a profiled step, its description and (start, end) in µs of GPU time (see
/// [`GpuLstm::profile_step`]).
#[doc(hidden)]
pub type StepProfile = Vec<(ProfiledDispatch, (f64, f64))>;

/// Shapes whose buffers a model keeps prepared at once (least recently used dropped first).
pub const PREPARED_SHAPES: usize = 4;

impl GpuLstm {
    /// Uploads `weights` (re-laid out for the kernels) to `ctx`'s device.
    pub fn new(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, weights))
    }

    /// The async form of [`GpuLstm::new`].
    pub async fn new_async(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        let uploaded = GpuWeights::upload_async(ctx, weights).await?;
        Ok(Self::with_weights(ctx, &uploaded))
    }

    /// A model on weights already on the GPU, sharing them (no upload). `weights` must have
    /// been uploaded to `ctx`'s device.
    pub fn with_weights(ctx: &GpuContext, weights: &GpuWeights) -> Self {
        Self {
            ctx: ctx.clone(),
            weights: weights.0.clone(),
            options: ForwardOptions::default(),
            workspaces: Vec::new(),
            timer: None,
        }
    }

    /// This model's weights on the GPU, to share with other models and pools.
    pub fn gpu_weights(&self) -> GpuWeights {
        GpuWeights(self.weights.clone())
    }

    /// Forces the recurrent kernel (or gives the choice back to the table with
    /// [`KernelChoice::Auto`]). A kernel that cannot run a shape is an error at
    /// [`GpuLstm::prepare`].
    pub fn set_kernel(&mut self, kernel: KernelChoice) {
        self.options.kernel = kernel;
        self.workspaces.clear();
    }

    /// Runs at most `steps` timesteps per chunk (`None`: as many as the device's limits
    /// allow). Chunking never changes a result; this is for tests and memory control.
    pub fn set_max_chunk_steps(&mut self, steps: Option<usize>) {
        self.options.max_chunk_steps = steps;
        self.workspaces.clear();
    }

    /// The kernel variant and the steps per chunk of the prepared shape.
    pub fn kernel(&self) -> Result<(StepVariant, usize)> {
        let ws = self.workspace()?;
        Ok((ws.variant, ws.chunk_steps))
    }

    /// The model's configuration.
    pub fn config(&self) -> &crate::LstmConfig {
        &self.weights.config
    }

    /// The context the model runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Runs the model on `x` with optional `h0`/`c0`; see [`GpuLstm::forward_with`].
    pub fn forward(
        &mut self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        self.forward_with(&Inputs::new(x).state(h0, c0))
    }

    /// Runs the model with inputs and outputs on the host, as
    /// [`crate::cpu::CpuLstm::forward_with`] (shapes in [`Inputs`]). The plan is submitted in
    /// chunks, so the GPU starts while the rest is recorded; one wait, for the readback.
    pub fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        pollster::block_on(self.forward_with_async(inputs))
    }

    /// The async form of [`GpuLstm::forward_with`].
    pub async fn forward_with_async(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        Ok(self.run(inputs, false).await?.0)
    }

    /// [`GpuLstm::forward_with`], also returning the GPU time of the pass in milliseconds
    /// (from timestamp queries; `None` when the device has no TIMESTAMP_QUERY).
    pub fn forward_timed(&mut self, inputs: &Inputs<'_>) -> Result<(LstmOutput, Option<f64>)> {
        pollster::block_on(self.run(inputs, true))
    }

    async fn run(&mut self, inputs: &Inputs<'_>, timed: bool) -> Result<(LstmOutput, Option<f64>)> {
        let batched = Batched::new(&self.weights.config, inputs)?;
        let dims = batched.dims;
        self.prepare_async(dims).await?;
        let ctx = self.ctx.clone();
        if timed && self.timer.is_none() {
            self.timer = guarded(&ctx, "timer allocation", || Ok(GpuTimer::new(&ctx))).await?;
        }
        let ws = self.workspace()?;
        let (y_len, hn_len, cn_len) = ws.buffers.lens;
        let stage = &ws.readback;
        let timer = self.timer.as_ref().filter(|_| timed);

        let scopes = ctx.scopes("forward")?;
        let written = self.write_batched(&batched);
        ws.plan.submit(
            &self.ctx,
            |encoder| {
                if let Some(t) = timer {
                    t.start(encoder);
                }
            },
            |encoder| {
                if let Some(t) = timer {
                    t.stop(encoder);
                }
                let b = &ws.buffers;
                let (y_bytes, hn_bytes) = ((y_len * 4) as u64, (hn_len * 4) as u64);
                encoder.copy_buffer_to_buffer(b.output(), 0, stage, 0, y_bytes);
                encoder.copy_buffer_to_buffer(&b.h_n, 0, stage, y_bytes, hn_bytes);
                let c_at = y_bytes + hn_bytes;
                encoder.copy_buffer_to_buffer(&b.c_n, 0, stage, c_at, (cn_len * 4) as u64);
            },
        );
        scopes.finish(&ctx).await?;
        written?;
        let mut y = read_f32_async(&ctx, &[(stage, y_len + hn_len + cn_len)])
            .await?
            .pop()
            .ok_or_else(|| Error::Readback("expected one buffer".into()))?;
        let gpu_ms = match timer {
            Some(t) => Some(t.read_ms_async(&self.ctx).await?),
            None => None,
        };
        let c_n = y.split_off(y_len + hn_len);
        let h_n = y.split_off(y_len);
        let cfg = &self.weights.config;
        let states = cfg.num_directions() * cfg.num_layers;
        let out = batched.finish(LstmOutput {
            output: self.output_tensor(dims, y)?,
            h_n: Tensor::new([states, dims.batch, cfg.output_size()], h_n)?,
            c_n: Tensor::new([states, dims.batch, cfg.hidden_size], c_n)?,
        })?;
        Ok((out, gpu_ms))
    }

    /// The model output `y` of a pass over `dims` as a tensor: `[T, B, W]`, or `[B, T, W]`
    /// when `batch_first` (W: the head's width, else D*H_out).
    fn output_tensor(&self, dims: Dims, y: Vec<f32>) -> Result<Tensor> {
        let width = y.len() / (dims.seq_len * dims.batch).max(1);
        let shape = if self.weights.config.batch_first {
            [dims.batch, dims.seq_len, width]
        } else {
            [dims.seq_len, dims.batch, width]
        };
        Tensor::new(shape, y)
    }

    /// Runs the model on `x` (`[T, B, I]`, `[B, T, I]` when `batch_first`) starting from
    /// `state` and leaving the final state in it, on the GPU; returns the output (as
    /// [`GpuLstm::forward`]'s). Feeding a long sequence in chunks this way gives bitwise the
    /// output and final state of one forward over the whole sequence (a unidirectional
    /// model; a bidirectional one runs each chunk in both directions on its own).
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
        let y = submit_and_read(&self.ctx, during, &ws.readback, y_len, |encoder| {
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
        let ctx = self.ctx.clone();
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
            ctx.queue().submit([encoder.finish()]);
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

    /// Allocates (or keeps) the buffers, bind groups and plan for `dims`, and makes it the
    /// shape the buffer accessors and [`GpuLstm::encode`] use. Up to [`PREPARED_SHAPES`]
    /// shapes stay prepared. Errors name the device limit a shape exceeds.
    pub fn prepare(&mut self, dims: Dims) -> Result<()> {
        pollster::block_on(self.prepare_async(dims))
    }

    /// The async form of [`GpuLstm::prepare`].
    pub async fn prepare_async(&mut self, dims: Dims) -> Result<()> {
        if let Some(at) = self.workspaces.iter().position(|ws| ws.dims == dims) {
            let ws = self.workspaces.remove(at);
            self.workspaces.insert(0, ws);
            return Ok(());
        }
        // free the least recently used shape's buffers first
        self.workspaces.truncate(PREPARED_SHAPES - 1);
        let ws = Workspace::new(&self.ctx, &self.weights, dims, self.options).await?;
        self.workspaces.insert(0, ws);
        Ok(())
    }

    /// The prepared shapes, most recently used first.
    pub fn prepared_shapes(&self) -> Vec<Dims> {
        self.workspaces.iter().map(|ws| ws.dims).collect()
    }

    /// Uploads the inputs (`x`, the initial state, zeros when `None`, and the lengths) into
    /// the buffers prepared for their shape.
    pub fn write_input(&self, inputs: &Inputs<'_>) -> Result<()> {
        let batched = Batched::new(&self.weights.config, inputs)?;
        guarded_now(&self.ctx, "writing the input", || {
            self.write_batched(&batched)
        })
    }

    fn write_batched(&self, inputs: &Batched<'_, f32>) -> Result<()> {
        let ws = self.workspace()?;
        if inputs.dims != ws.dims {
            return Err(Error::Input(format!(
                "input has (T, B) = ({}, {}) but the model was prepared for ({}, {})",
                inputs.dims.seq_len, inputs.dims.batch, ws.dims.seq_len, ws.dims.batch
            )));
        }
        let queue = self.ctx.queue();
        queue.write_buffer(&ws.buffers.x, 0, bytemuck::cast_slice(inputs.x.data()));
        ws.buffers.write_state(queue, inputs);
        Ok(())
    }

    /// Records the whole forward pass into `encoder` (per layer and chunk: 1 gemm, then 1
    /// dispatch of the sequence kernel or T of the per-step kernel, 2T with a projection; 1
    /// gemm for the head). Submitting it is the caller's choice.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.workspace()?.plan.encode(encoder);
        Ok(())
    }

    /// The plan of the prepared shape (what [`GpuLstm::encode`] records): internals, for
    /// counting dispatches in tests and benches.
    #[doc(hidden)]
    pub fn plan(&self) -> Result<&Plan> {
        Ok(&self.workspace()?.plan)
    }

    /// Input buffer `[T, B, I]` (`[B, T, I]` when `batch_first`), f32.
    pub fn input_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.buffers.x)
    }

    /// Lengths buffer `[B]`, u32 (all `T` unless written by [`GpuLstm::write_input`]).
    pub fn lengths_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.buffers.lengths)
    }

    /// Output buffer: `[T, B, D*H_out]` (`[B, T, ...]` when `batch_first`), or the head's
    /// `[T, B, O]`, f32.
    pub fn output_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(self.workspace()?.buffers.output())
    }

    /// `h_n` buffer `[D*L, B, H_out]`, f32.
    pub fn h_n_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.buffers.h_n)
    }

    /// `c_n` buffer `[D*L, B, H]`, f32.
    pub fn c_n_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.buffers.c_n)
    }

    /// The context the model runs on.
    pub(crate) fn ctx(&self) -> &GpuContext {
        &self.ctx
    }

    pub(crate) fn workspace(&self) -> Result<&Workspace> {
        self.workspaces.first().ok_or_else(|| {
            Error::Input("call prepare(dims) before using the model's buffers".into())
        })
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
