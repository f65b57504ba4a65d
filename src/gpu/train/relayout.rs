//! Flat parameters -> the forward kernels' layouts (see gpu/weights/layout.rs for the host twin).

use super::copies::record_permute;
use crate::error::Result;
use crate::gpu::forward::GpuLstm;
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
    // every copy reads the flat parameters and fills a whole forward buffer
    let mut permute = |dst: &wgpu::Buffer,
                       label: &str,
                       src_offset: usize,
                       dims: [usize; 4],
                       strides: [usize; 4],
                       add_offset: Option<usize>|
     -> Result<()> {
        record_permute(
            plan,
            0,
            label,
            (params, src_offset),
            (dst, 0),
            dims,
            strides,
            add_offset,
        )
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
