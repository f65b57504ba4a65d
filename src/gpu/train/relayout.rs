//! Flat parameters -> the forward kernels' layouts (see gpu/weights/layout.rs for the host twin).

use crate::error::Result;
use crate::gpu::forward::GpuLstm;
use crate::gpu::kernels::{elementwise_groups, to_u32, Kernel, PermuteParams};
use crate::gpu::plan::PlanBuilder;
use crate::train::ParamLayout;

pub(super) fn record(
    plan: &mut PlanBuilder<'_>,
    model: &GpuLstm,
    layout: &ParamLayout,
    params: &wgpu::Buffer,
) -> Result<()> {
    let cfg = model.config();
    let (d, h, h_out) = (cfg.num_directions(), cfg.hidden_size, cfg.output_size());
    let g4 = d * 4 * h;
    let u = to_u32;
    let mut permute = |dst: &wgpu::Buffer,
                       label: &str,
                       src_offset: usize,
                       dims: [usize; 4],
                       strides: [usize; 4],
                       add_offset: Option<usize>|
     -> Result<()> {
        let count: usize = dims.iter().product();
        let group = plan.group(Kernel::Permute, label, &[("src", params), ("dst", dst)]);
        let p = PermuteParams {
            count: u("count", count)?,
            src_offset: u("offset", src_offset)?,
            dst_offset: 0,
            has_add: add_offset.is_some() as u32,
            dims: [
                u("dim", dims[0])?,
                u("dim", dims[1])?,
                u("dim", dims[2])?,
                u("dim", dims[3])?,
            ],
            strides: [
                u("stride", strides[0])?,
                u("stride", strides[1])?,
                u("stride", strides[2])?,
                u("stride", strides[3])?,
            ],
            add_offset: u("offset", add_offset.unwrap_or(0))?,
            _pad: [0; 3],
        };
        plan.dispatch(0, group, &p, elementwise_groups(count)?)?;
        Ok(())
    };
    for (layer, buffers) in model.weights.layers.iter().enumerate() {
        let o = &layout.layers[layer];
        let in_size = cfg.layer_input_size(layer);
        // W_ihᵀ [in, D*4H] from [D*4H, in]
        permute(
            &buffers.w_ih_t,
            "relayout w_ih",
            o.w_ih,
            [1, 1, in_size, g4],
            [0, 0, 1, in_size],
            None,
        )?;
        // b_ih + b_hh
        if let (Some(bi), Some(bh)) = (o.b_ih, o.b_hh) {
            permute(
                &buffers.bias,
                "relayout bias",
                bi,
                [1, 1, 1, g4],
                [0, 0, 0, 1],
                Some(bh - bi),
            )?;
        }
        // W_hh [D, H_out, H, 4] from [D, 4, H, H_out]
        permute(
            &buffers.w_hh,
            "relayout w_hh",
            o.w_hh,
            [d, h_out, h, 4],
            [4 * h * h_out, 1, h_out, h * h_out],
            None,
        )?;
        // W_hrᵀ [D, H, P] from [D, P, H]
        if let Some(w_hr) = o.w_hr {
            permute(
                &buffers.w_hr_t,
                "relayout w_hr",
                w_hr,
                [1, d, h, h_out],
                [0, h_out * h, 1, h],
                None,
            )?;
        }
    }
    if let (Some(head), Some(w)) = (&model.weights.head, layout.head_weight) {
        let (o, width) = (head.out_features, d * h_out);
        permute(
            &head.weight_t,
            "relayout head weight",
            w,
            [1, 1, width, o],
            [0, 0, 1, width],
            None,
        )?;
        if let (Some(bias), Some(b)) = (&head.bias, layout.head_bias) {
            permute(
                bias,
                "relayout head bias",
                b,
                [1, 1, 1, o],
                [0, 0, 0, 1],
                None,
            )?;
        }
    }
    Ok(())
}
