//! `GpuLstm`: an LSTM whose weights live on the GPU, uploaded once, reused by every call.

use super::buffers::read_f32;
use super::choice::KernelChoice;
use super::context::GpuContext;
use super::forward::ForwardOptions;
use super::plan::Plan;
use super::resident::ResidentWeights;
use super::timer::GpuTimer;
use super::variant::StepVariant;
use super::workspace::Workspace;
use crate::error::{Error, Result};
use crate::shape::{Batched, Dims, Inputs, LstmOutput};
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// An LSTM (and optional head) resident on a GPU. Weights are uploaded once by
/// [`GpuLstm::new`]; buffers for a given `(T, B)` are allocated on first use of that shape and
/// reused after.
///
/// Host-level use: [`GpuLstm::forward`]. Embedding in a wgpu application:
/// [`GpuLstm::prepare`], write [`GpuLstm::input_buffer`], [`GpuLstm::encode`] into your
/// encoder, then read [`GpuLstm::output_buffer`] (and `h_n`/`c_n`) on the GPU.
///
/// The recurrent kernel is chosen per shape and device ([`StepVariant::choose`]);
/// [`GpuLstm::set_kernel`] forces one.
pub struct GpuLstm {
    ctx: GpuContext,
    pub(crate) weights: ResidentWeights,
    options: ForwardOptions,
    workspace: Option<Workspace>,
    /// made on the first timed forward
    timer: Option<GpuTimer>,
}

impl GpuLstm {
    /// Uploads `weights` (re-laid out for the kernels) to `ctx`'s device.
    pub fn new(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        Ok(Self {
            ctx: ctx.clone(),
            weights: ResidentWeights::upload(ctx, weights)?,
            options: ForwardOptions::default(),
            workspace: None,
            timer: None,
        })
    }

    /// Forces the recurrent kernel (or gives the choice back to the table with
    /// [`KernelChoice::Auto`]). A kernel that cannot run a shape is an error at
    /// [`GpuLstm::prepare`].
    pub fn set_kernel(&mut self, kernel: KernelChoice) {
        self.options.kernel = kernel;
        self.workspace = None;
    }

    /// Runs at most `steps` timesteps per chunk (`None`: as many as the device's limits
    /// allow). Chunking never changes a result; this is for tests and memory control.
    pub fn set_max_chunk_steps(&mut self, steps: Option<usize>) {
        self.options.max_chunk_steps = steps;
        self.workspace = None;
    }

    /// The kernel variant and the steps per chunk of the prepared shape.
    pub fn kernel(&self) -> Result<(StepVariant, usize)> {
        let ws = self.workspace()?;
        Ok((ws.variant, ws.chunk_steps))
    }

    pub fn config(&self) -> &crate::LstmConfig {
        &self.weights.config
    }

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
        Ok(self.run(inputs, false)?.0)
    }

    /// [`GpuLstm::forward_with`], also returning the GPU time of the pass in milliseconds
    /// (from timestamp queries; `None` when the device has no TIMESTAMP_QUERY).
    pub fn forward_timed(&mut self, inputs: &Inputs<'_>) -> Result<(LstmOutput, Option<f64>)> {
        self.run(inputs, true)
    }

    fn run(&mut self, inputs: &Inputs<'_>, timed: bool) -> Result<(LstmOutput, Option<f64>)> {
        let batched = Batched::new(&self.weights.config, inputs)?;
        let dims = batched.dims;
        self.prepare(dims)?;
        self.write_batched(&batched)?;
        if timed && self.timer.is_none() {
            self.timer = GpuTimer::new(&self.ctx);
        }
        let ws = self.workspace()?;
        let (y_len, hn_len, cn_len) = ws.buffers.lens;
        let device = self.ctx.device();
        let stage = &ws.readback;
        let timer = self.timer.as_ref().filter(|_| timed);

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
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
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "forward",
                source,
            });
        }
        let mut y = read_f32(device, &[(stage, y_len + hn_len + cn_len)])?
            .pop()
            .ok_or_else(|| Error::Readback("expected one buffer".into()))?;
        let gpu_ms = timer.map(|t| t.read_ms(&self.ctx)).transpose()?;
        let c_n = y.split_off(y_len + hn_len);
        let h_n = y.split_off(y_len);
        let cfg = &self.weights.config;
        let states = cfg.num_directions() * cfg.num_layers;
        let width = y_len / (dims.seq_len * dims.batch);
        let out_shape = if cfg.batch_first {
            [dims.batch, dims.seq_len, width]
        } else {
            [dims.seq_len, dims.batch, width]
        };
        let out = batched.finish(LstmOutput {
            output: Tensor::new(out_shape, y)?,
            h_n: Tensor::new([states, dims.batch, cfg.output_size()], h_n)?,
            c_n: Tensor::new([states, dims.batch, cfg.hidden_size], c_n)?,
        })?;
        Ok((out, gpu_ms))
    }

    /// Allocates (or keeps) the buffers, bind groups and plan for `dims`. Errors name the
    /// device limit a shape exceeds.
    pub fn prepare(&mut self, dims: Dims) -> Result<()> {
        if self.workspace.as_ref().is_some_and(|ws| ws.dims == dims) {
            return Ok(());
        }
        self.workspace = None; // free the old shape's buffers first
        self.workspace = Some(Workspace::new(
            &self.ctx,
            &self.weights,
            dims,
            self.options,
        )?);
        Ok(())
    }

    /// Uploads the inputs (`x`, the initial state, zeros when `None`, and the lengths) into
    /// the buffers prepared for their shape.
    pub fn write_input(&self, inputs: &Inputs<'_>) -> Result<()> {
        self.write_batched(&Batched::new(&self.weights.config, inputs)?)
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

    /// The plan of the prepared shape (what [`GpuLstm::encode`] records).
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

    fn workspace(&self) -> Result<&Workspace> {
        self.workspace.as_ref().ok_or_else(|| {
            Error::Input("call prepare(dims) before using the model's buffers".into())
        })
    }
}
