//! `GpuLstm`: an LSTM whose weights live on the GPU, uploaded once, reused by every call.

use std::sync::Arc;

use super::pass::ForwardOptions;
use super::workspace::Workspace;
use crate::error::{Error, Result};
use crate::gpu::device::{
    drop_turn, guarded, guarded_now, read_f32_async, GpuContext, GpuTimer, Scopes, TurnEnd,
    TurnStart,
};
use crate::gpu::kernels::{KernelChoice, Recurrence};
use crate::gpu::plan::Plan;
use crate::gpu::weights::{GpuWeights, ResidentWeights};
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
/// The recurrent kernel is chosen per shape and device ([`Recurrence::choose`]);
/// [`GpuLstm::set_kernel`] forces one.
pub struct GpuLstm {
    /// first field: takes the device's turn while the others drop (`drop_turn.rs`)
    _turn_start: TurnStart,
    ctx: GpuContext,
    pub(crate) weights: Arc<ResidentWeights>,
    options: ForwardOptions,
    /// the prepared shapes, most recently used first
    workspaces: Vec<Workspace>,
    /// made on the first timed forward
    timer: Option<GpuTimer>,
    /// last field: gives the turn back
    _turn_end: TurnEnd,
}

/// Shapes whose buffers a model keeps prepared at once (least recently used dropped first).
pub const PREPARED_SHAPES: usize = 4;

impl GpuLstm {
    /// Uploads `weights` (re-laid out for the kernels) to `ctx`'s device.
    #[cfg(not(target_arch = "wasm32"))]
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
        let (_turn_start, _turn_end) = drop_turn(ctx);
        Self {
            _turn_start,
            _turn_end,
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
    pub fn kernel(&self) -> Result<(Recurrence, usize)> {
        let ws = self.workspace()?;
        Ok((ws.variant, ws.chunk_steps))
    }

    /// Where the prepared shape's recurrent kernel came from: the table, the wisdom file, or
    /// [`GpuLstm::set_kernel`].
    pub fn kernel_source(&self) -> Result<crate::gpu::wisdom::Source> {
        Ok(self.workspace()?.source)
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
    #[cfg(not(target_arch = "wasm32"))]
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        pollster::block_on(self.forward_with_async(inputs))
    }

    /// The async form of [`GpuLstm::forward_with`].
    pub async fn forward_with_async(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        Ok(self.run(inputs, false).await?.0)
    }

    /// [`GpuLstm::forward_with`], also returning the GPU time of the pass in milliseconds
    /// (from timestamp queries; `None` when the device has no TIMESTAMP_QUERY).
    #[cfg(not(target_arch = "wasm32"))]
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

        let scopes = Scopes::push(&ctx, "forward")?;
        let written = ctx.contained("forward", || {
            self.write_batched(&batched)?;
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
            Ok(())
        });
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
    pub(crate) fn output_tensor(&self, dims: Dims, y: Vec<f32>) -> Result<Tensor> {
        let width = y.len() / (dims.seq_len * dims.batch).max(1);
        let shape = if self.weights.config.batch_first {
            [dims.batch, dims.seq_len, width]
        } else {
            [dims.seq_len, dims.batch, width]
        };
        Tensor::new(shape, y)
    }

    /// Allocates (or keeps) the buffers, bind groups and plan for `dims`, and makes it the
    /// shape the buffer accessors and [`GpuLstm::encode`] use. Up to [`PREPARED_SHAPES`]
    /// shapes stay prepared. Errors name the device limit a shape exceeds.
    #[cfg(not(target_arch = "wasm32"))]
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
        #[cfg(not(target_arch = "wasm32"))]
        if self.options.kernel == KernelChoice::Auto {
            let config = &self.weights.config;
            let (_, class) = super::tune::shape_and_class(config, dims.batch, false);
            super::tune::measure_if_new(&self.ctx, class, || {
                super::tune::tune_forward(&self.ctx, config, dims, super::tune::MEASURE_BUDGET)
            })?;
        }
        // free the least recently used shape's buffers first (in the device's turn)
        {
            let _turn = self.ctx.device_turn();
            self.workspaces.truncate(PREPARED_SHAPES - 1);
        }
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

    pub(crate) fn write_batched(&self, inputs: &Batched<'_, f32>) -> Result<()> {
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

    pub(crate) fn workspace(&self) -> Result<&Workspace> {
        self.workspaces.first().ok_or_else(|| {
            Error::Input("call prepare(dims) before using the model's buffers".into())
        })
    }
}
