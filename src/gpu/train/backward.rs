//! Recording the loss and the backward pass.

use super::copies::{record_dropout, record_permute};
use super::trainer::GpuTrainer;
use super::weight_grads::WeightGrads;
use crate::error::Result;
use crate::gpu::device::{storage_init, storage_nan, storage_zeros};
use crate::gpu::forward::ForwardBuffers;
use crate::gpu::kernels::{
    check_size, elementwise_groups, product_kernel, to_u32, BackParams, GemmParams, Kernel,
    LossParams, RecurrentShape, View,
};
use crate::gpu::plan::PlanBuilder;
use crate::gpu::wisdom::ShapeClass;
use crate::loss::{Level, Loss};
use crate::shape::Dims;

pub(super) struct BackwardBuffers {
    pub values: wgpu::Buffer,
    pub classes: wgpu::Buffer,
    pub row_weights: wgpu::Buffer,
    pub dx: wgpu::Buffer,
    pub dh0: wgpu::Buffer,
    pub dc0: wgpu::Buffer,
}

pub(super) struct Backward<'a> {
    t: &'a GpuTrainer,
    dims: Dims,
    level: Level,
    fwd: &'a ForwardBuffers,
}

impl<'a> Backward<'a> {
    pub fn new(
        t: &'a GpuTrainer,
        dims: Dims,
        level: Level,
        fwd: &'a ForwardBuffers,
    ) -> Result<Self> {
        Ok(Self {
            t,
            dims,
            level,
            fwd,
        })
    }

    /// Records loss and backward into `plan`; returns the buffers the host reads or writes.
    pub fn record(self, plan: &mut PlanBuilder<'_>) -> Result<BackwardBuffers> {
        let Self {
            t,
            dims,
            level,
            fwd,
        } = self;
        let model = &t.model;
        let cfg = model.config();
        let device = model.context().device();
        let limits = device.limits();
        let Dims { seq_len, batch } = dims;
        let ctx = model.context();
        let shape = RecurrentShape {
            hidden: cfg.hidden_size,
            hidden_out: cfg.output_size(),
            batch,
        };
        let class = ShapeClass::of(shape, cfg.num_directions(), true);
        let gemv_rows = ctx.gemv_rows(class, shape);
        let (d, h, h_out, layers) = (
            cfg.num_directions(),
            cfg.hidden_size,
            cfg.output_size(),
            cfg.num_layers,
        );
        let rows = seq_len * batch;
        let (g4, width) = (d * 4 * h, d * h_out);
        let out_width = t.like.output_width();
        let u = to_u32;
        let proj = cfg.proj_size > 0;
        for (what, len) in [
            ("the gate gradients", rows * g4),
            (
                "the projection gradient cache",
                if proj { rows * d * h_out } else { 0 },
            ),
        ] {
            check_size(&limits, what, len)?;
        }

        // A per-sequence loss reads the head applied to the top layer's final hidden state,
        // both directions concatenated: features [B, D*H_out] gathered from h_n.
        let per_sequence = level == Level::PerSequence;
        let last = layers - 1;
        let features = if per_sequence {
            let features = storage_nan(device, "final-state features", batch * width);
            let top = last * d * batch * h_out;
            // features[b, dir * H_out + k] = h_n[top + (dir * B + b) * H_out + k]
            record_permute(
                plan,
                last,
                "gather final states",
                (&fwd.h_n, top),
                (&features, 0),
                [1, batch, d, h_out],
                [0, h_out, batch * h_out, 1],
                None,
            )?;
            Some(features)
        } else {
            None
        };
        let loss_rows = if per_sequence { batch } else { rows };
        let logits = match (&features, &model.weights.head) {
            (Some(features), Some(head)) => {
                let o = head.out_features;
                let logits = storage_nan(device, "sequence logits", batch * o);
                let bias = head.bias.as_ref().unwrap_or(&fwd.unused);
                let (kernel, workgroups) = product_kernel(batch, o, gemv_rows)?;
                let group = plan.group(
                    kernel,
                    "sequence head",
                    &[
                        ("a", features),
                        ("b", &head.weight_t),
                        ("bias", bias),
                        ("c", &logits),
                    ],
                );
                let p = GemmParams::product(
                    batch,
                    o,
                    width,
                    View::rows(0, width),
                    View::rows(0, o),
                    View::rows(0, o),
                )?
                .with_bias(head.bias.is_some());
                plan.dispatch(last, group, &p, workgroups)?;
                Some(logits)
            }
            (Some(features), None) => Some(features.clone()),
            (None, _) => None,
        };

        // Loss: each row's weighted term and gradient (weights from the host: 1 / count, 0
        // for padded or ignored rows), then their sum into scalars[0]; for cross-entropy the
        // rows classified right, summed into scalars[HITS_SCALAR].
        let values = storage_nan(
            device,
            "mse targets",
            if t.options.loss == Loss::Mse {
                loss_rows * out_width
            } else {
                1
            },
        );
        let classes = storage_init(device, "class targets", &vec![0u32; loss_rows]);
        let row_weights = storage_nan(device, "loss row weights", loss_rows);
        let d_output = storage_nan(device, "d output", loss_rows * out_width);
        let terms = storage_nan(device, "loss terms", loss_rows * out_width);
        // cross-entropy: 1 for each counted row classified right (the accuracy's numerator)
        let hits = storage_nan(device, "loss hits", loss_rows);
        let output = logits.as_ref().unwrap_or(fwd.output());
        let (kernel, n) = match t.options.loss {
            Loss::Mse => (Kernel::MseGrad, loss_rows * out_width),
            Loss::CrossEntropy => (Kernel::CrossEntropyGrad, loss_rows),
        };
        let group = plan.group(
            kernel,
            "loss",
            &[
                ("y", output),
                ("values", &values),
                ("classes", &classes),
                ("row_weights", &row_weights),
                ("grad", &d_output),
                ("terms", &terms),
                ("hits", &hits),
            ],
        );
        plan.dispatch(
            last,
            group,
            &LossParams {
                n: u("loss items", n)?,
                width: u("output width", out_width)?,
                _pad: [0; 2],
            },
            elementwise_groups(n)?,
        )?;
        super::reduce::record_sum(
            plan,
            last,
            "loss sum",
            (&terms, n),
            false,
            1.0,
            (&t.scalars, 0),
            &t.partials,
        )?;
        if t.options.loss == Loss::CrossEntropy {
            super::reduce::record_sum(
                plan,
                last,
                "loss hits sum",
                (&hits, loss_rows),
                false,
                1.0,
                (&t.scalars, super::trainer::HITS_SCALAR),
                &t.partials,
            )?;
        }

        // every product this backward pass records, (m, n, k), to size the shared buffers
        let mut products = vec![(out_width, width, rows), (rows, width, out_width)];
        for layer in 0..layers {
            let in_size = cfg.layer_input_size(layer);
            products.extend([
                (g4, in_size, rows),
                (4 * h, h_out, rows),
                (rows, in_size, g4),
            ]);
            if proj {
                products.push((h_out, h, rows));
            }
        }
        let max_splits = ctx.max_k_splits(class, shape);
        let products = WeightGrads::new(device, &products, g4.max(out_width), max_splits);
        let gemm =
            |plan: &mut PlanBuilder<'_>,
             layer: usize,
             label: &str,
             a: &wgpu::Buffer,
             b: &wgpu::Buffer,
             c: &wgpu::Buffer,
             p: GemmParams| products.record(plan, layer, label, a, b, c, p);
        let column_partials = &products.partials;

        // The head: dW = dOᵀ · Y, db = Σ dO, dY = dO · W, over every step's rows, or over
        // the final-state features (per sequence: the steps' outputs then get no gradient).
        let (head_rows, head_input) = match &features {
            Some(features) => (batch, features),
            None => (rows, &fwd.y[last]),
        };
        let mut dy = d_output.clone();
        if let (Some(_), Some(w_at)) = (&model.weights.head, t.layout.head_weight) {
            let o = out_width;
            let p = GemmParams::product(
                o,
                width,
                head_rows,
                View::transposed(0, o),
                View::rows(0, width),
                View::rows(w_at, width),
            )?;
            gemm(plan, last, "head dW", &d_output, head_input, &t.grads, p)?;
            if let Some(b_at) = t.layout.head_bias {
                super::columns::record_column_sums(
                    plan,
                    last,
                    "head db",
                    (&d_output, 0, o),
                    (head_rows, o),
                    (&t.grads, b_at, None),
                    column_partials,
                )?;
            }
            dy = storage_nan(device, "d lstm output", head_rows * width);
            let p = GemmParams::product(
                head_rows,
                width,
                o,
                View::rows(0, o),
                View::rows(w_at, width),
                View::rows(0, width),
            )?;
            gemm(plan, last, "head dY", &d_output, &t.params, &dy, p)?;
        }
        // the output's dropout on its gradient (per step only: checked when the batch came)
        if !per_sequence {
            record_dropout(t, plan, layers, (&dy, rows * width))?;
        }
        // per sequence: dy so far is dL/d(features); the steps' outputs get none
        let d_features = if per_sequence {
            let d_features = dy;
            dy = storage_zeros(device, "d lstm output (none per step)", rows * width);
            Some(d_features)
        } else {
            None
        };

        let dgates = storage_nan(device, "gate gradients", rows * g4);
        let carry = storage_nan(device, "gradient carry", d * batch * (h_out + h));
        let dh_cache = storage_nan(
            device,
            "projection gradient cache",
            if proj { d * rows * h_out } else { 1 },
        );
        let dx = storage_nan(device, "dx", rows * cfg.input_size);
        let dh0 = storage_nan(device, "dh0", layers * d * batch * h_out);
        let dc0 = storage_nan(device, "dc0", layers * d * batch * h);
        let tiles = ctx.backward_tiles(class, shape)?;
        let constants = tiles.constants();
        let back_groups = |units: usize| tiles.workgroups(units, batch, d);
        for layer in (0..layers).rev() {
            let offsets = &t.layout.layers[layer];
            let in_size = cfg.layer_input_size(layer);
            let input = if layer == 0 {
                &fwd.x
            } else {
                &fwd.y[layer - 1]
            };
            let d_input = if layer == 0 {
                dx.clone()
            } else {
                storage_nan(
                    device,
                    &format!("d layer output {}", layer - 1),
                    rows * in_size,
                )
            };
            plan.clear(&carry);
            if let (Some(d_features), true) = (&d_features, layer == last) {
                // the carried dL/dh starts at the final state's gradient:
                // carry_h[dir, b, k] = d_features[b, dir * H_out + k]
                record_permute(
                    plan,
                    layer,
                    "final-state gradient",
                    (d_features, 0),
                    (&carry, 0),
                    [1, d, batch, h_out],
                    [0, h_out, width, 1],
                    None,
                )?;
            }
            let buffers = [
                ("weights", &t.params),
                ("dgates", &dgates),
                ("dy", &dy),
                ("carry", &carry),
                ("gates", &fwd.gates[layer]),
                ("c_state", &fwd.c_state[layer]),
                ("dh_cache", &dh_cache),
                ("lengths", &fwd.lengths),
            ];
            let step_group = plan.group(
                Kernel::LstmBackwardStep,
                &format!("lstm_backward_step l{layer}"),
                &buffers,
            );
            let dh_group = plan.group(
                Kernel::LstmBackwardDh,
                &format!("lstm_backward_dh l{layer}"),
                &buffers,
            );
            let params =
                |next_step: usize, has_current: bool, has_next: bool| -> Result<BackParams> {
                    Ok(BackParams {
                        seq_len: u("seq_len", seq_len)?,
                        batch: u("batch", batch)?,
                        hidden: u("H", h)?,
                        hidden_out: u("H_out", h_out)?,
                        dirs: d as u32,
                        next_step: u("step", next_step)?,
                        has_current: has_current as u32,
                        has_next: has_next as u32,
                        w_hh_offset: u("offset", offsets.w_hh)?,
                        w_hr_offset: u("offset", offsets.w_hr.unwrap_or(0))?,
                        carry_c_offset: u("offset", d * batch * h_out)?,
                        proj: proj as u32,
                    })
                };
            for s in (0..seq_len).rev() {
                let p = params(s + 1, true, s + 1 < seq_len)?;
                if proj {
                    plan.dispatch_with(layer, dh_group, &constants, &p, back_groups(h_out))?;
                }
                plan.dispatch_with(layer, step_group, &constants, &p, back_groups(h))?;
            }
            plan.dispatch_with(
                layer,
                dh_group,
                &constants,
                &params(0, false, true)?,
                back_groups(h_out),
            )?;
            let (h_bytes, c_bytes) = ((d * batch * h_out * 4) as u64, (d * batch * h * 4) as u64);
            plan.copy(&carry, 0, &dh0, layer as u64 * h_bytes, h_bytes);
            plan.copy(&carry, h_bytes, &dc0, layer as u64 * c_bytes, c_bytes);

            // Weight gradients over all timesteps at once (rows = (t, b), time-major):
            // dW_ih = dgatesᵀ · input, db = Σ dgates, both directions in one product.
            let dgates_t = |offset| View::transposed(offset, g4);
            let p = GemmParams::product(
                g4,
                in_size,
                rows,
                dgates_t(0),
                View::rows(0, in_size),
                View::rows(offsets.w_ih, in_size),
            )?;
            gemm(plan, layer, "dW_ih", &dgates, input, &t.grads, p)?;
            // db_ih = db_hh = Σ dgates over every (t, b)
            if let (Some(b_ih), b_hh) = (offsets.b_ih, offsets.b_hh) {
                super::columns::record_column_sums(
                    plan,
                    layer,
                    "db",
                    (&dgates, 0, g4),
                    (rows, g4),
                    (&t.grads, b_ih, b_hh),
                    column_partials,
                )?;
            }
            for dir in 0..d {
                // dW_hh = dgatesᵀ · h_{t-1}: h before the step at t is slot t + dir of
                // this direction's [T + 1, B, H_out] states (see lstm_step.wgsl)
                let h_before = View::rows(dir * (seq_len + 2) * batch * h_out, h_out);
                let dw_hh = View::rows(offsets.w_hh + dir * 4 * h * h_out, h_out);
                let p = GemmParams::product(
                    4 * h,
                    h_out,
                    rows,
                    dgates_t(dir * 4 * h),
                    h_before,
                    dw_hh,
                )?;
                gemm(
                    plan,
                    layer,
                    "dW_hh",
                    &dgates,
                    &fwd.h_state[layer],
                    &t.grads,
                    p,
                )?;
                if let Some(w_hr) = offsets.w_hr {
                    // dW_hr = dhᵀ · h_full, per direction
                    let dh = View::transposed(dir * rows * h_out, h_out);
                    let h_full = View::rows(dir * rows * h, h);
                    let p = GemmParams::product(
                        h_out,
                        h,
                        rows,
                        dh,
                        h_full,
                        View::rows(w_hr + dir * h_out * h, h),
                    )?;
                    gemm(
                        plan,
                        layer,
                        "dW_hr",
                        &dh_cache,
                        &fwd.h_full[layer],
                        &t.grads,
                        p,
                    )?;
                }
            }
            // The layer input's gradient: dgates · W_ih.
            let p = GemmParams::product(
                rows,
                in_size,
                g4,
                View::rows(0, g4),
                View::rows(offsets.w_ih, in_size),
                View::rows(0, in_size),
            )?;
            gemm(plan, layer, "d input", &dgates, &t.params, &d_input, p)?;
            // this layer's input dropout on its gradient: the gradient below it
            record_dropout(t, plan, layer, (&d_input, rows * in_size))?;
            dy = d_input;
        }
        Ok(BackwardBuffers {
            values,
            classes,
            row_weights,
            dx,
            dh0,
            dc0,
        })
    }
}
