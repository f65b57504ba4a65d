//! Training: a model, a loss and an optimizer, stepped on batches, on either path.
//!
//! ```no_run
//! use lstm_wgpu::train::{CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
//! use lstm_wgpu::{loss::{Loss, Target}, Linear, LstmConfig, LstmWeights, Tensor};
//! # fn main() -> lstm_wgpu::Result<()> {
//! let config = LstmConfig::new(1, 16);
//! let weights = LstmWeights::init(&config, 0)?.with_head(Linear::init(16, 1, 1)?)?;
//! let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
//! let mut trainer = CpuTrainer::new(&weights, options)?; // or gpu::GpuTrainer::new(&ctx, ...)
//! let x = Tensor::full([20, 8, 1], 0.5f32);              // [T, B, I]
//! let y = Target::Values(Tensor::full([20, 8, 1], 0.1)); // [T, B, O]
//! let loss = trainer.step(&x, &y)?;                       // loss before the update
//! let trained = trainer.weights()?;
//! # Ok(()) }
//! ```

pub mod batches;
pub mod bptt;
pub mod checkpoint;
pub mod data;
pub mod dropout;
pub mod flat;
pub mod job;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod snapshot;
pub mod validation;

pub use dropout::Dropout;
pub use flat::ParamLayout;
pub use metrics::{evaluate, Metrics};
pub use optim::{OptimizerConfig, OptimizerKind, OptimizerState};
pub use snapshot::{Inference, TrainerSnapshot};

use crate::cpu::{FastCpuLstm, Gradients};
use crate::error::{Error, Result};
use crate::loss::{Loss, Target};
use crate::shape::Inputs;
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// What to minimise and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// The loss minimised.
    pub loss: Loss,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Clip the total gradient norm to this before each update (`clip_grad_norm_`).
    pub clip_norm: Option<f32>,
    /// Dropout in training (none by default); see [`dropout`].
    pub dropout: Dropout,
    /// The head's weight is the embedding's (`word_language_model --tied`): one parameter,
    /// starting from the embedding's values, its gradient the sum of both uses. Needs an
    /// embedding `[V, I]` and a head `[V, D*H_out]` with `I = D*H_out`.
    pub tie_weights: bool,
    /// Stateful truncated BPTT: each step starts from the final `(h, c)` of the step before,
    /// detached (no gradient flows back into the earlier step, as `word_language_model`'s
    /// `repackage_hidden`), from zeros after [`Trainer::reset_state`] and at the start. The
    /// batches are then consecutive windows of long sequences: full length (no lengths), no
    /// h0/c0 of their own, the same B. On the GPU the state stays on the GPU.
    pub carry_state: bool,
}

/// An error for a cell variant: training runs PyTorch's cell only (its backward is not
/// written for peepholes, clips, coupled gates or other activations).
pub fn check_trainable(config: &crate::LstmConfig) -> Result<()> {
    if config.cell.is_standard() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "training supports PyTorch's cell only; this model's is {} (ONNX's cell variants run \
         for inference)",
        config.cell.describe()
    )))
}

impl TrainOptions {
    /// `loss` and `optimizer`, no clipping.
    pub fn new(loss: Loss, optimizer: OptimizerConfig) -> Self {
        Self {
            loss,
            optimizer,
            clip_norm: None,
            dropout: Dropout::default(),
            tie_weights: false,
            carry_state: false,
        }
    }

    /// Checks the optimizer's values and that the clip norm, if any, is finite and > 0.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.dropout.validate()?;
        if let Some(c) = self.clip_norm {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Error::Config(format!("clip norm must be > 0, got {c}")));
            }
        }
        Ok(())
    }
}

/// What a training step scored on its batch, before its update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    /// The step, numbered from 1.
    pub step: u64,
    /// The loss the step minimised.
    pub loss: f32,
    /// Cross-entropy only: the fraction of the counted rows (valid steps, classes not
    /// ignored; per sequence, every sequence) whose largest logit (the first of equal ones)
    /// is the target class.
    pub accuracy: Option<f32>,
}

/// A model being trained. Steps are numbered from 1.
pub trait Trainer {
    /// Starts the next step on a batch: forward, loss, backward, (clip,) update. `x` is
    /// `[T, B, I]` (`[B, T, I]` when the model is `batch_first`); the target fits the model
    /// output (see [`Target`]). Returns the scores of the steps that are known now, in order:
    /// the GPU returns the previous step's, which ran while this one was prepared
    /// (pipelining), the CPU this step's own.
    fn submit(&mut self, x: &Tensor, target: &Target) -> Result<Vec<StepLoss>> {
        self.submit_with(&Inputs::new(x), target)
    }

    /// [`Trainer::submit`] with lengths (and h0/c0) as the forward takes them: sequences end
    /// at their own length (`pack_padded_sequence`), per-step losses count only the valid
    /// steps, and per-sequence losses read each sequence's own last step.
    fn submit_with(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<Vec<StepLoss>>;

    /// [`Trainer::submit_with`] for a model with an [`crate::Embedding`]: token ids `[T, B]`
    /// (`[B, T]` when `batch_first`, `[T]` unbatched), each in `0..V`, looked up in the
    /// embedding, whose gradient is the sum of its rows' input gradients (in position order).
    fn submit_ids(
        &mut self,
        ids: &Tensor<i64>,
        lengths: Option<&[usize]>,
        target: &Target,
    ) -> Result<Vec<StepLoss>>;

    /// Waits for every submitted step and returns the losses not returned yet.
    fn flush(&mut self) -> Result<Vec<StepLoss>>;

    /// One step, waited for: its loss.
    fn step(&mut self, x: &Tensor, target: &Target) -> Result<f32> {
        self.step_with(&Inputs::new(x), target)
    }

    /// [`Trainer::step`] with lengths (and h0/c0); see [`Trainer::submit_with`].
    fn step_with(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<f32> {
        let mut losses = self.submit_with(inputs, target)?;
        losses.extend(self.flush()?);
        losses
            .last()
            .map(|s| s.loss)
            .ok_or_else(|| Error::Readback("no loss came back".into()))
    }

    /// The current weights (PyTorch layout), after every submitted step.
    fn weights(&self) -> Result<LstmWeights>;

    /// With [`TrainOptions::carry_state`]: the next step starts from zeros again (the start
    /// of an epoch). Without it, nothing to do.
    fn reset_state(&mut self);

    /// After step `bad` gave a non-finite loss (its weights give NaN/Inf), with at most one
    /// later step submitted: puts back the weights step `bad - 1` was computed on, the last
    /// ones known to give a finite loss (the initial weights when `bad` is 1). The optimizer
    /// state is not rewound: stop training here.
    fn restore_last_good(&mut self, bad: u64) -> Result<()>;

    /// The learning rate of the steps submitted from now on (a schedule's), > 0.
    fn set_lr(&mut self, lr: f32) -> Result<()>;

    /// The trainer's whole state after every submitted step (their losses stay to be
    /// flushed): restored into a trainer of the same model, options and device, the steps
    /// that follow are bitwise those this one would take.
    fn snapshot(&mut self) -> Result<TrainerSnapshot>;

    /// Goes on from `snapshot` (see [`Trainer::snapshot`]); losses not yet returned are
    /// dropped. A snapshot of another size of model is an error and changes nothing.
    fn restore(&mut self, snapshot: &TrainerSnapshot) -> Result<()>;

    /// A forward-only model at the current weights, without dropout (validation).
    fn inference(&mut self) -> Result<Box<dyn Inference>>;
}

/// Training on the CPU path ([`FastCpuLstm`]'s kernels, f32 throughout as the GPU and
/// PyTorch), on every core unless [`CpuTrainer::with_threads`] says otherwise.
pub struct CpuTrainer {
    like: LstmWeights,
    layout: ParamLayout,
    params: Vec<f32>,
    /// the parameters at the start of the last two steps, oldest first
    history: Vec<Vec<f32>>,
    steps: u64,
    state: OptimizerState,
    options: TrainOptions,
    /// the model at the current parameters, its buffers kept from step to step
    model: FastCpuLstm,
    /// with `carry_state`: the last step's final (h_n, c_n), the next step's initial state
    carried: Option<(Tensor, Tensor)>,
}

impl CpuTrainer {
    /// A trainer starting from `weights`, with fresh optimizer state.
    pub fn new(weights: &LstmWeights, options: TrainOptions) -> Result<Self> {
        options.validate()?;
        check_trainable(weights.config())?;
        let tied = tie(weights, options.tie_weights)?;
        let weights = &tied;
        let layout = ParamLayout::for_training(weights, options.tie_weights);
        Ok(Self {
            history: Vec::new(),
            steps: 0,
            params: layout.flatten(weights),
            layout,
            like: weights.clone(),
            state: OptimizerState::default(),
            options,
            model: FastCpuLstm::new(weights),
            carried: None,
        })
    }

    /// Uses `threads` threads (at least 1; every core by default).
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.model = self.model.with_threads(threads)?;
        Ok(self)
    }
}

/// The parameter gradients in the flat layout.
pub fn flatten_gradients<T: crate::cpu::Real>(
    layout: &ParamLayout,
    like: &LstmWeights,
    grads: &Gradients<T>,
) -> Result<Vec<f32>> {
    Ok(layout.flatten(&grads.to_weights(like)?))
}

impl Trainer for CpuTrainer {
    fn submit_with(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<Vec<StepLoss>> {
        if self.like.embedding().is_some() {
            return Err(Error::Input(
                "this model has an embedding: it takes token ids (submit_ids), not float inputs"
                    .into(),
            ));
        }
        self.step_on(inputs, None, target)
    }

    fn submit_ids(
        &mut self,
        ids: &Tensor<i64>,
        lengths: Option<&[usize]>,
        target: &Target,
    ) -> Result<Vec<StepLoss>> {
        if self.like.embedding().is_none() {
            return Err(Error::Input(
                "this model has no embedding: it takes float inputs, not token ids".into(),
            ));
        }
        // the current table (lookup checks the ids)
        let x = match self.weights()?.embedding() {
            Some(embedding) => embedding.lookup(ids)?,
            None => return Err(Error::Internal("embedding lost in the layout".into())),
        };
        self.step_on(&Inputs::new(&x).lengths(lengths), Some(ids), target)
    }

    fn flush(&mut self) -> Result<Vec<StepLoss>> {
        Ok(Vec::new())
    }

    fn weights(&self) -> Result<LstmWeights> {
        self.layout.unflatten(&self.params, &self.like)
    }

    fn reset_state(&mut self) {
        self.carried = None;
    }

    fn set_lr(&mut self, lr: f32) -> Result<()> {
        let mut optimizer = self.options.optimizer;
        optimizer.lr = lr;
        optimizer.validate()?;
        self.options.optimizer = optimizer;
        Ok(())
    }

    fn snapshot(&mut self) -> Result<TrainerSnapshot> {
        Ok(TrainerSnapshot {
            step: self.steps,
            params: self.params.clone(),
            moment1: self.state.m.clone(),
            moment2: self.state.v.clone(),
            carried: self.carried.clone(),
        })
    }

    fn restore(&mut self, snapshot: &TrainerSnapshot) -> Result<()> {
        snapshot.check(self.params.len())?;
        self.params.clone_from(&snapshot.params);
        self.steps = snapshot.step;
        self.state = OptimizerState {
            step: snapshot.step,
            m: snapshot.moment1.clone(),
            v: snapshot.moment2.clone(),
        };
        self.carried.clone_from(&snapshot.carried);
        self.history = vec![self.params.clone()];
        Ok(())
    }

    fn inference(&mut self) -> Result<Box<dyn Inference>> {
        let model = FastCpuLstm::new(&self.weights()?).with_threads(self.model.threads())?;
        Ok(Box::new(model))
    }

    fn restore_last_good(&mut self, bad: u64) -> Result<()> {
        if bad != self.steps {
            return Err(Error::Input(format!(
                "restore_last_good({bad}) after {} steps: the CPU restores after the last step",
                self.steps
            )));
        }
        if let Some(good) = self.history.first() {
            self.params.clone_from(good);
        }
        Ok(())
    }
}

impl CpuTrainer {
    /// One step on `inputs` (looked up from `ids` when the model has an embedding).
    fn step_on(
        &mut self,
        inputs: &Inputs<'_>,
        ids: Option<&Tensor<i64>>,
        target: &Target,
    ) -> Result<Vec<StepLoss>> {
        let weights = self.weights()?;
        self.model.set_weights(&weights)?;
        let dropout = self.options.dropout.any().then_some(dropout::DropoutStep {
            dropout: self.options.dropout,
            step: (self.steps + 1) as u32,
        });
        if self.options.carry_state {
            check_carry(inputs)?;
        }
        let inputs = match &self.carried {
            Some((h, c)) => {
                let x = inputs.x.shape();
                let batch = |t: &Tensor| (t.shape().len() == 3).then(|| t.shape()[1]);
                let x_batch = match (x.len(), self.like.config().batch_first) {
                    (3, true) => Some(x[0]),
                    (3, false) => Some(x[1]),
                    _ => None,
                };
                if batch(h) != x_batch {
                    return Err(Error::Input(format!(
                        "carrying the state across steps needs the same batch every step: \
                         the state is {:?}, this input {x:?}",
                        h.shape()
                    )));
                }
                (*inputs).state(Some(h), Some(c))
            }
            None => *inputs,
        };
        let (scored, out, grads) = self.model.loss_gradients_dx(
            &inputs,
            self.options.loss,
            target,
            ids.is_some(),
            dropout,
        )?;
        if self.options.carry_state {
            // detached: the next step's state, with no gradient back into this one
            self.carried = Some((out.h_n, out.c_n));
        }
        let mut flat = flatten_gradients(&self.layout, &weights, &grads)?;
        if let (Some(ids), Some(embedding), Some(at)) =
            (ids, weights.embedding(), self.layout.embedding)
        {
            let mut grad = embedding.gradient(ids.data(), grads.dx.data());
            if self.options.tie_weights {
                // one parameter used twice: its gradient is the sum of both uses
                let head = grads
                    .head
                    .as_ref()
                    .map(|h| h.weight.as_slice())
                    .unwrap_or(&[]);
                for (g, &h) in grad.iter_mut().zip(head) {
                    *g += h;
                }
            }
            flat[at..at + grad.len()].copy_from_slice(&grad);
        }
        if self.history.len() == 2 {
            self.history.remove(0);
        }
        self.history.push(self.params.clone());
        optim::step(
            &self.options.optimizer,
            &mut self.state,
            &mut self.params,
            &flat,
            self.options.clip_norm,
        );
        self.steps += 1;
        Ok(vec![StepLoss {
            step: self.steps,
            loss: scored.value,
            accuracy: scored.accuracy(),
        }])
    }
}

/// What a step that carries its state over takes: the whole window (no lengths) and no
/// initial state of its own.
pub(crate) fn check_carry(inputs: &Inputs<'_>) -> Result<()> {
    if inputs.lengths.is_some() {
        return Err(Error::Config(
            "carrying the state across steps (truncated BPTT) needs full-length windows: \
             no lengths"
                .into(),
        ));
    }
    if inputs.h0.is_some() || inputs.c0.is_some() {
        return Err(Error::Config(
            "carrying the state across steps (truncated BPTT): the state comes from the \
             step before, not from h0/c0"
                .into(),
        ));
    }
    Ok(())
}

/// `weights` with the head's weight set to the embedding's when `tie` (checking that they can
/// be one parameter), else unchanged.
pub(crate) fn tie(weights: &LstmWeights, tie: bool) -> Result<LstmWeights> {
    if !tie {
        return Ok(weights.clone());
    }
    let (Some(embedding), Some(head)) = (weights.embedding(), weights.head()) else {
        return Err(Error::Config(
            "tied weights need an embedding and a head (the head's weight becomes the embedding's)"
                .into(),
        ));
    };
    if head.weight.shape() != embedding.weight.shape() {
        return Err(Error::Config(format!(
            "tied weights need the head's weight {:?} to have the embedding's shape {:?} \
             ([V, I] with I = D*H_out)",
            head.weight.shape(),
            embedding.weight.shape()
        )));
    }
    let mut tied = weights.clone();
    let values = embedding.weight.clone();
    if let Some(head) = tied.head_mut() {
        head.weight = values;
    }
    Ok(tied)
}
