//! Weights resident on the GPU, uploaded once and re-laid out for the kernels (see
//! [`super::layout`]). Plans read them; nothing here knows about plans.

use super::layout;
use crate::config::LstmConfig;
use crate::error::Result;
use crate::gpu::device::{buffer, drop_turn, storage_init, GpuContext, Scopes, TurnEnd, TurnStart};
use crate::weights::LstmWeights;

/// One layer's resident weights.
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

/// An LSTM's weights uploaded to one device, re-laid out for the kernels: one upload that
/// any number of [`crate::gpu::GpuLstm`]s and [`crate::gpu::GpuStatePool`]s on that device share
/// (cheap to clone).
#[derive(Clone)]
pub struct GpuWeights(pub(crate) std::sync::Arc<ResidentWeights>);

impl GpuWeights {
    /// Uploads `weights` to `ctx`'s device (blocks; see [`GpuWeights::upload_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn upload(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        pollster::block_on(Self::upload_async(ctx, weights))
    }

    /// The async form of [`GpuWeights::upload`].
    pub async fn upload_async(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        let resident = ResidentWeights::upload(ctx, weights).await?;
        Ok(Self(std::sync::Arc::new(resident)))
    }

    /// The model's configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.0.config
    }

    /// The head's output width, when the model has a head.
    pub fn head_width(&self) -> Option<usize> {
        self.0.head.as_ref().map(|h| h.out_features)
    }
}

/// Every layer's weights and the head's, on one device.
pub(crate) struct ResidentWeights {
    /// first field: takes the device's turn while the others drop (`drop_turn.rs`)
    pub _turn_start: TurnStart,
    pub config: LstmConfig,
    pub layers: Vec<LayerBuffers>,
    pub head: Option<HeadBuffers>,
    /// last field: gives the turn back
    pub _turn_end: TurnEnd,
}

impl ResidentWeights {
    /// A copy of these weights made on the GPU (no host round trip), ordered after the work
    /// already submitted to `ctx`'s queue.
    pub fn duplicate(&self, ctx: &GpuContext) -> Self {
        let device = ctx.device();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("weights copy"),
        });
        let mut copy = |from: &wgpu::Buffer| {
            let to = buffer(device, "weights copy", from.size(), from.usage());
            encoder.copy_buffer_to_buffer(from, 0, &to, 0, from.size());
            to
        };
        let layers = self
            .layers
            .iter()
            .map(|l| LayerBuffers {
                w_ih_t: copy(&l.w_ih_t),
                bias: copy(&l.bias),
                w_hh: copy(&l.w_hh),
                w_hr_t: copy(&l.w_hr_t),
            })
            .collect();
        let head = self.head.as_ref().map(|h| HeadBuffers {
            weight_t: copy(&h.weight_t),
            bias: h.bias.as_ref().map(&mut copy),
            out_features: h.out_features,
        });
        ctx.submit([encoder.finish()]);
        let (_turn_start, _turn_end) = drop_turn(ctx);
        Self {
            _turn_start,
            _turn_end,
            config: self.config.clone(),
            layers,
            head,
        }
    }

    /// Uploads `weights` to `ctx`'s device.
    pub async fn upload(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        let config = weights.config().clone();
        config.validate()?;
        let scopes = Scopes::push(ctx, "weight upload")?;
        let device = ctx.device();
        let upload = |name: &str, l: usize, data: &[f32]| {
            storage_init(device, &format!("{name} l{l}"), data)
        };
        let uploaded = ctx.contained("weight upload", || {
            let layers: Vec<LayerBuffers> = (0..config.num_layers)
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
            Ok((layers, head))
        });
        scopes.finish(ctx).await?;
        let (layers, head) = uploaded?;
        let (_turn_start, _turn_end) = drop_turn(ctx);
        Ok(Self {
            _turn_start,
            _turn_end,
            config,
            layers,
            head,
        })
    }
}
