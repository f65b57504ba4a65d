//! The forward pass as plan operations: per layer, one input-projection gemm and one fused
//! step dispatch per timestep (two with a projection), then the head's gemm.
//!
//! Inference keeps two rolling state slots and shares buffers between layers. Training
//! (`cache`) keeps every layer's output and every state, gate activation and h_full by time,
//! for the backward pass; its input and output are always time-major.

use super::buffers::{storage_init, storage_nan};
use super::builder::PlanBuilder;
use super::kernels::{Kernel, GEMM_TILE, STEP_BATCH_TILE, WORKGROUP_SIZE};
use super::model::GpuLstm;
use super::params::{GemmParams, StepParams, View};
use crate::error::{Error, Result};
use crate::shape::Dims;

/// The buffers of a forward pass; per-layer vectors hold clones of one buffer where layers share.
pub(crate) struct ForwardBuffers {
    /// layer-0 input
    pub x: wgpu::Buffer,
    /// each layer's output `[T, B, D*H_out]`
    pub y: Vec<wgpu::Buffer>,
    /// each layer's h states `[D, slots, B, H_out]`
    pub h_state: Vec<wgpu::Buffer>,
    /// each layer's c states `[D, slots, B, H]`
    pub c_state: Vec<wgpu::Buffer>,
    /// each layer's o ⊙ tanh(c) `[D, T or 1, B, H]`
    pub h_full: Vec<wgpu::Buffer>,
    /// each layer's gate activations `[D, T, B, H]` vec4 (training)
    pub gates: Vec<wgpu::Buffer>,
    pub h0: wgpu::Buffer,
    pub c0: wgpu::Buffer,
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
    /// `[B]` u32
    pub lengths: wgpu::Buffer,
    /// the head's output `[T*B, O]`
    pub head_out: Option<wgpu::Buffer>,
    /// element counts of (model output, h_n, c_n)
    pub lens: (usize, usize, usize),
}

impl ForwardBuffers {
    /// Uploads `inputs`' h0 and c0 (zeros when absent) and its lengths.
    pub fn write_state(&self, queue: &wgpu::Queue, inputs: &crate::shape::Batched<'_, f32>) {
        let (_, hn_len, cn_len) = self.lens;
        let state = |t: &Option<std::borrow::Cow<'_, crate::Tensor>>, len| {
            t.as_ref()
                .map_or_else(|| vec![0.0f32; len], |t| t.data().to_vec())
        };
        queue.write_buffer(
            &self.h0,
            0,
            bytemuck::cast_slice(&state(&inputs.h0, hn_len)),
        );
        queue.write_buffer(
            &self.c0,
            0,
            bytemuck::cast_slice(&state(&inputs.c0, cn_len)),
        );
        let lengths: Vec<u32> = inputs.lengths.iter().map(|&l| l as u32).collect();
        queue.write_buffer(&self.lengths, 0, bytemuck::cast_slice(&lengths));
    }

    /// The model's output: the head's, else the last layer's.
    pub fn output(&self) -> &wgpu::Buffer {
        self.head_out.as_ref().unwrap_or(&self.y[self.y.len() - 1])
    }
}

pub(crate) fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Input(format!("{what} ({n}) does not fit in 32 bits")))
}

/// Checks that a buffer of `len` f32 fits the device's binding limits.
pub(crate) fn check_size(limits: &wgpu::Limits, what: &str, len: usize) -> Result<()> {
    let bytes = len as u64 * 4;
    let (limit, available) = if limits.max_storage_buffer_binding_size <= limits.max_buffer_size {
        (
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        )
    } else {
        ("max_buffer_size", limits.max_buffer_size)
    };
    if bytes > available {
        return Err(Error::Limit {
            what: format!("{what} ({bytes} bytes)"),
            limit,
            needed: bytes,
            available,
        });
    }
    Ok(())
}

/// gemm workgroups for an `m x n` output.
pub(crate) fn gemm_groups(m: usize, n: usize) -> Result<[u32; 3]> {
    let tile = GEMM_TILE as usize;
    Ok([
        to_u32("gemm columns", n.div_ceil(tile))?,
        to_u32("gemm rows", m.div_ceil(tile))?,
        1,
    ])
}

/// (first slot read, last slot written) of `dir` over a whole sequence: where h0/c0 go in and
/// h_n/c_n come out (see lstm_step.wgsl).
pub(crate) fn state_slots(cache: bool, dir: usize, seq_len: usize) -> (usize, usize) {
    match (cache, dir) {
        (false, _) => (0, seq_len % 2),
        (true, 0) => (0, seq_len),
        (true, _) => (seq_len, 0),
    }
}

/// Records the forward pass of `model` for `dims` into `plan`.
pub(crate) fn build_forward(
    plan: &mut PlanBuilder<'_>,
    model: &GpuLstm,
    dims: Dims,
    cache: bool,
) -> Result<ForwardBuffers> {
    let cfg = model.config();
    let device = model.context().device();
    let limits = device.limits();
    let Dims { seq_len, batch } = dims;
    let (d, h, h_out, layers) = (
        cfg.num_directions(),
        cfg.hidden_size,
        cfg.output_size(),
        cfg.num_layers,
    );
    let proj = cfg.proj_size > 0;
    let io_batch_first = cfg.batch_first && !cache;
    let rows = seq_len * batch;
    let width = d * h_out;
    let head_width = model.head.as_ref().map_or(0, |hd| hd.out_features);
    let (h_slots, c_slots, t_slots) = if cache {
        (seq_len + 1, seq_len + 1, seq_len)
    } else {
        (2, 1, 1)
    };
    let u = to_u32;

    for (what, len) in [
        ("the input", rows * cfg.input_size),
        ("the input projection [T, B, D*4H]", rows * d * 4 * h),
        ("a layer output [T, B, D*H_out]", rows * width),
        ("the head output [T, B, O]", rows * head_width),
        ("the h states", d * h_slots * batch * h_out),
        ("the c states", d * c_slots * batch * h),
        (
            "the gate cache",
            if cache {
                d * seq_len * batch * 4 * h
            } else {
                0
            },
        ),
    ] {
        check_size(&limits, what, len)?;
    }

    // Buffers: per layer in training, shared (or ping-pong for y) in inference.
    let per_layer = |label: &str, len: usize, count: usize| -> Vec<wgpu::Buffer> {
        let made: Vec<_> = (0..count)
            .map(|i| storage_nan(device, &format!("{label} {i}"), len))
            .collect();
        (0..layers).map(|l| made[l % count].clone()).collect()
    };
    let distinct = |n: usize| if cache { layers } else { n };
    let x = storage_nan(device, "x", rows * cfg.input_size);
    let pre = storage_nan(device, "input projection", rows * d * 4 * h);
    let y = per_layer("layer output", rows * width, distinct(layers.min(2)));
    let h_state = per_layer("h states", d * h_slots * batch * h_out, distinct(1));
    let c_state = per_layer("c states", d * c_slots * batch * h, distinct(1));
    let h_full_len = if proj || cache {
        d * t_slots * batch * h
    } else {
        1
    };
    let h_full = per_layer("h_full", h_full_len, distinct(1));
    let gates = per_layer(
        "gate cache",
        if cache {
            d * seq_len * batch * 4 * h
        } else {
            4
        },
        distinct(1),
    );
    // The initial state defaults to zeros, as in PyTorch, until written.
    let (hn_len, cn_len) = (layers * d * batch * h_out, layers * d * batch * h);
    let h0 = storage_init(device, "h0", &vec![0.0f32; hn_len]);
    let c0 = storage_init(device, "c0", &vec![0.0f32; cn_len]);
    let h_n = storage_nan(device, "h_n", hn_len);
    let c_n = storage_nan(device, "c_n", cn_len);
    let lengths = storage_init(device, "lengths", &vec![u("seq_len", seq_len)?; batch]);
    let head_out = model
        .head
        .as_ref()
        .map(|_| storage_nan(device, "head output", rows * head_width));
    let unused_read = storage_nan(device, "unused (read)", 1);

    let step_groups = [
        u("H", h)?.div_ceil(WORKGROUP_SIZE),
        u("batch", batch)?.div_ceil(STEP_BATCH_TILE),
        d as u32,
    ];
    let proj_groups = [
        u("P", h_out)?.div_ceil(WORKGROUP_SIZE),
        u("batch", batch)?,
        d as u32,
    ];
    let (h_bytes, c_bytes) = ((batch * h_out * 4) as u64, (batch * h * 4) as u64);
    for (layer, weights) in model.layers.iter().enumerate() {
        let input = if layer == 0 { &x } else { &y[layer - 1] };
        let in_size = cfg.layer_input_size(layer);
        for dir in 0..d {
            let (first, _) = state_slots(cache, dir, seq_len);
            let state = (layer * d + dir) as u64;
            plan.copy(
                &h0,
                state * h_bytes,
                &h_state[layer],
                (dir * h_slots + first) as u64 * h_bytes,
                h_bytes,
            );
            plan.copy(
                &c0,
                state * c_bytes,
                &c_state[layer],
                (dir * c_slots + first.min(c_slots - 1)) as u64 * c_bytes,
                c_bytes,
            );
        }
        let (group_stride, row_stride) = if layer == 0 && io_batch_first {
            (in_size, seq_len * in_size)
        } else {
            (batch * in_size, in_size)
        };
        let bias = if cfg.bias {
            &weights.bias
        } else {
            &unused_read
        };
        let gemm = plan.group(
            Kernel::Gemm,
            &format!("input projection l{layer}"),
            &[input, &weights.w_ih_t, bias, &pre],
        );
        plan.dispatch(
            layer,
            gemm,
            &GemmParams {
                m: u("T*B", rows)?,
                n: u("D*4H", d * 4 * h)?,
                k: u("input width", in_size)?,
                has_bias: cfg.bias as u32,
                a_group_rows: u("batch", batch)?,
                a_group_stride: u("input stride", group_stride)?,
                a_row_stride: u("input stride", row_stride)?,
                a_k_stride: 1,
                b_k_stride: u("D*4H", d * 4 * h)?,
                b_n_stride: 1,
                c_row_stride: u("D*4H", d * 4 * h)?,
                ..Default::default()
            },
            gemm_groups(rows, d * 4 * h)?,
        )?;

        let last = layer + 1 == layers;
        let (y_t_stride, y_b_stride) = if last && io_batch_first {
            (width, seq_len * width)
        } else {
            (batch * width, width)
        };
        let output = &y[layer];
        let step = plan.group(
            Kernel::LstmStep,
            &format!("lstm_step l{layer}"),
            &[
                &pre,
                &weights.w_hh,
                &h_state[layer],
                &c_state[layer],
                output,
                &h_full[layer],
                &lengths,
                &gates[layer],
            ],
        );
        let proj_group = if proj {
            Some(plan.group(
                Kernel::LstmProj,
                &format!("lstm_proj l{layer}"),
                &[
                    &h_full[layer],
                    &weights.w_hr_t,
                    &h_state[layer],
                    output,
                    &lengths,
                ],
            ))
        } else {
            None
        };
        for s in 0..seq_len {
            let params = StepParams {
                seq_len: u("seq_len", seq_len)?,
                batch: u("batch", batch)?,
                hidden: u("H", h)?,
                hidden_out: u("H_out", h_out)?,
                dirs: d as u32,
                step: s as u32,
                y_t_stride: u("output stride", y_t_stride)?,
                y_b_stride: u("output stride", y_b_stride)?,
                proj: proj as u32,
                has_lengths: 1,
                cache: cache as u32,
                _pad: 0,
            };
            let offset = plan.dispatch(layer, step, &params, step_groups)?;
            if let Some(group) = proj_group {
                plan.dispatch_at(layer, group, offset, proj_groups);
            }
        }
        for dir in 0..d {
            let (_, last_slot) = state_slots(cache, dir, seq_len);
            let state = (layer * d + dir) as u64;
            plan.copy(
                &h_state[layer],
                (dir * h_slots + last_slot) as u64 * h_bytes,
                &h_n,
                state * h_bytes,
                h_bytes,
            );
            plan.copy(
                &c_state[layer],
                (dir * c_slots + last_slot.min(c_slots - 1)) as u64 * c_bytes,
                &c_n,
                state * c_bytes,
                c_bytes,
            );
        }
    }
    if let (Some(head), Some(out)) = (&model.head, &head_out) {
        let last = layers - 1;
        let bias = head.bias.as_ref().unwrap_or(&unused_read);
        let group = plan.group(Kernel::Gemm, "head", &[&y[last], &head.weight_t, bias, out]);
        // head(y) = y · weightᵀ + bias, weightᵀ resident as [D*H_out, O]
        let o = head.out_features;
        let p = GemmParams::product(
            rows,
            o,
            width,
            View::rows(0, width),
            View::rows(0, o),
            View::rows(0, o),
        )?
        .with_bias(head.bias.is_some());
        plan.dispatch(last, group, &p, gemm_groups(rows, o)?)?;
    }
    let out_len = if head_width > 0 {
        rows * head_width
    } else {
        rows * width
    };
    Ok(ForwardBuffers {
        x,
        y,
        h_state,
        c_state,
        h_full,
        gates,
        h0,
        c0,
        h_n,
        c_n,
        lengths,
        head_out,
        lens: (out_len, hn_len, cn_len),
    })
}
