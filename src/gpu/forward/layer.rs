//! Recording one layer: the initial state into its slots, then chunk by chunk the input
//! projection (gemm) and the recurrent steps (the variant's kernel), then the final state out.

use super::buffers::ForwardBuffers;
use super::chunks::{chunks, Chunk};
use super::slots::Slots;
use crate::error::Result;
use crate::gpu::kernels::{
    cell_constants, product_kernel, to_u32, GemmParams, Kernel, Recurrence, RecurrentShape,
    StepParams, WORKGROUP_SIZE,
};
use crate::gpu::plan::{PlanBuilder, StepKernel};
use crate::gpu::weights::ResidentWeights;
use crate::shape::Dims;

/// Everything the layers of one forward pass share.
pub(super) struct LayerPass<'a> {
    pub weights: &'a ResidentWeights,
    pub buffers: &'a ForwardBuffers,
    pub dims: Dims,
    pub cache: bool,
    pub variant: Recurrence,
    pub chunk_steps: usize,
    /// products of at most this many rows run as gemv
    pub gemv_rows: usize,
}

impl LayerPass<'_> {
    pub fn record(&self, plan: &mut PlanBuilder<'_>, layer: usize) -> Result<()> {
        let cfg = &self.weights.config;
        let (bufs, w) = (self.buffers, &self.weights.layers[layer]);
        let input = if layer == 0 {
            &bufs.x
        } else {
            &bufs.y[layer - 1]
        };
        let bias = if cfg.bias { &w.bias } else { &bufs.unused };
        let mut projection = Projection {
            label: format!("input projection l{layer}"),
            buffers: [
                ("a", input),
                ("b", &w.w_ih_t),
                ("bias", bias),
                ("c", &bufs.pre),
            ],
            groups: Vec::new(),
        };
        let state = [
            ("pre", &bufs.pre),
            ("w_hh", &w.w_hh),
            ("h_state", &bufs.h_state[layer]),
            ("c_state", &bufs.c_state[layer]),
            ("y", &bufs.y[layer]),
            ("h_full", &bufs.h_full[layer]),
            ("lengths", &bufs.lengths),
            ("gates", &bufs.gates[layer]),
        ];
        let kernel = self.variant.kernel();
        let step = plan.group(kernel, &format!("{} l{layer}", kernel.name()), &state);
        let proj = (cfg.proj_size > 0).then(|| {
            plan.group(
                Kernel::LstmProj,
                &format!("lstm_proj l{layer}"),
                &[
                    ("h_full", &bufs.h_full[layer]),
                    ("w_hr", &w.w_hr_t),
                    ("h_state", &bufs.h_state[layer]),
                    ("y", &bufs.y[layer]),
                    ("lengths", &bufs.lengths),
                ],
            )
        });

        self.state_copies(plan, layer, true);
        for chunk in chunks(self.dims.seq_len, self.chunk_steps) {
            self.project(plan, layer, &mut projection, chunk)?;
            self.steps(plan, layer, step, proj, chunk)?;
        }
        self.state_copies(plan, layer, false);
        Ok(())
    }

    fn shape(&self) -> RecurrentShape {
        let cfg = &self.weights.config;
        RecurrentShape {
            hidden: cfg.hidden_size,
            hidden_out: cfg.output_size(),
            batch: self.dims.batch,
        }
    }

    /// h0/c0 into the slots the first step reads (`into`), or the slots the last step wrote
    /// out to h_n/c_n.
    fn state_copies(&self, plan: &mut PlanBuilder<'_>, layer: usize, into: bool) {
        let cfg = &self.weights.config;
        let bufs = self.buffers;
        let batch = self.dims.batch as u64;
        let (h_bytes, c_bytes) = (
            batch * cfg.output_size() as u64 * 4,
            batch * cfg.hidden_size as u64 * 4,
        );
        let slots = Slots::new(self.cache, self.dims.seq_len);
        let (h_count, c_count) = slots.counts();
        let d = cfg.num_directions();
        for dir in 0..d {
            let (h_slot, c_slot) = if into {
                slots.first(dir)
            } else {
                slots.last(dir)
            };
            let state = (layer * d + dir) as u64;
            let h_at = (dir * h_count + h_slot) as u64 * h_bytes;
            let c_at = (dir * c_count + c_slot) as u64 * c_bytes;
            let (h_state, c_state) = (&bufs.h_state[layer], &bufs.c_state[layer]);
            if into {
                plan.copy(&bufs.h0, state * h_bytes, h_state, h_at, h_bytes);
                plan.copy(&bufs.c0, state * c_bytes, c_state, c_at, c_bytes);
            } else {
                plan.copy(h_state, h_at, &bufs.h_n, state * h_bytes, h_bytes);
                plan.copy(c_state, c_at, &bufs.c_n, state * c_bytes, c_bytes);
            }
        }
    }

    /// `pre = x · W_ihᵀ + b` for the chunk's time range: one gemm for every direction when
    /// the directions share it (one direction, or one chunk), else one per direction.
    fn project(
        &self,
        plan: &mut PlanBuilder<'_>,
        layer: usize,
        projection: &mut Projection<'_>,
        chunk: Chunk,
    ) -> Result<()> {
        let cfg = &self.weights.config;
        let Dims { seq_len, batch } = self.dims;
        let (d, g4) = (cfg.num_directions(), 4 * cfg.hidden_size);
        let in_size = cfg.layer_input_size(layer);
        // Input row m = t * B + b is at (m / B) * group_stride + (m % B) * row_stride.
        let batch_first_input = layer == 0 && cfg.batch_first && !self.cache;
        let (group_stride, row_stride) = if batch_first_input {
            (in_size, seq_len * in_size)
        } else {
            (batch * in_size, in_size)
        };
        let shared = d == 1 || chunk.len == seq_len;
        let runs: Vec<(usize, usize)> = if shared {
            vec![(0, d)]
        } else {
            (0..d).map(|dir| (dir, 1)).collect()
        };
        let u = to_u32;
        for (dir, dirs) in runs {
            let t0 = chunk.first_time(dir, seq_len);
            let (m, n) = (chunk.len * batch, dirs * g4);
            let params = GemmParams {
                m: u("chunk rows", m)?,
                n: u("D*4H", n)?,
                k: u("input width", in_size)?,
                has_bias: cfg.bias as u32,
                a_offset: u("input offset", t0 * group_stride)?,
                a_group_rows: u("batch", batch)?,
                a_group_stride: u("input stride", group_stride)?,
                a_row_stride: u("input stride", row_stride)?,
                a_k_stride: 1,
                b_offset: u("weight offset", dir * g4)?,
                b_k_stride: u("D*4H", d * g4)?,
                b_n_stride: 1,
                c_offset: u("offset", dir * g4)?,
                c_row_stride: u("D*4H", d * g4)?,
                accumulate: 0,
                bias_offset: u("offset", dir * g4)?,
                ..Default::default()
            };
            let (kernel, workgroups) = product_kernel(m, n, self.gemv_rows)?;
            let group = projection.group(plan, kernel);
            plan.dispatch(layer, group, &params, workgroups)?;
        }
        Ok(())
    }

    /// The chunk's steps: one dispatch of the sequence kernel, or one step dispatch per step
    /// (and one lstm_proj dispatch after each with a projection).
    fn steps(
        &self,
        plan: &mut PlanBuilder<'_>,
        layer: usize,
        step: usize,
        proj: Option<usize>,
        chunk: Chunk,
    ) -> Result<()> {
        let cfg = &self.weights.config;
        let Dims { seq_len, batch } = self.dims;
        let (d, width) = (
            cfg.num_directions(),
            cfg.num_directions() * cfg.output_size(),
        );
        let last = layer + 1 == cfg.num_layers;
        let (y_t_stride, y_b_stride) = if last && cfg.batch_first && !self.cache {
            (width, seq_len * width)
        } else {
            (batch * width, width)
        };
        let u = to_u32;
        let params = StepParams {
            seq_len: u("seq_len", seq_len)?,
            batch: u("batch", batch)?,
            hidden: u("H", cfg.hidden_size)?,
            hidden_out: u("H_out", cfg.output_size())?,
            dirs: d as u32,
            y_t_stride: u("output stride", y_t_stride)?,
            y_b_stride: u("output stride", y_b_stride)?,
            proj: (cfg.proj_size > 0) as u32,
            cache: self.cache as u32,
            chunk_start: u("step", chunk.start)?,
            chunk_len: u("steps", chunk.len)?,
            pre_t0_fwd: u("step", chunk.first_time(0, seq_len))?,
            pre_t0_rev: u("step", chunk.first_time(1, seq_len))?,
            _pad: [0; 3],
        };
        let shape = self.shape();
        let mut constants = self.variant.constants(shape);
        constants.extend(cell_constants(&cfg.cell));
        let workgroups = self.variant.workgroups(shape, d);
        if self.variant.is_sequence() {
            return plan.dispatch_with(layer, step, &constants, &params, workgroups);
        }
        let mut kernels = vec![StepKernel {
            group: step,
            constants,
            workgroups,
        }];
        if let Some(group) = proj {
            kernels.push(StepKernel {
                group,
                constants: Kernel::LstmProj.spec().constants.to_vec(),
                workgroups: [
                    cfg.output_size().div_ceil(WORKGROUP_SIZE as usize),
                    batch,
                    d,
                ],
            });
        }
        plan.steps(layer, &kernels, &params, chunk.len)
    }
}

/// The input projection's buffers, bound for the kernels its chunks use (the gemm, or gemv
/// for a chunk of few rows).
struct Projection<'b> {
    label: String,
    buffers: [(&'static str, &'b wgpu::Buffer); 4],
    groups: Vec<(Kernel, usize)>,
}

impl Projection<'_> {
    fn group(&mut self, plan: &mut PlanBuilder<'_>, kernel: Kernel) -> usize {
        if let Some(&(_, group)) = self.groups.iter().find(|(k, _)| *k == kernel) {
            return group;
        }
        let group = plan.group(kernel, &self.label, &self.buffers);
        self.groups.push((kernel, group));
        group
    }
}
