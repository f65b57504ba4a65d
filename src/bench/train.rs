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
    /// Sequence classification (cross-entropy on one class per sequence, `[B]`) instead of
    /// MSE at every step.
    pub per_sequence: bool,
}

impl TrainSpec {
    /// The LSTM with its head, initialised as PyTorch does (seed 0).
    pub fn weights(&self, spec: &BenchSpec) -> Result<LstmWeights> {
        let config = spec.config();
        let width = config.num_directions() * config.output_size();
        LstmWeights::init(&config, 0)?.with_head(Linear::init(width, self.out_features, 1)?)
    }

    fn options(&self) -> TrainOptions {
        let lr = if self.optimizer == OptimizerKind::Sgd {
            0.01
        } else {
            0.001
        };
        let loss = if self.per_sequence {
            Loss::CrossEntropy
        } else {
            Loss::Mse
        };
        TrainOptions::new(loss, OptimizerConfig::new(self.optimizer, lr))
    }

    /// The target every training benchmark uses: a fixed pattern in [-1, 1) at every step,
    /// or classes `b mod O` per sequence.
    fn target(&self, spec: &BenchSpec) -> Result<Target> {
        if self.per_sequence {
            let classes = (0..spec.batch)
                .map(|b| (b % self.out_features) as i64)
                .collect();
            return Ok(Target::Classes(Tensor::new([spec.batch], classes)?));
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
    x: &Tensor,
    target: &Target,
    mut tick: impl FnMut(),
) -> Result<(f64, f64)> {
    for _ in 0..spec.warmup {
        trainer.submit(x, target)?;
        tick();
    }
    let mut times = Vec::with_capacity(spec.iters.clamp(1, 1 << 16));
    for _ in 0..spec.iters.max(1) {
        let start = Instant::now();
        trainer.submit(x, target)?;
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
    let (median_ms, min_ms) = time_steps(spec, &mut trainer, &x, &target, tick)?;
    let mut gpu_times = Vec::new();
    if ctx.has_timestamps() {
        for _ in 0..spec.iters.max(1) {
            gpu_times.extend(trainer.step_timed(&x, &target)?.1);
        }
    }
    Ok(BenchResult {
        device: "gpu",
        adapter: ctx.adapter_name(),
        kernel: "training step".into(),
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
    let times = time_steps(spec, &mut trainer, &x, &target, tick)?;
    Ok(BenchResult::cpu(
        "training step",
        spec.threads,
        times,
        3.0 * spec.flops(),
    ))
}
