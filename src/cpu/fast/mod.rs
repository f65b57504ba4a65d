//! The fast f32 CPU path: weights packed once, the recurrent product fused with the gate
//! math in SIMD registers (`pulp`, which picks AVX2/AVX-512/NEON at run time), and a team of
//! threads split by hidden-unit blocks. The generic [`CpuLstm`] stays the readable
//! specification this path is checked against.
//!
//! Results are bitwise reproducible for a given thread count, and also equal across thread
//! counts: every output element is summed in the same order whichever thread computes it
//! (the input projection splits rows, the recurrence splits unit blocks).

mod backward;
mod cross_entropy;
mod forward;
mod kernel;
mod layer;
mod math;
mod pack;
mod plan;
mod reuse;
mod simd;
mod stream;
pub(crate) mod team;

use self::forward::{DirectionJob, GroupQueues, JobParts, Scratch};
use self::layer::LayerRun;
use self::pack::PackedDirection;
use self::plan::Work;
pub use self::plan::{
    split_min_macs, Group, Plan, PARALLEL_PROJECTION_MIN_MACS, SPLIT_STEP_MIN_MACS,
    STEP_MACS_PER_NS,
};
use self::reuse::Reuse;
use self::simd::Isa;
pub use self::simd::SIMD_LANES_VAR;
pub use self::stream::CpuStream;
pub use self::team::default_threads;
use self::team::{Barrier, Shared};
use super::forward::LayerPass;
use super::CpuLstm;
use super::Gradients;
use crate::error::{Error, Result};
use crate::loss::{loss_and_grad, Loss, Scored, Target};
use crate::shape::Dims;
use crate::shape::{Batched, Inputs, LstmOutput};
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// An LSTM (and its optional head) on the CPU in f32, fast: what `run`, `bench` and training
/// use on `--device cpu`.
///
/// ```
/// use lstm_wgpu::{cpu::FastCpuLstm, LstmConfig, LstmWeights, Tensor};
/// # fn main() -> lstm_wgpu::Result<()> {
/// let weights = LstmWeights::init(&LstmConfig::new(8, 32), 0)?;
/// let model = FastCpuLstm::new(&weights).with_threads(2)?;
/// let out = model.forward(&Tensor::full([10, 4, 8], 0.5f32), None, None)?; // [T, B, I]
/// assert_eq!(out.output.shape(), &[10, 4, 32]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FastCpuLstm {
    model: CpuLstm<f32>,
    /// `packed[layer * D + direction]`
    packed: Vec<PackedDirection>,
    threads: usize,
    isa: Isa,
    reuse: Reuse,
}

impl FastCpuLstm {
    /// The model with its weights packed, using every core ([`default_threads`]).
    pub fn new(weights: &LstmWeights) -> Self {
        Self::from_model(CpuLstm::new(weights))
    }

    /// Packs an f32 model, for the widest SIMD the CPU has ([`simd_lanes`]).
    pub fn from_model(model: CpuLstm<f32>) -> Self {
        Self::packed_for(model, Isa::detect(), default_threads(), Reuse::default())
    }

    fn packed_for(model: CpuLstm<f32>, isa: Isa, threads: usize, reuse: Reuse) -> Self {
        let hidden = model.config.hidden_size;
        let packed = model
            .layers
            .iter()
            .map(|layer| PackedDirection::new(layer, hidden, isa.lanes()))
            .collect();
        Self {
            model: CpuLstm {
                product_threads: threads,
                ..model
            },
            packed,
            threads,
            isa,
            reuse,
        }
    }

    /// Runs on the widest SIMD with at most `lanes` f32 lanes (1: without SIMD), the weights
    /// packed again for it. Every width gives bitwise the same results; this is for
    /// comparing their speed (the `LSTM_WGPU_SIMD_LANES` variable does it for a process).
    pub fn with_simd_lanes(self, lanes: usize) -> Result<Self> {
        let isa = self.isa.capped(lanes)?;
        Ok(Self::packed_for(self.model, isa, self.threads, self.reuse))
    }

    /// f32 lanes per vector of the SIMD this model runs on.
    pub fn simd_lanes(&self) -> usize {
        self.isa.lanes()
    }

    /// Uses `threads` threads (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.threads = check_threads(threads)?;
        self.model.product_threads = self.threads;
        Ok(self)
    }

    /// Replaces the weights with `weights` of the same configuration (as a training step
    /// does), keeping the thread count and the buffers kept between calls.
    pub fn set_weights(&mut self, weights: &LstmWeights) -> Result<()> {
        let same_head = |w: &LstmWeights| w.head().map(|h| h.out_features());
        let head = self.model.head.as_ref().map(|h| h.out_features);
        if weights.config() != &self.model.config || same_head(weights) != head {
            return Err(Error::Config(format!(
                "set_weights: the new weights ({:?}, head {:?}) differ in shape from the model's ({:?}, head {:?})",
                weights.config(),
                same_head(weights),
                self.model.config,
                head
            )));
        }
        let reuse = std::mem::take(&mut self.reuse);
        *self = Self::packed_for(CpuLstm::new(weights), self.isa, self.threads, reuse);
        Ok(())
    }

    /// The threads a pass runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The model in its readable form (weights in PyTorch layout).
    pub fn model(&self) -> &CpuLstm<f32> {
        &self.model
    }

    /// Runs the model on `x` with optional `h0`/`c0`; see [`FastCpuLstm::forward_with`].
    pub fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
    ) -> Result<LstmOutput<f32>> {
        self.forward_with(&Inputs::new(x).state(h0, c0))
    }

    /// Runs the model; shapes as in [`Inputs`], results as [`CpuLstm::forward_with`].
    pub fn forward_with(&self, inputs: &Inputs<'_, f32>) -> Result<LstmOutput<f32>> {
        let batched = Batched::new(&self.model.config, inputs)?;
        let out = self
            .model
            .forward_each_direction(&batched, None, &mut |layer| self.run_layer(layer))?;
        batched.finish(out)
    }

    /// The loss of the model on `inputs` against `target`, and its gradients (as
    /// [`CpuLstm::loss_gradients`], computed by the fast kernels).
    pub fn loss_gradients(
        &self,
        inputs: &Inputs<'_, f32>,
        loss: Loss,
        target: &Target,
    ) -> Result<(f32, LstmOutput<f32>, Gradients<f32>)> {
        let (scored, out, grads) = self.gradients(inputs, loss, target, (true, None))?;
        Ok((scored.value, out, grads))
    }

    /// [`FastCpuLstm::loss_gradients`] without the input gradient, which training does not
    /// need: the same loss, output and parameter gradients, with `dx` empty (shape `[0]`).
    pub fn loss_parameter_gradients(
        &self,
        inputs: &Inputs<'_, f32>,
        loss: Loss,
        target: &Target,
    ) -> Result<(f32, LstmOutput<f32>, Gradients<f32>)> {
        let (scored, out, grads) = self.gradients(inputs, loss, target, (false, None))?;
        Ok((scored.value, out, grads))
    }

    /// [`FastCpuLstm::loss_parameter_gradients`], with the input gradient `dx` when `want_dx`,
    /// and the loss as a training step reads it (with the rows classified right).
    pub(crate) fn loss_gradients_dx(
        &self,
        inputs: &Inputs<'_, f32>,
        loss: Loss,
        target: &Target,
        want_dx: bool,
        dropout: Option<crate::train::dropout::DropoutStep>,
    ) -> Result<(Scored<f32>, LstmOutput<f32>, Gradients<f32>)> {
        self.gradients(inputs, loss, target, (want_dx, dropout))
    }

    fn gradients(
        &self,
        inputs: &Inputs<'_, f32>,
        loss: Loss,
        target: &Target,
        options: (bool, Option<crate::train::dropout::DropoutStep>),
    ) -> Result<(Scored<f32>, LstmOutput<f32>, Gradients<f32>)> {
        crate::train::check_trainable(&self.model.config)?;
        let cfg = &self.model.config;
        let sizes = (cfg.hidden_size, cfg.output_size(), cfg.num_directions());
        let mut trace = self.reuse.take_trace();
        let result = self.model.loss_gradients_with(
            inputs,
            loss,
            target,
            options,
            &mut trace,
            &mut |layer| self.run_layer(layer),
            &mut |pass| {
                let layers = &self.model.layers;
                let run = (self.isa, self.threads, &self.reuse);
                backward::backward_direction(layers, sizes, run, pass)
            },
            &mut |loss, rows, target, weights, grad| match (loss, target) {
                (Loss::CrossEntropy, Target::Classes(classes)) => cross_entropy::cross_entropy(
                    self.isa,
                    self.threads,
                    rows,
                    classes.data(),
                    weights,
                    grad,
                ),
                _ => loss_and_grad(loss, rows, target, weights, grad),
            },
        );
        self.reuse.keep_trace(trace);
        result
    }

    /// One layer's directions, on the team, as [`FastCpuLstm::plan`] says.
    pub(crate) fn run_layer(&self, pass: LayerPass<'_, f32>) -> Result<()> {
        let cfg = &self.model.config;
        let d = cfg.num_directions();
        let LayerPass {
            layer,
            dims,
            lengths,
            input,
            output,
            directions,
        } = pass;
        let packed = &self.packed[layer * d..(layer + 1) * d];
        let plan = self.plan(layer, dims);
        let mut scratches = packed
            .iter()
            .zip(&directions)
            .map(|(p, state)| Scratch::new(p, dims, (&*state.h, &*state.c), &self.reuse))
            .collect::<Result<Vec<_>>>()?;
        let output = Shared::new(output);
        let mut finals = Vec::with_capacity(d);
        let jobs: Vec<DirectionJob<'_>> = scratches
            .iter_mut()
            .zip(directions)
            .enumerate()
            .map(|(direction, (scratch, state))| {
                finals.push((state.h, state.c));
                let parts = JobParts {
                    direction,
                    dims,
                    lengths,
                    input,
                    output: &output,
                    out_width: d * cfg.output_size(),
                    cache: state.cache,
                };
                DirectionJob::new(&packed[direction], scratch, parts, plan.team, &cfg.cell)
            })
            .collect();
        let barriers: Vec<Barrier> = plan
            .groups
            .iter()
            .map(|g| Barrier::new(g.threads()))
            .collect();
        let queues: Vec<GroupQueues> = plan
            .groups
            .iter()
            .map(|g| GroupQueues::new(&packed[g.direction], g.threads()))
            .collect();
        team::run_team(plan.team, |team| {
            self.isa.dispatch(LayerRun {
                jobs: &jobs,
                plan: &plan,
                barriers: &barriers,
                queues: &queues,
                team,
            })
        });
        for (job, (h, c)) in jobs.iter().zip(finals) {
            job.finish(h, c);
        }
        drop(jobs);
        for scratch in scratches {
            scratch.give_back(&self.reuse);
        }
        Ok(())
    }

    /// How layer `layer` shares the threads at `dims` (see [`Plan`]): directions side by
    /// side, rows in independent groups, or each step split, from the work per step;
    /// [`FastCpuLstm::threads`] is the upper bound. Every plan gives the same bits.
    pub fn plan(&self, layer: usize, dims: Dims) -> Plan {
        let cfg = &self.model.config;
        let (hidden, h_out) = (cfg.hidden_size, cfg.output_size());
        let gates = 4 * hidden;
        let blocks = self.packed.first().map_or(1, |p| p.gates.blocks());
        let split_from = |threads| split_min_macs(threads, team::meeting_ns(threads));
        Plan::new(
            Work {
                threads: self.threads,
                directions: cfg.num_directions(),
                batch: dims.batch,
                step_macs: dims.batch.saturating_mul(gates).saturating_mul(h_out),
                projection_macs: (dims.seq_len.saturating_mul(dims.batch))
                    .saturating_mul(
                        cfg.layer_input_size(layer.min(cfg.num_layers.saturating_sub(1))),
                    )
                    .saturating_mul(gates),
                blocks,
                projection_items: (dims.seq_len.saturating_mul(dims.batch))
                    .div_ceil(forward::PROJECTION_ROWS)
                    .saturating_mul(blocks)
                    .saturating_mul(cfg.num_directions()),
            },
            split_from,
        )
    }
}

/// The most threads a model may be given: far more than any CPU has cores, few enough
/// that a team of them can be started.
pub const MAX_THREADS: usize = 1024;

/// `threads` when it is a usable thread count.
pub fn check_threads(threads: usize) -> Result<usize> {
    if threads == 0 {
        return Err(Error::Config(
            "threads must be at least 1 (leave it out to use every core)".into(),
        ));
    }
    if threads > MAX_THREADS {
        return Err(Error::Config(format!(
            "threads = {threads} is more than the {MAX_THREADS} the CPU path allows (this \
             machine has {} cores; leave it out to use every core)",
            default_threads()
        )));
    }
    if cfg!(target_arch = "wasm32") && threads > 1 {
        return Err(Error::Config(format!(
            "threads = {threads}: wasm32 has no threads, the CPU path runs on one"
        )));
    }
    Ok(threads)
}

/// f32 lanes per vector of the SIMD the fast path runs on here: the widest the CPU has (16
/// with AVX-512, 8 with AVX2, 4 with NEON, 1 without SIMD), at most [`SIMD_LANES_VAR`]'s
/// value when it is set.
pub fn simd_lanes() -> usize {
    Isa::detect().lanes()
}
