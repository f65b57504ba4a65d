//! `GpuLstm`: an LSTM whose weights live on the GPU, uploaded once, reused by every call.

use super::buffers::{read_f32, staging, storage_init};
use super::context::GpuContext;
use super::layout;
use super::plan::Plan;
use super::workspace::Workspace;
use crate::config::LstmConfig;
use crate::error::{Error, Result};
use crate::shape::{check_inputs, Dims, LstmOutput};
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

/// An LSTM resident on a GPU. Weights are uploaded once by [`GpuLstm::new`]; buffers for a
/// given `(T, B)` are allocated on first use of that shape and reused after.
///
/// Host-level use: [`GpuLstm::forward`]. Embedding in a wgpu application:
/// [`GpuLstm::prepare`], write [`GpuLstm::input_buffer`], [`GpuLstm::encode`] into your
/// encoder, then read [`GpuLstm::output_buffer`] (and `h_n`/`c_n`) on the GPU.
pub struct GpuLstm {
    ctx: GpuContext,
    config: LstmConfig,
    pub(crate) layers: Vec<LayerBuffers>,
    workspace: Option<Workspace>,
}

impl GpuLstm {
    /// Uploads `weights` (re-laid out for the kernels) to `ctx`'s device.
    pub fn new(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        let config = weights.config().clone();
        config.validate()?;
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let layers = (0..config.num_layers)
            .map(|l| LayerBuffers {
                w_ih_t: storage_init(
                    device,
                    &format!("w_ih_t l{l}"),
                    &layout::input_weights_t(weights, l),
                ),
                bias: storage_init(
                    device,
                    &format!("bias l{l}"),
                    &layout::combined_bias(weights, l),
                ),
                w_hh: storage_init(
                    device,
                    &format!("w_hh l{l}"),
                    &layout::recurrent_weights_vec4(weights, l),
                ),
                w_hr_t: storage_init(
                    device,
                    &format!("w_hr_t l{l}"),
                    &layout::projection_weights_t(weights, l),
                ),
            })
            .collect();
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "weight upload",
                source,
            });
        }
        Ok(Self {
            ctx: ctx.clone(),
            config,
            layers,
            workspace: None,
        })
    }

    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Runs the LSTM with inputs and outputs on the host, as [`crate::cpu::CpuLstm::forward`]:
    /// `x` `[T, B, I]` (`[B, T, I]` when `batch_first`), optional `h0` `[D*L, B, H_out]` and
    /// `c0` `[D*L, B, H]`. One submission; one wait, for the readback.
    pub fn forward(
        &mut self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput> {
        let dims = check_inputs(&self.config, x, h0, c0)?;
        self.prepare(dims)?;
        self.write_input(x, h0, c0)?;
        let ws = self.workspace()?;
        let (y_len, hn_len, cn_len) = ws.output_lens();
        let device = self.ctx.device();
        let y_stage = staging(device, "output readback", y_len);
        let hn_stage = staging(device, "h_n readback", hn_len);
        let cn_stage = staging(device, "c_n readback", cn_len);

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("lstm forward"),
        });
        self.encode(&mut encoder)?;
        encoder.copy_buffer_to_buffer(&ws.y_final(), 0, &y_stage, 0, (y_len * 4) as u64);
        encoder.copy_buffer_to_buffer(&ws.h_n, 0, &hn_stage, 0, (hn_len * 4) as u64);
        encoder.copy_buffer_to_buffer(&ws.c_n, 0, &cn_stage, 0, (cn_len * 4) as u64);
        self.ctx.queue().submit([encoder.finish()]);
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "forward",
                source,
            });
        }
        let mut data = read_f32(
            device,
            &[(&y_stage, y_len), (&hn_stage, hn_len), (&cn_stage, cn_len)],
        )?
        .into_iter();
        let mut next = || {
            data.next()
                .ok_or_else(|| Error::Readback("missing buffer".into()))
        };
        let cfg = &self.config;
        let (d, states) = (cfg.num_directions(), cfg.num_directions() * cfg.num_layers);
        let width = d * cfg.output_size();
        let out_shape = if cfg.batch_first {
            [dims.batch, dims.seq_len, width]
        } else {
            [dims.seq_len, dims.batch, width]
        };
        Ok(LstmOutput {
            output: Tensor::new(out_shape, next()?)?,
            h_n: Tensor::new([states, dims.batch, cfg.output_size()], next()?)?,
            c_n: Tensor::new([states, dims.batch, cfg.hidden_size], next()?)?,
        })
    }

    /// Allocates (or keeps) the buffers, bind groups and plan for `dims`. Errors name the
    /// device limit a shape exceeds.
    pub fn prepare(&mut self, dims: Dims) -> Result<()> {
        if self.workspace.as_ref().is_some_and(|ws| ws.dims == dims) {
            return Ok(());
        }
        self.workspace = None; // free the old shape's buffers first
        self.workspace = Some(Workspace::new(&self.ctx, &self.config, &self.layers, dims)?);
        Ok(())
    }

    /// Uploads `x` and the initial state (zeros when `None`) into the prepared buffers.
    pub fn write_input(&self, x: &Tensor, h0: Option<&Tensor>, c0: Option<&Tensor>) -> Result<()> {
        let ws = self.workspace()?;
        let dims = check_inputs(&self.config, x, h0, c0)?;
        if dims != ws.dims {
            return Err(Error::Input(format!(
                "input has (T, B) = ({}, {}) but the model was prepared for ({}, {})",
                dims.seq_len, dims.batch, ws.dims.seq_len, ws.dims.batch
            )));
        }
        let queue = self.ctx.queue();
        queue.write_buffer(&ws.x, 0, bytemuck::cast_slice(x.data()));
        let (_, hn_len, cn_len) = ws.output_lens();
        let zeros = |len| vec![0.0f32; len];
        let h0 = h0.map_or_else(|| zeros(hn_len), |t| t.data().to_vec());
        let c0 = c0.map_or_else(|| zeros(cn_len), |t| t.data().to_vec());
        queue.write_buffer(&ws.h0, 0, bytemuck::cast_slice(&h0));
        queue.write_buffer(&ws.c0, 0, bytemuck::cast_slice(&c0));
        Ok(())
    }

    /// Records the whole forward pass (1 gemm + T step dispatches per layer, 2T with a
    /// projection) into `encoder`. Submitting it is the caller's choice.
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
        Ok(&self.workspace()?.x)
    }

    /// Output buffer `[T, B, D*H_out]` (`[B, T, D*H_out]` when `batch_first`), f32.
    pub fn output_buffer(&self) -> Result<wgpu::Buffer> {
        Ok(self.workspace()?.y_final())
    }

    /// `h_n` buffer `[D*L, B, H_out]`, f32.
    pub fn h_n_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.h_n)
    }

    /// `c_n` buffer `[D*L, B, H]`, f32.
    pub fn c_n_buffer(&self) -> Result<&wgpu::Buffer> {
        Ok(&self.workspace()?.c_n)
    }

    fn workspace(&self) -> Result<&Workspace> {
        self.workspace.as_ref().ok_or_else(|| {
            Error::Input("call prepare(dims) before using the model's buffers".into())
        })
    }
}
