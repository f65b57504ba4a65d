//! Training benchmarks: one full step (upload of the batch, forward, loss, backward, clip,
//! optimizer) on a Linear-headed LSTM, as `lstm-wgpu train` runs it: MSE at every step, or
//! sequence classification (cross-entropy on the head applied to the final state). On the GPU,
//! steps are pipelined (step k's loss comes back while step k + 1 runs), so the time per step
//! is the steady-state interval between steps; the GPU time of a step is measured apart, on
//! steps waited for one at a time.

use std::time::Instant;

use super::{bench_input, median, memory_mib, BenchResult, BenchSpec};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuTrainer};
use crate::loss::{Loss, Target};
use crate::tensor::Tensor;
use crate::train::{CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use crate::{Linear, LstmWeights};

/// What a training benchmark adds to the shape.
#[derive(Clone, Copy, Debug)]
pub struct TrainSpec {
    /// The head's width `O`.
    pub out_features: usize,
    /// The optimizer each step applies (PyTorch's defaults; lr 0.01 for SGD, else 0.001).
    pub optimizer: OptimizerKind,
    /// What the model learns.
    pub task: TrainTask,
    /// Dropout at every site (input, between layers, output; 0: none).
    pub dropout: f32,
}

/// What a training benchmark's model learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainTask {
    /// MSE at every step.
    PerStep,
    /// Sequence classification: cross-entropy on one class per sequence, `[B]`.
    PerSequence,
    /// A language model over `vocab` tokens: token ids through an embedding (`I` wide), the
    /// head over the vocabulary (`O = vocab`), cross-entropy at every step.
    Language {
        /// `V`: the embedding's rows and the head's width.
        vocab: usize,
    },
}

impl TrainTask {
    /// `step`, `sequence`, `lm`: what `--task` takes and the JSON says.
    pub fn name(&self) -> &'static str {
        match self {
            TrainTask::PerStep => "step",
            TrainTask::PerSequence => "sequence",
            TrainTask::Language { .. } => "lm",
        }
    }
}

impl TrainSpec {
    /// The LSTM with its head (and, for a language model, its embedding), initialised as
    /// PyTorch does (seed 0).
    pub fn weights(&self, spec: &BenchSpec) -> Result<LstmWeights> {
        let config = spec.config();
        let width = config.num_directions() * config.output_size();
        let weights =
            LstmWeights::init(&config, 0)?.with_head(Linear::init(width, self.out_width(), 1)?)?;
        match self.task {
            TrainTask::Language { vocab } => {
                weights.with_embedding(crate::Embedding::init(vocab, spec.input, 2)?)
            }
            _ => Ok(weights),
        }
    }

    /// The head's width: the vocabulary for a language model, else `out_features`.
    pub fn out_width(&self) -> usize {
        match self.task {
            TrainTask::Language { vocab } => vocab,
            _ => self.out_features,
        }
    }

    /// A language model's ids `[T, B]`: a fixed pattern over the vocabulary.
    fn ids(&self, spec: &BenchSpec) -> Result<Option<Tensor<i64>>> {
        let TrainTask::Language { vocab } = self.task else {
            return Ok(None);
        };
        let n = spec.seq_len * spec.batch;
        let ids = (0..n)
            .map(|i| (i.wrapping_mul(7919) % vocab) as i64)
            .collect();
        Ok(Some(Tensor::new([spec.seq_len, spec.batch], ids)?))
    }

    fn options(&self) -> TrainOptions {
        let lr = if self.optimizer == OptimizerKind::Sgd {
            0.01
        } else {
            0.001
        };
        let loss = match self.task {
            TrainTask::PerStep => Loss::Mse,
            _ => Loss::CrossEntropy,
        };
        let mut options = TrainOptions::new(loss, OptimizerConfig::new(self.optimizer, lr));
        options.dropout = crate::train::Dropout {
            input: self.dropout,
            between: self.dropout,
            // a per-sequence loss reads the final state, not the per-step output
            output: if self.task == TrainTask::PerSequence {
                0.0
            } else {
                self.dropout
            },
            seed: 0,
        };
        options
    }

    /// The target every training benchmark uses: a fixed pattern in [-1, 1) at every step,
    /// or classes `b mod O` per sequence.
    fn target(&self, spec: &BenchSpec) -> Result<Target> {
        match self.task {
            TrainTask::PerSequence => {
                let classes = (0..spec.batch)
                    .map(|b| (b % self.out_features) as i64)
                    .collect();
                return Ok(Target::Classes(Tensor::new([spec.batch], classes)?));
            }
            TrainTask::Language { vocab } => {
                let n = spec.seq_len * spec.batch;
                let next = (0..n)
                    .map(|i| (i.wrapping_mul(104_729) % vocab) as i64)
                    .collect();
                return Ok(Target::Classes(Tensor::new(
                    [spec.seq_len, spec.batch],
                    next,
                )?));
            }
            TrainTask::PerStep => {}
        }
        Ok(Target::Values(Tensor::try_from_fn(
            "bench target [T, B, O]",
            [spec.seq_len, spec.batch, self.out_features],
            |i| (i.wrapping_mul(104_729) % 2000) as f32 / 1000.0 - 1.0,
        )?))
    }
}

/// Times `iters` steps after `warmup`, each `submit` timed on its own; the GPU trainer
/// returns the previous step's loss from `submit`, so each interval is a steady-state step
/// (the final flush counts in the last).
fn time_steps(
    spec: &BenchSpec,
    trainer: &mut dyn Trainer,
    (x, ids): (&Tensor, Option<&Tensor<i64>>),
    target: &Target,
    mut tick: impl FnMut(),
) -> Result<(f64, f64)> {
    let submit = |trainer: &mut dyn Trainer| match ids {
        Some(ids) => trainer.submit_ids(ids, None, target),
        None => trainer.submit(x, target),
    };
    for _ in 0..spec.warmup {
        submit(trainer)?;
        tick();
    }
    let mut times = Vec::with_capacity(spec.iters.clamp(1, 1 << 16));
    for _ in 0..spec.iters.max(1) {
        let start = Instant::now();
        submit(trainer)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        tick();
    }
    // the last step's own wait belongs to the last interval
    let start = Instant::now();
    trainer.flush()?;
    if let Some(last) = times.last_mut() {
        *last += start.elapsed().as_secs_f64() * 1e3;
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((median(&mut times), min))
}

/// Benchmarks GPU training on `ctx`.
pub fn bench_gpu_train(
    ctx: &GpuContext,
    spec: &BenchSpec,
    train: &TrainSpec,
    tick: impl FnMut(),
) -> Result<BenchResult> {
    let (x, target) = (bench_input(spec)?, train.target(spec)?);
    let mut trainer = GpuTrainer::new(ctx, &train.weights(spec)?, train.options())?;
    trainer.set_kernel(spec.kernel);
    let ids = train.ids(spec)?;
    let (median_ms, min_ms) = time_steps(spec, &mut trainer, (&x, ids.as_ref()), &target, tick)?;
    let mut gpu_times = Vec::new();
    if ctx.has_timestamps() && ids.is_none() {
        for _ in 0..spec.iters.max(1) {
            gpu_times.extend(trainer.step_timed(&x, &target)?.1);
        }
    }
    Ok(BenchResult {
        device: "gpu",
        adapter: ctx.adapter_name(),
        kernel: trainer.kernel()?.to_string(),
        kernel_source: Some(trainer.kernel_source()?),
        median_ms,
        min_ms,
        gpu_ms: (!gpu_times.is_empty()).then(|| median(&mut gpu_times)),
        gpu_memory_mib: memory_mib(ctx),
        threads: None,
        dispatches: 0,
        record_ms: 0.0,
        gflops: 3.0 * spec.flops() / median_ms / 1e6,
    })
}

/// Benchmarks CPU training (f32, the fast path on `spec.threads` threads).
pub fn bench_cpu_train(
    spec: &BenchSpec,
    train: &TrainSpec,
    tick: impl FnMut(),
) -> Result<BenchResult> {
    let (x, target) = (bench_input(spec)?, train.target(spec)?);
    let mut trainer =
        CpuTrainer::new(&train.weights(spec)?, train.options())?.with_threads(spec.threads)?;
    let ids = train.ids(spec)?;
    let times = time_steps(spec, &mut trainer, (&x, ids.as_ref()), &target, tick)?;
    Ok(BenchResult::cpu(
        "training step",
        spec.threads,
        times,
        3.0 * spec.flops(),
    ))
}
