//! The forward pass as plan operations: every layer (`layer.rs`), then the head's gemm.

use super::buffers::ForwardBuffers;
use super::{chunks, layer};
use crate::error::Result;
use crate::gpu::device::caps_of;
use crate::gpu::kernels::{
    product_kernel, GemmParams, KernelChoice, Recurrence, RecurrentShape, View,
};
use crate::gpu::plan::PlanBuilder;
use crate::gpu::weights::ResidentWeights;
use crate::gpu::wisdom::{Choice, Family, ShapeClass, Source};
use crate::shape::Dims;

/// How a forward pass is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Training: keep what the backward pass needs.
    pub cache: bool,
    /// Which recurrent kernel runs (default: the table's choice).
    pub kernel: KernelChoice,
    /// At most this many steps per chunk (default: as many as the limits allow).
    pub max_chunk_steps: Option<usize>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            cache: false,
            kernel: KernelChoice::Auto,
            max_chunk_steps: None,
        }
    }
}

/// What [`build_forward`] made: the buffers, the kernel variant (and where it came from)
/// and the chunk length.
pub(crate) struct Forward {
    pub buffers: ForwardBuffers,
    pub variant: Recurrence,
    pub source: Source,
    pub chunk_steps: usize,
}

/// Records the forward pass of `weights` for `dims` into `plan`.
pub(crate) fn build_forward(
    plan: &mut PlanBuilder<'_>,
    device: &wgpu::Device,
    weights: &ResidentWeights,
    dims: Dims,
    options: ForwardOptions,
) -> Result<Forward> {
    build_forward_with(plan, device, weights, dims, options, &mut |_, _, _| Ok(()))
}

/// What [`build_forward_with`] calls before each layer `l` (with `l`) and before the head
/// (with `L`): training records its dropout there, on the buffer the next step reads.
pub(crate) type SiteHook<'h> =
    dyn FnMut(&mut PlanBuilder<'_>, usize, &ForwardBuffers) -> Result<()> + 'h;

/// [`build_forward`] calling `site` before every layer and before the head.
pub(crate) fn build_forward_with(
    plan: &mut PlanBuilder<'_>,
    device: &wgpu::Device,
    weights: &ResidentWeights,
    dims: Dims,
    options: ForwardOptions,
    site: &mut SiteHook<'_>,
) -> Result<Forward> {
    let cfg = &weights.config;
    let limits = device.limits();
    let shape = RecurrentShape {
        hidden: cfg.hidden_size,
        hidden_out: cfg.output_size(),
        batch: dims.batch,
    };
    let ctx = plan.context();
    let class = ShapeClass::of(shape, cfg.num_directions(), options.cache);
    let caps = caps_of(device);
    let (variant, source) = match (
        options.kernel,
        ctx.tuned_choice(Family::Recurrence, class, shape),
    ) {
        (KernelChoice::Auto, Some(Choice::Recurrence(v))) => (v, Source::Wisdom),
        (KernelChoice::Auto, _) => (KernelChoice::Auto.resolve(shape, &caps)?, Source::Table),
        (forced, _) => (forced.resolve(shape, &caps)?, Source::Forced),
    };
    let gemv_rows = ctx.gemv_rows(class, shape);
    let pre_row = dims.batch * cfg.num_directions() * 4 * cfg.hidden_size;
    let chunk_steps = chunks::chunk_steps(
        &limits,
        variant,
        dims.seq_len,
        pre_row,
        options.max_chunk_steps,
    )?;
    let buffers = ForwardBuffers::new(device, weights, dims, options.cache, chunk_steps)?;
    let pass = layer::LayerPass {
        weights,
        buffers: &buffers,
        dims,
        cache: options.cache,
        variant,
        chunk_steps,
        gemv_rows,
    };
    for layer in 0..cfg.num_layers {
        site(plan, layer, &buffers)?;
        pass.record(plan, layer)?;
    }
    site(plan, cfg.num_layers, &buffers)?;
    record_head(plan, weights, &buffers, dims, gemv_rows)?;
    Ok(Forward {
        buffers,
        variant,
        source,
        chunk_steps,
    })
}

/// `head(y) = y · weightᵀ + bias` over every row, `weightᵀ` resident as `[D*H_out, O]`.
fn record_head(
    plan: &mut PlanBuilder<'_>,
    weights: &ResidentWeights,
    buffers: &ForwardBuffers,
    dims: Dims,
    gemv_rows: usize,
) -> Result<()> {
    let (Some(head), Some(out)) = (&weights.head, &buffers.head_out) else {
        return Ok(());
    };
    let cfg = &weights.config;
    let last = cfg.num_layers - 1;
    let width = cfg.num_directions() * cfg.output_size();
    let rows = dims.seq_len * dims.batch;
    let bias = head.bias.as_ref().unwrap_or(&buffers.unused);
    let o = head.out_features;
    let (kernel, workgroups) = product_kernel(rows, o, gemv_rows)?;
    let group = plan.group(
        kernel,
        "head",
        &[
            ("a", &buffers.y[last]),
            ("b", &head.weight_t),
            ("bias", bias),
            ("c", out),
        ],
    );
    let p = GemmParams::product(
        rows,
        o,
        width,
        View::rows(0, width),
        View::rows(0, o),
        View::rows(0, o),
    )?
    .with_bias(head.bias.is_some());
    plan.dispatch(last, group, &p, workgroups)
}
