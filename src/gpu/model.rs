//! `GpuLstm`: an LSTM whose weights live on the GPU, uploaded once, reused by every call.

use super::buffers::{read_f32, staging, storage_init};
use super::context::GpuContext;
use super::layout;
use super::plan::Plan;
use super::workspace::Workspace;
use crate::error::{Error, Result};
use crate::shape::{Batched, Dims, Inputs, LstmOutput};
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// One layer's resident weights, already re-laid out for the kernels (see [`layout`]).
pub(crate) struct LayerBuffers {
    /// `[in, D*4H]`
    pub w_ih_t: wgpu::Buffer,
    /// `[D*4H]`
    pub bias: wgpu::Buffer,
    /// `[D, H_out, H]` of vec4
    pub w_hh: wgpu::Buffer,
    /// `[D, H, P]` (a 1-element placeholder without projection)
    pub w_hr_t: wgpu::Buffer,
}

/// The head's resident weights.
pub(crate) struct HeadBuffers {
    /// `[D*H_out, O]`
    pub weight_t: wgpu::Buffer,
    /// `[O]`, when the head has a bias
    pub bias: Option<wgpu::Buffer>,
    pub out_features: usize,
}

/// An LSTM (and optional head) resident on a GPU. Weights are uploaded once by
/// [`GpuLstm::new`]; buffers for a given `(T, B)` are allocated on first use of that shape and
/// reused after.
///
/// Host-level use: [`GpuLstm::forward`]. Embedding in a wgpu application:
/// [`GpuLstm::prepare`], write [`GpuLstm::input_buffer`], [`GpuLstm::encode`] into your
/// encoder, then read [`GpuLstm::output_buffer`] (and `h_n`/`c_n`) on the GPU.
pub struct GpuLstm {
    ctx: GpuContext,
    weights_config: crate::LstmConfig,
    pub(crate) layers: Vec<LayerBuffers>,
    pub(crate) head: Option<HeadBuffers>,
    workspace: Option<Workspace>,
}

impl GpuLstm {
    /// Uploads `weights` (re-laid out for the kernels) to `ctx`'s device.
    pub fn new(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        let config = weights.config().clone();
        config.validate()?;
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let upload = |name: &str, l: usize, data: &[f32]| {
            storage_init(device, &format!("{name} l{l}"), data)
        };
        let layers = (0..config.num_layers)
            .map(|l| LayerBuffers {
                w_ih_t: upload("w_ih_t", l, &layout::input_weights_t(weights, l)),
                bias: upload("bias", l, &layout::combined_bias(weights, l)),
                w_hh: upload("w_hh", l, &layout::recurrent_weights_vec4(weights, l)),
                w_hr_t: upload("w_hr_t", l, &layout::projection_weights_t(weights, l)),
            })
            .collect();
        let head = weights.head().map(|head| HeadBuffers {
            weight_t: storage_init(device, "head weight_t", &layout::head_weights_t(head)),
            bias: head
                .bias
                .as_ref()
                .map(|b| storage_init(device, "head bias", b.data())),
            out_features: head.out_features(),
        });
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "weight upload",
                source,
            });
        }
        Ok(Self {
            ctx: ctx.clone(),
            weights_config: config,
            layers,
            head,
            workspace: None,
        })
    }

    pub fn config(&self) -> &crate::LstmConfig {
        &self.weights_config
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
    /// [`crate::cpu::CpuLstm::forward_with`] (shapes in [`Inputs`]). One submission; one wait,
    /// for the readback.
    pub fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        let batched = Batched::new(&self.weights_config, inputs)?;
        let dims = batched.dims;
        self.prepare(dims)?;
        self.write_batched(&batched)?;
        let ws = self.workspace()?;
        let (y_len, hn_len, cn_len) = ws.buffers.lens;
        let device = self.ctx.device();
        let y_stage = staging(device, "output readback", y_len);
        let hn_stage = staging(device, "h_n readback", hn_len);
        let cn_stage = staging(device, "c_n readback", cn_len);

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("lstm forward"),
        });
        self.encode(&mut encoder)?;
        encoder.copy_buffer_to_buffer(ws.buffers.output(), 0, &y_stage, 0, (y_len * 4) as u64);
        encoder.copy_buffer_to_buffer(&ws.buffers.h_n, 0, &hn_stage, 0, (hn_len * 4) as u64);
        encoder.copy_buffer_to_buffer(&ws.buffers.c_n, 0, &cn_stage, 0, (cn_len * 4) as u64);
        self.ctx.queue().submit([encoder.finish()]);
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "forward",
                source,
            });
        }
        let read = read_f32(
            device,
            &[(&y_stage, y_len), (&hn_stage, hn_len), (&cn_stage, cn_len)],
        )?;
        let [y, h_n, c_n]: [Vec<f32>; 3] = read
            .try_into()
            .map_err(|_| Error::Readback("expected three buffers".into()))?;
        let cfg = &self.weights_config;
        let states = cfg.num_directions() * cfg.num_layers;
        let width = y_len / (dims.seq_len * dims.batch);
        let out_shape = if cfg.batch_first {
            [dims.batch, dims.seq_len, width]
        } else {
            [dims.seq_len, dims.batch, width]
        };
        batched.finish(LstmOutput {
            output: Tensor::new(out_shape, y)?,
            h_n: Tensor::new([states, dims.batch, cfg.output_size()], h_n)?,
            c_n: Tensor::new([states, dims.batch, cfg.hidden_size], c_n)?,
        })
    }

    /// Allocates (or keeps) the buffers, bind groups and plan for `dims`. Errors name the
    /// device limit a shape exceeds.
    pub fn prepare(&mut self, dims: Dims) -> Result<()> {
        if self.workspace.as_ref().is_some_and(|ws| ws.dims == dims) {
            return Ok(());
        }
        self.workspace = None; // free the old shape's buffers first
        self.workspace = Some(Workspace::new(self, dims)?);
        Ok(())
    }

    /// Uploads the inputs (`x`, the initial state, zeros when `None`, and the lengths) into
    /// the buffers prepared for their shape.
    pub fn write_input(&self, inputs: &Inputs<'_>) -> Result<()> {
        self.write_batched(&Batched::new(&self.weights_config, inputs)?)
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

    /// Records the whole forward pass (per layer 1 gemm + T step dispatches, 2T with a
    /// projection; 1 gemm for the head) into `encoder`. Submitting it is the caller's choice.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.workspace()?.plan.encode(self.ctx.pipelines(), encoder);
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
