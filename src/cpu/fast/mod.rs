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
mod math;
mod pack;
mod reuse;
mod simd;
pub(crate) mod team;

use self::forward::{DirectionJob, RunJob, Scratch};
use self::pack::PackedDirection;
use self::reuse::Reuse;
use self::simd::Isa;
pub use self::simd::SIMD_LANES_VAR;
pub use self::team::default_threads;
use super::forward::DirectionPass;
use super::CpuLstm;
use super::Gradients;
use crate::error::{Error, Result};
use crate::loss::{loss_and_grad, Loss, Scored, Target};
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
            .forward_each_direction(&batched, None, &mut |pass| self.run_direction(pass))?;
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
            &mut |pass| self.run_direction(pass),
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

    /// One layer and direction, on the team.
    pub(crate) fn run_direction(&self, pass: DirectionPass<'_, f32>) -> Result<()> {
        let cfg = &self.model.config;
        let packed = &self.packed[pass.layer * cfg.num_directions() + pass.direction];
        let out_width = cfg.num_directions() * cfg.output_size();
        let mut scratch = Scratch::new(packed, &pass, &self.reuse)?;
        // no more threads than there is work for in the widest phase, and one for a step too
        // small to repay a barrier per step
        let threads = self
            .threads_for(pass.dims.batch)
            .min(packed.gates.blocks().max(1));
        let (job, h, c) =
            DirectionJob::new(packed, &mut scratch, pass, out_width, threads, &cfg.cell);
        team::run_team(threads, |worker| self.isa.dispatch(RunJob(&job, worker)));
        job.finish(h, c);
        scratch.give_back(&self.reuse);
        Ok(())
    }
}

/// Multiply-adds of one timestep's recurrent product (B · 4H · H_out) below which a step is
/// not split across threads: a barrier per step costs more than the split saves. Measured on
/// the project's machine (2 vCPU AMD EPYC, `bench --device cpu --seq 2000 --batch 1`, median
/// of 3): H = 48 (9,216) ran in 0.78 ms on one thread and 0.89 ms on two; H = 64 (16,384) in
/// 1.33 ms and 1.01 ms. The arithmetic is the same on any number of threads, so the choice
/// never changes a result.
pub const SPLIT_STEP_MIN_MACS: usize = 12_000;

impl FastCpuLstm {
    /// The threads a pass over `batch` rows runs on: one when a step's product is below
    /// [`SPLIT_STEP_MIN_MACS`], else [`FastCpuLstm::threads`].
    pub fn threads_for(&self, batch: usize) -> usize {
        let cfg = &self.model.config;
        let macs = batch
            .saturating_mul(4 * cfg.hidden_size)
            .saturating_mul(cfg.output_size());
        if macs < SPLIT_STEP_MIN_MACS {
            1
        } else {
            self.threads
        }
    }
}

/// `threads` when it is a usable thread count.
pub fn check_threads(threads: usize) -> Result<usize> {
    if threads == 0 {
        return Err(Error::Config(
            "threads must be at least 1 (leave it out to use every core)".into(),
        ));
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
